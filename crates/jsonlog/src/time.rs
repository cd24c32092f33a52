//! Timestamps as docker writes them: Go's `time.RFC3339Nano` in UTC, which drops
//! trailing zeros of the fraction (and the dot when it is zero).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A point in time, nanosecond precision, as seconds and nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Timestamp {
    pub fn now() -> Timestamp {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp {
                secs: d.as_secs() as i64,
                nanos: d.subsec_nanos(),
            },
            Err(e) => {
                let d = e.duration();
                let (secs, nanos) = (-(d.as_secs() as i64), d.subsec_nanos());
                if nanos == 0 {
                    Timestamp { secs, nanos }
                } else {
                    Timestamp {
                        secs: secs - 1,
                        nanos: 1_000_000_000 - nanos,
                    }
                }
            }
        }
    }

    /// Parses RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`), the form docker writes
    /// and `--since`/`--until` accept in their timestamp form.
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
            return None;
        }
        if !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = s.get(r)?;
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
            return None;
        }
        let mut rest = s.get(19..)?;
        let mut nanos: u32 = 0;
        if let Some(r) = rest.strip_prefix('.') {
            let n = r.bytes().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 || n > 9 {
                return None;
            }
            let digits: u32 = r[..n].parse().ok()?;
            nanos = digits * 10u32.pow(9 - n as u32);
            rest = &r[n..];
        }
        let offset = match rest {
            "Z" | "z" => 0,
            _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
                if rest.as_bytes()[3] != b':' {
                    return None;
                }
                let sign = if rest.starts_with('-') { -1 } else { 1 };
                let oh: i64 = rest.get(1..3)?.parse().ok()?;
                let om: i64 = rest.get(4..6)?.parse().ok()?;
                sign * (oh * 3600 + om * 60)
            }
            _ => return None,
        };
        let secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
        Some(Timestamp { secs, nanos })
    }
}

/// Formats as Go's `time.RFC3339Nano` in UTC: `2024-01-02T03:04:05.123456789Z`, the
/// fraction without trailing zeros.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.secs.div_euclid(86400);
        let sod = self.secs.rem_euclid(86400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        )?;
        if self.nanos != 0 {
            let mut frac = format!("{:09}", self.nanos);
            while frac.ends_with('0') {
                frac.pop();
            }
            write!(f, ".{frac}")?;
        }
        f.write_str("Z")
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_like_go_rfc3339nano() {
        let t = Timestamp::parse_rfc3339("2024-01-02T03:04:05.123456789Z").unwrap();
        assert_eq!(t.to_string(), "2024-01-02T03:04:05.123456789Z");
        let t = Timestamp {
            secs: t.secs,
            nanos: 120_000_000,
        };
        assert_eq!(t.to_string(), "2024-01-02T03:04:05.12Z");
        let t = Timestamp {
            secs: t.secs,
            nanos: 0,
        };
        assert_eq!(t.to_string(), "2024-01-02T03:04:05Z");
        assert_eq!(
            Timestamp { secs: 0, nanos: 1 }.to_string(),
            "1970-01-01T00:00:00.000000001Z"
        );
        // 2000-02-29 is a leap day (divisible by 400).
        assert_eq!(
            Timestamp {
                secs: 951782400,
                nanos: 0
            }
            .to_string(),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn parse_offsets_and_rejects() {
        let z = Timestamp::parse_rfc3339("2024-01-02T03:04:05Z").unwrap();
        let o = Timestamp::parse_rfc3339("2024-01-02T05:04:05+02:00").unwrap();
        assert_eq!(z, o);
        assert_eq!(z.secs, 1704164645);
        for bad in [
            "2024-01-02",
            "2024-13-02T03:04:05Z",
            "2024-01-02T03:04:05",
            "2024-01-02T03:04:05.Z",
            "2024-01-02T03:04:05+0200",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_none(), "{bad}");
        }
    }
}
