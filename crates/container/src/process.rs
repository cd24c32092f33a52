//! The process side of a container: what is checked in the parent before clone
//! (so bad input is reported cleanly), and what init does to itself before execve.

use crate::caps::{self, CapSets};
use crate::error::{Ctx, Error, Result};
use crate::sys::{self, cstring};
use oxcart_spec::{Process, Spec};
use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The process configuration, parsed and checked before clone.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub caps: Option<CapSets>,
    pub rlimits: Vec<(libc::c_int, u64, u64)>,
    pub sysctl: Vec<(String, String)>,
}

fn rlimit_resource(name: &str) -> Option<libc::c_int> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    } as libc::c_int)
}

/// Which namespace a sysctl belongs to (runc libcontainer/configs/validate sysctl).
fn check_sysctl(key: &str, ns: &dyn Fn(libc::c_int) -> bool) -> std::result::Result<(), String> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        return if ns(libc::CLONE_NEWIPC) {
            Ok(())
        } else {
            Err(format!(
                "sysctl {key:?} is not allowed in the host's ipc namespace"
            ))
        };
    }
    if key.starts_with("net.") {
        return if ns(libc::CLONE_NEWNET) {
            Ok(())
        } else {
            Err(format!(
                "sysctl {key:?} is not allowed in the host's network namespace"
            ))
        };
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        return if ns(libc::CLONE_NEWUTS) {
            Ok(())
        } else {
            Err(format!(
                "sysctl {key:?} is not allowed in the host's uts namespace"
            ))
        };
    }
    Err(format!(
        "sysctl {key:?} is not in a separate kernel namespace"
    ))
}

pub fn prepare(spec: &Spec, has_ns: &dyn Fn(libc::c_int) -> bool) -> Result<Prepared> {
    let p = spec
        .process
        .as_ref()
        .ok_or_else(|| Error::config("process", "missing: create/run need a process to start"))?;
    let caps = match &p.capabilities {
        Some(c) => Some(caps::parse(c, "process.capabilities")?),
        None => None,
    };
    let mut rlimits = Vec::new();
    for (i, r) in p.rlimits.iter().enumerate() {
        let res = rlimit_resource(&r.typ).ok_or_else(|| {
            Error::config(
                format!("process.rlimits[{i}].type"),
                format!("unknown rlimit {:?}", r.typ),
            )
        })?;
        if r.soft > r.hard {
            return Err(Error::config(
                format!("process.rlimits[{i}]"),
                format!("soft limit {} exceeds hard limit {}", r.soft, r.hard),
            ));
        }
        if rlimits.iter().any(|(x, _, _)| *x == res) {
            return Err(Error::config(
                format!("process.rlimits[{i}].type"),
                format!("{} is set twice", r.typ),
            ));
        }
        rlimits.push((res, r.soft, r.hard));
    }
    let mut sysctl = Vec::new();
    if let Some(l) = &spec.linux {
        for (k, v) in &l.sysctl {
            check_sysctl(k, has_ns).map_err(|m| Error::config(format!("linux.sysctl.{k}"), m))?;
            if k.contains('/') || k.contains("..") {
                return Err(Error::config(
                    format!("linux.sysctl.{k}"),
                    "invalid sysctl name",
                ));
            }
            sysctl.push((k.clone(), v.clone()));
        }
    }
    if let Some(h) = &spec.hostname {
        if !h.is_empty() && !has_ns(libc::CLONE_NEWUTS) {
            return Err(Error::config(
                "hostname",
                "cannot set a hostname without a private UTS namespace",
            ));
        }
    }
    if let Some(d) = &spec.domainname {
        if !d.is_empty() && !has_ns(libc::CLONE_NEWUTS) {
            return Err(Error::config(
                "domainname",
                "cannot set a domainname without a private UTS namespace",
            ));
        }
    }
    Ok(Prepared {
        caps,
        rlimits,
        sysctl,
    })
}

pub fn apply_rlimits(r: &[(libc::c_int, u64, u64)]) -> Result<()> {
    for (res, soft, hard) in r {
        let lim = libc::rlimit {
            rlim_cur: *soft,
            rlim_max: *hard,
        };
        // SAFETY: valid rlimit struct; resource number checked in prepare().
        if unsafe { libc::setrlimit(*res as _, &lim) } != 0 {
            return Err(Error::last(format!(
                "setrlimit({res}) soft={soft} hard={hard}"
            )));
        }
    }
    Ok(())
}

pub fn apply_sysctl(s: &[(String, String)]) -> Result<()> {
    for (k, v) in s {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&path, v).ctx(|| format!("linux.sysctl.{k}: write {path}"))?;
    }
    Ok(())
}

/// Join a fresh session keyring so the container cannot read the host's keys
/// (keyrings(7); runc names it `_ses.<id>`), unless `--no-new-keyring`.
/// runc's keyring setup with its SELinux part (`selinux.SetKeyLabel` before
/// `keys.JoinSessionKeyring`): with a label, the new session keyring gets the
/// container's context instead of the runtime's. The keycreate label is cleared
/// again at once; execve would reset it anyway (proc(5), /proc/[pid]/attr/keycreate).
pub fn join_session_keyring_labelled(id: &str, label: Option<&str>) -> Result<()> {
    let Some(l) = label else {
        return join_session_keyring(id);
    };
    crate::selinux::set_key_label("process.selinuxLabel", l)?;
    let r = join_session_keyring(id);
    crate::selinux::set_key_label("process.selinuxLabel", "")?;
    r
}

pub fn join_session_keyring(id: &str) -> Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let name = cstring(format!("_ses.{id}"))?;
    // SAFETY: keyctl with a valid string.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        // ENOSYS: kernel without keys; EDQUOT: per-user key quota exhausted. runc
        // treats both as "no keyring" rather than failing the container.
        if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EDQUOT)) {
            return Ok(());
        }
        return Err(Error::sys("join session keyring", e));
    }
    Ok(())
}

pub fn set_no_new_privs() -> Result<()> {
    // SAFETY: prctl with integer args.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(Error::last("prctl(PR_SET_NO_NEW_PRIVS)"));
    }
    Ok(())
}

pub fn set_keepcaps(on: bool) -> Result<()> {
    // SAFETY: prctl with integer args.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, libc::c_ulong::from(on), 0, 0, 0) } != 0 {
        return Err(Error::last("prctl(PR_SET_KEEPCAPS)"));
    }
    Ok(())
}

/// setgroups/setgid/setuid to the configured user (process.user).
pub fn set_user(p: &Process, userns_setgroups_ok: bool) -> Result<()> {
    let u = &p.user;
    if userns_setgroups_ok {
        let gids: Vec<libc::gid_t> = u.additional_gids.clone();
        // SAFETY: pointer and length of a live Vec.
        if unsafe { libc::setgroups(gids.len(), gids.as_ptr()) } != 0 {
            return Err(Error::last("process.user.additionalGids: setgroups"));
        }
    } else if !u.additional_gids.is_empty() {
        return Err(Error::config(
            "process.user.additionalGids",
            "setgroups is denied in this user namespace",
        ));
    }
    // SAFETY: plain syscalls.
    if unsafe { libc::setresgid(u.gid, u.gid, u.gid) } != 0 {
        return Err(Error::last(format!("process.user.gid: setgid({})", u.gid)));
    }
    // SAFETY: plain syscall.
    if unsafe { libc::setresuid(u.uid, u.uid, u.uid) } != 0 {
        return Err(Error::last(format!("process.user.uid: setuid({})", u.uid)));
    }
    Ok(())
}

/// chdir to process.cwd and verify we really are inside the container: a leaked
/// host directory fd used as cwd shows up as "(unreachable)" (CVE-2024-21626).
pub fn enter_cwd(cwd: &str) -> Result<()> {
    let c = cstring(cwd)?;
    sys::chdir(&c).ctx(|| format!("process.cwd: chdir to {cwd:?}"))?;
    let here = std::env::current_dir().ctx(|| "getcwd".into())?;
    if !here.is_absolute() || here.to_string_lossy().starts_with("(unreachable)") {
        return Err(Error::Other(format!(
            "process.cwd {cwd:?} is outside the container"
        )));
    }
    Ok(())
}

/// `PATH` lookup in the container's own environment, with Go's `exec.LookPath`
/// wording, which podman and containerd match on ("executable file not found in").
pub fn look_path(arg0: &str, env: &[String]) -> Result<CString> {
    let is_exec = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if arg0.contains('/') {
        return match std::fs::metadata(arg0) {
            Ok(m) if m.is_dir() => Err(Error::Init(format!("exec: {arg0:?}: is a directory"))),
            Ok(_) if is_exec(Path::new(arg0)) => cstring(arg0).ctx(|| "process.args[0]".into()),
            Ok(_) => Err(Error::Init(format!("exec: {arg0:?}: permission denied"))),
            Err(e) => Err(Error::Init(format!(
                "exec: {arg0:?}: stat {arg0}: {}",
                if e.kind() == std::io::ErrorKind::NotFound {
                    "no such file or directory".to_string()
                } else {
                    e.to_string()
                }
            ))),
        };
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(arg0);
        if is_exec(&cand) {
            return sys::cpath(&cand).ctx(|| "process.args[0]".into());
        }
    }
    Err(Error::Init(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    )))
}

/// Block until `start` opens the read side of exec.fifo, then write one byte
/// (runc's create→start barrier). `proc_fd` is a handle on a procfs opened before
/// pivot_root, so this works even if the container mounts no /proc.
///
/// `before_release` runs once `start` has opened the fifo and before the byte that
/// lets `start` return: the startContainer hooks, so that they precede `start`'s
/// poststart hooks (runtime-spec runtime.md "Lifecycle" steps 7–9).
pub fn wait_fifo(
    proc_fd: BorrowedFd<'_>,
    fifo: &OwnedFd,
    before_release: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let path = cstring(format!("self/fd/{}", fifo.as_raw_fd()))?;
    let w = sys::openat(proc_fd, &path, libc::O_WRONLY, 0).ctx(|| "open exec fifo".into())?;
    before_release()?;
    // SAFETY: writing one byte from a static buffer.
    let r = unsafe { libc::write(w.as_raw_fd(), b"0".as_ptr() as *const libc::c_void, 1) };
    if r != 1 {
        return Err(Error::last("write exec fifo"));
    }
    Ok(())
}

/// Give the program the signal state a process starts with: every signal at its
/// default disposition and none blocked. execve(2) resets only *handled* signals;
/// an *ignored* one stays ignored, and the runtime ignores SIGPIPE for itself
/// (runtime/src/main.rs), so without this `yes | head` in a container never ends
/// (a SIGPIPE-ignoring writer spins on EPIPE). runc's children start this way too.
/// Called before the seccomp filter is loaded, which may forbid rt_sigaction.
pub fn reset_signals() -> Result<()> {
    // Every signal up to 64, glibc's internal 32 and 33 included, which its
    // signal()/sigaction() wrappers refuse: the raw syscall takes them.
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: the kernel's struct sigaction is handler, flags, restorer, mask
        // (8 bytes with a 64-signal mask); all zero is SIG_DFL with no flags.
        unsafe {
            let act = [0u64; 4];
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                act.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
    }
    // SAFETY: an empty, initialised set; the old mask is not wanted.
    let r = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut())
    };
    if r != 0 {
        return Err(Error::last("sigprocmask"));
    }
    Ok(())
}

/// execve the user's program.
pub fn exec(path: &CString, args: &[String], env: &[String]) -> Error {
    let cargs: Vec<CString> = args
        .iter()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let cenv: Vec<CString> = env
        .iter()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let mut argv: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = cenv.iter().map(|c| c.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: NULL-terminated arrays of valid C strings that outlive the call.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    let e = std::io::Error::last_os_error();
    let what = match e.raw_os_error() {
        Some(libc::ENOENT) => "no such file or directory".to_string(),
        Some(libc::EACCES) => "permission denied".to_string(),
        _ => e.to_string(),
    };
    Error::Init(format!("exec {:?}: {what}", path))
}
