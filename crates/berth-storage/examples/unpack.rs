//! Unpack one layer file into a new directory, as `berth` would: the benchmark driver of
//! `bench/unpack`.
//!
//! ```text
//! unpack LAYER TARGET    # TARGET is created if missing; it should be empty
//! ```
//!
//! The layer may be gzip, zstd or plain tar (sniffed by magic bytes); it is decompressed on a
//! this thread while another writes the files ([`berth_storage::overlapped`]), as the layer store
//! does for every layer it unpacks.
//! Prints the entry and byte counts to stderr.

use std::error::Error;
use std::fs::File;
use std::io::BufReader;
use std::os::fd::AsFd;
use std::path::PathBuf;

use berth_storage::{decompressed, overlapped, unpack, UnpackOptions};

/// Read buffer for the compressed stream.
const READ_BUFFER: usize = 1 << 20;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(layer), Some(target), None) = (args.next(), args.next(), args.next()) else {
        return Err("usage: unpack LAYER TARGET".into());
    };
    let (layer, target) = (PathBuf::from(layer), PathBuf::from(target));
    let file = File::open(&layer).map_err(|e| format!("opening {}: {e}", layer.display()))?;
    std::fs::create_dir_all(&target).map_err(|e| format!("creating {}: {e}", target.display()))?;
    let dir = File::open(&target).map_err(|e| format!("opening {}: {e}", target.display()))?;
    let mut stream = decompressed(BufReader::with_capacity(READ_BUFFER, file))?;
    let options = UnpackOptions::default();
    let stats = overlapped(&mut stream, |chunks| unpack(dir.as_fd(), chunks, &options))?;
    eprintln!("unpack: {} entries, {} bytes", stats.entries, stats.bytes);
    Ok(())
}
