//! A reader that computes the sha256 digest of everything read through it (a layer's diffID).

use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// Hashes the bytes it passes on.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// `sha256:<hex>` of what was read so far.
    pub(crate) fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_what_was_read() {
        let mut reader = HashingReader::new(&b"hello world"[..]);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).expect("read");
        assert_eq!(
            reader.digest(),
            "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }
}
