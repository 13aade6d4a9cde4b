//! RFC 3339 timestamps in the form Go's `time.RFC3339Nano` writes for a UTC
//! time, as the NATS event envelope carries them:
//! `2006-01-02T15:04:05.999999999Z`, fraction trimmed of trailing zeros and
//! left out entirely when zero.
//!
//! Formatting and parsing are done here with the civil-from-days algorithm
//! (proleptic Gregorian calendar) so the SDK needs no date crate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;

/// A timestamp that is not RFC 3339, or is out of the supported range
/// (years 1970 to 9999).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid RFC 3339 timestamp {0:?}")]
pub struct TimestampError(pub String);

/// Formats `t` in UTC as Go's `RFC3339Nano`. Times before the Unix epoch
/// are clamped to it.
pub fn format_rfc3339_nano(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    format_unix(d.as_secs(), d.subsec_nanos())
}

/// The current time, formatted by [`format_rfc3339_nano`].
pub fn now_rfc3339_nano() -> String {
    format_rfc3339_nano(SystemTime::now())
}

fn format_unix(secs: u64, nanos: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Parses an RFC 3339 timestamp (`Z` or a `±hh:mm` offset, optional fraction
/// of 1 to 9 digits).
pub fn parse_rfc3339(s: &str) -> Result<SystemTime, TimestampError> {
    let err = || TimestampError(s.to_owned());
    let b = s.as_bytes();
    // ASCII only, so every byte index below is a char boundary.
    if !s.is_ascii()
        || b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
    {
        return Err(err());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(err());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, TimestampError> {
        let part = &s[r];
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().map_err(|_| err())
        } else {
            Err(err())
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 60
    {
        return Err(err());
    }
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return Err(err());
        }
        let value: u32 = frac[..digits].parse().map_err(|_| err())?;
        nanos = value * 10u32.pow(9 - digits as u32);
        rest = &frac[digits..];
    }
    let offset_secs = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let h = num(rest_range(s, rest, 1, 3))?;
            let m = num(rest_range(s, rest, 4, 6))?;
            if h > 23 || m > 59 {
                return Err(err());
            }
            let o = h * 3600 + m * 60;
            if *sign == b'-' { -o } else { o }
        }
        _ => return Err(err()),
    };
    let days = days_from_civil(year, month, day);
    // A leap second (:60) is folded into the next second, as Go does.
    let unix = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    let unix = u64::try_from(unix).map_err(|_| err())?;
    Ok(UNIX_EPOCH + Duration::new(unix, nanos))
}

/// The byte range of `rest[from..to]` inside `s` (rest is a suffix of s).
fn rest_range(s: &str, rest: &str, from: usize, to: usize) -> std::ops::Range<usize> {
    let base = s.len() - rest.len();
    base + from..base + to
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Year, month (1-12) and day (1-31) of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Day count since 1970-01-01 of a civil date (inverse of
/// [`civil_from_days`]).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn formats_epoch_and_whole_seconds() {
        assert_eq!(format_rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339_nano(at(1_136_214_245, 0)),
            "2006-01-02T15:04:05Z"
        );
    }

    #[test]
    fn formats_nanos_trimmed_like_go() {
        assert_eq!(
            format_rfc3339_nano(at(1_136_214_245, 999_999_999)),
            "2006-01-02T15:04:05.999999999Z"
        );
        assert_eq!(
            format_rfc3339_nano(at(1_136_214_245, 500_000_000)),
            "2006-01-02T15:04:05.5Z"
        );
        assert_eq!(
            format_rfc3339_nano(at(1_136_214_245, 1_000)),
            "2006-01-02T15:04:05.000001Z"
        );
        assert_eq!(
            format_rfc3339_nano(at(1_136_214_245, 1)),
            "2006-01-02T15:04:05.000000001Z"
        );
    }

    #[test]
    fn leap_years() {
        // 2024-02-29 (divisible by 4), 2000-02-29 (by 400), 2100-03-01 (1900/2100 not leap).
        assert_eq!(
            format_rfc3339_nano(at(1_709_164_800, 0)),
            "2024-02-29T00:00:00Z"
        );
        assert_eq!(
            format_rfc3339_nano(at(951_782_400, 0)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            format_rfc3339_nano(at(4_107_542_400, 0)),
            "2100-03-01T00:00:00Z"
        );
        assert_eq!(
            format_rfc3339_nano(at(4_107_542_399, 0)),
            "2100-02-28T23:59:59Z"
        );
        assert_eq!(
            format_rfc3339_nano(at(1_735_689_599, 0)),
            "2024-12-31T23:59:59Z"
        );
        assert!(parse_rfc3339("2100-02-29T00:00:00Z").is_err());
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_ok());
    }

    #[test]
    fn round_trips_every_day_for_decades() {
        for day in (0..60 * 366).step_by(7) {
            let t = at(day * 86_400 + 43_210, 120);
            assert_eq!(parse_rfc3339(&format_rfc3339_nano(t)).unwrap(), t);
        }
    }

    #[test]
    fn parses_offsets_and_fractions() {
        assert_eq!(
            parse_rfc3339("2006-01-02T08:04:05.5-07:00").unwrap(),
            at(1_136_214_245, 500_000_000)
        );
        assert_eq!(
            parse_rfc3339("2006-01-02t15:04:05z").unwrap(),
            at(1_136_214_245, 0)
        );
        for bad in [
            "",
            "2006-01-02 15:04:05Z",
            "2006-13-02T15:04:05Z",
            "2006-01-02T15:04:05",
            "2006-01-02T15:04:05.Z",
            "2006-01-02T15:04:05.1234567890Z",
            "2006-01-02T15:04:05+7:00",
            "1969-12-31T23:59:59Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }
}
