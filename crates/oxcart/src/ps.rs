//! `ps`: docker's columns, filters and `--format` over derived states.

use crate::table::{self, human_size};
use anyhow::{bail, Result};
use clap::Args;
use oxcart_engine::record::Record;
use oxcart_engine::state::{Observed, Status};
use oxcart_engine::Engine;
use serde_json::{json, Value};
use std::io::Write;

#[derive(Args, Debug, Clone, Default)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long, value_name = "N")]
    pub last: Option<usize>,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
    /// Filter output based on conditions provided (status, name, id, label, ancestor, exited)
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Format output using a Go template, 'json' or 'table TEMPLATE'
    #[arg(long)]
    pub format: Option<String>,
}

/// go-units' HumanDuration, which docker's STATUS and CREATED columns use.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h) = (s / 60, s / 3600);
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if m == 1 => "About a minute".into(),
        _ if m < 60 => format!("{m} minutes"),
        _ if h == 1 => "About an hour".into(),
        _ if h < 48 => format!("{h} hours"),
        _ if h < 24 * 7 * 2 => format!("{} days", h / 24),
        _ if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        _ if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", h / 24 / 365),
    }
}

fn since(ts: &str, now: i64) -> Option<i64> {
    oxcart_engine::time::parse(ts).map(|(s, _)| now - s)
}

/// docker's STATUS: `Up 3 minutes (Paused)`, `Exited (0) 2 seconds ago`, `Created`.
pub fn status_text(o: &Observed, now: i64) -> String {
    match o.status {
        Status::Created => "Created".into(),
        Status::Restarting => {
            // docker: `Restarting (1) 2 seconds ago`, from the run that ended.
            let code = o.exit.as_ref().map(|e| e.exit_code).unwrap_or(0);
            let ago = o
                .exit
                .as_ref()
                .and_then(|e| since(&e.finished_at, now))
                .map(human_duration)
                .unwrap_or_default();
            format!("Restarting ({code}) {ago} ago")
        }
        Status::Running | Status::Paused => {
            let up = since(&o.started_at, now)
                .map(human_duration)
                .unwrap_or_default();
            let mut s = format!("Up {up}");
            if o.status == Status::Paused {
                s += " (Paused)";
            } else if let Some(h) = &o.health {
                // docker's Health.String(): `health: starting`, else the status.
                if h.status == "starting" {
                    s += " (health: starting)";
                } else {
                    s += &format!(" ({})", h.status);
                }
            }
            s
        }
        Status::Exited | Status::Dead | Status::Removing => {
            let code = o.exit.as_ref().map(|e| e.exit_code).unwrap_or(0);
            let ago = o
                .exit
                .as_ref()
                .and_then(|e| since(&e.finished_at, now))
                .map(|d| format!(" {} ago", human_duration(d)))
                .unwrap_or_default();
            if o.status == Status::Dead {
                "Dead".into()
            } else {
                format!("Exited ({code}){ago}")
            }
        }
    }
}

/// docker's COMMAND cell: the command, cut to 20 characters with `…`, quoted as Go's
/// strconv.Quote.
pub fn command_text(rec: &Record, trunc: bool) -> String {
    let mut c = std::iter::once(rec.path.as_str())
        .chain(rec.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    if trunc && c.chars().count() > 20 {
        c = c.chars().take(19).collect::<String>() + "…";
    }
    serde_json::to_string(&c).unwrap_or(c)
}

/// Go's `time.Time.String()` as docker's CreatedAt: `2024-01-02 03:04:05 +0000 UTC`.
fn created_at(ts: &str) -> String {
    let d = ts.get(..10).unwrap_or(ts);
    let t = ts.get(11..19).unwrap_or("");
    format!("{d} {t} +0000 UTC")
}

struct Filters(Vec<(String, String)>);

impl Filters {
    fn parse(v: &[String]) -> Result<Filters> {
        let mut out = Vec::new();
        for f in v {
            let Some((k, val)) = f.split_once('=') else {
                bail!("bad format of filter (expected name=value): {f}");
            };
            if ![
                "status", "name", "id", "label", "ancestor", "exited", "health",
            ]
            .contains(&k)
            {
                bail!("invalid filter '{k}'");
            }
            if k == "health" && !["none", "starting", "healthy", "unhealthy"].contains(&val) {
                bail!("invalid filter 'health={val}': invalid value for health ({val}): must be one of none, starting, healthy, unhealthy");
            }
            if k == "status"
                && ![
                    "created",
                    "restarting",
                    "running",
                    "removing",
                    "paused",
                    "exited",
                    "dead",
                ]
                .contains(&val)
            {
                bail!("invalid filter 'status={val}'");
            }
            out.push((k.to_string(), val.to_string()));
        }
        Ok(Filters(out))
    }

    /// docker: values of one key are ORed, different keys ANDed.
    fn matches(&self, e: &Engine, rec: &Record, o: &Observed) -> bool {
        let keys: std::collections::BTreeSet<&str> =
            self.0.iter().map(|(k, _)| k.as_str()).collect();
        keys.into_iter().all(|k| {
            self.0
                .iter()
                .filter(|(kk, _)| kk == k)
                .any(|(_, v)| one_matches(e, k, v, rec, o))
        })
    }

    fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }
}

fn one_matches(e: &Engine, k: &str, v: &str, rec: &Record, o: &Observed) -> bool {
    match k {
        "status" => o.status.as_str() == v,
        // docker's snapshot: `none` without a health state.
        "health" => {
            o.health
                .as_ref()
                .map(|h| h.status.as_str())
                .unwrap_or("none")
                == v
        }
        "name" => rec.name.contains(v.trim_start_matches('/')),
        "id" => rec.id.starts_with(v),
        "label" => match v.split_once('=') {
            Some((lk, lv)) => rec.config.labels.get(lk).map(String::as_str) == Some(lv),
            None => rec.config.labels.contains_key(v),
        },
        "ancestor" => {
            rec.config.image == v
                || rec.image_id == v
                || rec.image_id.trim_start_matches("sha256:").starts_with(v)
                || e.open_images()
                    .and_then(|i| Ok(i.find(v)?))
                    .map(|img| img.id.to_string() == rec.image_id)
                    .unwrap_or(false)
        }
        "exited" => {
            o.status == Status::Exited
                && o.exit.as_ref().map(|x| x.exit_code.to_string()) == Some(v.to_string())
        }
        _ => false,
    }
}

/// One row in docker's `ps --format` field names.
fn row(rec: &Record, o: &Observed, a: &PsArgs, now: i64, size: Option<(u64, u64)>) -> Value {
    let id = if a.no_trunc {
        rec.id.clone()
    } else {
        rec.id[..12].to_string()
    };
    let labels: Vec<String> = rec
        .config
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let network = match rec.host_config.network_mode.as_str() {
        "" | "default" => "bridge",
        m => m,
    };
    json!({
        "ID": id,
        "Image": rec.config.image,
        "Command": command_text(rec, !a.no_trunc),
        "CreatedAt": created_at(&rec.created),
        "RunningFor": since(&rec.created, now).map(|d| format!("{} ago", human_duration(d))).unwrap_or_default(),
        "Ports": "",
        "State": o.status.as_str(),
        "Status": status_text(o, now),
        "Size": size.map(|(rw, virt)| format!("{} (virtual {})", human_size(rw), human_size(virt))).unwrap_or_default(),
        "Names": rec.name,
        "Labels": labels.join(","),
        "Mounts": "",
        "Networks": network,
        "LocalVolumes": "0",
    })
}

/// docker's column titles for `ps --format 'table …'`.
fn headers() -> Value {
    json!({
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
        "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
        "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES",
        "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
        "LocalVolumes": "LOCAL VOLUMES",
    })
}

/// The containers `ps` lists, as rows in docker's field names, and their ids.
fn collect(e: &Engine, a: &PsArgs, filters: &Filters) -> Result<(Vec<Value>, Vec<String>)> {
    let now = crate::timefmt::now();
    let all =
        a.all || a.latest || a.last.is_some() || filters.has("status") || filters.has("exited");
    let mut recs = e.list()?;
    if a.latest {
        recs.truncate(1);
    } else if let Some(n) = a.last {
        recs.truncate(n);
    }
    let mut rows = Vec::new();
    let mut ids = Vec::new();
    for rec in &recs {
        let o = e.observe(rec)?;
        if (!all && !o.status.is_running()) || !filters.matches(e, rec, &o) {
            continue;
        }
        let size = a.size.then(|| {
            let rw = oxcart_engine::engine::dir_size(&e.ctr_dir(&rec.id).join("upper"));
            let img = e
                .open_images()
                .and_then(|i| Ok(i.find(&rec.image_id)?))
                .map(|i| i.size)
                .unwrap_or(0);
            (rw, rw + img)
        });
        ids.push(if a.no_trunc {
            rec.id.clone()
        } else {
            rec.id[..12].to_string()
        });
        rows.push(row(rec, &o, a, now, size));
    }
    Ok((rows, ids))
}

/// docker's default `ps` table.
fn default_table(rows: &[Value], sized: bool) -> String {
    let mut head = vec![
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    if sized {
        head.push("SIZE");
    }
    let mut lines = vec![head.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    for r in rows {
        let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
        let mut l = vec![
            s("ID"),
            s("Image"),
            s("Command"),
            s("RunningFor"),
            s("Status"),
            s("Ports"),
            s("Names"),
        ];
        if sized {
            l.push(s("Size"));
        }
        lines.push(l);
    }
    table::align(&lines)
}

pub fn cmd_ps(e: &Engine, a: &PsArgs) -> Result<()> {
    let filters = Filters::parse(&a.filter)?;
    let fmt = table::list_format(a.format.as_deref())?;
    let (rows, ids) = collect(e, a, &filters)?;
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for id in ids {
            writeln!(out, "{id}")?;
        }
        return Ok(());
    }
    table::print_list(&mut out, &fmt, &rows, &headers(), |rows| {
        default_table(rows, a.size)
    })
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn durations_read_as_dockers() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(61), "About a minute");
        assert_eq!(human_duration(300), "5 minutes");
        assert_eq!(human_duration(3700), "About an hour");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }
}
