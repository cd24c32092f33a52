//! The container lifecycle: create, start, run, state, kill, delete, list
//! (runtime-spec `runtime.md` "Operations", with runc's behaviour where the spec is
//! silent).

use crate::cg::Cg;
use crate::error::{Ctx, Error, Result};
use crate::hooks;
use crate::init::{init, InitArgs};
use crate::namespaces::{self, Plan};
use crate::process::{self, Prepared};
use crate::rootfs;
use crate::state::{self, Saved, StateDir};
use crate::sync::{self, Channel, Msg};
use crate::sys::{self, cstring};
use oxcart_spec::{Spec, State, Status};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Global options (runc's global flags that reach the core).
#[derive(Debug, Clone)]
pub struct Global {
    pub root: PathBuf,
    pub systemd_cgroup: bool,
    /// `--rootless` resolved (crate::rootless::resolve_flag): cgroups the caller
    /// may not create are skipped when no limits are set.
    pub rootless: bool,
}

#[derive(Debug, Clone, Default)]
pub struct CreateOpts {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// `--pidfd-socket`: receives a pidfd of init once it is ready (runc 1.2).
    pub pidfd_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
}

/// A container init we just created (and are the parent of).
pub struct Created {
    pub pid: libc::pid_t,
}

fn abs(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir().ctx(|| "getcwd".into())?.join(p))
    }
}

/// LISTEN_FDS passed to us by socket activation (sd_listen_fds(3)): honoured only if
/// LISTEN_PID names this process, as systemd's own library does.
fn listen_fds() -> u32 {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<i32>().ok())
        .is_some_and(|p| p == sys::getpid());
    if !pid_ok {
        return 0;
    }
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Load and check a bundle's config.
pub fn load_bundle(bundle: &Path) -> Result<(PathBuf, Spec)> {
    let bundle = abs(bundle)?;
    if !bundle.is_dir() {
        return Err(Error::Other(format!(
            "bundle {}: no such file or directory",
            bundle.display()
        )));
    }
    let spec = oxcart_spec::load_config(&bundle.join("config.json"))?;
    oxcart_spec::validate::validate_spec(&spec)?;
    Ok((bundle, spec))
}

/// `create`: set up the container and leave init waiting on exec.fifo.
pub fn create(g: &Global, o: &CreateOpts) -> Result<Created> {
    create_protected(g, o, true).map(|(c, _)| c)
}

/// [`create_inner`], run again from a protected binary when init could not
/// switch to it (crate::selfexe::become_in_init), which the parent's checks make
/// unexpected. The failed attempt has undone everything (CreateGuard) and no
/// container process ran. Not with a console or pidfd socket: their peer has
/// seen our connection close and would not take a second one, so that error is
/// returned.
fn create_protected(
    g: &Global,
    o: &CreateOpts,
    detach: bool,
) -> Result<(Created, Option<OwnedFd>)> {
    match create_inner(g, o, detach) {
        Err(Error::InitSeal(_)) if o.console_socket.is_none() && o.pidfd_socket.is_none() => {
            Err(crate::selfexe::reexec_protected())
        }
        r => r,
    }
}

/// The bundle, loaded and checked (step 1 of docs/architecture.md "`create`, step
/// by step", up to the namespaces).
struct Loaded {
    bundle: PathBuf,
    spec: Spec,
    /// `NOTIFY_SOCKET` is set: the container gets its socket (crate::notify).
    notify: bool,
    rootfs: PathBuf,
    plan: Plan,
    /// No mount namespace: the topmost mount at the rootfs before init's bind.
    rootfs_mount_before: Option<u64>,
}

/// The rest of step 1: what init will apply, parsed and checked now.
struct Checks {
    prepared: Prepared,
    map_method: crate::rootless::MapMethod,
    setgroups_ok: bool,
    mount_label: Option<String>,
    seccomp: Option<oxcart_seccomp::Filter>,
}

/// The caller's sockets, connected before anything exists so a bad path leaves
/// nothing behind (runc dials them in the parent too).
struct Sockets {
    /// Foreground `run` with a terminal: our end of the pair standing in for
    /// --console-socket.
    proxy_end: Option<OwnedFd>,
    pidfd: Option<OwnedFd>,
    console: Option<OwnedFd>,
}

/// The container's cgroups (step 3) and what is left to the parent after the clone.
struct Made {
    cg: Cg,
    /// The v1 cgroups and the limits come after the clone (Msg::TasksFds).
    defer_v1: bool,
    /// The parent makes init's network namespace after the clone (Msg::NetNs).
    netns_from_parent: bool,
}

/// `detach` is false only for a foreground `run` (runc's checkTerminal). With a
/// foreground terminal, also returns the pty master to proxy.
fn create_inner(g: &Global, o: &CreateOpts, detach: bool) -> Result<(Created, Option<OwnedFd>)> {
    let l = load_checked(g, o, detach)?;
    // CVE-2019-5736 (crate::selfexe), before anything exists: its fallback runs
    // this command again from the start. init has our credentials unless a user
    // namespace or rootless mode changes them; then it cannot switch itself.
    let in_init = !g.rootless && !l.plan.new_userns();
    let seal_view = match crate::selfexe::prepare_for_init(in_init)? {
        crate::selfexe::ForInit::Switch(view) => Some(view),
        crate::selfexe::ForInit::Nothing => None,
    };
    let mut c = check_process(g, &l.spec, &l.plan)?;
    let proc_cfg = l
        .spec
        .process
        .as_ref()
        .ok_or_else(|| Error::config("process", "missing"))?;
    let mut sockets = connect_sockets(o, proc_cfg.terminal)?;
    let sd = StateDir::create(&g.root, &o.id)?;
    let mut guard = CreateGuard {
        sd: Some(&sd),
        cg: None,
        pid: 0,
        shared_root: l.rootfs_mount_before.map(|id| (l.rootfs.clone(), id)),
    };
    if l.notify {
        crate::notify::make_dir(&sd.dir)?;
    }
    let made = make_cgroups(g, o, &l, in_init, (&sd, &mut guard))?;
    let (fifo, proc_fd) = make_fifo(&sd)?;
    let idmapped = crate::idmap::prepare(&l.spec, &l.bundle, l.plan.userns)?;
    let lfds = listen_fds();
    let args = InitArgs {
        id: &o.id,
        spec: &l.spec,
        plan: &l.plan,
        prepared: &c.prepared,
        rootfs: l.rootfs.clone(),
        bundle: l.bundle.clone(),
        no_pivot: o.no_pivot,
        no_new_keyring: o.no_new_keyring,
        pass_fds: lfds + o.preserve_fds,
        listen_fds: lfds,
        fifo,
        proc_fd,
        seccomp: c.seccomp.take(),
        cgroup_dirs: made.cg.mount_dirs(),
        cgroup_join: if made.defer_v1 {
            made.cg.join_files_unified()?
        } else {
            made.cg.join_files()?
        },
        cgroups_after_clone: made.defer_v1,
        netns_from_parent: made.netns_from_parent,
        console: sockets.console.take(),
        setgroups_ok: c.setgroups_ok,
        idmapped,
        mount_label: c.mount_label.take(),
    };
    let (pid, move_unified, ch) = clone_init(&args, &l, &sd, seal_view)?;
    guard.pid = pid;
    after_clone(g, o, &l, &c, &made, &args, (pid, move_unified, &ch))?;
    // While init finishes its setup: it reports "ready" (and disarms its
    // parent-death signal) only once this is done (Msg::Recorded), so an init
    // left waiting for `start` is always one `delete` can find.
    let saved = save_state(g, o, &l, &made.cg, &sd, pid)?;
    // A failed send means init failed: wait_ready reports its error.
    let _ = ch.send(&Msg::Recorded);
    wait_ready(&ch, pid, &o.id, &l.bundle, &l.spec)?;
    after_ready(o, &l, &sd, saved, pid, sockets.pidfd.as_ref())?;
    // init sent the master before "ready", so it is queued by now.
    let master = match &sockets.proxy_end {
        Some(sock) => Some(crate::console::recv_master(sock.as_fd())?),
        None => None,
    };
    guard.disarm();
    Ok((Created { pid }, master))
}

/// Step 1, up to the namespaces: `config.json` loaded and validated, the
/// terminal mode checked, the rootfs found, the namespace plan made.
fn load_checked(g: &Global, o: &CreateOpts, detach: bool) -> Result<Loaded> {
    let (bundle, mut spec) = load_bundle(&o.bundle)?;
    let notify = crate::notify::from_env()?.is_some();
    if notify {
        crate::notify::add_to_spec(&mut spec, &g.root.join(&o.id));
    }
    let proc_cfg = spec
        .process
        .as_ref()
        .ok_or_else(|| Error::config("process", "missing: create needs a process to start"))?;
    crate::exec::check_terminal(proc_cfg.terminal, detach, o.console_socket.is_some())?;
    let root_cfg = spec
        .root
        .as_ref()
        .ok_or_else(|| Error::config("root", "missing"))?;
    let rootfs = if root_cfg.path.starts_with('/') {
        PathBuf::from(&root_cfg.path)
    } else {
        bundle.join(&root_cfg.path)
    };
    if !rootfs.is_dir() {
        return Err(Error::config(
            "root.path",
            format!("{}: no such file or directory", rootfs.display()),
        ));
    }
    let plan = Plan::from_config(spec.linux.as_ref())?;
    // Without a mount namespace of its own (runtime-spec config-linux.md: the
    // container inherits the runtime's), init sets the rootfs up in the
    // runtime's and chroots into it, as runc does (rootfs::prepare_root).
    let shares_host_mounts = !plan.has(libc::CLONE_NEWNS);
    if shares_host_mounts && o.no_pivot {
        // runc would move the rootfs over the host's own `/`.
        return Err(Error::Other(
            "--no-pivot needs a mount namespace (linux.namespaces has none): it would move the rootfs over the runtime's /".into(),
        ));
    }
    // The topmost mount at the rootfs before init's bind: a failed create
    // detaches whatever is there instead (CreateGuard).
    let rootfs_mount_before = if shares_host_mounts {
        Some(sys::mount_id(&sys::cpath(&rootfs)?).ctx(|| format!("statx {}", rootfs.display()))?)
    } else {
        None
    };
    Ok(Loaded {
        bundle,
        spec,
        notify,
        rootfs,
        plan,
        rootfs_mount_before,
    })
}

/// The rest of step 1: capabilities, rlimits and sysctls parsed (namespace
/// checks as runc's validator), id maps, LSM settings and hooks checked, the
/// seccomp filter compiled (cached under `--root`).
fn check_process(g: &Global, spec: &Spec, plan: &Plan) -> Result<Checks> {
    let proc_cfg = spec
        .process
        .as_ref()
        .ok_or_else(|| Error::config("process", "missing"))?;
    let has = |f| plan.has(f) || (f == libc::CLONE_NEWCGROUP && plan.new_cgroupns);
    let prepared = process::prepare(spec, &has)?;
    crate::rootless::check_unprivileged(spec, plan.userns)?;
    let map_method = match spec.linux.as_ref() {
        Some(l) if plan.new_userns() => {
            namespaces::check_id_maps(l)?;
            crate::rootless::map_method(&l.uid_mappings, &l.gid_mappings)
        }
        _ => crate::rootless::MapMethod::Direct,
    };
    let setgroups_ok = map_method != crate::rootless::MapMethod::OwnIds;
    if !setgroups_ok && !proc_cfg.user.additional_gids.is_empty() {
        // user_namespaces(7): an unprivileged caller writes gid_map only after
        // denying setgroups; wider maps need newgidmap.
        return Err(Error::config(
            "process.user.additionalGids",
            "cannot be set in a rootless container that maps only the caller's own ids (setgroups is denied; map more ids with linux.gidMappings and newgidmap)",
        ));
    }
    // LSMs (runc's behaviour): a profile the host cannot apply is an error, never a
    // silently unconfined container.
    let apparmor = proc_cfg
        .apparmor_profile
        .as_deref()
        .filter(|a| !a.is_empty());
    if let Some(prof) = apparmor {
        if !crate::apparmor::enabled() {
            return Err(crate::apparmor::not_enabled(prof));
        }
    }
    crate::exec::check_selinux_label(proc_cfg.selinux_label.as_deref())?;
    // runc `label.FormatMountLabel` formats nothing without SELinux: the label is
    // dropped there. With SELinux, a label the policy rejects fails here, before
    // anything exists, rather than as a failed mount inside init.
    let mount_label = match spec.linux.as_ref().and_then(|l| l.mount_label.as_deref()) {
        Some(l) if !l.is_empty() && crate::selinux::enabled() => {
            crate::selinux::check_context("linux.mountLabel", l)?;
            Some(l.to_string())
        }
        _ => None,
    };
    hooks::validate(spec.hooks.as_ref())?;
    let seccomp = match spec.linux.as_ref().and_then(|l| l.seccomp.as_ref()) {
        // runc: a profile with no defaultAction and no syscalls means "no seccomp".
        Some(p) if !oxcart_seccomp::is_noop(p) => Some(compile_seccomp(p, &g.root)?),
        _ => None,
    };
    Ok(Checks {
        prepared,
        map_method,
        setgroups_ok,
        mount_label,
        seccomp,
    })
}

/// `--pidfd-socket` and `--console-socket` (or, for a foreground `run` with a
/// terminal, our own pair standing in for it).
fn connect_sockets(o: &CreateOpts, terminal: bool) -> Result<Sockets> {
    let mut proxy_end = None;
    let pidfd = match &o.pidfd_socket {
        Some(p) => Some(crate::console::connect_socket(p, "--pidfd-socket")?),
        None => None,
    };
    let console = match (&o.console_socket, terminal) {
        (Some(p), true) => Some(crate::console::connect(p)?),
        (None, true) => {
            // Foreground `run`: our own pair stands in for --console-socket.
            let (mine, theirs) = crate::console::pair()?;
            proxy_end = Some(mine);
            Some(theirs)
        }
        _ => None,
    };
    Ok(Sockets {
        proxy_end,
        pidfd,
        console,
    })
}

/// Step 3: the cgroup2 directory now (clone3 starts init in it), and the rest
/// now or after the clone; where they are is recorded first.
fn make_cgroups(
    g: &Global,
    o: &CreateOpts,
    l: &Loaded,
    in_init: bool,
    (sd, guard): (&StateDir, &mut CreateGuard<'_>),
) -> Result<Made> {
    let spec = &l.spec;
    let cgroups_path = spec.linux.as_ref().and_then(|l| l.cgroups_path.as_deref());
    let cg = Cg::new(cgroups_path, &o.id, g.systemd_cgroup)?;
    // Before any directory exists: a `create` killed from here on, whose
    // CreateGuard never runs, leaves nothing `delete` cannot find
    // (delete_unfinished). The directories a rootless create skips are
    // recorded too; removing a missing one is no error.
    sd.record_cgroups(&cg.to_state()?)?;
    // A rootful create without a user namespace makes only the cgroup2 directory
    // now (clone3 starts init in it) and the v1 ones, with the limits, after the
    // clone, while init sets up its mounts: ~0.7 ms of mkdirs off the critical
    // path (docs/benchmarks.md). init joins them before anything that needs them
    // (Msg::Joined). Rootless, which hierarchies are kept is only known once they
    // are made; with a user namespace init joins before switching ids: both make
    // everything first.
    let defer_v1 = in_init;
    // Likewise the new network namespace: made by the parent after the clone
    // (namespaces::new_net_ns), while init switches to the read-only view and
    // mounts, instead of by the clone. Not with any user namespace: init's setns
    // needs CAP_SYS_ADMIN in the host's, which a user namespace takes away.
    let netns_from_parent =
        in_init && !l.plan.userns && l.plan.clone_flags & libc::CLONE_NEWNET != 0;
    let cg = if defer_v1 {
        cg.create_unified()?;
        cg
    } else {
        cg.create_or_skip(
            g.rootless,
            spec.linux.as_ref().and_then(|l| l.resources.as_ref()),
        )?
    };
    guard.cg = Some(cg.clone());
    if !defer_v1 {
        apply_resources(g, spec, &cg)?;
    }
    Ok(Made {
        cg,
        defer_v1,
        netns_from_parent,
    })
}

/// Step 4: `exec.fifo` (opened `O_PATH`) and `/proc` (`O_PATH`), for init.
fn make_fifo(sd: &StateDir) -> Result<(OwnedFd, OwnedFd)> {
    // exec.fifo: mode 0622 so a non-root container user can open it for writing.
    let fifo_path = sd.fifo_path();
    let cfifo = sys::cpath(&fifo_path)?;
    // SAFETY: valid path string.
    if unsafe { libc::mkfifo(cfifo.as_ptr(), 0o622) } != 0 {
        return Err(Error::last(format!("mkfifo {}", fifo_path.display())));
    }
    // SAFETY: valid path string.
    unsafe { libc::chmod(cfifo.as_ptr(), 0o622) };
    let fifo =
        sys::open(&cfifo, libc::O_PATH, 0).ctx(|| format!("open {}", fifo_path.display()))?;
    let proc_fd = sys::open(&cstring("/proc")?, libc::O_PATH | libc::O_DIRECTORY, 0)
        .ctx(|| "open /proc".into())?;
    Ok((fifo, proc_fd))
}

/// Step 6: the socket pair, the pid/time namespaces for the children, then one
/// `clone3`. In the child this runs [`init`] and never returns. Returns init's
/// pid, whether the parent must move it into cgroup2, and our end of the pair.
fn clone_init(
    args: &InitArgs<'_>,
    l: &Loaded,
    sd: &StateDir,
    seal_view: Option<OwnedFd>,
) -> Result<(libc::pid_t, bool, Channel)> {
    let (parent_ch, child_ch) = sync::pair()?;
    l.plan.parent_prepare(l.spec.linux.as_ref())?;
    let clone_flags = if args.netns_from_parent {
        l.plan.clone_flags & !libc::CLONE_NEWNET
    } else {
        l.plan.clone_flags
    };
    // SAFETY: the runtime is single-threaded (DESIGN.md: no threads before clone).
    let (pid, move_unified) =
        unsafe { crate::cg::clone_joining(clone_flags as u64, &args.cgroup_join) }?;
    if pid == 0 {
        // SAFETY: closing our copy of the lock fd (see StateDir::lock_fd).
        unsafe { libc::close(sd.lock_fd()) };
        drop(parent_ch);
        let code = match init(args, seal_view, &child_ch) {
            Ok(never) => match never {},
            Err(Error::InitSeal(m)) => {
                let _ = child_ch.send(&Msg::SealFailed(m));
                1
            }
            Err(e) => {
                let _ = child_ch.send(&Msg::Error(e.to_string()));
                1
            }
        };
        sys::exit_now(code);
    }
    drop(child_ch);
    // init has its own copy; the view's mount dissolves once init closes that.
    drop(seal_view);
    Ok((pid, move_unified, parent_ch))
}

/// The parent while init sets up: id maps, "go", cgroup2 (old kernels),
/// `oom_score_adj`, the network namespace, the v1 cgroups and the limits,
/// "joined".
fn after_clone(
    g: &Global,
    o: &CreateOpts,
    l: &Loaded,
    c: &Checks,
    made: &Made,
    args: &InitArgs<'_>,
    (pid, move_unified, ch): (libc::pid_t, bool, &Channel),
) -> Result<()> {
    let spec = &l.spec;
    if l.plan.new_userns() {
        if let Some(linux) = spec.linux.as_ref() {
            namespaces::write_id_maps(pid, linux, c.map_method)?;
        }
    }
    // init has joined its v1 cgroups itself (oxcart_cgroups::join) and was cloned
    // into the cgroup2 one; only on a kernel that refused CLONE_INTO_CGROUP do we
    // move it there, while it starts its rootfs setup (see Msg::Joined).
    if let Err(e) = ch.send(&Msg::Go) {
        // init failed before reading it and closed its end (a failed switch to
        // the read-only view is its first step): its own error is queued, and
        // says more than EPIPE.
        wait_ready(ch, pid, &o.id, &l.bundle, spec)?;
        return Err(e);
    }
    if move_unified {
        args.cgroup_join
            .add_pid_unified(pid)
            .map_err(crate::cg::cg_err)?;
    }
    if let Some(adj) = spec.process.as_ref().and_then(|p| p.oom_score_adj) {
        // From the parent, as runc does: once init has switched ids in a user
        // namespace it is no longer dumpable, its /proc files belong to the host's
        // root and it could not write this itself.
        std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
            .ctx(|| format!("process.oomScoreAdj: write {adj}"))?;
    }
    // What init waits for, in the order it needs them (init's FromParent); a
    // failed send means init failed, whose own error wait_ready reports.
    if made.netns_from_parent {
        let ns = namespaces::new_net_ns()?;
        let _ = ch.send_with_fd(&Msg::NetNs, Some(ns.as_raw_fd()));
    }
    if made.defer_v1 {
        made.cg.create_v1()?;
        let files = made.cg.join_files_v1()?.into_v1();
        for chunk in files.chunks(sync::MAX_FDS) {
            let paths = chunk.iter().map(|(p, _)| p.display().to_string());
            let fds: Vec<_> = chunk.iter().map(|(_, fd)| fd.as_raw_fd()).collect();
            let _ = ch.send_with_fds(&Msg::TasksFds(paths.collect()), &fds);
        }
        // init can mount its cgroups now; it joins them at Joined, after the
        // limits (as a runc init runs its rootfs set-up before the limits are set).
        let _ = ch.send(&Msg::CgroupsMade);
        apply_resources(g, spec, &made.cg)?;
    }
    let _ = ch.send(&Msg::Joined);
    Ok(())
}

/// `state.json` (temp file + rename), written while init finishes its setup,
/// before it may report "ready" (runc likewise writes its state before it lets
/// init go on, `procRun`, so a killed `runc create` never leaves an init that
/// `delete` cannot find).
fn save_state(
    g: &Global,
    o: &CreateOpts,
    l: &Loaded,
    cg: &Cg,
    sd: &StateDir,
    pid: libc::pid_t,
) -> Result<Saved> {
    let start_time = sys::proc_start_time(pid).ctx(|| format!("read start time of init {pid}"))?;
    let uid = std::fs::metadata(&sd.dir).map(|m| m.uid()).unwrap_or(0);
    let saved = Saved {
        id: o.id.clone(),
        pid,
        start_time,
        bundle: l.bundle.display().to_string(),
        rootfs: l.rootfs.display().to_string(),
        created: crate::time::now_rfc3339(true),
        owner: state::owner_name(uid),
        annotations: l.spec.annotations.clone(),
        config: state::SavedConfig::new(l.spec.clone()),
        cgroup: cg.to_state()?,
        systemd_cgroup: g.systemd_cgroup,
        rootless: g.rootless,
        // Known once init has bound the rootfs (after_ready).
        rootfs_mount: None,
    };
    sd.save(&saved)?;
    Ok(saved)
}

/// Once init is ready: without a mount namespace, init's rootfs mount recorded
/// in `state.json`; the pidfd for `--pidfd-socket`; the pid file.
fn after_ready(
    o: &CreateOpts,
    l: &Loaded,
    sd: &StateDir,
    mut saved: Saved,
    pid: libc::pid_t,
    pidfd_sock: Option<&OwnedFd>,
) -> Result<()> {
    if l.rootfs_mount_before.is_some() {
        saved.rootfs_mount = Some(
            sys::mount_id(&sys::cpath(&l.rootfs)?)
                .ctx(|| format!("statx {}", l.rootfs.display()))?,
        );
        sd.save(&saved)?;
    }
    if let Some(sock) = pidfd_sock {
        let fd = sys::pidfd_open(pid).ctx(|| format!("pidfd_open {pid}"))?;
        crate::console::send_fd(sock.as_fd(), "standard", fd.as_raw_fd())?;
    }
    if let Some(pf) = &o.pid_file {
        // Written atomically, and only now that init is ready: conmon and the
        // containerd shim read it as soon as we exit (compat.md §6.6 item 9).
        let pf = abs(pf)?;
        sys::write_atomic(&pf, pid.to_string().as_bytes(), 0o644)
            .ctx(|| format!("write pid file {}", pf.display()))?;
    }
    Ok(())
}

/// The container's limits, with runc's default device rules.
fn apply_resources(g: &Global, spec: &Spec, cg: &Cg) -> Result<()> {
    let Some(linux) = spec.linux.as_ref() else {
        return Ok(());
    };
    // runc always adds its default allowed devices (and one rule per
    // linux.devices entry) after the config's rules, so `{"allow":false}` first
    // still leaves /dev/null usable (libcontainer/specconv AllowedDevices).
    let mut r = linux.resources.clone().unwrap_or_default();
    r.devices = if g.rootless {
        // runc ignores device-controller errors in rootless mode: an
        // unprivileged caller cannot program it, and the devices are bind
        // mounts of the host's, which the user's own permissions already gate.
        Vec::new()
    } else {
        oxcart_cgroups::devices::container_device_rules(&r.devices, &linux.devices)
    };
    cg.apply(&r)
}

/// Undo a half-made container when create fails: nothing may be left behind.
struct CreateGuard<'a> {
    sd: Option<&'a StateDir>,
    cg: Option<Cg>,
    pid: libc::pid_t,
    /// No mount namespace: the rootfs and the id of its topmost mount before
    /// init's bind; a different one there after init is gone is init's.
    shared_root: Option<(PathBuf, u64)>,
}

impl CreateGuard<'_> {
    fn disarm(&mut self) {
        self.sd = None;
        self.cg = None;
        self.pid = 0;
        self.shared_root = None;
    }
}

impl Drop for CreateGuard<'_> {
    fn drop(&mut self) {
        if self.pid > 0 {
            // SAFETY: signalling and reaping our own child.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            let _ = sys::waitpid(self.pid, 0);
        }
        if let Some((rootfs, before)) = self.shared_root.take() {
            if let Ok(now) = sys::cpath(&rootfs).and_then(|p| sys::mount_id(&p)) {
                if now != before {
                    let _ = rootfs::detach_shared_root(&rootfs, now);
                }
            }
        }
        if let Some(cg) = self.cg.take() {
            let _ = cg.destroy();
        }
        if let Some(sd) = self.sd.take() {
            let _ = sd.remove();
        }
    }
}

/// One message from init. If init failed and exited while a message of ours was
/// still unread in its queue, the kernel reports ECONNRESET once (unix(7): the
/// peer's pending error, cleared by reading it) ahead of init's queued error
/// message; read again so the caller sees init's own error.
fn recv_from_init(ch: &Channel) -> Result<Option<(Msg, Option<OwnedFd>)>> {
    match ch.recv() {
        Err(Error::Sys { source, .. }) if source.raw_os_error() == Some(libc::ECONNRESET) => {
            ch.recv()
        }
        r => r,
    }
}

fn wait_ready(ch: &Channel, pid: libc::pid_t, id: &str, bundle: &Path, spec: &Spec) -> Result<()> {
    loop {
        match recv_from_init(ch)? {
            Some((Msg::Ready, _)) => return Ok(()),
            Some((Msg::Hooks, _)) => {
                if let Some(h) = spec.hooks.as_ref() {
                    let st = hook_state(
                        (&spec.oci_version, &spec.annotations),
                        id,
                        bundle,
                        Status::Creating,
                        pid,
                    );
                    hooks::run("prestart", &h.prestart, &st)?;
                    hooks::run("createRuntime", &h.create_runtime, &st)?;
                }
                ch.send(&Msg::Continue)?;
            }
            Some((Msg::SeccompFd, Some(fd))) => {
                send_seccomp_listener(spec, id, pid, bundle, fd.as_fd())?;
                ch.send(&Msg::Continue)?;
            }
            Some((Msg::Error(m), _)) => {
                let _ = sys::waitpid(pid, 0);
                return Err(Error::Init(format!(
                    "unable to start container process: {m}"
                )));
            }
            Some((Msg::SealFailed(m), _)) => {
                let _ = sys::waitpid(pid, 0);
                return Err(Error::InitSeal(m));
            }
            Some((m, _)) => {
                return Err(Error::Other(format!("unexpected message from init: {m:?}")))
            }
            None => {
                let (_, st) = sys::waitpid(pid, 0).unwrap_or((0, 0));
                return Err(Error::Init(format!(
                    "container init exited unexpectedly during setup (status {})",
                    sys::exit_code(st)
                )));
            }
        }
    }
}

/// runtime-spec config-linux.md "Seccomp": hand the notify fd and the container's
/// state to the agent listening on listenerPath.
pub(crate) fn send_seccomp_listener(
    spec: &Spec,
    id: &str,
    pid: libc::pid_t,
    bundle: &Path,
    fd: std::os::fd::BorrowedFd<'_>,
) -> Result<()> {
    let sc = spec.linux.as_ref().and_then(|l| l.seccomp.as_ref());
    let path = sc.and_then(|s| s.listener_path.as_deref()).ok_or_else(|| {
        Error::config(
            "linux.seccomp.listenerPath",
            "SCMP_ACT_NOTIFY needs a listenerPath",
        )
    })?;
    let st = oxcart_seccomp::ContainerProcessState::new(
        id,
        pid,
        &bundle.display().to_string(),
        spec.annotations.clone(),
        sc.and_then(|s| s.listener_metadata.as_deref()),
    );
    oxcart_seccomp::send_listener_fd(Path::new(path), fd, &st)
        .map_err(|e| Error::Seccomp(e.to_string()))
}

/// Compile (or fetch from the cache under `--root`) the seccomp filter, in the
/// parent: compiling must not happen in init, and a cache hit is ~1000x cheaper
/// than libseccomp (docs/seccomp.md).
pub(crate) fn compile_seccomp(
    p: &oxcart_spec::LinuxSeccomp,
    root: &Path,
) -> Result<oxcart_seccomp::Filter> {
    let notify_sendmsg = p.syscalls.iter().any(|s| {
        s.action == "SCMP_ACT_NOTIFY" && s.names.iter().any(|n| n == "sendmsg" || n == "write")
    });
    if notify_sendmsg {
        // init hands the listener fd over with sendmsg(2) after loading the filter;
        // trapping it would deadlock (runc refuses NOTIFY on write for the same reason).
        return Err(Error::config(
            "linux.seccomp.syscalls",
            "SCMP_ACT_NOTIFY cannot be used for sendmsg or write",
        ));
    }
    let (f, _) = oxcart_seccomp::compile_cached(p, &root.join("seccomp-cache"))
        .map_err(|e| Error::Seccomp(e.to_string()))?;
    Ok(f)
}

/// Load the filter; a NOTIFY listener fd goes to the parent, and `wait_continue`
/// waits for its answer (init's may see other messages first, exec's may not).
pub(crate) fn install_seccomp(
    f: &oxcart_seccomp::Filter,
    ch: &Channel,
    wait_continue: &dyn Fn() -> Result<()>,
) -> Result<()> {
    let listener = f.install().map_err(|e| Error::Seccomp(e.to_string()))?;
    if let Some(fd) = listener {
        ch.send_with_fd(&Msg::SeccompFd, Some(fd.as_raw_fd()))?;
        wait_continue()?;
    }
    Ok(())
}

/// The next message must be `Continue`.
pub(crate) fn expect_continue(ch: &Channel) -> Result<()> {
    match ch.recv()? {
        Some((Msg::Continue, _)) => Ok(()),
        other => Err(Error::Other(format!(
            "expected continue from the parent, got {other:?}"
        ))),
    }
}

/// `start`: release a created container's init.
pub fn start(g: &Global, id: &str) -> Result<()> {
    let sd = StateDir::open(&g.root, id, true)?;
    let saved = sd
        .load()?
        .ok_or_else(|| Error::State(format!("container {id:?} is still being created")))?;
    let cg = Cg::from_state(&saved.cgroup)?;
    match state::derive_status(&sd, &saved, cg.frozen()) {
        Status::Created => {}
        Status::Stopped => {
            return Err(Error::State(
                "cannot start a container that has stopped".into(),
            ))
        }
        _ => {
            return Err(Error::State(
                "cannot start an already running container".into(),
            ))
        }
    }
    let listener = crate::notify::Listener::bind(&sd.dir)?;
    release_fifo(&sd, saved.pid)?;
    // Unlocked first: a hook that runs `state` must not wait for us.
    drop(sd);
    poststart(&saved);
    if let Some(l) = listener {
        l.forward_ready(saved.pid)?;
    }
    Ok(())
}

/// The state hooks read on stdin (runtime.md "State"): the config's `ociVersion`
/// and annotations, and the container's id, bundle, status and pid.
pub(crate) fn hook_state(
    (oci_version, annotations): (&str, &std::collections::BTreeMap<String, String>),
    id: &str,
    bundle: &Path,
    status: Status,
    pid: libc::pid_t,
) -> hooks::HookState {
    hooks::HookState {
        oci_version: oci_version.to_string(),
        id: id.to_string(),
        status,
        pid,
        bundle: bundle.display().to_string(),
        annotations: annotations.clone(),
    }
}

/// poststart hooks: after the user's program runs, before start returns; a failure
/// is only a warning (runtime-spec config.md "Poststart").
fn poststart(saved: &Saved) {
    saved_hooks(saved, "poststart", Status::Running, |h| &h.poststart);
}

/// A saved container's hooks of one kind (poststart, poststop), whose failure,
/// an unreadable config included, is only a warning. Reads only the hooks and
/// `ociVersion` of the saved config (state::SavedConfig).
fn saved_hooks(
    saved: &Saved,
    kind: &str,
    status: Status,
    pick: impl Fn(&oxcart_spec::Hooks) -> &[oxcart_spec::Hook],
) {
    let hc = match saved.config.hook_config() {
        Ok(hc) => hc,
        Err(e) => return hooks::warn(format!("{kind} hooks: {e}")),
    };
    if let Some(h) = hc.hooks.as_ref().filter(|h| !pick(h).is_empty()) {
        let st = hook_state(
            (&hc.oci_version, &saved.annotations),
            &saved.id,
            Path::new(&saved.bundle),
            status,
            saved.pid,
        );
        hooks::run_warn(kind, pick(h), &st);
    }
}

fn release_fifo(sd: &StateDir, pid: libc::pid_t) -> Result<()> {
    let fifo = sd.fifo_path();
    let pidfd = sys::pidfd_open(pid).ctx(|| format!("pidfd_open {pid}"))?;
    let r = sys::open(&sys::cpath(&fifo)?, libc::O_RDONLY | libc::O_NONBLOCK, 0)
        .ctx(|| format!("open {}", fifo.display()))?;
    // Wait for init's byte, or for init to die — whichever comes first — so a dead
    // init never leaves `start` blocked (runc awaitFifoOpen does the same).
    loop {
        let (fifo_ev, pid_ev) = sys::poll_fd_or_exit(r.as_fd(), pidfd.as_fd())
            .map_err(|e| Error::sys("poll exec fifo", e))?;
        if fifo_ev & libc::POLLIN != 0 {
            let mut b = [0u8; 1];
            // SAFETY: reading into a 1-byte buffer.
            let n = unsafe { libc::read(r.as_raw_fd(), b.as_mut_ptr() as *mut libc::c_void, 1) };
            if n == 1 {
                break;
            }
        }
        if pid_ev != 0 {
            return Err(Error::State(
                "cannot start a container that has stopped".into(),
            ));
        }
        if fifo_ev & libc::POLLHUP != 0 {
            // Writer went away without a byte: init died between open and write.
            return Err(Error::State("container init exited before start".into()));
        }
    }
    std::fs::remove_file(&fifo).ctx(|| format!("remove {}", fifo.display()))?;
    Ok(())
}

/// `run`: create + start, then (unless detached) wait for the container's process,
/// forward signals to it, delete it (unless `keep`) and return its exit status.
pub fn run(g: &Global, o: &CreateOpts, detach: bool, keep: bool) -> Result<i32> {
    let (created, master) = create_protected(g, o, detach)?;
    let (saved, listener) = {
        let sd = StateDir::open(&g.root, &o.id, true)?;
        let listener = match crate::notify::Listener::bind(&sd.dir) {
            Ok(l) => l,
            Err(e) => {
                drop(sd);
                let _ = delete(g, &o.id, true);
                return Err(e);
            }
        };
        if let Err(e) = release_fifo(&sd, created.pid) {
            drop(sd);
            let _ = delete(g, &o.id, true);
            return Err(e);
        }
        (sd.load()?, listener)
    };
    // Unlocked first: a hook that runs `state` must not wait for us.
    if let Some(saved) = &saved {
        poststart(saved);
    }
    if let Some(l) = listener {
        l.forward_ready(created.pid)?;
    }
    if detach {
        return Ok(0);
    }
    let code = match master {
        Some(m) => crate::console::proxy_and_wait(created.pid, m)?,
        None => wait_forwarding(created.pid)?,
    };
    if !keep {
        delete(g, &o.id, true)?;
    }
    Ok(code)
}

/// Wait for our child, forwarding the usual terminal/job-control signals to it.
pub(crate) fn wait_forwarding(pid: libc::pid_t) -> Result<i32> {
    let sfd = sys::forwarded_signals_fd(0).ctx(|| "signalfd".into())?;
    loop {
        match sys::waitpid(pid, libc::WNOHANG) {
            Ok((p, st)) if p == pid => return Ok(sys::exit_code(st)),
            Ok(_) => {}
            Err(e) => return Err(Error::sys("waitpid", e)),
        }
        // SAFETY: reading one siginfo into a zeroed struct of the right size.
        let (n, info) = unsafe {
            let mut info: libc::signalfd_siginfo = std::mem::zeroed();
            let n = libc::read(
                sfd.as_raw_fd(),
                &mut info as *mut _ as *mut libc::c_void,
                std::mem::size_of::<libc::signalfd_siginfo>(),
            );
            (n, info)
        };
        if n <= 0 {
            continue;
        }
        let sig = info.ssi_signo as libc::c_int;
        if sig != libc::SIGCHLD {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid, sig) };
        }
    }
}

/// `state`: the runtime-spec state of a container (pid 0 once stopped).
pub fn state(g: &Global, id: &str) -> Result<State> {
    let sd = StateDir::open(&g.root, id, false)?;
    state_of(&sd)
}

fn state_of(sd: &StateDir) -> Result<State> {
    let Some(saved) = sd.load()? else {
        return Ok(State {
            oci_version: oxcart_spec::OCI_VERSION.into(),
            id: sd.id.clone(),
            pid: 0,
            status: Status::Creating,
            bundle: String::new(),
            rootfs: String::new(),
            created: String::new(),
            annotations: Default::default(),
            owner: String::new(),
        });
    };
    let frozen = Cg::from_state(&saved.cgroup)
        .map(|c| c.frozen())
        .unwrap_or(false);
    let status = state::derive_status(sd, &saved, frozen);
    Ok(State {
        oci_version: saved.config.hook_config()?.oci_version,
        id: saved.id.clone(),
        pid: if status == Status::Stopped {
            0
        } else {
            saved.pid
        },
        status,
        bundle: saved.bundle.clone(),
        rootfs: saved.rootfs.clone(),
        created: saved.created.clone(),
        annotations: saved.annotations.clone(),
        owner: saved.owner.clone(),
    })
}

/// `list`: every container under the root.
pub fn list(g: &Global) -> Result<Vec<State>> {
    let mut out = Vec::new();
    for id in state::list_ids(&g.root)? {
        if let Ok(sd) = StateDir::open(&g.root, &id, false) {
            if let Ok(s) = state_of(&sd) {
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// Open a pidfd for init only if the pid still names our process.
pub(crate) fn init_pidfd(saved: &Saved) -> Option<OwnedFd> {
    let fd = sys::pidfd_open(saved.pid).ok()?;
    // Checked *after* opening: the pidfd pins the process, so if the start time
    // matches now, the fd refers to our init and not to a recycled pid.
    state::init_alive(saved.pid, saved.start_time).then_some(fd)
}

/// `kill`: send a signal to init, or with `all` to every process in the container.
pub fn kill(g: &Global, id: &str, sig: libc::c_int, all: bool) -> Result<()> {
    let sd = StateDir::open(&g.root, id, false)?;
    let saved = sd
        .load()?
        .ok_or_else(|| Error::State("container not running".into()))?;
    let cg = Cg::from_state(&saved.cgroup)?;
    let status = state::derive_status(&sd, &saved, cg.frozen());
    if status == Status::Stopped {
        return Err(Error::State("container not running".into()));
    }
    if all && cg.is_empty() {
        // A rootless container whose cgroup was skipped: nothing lists its
        // processes. SIGKILL to init of a private pid namespace kills them all
        // (pid_namespaces(7)); anything else would silently miss processes.
        let private_pid = saved.config.spec()?.linux.as_ref().is_some_and(|l| {
            l.namespaces
                .iter()
                .any(|n| n.typ == "pid" && n.path.as_deref().unwrap_or("").is_empty())
        });
        if sig != libc::SIGKILL || !private_pid {
            return Err(Error::State(format!(
                "kill --all: container {id} has no cgroup (rootless without cgroup delegation); only SIGKILL with its own pid namespace can reach every process"
            )));
        }
    } else if all {
        return cg.kill_all(sig);
    }
    let fd = init_pidfd(&saved).ok_or_else(|| Error::State("container not running".into()))?;
    sys::pidfd_send_signal(fd.as_fd(), sig).map_err(|e| {
        if e.raw_os_error() == Some(libc::ESRCH) {
            Error::State("container not running".into())
        } else {
            Error::sys(format!("send signal {sig} to init"), e)
        }
    })
}

/// Wait (bounded) for a process to exit, using its pidfd.
fn wait_exit(fd: &OwnedFd, timeout_ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, timeout_ms) > 0 }
}

/// `delete`: remove a stopped (or, with `force`, any) container and its cgroups.
pub fn delete(g: &Global, id: &str, force: bool) -> Result<()> {
    let sd = match StateDir::open(&g.root, id, true) {
        Ok(sd) => sd,
        // runc: delete --force of a container that does not exist succeeds.
        Err(Error::NotExist(_)) if force => return Ok(()),
        Err(e) => return Err(e),
    };
    let Some(saved) = sd.load()? else {
        return delete_unfinished(&sd);
    };
    let cg = Cg::from_state(&saved.cgroup)?;
    let status = state::derive_status(&sd, &saved, cg.frozen());
    match status {
        Status::Stopped => {}
        Status::Created => kill_and_wait(&saved, &cg)?,
        s if force => {
            let _ = s;
            kill_and_wait(&saved, &cg)?
        }
        s => {
            return Err(Error::State(format!(
                "cannot delete container {id} that is not stopped: {s}"
            )))
        }
    }
    if let Some(id) = saved.rootfs_mount {
        rootfs::detach_shared_root(Path::new(&saved.rootfs), id)?;
    }
    cg.destroy()?;
    sd.remove()?;
    drop(sd);
    // After the container is deleted, before delete returns; a failure is only
    // a warning (runtime-spec config.md "Poststop"). The state directory is gone
    // and unlocked first, so a hook that asks for the state gets "does not
    // exist" instead of waiting for our lock.
    saved_hooks(&saved, "poststop", Status::Stopped, |h| &h.poststop);
    Ok(())
}

/// `delete` of a `create` that died (SIGKILL: its CreateGuard never ran) before
/// writing `state.json`; we hold the lock, so no `create` of it is running. Its
/// init did not outlive it (init.rs: the parent-death signal until it has been
/// recorded, Msg::Recorded), but may still be exiting, and a createContainer
/// hook it ran may still be in the cgroups: everything in the recorded cgroups is
/// killed, then they and the state directory are removed. runc leaves the
/// (empty) cgroups of such a create behind; its `delete` knows only state.json.
fn delete_unfinished(sd: &StateDir) -> Result<()> {
    if let Some(v) = sd.recorded_cgroups()? {
        let cg = Cg::from_state(&v)?;
        cg.kill_all(libc::SIGKILL)?;
        // destroy() waits for killed tasks to leave (rmdir retried on EBUSY).
        cg.destroy()?;
    }
    sd.remove()
}

fn kill_and_wait(saved: &Saved, cg: &Cg) -> Result<()> {
    let fd = init_pidfd(saved);
    cg.kill_all(libc::SIGKILL)?;
    if let Some(fd) = &fd {
        let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
    }
    // A frozen task does not act on SIGKILL until it is thawed (v1 freezer; on a
    // hybrid host cgroup.kill in the unified hierarchy does not thaw the v1 freezer):
    // thaw a paused container so the kill takes effect, as runc's destroy does.
    if cg.frozen() {
        cg.manager()
            .thaw()
            .map_err(|e| Error::Cgroup(e.to_string()))?;
    }
    if let Some(fd) = &fd {
        // SIGKILL cannot be ignored; 10 s covers a loaded machine (D state).
        if !wait_exit(fd, 10_000) {
            return Err(Error::State(format!(
                "init {} did not exit after SIGKILL",
                saved.pid
            )));
        }
    }
    Ok(())
}
