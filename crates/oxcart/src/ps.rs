//! `ps`: docker's columns, filters and `--format` over derived states.

use crate::table::{self, human_size};
use anyhow::Result;
use clap::Args;
use oxcart_engine::listing::{command_text, human_duration, since, status_text, Filters};
use oxcart_engine::record::Record;
use oxcart_engine::state::Observed;
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

/// Go's `time.Time.String()` as docker's CreatedAt: `2024-01-02 03:04:05 +0000 UTC`.
fn created_at(ts: &str) -> String {
    let d = ts.get(..10).unwrap_or(ts);
    let t = ts.get(11..19).unwrap_or("");
    format!("{d} {t} +0000 UTC")
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
    use oxcart_engine::listing::human_duration;

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
