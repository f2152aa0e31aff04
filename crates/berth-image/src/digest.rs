//! Content digests (`sha256:<64 hex>`): parsing, computing while streaming.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// Errors from parsing a digest string.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("invalid digest {input:?}: expected \"algorithm:hex\"")]
    MissingAlgorithm { input: String },
    #[error("invalid digest {input:?}: unsupported algorithm {algorithm:?} (only sha256)")]
    UnsupportedAlgorithm { input: String, algorithm: String },
    #[error("invalid digest {input:?}: sha256 needs 64 lowercase hex characters")]
    BadHex { input: String },
}

/// A validated sha256 digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self::from_hasher(Sha256::new_with_prefix(data))
    }

    fn from_hasher(hasher: Sha256) -> Self {
        Digest {
            hex: hex::encode(hasher.finalize()),
        }
    }

    /// The 64 lowercase hex characters, without the `sha256:` prefix.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Always `sha256`.
    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (algorithm, hex) =
            input
                .split_once(':')
                .ok_or_else(|| DigestError::MissingAlgorithm {
                    input: input.to_owned(),
                })?;
        if algorithm != "sha256" {
            return Err(DigestError::UnsupportedAlgorithm {
                input: input.to_owned(),
                algorithm: algorithm.to_owned(),
            });
        }
        let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !valid {
            return Err(DigestError::BadHex {
                input: input.to_owned(),
            });
        }
        Ok(Digest {
            hex: hex.to_owned(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A writer that hashes and counts everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The digest of what was written so far.
    pub fn digest(&self) -> Digest {
        Digest::from_hasher(self.hasher.clone())
    }

    /// The inner writer, the digest of what was written, and its length.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest::from_hasher(self.hasher), self.written)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digest_of_empty_input() {
        assert_eq!(Digest::of(b"").to_string(), EMPTY);
    }

    #[test]
    fn parse_round_trips_and_rejects_bad_input() {
        assert_eq!(
            EMPTY.parse::<Digest>().map(|d| d.to_string()),
            Ok(EMPTY.to_owned())
        );
        let bad = [
            ("e3b0c442", "expected \"algorithm:hex\""),
            ("sha512:abcd", "unsupported algorithm \"sha512\""),
            ("sha256:abcd", "64 lowercase hex"),
            (
                &EMPTY.to_uppercase().replace("SHA256", "sha256"),
                "64 lowercase hex",
            ),
        ];
        for (input, message) in bad {
            let err = input.parse::<Digest>().expect_err(input).to_string();
            assert!(err.contains(message), "{input}: {err}");
        }
    }

    #[test]
    fn hashing_writer_matches_digest_of() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello ")
            .and_then(|()| w.write_all(b"world"))
            .expect("write");
        let (buf, digest, len) = w.finish();
        assert_eq!((digest, len), (Digest::of(b"hello world"), 11));
        assert_eq!(buf, b"hello world");
    }
}
