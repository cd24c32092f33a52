//! runc's ENOSYS stub on a real kernel: syscalls newer than the profile return ENOSYS
//! (so glibc falls back), the others get the profile's action.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;
use common::*;
use oxcart_seccomp::compile;

/// A syscall number no kernel has (yet), far above every name in the profiles below.
const NR_FUTURE: i64 = 1000;

fn base_profile(default: &str) -> oxcart_spec::LinuxSeccomp {
    let mut rules = vec![rule(BASE_ALLOW, "SCMP_ACT_ALLOW", None)];
    rules.push(rule(&["getpid"], "SCMP_ACT_ALLOW", None));
    // getrandom (318 on x86_64) is the largest listed number: 319+ is "newer".
    rules.push(rule(
        &["getrandom"],
        "SCMP_ACT_ERRNO",
        Some(libc::EACCES as u32),
    ));
    profile(default, rules)
}

#[test]
fn newer_syscalls_get_enosys_older_unlisted_get_the_default() {
    let f = compile(&base_profile("SCMP_ACT_ERRNO")).unwrap();
    let out = run_in_child(&f, |_| {
        if sys0(NR_FUTURE) != Err(libc::ENOSYS) {
            return 1;
        }
        // memfd_create (319) is just above the largest listed (getrandom, 318).
        if sys0(libc::SYS_memfd_create) != Err(libc::ENOSYS) {
            return 2;
        }
        // getppid (110) is below it and unlisted: the default action (EPERM).
        if sys0(libc::SYS_getppid) != Err(libc::EPERM) {
            return 3;
        }
        if sys0(libc::SYS_getrandom) != Err(libc::EACCES) {
            return 4;
        }
        if sys0(libc::SYS_getpid).is_err() {
            return 5;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn stub_applies_to_kill_defaults_too() {
    let f = compile(&base_profile("SCMP_ACT_KILL_PROCESS")).unwrap();
    let out = run_in_child(&f, |_| (sys0(NR_FUTURE) != Err(libc::ENOSYS)) as i32);
    assert_eq!(out, Outcome::Exited(0));
    let out = run_in_child(&f, |_| {
        let _ = sys0(libc::SYS_getppid);
        9
    });
    assert_eq!(out, Outcome::Signaled(libc::SIGSYS));
}

#[test]
fn no_stub_behind_permissive_or_enosys_defaults() {
    // A default that already answers ENOSYS needs no stub (runc generatePatch).
    let mut p = base_profile("SCMP_ACT_ERRNO");
    p.default_errno_ret = Some(libc::ENOSYS as u32);
    let with_enosys_default = compile(&p).unwrap();
    p.default_errno_ret = Some(libc::EPERM as u32);
    let with_eperm_default = compile(&p).unwrap();
    assert!(
        with_enosys_default.program().len() < with_eperm_default.program().len(),
        "the EPERM-default program carries the stub"
    );
    // Under ALLOW nothing is stubbed: memfd_create (above getrandom) reaches the
    // kernel, which answers EFAULT for the NULL name.
    let f = compile(&base_profile("SCMP_ACT_ALLOW")).unwrap();
    let out = run_in_child(&f, |_| match sys(libc::SYS_memfd_create, [0; 6]) {
        Err(libc::EFAULT) => 0,
        _ => 1,
    });
    assert_eq!(out, Outcome::Exited(0));
}

/// An i386 syscall through `int 0x80` from this 64-bit process: the kernel reports
/// AUDIT_ARCH_I386 and i386 numbers to seccomp.
#[cfg(target_arch = "x86_64")]
fn int80(nr: u32) -> Result<u32, i32> {
    let mut ret = nr;
    // SAFETY: an argument-less compat syscall; int 0x80 may clobber r8-r11.
    unsafe {
        std::arch::asm!(
            "int 0x80",
            inlateout("eax") ret,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            options(nostack)
        );
    }
    let r = ret as i32;
    if r < 0 {
        Err(-r)
    } else {
        Ok(ret)
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn second_architecture_i386() {
    // i386 numbers: getpid 20, getppid 64, getrandom 355.
    let mut p = base_profile("SCMP_ACT_ERRNO");
    p.architectures = vec!["SCMP_ARCH_X86_64".into(), "SCMP_ARCH_X86".into()];
    let f = compile(&p).unwrap();
    let out = run_in_child(&f, |_| {
        if int80(20).is_err() {
            return 1;
        }
        if int80(64) != Err(libc::EPERM) {
            return 2;
        }
        if int80(355) != Err(libc::EACCES) {
            return 3;
        }
        if int80(1000) != Err(libc::ENOSYS) {
            return 4;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));

    // Without SCMP_ARCH_X86 the i386 ABI hits libseccomp's bad-arch action (kill).
    let f = compile(&base_profile("SCMP_ACT_ERRNO")).unwrap();
    let out = run_in_child(&f, |_| {
        let _ = int80(20);
        7
    });
    assert_eq!(out, Outcome::Signaled(libc::SIGSYS));
}
