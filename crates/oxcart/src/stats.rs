//! `stats` (and `container stats`): docker's columns, units and calculations
//! (docker CLI's cli/command/container/stats_helpers.go and formatter/stats.go)
//! over the engine's samples; streamed and redrawn each second, or `--no-stream`.

use anyhow::{Context, Result};
use clap::Args;
use oxcart_engine::stats::{
    cpu_percent, cpu_percent_since_start, quick_sample, sample, Sample, StatsCtr, StatsHost,
};
use oxcart_engine::Engine;
use oxcart_template::Formatter;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

#[derive(Args, Debug, Clone, Default)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template
    #[arg(long)]
    pub format: Option<String>,
    pub containers: Vec<String>,
}

/// docker's default `stats` table.
const DEFAULT_FORMAT: &str =
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// [`DEFAULT_FORMAT`]'s fields in order, with docker's headers.
const DEFAULT_COLUMNS: [(&str, &str); 8] = [
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

fn headers() -> Value {
    let mut h: serde_json::Map<String, Value> = DEFAULT_COLUMNS
        .iter()
        .map(|(field, header)| (field.to_string(), json!(header)))
        .collect();
    h.insert("Container".into(), json!("CONTAINER"));
    Value::Object(h)
}

pub fn cmd_stats(e: &Engine, a: &StatsArgs) -> Result<()> {
    let fmt = match a.format.as_deref().map(str::trim) {
        None | Some("") | Some("table") => DEFAULT_FORMAT,
        Some(f) => f,
    };
    let formatter =
        Formatter::new(fmt).with_context(|| format!("template parsing error: {fmt}"))?;
    // The default table is written straight through the tabwriter: the template
    // engine's rows of JSON values were a fifth of `stats --no-stream`'s
    // instructions, for the same text (tested).
    let default_table = fmt == DEFAULT_FORMAT;
    let mut host = e.stats_host()?;
    // Named containers are resolved once: a missing one is an error up front.
    let named: Vec<(String, StatsCtr)> = a
        .containers
        .iter()
        .map(|n| e.find(n).map(|r| (n.clone(), StatsCtr::of(&r))))
        .collect::<std::result::Result<_, _>>()?;
    let mut prev: HashMap<String, Sample> = HashMap::new();
    let stdout = std::io::stdout();
    loop {
        // Listed anew each frame: docker follows starts and stops.
        let ctrs: Vec<(String, StatsCtr)> = if named.is_empty() {
            e.list_for_stats()?
                .into_iter()
                .map(|c| (c.id[..12.min(c.id.len())].to_string(), c))
                .collect()
        } else {
            named.clone()
        };
        let mut rows = Vec::with_capacity(ctrs.len());
        let mut next = HashMap::with_capacity(ctrs.len());
        // One container after the other on this thread: sampling on several threads
        // (tried until 2026-12-06, and again with observe on them too: 1.09x the wall
        // time) cost 5-7 % more CPU and no wall time on a 2-CPU host (docs/benchmarks.md)
        // — each container is a handful of small file reads, and the kernel shares CPU
        // time by session (autogroup), so a second thread competes for the same share.
        for (label, c) in &ctrs {
            let Some(s) = frame_sample(e, &host, c, named.is_empty() && !a.all)? else {
                continue;
            };
            let cpu = match prev.get(&c.id) {
                Some(p) if p.running && s.running => cpu_percent(p, &s),
                _ => cpu_percent_since_start(&s),
            };
            rows.push(row(label, c, &s, cpu, a.no_trunc));
            next.insert(c.id.clone(), s);
        }
        prev = next;
        let text = if default_table {
            default_table_text(&rows)
        } else {
            let rows: Vec<Value> = rows.iter().map(Row::json).collect();
            formatter.render(&rows, &headers())?
        };
        let mut out = stdout.lock();
        if !a.no_stream {
            // docker's CLI clears the screen and homes the cursor for each frame.
            out.write_all(b"\x1b[2J\x1b[H")?;
        }
        out.write_all(text.as_bytes())?;
        out.flush()?;
        if a.no_stream {
            return Ok(());
        }
        drop(out);
        std::thread::sleep(Duration::from_secs(1));
        host.refresh();
    }
}

/// A container's sample for this frame; `None` to leave it out (`running_only` and
/// it does not run, or it was removed since the listing).
fn frame_sample(
    e: &Engine,
    host: &StatsHost,
    c: &StatsCtr,
    running_only: bool,
) -> Result<Option<Sample>> {
    match quick_sample(host, c) {
        Some(s) if s.running || !running_only => return Ok(Some(s)),
        Some(_) => return Ok(None),
        None => {}
    }
    // Not known to run from its files and cgroup: its whole state decides (the
    // runtime is asked only if the monitor died, Engine::observe).
    let Some(rec) = e.get(&c.id)? else {
        return Ok(None);
    };
    let obs = e.observe(&rec)?;
    if running_only && !obs.status.is_running() {
        return Ok(None);
    }
    Ok(Some(sample(host, &rec, &obs)?))
}

/// One container's line, docker's fields as text.
struct Row {
    container: String,
    id: String,
    name: String,
    cpu_perc: String,
    mem_usage: String,
    mem_perc: String,
    net_io: String,
    block_io: String,
    pids: String,
}

impl Row {
    /// The row as the template engine sees it (docker's field names).
    fn json(&self) -> Value {
        json!({
            "BlockIO": self.block_io,
            "CPUPerc": self.cpu_perc,
            "Container": self.container,
            "ID": self.id,
            "MemPerc": self.mem_perc,
            "MemUsage": self.mem_usage,
            "Name": self.name,
            "NetIO": self.net_io,
            "PIDs": self.pids,
        })
    }
}

/// [`DEFAULT_FORMAT`] of `rows`, as the template engine renders it.
fn default_table_text(rows: &[Row]) -> String {
    let header = DEFAULT_COLUMNS.map(|(_, header)| header);
    let mut cells: Vec<[&str; 8]> = Vec::with_capacity(rows.len() + 1);
    cells.push(header);
    cells.extend(rows.iter().map(|r| {
        [
            r.id.as_str(),
            &r.name,
            &r.cpu_perc,
            &r.mem_usage,
            &r.mem_perc,
            &r.net_io,
            &r.block_io,
            &r.pids,
        ]
    }));
    oxcart_template::align_rows(&cells)
}

fn row(label: &str, c: &StatsCtr, s: &Sample, cpu: f64, no_trunc: bool) -> Row {
    let mem_pct = if s.mem_limit > 0 {
        s.mem_usage as f64 / s.mem_limit as f64 * 100.0
    } else {
        0.0
    };
    let id = if no_trunc {
        c.id.clone()
    } else {
        c.id[..12.min(c.id.len())].to_string()
    };
    Row {
        block_io: format!(
            "{} / {}",
            decimal_size(s.blk_read),
            decimal_size(s.blk_write)
        ),
        cpu_perc: format!("{cpu:.2}%"),
        container: label.to_string(),
        id,
        mem_perc: format!("{mem_pct:.2}%"),
        mem_usage: format!(
            "{} / {}",
            binary_size(s.mem_usage),
            binary_size(s.mem_limit)
        ),
        name: c.name.trim_start_matches('/').to_string(),
        net_io: format!("{} / {}", decimal_size(s.net_rx), decimal_size(s.net_tx)),
        pids: s.pids.to_string(),
    }
}

/// go-units' CustomSize: divide by `base` while it fits, then Go's `%.{prec}g`.
fn custom_size(n: u64, base: f64, units: &[&str], prec: usize) -> String {
    let mut v = n as f64;
    let mut i = 0;
    while v >= base && i < units.len() - 1 {
        v /= base;
        i += 1;
    }
    format!("{}{}", go_g(v, prec), units[i])
}

/// go-units' BytesSize (`%.4g` over powers of 1024): `1.5MiB`, `0B`.
pub fn binary_size(n: u64) -> String {
    custom_size(
        n,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"],
        4,
    )
}

/// go-units' HumanSizeWithPrecision(n, 3) (powers of 1000): `1.23MB`, `0B`.
pub fn decimal_size(n: u64) -> String {
    custom_size(n, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB", "EB"], 3)
}

/// Go's `%.{p}g`: `p` significant digits, trailing zeros dropped, the exponent form
/// when the exponent is below -4 or at least `p` (`1e+03`).
fn go_g(v: f64, p: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    // What the size columns print (1 <= v < 10^p, six per row): one fixed-point
    // formatting with the decimals that p significant digits leave, not the
    // exponent form's formatting first (a fifth of the rows' formatting time).
    if let Some(mut s) = go_g_fixed(v, p) {
        trim_fraction(&mut s);
        return s;
    }
    let mut sci = format!("{:.*e}", p.saturating_sub(1), v);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let mut mant = mant.to_string();
        trim_fraction(&mut mant);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let decimals = (p as i32 - 1 - exp).max(0) as usize;
    sci = format!("{v:.decimals$}");
    trim_fraction(&mut sci);
    sci
}

/// [`go_g`] of a `v` in [1, 10^p) as fixed point, untrimmed; `None` where rounding
/// to p digits carries into one more (9.996 at p = 3 is `10.0`, 999.96 is `1e+03`):
/// the general path decides those.
fn go_g_fixed(v: f64, p: usize) -> Option<String> {
    if !(1.0..10f64.powi(p as i32)).contains(&v) {
        return None;
    }
    let mut digits = 1;
    while digits < p && v >= 10f64.powi(digits as i32) {
        digits += 1;
    }
    let s = format!("{v:.*}", p - digits);
    (s.find('.').unwrap_or(s.len()) == digits).then_some(s)
}

/// Drop a fraction's trailing zeros, and its point if nothing is left after it.
fn trim_fraction(s: &mut String) {
    if s.contains('.') {
        let keep = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_as_go_units() {
        assert_eq!(binary_size(0), "0B");
        assert_eq!(binary_size(1536), "1.5KiB");
        assert_eq!(binary_size(10 * 1024 * 1024), "10MiB");
        assert_eq!(binary_size(1_992_294_400), "1.855GiB");
        assert_eq!(binary_size(1023), "1023B");
        assert_eq!(decimal_size(0), "0B");
        assert_eq!(decimal_size(1_234_567), "1.23MB");
        assert_eq!(decimal_size(4_400), "4.4kB");
        assert_eq!(decimal_size(999), "999B");
        assert_eq!(decimal_size(999_960), "1e+03kB");
        assert_eq!(go_g(123.45, 3), "123");
        assert_eq!(go_g(0.5, 3), "0.5");
    }

    /// The default table written through the tabwriter is the text the template
    /// engine makes of [`DEFAULT_FORMAT`]: no rows, and rows with wide characters,
    /// long names and a `--no-trunc` id.
    #[test]
    fn the_default_table_is_the_templates() {
        let sample = Sample {
            running: true,
            mem_usage: 1_992_294_400,
            mem_limit: 25 << 30,
            net_rx: 4_400,
            net_tx: 999_960,
            blk_read: 1_234_567,
            pids: 12,
            ..Default::default()
        };
        let ctr = |id: &str, name: &str| StatsCtr {
            id: id.into(),
            name: name.into(),
            ..Default::default()
        };
        let rows = [
            row(
                "a",
                &ctr(&"0123456789ab".repeat(5), "web"),
                &Sample::default(),
                0.0,
                false,
            ),
            row(
                "b",
                &ctr(&"f".repeat(64), "数据库-primary"),
                &sample,
                12.345,
                true,
            ),
            row(
                "c",
                &ctr("c1", "a-rather-long-name-for-a-column"),
                &sample,
                100.0,
                false,
            ),
        ];
        let formatter = Formatter::new(DEFAULT_FORMAT).expect("template");
        for n in 0..=rows.len() {
            let json: Vec<Value> = rows[..n].iter().map(Row::json).collect();
            let want = formatter.render(&json, &headers()).expect("render");
            assert_eq!(default_table_text(&rows[..n]), want, "{n} rows");
        }
    }

    /// The fixed-point path prints what the general one does, where rounding
    /// carries too (9.996 -> 10, 999.96 -> 1e+03) and at the powers of ten.
    #[test]
    fn go_g_fast_path_agrees_with_the_general_one() {
        let general = |v: f64, p: usize| {
            let sci = format!("{:.*e}", p - 1, v);
            let (mant, exp) = sci.split_once('e').expect("an exponent");
            let exp: i32 = exp.parse().expect("a number");
            let mut out = if exp < -4 || exp >= p as i32 {
                let mut m = mant.to_string();
                trim_fraction(&mut m);
                return format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
            } else {
                format!("{v:.*}", (p as i32 - 1 - exp).max(0) as usize)
            };
            trim_fraction(&mut out);
            out
        };
        let mut vs = vec![
            1.0, 9.996, 9.9996, 10.0, 99.95, 99.96, 999.4, 999.96, 1000.0, 1023.9,
        ];
        vs.extend((1..4000).map(|i| f64::from(i) * 0.2571));
        for p in [3, 4] {
            for &v in &vs {
                assert_eq!(go_g(v, p), general(v, p), "{v} at precision {p}");
            }
        }
        assert_eq!(go_g(9.996, 3), "10");
        assert_eq!(go_g(999.96, 3), "1e+03");
        assert_eq!(go_g(1023.9, 4), "1024");
    }
}
