//! docker-style "N units ago" formatting, over RFC 3339 times.

/// Seconds since the epoch now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Parse RFC 3339 to unix seconds (the json-file log's parser: one for the project).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    oxcart_jsonlog::Timestamp::parse_rfc3339(s).map(|t| t.secs)
}

/// `3 hours ago`: docker's CREATED column (go-units' HumanDuration and " ago", the
/// same words as `ps`'s STATUS).
pub fn ago(now: i64, t: i64) -> String {
    format!("{} ago", oxcart_engine::listing::human_duration(now - t))
}

/// Go's `time.RFC3339` (`nanos`: None) or a fixed nine-digit fraction, in the local
/// zone as Go's `time.Unix(…).Format` prints it (`Z` when the offset is 0); UTC if
/// the local time cannot be had.
pub fn local_rfc3339(secs: i64, nanos: Option<u32>) -> String {
    let tt = secs as libc::time_t;
    // SAFETY: an all-zero tm is valid; localtime_r writes into the one we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to a time_t and a tm.
    if unsafe { libc::localtime_r(&tt, &mut tm) }.is_null() {
        return oxcart_jsonlog::Timestamp {
            secs,
            nanos: nanos.unwrap_or(0),
        }
        .to_string();
    }
    let off = tm.tm_gmtoff;
    let zone = if off == 0 {
        "Z".to_string()
    } else {
        let a = off.abs();
        format!(
            "{}{:02}:{:02}",
            if off < 0 { '-' } else { '+' },
            a / 3600,
            (a % 3600) / 60
        )
    };
    let frac = nanos.map(|n| format!(".{n:09}")).unwrap_or_default();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{frac}{zone}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-02-29T12:00:00.123456789Z"),
            Some(1709208000)
        );
        assert_eq!(parse_rfc3339("2024-02-29T14:00:00+02:00"), Some(1709208000));
        assert_eq!(parse_rfc3339("garbage"), None);
        assert_eq!(ago(7200, 0), "2 hours ago");
        // go-units' words, as `ps` uses them (docker's `images` prints these).
        assert_eq!(ago(30, 0), "30 seconds ago");
        assert_eq!(ago(1, 0), "1 second ago");
        assert_eq!(ago(90, 0), "About a minute ago");
        assert_eq!(ago(3599, 0), "59 minutes ago");
        assert_eq!(ago(5399, 0), "About an hour ago");
        assert_eq!(ago(5400, 0), "2 hours ago");
        assert_eq!(ago(3 * 365 * 86400, 0), "3 years ago");
    }
}
