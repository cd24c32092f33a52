//! RFC 3339 with nanoseconds, UTC, as docker prints `Created`, `StartedAt` and log
//! times; and its zero time for "never".

use std::time::{SystemTime, UNIX_EPOCH};

/// docker's zero `time.Time`, printed for a container that never started or stopped.
pub const ZERO: &str = "0001-01-01T00:00:00Z";

/// Civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2024-01-02T03:04:05.123456789Z` for a time (Go's RFC3339Nano trims trailing
/// zeros of the fraction, and drops it when zero).
pub fn rfc3339_nano(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, mo, da) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let mut out = format!(
        "{y:04}-{mo:02}-{da:02}T{:02}:{:02}:{:02}",
        s / 3600,
        (s / 60) % 60,
        s % 60
    );
    let n = d.subsec_nanos();
    if n != 0 {
        let f = format!("{n:09}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

pub fn now() -> String {
    rfc3339_nano(SystemTime::now())
}

/// Parse `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` to (unix seconds, nanoseconds).
pub fn parse(s: &str) -> Option<(i64, u32)> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = s.get(19..)?;
    let mut nanos = 0u32;
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        let digits = &r[..n.min(9)];
        nanos = format!("{digits:0<9}").parse().ok()?;
        rest = &r[n..];
    }
    let off = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o.get(1..3)?.parse::<i64>().ok()? * 3600
                + o.get(4..6)?.parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = if yy >= 0 { yy } else { yy - 399 } / 400;
    let yoe = yy - era * 400;
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 + se - off, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_and_parses_as_go() {
        let t = UNIX_EPOCH + Duration::new(1_704_164_645, 123_456_000);
        assert_eq!(rfc3339_nano(t), "2024-01-02T03:04:05.123456Z");
        assert_eq!(
            parse("2024-01-02T03:04:05.123456Z"),
            Some((1_704_164_645, 123_456_000))
        );
        assert_eq!(
            rfc3339_nano(UNIX_EPOCH + Duration::from_secs(1_704_164_645)),
            "2024-01-02T03:04:05Z"
        );
        assert_eq!(parse("2024-01-02T04:04:05+01:00"), Some((1_704_164_645, 0)));
        assert_eq!(parse("garbage"), None);
    }
}
