//! Reading what Berth needs from a tar entry's header and PAX records into plain values.

use std::io::{self, Read};

use super::error::UnpackError;

/// PAX records carrying extended attributes (the format GNU tar and docker write).
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";

/// What kind of node an entry creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file with contents.
    File,
    /// A directory.
    Dir,
    /// A symlink.
    Symlink,
    /// A hard link to an earlier entry.
    HardLink,
    /// A character device.
    Char,
    /// A block device.
    Block,
    /// A named pipe.
    Fifo,
}

/// Ownership, permissions and time of an entry.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    /// Permission bits including setuid/setgid/sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, seconds and nanoseconds since the epoch.
    pub mtime: (i64, u32),
}

/// Everything about an entry except its contents.
#[derive(Debug)]
pub struct Header {
    /// The name as written in the stream (for error messages).
    pub name: String,
    /// The raw name bytes.
    pub raw_path: Vec<u8>,
    /// The node kind.
    pub kind: Kind,
    /// Link target for symlinks and hard links.
    pub link: Option<Vec<u8>>,
    /// Size of the contents.
    pub size: u64,
    /// Metadata.
    pub meta: Meta,
    /// (major, minor) for devices.
    pub device: (u32, u32),
    /// Extended attributes from PAX `SCHILY.xattr.*` records.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// PAX records that override the ustar header.
#[derive(Default)]
struct PaxOverrides {
    uid: Option<u32>,
    gid: Option<u32>,
    mtime: Option<(i64, u32)>,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// Read the header of `entry`. Returns `Ok(None)` for entries that carry nothing to unpack
/// (PAX global headers).
pub fn read<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Option<Header>, UnpackError> {
    let raw_path = entry.path_bytes().into_owned();
    let name = String::from_utf8_lossy(&raw_path).into_owned();
    let bad = |field: &'static str| {
        let name = name.clone();
        move |source: io::Error| UnpackError::Header {
            entry: name,
            field,
            source,
        }
    };
    let Some(kind) = kind_of(entry.header().entry_type(), &name)? else {
        return Ok(None);
    };
    let pax = pax_overrides(entry).map_err(bad("pax records"))?;
    let h = entry.header();
    let old = h.as_old();
    let meta = Meta {
        mode: or_zero(&old.mode, h.mode().map(u64::from)).map_err(bad("mode"))? as u32 & 0o7777,
        uid: pax
            .uid
            .map_or_else(|| to_u32(or_zero(&old.uid, h.uid())), Ok)
            .map_err(bad("uid"))?,
        gid: pax
            .gid
            .map_or_else(|| to_u32(or_zero(&old.gid, h.gid())), Ok)
            .map_err(bad("gid"))?,
        mtime: pax
            .mtime
            .map_or_else(|| or_zero(&old.mtime, h.mtime()).map(|s| (s as i64, 0)), Ok)
            .map_err(bad("mtime"))?,
    };
    let device = match kind {
        Kind::Char | Kind::Block => (
            h.device_major().map_err(bad("devmajor"))?.unwrap_or(0),
            h.device_minor().map_err(bad("devminor"))?.unwrap_or(0),
        ),
        _ => (0, 0),
    };
    Ok(Some(Header {
        name,
        raw_path,
        kind,
        link: entry.link_name_bytes().map(|l| l.into_owned()),
        size: entry.size(),
        meta,
        device,
        xattrs: pax.xattrs,
    }))
}

fn kind_of(t: tar::EntryType, name: &str) -> Result<Option<Kind>, UnpackError> {
    use tar::EntryType as T;
    Ok(Some(match t {
        T::Regular | T::Continuous | T::GNUSparse => Kind::File,
        T::Directory => Kind::Dir,
        T::Symlink => Kind::Symlink,
        T::Link => Kind::HardLink,
        T::Char => Kind::Char,
        T::Block => Kind::Block,
        T::Fifo => Kind::Fifo,
        T::XGlobalHeader => return Ok(None),
        other => {
            return Err(UnpackError::Unsupported {
                entry: name.to_owned(),
                kind: other.as_byte() as char,
            })
        }
    }))
}

/// A numeric header field that is empty (only NULs and spaces) is 0, as Go's archive/tar
/// (docker, containerd) reads it; anything else must parse.
fn or_zero(raw: &[u8], parsed: io::Result<u64>) -> io::Result<u64> {
    match parsed {
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        other => other,
    }
}

fn to_u32(v: io::Result<u64>) -> io::Result<u32> {
    u32::try_from(v?).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "id above 2^32-1"))
}

fn pax_overrides<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<PaxOverrides> {
    let mut out = PaxOverrides::default();
    let Some(records) = entry.pax_extensions()? else {
        return Ok(out);
    };
    for record in records {
        let record = record?;
        let Ok(key) = record.key() else { continue };
        let value = record.value_bytes();
        match key {
            "uid" => out.uid = Some(parse_id(value)?),
            "gid" => out.gid = Some(parse_id(value)?),
            "mtime" => out.mtime = Some(parse_pax_time(value)?),
            _ => {
                if let Some(name) = key.strip_prefix(PAX_XATTR_PREFIX) {
                    out.xattrs.push((name.to_owned(), value.to_vec()));
                }
            }
        }
    }
    Ok(out)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn parse_id(value: &[u8]) -> io::Result<u32> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("bad PAX id"))
}

/// A PAX time: decimal seconds with an optional fraction (`1700000000.123456789`).
fn parse_pax_time(value: &[u8]) -> io::Result<(i64, u32)> {
    let s = std::str::from_utf8(value).map_err(|_| invalid("bad PAX time"))?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().map_err(|_| invalid("bad PAX time"))?;
    let digits: String = frac.chars().take(9).collect();
    let nanos = if digits.is_empty() {
        0
    } else {
        let n: u32 = digits.parse().map_err(|_| invalid("bad PAX time"))?;
        n * 10u32.pow(9 - digits.len() as u32)
    };
    Ok((secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_numeric_fields_are_zero() {
        assert_eq!(or_zero(&[0; 8], Err(invalid("x"))).unwrap(), 0);
        assert_eq!(or_zero(b"       \0", Err(invalid("x"))).unwrap(), 0);
        assert!(or_zero(b"12x\0", Err(invalid("x"))).is_err());
        assert_eq!(or_zero(b"0000012\0", Ok(10)).unwrap(), 10);
    }

    #[test]
    fn pax_times_parse() {
        assert_eq!(parse_pax_time(b"1700000000").unwrap(), (1_700_000_000, 0));
        assert_eq!(
            parse_pax_time(b"1700000000.5").unwrap(),
            (1_700_000_000, 500_000_000)
        );
        assert_eq!(
            parse_pax_time(b"12.123456789123").unwrap(),
            (12, 123_456_789)
        );
        assert!(parse_pax_time(b"x").is_err());
    }
}
