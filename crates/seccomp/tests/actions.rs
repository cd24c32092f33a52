//! Each action, observed on a real kernel from the parent of a filtered child.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;
use common::*;
use oxcart_seccomp::compile;

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

#[test]
fn kill_and_kill_thread_kill_the_single_thread() {
    for act in ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"] {
        let f = compile(&profile(
            "SCMP_ACT_ALLOW",
            vec![rule(&["getppid"], act, None)],
        ))
        .unwrap();
        let out = run_in_child(&f, |_| {
            let _ = sys0(NR_GETPPID);
            3
        });
        assert_eq!(out, Outcome::Signaled(libc::SIGSYS), "{act}");
    }
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

#[test]
fn trap_raises_sigsys() {
    let f = compile(&profile(
        "SCMP_ACT_ALLOW",
        vec![rule(&["getppid"], "SCMP_ACT_TRAP", None)],
    ))
    .unwrap();
    let out = run_in_child(&f, |_| {
        let _ = sys0(NR_GETPPID);
        3
    });
    assert_eq!(out, Outcome::Signaled(libc::SIGSYS));
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
