//! `events` (and `system events`): the journal's events as docker prints them,
//! followed live (docs/engine.md "Events").

use crate::logs::parse_time_arg;
use anyhow::{Context, Result};
use clap::Args;
use oxcart_engine::events::{follow, EventFilter, Message, ReadOptions};
use oxcart_engine::Engine;
use oxcart_jsonlog::Timestamp;
use serde_json::{json, Value};
use std::io::Write;

#[derive(Args, Debug, Clone, Default)]
pub struct EventsArgs {
    /// Show all events created since timestamp
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    pub until: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Format output using a custom template: 'json' or a Go template
    #[arg(long)]
    pub format: Option<String>,
}

fn nanos(t: Timestamp) -> i64 {
    t.secs * 1_000_000_000 + i64::from(t.nanos)
}

pub fn cmd_events(e: &Engine, a: &EventsArgs) -> Result<()> {
    let now = Timestamp::now();
    let since = a
        .since
        .as_deref()
        .map(|s| parse_time_arg("--since", s, now))
        .transpose()?
        .map(nanos);
    let until = a
        .until
        .as_deref()
        .map(|s| parse_time_arg("--until", s, now))
        .transpose()?
        .map(nanos);
    let opts = ReadOptions {
        // docker: `--until` alone lists the past events up to it.
        since: since.or(until.map(|_| 0)),
        until,
        filter: EventFilter::parse(&a.filter)?,
    };
    let fmt = a.format.as_deref().map(str::trim).filter(|f| !f.is_empty());
    // `json` and `{{json .}}` print the journal's line: docker's JSON, its field order.
    let raw = matches!(fmt, Some("json") | Some("{{json .}}"));
    let tmpl = match fmt {
        Some(f) if !raw => Some(
            oxcart_template::Formatter::new(f)
                .with_context(|| format!("template parsing error: {f}"))?,
        ),
        _ => None,
    };
    let stdout = std::io::stdout();
    let dir = e.layout.events_dir();
    let mut failed = None;
    follow(&dir, &opts, |m: Message<'_>| {
        let mut out = stdout.lock();
        let text = if raw {
            format!("{}\n", m.raw)
        } else if let Some(t) = &tmpl {
            match t.template().render_row(&go_fields(m.value)) {
                Ok(s) => format!("{s}\n"),
                Err(err) => {
                    failed = Some(err);
                    return Ok(false);
                }
            }
        } else {
            pretty(m.value)
        };
        out.write_all(text.as_bytes())?;
        out.flush()?;
        Ok(true)
    })?;
    if let Some(err) = failed {
        return Err(err.into());
    }
    Ok(())
}

/// The message with Go's field names, which templates address (`.Status`, `.ID`,
/// `.From`, `.Scope`, `.Time`, `.TimeNano`; `.Type`, `.Action`, `.Actor` as in JSON).
fn go_fields(v: &Value) -> Value {
    let g = |k: &str| v.get(k).cloned().unwrap_or(Value::String(String::new()));
    json!({
        "Status": g("status"),
        "ID": g("id"),
        "From": g("from"),
        "Type": g("Type"),
        "Action": g("Action"),
        "Actor": v.get("Actor").cloned().unwrap_or(json!({"ID": "", "Attributes": {}})),
        "Scope": g("scope"),
        "Time": v.get("time").cloned().unwrap_or(json!(0)),
        "TimeNano": v.get("timeNano").cloned().unwrap_or(json!(0)),
    })
}

/// docker's default line: `TIME TYPE ACTION ID (k=v, …)`, the time in local time
/// with nine fraction digits (moby's RFC3339NanoFixed), attributes sorted by key.
fn pretty(v: &Value) -> String {
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or("");
    let t = v.get("timeNano").and_then(Value::as_i64).unwrap_or(0);
    let mut line = format!(
        "{} {} {} {}",
        local_rfc3339_nano_fixed(t),
        s("/Type"),
        s("/Action"),
        s("/Actor/ID")
    );
    if let Some(attrs) = v.pointer("/Actor/Attributes").and_then(Value::as_object) {
        if !attrs.is_empty() {
            let mut kv: Vec<(&String, &str)> = attrs
                .iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or("")))
                .collect();
            kv.sort();
            let parts: Vec<String> = kv.iter().map(|(k, v)| format!("{k}={v}")).collect();
            line.push_str(&format!(" ({})", parts.join(", ")));
        }
    }
    line.push('\n');
    line
}

/// `2006-01-02T15:04:05.000000000Z07:00` in the local zone (`Z` for UTC, as Go).
fn local_rfc3339_nano_fixed(t: i64) -> String {
    let frac = t.rem_euclid(1_000_000_000) as u32;
    crate::timefmt::local_rfc3339(t.div_euclid(1_000_000_000), Some(frac))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_line_as_docker() {
        std::env::set_var("TZ", "UTC");
        let v: Value = serde_json::from_str(
            "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"abc\",\"Attributes\":{\"name\":\"x\",\"image\":\"bb\"}},\"timeNano\":1700000000000000005}",
        )
        .unwrap();
        assert_eq!(
            pretty(&v),
            "2023-11-14T22:13:20.000000005Z container start abc (image=bb, name=x)\n"
        );
    }
}
