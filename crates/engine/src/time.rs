//! Times as docker prints `Created`, `StartedAt` and `FinishedAt`: RFC 3339 with
//! nanoseconds in UTC (Go's RFC3339Nano), the same format as the json-file log's
//! timestamps, so one implementation (oxcart_jsonlog's) serves both.

use oxcart_jsonlog::Timestamp;

/// docker's zero `time.Time`, printed for a container that never started or stopped.
pub const ZERO: &str = "0001-01-01T00:00:00Z";

pub fn now() -> String {
    Timestamp::now().to_string()
}

/// Parse RFC 3339 to (unix seconds, nanoseconds).
pub fn parse(s: &str) -> Option<(i64, u32)> {
    Timestamp::parse_rfc3339(s).map(|t| (t.secs, t.nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_go() {
        let n = now();
        assert!(n.ends_with('Z') && n.len() >= 20, "{n}");
        assert!(parse(&n).is_some());
        assert_eq!(
            parse("2024-01-02T03:04:05.123456Z"),
            Some((1_704_164_645, 123_456_000))
        );
        assert_eq!(parse("garbage"), None);
    }
}
