//! `exec`: run a new process in an existing container (runtime-spec leaves exec to
//! the runtime; runc's `exec` is the contract, compat.md §6.2).
//!
//! The new process joins every namespace of the container's init (opened from
//! `/proc/<init>/ns/*` and checked against init's start time) and its cgroup, and gets
//! the container's security settings — seccomp (from the config saved at create),
//! capabilities, rlimits, no_new_privs, AppArmor — unless the exec's process
//! overrides them, as in runc. Process model: the `exec` command joins the pid (and
//! time) namespaces itself (they apply to children, setns(2)), then makes one plain
//! `clone3`; the child waits until the parent has put it into the cgroup, joins the
//! other namespaces (user first), sets itself up and `execve`s. A close-on-exec
//! channel tells the parent whether setup failed (a message) or the exec happened
//! (EOF).

use crate::cg::Cg;
use crate::error::{Ctx, Error, Result};
use crate::lifecycle::{self, Global};
use crate::namespaces;
use crate::process;
use crate::state::{self, StateDir};
use crate::sync::{self, Channel, Msg};
use crate::sys;
use oxcart_spec::{LinuxCapabilities, Process, Status};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Where the exec's process comes from.
#[derive(Debug, Clone)]
pub enum ExecProcess {
    /// `--process FILE`: a runtime-spec `process` object, used as is.
    File(PathBuf),
    /// The container's own `process`, with runc's flag overrides applied.
    Flags(ExecFlags),
}

/// runc's `exec` flags that shape the process (runc exec.go `getProcess`).
#[derive(Debug, Clone, Default)]
pub struct ExecFlags {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<String>,
    /// `uid[:gid]`.
    pub user: Option<String>,
    pub additional_gids: Vec<String>,
    /// Added to the bounding, effective and permitted sets, and to ambient only when
    /// the config has an inheritable set (runc 1.2 exec.go; ambient needs inheritable).
    pub caps: Vec<String>,
    pub tty: Option<bool>,
    pub no_new_privs: Option<bool>,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ExecOpts {
    pub id: String,
    pub process: ExecProcess,
    pub console_socket: Option<PathBuf>,
    /// `--pidfd-socket`: receives a pidfd of the process (runc 1.2 `setupPidfd`:
    /// one message, the name "setns" as data and the pidfd as SCM_RIGHTS).
    pub pidfd_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    /// `--cgroup [<controller>[,<controller>]:]<path>`: an existing sub-cgroup of the
    /// container's cgroup to run in.
    pub cgroup: Vec<String>,
    pub ignore_paused: bool,
}

/// Build the exec's process: the file as given, or the container's process with the
/// flags applied (runc `getProcess`), then runc's checks (`validateProcessSpec`).
pub fn build_process(config_process: Option<&Process>, p: &ExecProcess) -> Result<Process> {
    let proc = match p {
        ExecProcess::File(path) => {
            let bytes = std::fs::read(path).map_err(|e| {
                Error::Other(format!(
                    "--process: open {}: {}",
                    path.display(),
                    if e.kind() == std::io::ErrorKind::NotFound {
                        "no such file or directory".to_string()
                    } else {
                        e.to_string()
                    }
                ))
            })?;
            oxcart_spec::parse_json::<Process>(&bytes, &path.display().to_string())?
        }
        ExecProcess::Flags(f) => {
            let mut p = config_process.cloned().ok_or_else(|| {
                Error::config("process", "missing: exec needs the container's process")
            })?;
            p.args = f.args.clone();
            if let Some(c) = f.cwd.as_deref().filter(|c| !c.is_empty()) {
                p.cwd = c.to_string();
            }
            if let Some(a) = f.apparmor.as_deref().filter(|a| !a.is_empty()) {
                p.apparmor_profile = Some(a.to_string());
            }
            if let Some(l) = f.process_label.as_deref().filter(|l| !l.is_empty()) {
                p.selinux_label = Some(l.to_string());
            }
            if !f.caps.is_empty() {
                let c = p
                    .capabilities
                    .get_or_insert_with(LinuxCapabilities::default);
                let had_inheritable = c.inheritable.is_some();
                for cap in &f.caps {
                    for set in [&mut c.bounding, &mut c.effective, &mut c.permitted] {
                        set.get_or_insert_with(Vec::new).push(cap.clone());
                    }
                    // Ambient needs the cap in inheritable; runc adds it only when
                    // the config already had an inheritable set.
                    if had_inheritable {
                        c.ambient.get_or_insert_with(Vec::new).push(cap.clone());
                    }
                }
            }
            p.env.extend(f.env.iter().cloned());
            p.terminal = f.tty.unwrap_or(false);
            if let Some(n) = f.no_new_privs {
                p.no_new_privileges = n;
            }
            if let Some(u) = f.user.as_deref().filter(|u| !u.is_empty()) {
                let (uid, gid) = match u.split_once(':') {
                    Some((a, b)) => (a, Some(b)),
                    None => (u, None),
                };
                p.user.uid = uid
                    .parse()
                    .map_err(|_| Error::Other(format!("--user: parsing uid {uid:?}")))?;
                if let Some(g) = gid {
                    p.user.gid = g
                        .parse()
                        .map_err(|_| Error::Other(format!("--user: parsing gid {g:?}")))?;
                }
            }
            for g in &f.additional_gids {
                let v: i64 = g
                    .parse()
                    .map_err(|_| Error::Other(format!("--additional-gids: invalid value {g:?}")))?;
                let v = u32::try_from(v).map_err(|_| {
                    Error::Other(format!("--additional-gids: {v} is not a valid gid"))
                })?;
                p.user.additional_gids.push(v);
            }
            p
        }
    };
    if proc.cwd.is_empty() {
        return Err(Error::config(
            "process.cwd",
            "Cwd property must not be empty",
        ));
    }
    if !proc.cwd.starts_with('/') {
        return Err(Error::config("process.cwd", "Cwd must be an absolute path"));
    }
    if proc.args.is_empty() {
        return Err(Error::config("process.args", "args must not be empty"));
    }
    check_selinux_label(proc.selinux_label.as_deref())?;
    Ok(proc)
}

/// runc's `checkTerminal` (utils_linux.go), with its wording; `detach` is true for
/// `create`, `run -d` and `exec -d`. A foreground terminal without a socket is
/// proxied to the caller's own stdio ([`crate::console::proxy_and_wait`]).
pub fn check_terminal(terminal: bool, detach: bool, console_socket: bool) -> Result<()> {
    if detach && terminal && !console_socket {
        return Err(Error::config(
            "process.terminal",
            "cannot allocate tty if runc will detach without setting console socket",
        ));
    }
    if (!detach || !terminal) && console_socket {
        return Err(Error::Other(
            "cannot use console socket if runc will not detach or allocate tty".into(),
        ));
    }
    Ok(())
}

/// runc's rule where SELinux is off: a label asked for is an error (runc's
/// `validateSELinux`, "selinux label is specified in config, but selinux is
/// disabled or not supported"), never a process that silently keeps the runtime's
/// label. Where it is on, the label must be valid in the loaded policy: checked
/// here, in the parent, so a bad one fails before anything is created.
pub(crate) fn check_selinux_label(label: Option<&str>) -> Result<()> {
    let Some(l) = label.filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    if !crate::selinux::enabled() {
        return Err(Error::config(
            "process.selinuxLabel",
            "SELinux label is specified in config, but SELinux is disabled or not supported",
        ));
    }
    crate::selinux::check_context("process.selinuxLabel", l)
}

/// Everything the exec child needs, computed in the parent.
struct Child<'a> {
    id: &'a str,
    process: &'a Process,
    /// Namespaces to join in the child, user first and mount last.
    join: Vec<(String, libc::c_int, OwnedFd)>,
    caps: Option<crate::caps::CapSets>,
    rlimits: Vec<(libc::c_int, u64, u64)>,
    seccomp: Option<oxcart_seccomp::Filter>,
    /// The AppArmor profile to apply, checked on the host before clone (inside, /sys
    /// may be absent or another one).
    apparmor: Option<String>,
    /// `process.selinuxLabel` (or `--process-label`), checked on the host likewise.
    selinux: Option<String>,
    console: Option<OwnedFd>,
    preserve_fds: u32,
    userns: bool,
    setgroups_ok: bool,
    /// The cgroups to join (oxcart_cgroups::join), before any setns.
    cgroups: &'a oxcart_cgroups::JoinFiles,
    /// init's root, to chroot into after the setns: a container without a
    /// mount namespace of its own.
    root: Option<OwnedFd>,
}

/// `exec`: run a process in the container. Returns its exit status (foreground),
/// or 0 once it runs (`detach`).
pub fn exec(g: &Global, o: &ExecOpts) -> Result<i32> {
    let sd = StateDir::open(&g.root, &o.id, false)?;
    let saved = sd
        .load()?
        .ok_or_else(|| Error::State("cannot exec in a stopped container".into()))?;
    let cg = Cg::from_state(&saved.cgroup)?;
    match state::derive_status(&sd, &saved, cg.frozen()) {
        Status::Stopped | Status::Creating => {
            return Err(Error::State("cannot exec in a stopped container".into()))
        }
        Status::Paused if !o.ignore_paused => {
            return Err(Error::State(
                "cannot exec in a paused container (use --ignore-paused to override)".into(),
            ))
        }
        _ => {}
    }
    let config = saved.config.spec()?;
    let process = build_process(config.process.as_ref(), &o.process)?;
    check_terminal(process.terminal, o.detach, o.console_socket.is_some())?;

    // Security settings: the process's own, else the container's (runc initConfig).
    let cproc = config.process.as_ref();
    let caps = match process
        .capabilities
        .as_ref()
        .or_else(|| cproc.and_then(|p| p.capabilities.as_ref()))
    {
        Some(c) => Some(crate::caps::parse(c, "process.capabilities")?),
        None => None,
    };
    let rl_source = if process.rlimits.is_empty() {
        cproc.map(|p| p.rlimits.clone()).unwrap_or_default()
    } else {
        process.rlimits.clone()
    };
    let rl_spec = oxcart_spec::Spec {
        process: Some(Process {
            rlimits: rl_source,
            ..Default::default()
        }),
        ..Default::default()
    };
    let rlimits = process::prepare(&rl_spec, &|_| true)?.rlimits;
    let seccomp = match config.linux.as_ref().and_then(|l| l.seccomp.as_ref()) {
        Some(p) if !oxcart_seccomp::is_noop(p) => Some(lifecycle::compile_seccomp(p, &g.root)?),
        _ => None,
    };

    // The container's namespaces, opened from init and checked to be init's.
    let pidfd = lifecycle::init_pidfd(&saved)
        .ok_or_else(|| Error::State("cannot exec in a stopped container".into()))?;
    let mut parent_join = Vec::new();
    let mut join = Vec::new();
    let mut userns = false;
    for ns in config.linux.iter().flat_map(|l| l.namespaces.iter()) {
        let Some(flag) = namespaces::clone_flag(&ns.typ) else {
            continue;
        };
        let path = format!("/proc/{}/ns/{}", saved.pid, namespaces::proc_name(&ns.typ));
        let fd =
            sys::open(&sys::cstring(&path)?, libc::O_RDONLY, 0).ctx(|| format!("open {path}"))?;
        if flag == libc::CLONE_NEWPID || flag == libc::CLONE_NEWTIME {
            parent_join.push((ns.typ.clone(), flag, fd));
        } else {
            userns |= flag == libc::CLONE_NEWUSER;
            join.push((ns.typ.clone(), flag, fd));
        }
    }
    // No mount namespace of its own (lifecycle::create_inner): init chrooted into
    // its rootfs in the runtime's. The process enters init's mount namespace
    // only if it is not ours already, then init's root, as init did. (runc's
    // exec runs such a process on the host's root.)
    let root = match saved.rootfs_mount {
        Some(_) => {
            join.retain(|(_, f, _)| *f != libc::CLONE_NEWNS);
            let path = format!("/proc/{}/ns/mnt", saved.pid);
            let fd = sys::open(&sys::cstring(&path)?, libc::O_RDONLY, 0)
                .ctx(|| format!("open {path}"))?;
            if !namespaces::same_ns(&fd, c"/proc/self/ns/mnt")? {
                join.push(("mount".into(), libc::CLONE_NEWNS, fd));
            }
            let path = format!("/proc/{}/root", saved.pid);
            Some(
                sys::open(&sys::cstring(&path)?, libc::O_PATH | libc::O_DIRECTORY, 0)
                    .ctx(|| format!("open {path}"))?,
            )
        }
        None => None,
    };
    // Opened after the pidfd: if init still has its start time now, the fds are its.
    if !state::init_alive(saved.pid, saved.start_time) {
        return Err(Error::State("cannot exec in a stopped container".into()));
    }
    drop(pidfd);
    // A caller that is not root on the host has no privilege over the container's pid
    // and time namespaces until it is in the container's user namespace (which its
    // own uid owns, so it may join): then the parent joins it first (rootless).
    // SAFETY: geteuid cannot fail.
    if userns && unsafe { libc::geteuid() } != 0 {
        if let Some(i) = join.iter().position(|(_, f, _)| *f == libc::CLONE_NEWUSER) {
            parent_join.insert(0, join.remove(i));
            userns = false;
        }
    }
    // With "deny" in setgroups (a rootless container mapping only its caller's ids),
    // setgroups(2) is refused; the process keeps the groups it has.
    let setgroups_ok = std::fs::read_to_string(format!("/proc/{}/setgroups", saved.pid))
        .map(|v| v.trim() != "deny")
        .unwrap_or(true);
    // setns(2): user first, so the rest is joined with the capabilities it grants;
    // mount last, since it changes our root and cwd.
    join.sort_by_key(|(_, f, _)| match *f {
        libc::CLONE_NEWUSER => 0,
        libc::CLONE_NEWNS => 2,
        _ => 1,
    });

    let apparmor = process
        .apparmor_profile
        .as_deref()
        .filter(|a| !a.is_empty())
        .map(String::from);
    if let Some(prof) = &apparmor {
        // runc fails too, later (the kernel refuses the attribute write): a profile
        // asked for and not applied would be a weaker process than requested.
        // Checked here, on the host: inside, /sys may be absent or another one.
        if !crate::apparmor::enabled() {
            return Err(crate::apparmor::not_enabled(prof));
        }
    }
    let targets = cgroup_targets(&cg, &o.cgroup)?;
    // Foreground terminal: our own socket pair stands in for --console-socket.
    let mut proxy_end = None;
    let console = match (&o.console_socket, process.terminal) {
        (Some(p), _) => Some(crate::console::connect(p)?),
        (None, true) => {
            let (mine, theirs) = crate::console::pair()?;
            proxy_end = Some(mine);
            Some(theirs)
        }
        (None, false) => None,
    };
    let pidfd_sock = match &o.pidfd_socket {
        Some(p) => Some(crate::console::connect_socket(p, "--pidfd-socket")?),
        None => None,
    };
    let child = Child {
        id: &o.id,
        process: &process,
        join,
        caps,
        rlimits,
        seccomp,
        apparmor,
        selinux: process
            .selinux_label
            .as_deref()
            .filter(|l| !l.is_empty())
            .map(String::from),
        console,
        preserve_fds: o.preserve_fds,
        userns,
        setgroups_ok,
        cgroups: &targets,
        root,
    };

    let (parent_ch, child_ch) = sync::pair()?;
    for (typ, flag, fd) in &parent_join {
        sys::setns(fd.as_fd(), *flag).ctx(|| format!("join {typ} namespace"))?;
    }
    // SAFETY: the runtime is single-threaded (DESIGN.md: no threads before clone).
    let (pid, move_unified) = unsafe { crate::cg::clone_joining(0, &targets) }?;
    if pid == 0 {
        // SAFETY: closing our copy of the lock fd (see StateDir::lock_fd).
        unsafe { libc::close(sd.lock_fd()) };
        drop(parent_ch);
        let code = match exec_child(&child, &child_ch) {
            Ok(never) => match never {},
            Err(e) => {
                let _ = child_ch.send(&Msg::Error(e.to_string()));
                1
            }
        };
        sys::exit_now(code);
    }
    drop(child_ch);
    drop(child);
    let mut guard = KillGuard(pid);

    if move_unified {
        targets.add_pid_unified(pid).map_err(crate::cg::cg_err)?;
    }
    drop(targets);
    if let Some(adj) = cproc.and_then(|p| p.oom_score_adj) {
        // Written here: the child is not dumpable, so its /proc files belong to the
        // host's root and a user-namespaced child could not write them itself.
        std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
            .ctx(|| format!("process.oomScoreAdj: write {adj}"))?;
    }
    parent_ch.send(&Msg::Go)?;
    loop {
        match parent_ch.recv()? {
            // EOF: the channel was close-on-exec, so the process runs its program.
            None => break,
            Some((Msg::SeccompFd, Some(fd))) => {
                let bundle = PathBuf::from(&saved.bundle);
                lifecycle::send_seccomp_listener(config, &o.id, pid, &bundle, fd.as_fd())?;
                parent_ch.send(&Msg::Continue)?;
            }
            Some((Msg::Error(m), _)) => {
                guard.0 = 0;
                let _ = sys::waitpid(pid, 0);
                return Err(Error::Init(format!(
                    "unable to start container process: {m}"
                )));
            }
            Some((m, _)) => {
                return Err(Error::Other(format!(
                    "unexpected message from exec process: {m:?}"
                )))
            }
        }
    }
    if let Some(sock) = &pidfd_sock {
        let fd = sys::pidfd_open(pid).ctx(|| format!("pidfd_open {pid}"))?;
        crate::console::send_fd(sock.as_fd(), "setns", fd.as_raw_fd())?;
    }
    if let Some(pf) = &o.pid_file {
        // Atomically, once the process runs: conmon and the shim read it as soon as
        // we exit (compat.md §6.6 item 9).
        let pf = if pf.is_absolute() {
            pf.clone()
        } else {
            std::env::current_dir().ctx(|| "getcwd".into())?.join(pf)
        };
        sys::write_atomic(&pf, pid.to_string().as_bytes(), 0o644)
            .ctx(|| format!("write pid file {}", pf.display()))?;
    }
    guard.0 = 0;
    // Do not hold the container's lock while the process runs.
    drop(sd);
    if o.detach {
        return Ok(0);
    }
    match proxy_end {
        // The master was sent before the exec happened, so it is queued by now.
        Some(sock) => {
            let master = crate::console::recv_master(sock.as_fd())?;
            crate::console::proxy_and_wait(pid, master)
        }
        None => lifecycle::wait_forwarding(pid),
    }
}

/// Kills and reaps the exec child if the parent fails before it runs.
struct KillGuard(libc::pid_t);

impl Drop for KillGuard {
    fn drop(&mut self) {
        if self.0 > 0 {
            // SAFETY: signalling and reaping our own child.
            unsafe { libc::kill(self.0, libc::SIGKILL) };
            let _ = sys::waitpid(self.0, 0);
        }
    }
}

/// The cgroups the exec'd process joins (oxcart_cgroups::join): the container's
/// cgroup in every hierarchy, or the `--cgroup` sub-cgroup (runc: `<path>` for all controllers,
/// `<ctrl>[,<ctrl>]:<path>` for some; the sub-cgroup must exist).
fn cgroup_targets(cg: &Cg, specs: &[String]) -> Result<oxcart_cgroups::JoinFiles> {
    let m = cg.manager();
    let mut all: Option<String> = None;
    let mut by_ctrl: Vec<(String, String)> = Vec::new();
    for s in specs {
        let (ctrls, path) = match s.split_once(':') {
            Some((c, p)) => (Some(c), p),
            None => (None, s.as_str()),
        };
        let rel = path.trim_start_matches('/');
        if rel.is_empty() || rel.split('/').any(|c| c == ".." || c == ".") {
            return Err(Error::Other(format!(
                "--cgroup {s:?}: the path must name a sub-cgroup of the container's cgroup"
            )));
        }
        match ctrls {
            None => all = Some(rel.to_string()),
            Some(cs) => {
                for c in cs.split(',') {
                    by_ctrl.push((c.to_string(), rel.to_string()));
                }
            }
        }
    }
    for (c, _) in &by_ctrl {
        let known = m
            .v1_dirs()
            .iter()
            .any(|d| d.controllers.iter().any(|x| x == c))
            || (m.unified_path().is_some() && cg.pure_v2());
        if !known {
            return Err(Error::Other(format!(
                "--cgroup: controller {c:?} is not mounted on this host"
            )));
        }
    }
    let pick = |dir: &Path, ctrls: &[String]| -> Result<PathBuf> {
        let sub = by_ctrl
            .iter()
            .find(|(c, _)| ctrls.iter().any(|x| x == c) || cg.pure_v2())
            .map(|(_, p)| p.clone())
            .or_else(|| all.clone());
        let d = match sub {
            Some(p) => {
                let d = dir.join(&p);
                if !d.join("cgroup.procs").exists() {
                    return Err(Error::Other(format!(
                        "--cgroup: sub-cgroup {} does not exist",
                        d.display()
                    )));
                }
                d
            }
            None => dir.to_path_buf(),
        };
        Ok(d)
    };
    let mut v1 = Vec::new();
    for d in m.v1_dirs() {
        v1.push(pick(&d.path, &d.controllers)?);
    }
    let unified = match m.unified_path() {
        Some(u) => Some(pick(u, &[])?),
        None => None,
    };
    oxcart_cgroups::JoinFiles::open(v1.iter().map(|p| p.as_path()), unified.as_deref())
        .map_err(crate::cg::cg_err)
}

/// The exec'd process, between clone and execve. Returns only on error.
fn exec_child(c: &Child<'_>, ch: &Channel) -> Result<std::convert::Infallible> {
    let p = c.process;
    // Until execve, this process is a copy of the runtime inside the container:
    // not dumpable, so container processes cannot open /proc/<pid>/exe (the host's
    // runtime binary, CVE-2019-5736) or its fds. execve makes it dumpable again.
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(Error::last("prctl(PR_SET_DUMPABLE)"));
    }
    match ch.recv()? {
        Some((Msg::Go, _)) => {}
        other => return Err(Error::Other(format!("expected go, got {other:?}"))),
    }
    c.cgroups.join_self_v1().map_err(crate::cg::cg_err)?;
    for (typ, flag, fd) in &c.join {
        sys::setns(fd.as_fd(), *flag).ctx(|| format!("join {typ} namespace"))?;
    }
    if let Some(root) = &c.root {
        sys::fchdir(root.as_fd()).ctx(|| "chdir to the container's root".into())?;
        sys::chroot(c".").ctx(|| "chroot to the container's root".into())?;
    }
    if c.userns {
        // Joining a user namespace keeps our (unmapped) ids; become its root so the
        // rest of the setup runs as the container's root (user_namespaces(7)).
        // SAFETY: plain syscalls.
        unsafe {
            if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
                return Err(Error::last("become root in the user namespace"));
            }
        }
    }
    // SAFETY: plain syscall: a new session, detached from the caller's terminal (and
    // a session leader, which a controlling terminal needs).
    if unsafe { libc::setsid() } < 0 {
        return Err(Error::last("setsid"));
    }
    if let Some(sock) = &c.console {
        let sock = sock.try_clone().ctx(|| "duplicate console socket".into())?;
        crate::console::setup(sock, p.console_size, false, p.user.uid)?;
    }
    process::apply_rlimits(&c.rlimits)?;
    // runc's setns init: keycreate label, session keyring, then the exec label
    // (`selinux.SetKeyLabel`, `keys.JoinSessionKeyring`, `selinux.SetExecLabel`).
    process::join_session_keyring_labelled(c.id, c.selinux.as_deref())?;
    if let Some(l) = &c.selinux {
        crate::selinux::set_exec_label("process.selinuxLabel", l)?;
    }
    // runc's setns init applies the profile last of the LSM settings, before
    // no_new_privs and the execve it takes effect at.
    if let Some(prof) = &c.apparmor {
        crate::apparmor::apply_profile(prof)?;
    }
    if p.no_new_privileges {
        process::set_no_new_privs()?;
    }
    // No host fd may reach the container (CVE-2024-21626).
    sys::cloexec_from(3 + c.preserve_fds).ctx(|| "mark fds close-on-exec".into())?;
    for fd in 3..3 + c.preserve_fds {
        let _ = sys::set_cloexec(fd as i32, false);
    }
    process::reset_signals()?;
    // As in create: without no_new_privs the filter needs CAP_SYS_ADMIN, so it goes
    // in before the capabilities are dropped; NOTIFY needs the parent still there.
    let early = c
        .seccomp
        .as_ref()
        .filter(|f| !p.no_new_privileges || f.uses_notify());
    if let Some(f) = early {
        lifecycle::install_seccomp(f, ch, &|| lifecycle::expect_continue(ch))?;
    }
    if let Some(caps) = &c.caps {
        if let Some(b) = caps.bounding {
            crate::caps::apply_bounding(b)?;
        }
        process::set_keepcaps(true)?;
    }
    process::set_user(p, c.setgroups_ok)?;
    if let Some(caps) = &c.caps {
        process::set_keepcaps(false)?;
        crate::caps::apply_sets(caps)?;
    }
    if let Some(m) = p.user.umask {
        // SAFETY: plain syscall.
        unsafe { libc::umask(m as libc::mode_t) };
    }
    process::enter_cwd(&p.cwd)?;
    let path = process::look_path(&p.args[0], &p.env)?;
    if early.is_none() {
        if let Some(f) = &c.seccomp {
            f.install().map_err(|e| Error::Seccomp(e.to_string()))?;
        }
    }
    Err(process::exec(&path, &p.args, &p.env))
}
