//! Seccomp seen from inside a container: every runtime-spec action and argument
//! operator (config-linux.md "Seccomp"), applied by `oxcart-runtime run` to a busybox
//! container, observed through what busybox prints and exits with. crates/seccomp/tests
//! checks the compiled filters in a plain process; this checks that the runtime
//! hands the profile through and installs it where the container's processes live.
//!
//! Every test runs the same bundle under runc (Debian's 1.1.5, the reference) when it
//! is available and asserts identical output and exit status, then asserts the
//! expected output itself, which always contains a denied call *and* a control call
//! that works in the same container (so neither "no filter" nor "everything denied"
//! passes).
//!
//! Test names start with `seccomp_` so `--test-arg seccomp` selects them in the v2
//! lane. Scripts start with `exec 2>&1`: busybox's error messages land in stdout in
//! order, between the `echo`s.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Runs `script` under `sh -c` with `seccomp` as `linux.seccomp`. The rootfs stays
/// read-only (runc's default spec); `/dev/shm` is a tmpfs the container can write.
fn bundle(script: &str, seccomp: Value) -> Bundle {
    let mut b = Bundle::new(&["sh", "-c", &format!("exec 2>&1\n{script}")]);
    b.config["linux"]["seccomp"] = seccomp;
    // No core dumps: a process killed by SIGSYS then reports just the signal, whatever
    // the host's RLIMIT_CORE (busybox would add " (core dumped)").
    b.config["process"]["rlimits"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "RLIMIT_CORE", "soft": 0, "hard": 0}));
    b.write();
    b
}

/// `run` the bundle under oxcart and, if present, runc; both must agree on the exit
/// status and on every byte of stdout. Returns oxcart's (exit status, stdout).
fn run(b: &Bundle) -> (i32, String) {
    let (code, out, err) = Runtime::oxcart().run_bundle(b);
    if runc_available() {
        let (rcode, rout, rerr) = Runtime::runc().run_bundle(b);
        assert_eq!(
            (code, out.as_str()),
            (rcode, rout.as_str()),
            "oxcart (left) and runc (right) differ; stderr: oxcart {err:?}, runc {rerr:?}"
        );
    } else {
        eprintln!("runc not available: oxcart's result is not compared with runc's");
    }
    (code, out)
}

/// Enough for the runtimes' init after the filter is installed (oxcart's and runc's
/// Go runtime: sync pipe, exec.fifo, execve) and for busybox sh, touch, ls, sleep.
/// Deliberately not here: `mkdir`, `mkdirat`, `rmdir`, the calls the tests deny
/// through the default action. `faccessat2` (439) is the highest number listed, so
/// the ENOSYS stub (docs/seccomp.md, "How it compiles" 4) answers only for numbers
/// above it and never for the calls these tests observe.
const ALLOW_LIST: &str = "\
    read write open close stat fstat lstat poll lseek mmap mprotect munmap brk \
    rt_sigaction rt_sigprocmask rt_sigreturn ioctl pread64 pwrite64 readv writev access \
    pipe select sched_yield mremap madvise dup dup2 pause nanosleep getitimer alarm \
    setitimer getpid socket connect clone fork vfork execve exit wait4 kill uname fcntl \
    flock fsync fdatasync getdents getcwd chdir fchdir rename creat link unlink symlink \
    readlink chmod fchmod chown fchown lchown umask gettimeofday getrlimit getrusage \
    sysinfo times getuid getgid setuid setgid geteuid getegid setpgid getppid getpgrp \
    setsid setgroups getgroups setresuid getresuid setresgid getresgid getpgid getsid \
    capget capset rt_sigpending rt_sigtimedwait rt_sigqueueinfo rt_sigsuspend \
    sigaltstack statfs fstatfs prctl arch_prctl setrlimit sync gettid tkill futex \
    sched_getaffinity set_tid_address getdents64 clock_gettime clock_getres \
    clock_nanosleep exit_group epoll_wait epoll_ctl tgkill waitid openat newfstatat \
    readlinkat fchmodat fchownat faccessat unlinkat renameat linkat symlinkat utimensat \
    pselect6 ppoll set_robust_list get_robust_list epoll_pwait dup3 pipe2 epoll_create1 \
    prlimit64 getrandom statx rseq clone3 close_range faccessat2";

fn allow_list_rule() -> Value {
    let names: Vec<&str> = ALLOW_LIST.split_whitespace().collect();
    json!({"names": names, "action": "SCMP_ACT_ALLOW"})
}

fn mkdir_rule(action: &str) -> Value {
    // busybox (glibc, x86_64) calls mkdir(2); mkdirat too in case a build uses it.
    json!({"names": ["mkdir", "mkdirat"], "action": action})
}

/// busybox's message for a mkdir that failed with `errno_text`.
fn mkdir_denied(path: &str, errno_text: &str) -> String {
    format!("mkdir: can't create directory '{path}': {errno_text}\n")
}

// ---------------------------------------------------------------- SCMP_ACT_ERRNO

#[test]
fn seccomp_errno_ret_is_the_errno_the_container_sees() {
    // runtime-spec: errnoRet is "the errno return code to use"; absent, EPERM.
    // errnoRet 0 is SECCOMP_RET_ERRNO with data 0: the call "succeeds" without being
    // executed (seccomp(2)), so mkdir exits 0 and no directory appears. It tells a
    // present `errnoRet: 0` apart from an absent one (EPERM).
    let script = "mkdir /dev/shm/d; echo \"mkdir: $?\"\n\
                  touch /dev/shm/f; echo \"touch: $?\"\n\
                  ls /dev/shm";
    for (errno_ret, text) in [
        (Some(13), Some("Permission denied")),
        (Some(28), Some("No space left on device")),
        (Some(1), Some("Operation not permitted")),
        (None, Some("Operation not permitted")),
        (Some(0), None),
    ] {
        let mut rule = mkdir_rule("SCMP_ACT_ERRNO");
        if let Some(e) = errno_ret {
            rule["errnoRet"] = json!(e);
        }
        let b = bundle(
            script,
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]}),
        );
        let (code, out) = run(&b);
        let expected = match text {
            Some(t) => format!("{}mkdir: 1\ntouch: 0\nf\n", mkdir_denied("/dev/shm/d", t)),
            None => "mkdir: 0\ntouch: 0\nf\n".to_string(),
        };
        assert_eq!(
            (code, out.as_str()),
            (0, expected.as_str()),
            "errnoRet {errno_ret:?}"
        );
    }
}

#[test]
fn seccomp_default_errno_and_default_errno_ret() {
    // defaultAction ERRNO: every call not listed fails with defaultErrnoRet (EPERM
    // when absent); listed ALLOW calls work; a listed ERRNO rule keeps its own errnoRet.
    let script = "mkdir /dev/shm/d; echo \"mkdir: $?\"\n\
                  rmdir /dev/shm; echo \"rmdir: $?\"\n\
                  touch /dev/shm/f; echo \"touch: $?\"\n\
                  ls /dev/shm";
    for (default_errno_ret, text) in [
        (Some(28), "No space left on device"),
        (Some(5), "Input/output error"),
        (None, "Operation not permitted"),
    ] {
        let mut profile = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                allow_list_rule(),
                {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
            ]
        });
        if let Some(e) = default_errno_ret {
            profile["defaultErrnoRet"] = json!(e);
        }
        let b = bundle(script, profile);
        let (code, out) = run(&b);
        let expected = format!(
            "{}mkdir: 1\n\
             rmdir: '/dev/shm': Permission denied\nrmdir: 1\n\
             touch: 0\nf\n",
            mkdir_denied("/dev/shm/d", text)
        );
        assert_eq!(
            (code, out.as_str()),
            (0, expected.as_str()),
            "defaultErrnoRet {default_errno_ret:?}"
        );
    }
}

// ---------------------------------------------------------- SCMP_ACT_ALLOW / LOG

#[test]
fn seccomp_allow_and_log_rules_pass_under_a_denying_default() {
    // Under defaultAction ERRNO, a rule with ALLOW or LOG lets mkdir through (LOG:
    // "allowed after being logged", seccomp(2)), while the unlisted rmdir still gets
    // the default errno: the rule, not a missing filter, is what lets mkdir pass.
    for action in ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG"] {
        let b = bundle(
            "mkdir /dev/shm/d; echo \"mkdir: $?\"\n\
             rmdir /dev/shm/d; echo \"rmdir: $?\"\n\
             ls /dev/shm",
            json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": 28,
                "syscalls": [allow_list_rule(), mkdir_rule(action)]
            }),
        );
        let (code, out) = run(&b);
        assert_eq!(
            (code, out.as_str()),
            (
                0,
                "mkdir: 0\nrmdir: '/dev/shm/d': No space left on device\nrmdir: 1\nd\n"
            ),
            "{action}"
        );
    }
}

#[test]
fn seccomp_default_log_allows_what_no_rule_denies() {
    // defaultAction LOG: unlisted calls run (touch, rmdir), the ERRNO rule still denies.
    let b = bundle(
        "mkdir /dev/shm/d; echo \"mkdir: $?\"\n\
         touch /dev/shm/f; echo \"touch: $?\"\n\
         rm /dev/shm/f; echo \"rm: $?\"\n\
         ls /dev/shm; echo end",
        json!({
            "defaultAction": "SCMP_ACT_LOG",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
        }),
    );
    let (code, out) = run(&b);
    let expected = format!(
        "{}mkdir: 1\ntouch: 0\nrm: 0\nend\n",
        mkdir_denied("/dev/shm/d", "Permission denied")
    );
    assert_eq!((code, out.as_str()), (0, expected.as_str()));
}

// ---------------------------------------------------------------- SCMP_ACT_TRACE

#[test]
fn seccomp_trace_without_a_tracer_is_enosys() {
    // seccomp(2), SECCOMP_RET_TRACE: "If there is no tracer present, the system call
    // is not executed and returns a failure status with errno set to ENOSYS." The
    // errnoRet of a TRACE rule is the tracer's message (PTRACE_GETEVENTMSG), not an
    // errno, so it changes nothing here.
    let script = "mkdir /dev/shm/d; echo \"mkdir: $?\"\n\
                  touch /dev/shm/f; echo \"touch: $?\"\n\
                  ls /dev/shm";
    let enosys = format!(
        "{}mkdir: 1\ntouch: 0\nf\n",
        mkdir_denied("/dev/shm/d", "Function not implemented")
    );
    let mut with_msg = mkdir_rule("SCMP_ACT_TRACE");
    with_msg["errnoRet"] = json!(5);
    for profile in [
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [mkdir_rule("SCMP_ACT_TRACE")]}),
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [with_msg]}),
        // As the default action: unlisted mkdir is traced, listed calls run.
        json!({"defaultAction": "SCMP_ACT_TRACE", "syscalls": [allow_list_rule()]}),
    ] {
        let b = bundle(script, profile.clone());
        let (code, out) = run(&b);
        assert_eq!((code, out.as_str()), (0, enosys.as_str()), "{profile}");
    }
}

// ------------------------------------------------------ SCMP_ACT_KILL* and TRAP

/// What busybox sh prints for a child killed by SIGSYS, and the status it reports
/// for it (128 + SIGSYS).
const KILLED_BY_SIGSYS: &str = "Bad system call\n";
const SIGSYS_STATUS: i32 = 128 + libc::SIGSYS;

#[test]
fn seccomp_kill_actions_kill_with_sigsys() {
    // seccomp(2): KILL_PROCESS terminates the process "as though killed by a SIGSYS
    // signal", and "even if a signal handler has been registered for SIGSYS, the
    // handler will be ignored" (the trap below never runs); KILL_THREAD (= KILL) kills
    // the thread the same way, and "since Linux 4.11, a single-threaded process will
    // dump core if terminated in this way": for busybox's single-threaded processes
    // the two look alike; seccomp_kill_thread_spares_the_other_threads tells them
    // apart. When the killed process is the container's init, `run` exits 128+31.
    let script = "trap 'echo caught SIGSYS' SYS\n\
                  mkdir /dev/shm/d; echo \"mkdir: $?\"\n\
                  touch /dev/shm/f; echo \"touch: $?\"\n\
                  ls /dev/shm\n\
                  kill -23 $$; echo \"kill -23: $?\"\n\
                  kill -28 $$\n\
                  echo 'init survived kill -28'";
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
    ] {
        let b = bundle(
            script,
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                mkdir_rule(action),
                {"names": ["kill"], "action": action,
                 "args": [{"index": 1, "value": 28, "op": "SCMP_CMP_EQ"}]}
            ]}),
        );
        let (code, out) = run(&b);
        let expected =
            format!("{KILLED_BY_SIGSYS}mkdir: {SIGSYS_STATUS}\ntouch: 0\nf\nkill -23: 0\n");
        assert_eq!(
            (code, out.as_str()),
            (SIGSYS_STATUS, expected.as_str()),
            "{action}"
        );
    }
}

#[test]
fn seccomp_kill_and_trap_as_default_action() {
    // The same as default actions: listed calls run, the unlisted mkdir kills (or,
    // TRAP, raises SIGSYS in) the child, and an init that execs mkdir dies of SIGSYS,
    // which `run` reports as 128+31.
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
    ] {
        let b = bundle(
            "mkdir /dev/shm/d; echo \"mkdir: $?\"\n\
             touch /dev/shm/f; echo \"touch: $?\"\n\
             ls /dev/shm\n\
             exec mkdir /dev/shm/e",
            json!({"defaultAction": action, "syscalls": [allow_list_rule()]}),
        );
        let (code, out) = run(&b);
        let expected = format!("{KILLED_BY_SIGSYS}mkdir: {SIGSYS_STATUS}\ntouch: 0\nf\n");
        assert_eq!(
            (code, out.as_str()),
            (SIGSYS_STATUS, expected.as_str()),
            "{action}"
        );
    }
}

#[test]
fn seccomp_trap_raises_a_catchable_sigsys() {
    // seccomp(2), SECCOMP_RET_TRAP: the call is not executed and SIGSYS is sent. A
    // child with SIGSYS at its default disposition dies of it (like KILL); the shell,
    // which traps SYS, runs its handler and carries on. The kernel leaves the syscall
    // number in the return register (x86: syscall_rollback), so kill(2) "returns" 62:
    // not 0, hence busybox's "can't kill" (with no errno text, errno being untouched)
    // and status 1. kill -23 is not trapped and works.
    let b = bundle(
        "mkdir /dev/shm/d; echo \"mkdir: $?\"\n\
         touch /dev/shm/f; echo \"touch: $?\"\n\
         trap 'echo caught SIGSYS' SYS\n\
         kill -28 $$; echo \"kill -28: $?\"\n\
         kill -23 $$; echo \"kill -23: $?\"\n\
         ls /dev/shm; echo 'init still running'",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            mkdir_rule("SCMP_ACT_TRAP"),
            {"names": ["kill"], "action": "SCMP_ACT_TRAP",
             "args": [{"index": 1, "value": 28, "op": "SCMP_CMP_EQ"}]}
        ]}),
    );
    let (code, out) = run(&b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(code, 0, "{out}");
    assert_eq!(lines.len(), 9, "{out}");
    assert_eq!(
        lines[..3],
        [KILLED_BY_SIGSYS.trim_end(), "mkdir: 159", "touch: 0"],
        "{out}"
    );
    // errno text, if busybox had a stale errno, is not the point: the call failed.
    assert!(lines[3].starts_with("sh: can't kill pid 1"), "{out}");
    assert_eq!(
        lines[4..],
        [
            "caught SIGSYS",
            "kill -28: 1",
            "kill -23: 0",
            "f",
            "init still running"
        ],
        "{out}"
    );
}

// The threaded probe: busybox has no threads, so this test executable is its own
// probe. It is started inside the container through the dynamic loader, with the
// libraries it has mapped right now bind-mounted (read-only, under the container's
// /dev tmpfs, so the shared rootfs is not touched), and runs only
// `seccomp_thread_probe`, which acts only when PROBE_ENV is set.

const PROBE_ENV: &str = "OXCART_SECCOMP_THREAD_PROBE";
const PROBE_DIR: &str = "/dev/oxcart-probe";

static PROBE_THREAD_RETURNED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

extern "C" fn probe_thread(_: *mut libc::c_void) -> *mut libc::c_void {
    // getcpu(2) with NULL pointers writes nothing; glibc, Rust's std and libtest never
    // make it as a raw syscall (sched_getcpu uses the vDSO), so the rule below hits
    // only this thread.
    // SAFETY: a raw syscall with null pointers, which getcpu accepts.
    unsafe { libc::syscall(libc::SYS_getcpu, 0usize, 0usize, 0usize) };
    PROBE_THREAD_RETURNED.store(true, std::sync::atomic::Ordering::SeqCst);
    std::ptr::null_mut()
}

/// Not a check of its own (it returns at once outside a probe container): the body
/// of the probe seccomp_kill_thread_spares_the_other_threads starts in a container.
#[test]
fn seccomp_thread_probe() {
    if std::env::var_os(PROBE_ENV).is_none() {
        return;
    }
    let mut t: libc::pthread_t = 0;
    // SAFETY: plain pthread_create/join of a thread that takes and returns nothing.
    // glibc's join waits on the tid futex the kernel clears when the thread exits,
    // killed or not.
    unsafe {
        assert_eq!(
            libc::pthread_create(&mut t, std::ptr::null(), probe_thread, std::ptr::null_mut()),
            0
        );
        assert_eq!(libc::pthread_join(t, std::ptr::null_mut()), 0);
    }
    let returned = PROBE_THREAD_RETURNED.load(std::sync::atomic::Ordering::SeqCst);
    println!(
        "thread-probe: {}",
        if returned {
            "thread returned from getcpu"
        } else {
            "thread died in getcpu"
        }
    );
    println!("thread-probe: process alive");
}

/// The files this process has mapped (its shared libraries and the dynamic loader),
/// from /proc/self/maps; the loader is the one named ld-*.
fn mapped_libraries() -> (Vec<PathBuf>, String) {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let mut libs: Vec<PathBuf> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.starts_with('/') && p.contains(".so"))
        .map(PathBuf::from)
        .collect();
    libs.sort();
    libs.dedup();
    let loader = libs
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .find(|n| n.starts_with("ld-"))
        .expect("no dynamic loader mapped");
    (libs, loader)
}

fn probe_bundle(seccomp: Value) -> Bundle {
    let (libs, loader) = mapped_libraries();
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "{PROBE_DIR}/{loader} --library-path {PROBE_DIR} {PROBE_DIR}/exe \
         --exact seccomp_thread_probe --nocapture --test-threads=1 >/dev/shm/out\n\
         echo \"probe: $?\"\n\
         grep -o 'thread-probe: .*' /dev/shm/out\n\
         touch /dev/shm/f; echo \"touch: $?\""
    );
    let mut b = bundle(&script, seccomp);
    let bind = |src: &Path, dst: String| json!({"destination": dst, "type": "bind", "source": src, "options": ["bind", "ro"]});
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(bind(&exe, format!("{PROBE_DIR}/exe")));
    for l in &libs {
        let name = l.file_name().unwrap().to_string_lossy().into_owned();
        mounts.push(bind(l, format!("{PROBE_DIR}/{name}")));
    }
    b.config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!(format!("{PROBE_ENV}=1")));
    b.write();
    b
}

#[test]
fn seccomp_kill_thread_spares_the_other_threads() {
    // seccomp(2): KILL_THREAD "causes the thread to terminate immediately ... Other
    // threads in the same process will continue executing"; KILL_PROCESS "results in
    // immediate termination of the process". SCMP_ACT_KILL is KILL_THREAD
    // (runtime-spec lists both; libseccomp: SCMP_ACT_KILL == SCMP_ACT_KILL_THREAD).
    let rule = |action: &str| json!({"names": ["getcpu"], "action": action});
    // Control: a filter that does not touch getcpu; the thread returns.
    let control = probe_bundle(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}
    ]}));
    assert_eq!(
        run(&control),
        (
            0,
            "probe: 0\nthread-probe: thread returned from getcpu\nthread-probe: process alive\ntouch: 0\n"
                .to_string()
        )
    );
    for action in ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"] {
        let b =
            probe_bundle(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(action)]}));
        assert_eq!(
            run(&b),
            (
                0,
                "probe: 0\nthread-probe: thread died in getcpu\nthread-probe: process alive\ntouch: 0\n"
                    .to_string()
            ),
            "{action}"
        );
    }
    let b = probe_bundle(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule("SCMP_ACT_KILL_PROCESS")]}),
    );
    assert_eq!(
        run(&b),
        (
            0,
            format!("{KILLED_BY_SIGSYS}probe: {SIGSYS_STATUS}\ntouch: 0\n")
        )
    );
}

// ------------------------------------------------------------ argument operators

/// busybox sh's `kill` builtin calls kill(2) with the signal number as argument 1.
/// The shell signals itself ($$, pid 1 in the container) with signals init ignores
/// by default (0 probes only; CHLD, URG, WINCH are ignored), and says which were
/// denied: a denied one prints busybox's error with EPERM's text.
const SIGNALS: [u64; 4] = [0, 17, 23, 28];
const KILL_SCRIPT: &str = "for s in 0 17 23 28; do\n\
                           if kill -$s $$; then echo \"$s allowed\"; else echo \"$s denied\"; fi\n\
                           done";

fn kill_expected(denied: &[u64]) -> String {
    SIGNALS
        .iter()
        .map(|s| {
            if denied.contains(s) {
                format!("sh: can't kill pid 1: Operation not permitted\n{s} denied\n")
            } else {
                format!("{s} allowed\n")
            }
        })
        .collect()
}

#[test]
fn seccomp_argument_operators() {
    // runtime-spec "Seccomp", args: index, value, valueTwo, op; libseccomp compares
    // the 64-bit argument; MASKED_EQ is (arg & value) == valueTwo.
    // 0 = 0b00000, 17 = 0b10001, 23 = 0b10111, 28 = 0b11100.
    let cond = |op: &str, value: u64| json!({"index": 1, "value": value, "op": op});
    let masked = |mask: u64, v: u64| json!({"index": 1, "value": mask, "valueTwo": v, "op": "SCMP_CMP_MASKED_EQ"});
    let cases: Vec<(Vec<Value>, &[u64])> = vec![
        (vec![cond("SCMP_CMP_EQ", 23)], &[23]),
        (vec![cond("SCMP_CMP_NE", 23)], &[0, 17, 28]),
        (vec![cond("SCMP_CMP_LT", 23)], &[0, 17]),
        (vec![cond("SCMP_CMP_LE", 23)], &[0, 17, 23]),
        (vec![cond("SCMP_CMP_GE", 23)], &[23, 28]),
        (vec![cond("SCMP_CMP_GT", 23)], &[28]),
        // Boundaries: nothing is below 0, everything is at least 0.
        (vec![cond("SCMP_CMP_LT", 0)], &[]),
        (vec![cond("SCMP_CMP_GE", 0)], &[0, 17, 23, 28]),
        // MASKED_EQ: each signal alone by some mask, and two at once.
        (vec![masked(0b10000, 0)], &[0]),
        (vec![masked(0b11100, 0b10000)], &[17]),
        (vec![masked(0b00011, 0b00011)], &[23]),
        (vec![masked(0b11100, 0b11100)], &[28]),
        (vec![masked(0b00100, 0b00100)], &[23, 28]),
        // Two conditions on the same argument: runc's matchCall makes one rule per
        // condition, i.e. OR (libseccomp would refuse them in one rule).
        (
            vec![cond("SCMP_CMP_EQ", 17), cond("SCMP_CMP_EQ", 28)],
            &[17, 28],
        ),
    ];
    for (args, denied) in cases {
        let b = bundle(
            KILL_SCRIPT,
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": args}
            ]}),
        );
        let (code, out) = run(&b);
        assert_eq!(
            (code, out.as_str()),
            (0, kill_expected(denied).as_str()),
            "args {args:?}"
        );
    }
}

#[test]
fn seccomp_conditions_on_different_arguments_all_hold() {
    // Conditions on different arguments of one rule are ANDed (libseccomp, runc):
    // kill(pid 1, 28) is denied, kill(other, 28) and kill(1, 23) are not. The sleep
    // is left to die with the pid namespace when init exits: killing and reaping it
    // here would make busybox print "Killed" or not depending on when its SIGCHLD
    // arrives (seen under the v2 lane's slow qemu).
    let b = bundle(
        "sleep 1000 >/dev/null 2>&1 & p=$!\n\
         kill -28 $$ && echo '1 28 allowed' || echo '1 28 denied'\n\
         kill -28 $p && echo 'sleep 28 allowed' || echo 'sleep 28 denied'\n\
         kill -23 $$ && echo '1 23 allowed' || echo '1 23 denied'",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": [
                {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": 28, "op": "SCMP_CMP_EQ"}
            ]}
        ]}),
    );
    let (code, out) = run(&b);
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "sh: can't kill pid 1: Permission denied\n1 28 denied\n\
             sleep 28 allowed\n1 23 allowed\n"
        )
    );
}

// ------------------------------------------------------------------- bad profiles

#[test]
fn seccomp_invalid_profiles_fail_create_and_leave_nothing() {
    // Each profile has one bad entry after a good one, so the index in the message is
    // checked too. Validation runs in the parent, before anything is set up, and a
    // failed create must leave no state dir (nothing in `list`) and no cgroup.
    let good = json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"});
    let with = |syscall: Value| json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [good.clone(), syscall]});
    let kill_with_errno = json!({
        "defaultAction": "SCMP_ACT_KILL_PROCESS", "defaultErrnoRet": 1, "syscalls": [good.clone()]
    });
    let cases = [
        (
            with(json!({"names": ["rmdir"], "action": "SCMP_ACT_BOGUS"})),
            "linux.seccomp.syscalls[1].action",
            "SCMP_ACT_BOGUS",
        ),
        (
            with(json!({"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_SORTA"}]})),
            "linux.seccomp.syscalls[1].args[0].op",
            "SCMP_CMP_SORTA",
        ),
        (
            with(json!({"names": ["rmdir"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1})),
            "linux.seccomp.syscalls[1].errnoRet",
            "SCMP_ACT_ALLOW",
        ),
        (
            with(json!({"names": ["rmdir"], "action": "SCMP_ACT_KILL_PROCESS", "errnoRet": 1})),
            "linux.seccomp.syscalls[1].errnoRet",
            "SCMP_ACT_KILL_PROCESS",
        ),
        (
            {
                let mut p = with(json!({"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"}));
                p["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"]);
                p
            },
            "linux.seccomp.architectures[1]",
            "SCMP_ARCH_Z80",
        ),
        // runtime-spec, defaultErrnoRet: "When the action doesn't support an errno,
        // the runtime MUST print and error and fail." (runc 1.1.5 ignores it instead.)
        (
            kill_with_errno,
            "linux.seccomp.defaultErrnoRet",
            "SCMP_ACT_KILL_PROCESS",
        ),
    ];
    let rt = Runtime::oxcart();
    for (profile, field, value) in cases {
        let mut b = Bundle::new(&["true"]);
        let cg = b.own_cgroup("oxcart-test-seccomp");
        b.config["linux"]["seccomp"] = profile;
        b.write();
        let id = unique("bad-seccomp");
        let (ok, err) = rt.detached(&["create"], &b, &id);
        assert!(!ok, "create accepted a bad {field}");
        assert!(err.contains(field) && err.contains(value), "{field}: {err}");
        assert!(!rt.root.join(&id).exists(), "{field}: state dir left");
        let list = rt.run(&["list"]);
        assert!(list.status.success(), "list: {}", stderr(&list));
        assert!(!stdout(&list).contains(&id), "{field}: {}", stdout(&list));
        assert_no_cgroup_left(&cg, field);
    }
}
