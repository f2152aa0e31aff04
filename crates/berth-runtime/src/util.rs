//! Small shared helpers: error texts, timestamps, atomic writes.

use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// The cause of an OS error as runc prints it: `permission denied`, without `(os error 13)`.
pub fn cause(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => lower_first(nix::errno::Errno::from_raw(code).desc()),
        None => err.to_string(),
    }
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// RFC 3339 UTC time with nanoseconds, as Go's `time.RFC3339Nano` prints it.
pub fn rfc3339_nano(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (date, clock) = civil(since.as_secs());
    let nanos = since.subsec_nanos();
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    format!("{date}T{clock}{frac}Z")
}

/// RFC 3339 UTC time in whole seconds (log lines).
pub fn rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let (date, clock) = civil(secs);
    format!("{date}T{clock}Z")
}

/// Days-to-civil (Howard Hinnant's algorithm): `YYYY-MM-DD` and `HH:MM:SS`.
fn civil(secs: u64) -> (String, String) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60),
    )
}

/// Write `data` to `path` atomically: a temporary file in the same directory, fsync (when
/// `durable`), rename. A reader sees the old or the new content, never a mix; without the
/// fsync that holds against crashes of this process, not against power loss (pid files, which
/// runc writes the same way).
pub fn write_replace(path: &Path, data: &[u8], durable: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state")
    ));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(data)?;
    if durable {
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_like_go() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 120_000_000);
        assert_eq!(rfc3339_nano(t), "2023-11-14T22:13:20.12Z");
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn cause_is_lowercase_without_code() {
        assert_eq!(
            cause(&io::Error::from_raw_os_error(13)),
            "permission denied"
        );
        assert_eq!(
            cause(&io::Error::from_raw_os_error(2)),
            "no such file or directory"
        );
    }
}
