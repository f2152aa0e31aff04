//! Docker's ways of showing sizes, ages and tables.

use std::time::{Duration, SystemTime};

const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

/// Docker's `units.HumanSizeWithPrecision`: decimal units, `precision` significant digits,
/// trailing zeros dropped (`4.26MB`, `12kB`, `0B`).
pub fn human_size(bytes: u64, precision: usize) -> String {
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < DECIMAL_UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    format!("{}{}", significant(size, precision), DECIMAL_UNITS[unit])
}

/// `size` with `digits` significant digits and no trailing zeros, like Go's `%.Ng` for
/// values below 1000.
fn significant(size: f64, digits: usize) -> String {
    let int_digits = if size < 1.0 {
        1
    } else {
        size.log10().floor() as usize + 1
    };
    let decimals = digits.saturating_sub(int_digits);
    let text = format!("{size:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// Docker's `units.HumanDuration`.
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    let minutes = seconds / 60;
    let hours = (d.as_secs_f64() / 3600.0 + 0.5) as u64;
    match () {
        _ if seconds < 1 => "Less than a second".into(),
        _ if seconds == 1 => "1 second".into(),
        _ if seconds < 60 => format!("{seconds} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

/// Parse an RFC 3339 timestamp (an image's `created`).
pub fn parse_time(text: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// "4 weeks ago", or "N/A" when unknown.
pub fn since(created: Option<&str>) -> String {
    let Some(at) = created.and_then(parse_time) else {
        return "N/A".into();
    };
    let now = time::OffsetDateTime::from(SystemTime::now());
    let elapsed = (now - at).max(time::Duration::ZERO);
    format!(
        "{} ago",
        human_duration(Duration::from_secs(elapsed.whole_seconds() as u64))
    )
}

/// Go's `time.Time.String()` in UTC: `2023-07-18 21:19:33 +0000 UTC`.
pub fn go_time(created: Option<&str>) -> String {
    let Some(at) = created.and_then(parse_time) else {
        return String::new();
    };
    let at = at.to_offset(time::UtcOffset::UTC);
    let format = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] +0000 UTC"
    );
    at.format(&format).unwrap_or_default()
}

/// Docker's table layout (Go's tabwriter with minwidth 10, padding 3): each column as wide as
/// its widest cell plus 3, at least 10; the last column is not padded.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            let widest = rows
                .iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0);
            (widest + 3).max(10)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}", width = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_docker() {
        assert_eq!(human_size(0, 3), "0B");
        assert_eq!(human_size(999, 3), "999B");
        assert_eq!(human_size(4_261_000, 3), "4.26MB");
        assert_eq!(human_size(12_000, 3), "12kB");
        assert_eq!(human_size(1_240, 3), "1.24kB");
        assert_eq!(human_size(123_456_789, 3), "123MB");
        assert_eq!(human_size(16_430_000, 4), "16.43MB");
        assert_eq!(human_size(4_100_000, 3), "4.1MB");
    }

    #[test]
    fn durations_match_docker() {
        assert_eq!(human_duration(Duration::from_secs(0)), "Less than a second");
        assert_eq!(human_duration(Duration::from_secs(59)), "59 seconds");
        assert_eq!(human_duration(Duration::from_secs(90)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(3600)), "About an hour");
        assert_eq!(human_duration(Duration::from_secs(3 * 86400)), "3 days");
        assert_eq!(human_duration(Duration::from_secs(28 * 86400)), "4 weeks");
        assert_eq!(
            human_duration(Duration::from_secs(3 * 365 * 86400)),
            "3 years"
        );
    }

    #[test]
    fn tables_pad_like_tabwriter() {
        let rows = vec![
            vec!["REPOSITORY".into(), "TAG".into(), "SIZE".into()],
            vec!["busybox".into(), "latest".into(), "4.26MB".into()],
        ];
        assert_eq!(
            table(&rows),
            "REPOSITORY   TAG       SIZE\nbusybox      latest    4.26MB\n"
        );
    }

    #[test]
    fn times_print_like_go() {
        assert_eq!(
            go_time(Some("2023-07-18T21:19:33.123Z")),
            "2023-07-18 21:19:33 +0000 UTC"
        );
        assert_eq!(since(None), "N/A");
    }
}
