//! An [`embedded_io::Write`] byte sink that prints whole lines through defmt (RTT): protocol lines arrive
//! intact in `probe-rs run` output, which the frame decoder reads despite any log prefix.

use gaussdiff_core::frame::LINE_CAPACITY;

/// Collects bytes up to a newline, then `defmt::println!`s the line.
#[derive(Debug)]
pub struct DefmtLines {
    buf: [u8; LINE_CAPACITY + 1],
    len: usize,
}

impl DefmtLines {
    pub const fn new() -> Self {
        Self { buf: [0; LINE_CAPACITY + 1], len: 0 }
    }

    fn flush_line(&mut self) {
        let line = core::str::from_utf8(&self.buf[..self.len]).unwrap_or("@GDF1 error non-UTF-8 output");
        defmt::println!("{=str}", line);
        self.len = 0;
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
                if self.len == self.buf.len() {
                    self.flush_line();
                }
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        if self.len > 0 {
            self.flush_line();
        }
        Ok(())
    }
}
