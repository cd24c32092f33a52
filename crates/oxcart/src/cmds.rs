//! The container verbs' handlers: flags → engine calls → docker's output and exit
//! codes. Library errors carry docker's wording; this file only prints them.

use crate::ctr::{ContainerCmd, CtrCmd, ExecArgs, UpdateArgs};
use crate::Ctx;
use anyhow::{anyhow, bail, Context, Result};
use oxcart_engine::exec::ExecOptions;
use oxcart_engine::filters::{split_pairs, LabelFilter};
use oxcart_engine::start::StartOutcome;
use oxcart_engine::update::UpdateRequest;
use oxcart_engine::Engine;
use std::io::IsTerminal;

/// A failure that ends the command with a given exit code after its message.
#[derive(Debug)]
pub struct Exit(pub i32);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}
impl std::error::Error for Exit {}

/// Run every name through `f`, printing docker's per-item line; one failure makes
/// the command fail after the rest were tried (docker's behaviour for `rm a b`).
fn each(names: &[String], mut f: impl FnMut(&str) -> Result<Option<String>>) -> Result<()> {
    let mut failed = 0;
    for n in names {
        match f(n) {
            Ok(Some(line)) => println!("{line}"),
            Ok(None) => {}
            Err(e) => {
                eprintln!("Error: {e:#}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(Exit(crate::EXIT_ENGINE).into());
    }
    Ok(())
}

pub fn dispatch(ctx: &Ctx, cmd: &CtrCmd) -> Result<i32> {
    let mut e = ctx.engine()?;
    match cmd {
        CtrCmd::Run(a) => crate::run::cmd_run(ctx, &mut e, a, false),
        CtrCmd::Create(a) => crate::run::cmd_run(ctx, &mut e, a, true),
        CtrCmd::Start {
            attach,
            interactive,
            detach_keys,
            containers,
        } if *attach || *interactive => {
            if containers.len() > 1 {
                bail!("you cannot start and attach multiple containers at once");
            }
            crate::run::start_attached(&mut e, &containers[0], *interactive, detach_keys.as_deref())
        }
        CtrCmd::Exec(a) => cmd_exec(&e, a),
        CtrCmd::Attach {
            no_stdin,
            sig_proxy,
            detach_keys,
            container,
        } => crate::run::cmd_attach(
            &mut e,
            container,
            !*no_stdin,
            *sig_proxy,
            detach_keys.as_deref(),
        ),
        c => {
            if !state_verb(&mut e, c)? {
                fs_or_view_verb(&mut e, c)?;
            }
            Ok(0)
        }
    }
}

/// The verbs that change a container's state, each over every name given; false if
/// `cmd` is not one of them.
fn state_verb(e: &mut Engine, cmd: &CtrCmd) -> Result<bool> {
    let done = |n: &str| Ok(Some(n.to_string()));
    match cmd {
        CtrCmd::Start { containers, .. } => each(containers, |n| {
            if let StartOutcome::Starting(s) = e.start_prepare(n)? {
                s.finish()?;
            }
            done(n)
        })?,
        CtrCmd::Stop {
            time,
            signal,
            containers,
        } => each(containers, |n| {
            e.stop_with_signal(n, *time, signal.as_deref())?;
            done(n)
        })?,
        CtrCmd::Kill { signal, containers } => each(containers, |n| {
            e.kill(n, signal)?;
            done(n)
        })?,
        CtrCmd::Rm(crate::ctr::RmArgs {
            force,
            volumes,
            containers,
        }) => each(containers, |n| {
            let rec = e.remove(n, *force)?;
            // `rm -v`: the container's anonymous volumes; named ones stay (docker).
            if *volumes {
                e.remove_anonymous_volumes(&rec)?;
            }
            done(n)
        })?,
        CtrCmd::Wait { containers } => each(containers, |n| Ok(Some(e.wait(n)?.to_string())))?,
        CtrCmd::Pause { containers } => each(containers, |n| {
            e.pause(n)?;
            done(n)
        })?,
        CtrCmd::Unpause { containers } => each(containers, |n| {
            e.unpause(n)?;
            done(n)
        })?,
        CtrCmd::Restart { time, containers } => each(containers, |n| {
            e.stop(n, *time)?;
            let started = match e.start_prepare(n)? {
                StartOutcome::Starting(s) => Some(s.finish()?),
                StartOutcome::AlreadyRunning(_) => None,
            };
            if let Some(rec) = started {
                e.emit_ctr(&rec, "restart", &[]);
            }
            done(n)
        })?,
        CtrCmd::Rename {
            container,
            new_name,
        } => {
            e.rename(container, new_name)?;
        }
        CtrCmd::Update(a) => cmd_update(e, a)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// The verbs that read a container or its filesystem.
fn fs_or_view_verb(e: &mut Engine, cmd: &CtrCmd) -> Result<()> {
    match cmd {
        CtrCmd::Ps(a) => crate::ps::cmd_ps(e, a)?,
        CtrCmd::Stats(a) => crate::stats::cmd_stats(e, a)?,
        CtrCmd::Logs(a) => crate::logs::cmd_logs(e, a)?,
        CtrCmd::Top { container, ps_args } => {
            let (titles, rows) = e.top(container, ps_args)?;
            let mut lines = vec![titles];
            lines.extend(rows);
            print!("{}", crate::table::align(&lines));
        }
        CtrCmd::Cp {
            archive,
            follow_link,
            src,
            dest,
        } => crate::fscmds::cmd_cp(e, src, dest, *archive, *follow_link)?,
        CtrCmd::Diff { container } => crate::fscmds::cmd_diff(e, container)?,
        CtrCmd::Export { output, container } => {
            crate::fscmds::cmd_export(e, container, output.as_deref())?
        }
        CtrCmd::Commit {
            author,
            change,
            message,
            pause,
            container,
            repository,
        } => crate::fscmds::cmd_commit(
            e,
            container,
            repository.as_deref(),
            author.as_deref(),
            message.as_deref(),
            change,
            *pause,
        )?,
        other => bail!("internal: {other:?} has no handler"),
    }
    Ok(())
}

pub fn dispatch_group(ctx: &Ctx, cmd: &ContainerCmd) -> Result<i32> {
    match cmd {
        ContainerCmd::Ctr(c) => dispatch(ctx, c),
        ContainerCmd::Inspect {
            format,
            size,
            containers,
        } => {
            crate::inspect::cmd_inspect(
                ctx,
                containers,
                format.as_deref(),
                Some("container"),
                *size,
            )?;
            Ok(0)
        }
        ContainerCmd::Prune { force, filter } => {
            let mut e = ctx.engine()?;
            if !force && !crate::term::confirm("WARNING! This will remove all stopped containers.")?
            {
                return Ok(0);
            }
            let labels = LabelFilter::for_prune(&split_pairs(filter)?)?;
            let (ids, bytes) = e.prune(|r| labels.matches(&r.config.labels))?;
            crate::volcmds::print_pruned("Deleted Containers:", &ids, bytes);
            Ok(0)
        }
        ContainerCmd::Cleanup { id } => {
            let mut e = ctx.engine()?;
            e.cleanup(id)?;
            Ok(0)
        }
    }
}

fn cmd_update(e: &mut Engine, a: &UpdateArgs) -> Result<()> {
    let restart = a
        .restart
        .as_deref()
        .map(crate::runopts::parse_restart)
        .transpose()?;
    let mem = |flag: &'static str, v: &Option<String>| -> Result<Option<i64>> {
        v.as_deref()
            .map(|s| {
                if s == "-1" {
                    return Ok(-1);
                }
                Ok(crate::runopts::ram_in_bytes(s, flag)?)
            })
            .transpose()
    };
    let req = UpdateRequest {
        memory: mem("-m, --memory", &a.memory)?,
        memory_reservation: mem("--memory-reservation", &a.memory_reservation)?,
        memory_swap: mem("--memory-swap", &a.memory_swap)?,
        nano_cpus: a
            .cpus
            .as_deref()
            .map(|s| {
                s.parse::<f64>()
                    .ok()
                    .filter(|c| *c >= 0.0)
                    .map(|c| (c * 1e9) as i64)
                    .ok_or_else(|| anyhow!("invalid argument \"{s}\" for \"--cpus\" flag: failed to parse {s} as a rational number"))
            })
            .transpose()?,
        cpu_shares: a.cpu_shares,
        cpu_period: a.cpu_period,
        cpu_quota: a.cpu_quota,
        cpuset_cpus: a.cpuset_cpus.clone(),
        cpuset_mems: a.cpuset_mems.clone(),
        pids_limit: a.pids_limit,
        blkio_weight: a.blkio_weight,
    };
    if req.is_empty() && restart.is_none() {
        bail!("you must provide one or more flags when using this command");
    }
    each(&a.containers, |n| {
        if !req.is_empty() {
            e.update(n, &req)?;
        }
        // docker's update --restart: the record, and a running container's monitor
        // applies it at the next exit.
        if let Some(p) = &restart {
            e.update_restart(n, p)?;
        }
        Ok(Some(n.to_string()))
    })
}

/// podman's `healthcheck run`: 0 when the probe passed; else the container's
/// health (`unhealthy`, `starting`) printed and 1.
pub fn cmd_healthcheck_run(ctx: &Ctx, container: &str) -> Result<i32> {
    let mut e = ctx.engine()?;
    let r = e.healthcheck_run(container)?;
    if r.exit_code == 0 {
        return Ok(0);
    }
    let status = if r.status == "healthy" {
        "unhealthy"
    } else {
        &r.status
    };
    println!("{status}");
    Ok(1)
}

/// `system boot` (what contrib/systemd/oxcart-boot.service runs): reclaim what a
/// reboot left and start the containers whose restart policy brings them back.
pub fn cmd_system_boot(ctx: &Ctx) -> Result<i32> {
    let mut e = ctx.engine()?;
    let mut failed = false;
    for a in e.boot()? {
        match &a.started {
            Some(Ok(())) => println!("{}: started", a.name),
            Some(Err(err)) => {
                failed = true;
                eprintln!("Error: {}: {err}", a.name);
            }
            None => println!("{}: reclaimed", a.name),
        }
    }
    Ok(if failed { crate::EXIT_ENGINE } else { 0 })
}

fn cmd_exec(e: &Engine, a: &ExecArgs) -> Result<i32> {
    let rec = e.find(&a.container)?;
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(crate::runopts::read_env_file(f)?);
    }
    for kv in &a.env {
        if kv.contains('=') {
            env.push(kv.clone());
        } else if let Ok(v) = std::env::var(kv) {
            env.push(format!("{kv}={v}"));
        }
    }
    if a.tty && !std::io::stdin().is_terminal() && a.interactive {
        bail!("the input device is not a TTY");
    }
    let opts = ExecOptions {
        cmd: a.command.clone(),
        env,
        user: a.user.clone(),
        workdir: a.workdir.clone(),
        tty: a.tty,
        detach: a.detach,
        privileged: a.privileged,
    };
    let mut p = e.prepare_exec(&rec, &opts)?;
    // docker's exec events: the action carries the command, `execID` the exec's id.
    let exec_id = oxcart_engine::names::new_id()?;
    e.emit_exec(&rec, "exec_create", &exec_id, &a.command);
    e.emit_exec(&rec, "exec_start", &exec_id, &a.command);
    if a.detach || !a.interactive {
        p.command.stdin(std::process::Stdio::null());
    }
    if a.detach {
        p.command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
    }
    let status = p
        .command
        .status()
        .with_context(|| format!("running the runtime's exec for {}", a.container))?;
    if let Some(err) = p.runtime_error() {
        let code = err.exit_code();
        eprintln!("Error: {err}");
        return Ok(if code == crate::EXIT_ENGINE {
            126
        } else {
            code
        });
    }
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    // With -d the runtime's exec returns once the process started and nothing of
    // ours waits for it (docker's daemon does): no exec_die (docs/engine.md "Events").
    if !a.detach {
        e.emit_exec_die(&rec, &exec_id, i64::from(code));
    }
    Ok(code)
}
