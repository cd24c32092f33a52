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
    // The default table is written straight through the tabwriter: the template
    // engine's rows of JSON values were a fifth of `stats --no-stream`'s
    // instructions, for the same text (tested), and its template is not parsed.
    let formatter = if fmt == DEFAULT_FORMAT {
        None
    } else {
        Some(Formatter::new(fmt).with_context(|| format!("template parsing error: {fmt}"))?)
    };
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
        let text = match &formatter {
            None => default_table_text(&rows),
            Some(f) => {
                let rows: Vec<Value> = rows.iter().map(Row::json).collect();
                f.render(&rows, &headers())?
            }
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

/// One container's line: docker's fields as text, in one buffer (a row was 9
/// strings and twice as many more made on the way; their allocations were a
/// tenth of `stats --no-stream`'s instructions).
struct Row {
    buf: String,
    /// Where each of [`Field`]'s texts ends in `buf`.
    ends: [usize; Field::COUNT],
}

/// [`Row`]'s fields, in their order in its buffer.
#[derive(Clone, Copy)]
enum Field {
    Container,
    Id,
    Name,
    CpuPerc,
    MemUsage,
    MemPerc,
    NetIo,
    BlockIo,
    Pids,
}

impl Field {
    const COUNT: usize = 9;
}

impl Row {
    fn get(&self, f: Field) -> &str {
        let i = f as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.buf[start..self.ends[i]]
    }

    /// The row as the template engine sees it (docker's field names).
    fn json(&self) -> Value {
        json!({
            "BlockIO": self.get(Field::BlockIo),
            "CPUPerc": self.get(Field::CpuPerc),
            "Container": self.get(Field::Container),
            "ID": self.get(Field::Id),
            "MemPerc": self.get(Field::MemPerc),
            "MemUsage": self.get(Field::MemUsage),
            "Name": self.get(Field::Name),
            "NetIO": self.get(Field::NetIo),
            "PIDs": self.get(Field::Pids),
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
            Field::Id,
            Field::Name,
            Field::CpuPerc,
            Field::MemUsage,
            Field::MemPerc,
            Field::NetIo,
            Field::BlockIo,
            Field::Pids,
        ]
        .map(|f| r.get(f))
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
        c.id.as_str()
    } else {
        &c.id[..12.min(c.id.len())]
    };
    let mut buf = String::with_capacity(label.len() + id.len() + c.name.len() + 96);
    let mut ends = [0; Field::COUNT];
    let mut at = 0;
    let mut end = |buf: &String| {
        ends[at] = buf.len();
        at += 1;
    };
    let pair = |buf: &mut String, a: u64, b: u64, size: fn(&mut String, u64)| {
        size(buf, a);
        buf.push_str(" / ");
        size(buf, b);
    };
    // Field's order. Writing to a String cannot fail.
    buf.push_str(label);
    end(&buf);
    buf.push_str(id);
    end(&buf);
    buf.push_str(c.name.trim_start_matches('/'));
    end(&buf);
    push_fixed_or_fmt(&mut buf, cpu, 2);
    buf.push('%');
    end(&buf);
    pair(&mut buf, s.mem_usage, s.mem_limit, push_binary_size);
    end(&buf);
    push_fixed_or_fmt(&mut buf, mem_pct, 2);
    buf.push('%');
    end(&buf);
    pair(&mut buf, s.net_rx, s.net_tx, push_decimal_size);
    end(&buf);
    pair(&mut buf, s.blk_read, s.blk_write, push_decimal_size);
    end(&buf);
    push_u64(&mut buf, s.pids);
    end(&buf);
    Row { buf, ends }
}

/// go-units' CustomSize: divide by `base` while it fits, then Go's `%.{prec}g`.
fn push_custom_size(out: &mut String, n: u64, base: f64, units: &[&str], prec: usize) {
    let mut v = n as f64;
    let mut i = 0;
    while v >= base && i < units.len() - 1 {
        v /= base;
        i += 1;
    }
    push_go_g(out, v, prec);
    out.push_str(units[i]);
}

fn push_binary_size(out: &mut String, n: u64) {
    push_custom_size(
        out,
        n,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"],
        4,
    );
}

fn push_decimal_size(out: &mut String, n: u64) {
    push_custom_size(
        out,
        n,
        1000.0,
        &["B", "kB", "MB", "GB", "TB", "PB", "EB"],
        3,
    );
}

/// go-units' BytesSize (`%.4g` over powers of 1024): `1.5MiB`, `0B`.
pub fn binary_size(n: u64) -> String {
    let mut s = String::new();
    push_binary_size(&mut s, n);
    s
}

/// go-units' HumanSizeWithPrecision(n, 3) (powers of 1000): `1.23MB`, `0B`.
#[cfg(test)]
fn decimal_size(n: u64) -> String {
    let mut s = String::new();
    push_decimal_size(&mut s, n);
    s
}

#[cfg(test)]
fn go_g(v: f64, p: usize) -> String {
    let mut s = String::new();
    push_go_g(&mut s, v, p);
    s
}

/// Go's `%.{p}g` of `v`, appended to `out`: `p` significant digits, trailing zeros
/// dropped, the exponent form when the exponent is below -4 or at least `p`
/// (`1e+03`).
fn push_go_g(out: &mut String, v: f64, p: usize) {
    use std::fmt::Write as _;
    if v == 0.0 {
        out.push('0');
        return;
    }
    let start = out.len();
    // What the size columns print (1 <= v < 10^p, six per row): one fixed-point
    // formatting with the decimals that p significant digits leave, not the
    // exponent form's formatting first (a fifth of the rows' formatting time).
    if push_g_fixed(out, v, p) {
        trim_fraction(out, start);
        return;
    }
    let _ = write!(out, "{:.*e}", p.saturating_sub(1), v);
    let e = out[start..].find('e').map_or(out.len(), |i| start + i);
    let exp: i32 = out.get(e + 1..).and_then(|x| x.parse().ok()).unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        out.truncate(e);
        trim_fraction(out, start);
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exp.abs());
        return;
    }
    out.truncate(start);
    let decimals = (p as i32 - 1 - exp).max(0) as usize;
    let _ = write!(out, "{v:.decimals$}");
    trim_fraction(out, start);
}

/// [`push_go_g`] of a `v` in [1, 10^p) as fixed point, untrimmed; false, with
/// nothing appended, where rounding to p digits carries into one more (9.996 at
/// p = 3 is `10.0`, 999.96 is `1e+03`): the general path decides those.
fn push_g_fixed(out: &mut String, v: f64, p: usize) -> bool {
    if !(1.0..10f64.powi(p as i32)).contains(&v) {
        return false;
    }
    let mut digits = 1;
    while digits < p && v >= 10f64.powi(digits as i32) {
        digits += 1;
    }
    let start = out.len();
    push_fixed_or_fmt(out, v, p - digits);
    let int_len = out[start..].find('.').unwrap_or(out.len() - start);
    if int_len != digits {
        out.truncate(start);
        return false;
    }
    true
}

/// `format!("{v:.d$}")` appended to `out`: through [`push_fixed`] where it can,
/// else std's formatting.
fn push_fixed_or_fmt(out: &mut String, v: f64, d: usize) {
    use std::fmt::Write as _;
    if !push_fixed(out, v, d) {
        // Writing to a String cannot fail.
        let _ = write!(out, "{v:.d$}");
    }
}

/// `v` with `d` (< 4) decimals, exactly as `format!("{v:.d$}")` and Go's
/// `%.{d}f` print it: the double's exact value rounded half to even. A double
/// is `m * 2^e` with `m` below 2^53, so `v * 10^d` is an integer division by a
/// power of two and its remainder tells the rounding. False, with nothing
/// appended, for what this does not cover (negative, not finite, too large).
/// Why: std's exact float formatting was most of a size column's cost, six
/// such columns and two percentages per row (docs/benchmarks.md).
fn push_fixed(out: &mut String, v: f64, d: usize) -> bool {
    const POW10: [u64; 4] = [1, 10, 100, 1000];
    if !v.is_finite() || !v.is_sign_positive() || d >= POW10.len() {
        return false;
    }
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1 << 52) - 1);
    // IEEE 754 binary64: subnormals have no implicit bit and the least exponent.
    let (m, e) = if biased == 0 {
        (frac, -1074)
    } else {
        (frac | 1 << 52, biased - 1075)
    };
    let scaled = u128::from(m) * u128::from(POW10[d]);
    let q = if e >= 0 {
        if e > 11 {
            return false;
        }
        scaled << e
    } else if e <= -127 {
        // Below 2^-74 times 10^d: rounds to zero.
        0
    } else {
        let shift = e.unsigned_abs();
        let q = scaled >> shift;
        let rem = scaled & ((1 << shift) - 1);
        let half = 1 << (shift - 1);
        if rem > half || (rem == half && q & 1 == 1) {
            q + 1
        } else {
            q
        }
    };
    let Ok(q) = u64::try_from(q) else {
        return false;
    };
    push_u64(out, q / POW10[d]);
    if d > 0 {
        out.push('.');
        let f = q % POW10[d];
        for i in (0..d).rev() {
            out.push(char::from(b'0' + (f / POW10[i] % 10) as u8));
        }
    }
    true
}

/// `n` in decimal, appended without the formatting machinery.
fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[i..].iter().map(|&b| char::from(b)));
}

/// Drop the trailing zeros of the fraction in `s[start..]`, and its point if
/// nothing is left after it.
fn trim_fraction(s: &mut String, start: usize) {
    if s[start..].contains('.') {
        let keep = s[start..].trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(start + keep);
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

    /// The integer fixed point prints what std's exact float formatting does:
    /// ties, subnormals, integers, large values, and a spread of doubles.
    #[test]
    fn fixed_point_is_std_formatting() {
        let mut vs = vec![
            0.0,
            0.5,
            0.25,
            0.125,
            2.5,
            1.125,
            1.375,
            10.25,
            1000.5,
            1001.5,
            0.005,
            0.015,
            0.004999999999999999,
            99.995,
            99.985,
            1e-300,
            5e-324,
            1e15,
            1.8e16,
            4.2e17,
            123456789.125,
            9007199254740993.0,
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            // xorshift: doubles of every exponent from 2^-30 to 2^40.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits((1023 - 30 + x % 70) << 52 | (x >> 12) & ((1 << 52) - 1));
            vs.push(v);
            vs.push((v * 1000.0).round() / 1000.0);
        }
        for &v in &vs {
            for d in 0..4 {
                let mut s = String::new();
                push_fixed_or_fmt(&mut s, v, d);
                assert_eq!(s, format!("{v:.d$}"), "{v:e} with {d} decimals");
            }
        }
        for v in [-1.5, -0.0, f64::NAN, f64::INFINITY, 1e30] {
            assert!(!push_fixed(&mut String::new(), v, 2), "{v}");
        }
        assert!(!push_fixed(&mut String::new(), 1.0, 4));
        let mut s = String::new();
        push_u64(&mut s, u64::MAX);
        push_u64(&mut s, 0);
        assert_eq!(s, format!("{}0", u64::MAX));
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
                trim_fraction(&mut m, 0);
                return format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
            } else {
                format!("{v:.*}", (p as i32 - 1 - exp).max(0) as usize)
            };
            trim_fraction(&mut out, 0);
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
        // Ties round to even, as std and Go's strconv do.
        assert_eq!(go_g(1.125, 3), "1.12");
        assert_eq!(go_g(1.375, 3), "1.38");
        assert_eq!(go_g(1000.5, 4), "1000");
        assert_eq!(go_g(1001.5, 4), "1002");
        assert_eq!(go_g(1023.9, 4), "1024");
    }
}
