//! Ryuk's configuration: the same `RYUK_*` variables, defaults and value syntax
//! (Go's `time.ParseDuration` and `strconv.ParseBool`), so testcontainers' settings
//! (it passes `RYUK_RECONNECTION_TIMEOUT` as `10s`) mean the same here.

use std::fmt;

/// Nanoseconds, signed: Go's `time.Duration` (`RYUK_RETRY_OFFSET` defaults to `-1s`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoDuration(pub i64);

impl GoDuration {
    pub const SECOND: i64 = 1_000_000_000;

    /// The duration as a std one; a negative one is zero.
    pub fn std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(u64::try_from(self.0).unwrap_or(0))
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    /// No first connection within this long: prune (nothing) and exit.
    pub connection_timeout: GoDuration,
    /// After the last client disconnects: wait this long, then prune and exit.
    pub reconnection_timeout: GoDuration,
    /// Bound of every Engine API request.
    pub request_timeout: GoDuration,
    /// Attempts at removing each resource.
    pub remove_retries: i64,
    /// Added to the prune check's time: a matching resource created after that is
    /// still being set up by someone, so the check waits instead of removing it.
    pub retry_offset: GoDuration,
    /// The wait before the next check when such a resource was found.
    pub changes_retry_interval: GoDuration,
    /// After SIGTERM/SIGINT with clients still connected: how long they may stay.
    pub shutdown_timeout: GoDuration,
    pub port: u16,
    pub verbose: bool,
}

impl Config {
    /// From the environment, Ryuk's defaults for what is unset or empty.
    pub fn from_env() -> Result<Config, String> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        // caarlos0/env (Ryuk's parser) uses the default for a variable set but empty.
        let val = |k: &str, default: &str| {
            get(k)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        let dur = |k: &str, default: &str| {
            let v = val(k, default);
            parse_duration(&v).map_err(|e| format!("{k}: {e}"))
        };
        // Go's time.NewTicker panics on a period ≤ 0; a clear error instead.
        let positive = |k: &str, default: &str| {
            let d = dur(k, default)?;
            if d.0 <= 0 {
                return Err(format!("{k}: {d} is not a positive duration"));
            }
            Ok(d)
        };
        let retries = val("RYUK_REMOVE_RETRIES", "10");
        let port = val("RYUK_PORT", "8080");
        let verbose = val("RYUK_VERBOSE", "false");
        Ok(Config {
            connection_timeout: positive("RYUK_CONNECTION_TIMEOUT", "60s")?,
            reconnection_timeout: positive("RYUK_RECONNECTION_TIMEOUT", "10s")?,
            request_timeout: positive("RYUK_REQUEST_TIMEOUT", "10s")?,
            remove_retries: retries
                .parse()
                .map_err(|_| format!("RYUK_REMOVE_RETRIES: {retries:?} is not an integer"))?,
            retry_offset: dur("RYUK_RETRY_OFFSET", "-1s")?,
            changes_retry_interval: positive("RYUK_CHANGES_RETRY_INTERVAL", "1s")?,
            shutdown_timeout: dur("RYUK_SHUTDOWN_TIMEOUT", "10m")?,
            port: port
                .parse()
                .map_err(|_| format!("RYUK_PORT: {port:?} is not a port number (0-65535)"))?,
            verbose: parse_bool(&verbose).ok_or_else(|| {
                format!("RYUK_VERBOSE: {verbose:?} is not a boolean (true, false, 1, 0, t, f)")
            })?,
        })
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `time.ParseDuration`: a signed sequence of decimal numbers, each with an
/// optional fraction and a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), like `1m30s`,
/// `-1.5h`, `300ms`; `0` alone needs no unit.
pub fn parse_duration(s: &str) -> Result<GoDuration, String> {
    let bad = || format!("invalid duration {s:?}");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(GoDuration(0));
    }
    if rest.is_empty() {
        return Err(bad());
    }
    // In nanoseconds; Go accepts up to 1<<63 for a negative duration.
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.bytes().take_while(u8::is_ascii_digit).count();
                a.split_at(n)
            }
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(bad());
        }
        let unit_len = after
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("missing unit in duration {s:?}")),
            u => return Err(format!("unknown unit {u:?} in duration {s:?}")),
        };
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let mut part = int.checked_mul(scale).ok_or_else(bad)?;
        if !frac.is_empty() {
            // Digits beyond what a nanosecond can hold are dropped, as Go does.
            let digits = &frac[..frac.len().min(30)];
            let f: u128 = digits.parse().map_err(|_| bad())?;
            part += f * scale / 10u128.pow(digits.len() as u32);
        }
        total = total.checked_add(part).ok_or_else(bad)?;
        if total > 1u128 << 63 {
            return Err(bad());
        }
        rest = after;
    }
    let v = if neg { -(total as i128) } else { total as i128 };
    i64::try_from(v).map(GoDuration).map_err(|_| bad())
}

/// Go's `Duration.String()` (`10s`, `1m0s`, `-1s`, `1.5ms`), as Ryuk logs durations.
impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.0 < 0;
        let u = self.0.unsigned_abs();
        let sign = if neg { "-" } else { "" };
        if u == 0 {
            return f.write_str("0s");
        }
        if u < 1_000 {
            return write!(f, "{sign}{u}ns");
        }
        if u < 1_000_000 {
            return write!(f, "{sign}{}\u{b5}s", decimal(u, 3));
        }
        if u < 1_000_000_000 {
            return write!(f, "{sign}{}ms", decimal(u, 6));
        }
        let secs = u / 1_000_000_000;
        let sec_part = decimal(u % 60_000_000_000, 9);
        let mins = secs / 60;
        let hours = mins / 60;
        if hours > 0 {
            write!(f, "{sign}{hours}h{}m{sec_part}s", mins % 60)
        } else if mins > 0 {
            write!(f, "{sign}{mins}m{sec_part}s")
        } else {
            write!(f, "{sign}{sec_part}s")
        }
    }
}

/// `v / 10^places` with its fraction, trailing zeros (and an empty fraction) dropped.
fn decimal(v: u64, places: u32) -> String {
    let p = 10u64.pow(places);
    let frac = v % p;
    if frac == 0 {
        return (v / p).to_string();
    }
    let digits = format!("{frac:0width$}", width = places as usize);
    format!("{}.{}", v / p, digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_go_does() {
        let ok = |s: &str| parse_duration(s).unwrap().0;
        assert_eq!(ok("10s"), 10 * GoDuration::SECOND);
        assert_eq!(ok("-1s"), -GoDuration::SECOND);
        assert_eq!(ok("1m30s"), 90 * GoDuration::SECOND);
        assert_eq!(ok("1.5h"), 5400 * GoDuration::SECOND);
        assert_eq!(ok("300ms"), 300_000_000);
        assert_eq!(ok(".5s"), 500_000_000);
        assert_eq!(ok("2us"), 2_000);
        assert_eq!(ok("2\u{b5}s"), 2_000);
        assert_eq!(ok("0"), 0);
        assert_eq!(ok("+3ns"), 3);
        for bad in ["", "-", "10", "s", "1x", "1.s.", "..5s", "9999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(parse_duration("10").unwrap_err().contains("missing unit"));
    }

    #[test]
    fn durations_print_as_go_does() {
        let p = |s: &str| parse_duration(s).unwrap().to_string();
        assert_eq!(p("10s"), "10s");
        assert_eq!(p("60s"), "1m0s");
        assert_eq!(p("10m"), "10m0s");
        assert_eq!(p("-1s"), "-1s");
        assert_eq!(p("1.5s"), "1.5s");
        assert_eq!(p("2h"), "2h0m0s");
        assert_eq!(p("3723.25s"), "1h2m3.25s");
        assert_eq!(p("1.5ms"), "1.5ms");
        assert_eq!(p("1500ns"), "1.5\u{b5}s");
        assert_eq!(p("7ns"), "7ns");
        assert_eq!(p("0"), "0s");
    }

    #[test]
    fn defaults_and_errors_name_the_variable() {
        let c = Config::from_lookup(|_| None).unwrap();
        assert_eq!(c.connection_timeout.to_string(), "1m0s");
        assert_eq!(c.reconnection_timeout.to_string(), "10s");
        assert_eq!(c.retry_offset.to_string(), "-1s");
        assert_eq!(c.shutdown_timeout.to_string(), "10m0s");
        assert_eq!((c.port, c.remove_retries, c.verbose), (8080, 10, false));
        // Empty is the default, as Ryuk's env parser has it.
        let c = Config::from_lookup(|k| (k == "RYUK_PORT").then(String::new)).unwrap();
        assert_eq!(c.port, 8080);
        let e = |k: &'static str, v: &'static str| {
            Config::from_lookup(move |x| (x == k).then(|| v.to_string())).unwrap_err()
        };
        assert!(e("RYUK_PORT", "70000").starts_with("RYUK_PORT:"));
        assert!(e("RYUK_RECONNECTION_TIMEOUT", "soon").starts_with("RYUK_RECONNECTION_TIMEOUT:"));
        assert!(e("RYUK_CONNECTION_TIMEOUT", "0").contains("not a positive"));
        assert!(e("RYUK_VERBOSE", "yes").starts_with("RYUK_VERBOSE:"));
        assert!(e("RYUK_REMOVE_RETRIES", "x").starts_with("RYUK_REMOVE_RETRIES:"));
        let c = Config::from_lookup(|k| (k == "RYUK_VERBOSE").then(|| "T".to_string())).unwrap();
        assert!(c.verbose);
    }
}
