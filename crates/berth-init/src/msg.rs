//! One-line messages, `berth-init: step: cause`, built in a fixed buffer and written with one
//! `write(2)`: no allocation and no `core::fmt`, which would dwarf the rest of the binary.

use berth_sys::rt::{self, Errno};
use core::ffi::CStr;

/// A message being built; too long a one is cut (with `...`) rather than split.
pub struct Msg {
    buf: [u8; 4096],
    len: usize,
}

impl Default for Msg {
    fn default() -> Self {
        Msg::new()
    }
}

impl Msg {
    /// An empty message.
    pub const fn new() -> Msg {
        Msg {
            buf: [0; 4096],
            len: 0,
        }
    }

    /// Appends bytes.
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Msg {
        // Room is kept for "...\n".
        let room = self.buf.len() - 4 - self.len;
        let take = bytes.len().min(room);
        if let Some(dst) = self.buf.get_mut(self.len..self.len + take) {
            dst.copy_from_slice(bytes.get(..take).unwrap_or_default());
            self.len += take;
        }
        if take < bytes.len() {
            self.bytes_unchecked(b"...");
        }
        self
    }

    fn bytes_unchecked(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            dst.copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }

    /// Appends text.
    pub fn str(&mut self, s: &str) -> &mut Msg {
        self.bytes(s.as_bytes())
    }

    /// Appends a C string (as bytes, whatever their encoding).
    pub fn cstr(&mut self, s: &CStr) -> &mut Msg {
        self.bytes(s.to_bytes())
    }

    /// Appends a decimal number.
    pub fn int(&mut self, n: i64) -> &mut Msg {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut v = n.unsigned_abs();
        loop {
            i -= 1;
            if let Some(d) = digits.get_mut(i) {
                *d = b'0' + (v % 10) as u8;
            }
            v /= 10;
            if v == 0 || i == 0 {
                break;
            }
        }
        if n < 0 {
            self.str("-");
        }
        self.bytes(digits.get(i..).unwrap_or_default())
    }

    /// Appends an error's text: glibc's `strerror` text, or `errno N`.
    pub fn errno(&mut self, e: Errno) -> &mut Msg {
        match e.desc() {
            Some(text) => self.str(text),
            None => self.str("errno ").int(e.0.into()),
        }
    }

    /// The text so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// Writes the message and a newline to `fd` in one `write`.
    pub fn write_line(&mut self, fd: i32) {
        self.bytes_unchecked(b"\n");
        rt::write_all(fd, self.as_bytes());
    }

    /// Writes `berth-init: ` and the message to stderr.
    pub fn error(&mut self) {
        let mut line = Msg::new();
        line.str("berth-init: ").bytes(self.as_bytes());
        line.write_line(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_text() {
        let mut m = Msg::new();
        m.str("exec ")
            .cstr(c"x")
            .str(": ")
            .errno(Errno::NOENT)
            .str(" ")
            .int(-42)
            .str(" ")
            .int(0)
            .str(" ")
            .errno(Errno(4000));
        assert_eq!(
            m.as_bytes(),
            b"exec x: No such file or directory -42 0 errno 4000"
        );
    }

    #[test]
    fn cuts_what_does_not_fit() {
        let mut m = Msg::new();
        m.bytes(&[b'a'; 5000]);
        assert_eq!(m.as_bytes().len(), 4095);
        assert!(m.as_bytes().ends_with(b"a..."));
    }
}
