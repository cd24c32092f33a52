//! `run`, `create`, `start -a` and `attach`: a container from flags, an attach to its
//! monitor before the runtime's `start` (so no output is lost), the caller's terminal
//! in raw mode for `-it`, signals forwarded (`--sig-proxy`), and the container's exit
//! code as ours.

use crate::ctr::RunArgs;
use crate::runopts::PullPolicy;
use crate::Ctx;
use anyhow::{bail, Context, Result};
use oxcart_engine::attach::{self, AttachEnd};
use oxcart_engine::create::CreateRequest;
use oxcart_engine::runtime::Runtime;
use oxcart_engine::start::StartOutcome;
use oxcart_engine::Engine;
use std::io::IsTerminal;

/// docker's `--detach-keys` (default ctrl-p,ctrl-q).
pub fn parse_detach_keys(s: Option<&str>) -> Result<Vec<u8>> {
    Ok(attach::parse_detach_keys(s.unwrap_or("ctrl-p,ctrl-q"))?)
}

/// Forward the signals a user sends `oxcart run`/`attach` to the container, as
/// docker's `--sig-proxy` (not with a tty: the terminal's keys reach it directly).
/// A thread waits for them with `sigwait`; they are blocked in every other thread.
pub fn proxy_signals(rt: Runtime, id: String) {
    let sigs = [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ];
    // SAFETY: sigset_t is plain data; the calls only fill and install it.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in sigs {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::spawn(move || loop {
        let mut sig = 0;
        // SAFETY: set was initialised above; sig is a valid out pointer.
        if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
            return;
        }
        let _ = rt.kill(&id, &sig.to_string(), false);
    });
}

/// Pull the image if `--pull` asks for it (missing: when it is not in the store).
fn ensure_image(
    ctx: &Ctx,
    e: &Engine,
    image: &str,
    pull: PullPolicy,
    platform: Option<&str>,
) -> Result<()> {
    let have = e.open_images()?.find(image).is_ok();
    match (pull, have) {
        (PullPolicy::Never, false) => bail!("No such image: {image}"),
        (PullPolicy::Never, true) | (PullPolicy::Missing, true) => Ok(()),
        (PullPolicy::Always, _) | (PullPolicy::Missing, false) => {
            if !have {
                eprintln!("Unable to find image '{image}' locally");
            }
            crate::pull_image(ctx, image, platform)
        }
    }
}

/// Network options not done yet are refused rather than silently dropped.
fn refuse_unsupported_network_flags(only: &crate::runopts::CliOnly) -> Result<()> {
    if only.ip6.is_some() {
        bail!("--ip6: IPv6 networks are not supported yet");
    }
    Ok(())
}

pub fn cmd_run(ctx: &Ctx, e: &mut Engine, a: &RunArgs, create_only: bool) -> Result<i32> {
    let (config, host_config, only) =
        a.flags
            .clone()
            .into_docker(&a.image, a.command.clone(), |k| std::env::var(k).ok())?;
    if config.tty
        && config.open_stdin
        && !create_only
        && !only.detach
        && !std::io::stdin().is_terminal()
    {
        bail!("the input device is not a TTY");
    }
    if let Some(f) = &only.cidfile {
        if std::path::Path::new(f).exists() {
            bail!("Container ID file found, make sure the other container isn't running or delete {f}");
        }
    }
    refuse_unsupported_network_flags(&only)?;
    let req = CreateRequest {
        name: only.name.clone(),
        config,
        host_config,
        health_on_failure: only.health_on_failure.clone(),
    };
    let rec = if only.pull == PullPolicy::Missing {
        // `create` looks the image up anyway: only when it fails is the store opened
        // again to tell a missing image (pull it, try again) from another error.
        match e.create(req.clone()) {
            Ok(rec) => rec,
            Err(err) if e.open_images()?.find(&a.image).is_ok() => return Err(err.into()),
            Err(_) => {
                ensure_image(ctx, e, &a.image, only.pull, only.platform.as_deref())?;
                e.create(req)?
            }
        }
    } else {
        ensure_image(ctx, e, &a.image, only.pull, only.platform.as_deref())?;
        e.create(req)?
    };
    // Every further --network: connected before the first start (docker's run does
    // the same with the API's network connect).
    // --ip: docker's IPAMConfig of the first network, kept for every start.
    if only.networks.len() > 1 || only.ip.is_some() || !only.network_aliases.is_empty() {
        let mut nets = oxcart_engine::network::Networks::open(&e.layout)?;
        let mode = &rec.host_config.network_mode;
        let r = only
            .ip
            .iter()
            .try_for_each(|ip| nets.request_ip(&rec.id, mode, ip))
            // --network-alias: docker's EndpointsConfig of the first network.
            .and_then(|()| nets.add_aliases(&rec.id, mode, &only.network_aliases))
            .and_then(|()| {
                only.networks
                    .iter()
                    .skip(1)
                    .try_for_each(|n| nets.connect(&rec.id, mode, n, &[]).map(drop))
            });
        if let Err(err) = r {
            let _ = e.remove(&rec.id, true);
            return Err(err.into());
        }
    }
    if let Some(f) = &only.cidfile {
        std::fs::write(f, &rec.id).with_context(|| format!("writing --cidfile {f}"))?;
    }
    if create_only {
        println!("{}", rec.id);
        return Ok(0);
    }
    if only.detach {
        let r = match e.start_prepare(&rec.id) {
            Ok(StartOutcome::Starting(s)) => s.finish().map(drop),
            Ok(StartOutcome::AlreadyRunning(_)) => Ok(()),
            Err(err) => Err(err),
        };
        if let Err(err) = r {
            if rec.host_config.auto_remove {
                let _ = e.remove(&rec.id, true);
                let _ = e.remove_anonymous_volumes(&rec);
            }
            return Err(err.into());
        }
        println!("{}", rec.id);
        return Ok(0);
    }
    let keys = parse_detach_keys(only.detach_keys.as_deref())?;
    let r = run_attached(e, &rec.id, rec.config.open_stdin, only.sig_proxy, &keys);
    if r.is_err() && rec.host_config.auto_remove {
        // docker removes an --rm container whose start failed.
        let _ = e.remove(&rec.id, true);
        let _ = e.remove_anonymous_volumes(&rec);
    }
    r
}

/// Start a created container attached to this terminal; the exit code is the
/// container's.
fn run_attached(
    e: &mut Engine,
    id: &str,
    stdin: bool,
    sig_proxy: bool,
    keys: &[u8],
) -> Result<i32> {
    let started = match e.start_prepare(id)? {
        StartOutcome::Starting(s) => {
            let att = attach::connect(&s.ctr_dir())?;
            // Before the start, so the monitor has it whenever the container exits.
            let hold = handoff(&att, s.record.host_config.auto_remove);
            // docker: `attach` comes between `create` and `start`.
            s.emit_attach();
            let monitor_pid = s.monitor_pid;
            let rec = s.finish()?;
            Some((att, rec, monitor_pid, hold))
        }
        StartOutcome::AlreadyRunning(_) => None,
    };
    let (att, rec, monitor_pid, hold) = match started {
        Some(x) => x,
        None => {
            let rec = e.find(id)?;
            let att = attach::connect(&e.ctr_dir(&rec.id))?;
            e.emit_ctr(&rec, "attach", &[]);
            (att, rec, 0, None)
        }
    };
    if sig_proxy && !rec.config.tty {
        proxy_signals(e.runtime_of(&rec)?, rec.id.clone());
    }
    let end = relay(att, rec.config.tty, stdin, keys)?;
    let removal = Removal {
        auto_remove: rec.host_config.auto_remove,
        monitor_pid,
        hold,
    };
    finish_attached(e, &rec.id, removal, end)
}

/// `--rm`: ask to remove the container ourselves when it exits (the monitor's
/// cleanup handoff) — our engine is loaded and its databases open, where the
/// monitor's exit command would start `oxcart` afresh while we wait for it. A
/// request that cannot be sent leaves the removal to the monitor, as before.
fn handoff(att: &attach::AttachConn, auto_remove: bool) -> Option<std::os::fd::OwnedFd> {
    if !auto_remove {
        return None;
    }
    att.request_cleanup().ok()
}

/// What an attached client does about an `--rm` container's removal at its exit.
struct Removal {
    auto_remove: bool,
    /// The monitor that removes it (its exit command) unless it hands us the job.
    monitor_pid: i32,
    /// Our attach connection, open until we have removed it (the handoff).
    hold: Option<std::os::fd::OwnedFd>,
}

/// What an attach's end means for our exit code; `--rm` waits for the removal, or
/// does it when the monitor hands it over.
fn finish_attached(e: &mut Engine, id: &str, removal: Removal, end: AttachEnd) -> Result<i32> {
    match end {
        AttachEnd::Exited {
            code,
            cleanup: true,
            ..
        } if removal.auto_remove => {
            // docker's CLI reports a failed auto-removal and still exits with the
            // container's code; the monitor, seeing the directory still there once
            // we hang up, runs its cleanup to finish it.
            if let Err(err) = e.cleanup(id) {
                eprintln!("Error: removing the container: {err}");
            }
            drop(removal.hold);
            Ok(code)
        }
        AttachEnd::Exited { code, .. } => {
            drop(removal.hold);
            if removal.auto_remove && removal.monitor_pid > 0 {
                oxcart_engine::wait::wait_pid_exit(
                    removal.monitor_pid,
                    Some(std::time::Duration::from_secs(30)),
                );
            }
            Ok(code)
        }
        AttachEnd::Detached => {
            eprintln!("\nread escape sequence");
            Ok(0)
        }
        AttachEnd::Closed => {
            // The monitor went away without an exit frame: read what it left.
            let rec = e.find(id)?;
            let o = e.observe(&rec)?;
            if !o.error.is_empty() {
                eprintln!("Error: {}", o.error);
            }
            Ok(o.exit
                .map(|x| x.exit_code as i32)
                .unwrap_or(crate::EXIT_ENGINE))
        }
    }
}

/// Relay this process's stdio to an attach connection, the terminal raw with a tty.
fn relay(att: attach::AttachConn, tty: bool, stdin: bool, keys: &[u8]) -> Result<AttachEnd> {
    use std::os::fd::AsFd;
    let stdin_h = std::io::stdin();
    let fd = stdin_h.as_fd();
    let stdin_tty = stdin_h.is_terminal();
    let _raw = if tty && stdin && stdin_tty {
        Some(crate::term::RawMode::enable(fd).context("putting the terminal in raw mode")?)
    } else {
        None
    };
    let winch = if tty && stdin_tty {
        Some(crate::term::Winch::new().context("watching the terminal's size")?)
    } else {
        None
    };
    let mut size = || {
        if let Some(w) = &winch {
            w.drain();
        }
        crate::term::window_size(fd).ok()
    };
    let resize = winch.as_ref().map(|w| attach::ResizeSource {
        fd: w.fd(),
        size: &mut size,
    });
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let io = attach::RelayIo {
        stdin: stdin.then_some(fd),
        stdout: &mut out,
        stderr: &mut err,
        detach_keys: (tty && stdin).then_some(keys),
        resize,
    };
    Ok(att.relay(io)?)
}

/// `start -a [-i]`.
pub fn start_attached(e: &mut Engine, key: &str, stdin: bool, keys: Option<&str>) -> Result<i32> {
    let keys = parse_detach_keys(keys)?;
    let rec = e.find(key)?;
    run_attached(e, &rec.id, stdin && rec.config.open_stdin, true, &keys)
}

/// `attach` to a running container.
pub fn cmd_attach(
    e: &mut Engine,
    key: &str,
    stdin: bool,
    sig_proxy: bool,
    keys: Option<&str>,
) -> Result<i32> {
    let keys = parse_detach_keys(keys)?;
    let rec = e.find(key)?;
    let o = e.observe(&rec)?;
    if !o.status.is_running() {
        bail!("You cannot attach to a stopped container, start it first");
    }
    if o.status == oxcart_engine::state::Status::Paused {
        bail!("You cannot attach to a paused container, unpause it first");
    }
    if o.status == oxcart_engine::state::Status::Restarting {
        bail!("You cannot attach to a restarting container, wait until it is running");
    }
    if !o.monitor_alive {
        bail!(
            "cannot attach to {}: its monitor died ({})",
            rec.name,
            o.error
        );
    }
    let att = attach::connect(&e.ctr_dir(&rec.id))?;
    e.emit_ctr(&rec, "attach", &[]);
    if sig_proxy && !rec.config.tty {
        proxy_signals(e.runtime_of(&rec)?, rec.id.clone());
    }
    let end = relay(att, rec.config.tty, stdin && rec.config.open_stdin, &keys)?;
    let removal = Removal {
        auto_remove: rec.host_config.auto_remove,
        monitor_pid: o.monitor.map(|m| m.pid).unwrap_or(0),
        hold: None,
    };
    finish_attached(e, &rec.id, removal, end)
}
