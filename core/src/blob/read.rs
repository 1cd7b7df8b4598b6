//! The zero-copy blob reader: [`Blob::parse`] validates a `&[u8]` of any alignment once, after which every
//! accessor is infallible and allocation-free and tensors are [`Tensor`] views into the original bytes.
//!
//! Validation order (each step only reads bytes the previous steps proved present):
//! 1. magic, length >= 64, version, header size ([`Header::check_prefix`]);
//! 2. header CRC (verified parse only);
//! 3. header fields against the kind and the `MAX_*` limits ([`Header::decode`]);
//! 4. slice length against the declared `total_len`;
//! 5. payload CRC (verified parse only), so a corrupted section table is reported as a checksum error;
//! 6. the section table (bounds, overlaps, ids, element types, shapes, byte lengths), required sections;
//! 7. the metadata area (bounds, entry encoding, keys, UTF-8, duplicates).

use crate::blob::format::{
    self, field, rd_u16, sat_u32, section, Header, Kind, SectionEntry, CRC32, HEADER_SIZE, MAX_METADATA_ENTRIES,
    SECTION_ENTRY_SIZE,
};
use crate::error::BlobError;
use crate::pixel::{ImageShape, PixelMap};
use crate::tensor::{DType, Tensor};

/// A validated blob borrowed from a byte slice of any alignment.
#[derive(Clone, Copy)]
pub struct Blob<'a> {
    /// Exactly `header.total_len` bytes.
    bytes: &'a [u8],
    header: Header,
}

impl core::fmt::Debug for Blob<'_> {
    /// The header and the length, not the (possibly megabytes of) bytes.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Blob").field("header", &self.header).field("total_len", &self.bytes.len()).finish()
    }
}

/// One section-table entry after validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SectionInfo {
    /// Position in the section table.
    pub index: usize,
    /// Section id ([`format::section`]).
    pub id: u8,
    /// Element type.
    pub dtype: DType,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Absolute byte offset of the data in the blob.
    pub offset: usize,
    /// Byte length of the data (int8: data plus per-row scales).
    pub len: usize,
}

impl SectionInfo {
    /// Short name of the section id (`mu`, `u_t`, ...).
    pub fn name(&self) -> &'static str {
        section::name(self.id)
    }
}

/// The validated key/value metadata area.
#[derive(Clone, Copy, Debug)]
pub struct Metadata<'a> {
    bytes: &'a [u8],
}

impl<'a> Metadata<'a> {
    /// The value stored under `key`, if any (keys are unique).
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// All `(key, value)` pairs in stored order.
    pub fn iter(&self) -> MetadataIter<'a> {
        MetadataIter { rest: self.bytes }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Raw bytes of the area.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// Iterator over metadata entries (see [`Metadata::iter`]).
#[derive(Clone, Debug)]
pub struct MetadataIter<'a> {
    rest: &'a [u8],
}

/// Splits one encoded entry `key_len u8, value_len u16 LE, key, value` off the front of `b`.
/// Returns the key bytes, value bytes and the remainder, or `None` if `b` is too short.
fn split_entry(b: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    if b.len() < 3 {
        return None;
    }
    let key_len = usize::from(b[0]);
    let value_len = usize::from(rd_u16(b, 1));
    let rest = &b[3..];
    if rest.len() < key_len + value_len {
        return None;
    }
    let (key, rest) = rest.split_at(key_len);
    let (value, rest) = rest.split_at(value_len);
    Some((key, value, rest))
}

impl<'a> Iterator for MetadataIter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        // The area was validated by `Blob::parse`; a malformed entry (impossible) just ends iteration.
        let (key, value, rest) = split_entry(self.rest)?;
        self.rest = rest;
        Some((core::str::from_utf8(key).ok()?, core::str::from_utf8(value).ok()?))
    }
}

/// Iterator over validated section-table entries (see [`Blob::sections`]).
#[derive(Clone, Debug)]
pub struct SectionIter<'a> {
    table: &'a [u8],
    index: usize,
}

impl Iterator for SectionIter<'_> {
    type Item = SectionInfo;

    fn next(&mut self) -> Option<SectionInfo> {
        let at = self.index * SECTION_ENTRY_SIZE;
        let raw = self.table.get(at..at + SECTION_ENTRY_SIZE)?;
        let e = SectionEntry::decode(raw);
        let index = self.index;
        self.index += 1;
        Some(SectionInfo {
            index,
            id: e.id,
            // Validated by `Blob::parse`; F32 is never reached.
            dtype: DType::from_code(e.dtype_code).unwrap_or(DType::F32),
            rows: e.rows as usize,
            cols: e.cols as usize,
            offset: e.offset as usize,
            len: e.len as usize,
        })
    }
}

/// Half-open byte range `[start, end)` within the blob.
#[derive(Clone, Copy)]
struct Span {
    start: u64,
    end: u64,
}

impl Span {
    fn overlaps(self, other: Span) -> bool {
        self.start < self.end && other.start < other.end && self.start < other.end && other.start < self.end
    }
}

impl<'a> Blob<'a> {
    /// Parses and fully validates a blob, including both CRC-32s.
    ///
    /// `bytes` must be exactly the blob (its length equal to the header's `total_len`); use
    /// [`Blob::declared_len`] to cut a blob out of a larger region. Any alignment is accepted.
    ///
    /// # Errors
    /// Every structural problem as a [`BlobError`] (see the module docs for the order of checks); a corrupted
    /// header gives [`BlobError::HeaderChecksumMismatch`], a corrupted byte after the header
    /// [`BlobError::ChecksumMismatch`]. Never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BlobError> {
        Self::parse_inner(bytes, true)
    }

    /// Like [`Blob::parse`] but skips both CRC checks, so `inspect` can show a damaged blob; query
    /// [`Blob::checksum_ok`] afterwards. All structural checks still run, so the accessors stay safe to use.
    ///
    /// # Errors
    /// As [`Blob::parse`], minus the two checksum errors.
    pub fn parse_unverified(bytes: &'a [u8]) -> Result<Self, BlobError> {
        Self::parse_inner(bytes, false)
    }

    /// The total length a blob declares in its header, after checking magic, version and header size.
    /// Lets firmware hand [`Blob::parse`] exactly the blob out of a larger flash region.
    ///
    /// # Errors
    /// [`BlobError::Truncated`], [`BlobError::BadMagic`], [`BlobError::UnsupportedVersion`],
    /// [`BlobError::BadHeaderSize`].
    pub fn declared_len(bytes: &[u8]) -> Result<usize, BlobError> {
        Header::check_prefix(bytes)?;
        Ok(format::rd_u32(bytes, format::header::TOTAL_LEN) as usize)
    }

    fn parse_inner(bytes: &'a [u8], verify: bool) -> Result<Self, BlobError> {
        Header::check_prefix(bytes)?;
        if verify {
            let stored = format::rd_u32(bytes, format::header::HEADER_CRC);
            let computed = CRC32.checksum(&bytes[..format::header::HEADER_CRC]);
            if stored != computed {
                return Err(BlobError::HeaderChecksumMismatch { stored, computed });
            }
        }
        let header = Header::decode(bytes)?;
        let total = header.total_len as usize;
        if bytes.len() < total {
            return Err(BlobError::Truncated { needed: header.total_len, available: sat_u32(bytes.len()) });
        }
        if bytes.len() > total {
            return Err(BlobError::TrailingBytes { declared: header.total_len, available: sat_u32(bytes.len()) });
        }
        let blob = Self { bytes, header };
        if verify {
            let computed = blob.computed_crc();
            if computed != header.payload_crc {
                return Err(BlobError::ChecksumMismatch { stored: header.payload_crc, computed });
            }
        }
        blob.validate_sections()?;
        blob.validate_metadata()?;
        Ok(blob)
    }

    fn validate_sections(&self) -> Result<(), BlobError> {
        let h = &self.header;
        let table_end = h.table_end() as u64;
        let total = u64::from(h.total_len);
        let meta =
            Span { start: u64::from(h.metadata_offset), end: u64::from(h.metadata_offset) + u64::from(h.metadata_len) };
        let (d, k, l) = (u64::from(h.dim), u64::from(h.rank), u64::from(h.num_sigmas));
        let table = &self.bytes[HEADER_SIZE..h.table_end()];
        let count = h.section_count as usize;
        for i in 0..count {
            let e = SectionEntry::decode(&table[i * SECTION_ENTRY_SIZE..(i + 1) * SECTION_ENTRY_SIZE]);
            let index = i as u8; // count <= MAX_SECTIONS = 16
            if e.reserved != 0 {
                return Err(BlobError::BadField { field: field::RESERVED, value: u32::from(e.reserved) });
            }
            let dtype = DType::from_code(e.dtype_code)?;
            let span = Span { start: u64::from(e.offset), end: u64::from(e.offset) + u64::from(e.len) };
            if span.start < table_end || span.end > total || span.overlaps(meta) {
                return Err(BlobError::BadSection { index });
            }
            for j in 0..i {
                let o = SectionEntry::decode(&table[j * SECTION_ENTRY_SIZE..(j + 1) * SECTION_ENTRY_SIZE]);
                if o.id == e.id {
                    return Err(BlobError::DuplicateSection { id: e.id });
                }
                if span.overlaps(Span { start: u64::from(o.offset), end: u64::from(o.offset) + u64::from(o.len) }) {
                    return Err(BlobError::BadSection { index });
                }
            }
            if e.id < section::FIRST_EXTENSION {
                let Some((rows, cols)) = h.kind.expected_shape(e.id, d, k, l) else {
                    return Err(BlobError::UnexpectedSection { id: e.id });
                };
                if section::requires_f32(e.id) && dtype != DType::F32 {
                    return Err(BlobError::DTypeNotAllowed { id: e.id, code: e.dtype_code });
                }
                if u64::from(e.rows) != rows || u64::from(e.cols) != cols {
                    return Err(BlobError::BadShape {
                        id: e.id,
                        rows: e.rows,
                        cols: e.cols,
                        expected_rows: u32::try_from(rows).unwrap_or(u32::MAX),
                        expected_cols: u32::try_from(cols).unwrap_or(u32::MAX),
                    });
                }
            }
            // Byte length against rows x cols (checked arithmetic inside `Tensor::new`).
            Tensor::new(dtype, e.rows as usize, e.cols as usize, &self.bytes[span.start as usize..span.end as usize])?;
        }
        for &id in h.kind.required_sections() {
            if self.entry(id).is_none() {
                return Err(BlobError::MissingSection { id });
            }
        }
        Ok(())
    }

    fn validate_metadata(&self) -> Result<(), BlobError> {
        let h = &self.header;
        let start = h.metadata_offset as usize;
        let end = start as u64 + u64::from(h.metadata_len);
        if (start as u64) < h.table_end() as u64 || end > u64::from(h.total_len) {
            return Err(BlobError::BadMetadata { offset: h.metadata_offset });
        }
        let area = &self.bytes[start..end as usize];
        let mut rest = area;
        let mut count = 0usize;
        while !rest.is_empty() {
            let at = sat_u32(start + (area.len() - rest.len()));
            count += 1;
            if count > MAX_METADATA_ENTRIES {
                return Err(BlobError::LimitExceeded {
                    field: field::METADATA,
                    value: sat_u32(count),
                    max: MAX_METADATA_ENTRIES as u32,
                });
            }
            let Some((key, value, next)) = split_entry(rest) else {
                return Err(BlobError::BadMetadata { offset: at });
            };
            if !format::valid_key(key) || core::str::from_utf8(value).is_err() {
                return Err(BlobError::BadMetadata { offset: at });
            }
            // Keys are unique: compare with every earlier key.
            let mut earlier = &area[..area.len() - rest.len()];
            while let Some((k, _, r)) = split_entry(earlier) {
                if k == key {
                    return Err(BlobError::BadMetadata { offset: at });
                }
                earlier = r;
            }
            rest = next;
        }
        Ok(())
    }

    /// The raw table entry for section `id`, if present.
    fn entry(&self, id: u8) -> Option<SectionEntry> {
        let table = &self.bytes[HEADER_SIZE..self.header.table_end()];
        table.chunks_exact(SECTION_ENTRY_SIZE).map(SectionEntry::decode).find(|e| e.id == id)
    }

    /// The decoded header.
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// Format version (1).
    pub fn version(&self) -> u16 {
        self.header.version
    }
    /// Denoiser kind.
    pub fn kind(&self) -> Kind {
        self.header.kind
    }
    /// Image shape (CHW).
    pub fn shape(&self) -> ImageShape {
        self.header.shape
    }
    /// Pixel mapping from model values to 0..255.
    pub fn pixel_map(&self) -> PixelMap {
        self.header.pixel
    }
    /// Data dimension d.
    pub fn dim(&self) -> usize {
        self.header.dim as usize
    }
    /// Rank k (0 for the dense linear kind).
    pub fn rank(&self) -> usize {
        self.header.rank as usize
    }
    /// Number of sigma levels L (0 for the Gaussian kind).
    pub fn num_sigmas(&self) -> usize {
        self.header.num_sigmas as usize
    }
    /// Isotropic floor c (0 for linear kinds).
    pub fn floor(&self) -> f32 {
        self.header.floor
    }
    /// Total length in bytes.
    pub fn total_len(&self) -> usize {
        self.bytes.len()
    }
    /// The blob's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The key/value metadata.
    pub fn metadata(&self) -> Metadata<'a> {
        let start = self.header.metadata_offset as usize;
        let end = start + self.header.metadata_len as usize;
        Metadata { bytes: self.bytes.get(start..end).unwrap_or(&[]) }
    }

    /// The section table in stored order.
    pub fn sections(&self) -> SectionIter<'a> {
        SectionIter { table: &self.bytes[HEADER_SIZE..self.header.table_end()], index: 0 }
    }

    /// A view of section `id`, or `None` if the blob has no such section.
    pub fn section(&self, id: u8) -> Option<Tensor<'a>> {
        let e = self.entry(id)?;
        let (start, end) = (e.offset as usize, e.offset as usize + e.len as usize);
        Tensor::new(DType::from_code(e.dtype_code).ok()?, e.rows as usize, e.cols as usize, self.bytes.get(start..end)?)
            .ok()
    }

    /// Block `j` of section `id` as the kind stores it ([`Kind::blocks`]): for the mixture kind's stacked
    /// `mu`, `u_t`, `lambda`, component `j`'s `1 x d`, `k x d`, `1 x k` tensor; for every other section
    /// (`j = 0`) the whole tensor, as [`Blob::section`]. Prefer this over [`Blob::section`] for stacked
    /// sections: an int8 stacked section is not one row-major int8 tensor (each block has its own scales).
    pub fn section_block(&self, id: u8, j: usize) -> Option<Tensor<'a>> {
        let blocks = self.header.kind.blocks(id, u64::from(self.header.num_sigmas));
        self.section(id)?.block(j, usize::try_from(blocks).ok()?)
    }

    /// Number of mixture components K (the header's L field for [`Kind::Mixture`]); 1 for other kinds.
    pub fn num_components(&self) -> usize {
        match self.header.kind {
            Kind::Mixture => self.header.num_sigmas as usize,
            _ => 1,
        }
    }

    /// The label of mixture component `j` from the metadata key [`format::LABELS_KEY`] (labels separated by
    /// `,`), if the blob names its components.
    pub fn component_label(&self, j: usize) -> Option<&'a str> {
        self.metadata().get(format::LABELS_KEY)?.split(',').nth(j)
    }

    /// The payload CRC stored in the header.
    pub fn stored_crc(&self) -> u32 {
        self.header.payload_crc
    }

    /// The CRC-32 of bytes `[64, total_len)` (computed on each call).
    pub fn computed_crc(&self) -> u32 {
        CRC32.checksum(&self.bytes[HEADER_SIZE..])
    }

    /// Whether the header CRC matches its first 60 bytes.
    pub fn header_checksum_ok(&self) -> bool {
        let b = self.bytes;
        format::rd_u32(b, format::header::HEADER_CRC) == CRC32.checksum(&b[..format::header::HEADER_CRC])
    }

    /// Whether both CRCs match (always true for a blob from [`Blob::parse`]).
    pub fn checksum_ok(&self) -> bool {
        self.header_checksum_ok() && self.computed_crc() == self.stored_crc()
    }
}
