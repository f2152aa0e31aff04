//! Sniffing a layer's compression from its magic bytes and wrapping the reader to decompress it.

use std::io::{self, BufRead, Read};

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// The compression of a layer stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip (one or more members).
    Gzip,
    /// zstd.
    Zstd,
}

/// A reader that yields the uncompressed tar stream.
pub enum Decompressed<R: BufRead> {
    /// Passed through as is.
    Plain(R),
    /// Decompressed with gzip.
    Gzip(flate2::bufread::MultiGzDecoder<R>),
    /// Decompressed with zstd.
    Zstd(zstd::stream::read::Decoder<'static, R>),
}

impl<R: BufRead> Decompressed<R> {
    /// Which compression the stream turned out to have.
    pub fn compression(&self) -> Compression {
        match self {
            Decompressed::Plain(_) => Compression::None,
            Decompressed::Gzip(_) => Compression::Gzip,
            Decompressed::Zstd(_) => Compression::Zstd,
        }
    }
}

impl<R: BufRead> Read for Decompressed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decompressed::Plain(r) => r.read(buf),
            Decompressed::Gzip(r) => r.read(buf),
            Decompressed::Zstd(r) => r.read(buf),
        }
    }
}

/// Look at the first bytes of `reader` (without consuming them) and wrap it in the matching
/// decompressor: gzip, zstd, or none.
pub fn decompressed<R: BufRead>(mut reader: R) -> io::Result<Decompressed<R>> {
    let head = fill_at_least(&mut reader, ZSTD_MAGIC.len())?;
    if head.starts_with(GZIP_MAGIC) {
        Ok(Decompressed::Gzip(flate2::bufread::MultiGzDecoder::new(
            reader,
        )))
    } else if head.starts_with(ZSTD_MAGIC) {
        Ok(Decompressed::Zstd(
            zstd::stream::read::Decoder::with_buffer(reader)?,
        ))
    } else {
        Ok(Decompressed::Plain(reader))
    }
}

/// The buffered head of `reader`; a single `fill_buf` may return fewer bytes than the magic,
/// but any `BufReader` with a sane capacity returns at least `want` unless the stream is shorter.
fn fill_at_least<R: BufRead>(reader: &mut R, want: usize) -> io::Result<Vec<u8>> {
    let buf = reader.fill_buf()?;
    Ok(buf[..buf.len().min(want)].to_vec())
}
