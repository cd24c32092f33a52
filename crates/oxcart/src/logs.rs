//! `logs`: the json-file log read back across its rotated files, with docker's
//! `--tail`, `--since`, `--until`, `-t` and `-f`.

use anyhow::{bail, Context, Result};
use clap::Args;
use oxcart_engine::Engine;
use oxcart_jsonlog::{Entry, ReadOptions, Stream, Timestamp};
use std::io::Write;

#[derive(Args, Debug, Clone)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs ("all" for every line)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)
    #[arg(long)]
    pub until: Option<String>,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    pub container: String,
}

/// docker's `--since`/`--until`: RFC 3339 (date-only and no-zone forms too), unix
/// seconds with an optional fraction, or a duration before now (`10s`, `5m`, `1h30m`).
pub fn parse_time_arg(flag: &str, s: &str, now: Timestamp) -> Result<Timestamp> {
    if let Some(t) = Timestamp::parse_rfc3339(s) {
        return Ok(t);
    }
    if s.len() == 10 && s.as_bytes().get(4) == Some(&b'-') {
        if let Some(t) = Timestamp::parse_rfc3339(&format!("{s}T00:00:00Z")) {
            return Ok(t);
        }
    }
    if s.len() == 19 && s.as_bytes().get(10) == Some(&b'T') {
        if let Some(t) = Timestamp::parse_rfc3339(&format!("{s}Z")) {
            return Ok(t);
        }
    }
    if let Some((a, b)) = s.split_once('.').or(Some((s, ""))) {
        if !a.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit())
            && b.bytes().all(|c| c.is_ascii_digit())
        {
            let secs: i64 = a.parse()?;
            let nanos: u32 = if b.is_empty() {
                0
            } else {
                format!("{:0<9}", &b[..b.len().min(9)]).parse()?
            };
            return Ok(Timestamp { secs, nanos });
        }
    }
    if let Some(d) = parse_go_duration(s) {
        let total = now.secs as i128 * 1_000_000_000 + now.nanos as i128 - d;
        return Ok(Timestamp {
            secs: total.div_euclid(1_000_000_000) as i64,
            nanos: total.rem_euclid(1_000_000_000) as u32,
        });
    }
    bail!("invalid value for \"{flag}\": failed to parse value as time or duration: \"{s}\"")
}

/// Go's `time.ParseDuration` (h, m, s, ms, us, ns), in nanoseconds.
pub fn parse_go_duration(s: &str) -> Option<i128> {
    let mut total: i128 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .count();
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .bytes()
            .take_while(|c| c.is_ascii_alphabetic() || *c == 0xc2 || *c == 0xb5)
            .count();
        let mul: f64 = match &rest[..u] {
            "h" => 3.6e12,
            "m" => 6e10,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return None,
        };
        rest = &rest[u..];
        total += (num * mul) as i128;
    }
    Some(total)
}

pub fn cmd_logs(e: &Engine, a: &LogsArgs) -> Result<()> {
    let rec = e.find(&a.container)?;
    if rec.host_config.log_config.kind == "none" {
        bail!("configured logging driver does not support reading");
    }
    let now = Timestamp::now();
    let opts = ReadOptions {
        tail: match a.tail.as_str() {
            "all" | "" => None,
            n => match n.parse::<i64>() {
                Ok(v) if v < 0 => None,
                Ok(v) => Some(v as usize),
                Err(_) => bail!("invalid value for \"--tail\": \"{n}\" (a number or \"all\")"),
            },
        },
        since: a
            .since
            .as_deref()
            .map(|s| parse_time_arg("--since", s, now))
            .transpose()?,
        until: a
            .until
            .as_deref()
            .map(|s| parse_time_arg("--until", s, now))
            .transpose()?,
    };
    let path = e.ctr_dir(&rec.id).join("ctr.log");
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let ts = a.timestamps;
    let mut sink = |en: Entry| -> std::io::Result<()> {
        let mut line = Vec::with_capacity(en.log.len() + 32);
        if ts {
            line.extend_from_slice(format!("{} ", en.time).as_bytes());
        }
        line.extend_from_slice(en.log.as_bytes());
        match en.stream {
            Stream::Stdout => stdout.lock().write_all(&line),
            Stream::Stderr => stderr.lock().write_all(&line),
        }
    };
    if a.follow {
        let mut gone = || {
            e.observe(&rec)
                .map(|o| !o.status.is_running())
                .unwrap_or(true)
        };
        oxcart_jsonlog::follow(&path, &opts, &mut gone, &mut sink)
            .with_context(|| format!("reading the log of {}", a.container))?;
    } else if path.exists() || !oxcart_jsonlog::log_files(&path).is_empty() {
        oxcart_jsonlog::read(&path, &opts, &mut sink)
            .with_context(|| format!("reading the log of {}", a.container))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_arguments_take_dockers_forms() {
        let now = Timestamp {
            secs: 1_000_000,
            nanos: 0,
        };
        assert_eq!(
            parse_time_arg("--since", "10m", now).expect("dur").secs,
            1_000_000 - 600
        );
        assert_eq!(
            parse_time_arg("--since", "1h30m", now).expect("dur").secs,
            1_000_000 - 5400
        );
        assert_eq!(
            parse_time_arg("--since", "1700000000", now)
                .expect("unix")
                .secs,
            1_700_000_000
        );
        assert_eq!(
            parse_time_arg("--since", "2024-01-02T03:04:05Z", now)
                .expect("rfc")
                .secs,
            1_704_164_645
        );
        let e = parse_time_arg("--until", "yesterday", now).expect_err("bad");
        assert!(e.to_string().contains("--until"), "{e}");
    }
}
