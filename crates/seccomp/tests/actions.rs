//! Each action, observed on a real kernel from the parent of a filtered child.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;
use common::*;
use oxcart_seccomp::compile;
use std::os::fd::AsRawFd;

const NR_GETPPID: i64 = libc::SYS_getppid;

#[test]
fn errno_with_errno_ret_and_allow() {
    let mut rules = vec![rule(&["getppid"], "SCMP_ACT_ERRNO", Some(99))];
    rules.push(rule(&["getpid"], "SCMP_ACT_ALLOW", None));
    let f = compile(&profile("SCMP_ACT_ALLOW", rules)).unwrap();
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() } as i64;
    let out = run_in_child(&f, |_| {
        if sys0(NR_GETPPID) != Err(99) {
            return 1;
        }
        match sys0(libc::SYS_getpid) {
            Ok(p) if p > 0 && p != me => {}
            _ => return 2,
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn errno_defaults_to_eperm() {
    let f = compile(&profile(
        "SCMP_ACT_ALLOW",
        vec![rule(&["getppid"], "SCMP_ACT_ERRNO", None)],
    ))
    .unwrap();
    let out = run_in_child(&f, |_| (sys0(NR_GETPPID) != Err(libc::EPERM)) as i32);
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn default_errno_ret_applies_to_unlisted_syscalls() {
    let mut p = profile(
        "SCMP_ACT_ERRNO",
        vec![rule(BASE_ALLOW, "SCMP_ACT_ALLOW", None)],
    );
    p.syscalls.push(rule(&["getpid"], "SCMP_ACT_ALLOW", None));
    // Make getppid (110) lower than the largest listed number so the ENOSYS stub does
    // not apply to it: exit_group is 231.
    p.default_errno_ret = Some(77);
    let f = compile(&p).unwrap();
    let out = run_in_child(&f, |_| {
        if sys0(NR_GETPPID) != Err(77) {
            return 1;
        }
        if sys0(libc::SYS_getpid).is_err() {
            return 2;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn kill_process_kills_with_sigsys() {
    let f = compile(&profile(
        "SCMP_ACT_ALLOW",
        vec![rule(&["getppid"], "SCMP_ACT_KILL_PROCESS", None)],
    ))
    .unwrap();
    let out = run_in_child(&f, |_| {
        let _ = sys0(NR_GETPPID);
        3
    });
    assert_eq!(out, Outcome::Signaled(libc::SIGSYS));
}

/// In the (filtered) child: start a raw thread that calls getppid, wait for that
/// thread to end, then return 0. Under KILL_THREAD only the thread dies and the
/// process exits 0; under KILL_PROCESS the whole process dies of SIGSYS.
fn thread_calls_getppid() -> i32 {
    use std::sync::atomic::{AtomicI32, Ordering};
    #[repr(C, align(16))]
    struct Stack([u8; 64 * 1024]);
    static mut STACK: Stack = Stack([0; 64 * 1024]);
    static TID: AtomicI32 = AtomicI32::new(0);
    extern "C" fn thread(_: *mut libc::c_void) -> libc::c_int {
        // SAFETY: a raw syscall; this thread has no TLS of its own and touches none.
        unsafe { libc::syscall(libc::SYS_getppid) };
        0
    }
    let flags = libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_PARENT_SETTID
        | libc::CLONE_CHILD_CLEARTID;
    // SAFETY: the stack is a static only this (forked, single-threaded) child uses;
    // the kernel clears TID and wakes the futex when the thread exits or is killed.
    unsafe {
        let top = std::ptr::addr_of_mut!(STACK).cast::<u8>().add(64 * 1024);
        let tid = TID.as_ptr();
        if libc::clone(
            thread,
            top.cast(),
            flags,
            std::ptr::null_mut(),
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            tid,
        ) < 0
        {
            return 20;
        }
        loop {
            let t = TID.load(Ordering::SeqCst);
            if t == 0 {
                break;
            }
            libc::syscall(
                libc::SYS_futex,
                tid,
                libc::FUTEX_WAIT,
                t,
                std::ptr::null::<libc::timespec>(),
            );
        }
    }
    0
}

#[test]
fn kill_thread_kills_only_the_thread() {
    for act in ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"] {
        let f = compile(&profile(
            "SCMP_ACT_ALLOW",
            vec![rule(&["getppid"], act, None)],
        ))
        .unwrap();
        assert_eq!(
            run_in_child(&f, |_| thread_calls_getppid()),
            Outcome::Exited(0),
            "{act}"
        );
        // The single thread of a process: the process dies of SIGSYS.
        let out = run_in_child(&f, |_| {
            let _ = sys0(NR_GETPPID);
            3
        });
        assert_eq!(out, Outcome::Signaled(libc::SIGSYS), "{act}");
    }
}

#[test]
fn kill_process_kills_every_thread() {
    let f = compile(&profile(
        "SCMP_ACT_ALLOW",
        vec![rule(&["getppid"], "SCMP_ACT_KILL_PROCESS", None)],
    ))
    .unwrap();
    assert_eq!(
        run_in_child(&f, |_| thread_calls_getppid()),
        Outcome::Signaled(libc::SIGSYS)
    );
}

#[test]
fn default_kill_process() {
    let f = compile(&profile(
        "SCMP_ACT_KILL_PROCESS",
        vec![rule(&["getpid", "exit_group"], "SCMP_ACT_ALLOW", None)],
    ))
    .unwrap();
    // Allowed syscall then clean exit.
    let out = run_in_child(&f, |_| sys0(libc::SYS_getpid).is_err() as i32);
    assert_eq!(out, Outcome::Exited(0));
    // getppid (110) < exit_group (231): not covered by the ENOSYS stub → killed.
    let out = run_in_child(&f, |_| {
        let _ = sys0(NR_GETPPID);
        3
    });
    assert_eq!(out, Outcome::Signaled(libc::SIGSYS));
}

/// SIGSYS handler state: (si_code, si_syscall, si_arch) of the last SIGSYS.
static TRAPPED: [std::sync::atomic::AtomicU32; 3] = [
    std::sync::atomic::AtomicU32::new(0),
    std::sync::atomic::AtomicU32::new(0),
    std::sync::atomic::AtomicU32::new(0),
];

extern "C" fn on_sigsys(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    use std::sync::atomic::Ordering;
    // SAFETY: the kernel passes a valid siginfo; for SIGSYS the union holds
    // { void *call_addr; int syscall; unsigned arch; } right after the 16-byte header
    // (include/uapi/asm-generic/siginfo.h, 64-bit layout).
    unsafe {
        let base = info.cast::<u8>();
        TRAPPED[0].store((*info).si_code as u32, Ordering::SeqCst);
        TRAPPED[1].store(
            base.add(24).cast::<u32>().read_unaligned(),
            Ordering::SeqCst,
        );
        TRAPPED[2].store(
            base.add(28).cast::<u32>().read_unaligned(),
            Ordering::SeqCst,
        );
    }
}

/// Child body (after install; the filters here allow sigaction): install a SIGSYS
/// handler, call getppid, report what the handler saw.
fn getppid_with_sigsys_handler() -> i32 {
    use std::sync::atomic::Ordering;
    // SAFETY: sigaction with a valid handler; plain syscalls.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            on_sigsys;
        sa.sa_sigaction = handler as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        if libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut()) != 0 {
            return 30;
        }
    }
    // seccomp(2): the trapped syscall is not executed; its return register holds an
    // architecture-dependent value, so only the handler's view is checked.
    let _ = sys0(NR_GETPPID);
    // SYS_SECCOMP (si_code 1), the trapped syscall and arch.
    if TRAPPED[0].load(Ordering::SeqCst) != 1 {
        return 31;
    }
    if i64::from(TRAPPED[1].load(Ordering::SeqCst)) != NR_GETPPID {
        return 32;
    }
    if TRAPPED[2].load(Ordering::SeqCst) != 0xC000_003E {
        return 33;
    }
    0
}

#[test]
fn trap_raises_a_catchable_sigsys() {
    let f = compile(&profile(
        "SCMP_ACT_ALLOW",
        vec![rule(&["getppid"], "SCMP_ACT_TRAP", None)],
    ))
    .unwrap();
    // Uncaught: the default SIGSYS disposition terminates the process.
    let out = run_in_child(&f, |_| {
        let _ = sys0(NR_GETPPID);
        3
    });
    assert_eq!(out, Outcome::Signaled(libc::SIGSYS));
    // Caught: unlike KILL, TRAP is a signal the process handles, with the syscall's
    // number and arch in siginfo.
    assert_eq!(
        run_in_child(&f, |_| getppid_with_sigsys_handler()),
        Outcome::Exited(0)
    );
    // KILL_PROCESS ignores the handler.
    let f = compile(&profile(
        "SCMP_ACT_ALLOW",
        vec![rule(&["getppid"], "SCMP_ACT_KILL_PROCESS", None)],
    ))
    .unwrap();
    assert_eq!(
        run_in_child(&f, |_| getppid_with_sigsys_handler()),
        Outcome::Signaled(libc::SIGSYS)
    );
}

#[test]
fn log_allows() {
    let f = compile(&profile(
        "SCMP_ACT_ERRNO",
        vec![
            rule(&["getppid"], "SCMP_ACT_LOG", None),
            rule(BASE_ALLOW, "SCMP_ACT_ALLOW", None),
        ],
    ))
    .unwrap();
    // SAFETY: no preconditions.
    let me = unsafe { libc::getpid() } as i64;
    let out = run_in_child(&f, |_| {
        if sys0(NR_GETPPID) != Ok(me) {
            return 1;
        }
        // Unlisted → default ERRNO (EPERM).
        if sys0(libc::SYS_getpid) != Err(libc::EPERM) {
            return 2;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn trace_without_tracer_is_enosys() {
    // seccomp(2): SECCOMP_RET_TRACE with no tracer attached: "the system call is not
    // executed and returns a failure status with errno set to ENOSYS".
    let f = compile(&profile(
        "SCMP_ACT_ALLOW",
        vec![rule(&["getppid"], "SCMP_ACT_TRACE", Some(5))],
    ))
    .unwrap();
    let out = run_in_child(&f, |_| (sys0(NR_GETPPID) != Err(libc::ENOSYS)) as i32);
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn trace_hands_errno_ret_to_the_tracer() {
    // With a tracer using PTRACE_O_TRACESECCOMP, SECCOMP_RET_TRACE stops the tracee
    // with PTRACE_EVENT_SECCOMP and the 16 data bits (runc: errnoRet) as the event
    // message; the syscall then runs unless the tracer skips it.
    let f = compile(&profile(
        "SCMP_ACT_ALLOW",
        vec![rule(&["getppid"], "SCMP_ACT_TRACE", Some(4321))],
    ))
    .unwrap();
    let mut fds = [0; 2];
    // SAFETY: valid array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (r, w) = (owned(fds[0]), owned(fds[1]));
    let (rfd, wfd) = (r.as_raw_fd(), w.as_raw_fd());
    // SAFETY: no preconditions.
    let me = unsafe { libc::getpid() } as i64;
    let mut msg: libc::c_ulong = 0;
    let out = run_in_child_with(
        &f,
        |pid| {
            let guard = ChildGuard(pid);
            // SAFETY: tracing our own child; plain syscalls.
            unsafe {
                assert_eq!(
                    libc::ptrace(libc::PTRACE_SEIZE, pid, 0, libc::PTRACE_O_TRACESECCOMP),
                    0
                );
                assert_eq!(libc::write(wfd, b"g".as_ptr().cast(), 1), 1);
                let mut st = 0;
                assert_eq!(libc::waitpid(pid, &mut st, 0), pid);
                assert!(libc::WIFSTOPPED(st), "status {st:#x}");
                assert_eq!(st >> 8, libc::SIGTRAP | (libc::PTRACE_EVENT_SECCOMP << 8));
                assert_eq!(libc::ptrace(libc::PTRACE_GETEVENTMSG, pid, 0, &mut msg), 0);
                assert_eq!(libc::ptrace(libc::PTRACE_CONT, pid, 0, 0), 0);
            }
            std::mem::forget(guard);
        },
        |_| {
            let mut b = [0u8; 1];
            // SAFETY: reading into a live buffer.
            if unsafe { libc::read(rfd, b.as_mut_ptr().cast(), 1) } != 1 {
                return 1;
            }
            (sys0(NR_GETPPID) != Ok(me)) as i32 * 2
        },
    );
    assert_eq!(out, Outcome::Exited(0));
    assert_eq!(msg, 4321);
    drop((r, w));
}

#[test]
fn flags_are_passed_to_the_kernel() {
    use oxcart_seccomp::filter_flag as ff;
    let mut p = profile(
        "SCMP_ACT_ALLOW",
        vec![rule(&["getppid"], "SCMP_ACT_ERRNO", Some(12))],
    );
    p.flags = vec![
        "SECCOMP_FILTER_FLAG_TSYNC".into(),
        "SECCOMP_FILTER_FLAG_LOG".into(),
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW".into(),
    ];
    let f = compile(&p).unwrap();
    assert_eq!(f.flags(), ff::TSYNC | ff::LOG | ff::SPEC_ALLOW);
    let out = run_in_child(&f, |_| (sys0(NR_GETPPID) != Err(12)) as i32);
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn install_reports_kernel_refusal() {
    // Without no_new_privs and without CAP_SYS_ADMIN the kernel says EACCES; as root
    // we drop CAP_SYS_ADMIN from the effective set in the child to see the error.
    let f = compile(&profile(
        "SCMP_ACT_ALLOW",
        vec![rule(&["getppid"], "SCMP_ACT_ERRNO", None)],
    ))
    .unwrap();
    // SAFETY: fork; the child makes raw syscalls only.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // capset: clear effective caps (v3 header, two data words).
        #[repr(C)]
        struct Hdr {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Data {
            eff: u32,
            perm: u32,
            inh: u32,
        }
        let mut hdr = Hdr {
            version: 0x2008_0522,
            pid: 0,
        };
        let mut d = [Data {
            eff: 0,
            perm: 0,
            inh: 0,
        }; 2];
        // SAFETY: valid header and data pointers.
        let code = unsafe {
            if libc::syscall(libc::SYS_capget, &mut hdr, d.as_mut_ptr()) != 0 {
                10
            } else {
                d[0].eff = 0;
                d[1].eff = 0;
                if libc::syscall(libc::SYS_capset, &mut hdr, d.as_ptr()) != 0 {
                    11
                } else {
                    match f.install() {
                        Err(oxcart_seccomp::SeccompError::Install { source, .. })
                            if source.raw_os_error() == Some(libc::EACCES) =>
                        {
                            0
                        }
                        _ => 12,
                    }
                }
            }
        };
        // SAFETY: leave the child.
        unsafe { libc::_exit(code) }
    }
    assert_eq!(wait(pid), Outcome::Exited(0));
}
