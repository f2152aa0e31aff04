//! Reading k8s-file container logs (the monitor's format, docs/monitor.md):
//! `2026-11-29T13:01:06.123456789Z stdout F text` per record, `P` for a partial line that the
//! next record of the same stream continues.
//!
//! [`LogReader`] turns records into whole lines (partials joined per stream);
//! [`copy_logs`] does `berth logs`: `--tail`, `--since`, `--until`, `-t` and `-f`, writing each
//! line to the writer of its stream. [`parse_time_arg`] reads docker's `--since`/`--until`
//! forms.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// What can go wrong while reading logs or a time argument.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Opening or reading the log file failed.
    #[error("read log {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// Writing a line to the caller's stdout or stderr failed (a closed pipe, say).
    #[error("write log line to {stream}: {source}")]
    Write { stream: Stream, source: io::Error },
    /// A record does not have the k8s-file shape.
    #[error("bad log record {record:?}: {reason}")]
    Record { record: String, reason: String },
    /// A `--since`/`--until` value is none of the accepted forms.
    #[error("invalid time {arg:?}: {reason}")]
    TimeArg { arg: String, reason: String },
}

/// The stream a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        })
    }
}

/// One record (one line of the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub time: OffsetDateTime,
    pub stream: Stream,
    /// `P`: the text does not end a line.
    pub partial: bool,
    pub text: Vec<u8>,
}

/// Parses one record, without its trailing `\n`.
pub fn parse_record(line: &[u8]) -> Result<Record, LogError> {
    let bad = |reason: &str| LogError::Record {
        record: String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned(),
        reason: reason.to_string(),
    };
    let mut parts = line.splitn(4, |b| *b == b' ');
    let (Some(ts), Some(stream), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("expected `TIME STREAM TAG TEXT`"));
    };
    let text = parts.next().unwrap_or_default().to_vec();
    let ts = std::str::from_utf8(ts).map_err(|_| bad("timestamp is not UTF-8"))?;
    let time = OffsetDateTime::parse(ts, &Rfc3339).map_err(|e| bad(&format!("timestamp: {e}")))?;
    let stream = match stream {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return Err(bad("stream is neither stdout nor stderr")),
    };
    // A tag may carry more flags after `:` (CRI-O's `F:...`); only the first letter counts.
    let partial = match tag.first() {
        Some(b'F') => false,
        Some(b'P') => true,
        _ => return Err(bad("tag is neither F nor P")),
    };
    Ok(Record {
        time,
        stream,
        partial,
        text,
    })
}

/// A line of output: records joined up to an `F` one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// The time of the record that ended the line (podman does the same).
    #[serde(serialize_with = "super::serialize_time")]
    pub time: OffsetDateTime,
    pub stream: Stream,
    pub text: Vec<u8>,
    /// False for a partial line that nothing completed (the output ended without `\n`):
    /// written without a newline.
    pub complete: bool,
}

/// docker's `-t` prefix: RFC 3339 in UTC with nine fractional digits
/// (`2026-11-29T13:01:06.123456789Z`, Go's `RFC3339NanoFixed`).
pub fn format_timestamp(time: OffsetDateTime) -> String {
    let t = time.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

/// Writes `line` to the writer of its stream, with the `-t` prefix if asked.
pub fn write_line<'a>(
    line: &LogLine,
    timestamps: bool,
    stdout: &'a mut dyn Write,
    stderr: &'a mut dyn Write,
) -> Result<(), LogError> {
    let out = match line.stream {
        Stream::Stdout => stdout,
        Stream::Stderr => stderr,
    };
    let err = |source| LogError::Write {
        stream: line.stream,
        source,
    };
    if timestamps {
        out.write_all(format_timestamp(line.time).as_bytes())
            .and_then(|()| out.write_all(b" "))
            .map_err(err)?;
    }
    out.write_all(&line.text).map_err(err)?;
    if line.complete {
        out.write_all(b"\n").map_err(err)?;
    }
    Ok(())
}

/// Reads a k8s-file log from the start, and on from where it stopped as it grows.
#[derive(Debug)]
pub struct LogReader {
    path: PathBuf,
    reader: BufReader<File>,
    inode: u64,
    /// Bytes read so far.
    position: u64,
    /// A record still without its `\n` (the writer is mid-write).
    carry: Vec<u8>,
    /// Partial records waiting for the rest of their line, per stream.
    pending: [Option<(OffsetDateTime, Vec<u8>)>; 2],
    malformed: u64,
}

impl LogReader {
    pub fn open(path: &Path) -> Result<LogReader, LogError> {
        let err = |source| LogError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(err)?;
        let inode = file.metadata().map_err(err)?.ino();
        Ok(LogReader {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(64 * 1024, file),
            inode,
            position: 0,
            carry: Vec::new(),
            pending: [None, None],
            malformed: 0,
        })
    }

    /// Records that did not parse, skipped so far.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// The next whole line written so far; `None` at the end of what is there now (call again
    /// after the file grew). Malformed records are skipped and counted.
    pub fn next_line(&mut self) -> Result<Option<LogLine>, LogError> {
        loop {
            let read = self
                .reader
                .read_until(b'\n', &mut self.carry)
                .map_err(|source| LogError::Read {
                    path: self.path.clone(),
                    source,
                })?;
            self.position += read as u64;
            if self.carry.last() != Some(&b'\n') {
                return Ok(None);
            }
            let mut record = std::mem::take(&mut self.carry);
            record.pop();
            let Ok(record) = parse_record(&record) else {
                self.malformed += 1;
                continue;
            };
            let slot = &mut self.pending[stream_index(record.stream)];
            if record.partial {
                match slot {
                    Some((time, text)) => {
                        *time = record.time;
                        text.extend_from_slice(&record.text);
                    }
                    None => *slot = Some((record.time, record.text)),
                }
                continue;
            }
            let text = match slot.take() {
                Some((_, mut text)) => {
                    text.extend_from_slice(&record.text);
                    text
                }
                None => record.text,
            };
            return Ok(Some(LogLine {
                time: record.time,
                stream: record.stream,
                text,
                complete: true,
            }));
        }
    }

    /// The partial lines nothing completed, oldest first, as incomplete [`LogLine`]s; the
    /// reader forgets them.
    pub fn take_partials(&mut self) -> Vec<LogLine> {
        let mut lines: Vec<LogLine> = [Stream::Stdout, Stream::Stderr]
            .into_iter()
            .filter_map(|stream| {
                self.pending[stream_index(stream)]
                    .take()
                    .map(|(time, text)| LogLine {
                        time,
                        stream,
                        text,
                        complete: false,
                    })
            })
            .collect();
        lines.sort_by_key(|l| l.time);
        lines
    }

    /// After [`next_line`](LogReader::next_line) gave `None`: if the file at the path was
    /// replaced (another inode) or truncated, start over on the file now there. True if so.
    pub fn reopen_if_replaced(&mut self) -> Result<bool, LogError> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(source) => {
                return Err(LogError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        if meta.ino() == self.inode && meta.len() >= self.position {
            return Ok(false);
        }
        let pending = std::mem::take(&mut self.pending);
        *self = LogReader::open(&self.path)?;
        self.pending = pending;
        Ok(true)
    }
}

fn stream_index(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

/// `berth logs` options.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Only the last N lines already in the file (before `since`/`until` apply, as docker).
    pub tail: Option<usize>,
    /// Lines at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Lines at or before this time; following stops at the first later line.
    pub until: Option<OffsetDateTime>,
    /// The `-t` prefix.
    pub timestamps: bool,
    /// Keep reading what is appended.
    pub follow: bool,
    /// How often a follower looks for new data.
    pub poll_interval: Duration,
}

impl Default for LogOptions {
    fn default() -> LogOptions {
        LogOptions {
            tail: None,
            since: None,
            until: None,
            timestamps: false,
            follow: false,
            poll_interval: Duration::from_millis(100),
        }
    }
}

/// What [`copy_logs`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LogSummary {
    /// Lines written (complete or not).
    pub lines: u64,
    /// Records skipped because they did not parse.
    pub malformed: u64,
}

/// Writes the log at `path` to `stdout`/`stderr` as `options` say. With `follow`, keeps
/// reading appended data until `still_running()` returns false and the file has been read to
/// its end after that (or a line past `until` shows up); partial lines left at the end are
/// written without a newline.
pub fn copy_logs(
    path: &Path,
    options: &LogOptions,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    mut still_running: impl FnMut() -> bool,
) -> Result<LogSummary, LogError> {
    let mut reader = LogReader::open(path)?;
    let mut summary = LogSummary::default();
    let mut emit = |line: &LogLine, summary: &mut LogSummary| -> Result<bool, LogError> {
        if options.until.is_some_and(|until| line.time > until) {
            return Ok(false);
        }
        if options.since.is_none_or(|since| line.time >= since) {
            write_line(line, options.timestamps, stdout, stderr)?;
            summary.lines += 1;
        }
        Ok(true)
    };
    // What is there now: all of it, or the last `tail` lines.
    let mut history: VecDeque<LogLine> = VecDeque::new();
    let mut go_on = true;
    // Without follow, a partial line left at the end is the last line of the history.
    let mut partials = Vec::new();
    loop {
        let line = match reader.next_line()? {
            Some(line) => line,
            None if !options.follow && partials.is_empty() => {
                partials = reader.take_partials();
                if partials.is_empty() {
                    break;
                }
                partials.remove(0)
            }
            None if !partials.is_empty() => partials.remove(0),
            None => break,
        };
        match options.tail {
            Some(0) => {}
            Some(n) => {
                if history.len() == n {
                    history.pop_front();
                }
                history.push_back(line);
            }
            None => {
                if !emit(&line, &mut summary)? {
                    go_on = false;
                    break;
                }
            }
        }
    }
    for line in &history {
        if !emit(line, &mut summary)? {
            go_on = false;
            break;
        }
    }
    if go_on && options.follow {
        loop {
            let running = still_running();
            loop {
                while let Some(line) = reader.next_line()? {
                    if !emit(&line, &mut summary)? {
                        go_on = false;
                        break;
                    }
                }
                if !go_on || !reader.reopen_if_replaced()? {
                    break;
                }
            }
            if !go_on || !running {
                break;
            }
            sleep(options.poll_interval);
        }
    }
    if go_on {
        for line in reader.take_partials() {
            if !emit(&line, &mut summary)? {
                break;
            }
        }
    }
    summary.malformed = reader.malformed();
    Ok(summary)
}

/// docker's `--since`/`--until` value, as `now`'s clock and offset see it:
/// - a Go duration (`10m`, `1h30m`, `42s`, `1.5h`, `300ms`): that long before `now`;
/// - RFC 3339 and its shortenings: `2026-11-29`, `2026-11-29T13`, `2026-11-29T13:01`,
///   `2026-11-29T13:01:06`, with `.fraction` and a zone (`Z`, `+01:00`); without a zone the
///   time is in `now`'s offset (docker: the local zone);
/// - a unix timestamp, `1700000000` or `1700000000.123` (the fraction is of a second).
pub fn parse_time_arg(arg: &str, now: OffsetDateTime) -> Result<OffsetDateTime, LogError> {
    let bad = |reason: &str| LogError::TimeArg {
        arg: arg.to_string(),
        reason: reason.to_string(),
    };
    let arg = arg.trim();
    if arg != "0" {
        if let Some(nanos) = parse_go_duration(arg) {
            return now
                .checked_sub(time::Duration::nanoseconds_i128(nanos))
                .ok_or_else(|| bad("out of range"));
        }
    }
    if arg.contains('-') {
        return parse_rfc3339_like(arg, now.offset()).map_err(|reason| bad(&reason));
    }
    let (secs, frac) = arg.split_once('.').unwrap_or((arg, ""));
    let secs: i64 = secs
        .parse()
        .map_err(|_| bad("not a duration, an RFC 3339 time or a unix timestamp"))?;
    let nanos = fraction_nanos(frac).ok_or_else(|| bad("bad fraction of a second"))?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(secs) * 1_000_000_000 + i128::from(nanos))
        .map(|t| t.to_offset(now.offset()))
        .map_err(|_| bad("out of range"))
}

/// Digits after a decimal point as nanoseconds (at most 9 used).
fn fraction_nanos(frac: &str) -> Option<u32> {
    if frac.is_empty() {
        return Some(0);
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: String = frac.chars().chain("000000000".chars()).take(9).collect();
    digits.parse().ok()
}

/// A Go `time.ParseDuration` string in nanoseconds (`[-+]` then `<number><unit>`…; units
/// ns, us, µs, ms, s, m, h; `0` alone).
pub fn parse_go_duration(text: &str) -> Option<i128> {
    let (negative, mut rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() || number == "." {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += value * scale;
        rest = after;
    }
    let nanos = total.round() as i128;
    Some(if negative { -nanos } else { nanos })
}

/// `YYYY-MM-DD[Thh[:mm[:ss[.frac]]]][zone]`; without a zone, `local`.
fn parse_rfc3339_like(text: &str, local: UtcOffset) -> Result<OffsetDateTime, String> {
    let number = |s: &str, what: &str| -> Result<u32, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("bad {what} {s:?}"));
        }
        s.parse().map_err(|_| format!("bad {what} {s:?}"))
    };
    let date_part = text.get(..10).ok_or("too short for YYYY-MM-DD")?;
    let mut fields = date_part.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err("expected YYYY-MM-DD".to_string());
    };
    let year = i32::try_from(number(y, "year")?).map_err(|_| "bad year")?;
    let month = Month::try_from(u8::try_from(number(m, "month")?).map_err(|_| "bad month")?)
        .map_err(|e| e.to_string())?;
    let day = u8::try_from(number(d, "day")?).map_err(|_| "bad day")?;
    let date = Date::from_calendar_date(year, month, day).map_err(|e| e.to_string())?;
    let mut rest = &text[10..];
    // The zone: `Z`/`z` or `±hh:mm` at the end.
    let mut offset = local;
    if let Some(stripped) = rest.strip_suffix(['Z', 'z']) {
        offset = UtcOffset::UTC;
        rest = stripped;
    } else if let Some(pos) = rest.rfind(['+', '-']) {
        let zone = &rest[pos..];
        let (hh, mm) = zone[1..].split_once(':').ok_or("zone must be ±hh:mm")?;
        let hours = i8::try_from(number(hh, "zone hours")?).map_err(|_| "bad zone")?;
        let minutes = i8::try_from(number(mm, "zone minutes")?).map_err(|_| "bad zone")?;
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        offset = UtcOffset::from_hms(sign * hours, sign * minutes, 0).map_err(|e| e.to_string())?;
        rest = &rest[..pos];
    }
    let time = if rest.is_empty() {
        Time::MIDNIGHT
    } else {
        let clock = rest
            .strip_prefix(['T', 't'])
            .ok_or("expected T after the date")?;
        let (clock, frac) = clock.split_once('.').unwrap_or((clock, ""));
        let mut parts = clock.split(':');
        let hour = number(parts.next().unwrap_or_default(), "hour")?;
        let minute = parts.next().map_or(Ok(0), |m| number(m, "minute"))?;
        let second = parts.next().map_or(Ok(0), |s| number(s, "second"))?;
        if parts.next().is_some() {
            return Err("too many `:`".to_string());
        }
        let nanos = fraction_nanos(frac).ok_or("bad fraction of a second")?;
        let small = |v: u32| u8::try_from(v).map_err(|_| "out of range".to_string());
        Time::from_hms_nano(small(hour)?, small(minute)?, small(second)?, nanos)
            .map_err(|e| e.to_string())?
    };
    Ok(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

#[cfg(test)]
mod tests;
