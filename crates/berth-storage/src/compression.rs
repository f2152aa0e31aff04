//! Sniffing a layer's compression from its magic bytes and wrapping the reader to decompress it.

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};

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
    /// Decompressed with gzip (boxed: zlib-rs keeps its state inline).
    Gzip(Box<flate2::bufread::MultiGzDecoder<R>>),
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
        Ok(Decompressed::Gzip(Box::new(
            flate2::bufread::MultiGzDecoder::new(reader),
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

/// Size of the buffers [`decompressed_in_thread`] hands over.
const CHUNK: usize = 1 << 20;
/// Chunks in flight between the decompressing thread and the reader.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Like [`decompressed`], but decompressing on a thread of its own, a few 1 MiB chunks ahead of
/// the reader: unpacking a layer then inflates and writes files at the same time, as
/// `tar -xzf` does with its `gzip` child. The thread stops at the end of the stream, at the
/// first error (which the reader then returns), or when the reader is dropped.
pub fn decompressed_in_thread<R: BufRead + Send + 'static>(
    reader: R,
) -> io::Result<InflatingThread> {
    let inner = decompressed(reader)?;
    let compression = inner.compression();
    let (full_tx, full_rx) = mpsc::sync_channel(CHUNKS_IN_FLIGHT);
    let (empty_tx, empty_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("berth-inflate".to_owned())
        .spawn(move || pump(inner, &full_tx, &empty_rx))?;
    Ok(InflatingThread {
        compression,
        full: full_rx,
        empty: empty_tx,
        current: Vec::new(),
        pos: 0,
        done: false,
    })
}

/// The reading end of [`decompressed_in_thread`].
pub struct InflatingThread {
    compression: Compression,
    full: Receiver<io::Result<Vec<u8>>>,
    empty: Sender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
}

impl InflatingThread {
    /// Which compression the stream turned out to have.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Make `current` hold unread bytes, unless the stream is over.
    fn refill(&mut self) -> io::Result<()> {
        while self.pos == self.current.len() && !self.done {
            match self.full.recv() {
                Ok(Ok(chunk)) => {
                    let used = std::mem::replace(&mut self.current, chunk);
                    self.pos = 0;
                    // The thread may have finished; then the buffer is simply dropped.
                    let _ = self.empty.send(used);
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => self.done = true,
            }
        }
        Ok(())
    }
}

impl Read for InflatingThread {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.refill()?;
        let available = &self.current[self.pos..];
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl BufRead for InflatingThread {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.refill()?;
        Ok(&self.current[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.current.len());
    }
}

/// The decompressing thread: fill chunks (recycled ones when available) and send them on,
/// until the end of the stream, an error, or a reader that went away.
fn pump<R: BufRead>(
    mut inner: Decompressed<R>,
    full: &SyncSender<io::Result<Vec<u8>>>,
    empty: &Receiver<Vec<u8>>,
) {
    loop {
        let mut chunk = empty.try_recv().unwrap_or_default();
        chunk.resize(CHUNK, 0);
        let filled = match fill_chunk(&mut inner, &mut chunk) {
            Ok(n) => n,
            Err(e) => {
                let _ = full.send(Err(e));
                return;
            }
        };
        if filled == 0 {
            return;
        }
        chunk.truncate(filled);
        if full.send(Ok(chunk)).is_err() {
            return;
        }
    }
}

/// Read into `chunk` until it is full or the stream ends; the number of bytes read.
fn fill_chunk(reader: &mut impl Read, chunk: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < chunk.len() {
        match reader.read(&mut chunk[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
