//! Test support: run a closure in a forked child under a filter, observe from the parent.
#![allow(dead_code, clippy::unwrap_used)]

use oxcart_seccomp::Filter;
use oxcart_spec::{LinuxSeccomp, LinuxSeccompArg, LinuxSyscall};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Outcome {
    Exited(i32),
    Signaled(i32),
}

/// A raw syscall returning Ok(ret) or Err(errno). Allocation-free, fork-safe.
pub fn sys(nr: i64, a: [u64; 6]) -> Result<i64, i32> {
    // SAFETY: the tests only issue syscalls whose arguments are harmless values or
    // valid pointers owned by the caller.
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if r < 0 {
        // SAFETY: errno location is always valid for the calling thread.
        Err(unsafe { *libc::__errno_location() })
    } else {
        Ok(r)
    }
}

pub fn sys0(nr: i64) -> Result<i64, i32> {
    sys(nr, [0; 6])
}

/// Fork; in the child: no core dumps, install `filter`, run `body(listener fd)` and
/// `_exit` with its result. The child only makes raw syscalls after fork (the test
/// harness is multi-threaded). Returns how the child ended.
pub fn run_in_child(filter: &Filter, body: impl FnOnce(Option<RawFd>) -> i32) -> Outcome {
    run_in_child_with(filter, |_| {}, body)
}

/// As [`run_in_child`], with `parent(pid)` run in the parent while the child runs.
pub fn run_in_child_with(
    filter: &Filter,
    parent: impl FnOnce(i32),
    body: impl FnOnce(Option<RawFd>) -> i32,
) -> Outcome {
    // SAFETY: fork in a test; the child only makes raw syscalls and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = (|| {
            let zero = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: plain syscalls.
            unsafe {
                libc::setrlimit(libc::RLIMIT_CORE, &zero);
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            }
            let fd = match filter.install() {
                Ok(fd) => fd,
                Err(_) => return 200,
            };
            let raw = fd.as_ref().map(|f| f.as_raw_fd());
            let code = body(raw);
            std::mem::forget(fd);
            code
        })();
        // SAFETY: terminate the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) }
    }
    parent(pid);
    wait(pid)
}

pub fn wait(pid: i32) -> Outcome {
    let mut st = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        if r == pid {
            break;
        }
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EINTR)
        );
    }
    if libc::WIFEXITED(st) {
        Outcome::Exited(libc::WEXITSTATUS(st))
    } else {
        Outcome::Signaled(libc::WTERMSIG(st))
    }
}

pub fn rule(names: &[&str], action: &str, errno: Option<u32>) -> LinuxSyscall {
    LinuxSyscall {
        names: names.iter().map(|s| s.to_string()).collect(),
        action: action.into(),
        errno_ret: errno,
        args: vec![],
    }
}

pub fn arg(index: u32, op: &str, value: u64, value_two: u64) -> LinuxSeccompArg {
    LinuxSeccompArg {
        index,
        value,
        value_two,
        op: op.into(),
    }
}

pub fn profile(default: &str, rules: Vec<LinuxSyscall>) -> LinuxSeccomp {
    LinuxSeccomp {
        default_action: default.into(),
        syscalls: rules,
        ..Default::default()
    }
}

/// The syscalls any test child needs after install (exit paths).
pub const BASE_ALLOW: &[&str] = &["exit_group", "exit", "rt_sigreturn"];

/// A unique temp dir removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "oxcart-seccomp-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kill + reap a child on drop (for tests that may fail while a child blocks).
pub struct ChildGuard(pub i32);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.0 > 0 {
            // SAFETY: our own child.
            unsafe {
                libc::kill(self.0, libc::SIGKILL);
                libc::waitpid(self.0, std::ptr::null_mut(), 0);
            }
        }
    }
}

pub fn owned(fd: RawFd) -> OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: callers pass fds they own.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// podman's default profile (containers-common `/usr/share/containers/seccomp.json`,
/// docker's format) turned into the runtime-spec profile podman puts in config.json on
/// this host: containers/common `seccomp.setupSeccomp` with podman's default
/// capabilities and the amd64 arch map.
pub const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";

pub const PODMAN_DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

pub fn podman_profile() -> LinuxSeccomp {
    let raw = std::fs::read(PODMAN_PROFILE).unwrap_or_else(|e| {
        panic!("{PODMAN_PROFILE}: {e} (apt install golang-github-containers-common)")
    });
    let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let (go_arch, scmp_arch) = ("amd64", "SCMP_ARCH_X86_64");
    let strs = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut arches = Vec::new();
    for m in v["archMap"].as_array().unwrap() {
        if m["architecture"] == scmp_arch {
            arches.push(scmp_arch.to_string());
            arches.extend(strs(&m["subArchitectures"]));
        }
    }
    let caps: Vec<String> = PODMAN_DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    let mut syscalls = Vec::new();
    for c in v["syscalls"].as_array().unwrap() {
        let inc = &c["includes"];
        let exc = &c["excludes"];
        if strs(&exc["arches"]).iter().any(|a| a == go_arch)
            || strs(&exc["caps"]).iter().any(|c| caps.contains(c))
            || (!strs(&inc["arches"]).is_empty()
                && !strs(&inc["arches"]).iter().any(|a| a == go_arch))
            || strs(&inc["caps"]).iter().any(|c| !caps.contains(c))
        {
            continue;
        }
        assert!(
            inc.get("minKernel").is_none() && exc.get("minKernel").is_none(),
            "minKernel is not handled by this test conversion"
        );
        let args = c["args"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| LinuxSeccompArg {
                        index: x["index"].as_u64().unwrap() as u32,
                        value: x["value"].as_u64().unwrap(),
                        value_two: x["valueTwo"].as_u64().unwrap_or(0),
                        op: x["op"].as_str().unwrap().into(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        syscalls.push(LinuxSyscall {
            names: strs(&c["names"]),
            action: c["action"].as_str().unwrap().into(),
            errno_ret: c["errnoRet"].as_u64().map(|e| e as u32),
            args,
        });
    }
    LinuxSeccomp {
        default_action: v["defaultAction"].as_str().unwrap().into(),
        default_errno_ret: v["defaultErrnoRet"].as_u64().map(|e| e as u32),
        architectures: arches,
        flags: vec![],
        listener_path: None,
        listener_metadata: None,
        syscalls,
    }
}

/// The (action, errnoRet) of every unconditional rule naming `name`.
pub fn actions_for(p: &LinuxSeccomp, name: &str) -> Vec<(String, Option<u32>)> {
    p.syscalls
        .iter()
        .filter(|s| s.args.is_empty() && s.names.iter().any(|n| n == name))
        .map(|s| (s.action.clone(), s.errno_ret))
        .collect()
}
