//! The reader a streaming download hands to its consumer: every byte read from the response
//! body is written to the blob's temporary file and hashed on the way. At the end of the body
//! it checks size and digest; when they are wrong (or the body ended early, or the blob could
//! not be written) that read fails, so a consumer that reads to the end (an unpack) fails
//! before it commits anything.

use std::io::{self, Read, Write};

use crate::digest::Digest;
use crate::store::BlobWriter;

/// How the stream went.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Not at the end yet.
    Reading,
    /// All bytes in, size and digest right.
    Verified,
    /// The body ended or failed before the descriptor's size.
    Truncated,
    /// All bytes in, wrong digest.
    Mismatch { actual: Digest },
    /// Writing the blob failed (a full disk...).
    WriteFailed(io::Error),
}

pub(crate) struct Tee<'a, R> {
    body: R,
    blob: &'a mut BlobWriter,
    expected_size: u64,
    received: u64,
    outcome: Outcome,
    progress: &'a dyn Fn(u64),
}

impl<'a, R: Read> Tee<'a, R> {
    /// `body` must already be limited to `expected_size` bytes.
    pub(crate) fn new(
        body: R,
        blob: &'a mut BlobWriter,
        expected_size: u64,
        progress: &'a dyn Fn(u64),
    ) -> Self {
        Tee {
            body,
            blob,
            expected_size,
            received: 0,
            outcome: Outcome::Reading,
            progress,
        }
    }

    /// Reads what the consumer left, so the outcome is final, and returns it with the number
    /// of bytes received.
    pub(crate) fn finish(mut self) -> (Outcome, u64) {
        // Errors are recorded in the outcome.
        let _ = io::copy(&mut self, &mut io::sink());
        if matches!(self.outcome, Outcome::Reading) {
            self.reached_end();
        }
        (self.outcome, self.received)
    }

    fn reached_end(&mut self) {
        self.outcome = if self.received < self.expected_size {
            Outcome::Truncated
        } else {
            let actual = self.blob.digest();
            if actual == *self.blob.expected() {
                Outcome::Verified
            } else {
                Outcome::Mismatch { actual }
            }
        };
    }

    /// The recorded failure as an error for the consumer.
    fn failure(&self) -> io::Error {
        let expected = self.blob.expected();
        match &self.outcome {
            Outcome::Truncated => io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "blob {expected}: truncated download: got {} of {} bytes",
                    self.received, self.expected_size
                ),
            ),
            Outcome::Mismatch { actual } => io::Error::new(
                io::ErrorKind::InvalidData,
                format!("blob {expected}: digest mismatch: got {actual}"),
            ),
            Outcome::WriteFailed(e) => {
                io::Error::new(e.kind(), format!("blob {expected}: storing it: {e}"))
            }
            Outcome::Reading | Outcome::Verified => io::Error::other("no failure"),
        }
    }
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.outcome {
            Outcome::Reading => {}
            Outcome::Verified => return Ok(0),
            _ => return Err(self.failure()),
        }
        let n = match self.body.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(_) => {
                self.outcome = Outcome::Truncated;
                return Err(self.failure());
            }
        };
        if n == 0 {
            self.reached_end();
            return match self.outcome {
                Outcome::Verified => Ok(0),
                _ => Err(self.failure()),
            };
        }
        if let Err(e) = self.blob.write_all(&buf[..n]) {
            self.outcome = Outcome::WriteFailed(e);
            return Err(self.failure());
        }
        self.received += n as u64;
        (self.progress)(self.received);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::BlobStore;

    fn run(data: &[u8], expected: &[u8], consume: usize) -> (Outcome, Vec<u8>) {
        let root = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(root.path()).expect("store");
        let digest = Digest::of(expected);
        let mut writer = store
            .writer(&digest, Some(expected.len() as u64))
            .expect("writer");
        let progress = |_| {};
        let mut tee = Tee::new(data, &mut writer, expected.len() as u64, &progress);
        let mut seen = vec![0; consume];
        let n = tee.read(&mut seen).expect("first read");
        seen.truncate(n);
        (tee.finish().0, seen)
    }

    #[test]
    fn outcomes() {
        let (outcome, seen) = run(b"abcdef", b"abcdef", 3);
        assert!(matches!(outcome, Outcome::Verified), "{outcome:?}");
        assert_eq!(seen, b"abc");
        let (outcome, _) = run(b"abc", b"abcdef", 3);
        assert!(matches!(outcome, Outcome::Truncated), "{outcome:?}");
        let (outcome, _) = run(b"abcdeX", b"abcdef", 3);
        assert!(matches!(outcome, Outcome::Mismatch { .. }), "{outcome:?}");
    }

    #[test]
    fn the_last_read_fails_on_a_mismatch() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(root.path()).expect("store");
        let digest = Digest::of(b"right");
        let mut writer = store.writer(&digest, Some(5)).expect("writer");
        let progress = |_| {};
        let mut tee = Tee::new(&b"wrong"[..], &mut writer, 5, &progress);
        let mut all = Vec::new();
        let err = tee.read_to_end(&mut all).expect_err("mismatch");
        assert_eq!(all, b"wrong");
        assert!(err.to_string().contains("digest mismatch"), "{err}");
        assert!(tee.read(&mut [0; 4]).is_err(), "keeps failing");
    }
}
