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

/// `3 hours ago`, like docker's go-units HumanDuration.
pub fn ago(now: i64, t: i64) -> String {
    let s = (now - t).max(0);
    let (n, unit) = match s {
        0..=59 => return "Less than a minute ago".into(),
        60..=3599 => (s / 60, "minute"),
        3600..=172_799 => (s / 3600, "hour"),
        172_800..=1_209_599 => (s / 86400, "day"),
        1_209_600..=5_183_999 => (s / 604_800, "week"),
        5_184_000..=63_071_999 => (s / 2_592_000, "month"),
        _ => (s / 31_536_000, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
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
        assert_eq!(ago(30, 0), "Less than a minute ago");
    }
}
