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
