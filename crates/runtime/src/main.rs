//! `oxcart-runtime`: an OCI runtime with runc's command line (compat.md §6).
//!
//! `no_main`: the C `main` below is the entry, so std's runtime set-up does not
//! run. Of what it does, the two things that matter are done in `std_setup`;
//! skipped are its stack-overflow handler (a handler, an alternate signal stack
//! and a guard page, after reading /proc/self/maps for the stack's bounds: a
//! dozen syscalls per start of a process that runs for a few milliseconds, three
//! per container lifecycle; an overflow is then a plain SIGSEGV) and the main
//! thread's name. `std::env::args` still works: on glibc, std reads argv from its
//! `.init_array` entry, not from this `main`.
// Not for the unit tests of this crate, which need the test harness's main.
#![cfg_attr(not(test), no_main)]

mod cgroup_cmds;
mod cli;
mod features;
mod log;

use anyhow::{anyhow, bail, Context, Result};
use cli::{flag, opt, Def};
use oxcart_container::{self as core, CreateOpts, Global};
use std::io::Write;
use std::path::PathBuf;

const GLOBAL: &[Def] = &[
    flag(&["debug"]),
    opt(&["log"]),
    opt(&["log-format"]),
    opt(&["root"]),
    opt(&["criu"]),
    flag(&["systemd-cgroup"]),
    opt(&["rootless"]),
    flag(&["help", "h"]),
    flag(&["version", "v"]),
];

const CREATE: &[Def] = &[
    opt(&["bundle", "b"]),
    opt(&["console-socket"]),
    opt(&["pidfd-socket"]),
    opt(&["pid-file"]),
    flag(&["no-pivot"]),
    flag(&["no-new-keyring"]),
    opt(&["preserve-fds"]),
];

const RUN_EXTRA: &[Def] = &[
    flag(&["detach", "d"]),
    flag(&["keep"]),
    flag(&["no-subreaper"]),
];

fn version_text() -> String {
    // go-runc's parseVersion needs the first line to start with "runc version "
    // (compat.md §6.4); the oxcart version follows on its own line.
    format!(
        "runc version 1.1.5-compatible\noxcart-runtime version {}\nspec: {}\n",
        env!("CARGO_PKG_VERSION"),
        oxcart_spec::OCI_VERSION
    )
}

const USAGE: &str = "oxcart-runtime: an OCI container runtime with runc's command line

USAGE: oxcart-runtime [global options] command [command options] [arguments...]

COMMANDS:
  create   create a container          start    start a created container
  run      create and start            state    output the state of a container
  kill     send a signal to init       delete   delete a container
  list     list containers             spec     write a new config.json

GLOBAL OPTIONS:
  --debug  --log FILE  --log-format text|json  --root DIR (default /run/oxcart; $XDG_RUNTIME_DIR/oxcart for non-root)
  --systemd-cgroup  --rootless auto|true|false  --version
";

/// The process entry (see the crate docs).
#[cfg(not(test))]
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    std_setup();
    run_main()
}

/// For the unit tests' build, where the harness's main is the entry.
#[cfg(test)]
fn main() {
    std_setup();
    run_main()
}

/// What std's runtime set-up does that this binary relies on: fds 0-2 open, so
/// that no file we open becomes our stdout (std's `sanitize_standard_fds`:
/// /dev/null for each closed one), and SIGPIPE ignored, so a write to a closed
/// pipe is an EPIPE error we report instead of death.
fn std_setup() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: poll on a valid array; open/dup2 of /dev/null onto our own fds;
    // setting a signal's disposition to SIG_IGN.
    unsafe {
        if libc::poll(fds.as_mut_ptr(), 3, 0) > 0 {
            for p in fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
                let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                if fd < 0 {
                    libc::abort();
                }
                if fd != p.fd {
                    libc::dup2(fd, p.fd);
                    libc::close(fd);
                }
            }
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

fn run_main() -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let g = match cli::parse(&args, GLOBAL, Some(1)) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let mut logger = match log::Logger::new(g.get("log"), g.get("log-format").unwrap_or("text")) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let result = real_main(&g);
    // Failed poststart/poststop hooks do not fail the operation; runtime-spec says
    // the runtime logs a warning (config.md "Hooks").
    for w in oxcart_container::hooks::take_warnings() {
        logger.log("warning", &w);
    }
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let msg = error_text(&e);
            logger.log("error", &msg);
            // runc's fatal(): the error goes to the log, and also to stderr when the
            // log is a file, because conmon reads the runtime's stderr (compat.md §6.5).
            if !logger.to_stderr() {
                let _ = writeln!(std::io::stderr(), "{msg}");
            }
            std::process::exit(1);
        }
    }
}

/// The error and its causes, "outer: inner", skipping a cause whose text the outer
/// message already ends with (our library errors include their source in Display).
fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if out.ends_with(&c) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&c);
    }
    out
}

/// runc's default: `$XDG_RUNTIME_DIR/<name>` for a non-root caller, so an
/// unprivileged user never shares (or touches) root's state directory.
fn default_root() -> PathBuf {
    core::rootless::default_root()
}

fn one_id(p: &cli::Parsed, cmd: &str) -> Result<String> {
    match p.args.as_slice() {
        [id] => Ok(id.clone()),
        [] => bail!("{cmd}: container id cannot be empty"),
        _ => bail!(
            "{cmd}: expected exactly one container id, got {}",
            p.args.len()
        ),
    }
}

fn create_opts(p: &cli::Parsed, id: String) -> Result<CreateOpts> {
    Ok(CreateOpts {
        id,
        bundle: PathBuf::from(p.get("bundle").unwrap_or(".")),
        pid_file: p.get("pid-file").map(PathBuf::from),
        console_socket: p.get("console-socket").map(PathBuf::from),
        pidfd_socket: p.get("pidfd-socket").map(PathBuf::from),
        no_pivot: p.bool("no-pivot"),
        no_new_keyring: p.bool("no-new-keyring"),
        preserve_fds: match p.get("preserve-fds") {
            Some(v) => v
                .parse()
                .map_err(|_| anyhow!("--preserve-fds: invalid number {v:?}"))?,
            None => 0,
        },
    })
}

fn real_main(g: &cli::Parsed) -> Result<i32> {
    if g.bool("version") {
        print!("{}", version_text());
        return Ok(0);
    }
    let Some(cmd) = g.args.first() else {
        print!("{USAGE}");
        return Ok(if g.bool("help") { 0 } else { 1 });
    };
    if cmd == "exec" {
        // Before any container process exists: from here on this process, and
        // every fork of it that enters the container, runs from a binary the
        // container cannot write (CVE-2019-5736, oxcart_container::selfexe).
        // `create` and `run` see to it themselves, once they know whether init
        // can switch on its own (selfexe::prepare_for_init).
        core::selfexe::ensure_sealed()?;
    }
    let rootless = core::rootless::resolve_flag(g.get("rootless"))?;
    let rest = &g.args[1..];
    let global = Global {
        root: g
            .get("root")
            .map(PathBuf::from)
            .unwrap_or_else(default_root),
        systemd_cgroup: g.bool("systemd-cgroup"),
        rootless,
    };
    match cmd.as_str() {
        "create" => {
            let p = cli::parse(rest, CREATE, None)?;
            let id = one_id(&p, "create")?;
            core::create(&global, &create_opts(&p, id)?)?;
            Ok(0)
        }
        "run" => {
            let defs: Vec<Def> = CREATE.iter().chain(RUN_EXTRA).copied().collect();
            let p = cli::parse(rest, &defs, None)?;
            let id = one_id(&p, "run")?;
            let o = create_opts(&p, id)?;
            Ok(core::run(&global, &o, p.bool("detach"), p.bool("keep"))?)
        }
        "start" => {
            let p = cli::parse(rest, &[], None)?;
            core::start(&global, &one_id(&p, "start")?)?;
            Ok(0)
        }
        "state" => {
            let p = cli::parse(rest, &[], None)?;
            let s = core::state(&global, &one_id(&p, "state")?)?;
            println!("{}", serde_json::to_string_pretty(&s)?);
            Ok(0)
        }
        "kill" => {
            let p = cli::parse(rest, &[flag(&["all", "a"])], Some(1))?;
            let (id, sig) = match p.args.as_slice() {
                [id] => (id.clone(), "SIGTERM".to_string()),
                [id, sig] => (id.clone(), sig.clone()),
                [] => bail!("kill: container id cannot be empty"),
                _ => bail!("kill: too many arguments"),
            };
            let n =
                core::sys::signal_number(&sig).ok_or_else(|| anyhow!("unknown signal {sig:?}"))?;
            core::kill(&global, &id, n, p.bool("all"))?;
            Ok(0)
        }
        "delete" => {
            let p = cli::parse(rest, &[flag(&["force", "f"])], None)?;
            core::delete(&global, &one_id(&p, "delete")?, p.bool("force"))?;
            Ok(0)
        }
        "list" => {
            let p = cli::parse(rest, &[opt(&["format", "f"]), flag(&["quiet", "q"])], None)?;
            let states = core::list(&global)?;
            let mut out = std::io::stdout().lock();
            if p.bool("quiet") {
                for s in &states {
                    writeln!(out, "{}", s.id)?;
                }
                return Ok(0);
            }
            match p.get("format").unwrap_or("table") {
                "json" => writeln!(out, "{}", serde_json::to_string(&states)?)?,
                "table" => {
                    let rows: Vec<[String; 6]> = states
                        .iter()
                        .map(|s| {
                            [
                                s.id.clone(),
                                s.pid.to_string(),
                                s.status.to_string(),
                                s.bundle.clone(),
                                s.created.clone(),
                                s.owner.clone(),
                            ]
                        })
                        .collect();
                    let head =
                        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
                    let mut w = [0usize; 6];
                    for r in std::iter::once(&head).chain(rows.iter()) {
                        for (i, c) in r.iter().enumerate() {
                            w[i] = w[i].max(c.len());
                        }
                    }
                    for r in std::iter::once(&head).chain(rows.iter()) {
                        let line: Vec<String> = r
                            .iter()
                            .enumerate()
                            .map(|(i, c)| format!("{c:<width$}", width = w[i]))
                            .collect();
                        writeln!(out, "{}", line.join("   ").trim_end())?;
                    }
                }
                f => bail!("invalid format option {f:?}: use table or json"),
            }
            Ok(0)
        }
        "spec" => {
            let p = cli::parse(rest, &[opt(&["bundle", "b"]), flag(&["rootless"])], None)?;
            let bundle = PathBuf::from(p.get("bundle").unwrap_or("."));
            let path = bundle.join("config.json");
            if path.exists() {
                bail!("File {} exists. Remove it first", path.display());
            }
            // SAFETY: getuid/getgid cannot fail.
            let ids = p
                .bool("rootless")
                .then(|| unsafe { (libc::geteuid(), libc::getegid()) });
            let spec = oxcart_spec::defaults::example(ids);
            let data = serde_json::to_vec_pretty(&spec)?;
            std::fs::write(&path, data).with_context(|| format!("write {}", path.display()))?;
            Ok(0)
        }
        "help" => {
            print!("{USAGE}");
            Ok(0)
        }
        "exec" => exec_cmd::run(&global, rest),
        "pause" => cgroup_cmds::pause(&global, rest),
        "resume" => cgroup_cmds::resume(&global, rest),
        "update" => cgroup_cmds::update(&global, rest),
        "events" => cgroup_cmds::events(&global, rest),
        "ps" => cgroup_cmds::ps(&global, rest),
        "features" => {
            cli::parse(rest, &[], None)?;
            println!("{}", serde_json::to_string_pretty(&features::features())?);
            Ok(0)
        }
        "checkpoint" | "restore" => {
            bail!("{cmd}: not supported by this build yet")
        }
        other => bail!("No help topic for '{other}'"),
    }
}

/// `exec` (runc's flags, compat.md §6.2): the command line to `ExecOpts`.
mod exec_cmd {
    use crate::cli::{self, flag, opt, Def};
    use anyhow::{anyhow, bail, Result};
    use oxcart_container::{self as core, ExecFlags, ExecOpts, ExecProcess, Global};
    use std::path::PathBuf;

    const EXEC: &[Def] = &[
        opt(&["console-socket"]),
        opt(&["pidfd-socket"]),
        opt(&["cwd"]),
        opt(&["env", "e"]),
        flag(&["tty", "t"]),
        opt(&["user", "u"]),
        opt(&["additional-gids", "g"]),
        opt(&["process", "p"]),
        flag(&["detach", "d"]),
        opt(&["pid-file"]),
        opt(&["process-label"]),
        opt(&["apparmor"]),
        flag(&["no-new-privs"]),
        opt(&["cap", "c"]),
        opt(&["preserve-fds"]),
        opt(&["cgroup"]),
        flag(&["ignore-paused"]),
    ];

    /// Every value of a repeatable flag (`--env A --env B`), in order, from the
    /// flags before the container id (StopOnNthArg 1: what follows is the command).
    fn all(args: &[String], name: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            i += 1;
            if a == "--" || a.len() < 2 || !a.starts_with('-') {
                break;
            }
            let body = a.strip_prefix("--").unwrap_or(&a[1..]);
            let (n, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let Some(def) = EXEC.iter().find(|d| d.names.contains(&n)) else {
                break;
            };
            if !def.value {
                continue;
            }
            let v = match inline {
                Some(v) => v,
                None => {
                    let Some(v) = args.get(i) else { break };
                    i += 1;
                    v.clone()
                }
            };
            if def.names[0] == name {
                out.push(v);
            }
        }
        out
    }

    /// runc exits 255 with "exec failed: …" when exec itself fails (runc exec.go
    /// `fatalWithCode`), so that callers can tell it from the process's own status.
    pub fn run(global: &Global, rest: &[String]) -> Result<i32> {
        match exec(global, rest) {
            Ok(code) => Ok(code),
            Err(e) => {
                // Log as main() does, with runc's prefix and exit code.
                let args: Vec<String> = std::env::args().skip(1).collect();
                let g = cli::parse(&args, crate::GLOBAL, Some(1))?;
                let mut logger =
                    crate::log::Logger::new(g.get("log"), g.get("log-format").unwrap_or("text"))?;
                let msg = format!("exec failed: {e}");
                logger.log("error", &msg);
                if !logger.to_stderr() {
                    eprintln!("{msg}");
                }
                std::process::exit(255);
            }
        }
    }

    fn exec(global: &Global, rest: &[String]) -> Result<i32> {
        let p = cli::parse(rest, EXEC, Some(1))?;
        let Some((id, cmd)) = p.args.split_first() else {
            bail!("exec: container id cannot be empty");
        };
        let process = match p.get("process") {
            Some(f) => ExecProcess::File(PathBuf::from(f)),
            None => {
                if cmd.is_empty() {
                    bail!("exec: process args cannot be empty");
                }
                ExecProcess::Flags(ExecFlags {
                    args: cmd.to_vec(),
                    env: all(rest, "env"),
                    cwd: p.get("cwd").map(String::from),
                    user: p.get("user").map(String::from),
                    additional_gids: all(rest, "additional-gids"),
                    caps: all(rest, "cap"),
                    tty: p.get("tty").map(|v| v == "true"),
                    no_new_privs: p.get("no-new-privs").map(|v| v == "true"),
                    apparmor: p.get("apparmor").map(String::from),
                    process_label: p.get("process-label").map(String::from),
                })
            }
        };
        let o = ExecOpts {
            id: id.clone(),
            process,
            console_socket: p.get("console-socket").map(PathBuf::from),
            pidfd_socket: p.get("pidfd-socket").map(PathBuf::from),
            detach: p.bool("detach"),
            pid_file: p.get("pid-file").map(PathBuf::from),
            preserve_fds: match p.get("preserve-fds") {
                Some(v) => v
                    .parse()
                    .map_err(|_| anyhow!("--preserve-fds: invalid number {v:?}"))?,
                None => 0,
            },
            cgroup: all(rest, "cgroup"),
            ignore_paused: p.bool("ignore-paused"),
        };
        Ok(core::exec(global, &o)?)
    }
}
