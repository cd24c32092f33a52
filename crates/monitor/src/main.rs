//! oxcart-monitor: the per-container supervisor, conmon's job (docs/engine.md "The
//! monitor"). Single-threaded: one poll loop over the container's stdio, the attach
//! socket's clients and a signalfd for SIGCHLD.

mod args;
mod create;
mod health;
mod json;
mod relay;
mod restart;
mod sys;
mod trash;

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oxcart_jsonlog::{Timestamp, Writer, WriterOptions};

use args::{Args, LogDriver};
use create::CtrDir;

const ATTACH: &str = "attach";

fn main() {
    let argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    if argv.first().is_some_and(|a| a == "--empty-trash") {
        std::process::exit(trash::main(&argv[1..]));
    }
    let args = match args::parse(&argv) {
        Ok(a) => a,
        Err(msg) => {
            if let Some(fd) = args::sync_fd_of(&argv).filter(|&fd| fd > 2) {
                // SAFETY: the engine gave us this descriptor to report on.
                let sync = unsafe { OwnedFd::from_raw_fd(fd) };
                report_error(sync, &msg);
            }
            eprintln!("oxcart-monitor: {msg}");
            std::process::exit(2);
        }
    };
    // SAFETY: --sync-fd names the pipe the engine passed us; we own it from here.
    let sync = unsafe { OwnedFd::from_raw_fd(args.sync_fd) };
    // The runtime and the container must not inherit it, or the engine would see no
    // end of the report while they live.
    if let Err(e) = sys::set_cloexec(sync.as_fd()) {
        eprintln!("oxcart-monitor: --sync-fd {}: {e}", args.sync_fd);
        std::process::exit(2);
    }
    if let Err(msg) = daemonize() {
        report_error(sync, &msg);
        std::process::exit(1);
    }
    let code = match supervise(&args, sync) {
        Ok(()) => 0,
        Err(msg) => {
            eprintln!("oxcart-monitor: {}: {msg}", args.id);
            1
        }
    };
    std::process::exit(code);
}

/// Step 1: the parent returns to the engine at once; the child leads a new session
/// (no controlling terminal, no SIGHUP when the user's terminal goes) and adopts
/// the container's orphans as a child subreaper (prctl(2) PR_SET_CHILD_SUBREAPER),
/// which is how it reaps the container's init once the runtime's `create` exits.
fn daemonize() -> Result<(), String> {
    // SAFETY: the monitor is single-threaded here; the child continues normally.
    match unsafe { libc::fork() } {
        -1 => return Err(format!("fork: {}", std::io::Error::last_os_error())),
        0 => {}
        // SAFETY: _exit skips destructors that belong to the child now.
        _ => unsafe { libc::_exit(0) },
    }
    // SAFETY: plain system calls without pointers.
    unsafe {
        if libc::setsid() < 0 {
            return Err(format!("setsid: {}", std::io::Error::last_os_error()));
        }
        if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 {
            return Err(format!(
                "PR_SET_CHILD_SUBREAPER: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    // Off the engine's cwd so it can be unmounted; stdin/stdout are not ours to keep
    // (stderr is where the engine wants our late errors).
    let _ = std::env::set_current_dir("/");
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 onto our own stdin/stdout.
        unsafe {
            libc::dup2(null.as_raw_fd(), 0);
            libc::dup2(null.as_raw_fd(), 1);
        }
    }
    Ok(())
}

fn report_error(sync: OwnedFd, msg: &str) {
    let line = format!("{{\"error\":{}}}\n", json::string(msg));
    let _ = sys::write_all(sync.as_fd(), line.as_bytes());
}

/// Steps 2–6. Errors before the report go to the engine on `sync`; later ones are
/// returned for stderr.
fn supervise(a: &Args, sync: OwnedFd) -> Result<(), String> {
    let (dir, setup) = match prepare(a) {
        Ok(x) => x,
        Err(msg) => return Err(fail(sync, &msg)),
    };
    let ctr_pid = setup.ctr_pid;
    let mut oom_before = oom_counts(&a.oom_files);
    let report = format!(
        "{{\"pid\":{ctr_pid},\"monitor_pid\":{}}}\n",
        std::process::id()
    );
    let _ = sys::write_all(sync.as_fd(), report.as_bytes());
    drop(sync);

    let mut relay = relay::Relay::new(setup).map_err(|e| format!("setting up stdio: {e}"))?;
    let mut restarts = restart::Manager::default();
    let mut started = Instant::now();
    let (exit, result, cleaner) = loop {
        let status = relay.run(a).map_err(|e| format!("poll: {e}"))?;
        let exit = Exit {
            code: sys::exit_code(status),
            oom_killed: oom_counts(&a.oom_files)
                .iter()
                .zip(&oom_before)
                .any(|(after, before)| after > before),
            finished_at: Timestamp::now(),
            error: String::new(),
        };
        let log_result = match relay.close_log() {
            Some(e) => Err(format!("closing the log: {e}")),
            None => Ok(()),
        };
        let delay = decide(a, &relay, &mut restarts, &exit, started.elapsed());
        // The state files before the exit frame: an attached `run` that returns on
        // it may be followed at once by an `inspect`, which must not see `running`.
        let pending = match delay {
            Some(d) => write_restart_json(a, restarts.count, true, &exit).map(|()| d),
            None => Err(String::new()),
        };
        let Ok(delay) = pending else {
            let error = pending.err().unwrap_or_default();
            let exit = Exit { error, ..exit };
            let result = write_exit_json(a, &exit).and(log_result);
            announce_exit(a, &exit);
            // Attached clients (`run` without -d) end with the run, as docker's do.
            // The handoff only from a monitor left without children: the runtime's
            // helpers we adopted as the subreaper (runsc's gofer and sandbox) must
            // keep being reaped while the runtime's `delete` waits for them, which
            // the exit command does as our child (exec_exit_command); a client's
            // delete meanwhile would find them zombies holding the cgroups.
            let cleaner = relay.finish(exit.code, exit.oom_killed, !sys::has_children());
            break (exit, result, cleaner);
        };
        announce_exit(a, &exit);
        relay.finish(exit.code, exit.oom_killed, false);
        match restart_after(a, &dir, &mut relay, restarts.count, &exit, delay) {
            Ok(true) => {
                // docker's restart manager: every run's exit is a `die`, every
                // restart a `start` (`restart` is the user's verb only).
                emit(a, "start", &[]);
                oom_before = oom_counts(&a.oom_files);
                started = Instant::now();
            }
            // Cancelled by the user during the backoff, or (docker) a restart that
            // fails to start leaves the container stopped with the error in
            // State.Error.
            other => {
                let exit = Exit {
                    error: other.err().unwrap_or_default(),
                    ..exit
                };
                let result = write_exit_json(a, &exit).and(log_result);
                break (exit, result, None);
            }
        }
    };
    if restarts.count > 0 {
        let _ = write_restart_json(a, restarts.count, false, &exit);
    }
    relay.close_listener();
    drop(relay);
    // No one accepts on it any more: a client connecting now would hang.
    dir.unlink(ATTACH);
    if let Some(conn) = cleaner {
        // The cleanup handoff (docs/engine.md "Attach protocol"): an attached
        // `run --rm` or an `rm -f` removes the container in its own process, which
        // has the engine loaded and the databases open, rather than waiting for ours
        // to start. It hangs up when done — or when it dies: then, if the container's
        // directory is still there, the exit command does the (idempotent) rest.
        sys::wait_hangup(conn.as_fd(), HANDOFF_LIMIT);
        if !a.ctr_dir.exists() {
            return result;
        }
    }
    exec_exit_command(a, result)
}

/// How long a client handed the cleanup may take before the exit command runs
/// anyway (it would find the container gone, or finish what the client left).
const HANDOFF_LIMIT: Duration = Duration::from_secs(60);

/// How a run ended.
pub struct Exit {
    code: i32,
    oom_killed: bool,
    finished_at: Timestamp,
    /// Why the container is not running although its policy wanted it to.
    error: String,
}

/// After a run's exit: whether (and after how long) it runs again — the restart
/// policy's decision, or podman's `--health-on-failure restart` (at once, and not
/// counted as the policy's restart).
fn decide(
    a: &Args,
    relay: &relay::Relay,
    restarts: &mut restart::Manager,
    exit: &Exit,
    ran: Duration,
) -> Option<Duration> {
    let markers = restart::Markers::read(&a.ctr_dir);
    if relay.health_restart && !markers.canceled {
        return Some(Duration::ZERO);
    }
    restarts.should_restart(restart::Policy::read(&a.ctr_dir), exit.code, &markers, ran)
}

/// The backoff, then the next run: the runtime's delete, create and start with the
/// same bundle (rootfs, volumes and network namespace stay). Ok(false): a user's
/// stop or kill cancelled it.
fn restart_after(
    a: &Args,
    dir: &CtrDir,
    relay: &mut relay::Relay,
    count: u64,
    exit: &Exit,
    delay: Duration,
) -> Result<bool, String> {
    let until = Instant::now() + delay;
    // A user's stop or kill during the backoff cancels it (docker's Cancel()).
    while relay
        .wait_backoff(until)
        .map_err(|e| format!("poll: {e}"))?
    {
        if restart::Markers::read(&a.ctr_dir).canceled {
            return Ok(false);
        }
    }
    // The container's lock: a `stop` writes its markers under it, so after this
    // check either it sees the new run in monitor.json or we see its markers.
    let lock_path = a.ctr_dir.join("lock");
    let _lock = sys::flock(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    if restart::Markers::read(&a.ctr_dir).canceled {
        return Ok(false);
    }
    create::delete_container(a);
    let mut reaped = Vec::new();
    let created = create::create(a, dir, relay.sigfd(), &mut reaped)?;
    let log = open_log(a)
        .and_then(|log| write_monitor_json(a, created.pid).map(|()| log))
        .and_then(|log| create::start_container(a).map(|()| log))
        .inspect_err(|_| create::delete_container(a))?;
    // The new run is started: a failure to say so must not end it.
    if let Err(e) = write_restart_json(a, count, false, exit) {
        eprintln!("oxcart-monitor: {}: {e}", a.id);
    }
    relay
        .new_run(created.io, a.stdin, a.stdin_once, log, created.pid, &reaped)
        .map_err(|e| format!("setting up stdio: {e}"))?;
    Ok(true)
}

/// Steps 2–4 up to the report: the attach socket, the runtime's create, the log and
/// monitor.json. A failure leaves nothing behind.
fn prepare(a: &Args) -> Result<(CtrDir, relay::Setup), String> {
    let sigfd = sys::sigchld_fd().map_err(|e| format!("signalfd: {e}"))?;
    let dir =
        CtrDir::open(&a.ctr_dir).map_err(|e| format!("--ctr-dir {}: {e}", a.ctr_dir.display()))?;
    // Step 2: bound before the container exists; connections wait in the backlog.
    dir.unlink(ATTACH);
    let listener = sys::listen(&dir.own_path(ATTACH), libc::SOCK_SEQPACKET)
        .map_err(|e| format!("attach socket in {}: {e}", a.ctr_dir.display()))?;
    let mut reaped = Vec::new();
    let created =
        create::create(a, &dir, sigfd.as_fd(), &mut reaped).inspect_err(|_| dir.unlink(ATTACH))?;
    // The log is opened only now, so that a failed create leaves no file behind.
    let log = open_log(a)
        .and_then(|log| write_monitor_json(a, created.pid).map(|()| log))
        .inspect_err(|_| {
            dir.unlink(ATTACH);
            create::delete_container(a);
        })?;
    let setup = relay::Setup {
        sigfd,
        listener,
        io: created.io,
        stdin: a.stdin,
        stdin_once: a.stdin_once,
        log,
        ctr_pid: created.pid,
        reaped,
        health: a.health.clone().map(|h| health::Health::new(h, &a.ctr_dir)),
    };
    Ok((dir, setup))
}

fn fail(sync: OwnedFd, msg: &str) -> String {
    report_error(sync, msg);
    msg.to_string()
}

fn open_log(a: &Args) -> Result<Option<Writer>, String> {
    if a.log_driver == LogDriver::None {
        return Ok(None);
    }
    let path = a.ctr_dir.join("ctr.log");
    let opts = WriterOptions {
        max_size: a.log_max_size,
        max_file: a.log_max_file,
    };
    Writer::open(&path, opts)
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes `name` in the container's directory through a temporary file and a
/// rename: readers see the whole file or none.
pub fn write_atomic(dir: &Path, name: &str, content: &str) -> Result<(), String> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let dst = dir.join(name);
    let r = File::create(&tmp)
        .and_then(|mut f| f.write_all(content.as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, &dst));
    r.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", dst.display())
    })
}

fn write_monitor_json(a: &Args, ctr_pid: libc::pid_t) -> Result<(), String> {
    let stat =
        std::fs::read_to_string("/proc/self/stat").map_err(|e| format!("/proc/self/stat: {e}"))?;
    let start_time = start_time(&stat).ok_or("/proc/self/stat: no start time")?;
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map_err(|e| format!("boot_id: {e}"))?;
    let content = format!(
        "{{\"pid\":{},\"start_time\":{start_time},\"boot_id\":{},\"ctr_pid\":{ctr_pid},\"started_at\":\"{}\"}}\n",
        std::process::id(),
        json::string(boot_id.trim()),
        Timestamp::now()
    );
    write_atomic(&a.ctr_dir, "monitor.json", &content)
}

/// Field 22 of /proc/<pid>/stat (proc(5)), counted after the `(comm)` that may hold
/// spaces.
fn start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn write_exit_json(a: &Args, e: &Exit) -> Result<(), String> {
    let mut content = format!(
        "{{\"exit_code\":{},\"finished_at\":\"{}\",\"oom_killed\":{}",
        e.code, e.finished_at, e.oom_killed
    );
    if !e.error.is_empty() {
        content += &format!(",\"error\":{}", json::string(&e.error));
    }
    content += "}\n";
    write_atomic(&a.ctr_dir, "exit.json", &content)
}

/// `restart.json`: docker's RestartCount, whether a restart is pending (the
/// container's status is then `restarting`) and the run's exit that led to it.
fn write_restart_json(a: &Args, count: u64, restarting: bool, e: &Exit) -> Result<(), String> {
    let content = format!(
        "{{\"restart_count\":{count},\"restarting\":{restarting},\"exit_code\":{},\"finished_at\":\"{}\",\"oom_killed\":{}}}\n",
        e.code, e.finished_at, e.oom_killed
    );
    write_atomic(&a.ctr_dir, restart::STATE_FILE, &content)
}

/// docker's order at an exit: `oom` (if the OOM killer struck), then `die` with
/// the exit code.
fn announce_exit(a: &Args, exit: &Exit) {
    if exit.oom_killed {
        emit(a, "oom", &[]);
    }
    emit(a, "die", &[("exitCode", &exit.code.to_string())]);
}

/// Append a container event to the journal; a failure is only logged (events are
/// best-effort, the exit is what matters).
fn emit(a: &Args, action: &str, extra: &[(&str, &str)]) {
    let Some(dir) = &a.events_dir else { return };
    // The engine's `event-attrs` (written by a `rename`) over the command line's.
    let file = std::fs::read(a.ctr_dir.join("event-attrs")).ok();
    let from_file: Vec<(&str, &str)> = file
        .as_deref()
        .map(|b| {
            b.split(|&c| c == 0)
                .filter_map(|kv| std::str::from_utf8(kv).ok()?.split_once('='))
                .collect()
        })
        .unwrap_or_default();
    let mut attrs: Vec<(&str, &str)> = if file.is_some() {
        from_file
    } else {
        a.event_attrs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    };
    attrs.extend_from_slice(extra);
    let ev = oxcart_jsonlog::events::Event {
        kind: "container",
        action,
        actor: &a.id,
        attributes: &attrs,
    };
    let journal = oxcart_jsonlog::events::Journal::new(dir, a.events_max_size);
    if let Err(e) = journal.append(&ev) {
        eprintln!("oxcart-monitor: {}: event {action}: {e}", a.id);
    }
}

/// The `oom_kill` counter of each `--oom-file` (v1 memory.oom_control, v2
/// memory.events both have an `oom_kill N` line; a missing file counts 0).
fn oom_counts(files: &[std::path::PathBuf]) -> Vec<u64> {
    files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("oom_kill "))
                        .and_then(|n| n.trim().parse().ok())
                })
                .unwrap_or(0)
        })
        .collect()
}

/// Step 6's end, when nothing follows it: the monitor *becomes* the engine's cleanup
/// (`execve`, same pid), so the monitor's exit still means the container is fully
/// gone (`run --rm` waits for this pid) without a fork, a second process's exit and
/// the wake-ups between them on the exit path. `before` is what the monitor has to
/// report first (its stderr is the container's `monitor.log`, which the cleanup
/// inherits, with our stdin and stdout on /dev/null); returns only if there is no
/// exit command or it cannot be executed.
fn exec_exit_command(a: &Args, before: Result<(), String>) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let Some((prog, rest)) = a.exit_command.split_first() else {
        return before;
    };
    // A child still alive (runsc's gofer and sandbox are adopted by us as the
    // subreaper) must keep being reaped while the cleanup runs (sys::wait_for says
    // why): only a monitor left without children can become the cleanup.
    if sys::has_children() {
        return before.and(run_exit_command(a));
    }
    if let Err(msg) = &before {
        eprintln!("oxcart-monitor: {}: {msg}", a.id);
    }
    // The signalfd's SIGCHLD block would survive execve (signal(7)): the cleanup
    // gets SIGCHLD back. SIGUSR1/SIGUSR2 stay blocked: a late `stop`'s wake or
    // `healthcheck run`'s request, pending now, would otherwise end this process
    // (their default action) before it became the cleanup; the cleanup's own
    // children start with an empty mask (std's Command resets it).
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it.
    unsafe {
        let mut chld: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut chld);
        libc::sigaddset(&mut chld, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_UNBLOCK, &chld, std::ptr::null_mut());
    }
    let e = Command::new(prog).args(rest).exec();
    Err(format!("exit command {prog:?}: {e}"))
}

/// The engine's cleanup as a child, waited for (reaping the other children that
/// exit meanwhile) so that the monitor's exit means the container is fully gone.
fn run_exit_command(a: &Args) -> Result<(), String> {
    let Some((prog, rest)) = a.exit_command.split_first() else {
        return Ok(());
    };
    let child = Command::new(prog)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("exit command {prog:?}: {e}"))?;
    let status = sys::wait_for(child.id() as libc::pid_t)
        .map_err(|e| format!("waiting for the exit command: {e}"))?;
    match sys::exit_code(status) {
        0 => Ok(()),
        n => Err(format!("exit command {prog:?} exited with {n}")),
    }
}
