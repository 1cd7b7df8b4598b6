//! Blob format v1: the single source of truth for magic, version, header layout, codes and limits,
//! shared by the reader ([`super::read`]) and the writer (`super::write`). Specified byte by byte in
//! `docs/blob-format.md`.
//!
//! ```text
//! offset  size  content
//! 0       64    header (HEADER_SIZE), all integers and floats little-endian
//! 64      20*n  section table: n = section_count entries of SECTION_ENTRY_SIZE bytes
//! ...           metadata area and tensor data, anywhere in [64 + 20*n, total_len), non-overlapping
//! ```
//!
//! Two CRC-32s (IEEE 802.3, `crc::CRC_32_ISO_HDLC`) protect a blob: the payload CRC covers every byte
//! after the header (`[HEADER_SIZE, total_len)`), the header CRC covers the header's first 60 bytes.

use crate::error::BlobError;
use crate::pixel::{ImageShape, PixelMap};

/// The four bytes every blob starts with.
pub const MAGIC: [u8; 4] = *b"GDN1";
/// The format version this crate reads and writes. Readers reject every other version.
pub const FORMAT_VERSION: u16 = 1;

/// The CRC used for both checksums: CRC-32/ISO-HDLC (the zlib/PNG/Ethernet CRC; poly 0x04C11DB7 reflected,
/// init 0xFFFFFFFF, xorout 0xFFFFFFFF; check value of `"123456789"` is 0xCBF43926).
pub const CRC32: crc::Crc<u32, CrcImpl> = crc::Crc::<u32, CrcImpl>::new(&crc::CRC_32_ISO_HDLC);

/// How [`CRC32`] is computed: through crc's 1 KB lookup table with the feature `crc-table` (on with `std`),
/// else bit by bit (crc's `NoTable` = `Table<0>`: the same values, about 1 KB less flash and several times
/// slower; the lean firmware's choice).
pub type CrcImpl = crc::Table<{ cfg!(feature = "crc-table") as usize }>;

/// Header layout: byte offsets of each field (all little-endian).
pub mod header {
    /// `[u8; 4]` [`super::MAGIC`].
    pub const MAGIC: usize = 0;
    /// `u16` format version.
    pub const VERSION: usize = 4;
    /// `u16` header size in bytes (64 in v1).
    pub const HEADER_SIZE: usize = 6;
    /// `u16` image channels.
    pub const CHANNELS: usize = 8;
    /// `u16` image height.
    pub const HEIGHT: usize = 10;
    /// `u16` image width.
    pub const WIDTH: usize = 12;
    /// `u8` denoiser kind ([`super::Kind`]).
    pub const KIND: usize = 14;
    /// `u8` reserved, must be 0.
    pub const RESERVED: usize = 15;
    /// `f32` pixel-map scale.
    pub const PIXEL_SCALE: usize = 16;
    /// `f32` pixel-map offset.
    pub const PIXEL_OFFSET: usize = 20;
    /// `u32` data dimension d.
    pub const DIM: usize = 24;
    /// `u32` rank k (0 for the dense linear kind).
    pub const RANK: usize = 28;
    /// `u32` number of sigma levels L (0 for the Gaussian kind); for the mixture kind the number of
    /// components K.
    pub const NUM_SIGMAS: usize = 32;
    /// `f32` isotropic floor c (0 for linear kinds).
    pub const FLOOR: usize = 36;
    /// `u32` number of section-table entries.
    pub const SECTION_COUNT: usize = 40;
    /// `u32` absolute byte offset of the metadata area.
    pub const METADATA_OFFSET: usize = 44;
    /// `u32` byte length of the metadata area.
    pub const METADATA_LEN: usize = 48;
    /// `u32` total blob length in bytes (header included).
    pub const TOTAL_LEN: usize = 52;
    /// `u32` CRC-32 of bytes `[HEADER_SIZE, total_len)`.
    pub const PAYLOAD_CRC: usize = 56;
    /// `u32` CRC-32 of bytes `[0, HEADER_CRC)`.
    pub const HEADER_CRC: usize = 60;
    /// End of the header.
    pub const END: usize = 64;
}

/// Size of the v1 header in bytes.
pub const HEADER_SIZE: usize = header::END;

/// Section-table entry layout: byte offsets within one entry.
pub mod entry {
    /// `u8` section id ([`super::section`]).
    pub const ID: usize = 0;
    /// `u8` element type code ([`crate::tensor::DType`]: 0 f32, 1 f16, 2 int8).
    pub const DTYPE: usize = 1;
    /// `u16` reserved, must be 0.
    pub const RESERVED: usize = 2;
    /// `u32` rows.
    pub const ROWS: usize = 4;
    /// `u32` columns.
    pub const COLS: usize = 8;
    /// `u32` absolute byte offset of the tensor data.
    pub const OFFSET: usize = 12;
    /// `u32` byte length of the tensor data (int8: data plus per-row f32 scales).
    pub const LEN: usize = 16;
    /// End of an entry.
    pub const END: usize = 20;
}

/// Size of one section-table entry in bytes.
pub const SECTION_ENTRY_SIZE: usize = entry::END;

/// The writer aligns every tensor's data (and the metadata area) to this many bytes from the blob start,
/// so a blob placed at an aligned address can be read with aligned loads. Readers accept any alignment.
pub const WRITER_ALIGN: usize = 16;

// Compile-time layout checks: fields are contiguous, naturally aligned and fill the header exactly.
const _: () = {
    assert!(header::VERSION == header::MAGIC + 4);
    assert!(header::HEADER_SIZE == header::VERSION + 2);
    assert!(header::CHANNELS == header::HEADER_SIZE + 2);
    assert!(header::HEIGHT == header::CHANNELS + 2);
    assert!(header::WIDTH == header::HEIGHT + 2);
    assert!(header::KIND == header::WIDTH + 2);
    assert!(header::RESERVED == header::KIND + 1);
    assert!(header::PIXEL_SCALE == header::RESERVED + 1);
    assert!(header::PIXEL_OFFSET == header::PIXEL_SCALE + 4);
    assert!(header::DIM == header::PIXEL_OFFSET + 4);
    assert!(header::RANK == header::DIM + 4);
    assert!(header::NUM_SIGMAS == header::RANK + 4);
    assert!(header::FLOOR == header::NUM_SIGMAS + 4);
    assert!(header::SECTION_COUNT == header::FLOOR + 4);
    assert!(header::METADATA_OFFSET == header::SECTION_COUNT + 4);
    assert!(header::METADATA_LEN == header::METADATA_OFFSET + 4);
    assert!(header::TOTAL_LEN == header::METADATA_LEN + 4);
    assert!(header::PAYLOAD_CRC == header::TOTAL_LEN + 4);
    assert!(header::HEADER_CRC == header::PAYLOAD_CRC + 4);
    assert!(header::END == header::HEADER_CRC + 4);
    assert!(HEADER_SIZE == 64);
    assert!(
        header::PIXEL_SCALE.is_multiple_of(4) && header::DIM.is_multiple_of(4) && header::HEADER_CRC.is_multiple_of(4)
    );
    assert!(entry::DTYPE == entry::ID + 1);
    assert!(entry::RESERVED == entry::DTYPE + 1);
    assert!(entry::ROWS == entry::RESERVED + 2);
    assert!(entry::COLS == entry::ROWS + 4);
    assert!(entry::OFFSET == entry::COLS + 4);
    assert!(entry::LEN == entry::OFFSET + 4);
    assert!(entry::END == entry::LEN + 4);
    assert!(SECTION_ENTRY_SIZE == 20);
    assert!(HEADER_SIZE.is_multiple_of(WRITER_ALIGN) && WRITER_ALIGN.is_power_of_two());
    // The largest possible section table and metadata area fit in a u32 blob with room to spare.
    assert!(HEADER_SIZE + MAX_SECTIONS * SECTION_ENTRY_SIZE + MAX_METADATA_BYTES < 1 << 16);
    // d = C*H*W fits: the biggest shape MAX_CHANNELS x 65535 x 65535 overflows u32, so DIM bounds it.
    assert!(MAX_RANK <= MAX_DIM && MAX_DIM <= u32::MAX as usize);
};

/// Limits a v1 reader enforces (and the writer refuses to exceed).
/// Largest data dimension d = channels * height * width (3 x 256 x 256 = 196,608 fits).
pub const MAX_DIM: usize = 1 << 18;
/// Largest rank k.
pub const MAX_RANK: usize = 4096;
/// Largest number of image channels.
pub const MAX_CHANNELS: usize = 4;
/// Largest number of sigma levels L of a linear denoiser.
pub const MAX_SIGMAS: usize = 256;
/// Metadata key naming a mixture's components: the K labels in component order, separated by `,` (so a
/// label contains no `,`), e.g. `0,1,2` or `s01,s02`.
pub const LABELS_KEY: &str = "component_labels";
/// Largest number of components K of a mixture (kind 4).
pub const MAX_COMPONENTS: usize = 256;
/// Largest number of section-table entries.
pub const MAX_SECTIONS: usize = 16;
/// Largest metadata area in bytes.
pub const MAX_METADATA_BYTES: usize = 4096;
/// Largest number of metadata entries.
pub const MAX_METADATA_ENTRIES: usize = 32;
/// Longest metadata key in bytes (keys are `[a-z0-9_.-]`, at least one byte).
pub const MAX_KEY_LEN: usize = 64;

/// Declares a table of `u8` ids once: each `NAME = id => "short name"` row becomes a `pub const NAME: u8`
/// (with the row's doc) and an arm of `pub const fn name(id: u8) -> &'static str` (with the `fn`'s doc),
/// which ends in the table's extra arms and then `"?"` for any other id.
macro_rules! id_table {
    (
        $(#[doc = $fn_doc:literal])*
        fn name { $($extra:pat => $extra_name:literal,)* }
        $($(#[doc = $doc:literal])* $id:ident = $code:literal => $name:literal,)*
    ) => {
        $($(#[doc = $doc])* pub const $id: u8 = $code;)*

        $(#[doc = $fn_doc])*
        pub const fn name(id: u8) -> &'static str {
            match id {
                $($id => $name,)*
                $($extra => $extra_name,)*
                _ => "?",
            }
        }
    };
}

// The field and section id tables are leaf files (no imports): `crate::error` names ids in its messages
// through them, while this module returns `BlobError`s, so the dependency runs one way only (format -> error
// -> format/{field, section}).
pub mod field;
pub mod section;

code_enum! {
    /// The denoiser a blob holds. The discriminant is the on-disk code. (A reader that predates a kind stops
    /// at the header's kind byte, in `from_code`, before reading anything kind-specific.)
    pub enum Kind, unknown code: UnknownKind {
        /// Optimal denoiser of a Gaussian, low rank `k` plus an isotropic floor `c` (sections MU, U_T, LAMBDA).
        Gaussian = 1 => "gaussian",
        /// Per-sigma dense affine maps `W_i x + b_i` (sections SIGMAS, W, B).
        LinearDense = 2 => "linear-dense",
        /// Per-sigma maps in a shared basis `U M_i U^T + a_i (I - U U^T)`, plus `b_i`
        /// (sections SIGMAS, U_T, M, A, B).
        LinearBasis = 3 => "linear-basis",
        /// A mixture of K Gaussians (each low rank `k` plus its own floor) with weights `pi_j`
        /// (sections MU, U_T, LAMBDA stacked per component in K blocks, WEIGHTS, FLOORS). K is stored in the
        /// header's L field.
        Mixture = 4 => "mixture",
    }
}

impl Kind {
    /// The sections this kind requires, in the order the writer stores them.
    pub const fn required_sections(self) -> &'static [u8] {
        match self {
            Self::Gaussian => &[section::MU, section::U_T, section::LAMBDA],
            Self::LinearDense => &[section::SIGMAS, section::W, section::B],
            Self::LinearBasis => &[section::SIGMAS, section::U_T, section::M, section::A, section::B],
            Self::Mixture => &[section::MU, section::U_T, section::LAMBDA, section::WEIGHTS, section::FLOORS],
        }
    }

    /// Number of equal blocks a section of this kind is stored in (`l` = the header's L field): the
    /// mixture's stacked `mu`, `u_t` and `lambda` hold one block per component, each block stored exactly
    /// like a standalone tensor of its rows (int8: the block's row scales right after its data), so
    /// component `j` is a plain view of bytes `[j len / K, (j + 1) len / K)`. 1 for everything else.
    pub const fn blocks(self, id: u8, l: u64) -> u64 {
        match (self, id) {
            (Self::Mixture, section::MU | section::U_T | section::LAMBDA) => l,
            _ => 1,
        }
    }

    /// The `(rows, cols)` a section of this kind must have, given `d`, `k`, `L`; `None` if the kind does not
    /// use the section. Computed in u64, so it cannot overflow for header values within the `MAX_*` limits.
    pub const fn expected_shape(self, id: u8, d: u64, k: u64, l: u64) -> Option<(u64, u64)> {
        match (self, id) {
            (Self::Gaussian, section::MU) => Some((1, d)),
            (Self::Gaussian, section::U_T) => Some((k, d)),
            (Self::Gaussian, section::LAMBDA) => Some((1, k)),
            (Self::LinearDense, section::SIGMAS) => Some((1, l)),
            (Self::LinearDense, section::W) => Some((l * d, d)),
            (Self::LinearDense, section::B) => Some((l, d)),
            (Self::LinearBasis, section::SIGMAS) => Some((1, l)),
            (Self::LinearBasis, section::U_T) => Some((k, d)),
            (Self::LinearBasis, section::M) => Some((l * k, k)),
            (Self::LinearBasis, section::A) => Some((1, l)),
            (Self::LinearBasis, section::B) => Some((l, d)),
            (Self::Mixture, section::MU) => Some((l, d)),
            (Self::Mixture, section::U_T) => Some((l * k, d)),
            (Self::Mixture, section::LAMBDA) => Some((l, k)),
            (Self::Mixture, section::WEIGHTS | section::FLOORS) => Some((1, l)),
            _ => None,
        }
    }
}

/// The decoded v1 header (the structure of bytes `[0, 64)`).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Header {
    /// Format version (always [`FORMAT_VERSION`] once parsed).
    pub version: u16,
    /// Image shape; `shape.dim() == dim`.
    pub shape: ImageShape,
    /// Pixel mapping from model values to 0..255.
    pub pixel: PixelMap,
    /// Denoiser kind.
    pub kind: Kind,
    /// Data dimension d.
    pub dim: u32,
    /// Rank k.
    pub rank: u32,
    /// Number of sigma levels L.
    pub num_sigmas: u32,
    /// Isotropic floor c.
    pub floor: f32,
    /// Number of section-table entries.
    pub section_count: u32,
    /// Absolute byte offset of the metadata area.
    pub metadata_offset: u32,
    /// Byte length of the metadata area.
    pub metadata_len: u32,
    /// Total blob length in bytes.
    pub total_len: u32,
    /// Stored CRC-32 of bytes `[64, total_len)`.
    pub payload_crc: u32,
    /// Stored CRC-32 of header bytes `[0, 60)`.
    pub header_crc: u32,
}

/// Little-endian `u16` at `at` (caller guarantees `at + 2 <= b.len()`).
pub(crate) fn rd_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Little-endian `u32` at `at` (caller guarantees `at + 4 <= b.len()`).
pub(crate) fn rd_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Little-endian `f32` at `at` (caller guarantees `at + 4 <= b.len()`).
pub(crate) fn rd_f32(b: &[u8], at: usize) -> f32 {
    f32::from_bits(rd_u32(b, at))
}

/// Saturating `usize -> u32` for error payloads.
pub(crate) fn sat_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Header {
    /// Decodes and validates the header fields of `bytes[..64]` (magic, version, header size, shape, pixel
    /// map, kind, d/k/L against the kind and the `MAX_*` limits, floor, section count, reserved byte).
    /// Does not check either CRC, nor anything after the header.
    ///
    /// # Errors
    /// In this order: [`BlobError::Truncated`] if fewer than 4 bytes, [`BlobError::BadMagic`],
    /// [`BlobError::Truncated`] if fewer than 64 bytes, [`BlobError::UnsupportedVersion`],
    /// [`BlobError::BadHeaderSize`], then [`BlobError::UnknownKind`], [`BlobError::BadField`],
    /// [`BlobError::LimitExceeded`] and [`BlobError::NonFinite`] for the individual fields.
    pub fn decode(bytes: &[u8]) -> Result<Self, BlobError> {
        Self::check_prefix(bytes)?;
        let b = &bytes[..HEADER_SIZE];
        let version = rd_u16(b, header::VERSION);
        let kind = Kind::from_code(b[header::KIND])?;
        if b[header::RESERVED] != 0 {
            return Err(BlobError::BadField { field: field::RESERVED, value: u32::from(b[header::RESERVED]) });
        }
        let shape = ImageShape {
            channels: rd_u16(b, header::CHANNELS),
            height: rd_u16(b, header::HEIGHT),
            width: rd_u16(b, header::WIDTH),
        };
        let pixel = PixelMap { scale: rd_f32(b, header::PIXEL_SCALE), offset: rd_f32(b, header::PIXEL_OFFSET) };
        let dim = rd_u32(b, header::DIM);
        let rank = rd_u32(b, header::RANK);
        let num_sigmas = rd_u32(b, header::NUM_SIGMAS);
        let floor = rd_f32(b, header::FLOOR);
        let h = Self {
            version,
            shape,
            pixel,
            kind,
            dim,
            rank,
            num_sigmas,
            floor,
            section_count: rd_u32(b, header::SECTION_COUNT),
            metadata_offset: rd_u32(b, header::METADATA_OFFSET),
            metadata_len: rd_u32(b, header::METADATA_LEN),
            total_len: rd_u32(b, header::TOTAL_LEN),
            payload_crc: rd_u32(b, header::PAYLOAD_CRC),
            header_crc: rd_u32(b, header::HEADER_CRC),
        };
        h.validate()?;
        Ok(h)
    }

    /// Checks what identifies a v1 blob: at least 4 bytes, the magic, at least 64 bytes, version 1, header
    /// size 64. After `Ok`, `bytes[..64]` may be indexed freely.
    ///
    /// # Errors
    /// [`BlobError::Truncated`], [`BlobError::BadMagic`], [`BlobError::UnsupportedVersion`],
    /// [`BlobError::BadHeaderSize`], in that order.
    pub fn check_prefix(bytes: &[u8]) -> Result<(), BlobError> {
        let available = sat_u32(bytes.len());
        if bytes.len() < 4 {
            return Err(BlobError::Truncated { needed: 4, available });
        }
        if bytes[..4] != MAGIC {
            return Err(BlobError::BadMagic { found: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) });
        }
        if bytes.len() < HEADER_SIZE {
            return Err(BlobError::Truncated { needed: HEADER_SIZE as u32, available });
        }
        let version = rd_u16(bytes, header::VERSION);
        if version != FORMAT_VERSION {
            return Err(BlobError::UnsupportedVersion { found: version });
        }
        let header_size = rd_u16(bytes, header::HEADER_SIZE);
        if usize::from(header_size) != HEADER_SIZE {
            return Err(BlobError::BadHeaderSize { found: u32::from(header_size) });
        }
        Ok(())
    }

    /// Checks the header's field values (everything [`Header::decode`] checks after the kind code).
    ///
    /// # Errors
    /// [`BlobError::LimitExceeded`], [`BlobError::BadField`] or [`BlobError::NonFinite`] naming the field.
    pub fn validate(&self) -> Result<(), BlobError> {
        let limit = |field: u8, value: u32, max: usize| {
            if value as usize > max {
                Err(BlobError::LimitExceeded { field, value, max: max as u32 })
            } else {
                Ok(())
            }
        };
        // d: 1..=MAX_DIM and equal to the image shape's product.
        if self.dim == 0 {
            return Err(BlobError::BadField { field: field::DIM, value: 0 });
        }
        limit(field::DIM, self.dim, MAX_DIM)?;
        let s = self.shape;
        if s.channels == 0 || usize::from(s.channels) > MAX_CHANNELS {
            return Err(BlobError::BadField { field: field::SHAPE, value: u32::from(s.channels) });
        }
        // In u64: C*H*W can overflow a 32-bit usize.
        let shape_dim = u64::from(s.channels) * u64::from(s.height) * u64::from(s.width);
        if shape_dim != u64::from(self.dim) {
            return Err(BlobError::BadField {
                field: field::SHAPE,
                value: u32::try_from(shape_dim).unwrap_or(u32::MAX),
            });
        }
        let p = self.pixel;
        if !p.scale.is_finite() || !p.offset.is_finite() {
            return Err(BlobError::NonFinite { field: field::PIXEL_MAP });
        }
        if p.scale == 0.0 {
            return Err(BlobError::BadField { field: field::PIXEL_MAP, value: p.scale.to_bits() });
        }
        // k <= min(d, MAX_RANK); the dense kind has no basis (k = 0).
        limit(field::RANK, self.rank, MAX_RANK)?;
        if self.rank > self.dim || (self.kind == Kind::LinearDense && self.rank != 0) {
            return Err(BlobError::BadField { field: field::RANK, value: self.rank });
        }
        if self.kind == Kind::LinearBasis && self.rank == 0 {
            return Err(BlobError::BadField { field: field::RANK, value: 0 });
        }
        // L: 0 for the Gaussian, 1..=MAX_SIGMAS for linear kinds.
        match self.kind {
            Kind::Gaussian if self.num_sigmas != 0 => {
                return Err(BlobError::BadField { field: field::NUM_SIGMAS, value: self.num_sigmas });
            }
            Kind::LinearDense | Kind::LinearBasis => {
                limit(field::NUM_SIGMAS, self.num_sigmas, MAX_SIGMAS)?;
                if self.num_sigmas == 0 {
                    return Err(BlobError::BadField { field: field::NUM_SIGMAS, value: 0 });
                }
            }
            Kind::Mixture => {
                limit(field::COMPONENTS, self.num_sigmas, MAX_COMPONENTS)?;
                if self.num_sigmas == 0 {
                    return Err(BlobError::BadField { field: field::COMPONENTS, value: 0 });
                }
            }
            Kind::Gaussian => {}
        }
        // c: finite and >= 0; exactly 0 for linear kinds (they have no floor) and for mixtures (one floor per
        // component, in FLOORS).
        if !self.floor.is_finite() {
            return Err(BlobError::NonFinite { field: field::FLOOR });
        }
        if self.floor < 0.0 || (self.kind != Kind::Gaussian && self.floor != 0.0) {
            return Err(BlobError::BadField { field: field::FLOOR, value: self.floor.to_bits() });
        }
        limit(field::NUM_SECTIONS, self.section_count, MAX_SECTIONS)?;
        limit(field::METADATA, self.metadata_len, MAX_METADATA_BYTES)?;
        if (self.total_len as usize) < self.table_end() {
            return Err(BlobError::BadField { field: field::TOTAL_LEN, value: self.total_len });
        }
        Ok(())
    }

    /// First byte after the section table: `64 + 20 * section_count` (saturating, so an unvalidated header
    /// cannot overflow a 32-bit `usize`).
    pub fn table_end(&self) -> usize {
        SECTION_ENTRY_SIZE.saturating_mul(self.section_count as usize).saturating_add(HEADER_SIZE)
    }

    /// Encodes the header into its 64 bytes, computing the header CRC over bytes `[0, 60)` (the stored
    /// `header_crc` field is ignored). `payload_crc` is written as given. Does not validate.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[header::MAGIC..header::MAGIC + 4].copy_from_slice(&MAGIC);
        b[header::VERSION..header::VERSION + 2].copy_from_slice(&self.version.to_le_bytes());
        b[header::HEADER_SIZE..header::HEADER_SIZE + 2].copy_from_slice(&(HEADER_SIZE as u16).to_le_bytes());
        b[header::CHANNELS..header::CHANNELS + 2].copy_from_slice(&self.shape.channels.to_le_bytes());
        b[header::HEIGHT..header::HEIGHT + 2].copy_from_slice(&self.shape.height.to_le_bytes());
        b[header::WIDTH..header::WIDTH + 2].copy_from_slice(&self.shape.width.to_le_bytes());
        b[header::KIND] = self.kind as u8;
        b[header::RESERVED] = 0;
        let words: [(usize, u32); 12] = [
            (header::PIXEL_SCALE, self.pixel.scale.to_bits()),
            (header::PIXEL_OFFSET, self.pixel.offset.to_bits()),
            (header::DIM, self.dim),
            (header::RANK, self.rank),
            (header::NUM_SIGMAS, self.num_sigmas),
            (header::FLOOR, self.floor.to_bits()),
            (header::SECTION_COUNT, self.section_count),
            (header::METADATA_OFFSET, self.metadata_offset),
            (header::METADATA_LEN, self.metadata_len),
            (header::TOTAL_LEN, self.total_len),
            (header::PAYLOAD_CRC, self.payload_crc),
            (header::HEADER_CRC, 0),
        ];
        for (at, w) in words {
            b[at..at + 4].copy_from_slice(&w.to_le_bytes());
        }
        let crc = CRC32.checksum(&b[..header::HEADER_CRC]);
        b[header::HEADER_CRC..header::END].copy_from_slice(&crc.to_le_bytes());
        b
    }
}

/// One decoded section-table entry (not yet checked against the blob).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SectionEntry {
    /// Section id ([`section`]).
    pub id: u8,
    /// Element type code (0 f32, 1 f16, 2 int8).
    pub dtype_code: u8,
    /// Reserved, must be 0.
    pub reserved: u16,
    /// Rows.
    pub rows: u32,
    /// Columns.
    pub cols: u32,
    /// Absolute byte offset of the data.
    pub offset: u32,
    /// Byte length of the data.
    pub len: u32,
}

impl SectionEntry {
    /// Decodes the 20 bytes of `b[..20]` (caller guarantees the length).
    pub(crate) fn decode(b: &[u8]) -> Self {
        Self {
            id: b[entry::ID],
            dtype_code: b[entry::DTYPE],
            reserved: rd_u16(b, entry::RESERVED),
            rows: rd_u32(b, entry::ROWS),
            cols: rd_u32(b, entry::COLS),
            offset: rd_u32(b, entry::OFFSET),
            len: rd_u32(b, entry::LEN),
        }
    }

    /// The 20 on-disk bytes of this entry.
    pub fn encode(&self) -> [u8; SECTION_ENTRY_SIZE] {
        let mut b = [0u8; SECTION_ENTRY_SIZE];
        b[entry::ID] = self.id;
        b[entry::DTYPE] = self.dtype_code;
        b[entry::RESERVED..entry::RESERVED + 2].copy_from_slice(&self.reserved.to_le_bytes());
        b[entry::ROWS..entry::ROWS + 4].copy_from_slice(&self.rows.to_le_bytes());
        b[entry::COLS..entry::COLS + 4].copy_from_slice(&self.cols.to_le_bytes());
        b[entry::OFFSET..entry::OFFSET + 4].copy_from_slice(&self.offset.to_le_bytes());
        b[entry::LEN..entry::LEN + 4].copy_from_slice(&self.len.to_le_bytes());
        b
    }
}

/// Whether `key` is a valid metadata key: 1..=[`MAX_KEY_LEN`] bytes of `[a-z0-9_.-]`.
pub fn valid_key(key: &[u8]) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_the_ieee_crc32() {
        assert_eq!(CRC32.checksum(b"123456789"), 0xCBF4_3926);
    }

    /// Both implementations `CrcImpl` can be (the lookup table, and bit by bit without `crc-table`) give the
    /// same values, on every length and alignment of a pseudo-random buffer.
    #[test]
    fn crc_without_the_table_gives_the_same_values() {
        let bitwise = crc::Crc::<u32, crc::NoTable>::new(&crc::CRC_32_ISO_HDLC);
        let table = crc::Crc::<u32, crc::Table<1>>::new(&crc::CRC_32_ISO_HDLC);
        let mut state = 0x2545_f491_u32;
        let bytes: std::vec::Vec<u8> = (0..1000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect();
        for start in 0..4 {
            for end in (start..bytes.len()).step_by(37) {
                let b = &bytes[start..end];
                assert_eq!(bitwise.checksum(b), table.checksum(b));
                assert_eq!(CRC32.checksum(b), table.checksum(b));
            }
        }
    }

    #[test]
    fn header_encode_decode_round_trip() {
        let h = Header {
            version: FORMAT_VERSION,
            shape: ImageShape { channels: 1, height: 28, width: 28 },
            pixel: PixelMap::EDM,
            kind: Kind::Gaussian,
            dim: 784,
            rank: 64,
            num_sigmas: 0,
            floor: 0.25,
            section_count: 3,
            metadata_offset: 128,
            metadata_len: 10,
            total_len: 4096,
            payload_crc: 0xDEAD_BEEF,
            header_crc: 0,
        };
        let b = h.encode();
        let back = Header::decode(&b).unwrap();
        assert_eq!(back.header_crc, CRC32.checksum(&b[..60]));
        assert_eq!(Header { header_crc: back.header_crc, ..h }, back);
    }
}
