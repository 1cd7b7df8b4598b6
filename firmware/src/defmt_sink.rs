//! An [`embedded_io::Write`] byte sink that prints whole lines through defmt (RTT): protocol lines arrive
//! intact in `probe-rs run` output, which the frame decoder reads despite any log prefix.

use gaussdiff_core::frame::LINE_CAPACITY;

/// Collects bytes up to a newline, then `defmt::println!`s the line.
#[derive(Debug)]
pub struct DefmtLines {
    buf: heapless::Vec<u8, { LINE_CAPACITY + 1 }>,
}

impl DefmtLines {
    pub const fn new() -> Self {
        Self { buf: heapless::Vec::new() }
    }

    fn flush_line(&mut self) {
        let line = core::str::from_utf8(&self.buf).unwrap_or("@GDF1 error non-UTF-8 output");
        defmt::println!("{=str}", line);
        self.buf.clear();
    }
}

impl embedded_io::ErrorType for DefmtLines {
    type Error = core::convert::Infallible;
}

impl embedded_io::Write for DefmtLines {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        for &b in buf {
            if b == b'\n' {
                self.flush_line();
            } else {
                if self.buf.push(b).is_err() {
                    self.flush_line();
                    let _ = self.buf.push(b);
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        if !self.buf.is_empty() {
            self.flush_line();
        }
        Ok(())
    }
}
