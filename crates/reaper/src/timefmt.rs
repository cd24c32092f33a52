//! The two timestamp forms the reaper meets: RFC 3339 from the Engine API (a network's
//! `Created`, a volume's `CreatedAt`) and the millisecond form of its own log lines
//! (Go slog's text handler).

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the epoch.
pub fn unix_nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// `2006-01-02T15:04:05.000Z` in UTC (the reaper reads no time zone database).
pub fn log_stamp(t: SystemTime) -> String {
    let n = unix_nanos(t);
    let secs = n.div_euclid(1_000_000_000) as i64;
    let ms = n.rem_euclid(1_000_000_000) / 1_000_000;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// An RFC 3339 time (`2024-09-30T19:42:30Z`, `…30.123456789+01:00`, as Go's
/// `time.Parse(time.RFC3339, …)` accepts it) as nanoseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.is_empty() || !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i128 = 0;
    if b[i] == b'.' {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let kept = digits.min(9);
        let frac = num(i + 1..i + 1 + kept)?;
        nanos = i128::from(frac) * 10i128.pow((9 - kept) as u32);
        i += 1 + digits;
    }
    let offset: i64 = match s.get(i..)? {
        "Z" | "z" => 0,
        z if z.len() == 6 && matches!(z.as_bytes()[0], b'+' | b'-') && z.as_bytes()[3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            let off = oh * 3600 + om * 60;
            if z.starts_with('-') {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    Some(i128::from(secs) * 1_000_000_000 + nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_in_its_forms() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-09-30T19:42:30+01:00"),
            Some(1_727_721_750 * 1_000_000_000)
        );
        assert_eq!(
            parse_rfc3339("2024-09-30T18:42:30.5Z"),
            Some(1_727_721_750 * 1_000_000_000 + 500_000_000)
        );
        assert_eq!(
            parse_rfc3339("2024-09-30T18:42:30.123456789123Z"),
            Some(1_727_721_750 * 1_000_000_000 + 123_456_789)
        );
        // docker's zero time (a network of an old engine).
        assert!(parse_rfc3339("0001-01-01T00:00:00Z").is_some());
        for bad in [
            "",
            "2024-09-30",
            "2024-09-30T18:42:30",
            "2024-13-30T18:42:30Z",
            "2024-09-30T18:42:30.Z",
            "x024-09-30T18:42:30Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn log_stamps_round_trip() {
        let t = UNIX_EPOCH + Duration::from_millis(1_727_721_750_042);
        assert_eq!(log_stamp(t), "2024-09-30T18:42:30.042Z");
        assert_eq!(parse_rfc3339(&log_stamp(t)), Some(unix_nanos(t)));
        assert_eq!(log_stamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            log_stamp(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
