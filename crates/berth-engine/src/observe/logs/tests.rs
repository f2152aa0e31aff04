use super::*;
use std::fs::OpenOptions;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tempfile::TempDir;
use time::macros::{datetime, offset};

const LOG: &str = "\
2026-11-29T13:01:01.000000001Z stdout F one
2026-11-29T13:01:02.000000000Z stderr P err-
2026-11-29T13:01:03.000000000Z stdout P tw
2026-11-29T13:01:04.000000000Z stdout F o
not a record
2026-11-29T13:01:05.000000000Z stderr F or
2026-11-29T13:01:06.123456789Z stdout F three has  spaces
2026-11-29T13:01:07.000000000Z stdout F 
2026-11-29T13:01:08.000000000Z stdout P tail-without-newline
";

fn log_file(text: &str) -> (TempDir, PathBuf) {
    let tmp = TempDir::new().unwrap();
    let path = tmp.path().join("ctr.log");
    fs_write(&path, text);
    (tmp, path)
}

fn fs_write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn run(path: &Path, options: &LogOptions) -> (String, String, LogSummary) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let summary = copy_logs(path, options, &mut out, &mut err, || false).unwrap();
    (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
        summary,
    )
}

#[test]
fn records() {
    let r = parse_record(b"2026-11-29T13:01:06.123456789Z stdout F hello world").unwrap();
    assert_eq!(r.time, datetime!(2026-11-29 13:01:06.123456789 UTC));
    assert_eq!((r.stream, r.partial), (Stream::Stdout, false));
    assert_eq!(r.text, b"hello world");
    let r = parse_record(b"2026-11-29T14:01:06.5+01:00 stderr P ").unwrap();
    assert_eq!(r.time, datetime!(2026-11-29 13:01:06.5 UTC));
    assert_eq!(
        (r.stream, r.partial, r.text.len()),
        (Stream::Stderr, true, 0)
    );
    // An empty line has no text field after the tag.
    assert!(parse_record(b"2026-11-29T13:01:06Z stdout F")
        .unwrap()
        .text
        .is_empty());
    for bad in [
        &b"garbage"[..],
        b"2026-11-29 stdout F x",
        b"2026-11-29T13:01:06Z stdin F x",
        b"2026-11-29T13:01:06Z stdout X x",
    ] {
        assert!(
            parse_record(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(
        format_timestamp(datetime!(2026-11-29 14:01:06.5 +01:00)),
        "2026-11-29T13:01:06.500000000Z"
    );
}

#[test]
fn whole_file_joined_per_stream() {
    let (_tmp, path) = log_file(LOG);
    let (out, err, summary) = run(&path, &LogOptions::default());
    assert_eq!(out, "one\ntwo\nthree has  spaces\n\ntail-without-newline");
    assert_eq!(err, "err-or\n");
    assert_eq!(
        summary,
        LogSummary {
            lines: 6,
            malformed: 1
        }
    );
}

#[test]
fn timestamps_tail_since_until() {
    let (_tmp, path) = log_file(LOG);
    let (out, err, _) = run(
        &path,
        &LogOptions {
            timestamps: true,
            tail: Some(3),
            ..LogOptions::default()
        },
    );
    // The last three lines: "three...", "", and the unfinished one.
    assert_eq!(
        out,
        "2026-11-29T13:01:06.123456789Z three has  spaces\n2026-11-29T13:01:07.000000000Z \n2026-11-29T13:01:08.000000000Z tail-without-newline"
    );
    assert_eq!(err, "");
    let (out, err, _) = run(
        &path,
        &LogOptions {
            since: Some(datetime!(2026-11-29 13:01:04 UTC)),
            until: Some(datetime!(2026-11-29 13:01:06.2 UTC)),
            ..LogOptions::default()
        },
    );
    // A joined line has the time of its last record (13:01:04 and 13:01:05).
    assert_eq!(out, "two\nthree has  spaces\n");
    assert_eq!(err, "err-or\n");
    let (out, err, _) = run(
        &path,
        &LogOptions {
            tail: Some(0),
            ..LogOptions::default()
        },
    );
    // Without follow the unfinished line is history too: `--tail 0` shows nothing.
    assert_eq!((out.as_str(), err.as_str()), ("", ""));
}

#[test]
fn follow_reads_appended_data_until_the_container_stops() {
    let (_tmp, path) = log_file("2026-11-29T13:01:01Z stdout F first\n");
    let running = Arc::new(AtomicBool::new(true));
    let writer = {
        let (path, running) = (path.clone(), running.clone());
        std::thread::spawn(move || {
            for i in 0..5 {
                std::thread::sleep(Duration::from_millis(15));
                append(
                    &path,
                    &format!("2026-11-29T13:01:0{}Z stdout F line {i}\n", i + 2),
                );
            }
            // Half a record, then the rest: the reader must wait for the newline.
            append(&path, "2026-11-29T13:01:08Z stderr P par");
            std::thread::sleep(Duration::from_millis(30));
            append(&path, "tial\n2026-11-29T13:01:09Z stderr F  end\n");
            append(&path, "2026-11-29T13:01:10Z stdout F last\n");
            running.store(false, Ordering::SeqCst);
        })
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let options = LogOptions {
        follow: true,
        poll_interval: Duration::from_millis(5),
        ..LogOptions::default()
    };
    let summary = copy_logs(&path, &options, &mut out, &mut err, || {
        running.load(Ordering::SeqCst)
    })
    .unwrap();
    writer.join().unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "first\nline 0\nline 1\nline 2\nline 3\nline 4\nlast\n"
    );
    assert_eq!(String::from_utf8(err).unwrap(), "partial end\n");
    assert_eq!(summary.lines, 8);
}

#[test]
fn follow_stops_at_until_and_survives_truncation() {
    let (_tmp, path) = log_file("2026-11-29T13:01:01Z stdout F a\n");
    let mut reader = LogReader::open(&path).unwrap();
    assert_eq!(reader.next_line().unwrap().unwrap().text, b"a");
    assert!(reader.next_line().unwrap().is_none());
    fs_write(&path, "");
    append(&path, "2026-11-29T13:01:02Z stdout F b\n");
    // Shorter than what was read: started over.
    fs_write(&path, "2026-11-29T13:01:02Z stdout F b\n".get(..5).unwrap());
    assert!(reader.next_line().unwrap().is_none());
    assert!(reader.reopen_if_replaced().unwrap());
    fs_write(&path, "2026-11-29T13:01:02Z stdout F b\n");
    assert_eq!(reader.next_line().unwrap().unwrap().text, b"b");

    let (_tmp2, path) =
        log_file("2026-11-29T13:01:01Z stdout F in\n2026-11-29T13:02:00Z stdout F out\n");
    let options = LogOptions {
        follow: true,
        until: Some(datetime!(2026-11-29 13:01:30 UTC)),
        ..LogOptions::default()
    };
    let mut out = Vec::new();
    // still_running() stays true: only the line past `until` ends the follow.
    copy_logs(&path, &options, &mut out, &mut Vec::new(), || true).unwrap();
    assert_eq!(out, b"in\n");
}

#[test]
fn time_arguments() {
    let now = datetime!(2026-11-29 13:00:00 +02:00);
    let at = |s: &str| parse_time_arg(s, now).unwrap();
    assert_eq!(at("10m"), now - time::Duration::minutes(10));
    assert_eq!(at("1h30m"), now - time::Duration::minutes(90));
    assert_eq!(at("42s"), now - time::Duration::seconds(42));
    assert_eq!(at("1.5h"), now - time::Duration::minutes(90));
    assert_eq!(at("300ms"), now - time::Duration::milliseconds(300));
    assert_eq!(at("1700000000"), datetime!(2023-11-14 22:13:20 UTC));
    assert_eq!(at("1700000000.123"), datetime!(2023-11-14 22:13:20.123 UTC));
    assert_eq!(at("0"), datetime!(1970-01-01 0:00 UTC));
    assert_eq!(
        at("2026-11-29T13:01:06Z"),
        datetime!(2026-11-29 13:01:06 UTC)
    );
    assert_eq!(
        at("2026-11-29T13:01:06.123456789Z"),
        datetime!(2026-11-29 13:01:06.123456789 UTC)
    );
    assert_eq!(
        at("2026-11-29T13:01:06-05:00"),
        datetime!(2026-11-29 13:01:06 -05:00)
    );
    // No zone: now's offset (docker: local time).
    assert_eq!(
        at("2026-11-29T13:01:06"),
        datetime!(2026-11-29 13:01:06 +02:00)
    );
    assert_eq!(at("2026-11-29T13:01"), datetime!(2026-11-29 13:01 +02:00));
    assert_eq!(at("2026-11-29T13"), datetime!(2026-11-29 13:00 +02:00));
    assert_eq!(at("2026-11-29"), datetime!(2026-11-29 0:00 +02:00));
    assert_eq!(at("2026-11-29Z"), datetime!(2026-11-29 0:00 UTC));
    assert_eq!(
        at("2026-11-29T13:01:06.5"),
        datetime!(2026-11-29 13:01:06.5).assume_offset(offset!(+2))
    );
    for bad in [
        "",
        "yesterday",
        "10x",
        "2026-13-01",
        "2026-11-29T25:00",
        "12.ab",
        "2026-11-29T1:2:3:4",
    ] {
        assert!(parse_time_arg(bad, now).is_err(), "{bad:?}");
    }
    assert_eq!(parse_go_duration("-1m"), Some(-60_000_000_000));
    assert_eq!(parse_go_duration("2h45m30.5s"), Some(9_930_500_000_000));
    assert_eq!(parse_go_duration("1.5"), None);
}
