//! The container's init, between clone and execve (docs/architecture.md "`create`,
//! step by step", the init half), one function per phase: [`enter`] (the binary
//! switch, "go", the v1 cgroups), [`namespaces`], [`rootfs`] (mounts, devices, the
//! create hooks, the switch of root and what is done on the new one), [`identity`]
//! (hostname, `lo`, rlimits, LSMs, keyring, no_new_privs), [`credentials`] (fds,
//! an early seccomp filter, bounding set, user, capabilities, umask, cwd), then
//! "recorded" (the parent wrote `state.json`), "ready", `exec.fifo` and execve.

use crate::error::{Ctx, Error, Result};
use crate::hooks;
use crate::lifecycle::{hook_state, install_seccomp};
use crate::namespaces::{self, Plan};
use crate::process::{self, Prepared};
use crate::rootfs::{self, RootfsCtx};
use crate::sync::{Channel, Msg};
use crate::sys;
use oxcart_spec::{Process, Spec, Status};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

/// Everything init needs, computed in the parent before clone.
pub(crate) struct InitArgs<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub plan: &'a Plan,
    pub prepared: &'a Prepared,
    pub rootfs: PathBuf,
    pub bundle: PathBuf,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// fds 3.. that pass into the container: LISTEN_FDS + --preserve-fds.
    pub pass_fds: u32,
    pub listen_fds: u32,
    pub fifo: OwnedFd,
    pub proc_fd: OwnedFd,
    pub seccomp: Option<oxcart_seccomp::Filter>,
    pub cgroup_dirs: Vec<crate::cg::MountDir>,
    /// init joins its v1 cgroups itself through these (oxcart_cgroups::join).
    pub cgroup_join: oxcart_cgroups::JoinFiles,
    /// The parent makes the v1 cgroups after the clone and sends them
    /// (`Msg::TasksFds`, `Msg::CgroupsMade`).
    pub cgroups_after_clone: bool,
    /// The parent makes init's network namespace after the clone (`Msg::NetNs`).
    pub netns_from_parent: bool,
    /// Connected `--console-socket` for `process.terminal`.
    pub console: Option<OwnedFd>,
    /// False when the parent denied setgroups to write the gid map unprivileged.
    pub setgroups_ok: bool,
    /// Idmapped mount trees, made here because idmapping needs the host's privileges.
    pub idmapped: crate::idmap::Prepared,
    /// `linux.mountLabel`, where the host has SELinux (checked against its policy);
    /// None elsewhere, since runc drops it there.
    pub mount_label: Option<String>,
}

/// What init waits for from the parent after "go", sent in this order: the
/// network namespace the parent made (`Msg::NetNs`), the v1 cgroups it made
/// (`Msg::TasksFds`, then `Msg::CgroupsMade`: enough for the cgroup mounts),
/// `Msg::Joined` once the limits are set, and `Msg::Recorded` once `state.json`
/// is written; `Msg::Continue` answers a request of ours (hooks, seccomp
/// listener), which may come before or after `Recorded`. [`FromParent::wait`] reads until what
/// init needs has come, acting on each message as it comes: the namespace is
/// entered at once, the v1 cgroups are joined at `Joined`.
struct FromParent<'a> {
    ch: &'a Channel,
    in_netns: std::cell::Cell<bool>,
    made: std::cell::Cell<bool>,
    joined: std::cell::Cell<bool>,
    recorded: std::cell::Cell<bool>,
    continued: std::cell::Cell<bool>,
    v1: std::cell::RefCell<Vec<(PathBuf, OwnedFd)>>,
}

impl FromParent<'_> {
    fn wait(&self, done: impl Fn(&Self) -> bool) -> Result<()> {
        while !done(self) {
            match self.ch.recv_fds()? {
                Some((Msg::NetNs, fds)) if fds.len() == 1 => {
                    sys::setns(fds[0].as_fd(), libc::CLONE_NEWNET)
                        .ctx(|| "join the container's network namespace".into())?;
                    self.in_netns.set(true);
                }
                Some((Msg::TasksFds(paths), fds)) if paths.len() == fds.len() => {
                    let mut v1 = self.v1.borrow_mut();
                    v1.extend(paths.into_iter().map(PathBuf::from).zip(fds));
                }
                Some((Msg::CgroupsMade, _)) => self.made.set(true),
                Some((Msg::Recorded, _)) => self.recorded.set(true),
                Some((Msg::Continue, _)) => self.continued.set(true),
                Some((Msg::Joined, _)) => {
                    // Only now, with every limit set: a device rule list is
                    // rewritten deny-all first, and a memory limit below what
                    // init had used in the cgroup would fail.
                    let v1 = std::mem::take(&mut *self.v1.borrow_mut());
                    oxcart_cgroups::JoinFiles::from_v1(v1)
                        .join_self_v1()
                        .map_err(crate::cg::cg_err)?;
                    self.joined.set(true);
                }
                other => {
                    return Err(Error::Other(format!(
                        "init: unexpected message from the parent: {other:?}"
                    )))
                }
            }
        }
        Ok(())
    }
    /// The parent's answer to our last request.
    fn wait_continue(&self) -> Result<()> {
        self.wait(|p| p.continued.replace(false))
    }
    /// In every cgroup, with every limit set.
    fn wait_joined(&self) -> Result<()> {
        self.wait(|p| p.joined.get())
    }
    /// The v1 cgroups exist (enough to mount them).
    fn wait_made(&self) -> Result<()> {
        self.wait(|p| p.made.get())
    }
    /// In the container's network namespace.
    fn wait_netns(&self) -> Result<()> {
        self.wait(|p| p.in_netns.get())
    }
}

/// The container's init. Returns only on error.
pub(crate) fn init(
    a: &InitArgs<'_>,
    seal_view: Option<OwnedFd>,
    ch: &Channel,
) -> Result<std::convert::Infallible> {
    let spec = a.spec;
    let seal_view = enter(a, seal_view, ch)?;
    let process = spec
        .process
        .as_ref()
        .ok_or_else(|| Error::config("process", "missing"))?;
    let parent = FromParent {
        ch,
        in_netns: std::cell::Cell::new(!a.netns_from_parent),
        made: std::cell::Cell::new(!a.cgroups_after_clone),
        joined: std::cell::Cell::new(false),
        recorded: std::cell::Cell::new(false),
        continued: std::cell::Cell::new(false),
        v1: std::cell::RefCell::new(Vec::new()),
    };
    namespaces(a, &parent)?;
    rootfs(a, process, &parent, ch)?;
    identity(a, process)?;
    let early_seccomp = credentials(a, process, &parent, ch)?;
    let mut env = process.env.clone();
    if a.listen_fds > 0 {
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={}", a.listen_fds));
        env.push(format!("LISTEN_PID={}", sys::getpid()));
    }
    let path = process::look_path(&process.args[0], &env)?;
    // Never run the user's program outside its cgroups, and never wait for
    // `start` unrecorded: `delete` could not find us (Msg::Recorded).
    parent.wait(|p| p.joined.get() && p.recorded.get())?;
    // `create` exits soon after "ready": from here on, recorded, we outlive it.
    set_parent_death_signal(0)?;
    ch.send(&Msg::Ready)?;
    // While the parent finishes: off create's path (become_in_init).
    drop(seal_view);
    process::wait_fifo(a.proc_fd.as_fd(), &a.fifo, || {
        // After start, before the user's program, in the container (runc runs them
        // with the "created" state and init's own pid). A failure fails `start`.
        match spec.hooks.as_ref() {
            Some(h) => hooks::run(
                "startContainer",
                &h.start_container,
                &hook_state(
                    (&spec.oci_version, &spec.annotations),
                    a.id,
                    &a.bundle,
                    Status::Created,
                    sys::getpid(),
                ),
            ),
            None => Ok(()),
        }
    })?;
    if !early_seccomp {
        if let Some(f) = &a.seccomp {
            // As late as possible, right before execve, so the filter can be strict.
            f.install().map_err(|e| Error::Seccomp(e.to_string()))?;
        }
    }
    Err(process::exec(&path, &process.args, &env))
}

/// prctl(2) PR_SET_PDEATHSIG: `sig` (0: none) when the runtime that cloned us
/// dies. Armed with SIGKILL from the start of init until "ready", so a `create`
/// (or `run`) killed during setup takes its half-made init with it at once, as
/// runc's init dies with its parent; a createContainer hook it ran stays in the
/// cgroups, which `delete` kills (lifecycle::delete_unfinished). The kernel
/// clears the setting on a change of credentials (commit_creds), hence armed
/// again after becoming root of a new user namespace. Had the parent died
/// before init armed it, init's next read of the channel gets EOF instead.
fn set_parent_death_signal(sig: libc::c_int) -> Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(Error::last("prctl(PR_SET_PDEATHSIG)"));
    }
    Ok(())
}

/// First: the parent-death signal, non-dumpable, the switch to the read-only binary, "go" (the parent has
/// written our id maps), our v1 cgroups. Returns the view to close after "ready".
fn enter(a: &InitArgs<'_>, seal_view: Option<OwnedFd>, ch: &Channel) -> Result<Option<OwnedFd>> {
    // Until execve, init is a copy of the runtime: /proc/<init>/exe is the host's
    // oxcart-runtime binary. Non-dumpable, no process in the container (an exec, a
    // ptrace) can open it for the CVE-2019-5736 overwrite; execve resets the flag.
    // With a new user namespace an unprivileged parent must be able to write our
    // /proc/<pid>/{setgroups,uid_map,gid_map}, which a non-dumpable process's
    // /proc files (owned by root) forbid: stay dumpable until "go", as runc's
    // nsexec does (SYNC_USERMAP_PLS). Nothing of the container runs before that.
    set_parent_death_signal(libc::SIGKILL)?;
    let set_non_dumpable = || -> Result<()> {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
            return Err(Error::last("prctl(PR_SET_DUMPABLE)"));
        }
        Ok(())
    };
    if !a.plan.new_userns() {
        set_non_dumpable()?;
    }
    // Then, while nothing of the container exists, the switch to the read-only
    // view (crate::selfexe::prepare_for_init: only without a new user namespace,
    // so init is already non-dumpable); the view is closed after "ready".
    let seal_view = match seal_view {
        // SAFETY: a clone3 child has one thread, and nothing else runs here.
        Some(view) => Some(
            unsafe { crate::selfexe::become_in_init(view) }
                .map_err(|e| Error::InitSeal(e.to_string()))?,
        ),
        None => None,
    };
    // Wait until the parent has written our id maps.
    match ch.recv()? {
        Some((Msg::Go, _)) => {}
        other => return Err(Error::Other(format!("init: expected go, got {other:?}"))),
    }
    if a.plan.new_userns() {
        set_non_dumpable()?;
    }
    // Our credentials are still the parent's (the v1 write checks them: root or
    // the task's owner). After "go", so a failure reaches the parent as our own
    // error rather than as a broken channel.
    a.cgroup_join.join_self_v1().map_err(crate::cg::cg_err)?;
    Ok(seal_view)
}

/// Root of a new user namespace, the namespaces given by path, a cgroup
/// namespace rooted at our cgroup, a new session.
fn namespaces(a: &InitArgs<'_>, parent: &FromParent<'_>) -> Result<()> {
    if a.plan.new_userns() {
        // Become the namespace's root now that a mapping exists (user_namespaces(7)).
        // SAFETY: plain syscalls.
        unsafe {
            if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
                return Err(Error::last("become root in the user namespace"));
            }
        }
        // The id change cleared it (set_parent_death_signal).
        set_parent_death_signal(libc::SIGKILL)?;
    }
    a.plan.child_join()?;
    if a.plan.new_cgroupns {
        // The namespace is rooted at the cgroup we are in when we unshare.
        parent.wait_joined()?;
        sys::unshare(libc::CLONE_NEWCGROUP).ctx(|| "create cgroup namespace".into())?;
    }
    // SAFETY: plain syscall; a new session detaches us from the caller's terminal.
    if unsafe { libc::setsid() } < 0 {
        return Err(Error::last("setsid"));
    }
    Ok(())
}

/// The rootfs bind, `mounts[]`, devices, the create hooks, then the new root
/// (pivot_root, `--no-pivot`'s move, or chroot without a mount namespace) and
/// what is done on it: propagation, the console, sysctls, masked and read-only
/// paths, a read-only root.
fn rootfs(
    a: &InitArgs<'_>,
    process: &Process,
    parent: &FromParent<'_>,
    ch: &Channel,
) -> Result<()> {
    let spec = a.spec;
    let rctx = RootfsCtx {
        spec,
        rootfs: a.rootfs.clone(),
        bundle: a.bundle.clone(),
        userns: a.plan.userns,
        new_cgroupns: a.plan.new_cgroupns,
        shares_host_mounts: !a.plan.has(libc::CLONE_NEWNS),
        cgroup_dirs: a.cgroup_dirs.clone(),
        idmapped: &a.idmapped,
        mount_label: a.mount_label.as_deref(),
        before_cgroup_mount: &|| parent.wait_made(),
        before_sysfs_mount: &|| parent.wait_netns(),
    };
    rootfs::prepare_root(&rctx)?;
    rootfs::mount_all(&rctx)?;
    rootfs::setup_dev(&rctx)?;
    // From here on (hooks, sysctls, `lo`, the program) everything is in the
    // container's network namespace.
    parent.wait_netns()?;
    create_hooks(a, parent, ch)?;
    if !a.plan.has(libc::CLONE_NEWNS) {
        rootfs::chroot_root(&a.rootfs)?;
    } else if a.no_pivot {
        rootfs::move_root(&a.rootfs)?;
    } else {
        rootfs::pivot(&a.rootfs)?;
    }
    let linux = spec.linux.as_ref();
    rootfs::set_root_propagation(linux.and_then(|l| l.rootfs_propagation.as_deref()))?;
    if let Some(sock) = &a.console {
        // After pivot_root, so the pty comes from the container's own devpts.
        let sock = sock.try_clone().ctx(|| "duplicate console socket".into())?;
        crate::console::setup(sock, process.console_size, true, process.user.uid)?;
    }
    process::apply_sysctl(&a.prepared.sysctl)?;
    if let Some(l) = linux.filter(|l| !(l.masked_paths.is_empty() && l.readonly_paths.is_empty())) {
        let root = rootfs::open_root()?;
        for p in &l.masked_paths {
            rootfs::mask_path(root.as_fd(), p, a.mount_label.as_deref())?;
        }
        for p in &l.readonly_paths {
            rootfs::readonly_path(root.as_fd(), p)?;
        }
    }
    if spec.root.as_ref().is_some_and(|r| r.readonly) {
        rootfs::readonly_root()?;
    }
    Ok(())
}

/// runtime-spec config.md "POSIX-platform Hooks": prestart and createRuntime run
/// in the runtime now that the namespaces exist, createContainer here in the
/// container's namespaces; all before pivot_root (runc prepareRootfs).
fn create_hooks(a: &InitArgs<'_>, parent: &FromParent<'_>, ch: &Channel) -> Result<()> {
    let spec = a.spec;
    let Some(h) = spec.hooks.as_ref() else {
        return Ok(());
    };
    // Hooks are processes of the container: they start in its cgroups.
    parent.wait_joined()?;
    if !(h.prestart.is_empty() && h.create_runtime.is_empty()) {
        ch.send(&Msg::Hooks)?;
        // On a hook's error the parent reports it and closes the channel.
        parent
            .wait_continue()
            .map_err(|_| Error::Other("create hooks failed".into()))?;
    }
    hooks::run(
        "createContainer",
        &h.create_container,
        &hook_state(
            (&spec.oci_version, &spec.annotations),
            a.id,
            &a.bundle,
            Status::Creating,
            sys::getpid(),
        ),
    )
}

/// Hostname, domainname, `lo` up, rlimits, the AppArmor profile, the session
/// keyring, the SELinux exec label, no_new_privs.
fn identity(a: &InitArgs<'_>, process: &Process) -> Result<()> {
    let spec = a.spec;
    if let Some(h) = spec.hostname.as_deref().filter(|h| !h.is_empty()) {
        // SAFETY: pointer/len of a live string.
        if unsafe { libc::sethostname(h.as_ptr() as *const libc::c_char, h.len()) } != 0 {
            return Err(Error::last(format!("hostname: sethostname({h:?})")));
        }
    }
    if let Some(d) = spec.domainname.as_deref().filter(|d| !d.is_empty()) {
        // SAFETY: pointer/len of a live string.
        if unsafe { libc::setdomainname(d.as_ptr() as *const libc::c_char, d.len()) } != 0 {
            return Err(Error::last(format!("domainname: setdomainname({d:?})")));
        }
    }
    if a.plan.clone_flags & libc::CLONE_NEWNET != 0 {
        namespaces::loopback_up()?;
    }
    process::apply_rlimits(&a.prepared.rlimits)?;
    if let Some(prof) = process
        .apparmor_profile
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        // Checked in the parent: the host has AppArmor. Applies from execve on.
        // Where runc's standard init does it (`apparmor.ApplyProfile` after the
        // hostname): after the rootfs, so mounts and pivot_root ran unconfined.
        // A profile that is not loaded fails here (ENOENT) and create with it.
        crate::apparmor::apply_profile(prof)?;
    }
    let label = process.selinux_label.as_deref().filter(|l| !l.is_empty());
    if !a.no_new_keyring {
        process::join_session_keyring_labelled(a.id, label)?;
    }
    if let Some(l) = label {
        // The parent checked that the host has SELinux and the label is valid.
        // runc `label.SetProcessLabel`: the kernel applies it at execve (proc(5),
        // /proc/[pid]/attr/exec); written after the rootfs setup, so the mounts
        // above were made with the runtime's own label.
        crate::selinux::set_exec_label("process.selinuxLabel", l)?;
    }
    if process.no_new_privileges {
        process::set_no_new_privs()?;
    }
    Ok(())
}

/// Close-on-exec above the passed fds, a seccomp filter that must be loaded
/// early, the bounding set, the user, the capabilities, umask and cwd. Returns
/// whether the seccomp filter is loaded already.
fn credentials(
    a: &InitArgs<'_>,
    process: &Process,
    parent: &FromParent<'_>,
    ch: &Channel,
) -> Result<bool> {
    // No host fd may reach the container (CVE-2024-21626): everything above the
    // passed-through ones is close-on-exec.
    sys::cloexec_from(3 + a.pass_fds).ctx(|| "mark fds close-on-exec".into())?;
    for fd in 3..3 + a.pass_fds {
        let _ = sys::set_cloexec(fd as i32, false);
    }
    process::reset_signals()?;
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, so it must happen
    // before the capabilities are dropped (seccomp(2)); a NOTIFY filter is loaded
    // early too, while `create` is still there to receive the listener fd.
    let early_seccomp = a
        .seccomp
        .as_ref()
        .filter(|f| !process.no_new_privileges || f.uses_notify());
    if let Some(f) = early_seccomp {
        parent.wait_joined()?;
        install_seccomp(f, ch, &|| parent.wait_continue())?;
    }
    if let Some(c) = &a.prepared.caps {
        if let Some(b) = c.bounding {
            crate::caps::apply_bounding(b)?;
        }
        process::set_keepcaps(true)?;
    }
    process::set_user(process, a.setgroups_ok)?;
    if let Some(c) = &a.prepared.caps {
        process::set_keepcaps(false)?;
        crate::caps::apply_sets(c)?;
    }
    if let Some(m) = process.user.umask {
        // SAFETY: plain syscall.
        unsafe { libc::umask(m as libc::mode_t) };
    }
    process::enter_cwd(&process.cwd)?;
    Ok(early_seccomp.is_some())
}
