//! RFC 3339 UTC timestamps with nanoseconds (`2026-11-29T13:01:06.123456789Z`), formatted by
//! hand: the `time` crate's formatting is more than two fixed-width fields need.

use std::time::{SystemTime, UNIX_EPOCH};

/// `t` as RFC 3339 UTC with nine fractional digits.
pub fn rfc3339_nanos(t: SystemTime) -> String {
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let (s, n) = (-(d.as_secs() as i64), d.subsec_nanos());
            if n == 0 {
                (s, 0)
            } else {
                (s - 1, 1_000_000_000 - n)
            }
        }
    };
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// Now, formatted by [`rfc3339_nanos`].
pub fn now() -> String {
    rfc3339_nanos(SystemTime::now())
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_instants() {
        let at = |s: u64, n: u32| rfc3339_nanos(UNIX_EPOCH + Duration::new(s, n));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(
            at(1_795_957_266, 123_456_789),
            "2026-11-29T13:01:06.123456789Z"
        );
        assert_eq!(
            at(4_107_542_399, 999_999_999),
            "2100-02-28T23:59:59.999999999Z"
        );
    }
}
