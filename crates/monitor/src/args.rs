//! The command line of docs/engine.md "The monitor". Parsed by hand: the monitor
//! stays small (no clap) and its only caller is the engine.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogDriver {
    JsonFile,
    None,
}

#[derive(Debug)]
pub struct Args {
    pub id: String,
    pub ctr_dir: PathBuf,
    pub bundle: PathBuf,
    pub runtime: PathBuf,
    pub runtime_args: Vec<OsString>,
    pub runtime_root: PathBuf,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    pub log_driver: LogDriver,
    pub log_max_size: Option<u64>,
    pub log_max_file: u32,
    pub oom_files: Vec<PathBuf>,
    pub sync_fd: i32,
    pub exit_command: Vec<OsString>,
    /// The container's stop signal and timeout (seconds; < 0: never SIGKILL), for a
    /// `--health-on-failure stop|restart`.
    pub stop_signal: i32,
    pub stop_timeout: i64,
    /// The healthcheck: the probe's OCI process file for the runtime's `exec`, and
    /// docker's timings (ns) with its defaults already applied by the engine.
    pub health: Option<HealthArgs>,
    /// The events journal's directory (`oom` and `die` are the monitor's to emit).
    pub events_dir: Option<PathBuf>,
    pub events_max_size: u64,
    /// The container's event attributes (docker's `name`, `image`, labels).
    pub event_attrs: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct HealthArgs {
    pub process: PathBuf,
    pub interval_ns: u64,
    pub timeout_ns: u64,
    pub start_period_ns: u64,
    pub start_interval_ns: u64,
    pub retries: u32,
    pub on_failure: OnFailure,
}

/// podman's `--health-on-failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    #[default]
    None,
    Kill,
    Restart,
    Stop,
}

pub const USAGE: &str = "usage: oxcart-monitor --id ID --ctr-dir DIR --bundle DIR --runtime PATH \
[--runtime-arg A]... --runtime-root DIR [--tty] [--stdin] [--stdin-once] \
[--log-driver json-file|none] [--log-max-size BYTES] [--log-max-file N] [--oom-file PATH]... \
--sync-fd N [--exit-command ARG]... [--stop-signal N] [--stop-timeout S] \
[--health-process FILE --health-interval NS --health-timeout NS --health-start-period NS \
--health-start-interval NS --health-retries N --health-on-failure none|kill|restart|stop] \
[--events-dir DIR [--events-max-size BYTES] [--event-attr KEY=VALUE]...]";

/// Only the sync fd, for reporting an argument error to the engine.
pub fn sync_fd_of(argv: &[OsString]) -> Option<i32> {
    let i = argv.iter().position(|a| a == "--sync-fd")?;
    argv.get(i + 1)?.to_str()?.parse().ok()
}

pub fn parse(argv: &[OsString]) -> Result<Args, String> {
    let mut a = Args {
        id: String::new(),
        ctr_dir: PathBuf::new(),
        bundle: PathBuf::new(),
        runtime: PathBuf::new(),
        runtime_args: Vec::new(),
        runtime_root: PathBuf::new(),
        tty: false,
        stdin: false,
        stdin_once: false,
        log_driver: LogDriver::JsonFile,
        log_max_size: None,
        log_max_file: 1,
        oom_files: Vec::new(),
        sync_fd: -1,
        exit_command: Vec::new(),
        stop_signal: libc::SIGTERM,
        stop_timeout: 10,
        health: None,
        events_dir: None,
        events_max_size: oxcart_jsonlog::events::DEFAULT_MAX_SIZE,
        event_attrs: Vec::new(),
    };
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        match flag.to_str().unwrap_or("") {
            "--tty" => a.tty = true,
            "--stdin" => a.stdin = true,
            "--stdin-once" => a.stdin_once = true,
            name => {
                let v = it
                    .next()
                    .ok_or_else(|| format!("{}: missing value", flag.to_string_lossy()))?;
                set_value(&mut a, name, v)?;
            }
        }
    }
    check(&a)?;
    absolutize(&mut a)?;
    Ok(a)
}

/// One `--flag value`.
fn set_value(a: &mut Args, name: &str, v: &OsString) -> Result<(), String> {
    let s = || {
        v.to_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{name}: not UTF-8: {v:?}"))
    };
    match name {
        "--id" => a.id = s()?,
        "--ctr-dir" => a.ctr_dir = v.into(),
        "--bundle" => a.bundle = v.into(),
        "--runtime" => a.runtime = v.into(),
        "--runtime-arg" => a.runtime_args.push(v.clone()),
        "--runtime-root" => a.runtime_root = v.into(),
        "--log-driver" => {
            a.log_driver = match s()?.as_str() {
                "json-file" => LogDriver::JsonFile,
                "none" => LogDriver::None,
                other => return Err(format!("--log-driver {other:?}: must be json-file or none")),
            }
        }
        // docker: max-size 0 or unset means unlimited.
        "--log-max-size" => a.log_max_size = Some(number(name, &s()?)?).filter(|&n| n > 0),
        "--log-max-file" => {
            let n = number(name, &s()?)?;
            a.log_max_file = u32::try_from(n)
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| format!("--log-max-file {n}: must be 1 or more"))?;
        }
        "--oom-file" => a.oom_files.push(v.into()),
        "--sync-fd" => {
            a.sync_fd = i32::try_from(number(name, &s()?)?)
                .map_err(|_| format!("--sync-fd {v:?}: not a descriptor"))?
        }
        "--exit-command" => a.exit_command.push(v.clone()),
        "--stop-signal" => {
            a.stop_signal = i32::try_from(number(name, &s()?)?)
                .ok()
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| format!("--stop-signal {v:?}: not a signal number"))?
        }
        "--stop-timeout" => {
            a.stop_timeout = s()?
                .parse()
                .map_err(|_| format!("--stop-timeout {v:?}: not an integer"))?
        }
        "--events-dir" => a.events_dir = Some(v.into()),
        "--events-max-size" => a.events_max_size = number(name, &s()?)?,
        "--event-attr" => {
            let kv = s()?;
            let (k, val) = kv
                .split_once('=')
                .ok_or_else(|| format!("--event-attr {kv:?}: not KEY=VALUE"))?;
            a.event_attrs.push((k.to_string(), val.to_string()));
        }
        h if h.starts_with("--health-") => set_health(a, h, v)?,
        _ => return Err(format!("unknown flag {name:?}\n{USAGE}")),
    }
    Ok(())
}

fn set_health(a: &mut Args, name: &str, v: &OsString) -> Result<(), String> {
    let h = a.health.get_or_insert_with(HealthArgs::default);
    let s = v
        .to_str()
        .ok_or_else(|| format!("{name}: not UTF-8: {v:?}"))?;
    match name {
        "--health-process" => h.process = v.into(),
        "--health-interval" => h.interval_ns = number(name, s)?,
        "--health-timeout" => h.timeout_ns = number(name, s)?,
        "--health-start-period" => h.start_period_ns = number(name, s)?,
        "--health-start-interval" => h.start_interval_ns = number(name, s)?,
        "--health-retries" => {
            h.retries =
                u32::try_from(number(name, s)?).map_err(|_| format!("{name} {s:?}: too large"))?
        }
        "--health-on-failure" => {
            h.on_failure = match s {
                "none" => OnFailure::None,
                "kill" => OnFailure::Kill,
                "restart" => OnFailure::Restart,
                "stop" => OnFailure::Stop,
                _ => return Err(format!("{name} {s:?}: must be none, kill, restart or stop")),
            }
        }
        _ => return Err(format!("unknown flag {name:?}\n{USAGE}")),
    }
    Ok(())
}

fn check(a: &Args) -> Result<(), String> {
    if let Some(h) = &a.health {
        if h.process.as_os_str().is_empty() || h.interval_ns == 0 || h.timeout_ns == 0 {
            return Err(
                "a healthcheck needs --health-process, --health-interval and --health-timeout"
                    .into(),
            );
        }
    }
    for (flag, empty) in [
        ("--id", a.id.is_empty()),
        ("--ctr-dir", a.ctr_dir.as_os_str().is_empty()),
        ("--bundle", a.bundle.as_os_str().is_empty()),
        ("--runtime", a.runtime.as_os_str().is_empty()),
        ("--runtime-root", a.runtime_root.as_os_str().is_empty()),
        ("--sync-fd", a.sync_fd < 0),
    ] {
        if empty {
            return Err(format!("{flag} is required\n{USAGE}"));
        }
    }
    if a.stdin_once && !a.stdin {
        return Err("--stdin-once needs --stdin".into());
    }
    // The id becomes a path component and an argument of the runtime.
    if a.id.starts_with('-') || a.id.contains('/') || a.id.as_bytes().contains(&0) {
        return Err(format!("--id {:?}: not a container id", a.id));
    }
    if a.ctr_dir.as_os_str().as_bytes().contains(&0) {
        return Err("--ctr-dir contains a NUL byte".into());
    }
    Ok(())
}

/// The monitor moves to / (so it holds no mount busy): relative paths are resolved
/// against the engine's working directory first.
fn absolutize(a: &mut Args) -> Result<(), String> {
    let abs = |p: &mut PathBuf| -> Result<(), String> {
        *p = std::path::absolute(&*p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(())
    };
    abs(&mut a.ctr_dir)?;
    abs(&mut a.bundle)?;
    abs(&mut a.runtime_root)?;
    if let Some(d) = a.events_dir.as_mut() {
        abs(d)?;
    }
    // A bare name is looked up in $PATH, as Command does.
    if a.runtime.components().count() > 1 {
        abs(&mut a.runtime)?;
    }
    if let Some(h) = &mut a.health {
        abs(&mut h.process)?;
    }
    a.oom_files.iter_mut().try_for_each(abs)
}

fn number(flag: &str, s: &str) -> Result<u64, String> {
    s.parse()
        .map_err(|_| format!("{flag} {s:?}: not a non-negative integer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<OsString> {
        s.iter().map(OsString::from).collect()
    }

    #[test]
    fn full_command_line() {
        let a = parse(&v(&[
            "--id",
            "abc",
            "--ctr-dir",
            "/d",
            "--bundle",
            "/b",
            "--runtime",
            "/usr/sbin/runc",
            "--runtime-arg",
            "--systemd-cgroup",
            "--runtime-root",
            "/r",
            "--tty",
            "--stdin",
            "--stdin-once",
            "--log-max-size",
            "1000",
            "--log-max-file",
            "3",
            "--oom-file",
            "/o",
            "--sync-fd",
            "3",
            "--exit-command",
            "oxcart",
            "--exit-command",
            "--root",
        ]))
        .unwrap();
        assert_eq!(a.runtime_args, v(&["--systemd-cgroup"]));
        assert_eq!(a.exit_command, v(&["oxcart", "--root"]));
        assert_eq!(
            (a.log_max_size, a.log_max_file, a.sync_fd),
            (Some(1000), 3, 3)
        );
        assert!(a.tty && a.stdin && a.stdin_once);
    }

    #[test]
    fn health_and_stop_flags() {
        let mut argv = v(&[
            "--id",
            "x",
            "--ctr-dir",
            "/d",
            "--bundle",
            "/b",
            "--runtime",
            "r",
            "--runtime-root",
            "/r",
            "--sync-fd",
            "3",
            "--stop-signal",
            "2",
            "--stop-timeout",
            "-1",
        ]);
        let a = parse(&argv).unwrap();
        assert_eq!((a.stop_signal, a.stop_timeout), (2, -1));
        assert!(a.health.is_none());
        argv.extend(v(&[
            "--health-process",
            "/d/p.json",
            "--health-interval",
            "1000000000",
            "--health-timeout",
            "5",
            "--health-start-period",
            "0",
            "--health-start-interval",
            "7",
            "--health-retries",
            "3",
            "--health-on-failure",
            "restart",
        ]));
        let h = parse(&argv).unwrap().health.unwrap();
        assert_eq!(
            (h.interval_ns, h.timeout_ns, h.start_interval_ns),
            (1_000_000_000, 5, 7)
        );
        assert_eq!((h.retries, h.on_failure), (3, OnFailure::Restart));
        let mut bad = argv.clone();
        bad.extend(v(&["--health-on-failure", "reboot"]));
        assert!(parse(&bad).unwrap_err().contains("--health-on-failure"));
        let mut no_process = v(&["--health-interval", "1", "--health-timeout", "1"]);
        no_process.splice(0..0, argv[..12].iter().cloned());
        assert!(parse(&no_process).unwrap_err().contains("--health-process"));
        let mut bad_sig = argv[..12].to_vec();
        bad_sig.extend(v(&["--stop-signal", "99"]));
        assert!(parse(&bad_sig).unwrap_err().contains("--stop-signal"));
    }

    #[test]
    fn errors_name_the_flag() {
        let base = [
            "--id",
            "x",
            "--ctr-dir",
            "/d",
            "--bundle",
            "/b",
            "--runtime",
            "r",
            "--runtime-root",
            "/r",
            "--sync-fd",
            "3",
        ];
        let with = |extra: &[&str]| {
            let mut a = v(&base);
            a.extend(v(extra));
            parse(&a).unwrap_err()
        };
        assert!(with(&["--log-driver", "syslog"]).contains("--log-driver"));
        assert!(with(&["--log-max-file", "0"]).contains("--log-max-file"));
        assert!(with(&["--bogus", "1"]).contains("--bogus"));
        assert!(with(&["--stdin-once"]).contains("--stdin-once"));
        assert!(parse(&v(&base[2..])).unwrap_err().contains("--id"));
    }
}
