//! `pause`, `resume`, `update`, `events`, `ps`: runc's flags (compat.md §6.2) over
//! `oxcart_container::ops`.

use crate::cli::{self, flag, opt, Def};
use anyhow::{anyhow, bail, Context, Result};
use oxcart_container::{ops, Global};
use oxcart_spec::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};
use std::io::{Read, Write};
use std::time::Duration;

fn one_id(p: &cli::Parsed, cmd: &str) -> Result<String> {
    match p.args.first() {
        Some(id) if !id.is_empty() => Ok(id.clone()),
        _ => bail!("{cmd}: container id cannot be empty"),
    }
}

pub fn pause(g: &Global, rest: &[String]) -> Result<i32> {
    let p = cli::parse(rest, &[], None)?;
    ops::pause(g, &one_id(&p, "pause")?)?;
    Ok(0)
}

pub fn resume(g: &Global, rest: &[String]) -> Result<i32> {
    let p = cli::parse(rest, &[], None)?;
    ops::resume(g, &one_id(&p, "resume")?)?;
    Ok(0)
}

/// `ps`: `--format json` prints the pids; the table runs the host's `ps` with the
/// given arguments (default `-ef`) and keeps the container's lines, as runc does.
pub fn ps(g: &Global, rest: &[String]) -> Result<i32> {
    let p = cli::parse(rest, &[opt(&["format", "f"])], Some(1))?;
    let id = one_id(&p, "ps")?;
    let pids = ops::pids(g, &id)?;
    match p.get("format").unwrap_or("table") {
        "json" => {
            println!("{}", serde_json::to_string(&pids)?);
            Ok(0)
        }
        "table" => {
            let args: Vec<String> = if p.args.len() > 1 {
                p.args[1..].to_vec()
            } else {
                vec!["-ef".into()]
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .context("run ps")?;
            if !out.status.success() {
                bail!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or("");
            let col = header
                .split_whitespace()
                .position(|c| c == "PID")
                .ok_or_else(|| anyhow!("couldn't find PID field in ps output"))?;
            let mut o = std::io::stdout().lock();
            writeln!(o, "{header}")?;
            for l in lines {
                let pid: Option<i32> = l.split_whitespace().nth(col).and_then(|v| v.parse().ok());
                if pid.is_some_and(|x| pids.contains(&x)) {
                    writeln!(o, "{l}")?;
                }
            }
            Ok(0)
        }
        f => bail!("invalid format option {f:?}: use table or json"),
    }
}

/// Go's time.ParseDuration for the forms runc users write: "5s", "100ms", "1m", "1h30m".
fn parse_duration(s: &str) -> Result<Duration> {
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() || n == 'µ' {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let v: f64 = num.parse().map_err(|_| anyhow!("invalid duration {s:?}"))?;
        num.clear();
        let mult = match unit.as_str() {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => bail!("invalid duration {s:?}: unknown unit {unit:?}"),
        };
        total += v * mult;
        any = true;
    }
    if !num.is_empty() || !any || total <= 0.0 {
        bail!("invalid duration {s:?} (use e.g. 5s, 500ms)");
    }
    Ok(Duration::from_secs_f64(total))
}

pub fn events(g: &Global, rest: &[String]) -> Result<i32> {
    let p = cli::parse(rest, &[opt(&["interval"]), flag(&["stats"])], None)?;
    let id = one_id(&p, "events")?;
    if p.bool("stats") {
        println!("{}", serde_json::to_string(&ops::stats_event(g, &id)?)?);
        return Ok(0);
    }
    let interval = parse_duration(p.get("interval").unwrap_or("5s"))?;
    ops::events(g, &id, interval, |ev| {
        let mut o = std::io::stdout().lock();
        writeln!(o, "{ev}")
            .and_then(|_| o.flush())
            .map_err(|e| oxcart_container::Error::Other(e.to_string()))
    })?;
    Ok(0)
}

/// docker's units.RAMInBytes: "512", "64k", "100m", "1g" (binary multiples).
fn ram_bytes(flag: &str, v: &str) -> Result<i64> {
    let t = v.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow!("--{flag}: invalid size {v:?}"))?;
    if n < 0.0 {
        bail!("--{flag}: invalid size {v:?}");
    }
    Ok((n * mult as f64) as i64)
}

const UPDATE: &[Def] = &[
    opt(&["resources", "r"]),
    opt(&["blkio-weight"]),
    opt(&["cpu-period"]),
    opt(&["cpu-quota"]),
    opt(&["cpu-burst"]),
    opt(&["cpu-share"]),
    opt(&["cpu-rt-period"]),
    opt(&["cpu-rt-runtime"]),
    opt(&["cpuset-cpus"]),
    opt(&["cpuset-mems"]),
    opt(&["memory"]),
    opt(&["memory-reservation"]),
    opt(&["memory-swap"]),
    opt(&["pids-limit"]),
    opt(&["cpu-idle"]),
    opt(&["l3-cache-schema"]),
    opt(&["mem-bw-schema"]),
    opt(&["kernel-memory"]),
    opt(&["kernel-memory-tcp"]),
];

pub fn update(g: &Global, rest: &[String]) -> Result<i32> {
    let p = cli::parse(rest, UPDATE, None)?;
    let id = one_id(&p, "update")?;
    let mut r: LinuxResources = match p.get("resources") {
        Some("-") => {
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .context("read resources from stdin")?;
            oxcart_spec::parse_json(&b, "resources (stdin)")?
        }
        Some(f) => {
            let b = std::fs::read(f).with_context(|| format!("read {f}"))?;
            oxcart_spec::parse_json(&b, f)?
        }
        None => LinuxResources::default(),
    };
    let num = |name: &str| -> Result<Option<i64>> {
        p.get(name)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| anyhow!("--{name}: invalid number {v:?}"))
            })
            .transpose()
    };
    let unum = |name: &str| -> Result<Option<u64>> {
        p.get(name)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| anyhow!("--{name}: invalid number {v:?}"))
            })
            .transpose()
    };
    for k in ["l3-cache-schema", "mem-bw-schema"] {
        if p.get(k).is_some() {
            bail!("--{k}: Intel RDT is not supported by this build");
        }
    }
    for k in ["kernel-memory", "kernel-memory-tcp"] {
        if p.get(k).is_some() {
            // runc 1.1 ignores these obsolete flags with a warning; cgroup v1 kmem
            // limits are deprecated by the kernel.
            eprintln!("warning: --{k} is obsolete and ignored");
        }
    }
    if let Some(w) = unum("blkio-weight")? {
        let w = u16::try_from(w).map_err(|_| anyhow!("--blkio-weight: out of range"))?;
        r.block_io.get_or_insert_with(LinuxBlockIo::default).weight = Some(w);
    }
    if let Some(v) = unum("cpu-period")? {
        r.cpu.get_or_insert_with(LinuxCpu::default).period = Some(v);
    }
    if let Some(v) = unum("cpu-burst")? {
        r.cpu.get_or_insert_with(LinuxCpu::default).burst = Some(v);
    }
    if let Some(v) = unum("cpu-share")? {
        r.cpu.get_or_insert_with(LinuxCpu::default).shares = Some(v);
    }
    if let Some(v) = unum("cpu-rt-period")? {
        r.cpu.get_or_insert_with(LinuxCpu::default).realtime_period = Some(v);
    }
    if let Some(v) = num("cpu-quota")? {
        r.cpu.get_or_insert_with(LinuxCpu::default).quota = Some(v);
    }
    if let Some(v) = num("cpu-rt-runtime")? {
        r.cpu.get_or_insert_with(LinuxCpu::default).realtime_runtime = Some(v);
    }
    if let Some(v) = num("cpu-idle")? {
        r.cpu.get_or_insert_with(LinuxCpu::default).idle = Some(v);
    }
    if let Some(v) = p.get("cpuset-cpus") {
        r.cpu.get_or_insert_with(LinuxCpu::default).cpus = Some(v.to_string());
    }
    if let Some(v) = p.get("cpuset-mems") {
        r.cpu.get_or_insert_with(LinuxCpu::default).mems = Some(v.to_string());
    }
    for (flag, which) in [("memory", 0), ("memory-reservation", 1), ("memory-swap", 2)] {
        if let Some(v) = p.get(flag) {
            let b = ram_bytes(flag, v)?;
            let m = r.memory.get_or_insert_with(LinuxMemory::default);
            match which {
                0 => m.limit = Some(b),
                1 => m.reservation = Some(b),
                _ => m.swap = Some(b),
            }
        }
    }
    if let Some(v) = num("pids-limit")? {
        r.pids = Some(LinuxPids { limit: v });
    }
    ops::update(g, &id, &r)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn sizes_and_durations() {
        assert_eq!(ram_bytes("m", "100m").unwrap(), 100 << 20);
        assert_eq!(ram_bytes("m", "1G").unwrap(), 1 << 30);
        assert_eq!(ram_bytes("m", "-1").unwrap(), -1);
        assert_eq!(ram_bytes("m", "4096").unwrap(), 4096);
        assert!(ram_bytes("m", "lots").is_err());
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("0s").is_err());
    }
}
