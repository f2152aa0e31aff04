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

/// Size of the buffers [`overlapped`] hands over.
const CHUNK: usize = 1 << 20;
/// Chunks in flight between the reading thread and the consumer.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Run `consume` on a thread of its own, handing it what this thread reads from `source` in
/// 1 MiB chunks: reading (inflating a layer) and consuming (writing its files) then overlap, as
/// `tar -xzf` and its `gzip` child do. Reading stops at the end of `source`, at its first error
/// (which `consume` then reads), or once `consume` has returned; what `source` still holds is
/// left to the caller. `source` itself never leaves this thread (it need not be `Send`).
pub fn overlapped<R: Read, T: Send>(
    source: &mut R,
    consume: impl FnOnce(&mut Chunks) -> T + Send,
) -> T {
    let (full_tx, full_rx) = mpsc::sync_channel(CHUNKS_IN_FLIGHT);
    let (empty_tx, empty_rx) = mpsc::channel();
    std::thread::scope(|scope| {
        let consumer = scope.spawn(move || {
            consume(&mut Chunks {
                full: full_rx,
                empty: empty_tx,
                current: Vec::new(),
                pos: 0,
                done: false,
            })
        });
        pump(source, &full_tx, &empty_rx);
        drop(full_tx);
        consumer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The consuming end of [`overlapped`]: the bytes read on the other thread, in order.
pub struct Chunks {
    full: Receiver<io::Result<Vec<u8>>>,
    empty: Sender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Chunks {
    /// Make `current` hold unread bytes, unless the stream is over.
    fn refill(&mut self) -> io::Result<()> {
        while self.pos == self.current.len() && !self.done {
            match self.full.recv() {
                Ok(Ok(chunk)) => {
                    let used = std::mem::replace(&mut self.current, chunk);
                    self.pos = 0;
                    // The reader may have finished; then the buffer is simply dropped.
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

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.refill()?;
        let available = &self.current[self.pos..];
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.pos += n;
        Ok(n)
    }
}

/// The reading side: fill chunks (recycled ones when available) and send them on, until the
/// end of the stream, an error, or a consumer that went away.
fn pump<R: Read>(inner: &mut R, full: &SyncSender<io::Result<Vec<u8>>>, empty: &Receiver<Vec<u8>>) {
    loop {
        let mut chunk = empty.try_recv().unwrap_or_default();
        chunk.resize(CHUNK, 0);
        let filled = match fill_chunk(inner, &mut chunk) {
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
