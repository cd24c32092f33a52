//! Argument operators on a real kernel: getppid ignores its arguments, but seccomp
//! sees the registers we pass, so `syscall(SYS_getppid, a0, a1, ...)` probes a filter.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;
use common::*;
use oxcart_seccomp::compile;

const DENIED: i32 = 42;

/// For a rule `getppid ERRNO(42) if args`, the arg vectors that must be denied and allowed.
fn check(args: Vec<oxcart_spec::LinuxSeccompArg>, denied: &[[u64; 6]], allowed: &[[u64; 6]]) {
    let mut r = rule(&["getppid"], "SCMP_ACT_ERRNO", Some(DENIED as u32));
    r.args = args.clone();
    let f = compile(&profile("SCMP_ACT_ALLOW", vec![r])).unwrap();
    // SAFETY: no preconditions.
    let me = unsafe { libc::getpid() } as i64;
    let out = run_in_child(&f, |_| {
        for (i, a) in denied.iter().enumerate() {
            if sys(libc::SYS_getppid, *a) != Err(DENIED) {
                return 1 + i as i32;
            }
        }
        for (i, a) in allowed.iter().enumerate() {
            if sys(libc::SYS_getppid, *a) != Ok(me) {
                return 100 + i as i32;
            }
        }
        0
    });
    // Exit code n: denied[n-1] was not denied; 100+n: allowed[n] was not allowed.
    assert_eq!(out, Outcome::Exited(0), "args {args:?}");
}

fn a0(v: u64) -> [u64; 6] {
    [v, 0, 0, 0, 0, 0]
}

const BIG: u64 = 0x1_0000_0005; // high word set: 64-bit comparisons, not 32-bit

#[test]
fn eq() {
    check(
        vec![arg(0, "SCMP_CMP_EQ", 5, 0)],
        &[a0(5)],
        &[a0(4), a0(6), a0(BIG)],
    );
    check(vec![arg(0, "SCMP_CMP_EQ", BIG, 0)], &[a0(BIG)], &[a0(5)]);
}

#[test]
fn ne() {
    check(
        vec![arg(0, "SCMP_CMP_NE", 5, 0)],
        &[a0(4), a0(6), a0(BIG)],
        &[a0(5)],
    );
}

#[test]
fn lt_le() {
    check(
        vec![arg(0, "SCMP_CMP_LT", 5, 0)],
        &[a0(0), a0(4)],
        &[a0(5), a0(6), a0(BIG)],
    );
    check(
        vec![arg(0, "SCMP_CMP_LE", 5, 0)],
        &[a0(0), a0(5)],
        &[a0(6), a0(BIG)],
    );
}

#[test]
fn gt_ge() {
    check(
        vec![arg(0, "SCMP_CMP_GT", 5, 0)],
        &[a0(6), a0(BIG)],
        &[a0(5), a0(0)],
    );
    check(
        vec![arg(0, "SCMP_CMP_GE", 5, 0)],
        &[a0(5), a0(BIG)],
        &[a0(4), a0(0)],
    );
}

#[test]
fn masked_eq() {
    // (arg & value) == valueTwo: the clone-flags idiom of docker's profile.
    check(
        vec![arg(0, "SCMP_CMP_MASKED_EQ", 0x7e02_0000, 0)],
        &[a0(0), a0(0x11), a0(0x8000_0000)],
        &[a0(0x1000_0000), a0(0x0002_0000 | 0x11)],
    );
    check(
        vec![arg(0, "SCMP_CMP_MASKED_EQ", 0xff_0000_00ff, 0x12_0000_0034)],
        &[a0(0x12_0000_0034), a0(0x12_ffff_ff34)],
        &[a0(0x13_0000_0034), a0(0x12_0000_0035), a0(0x34)],
    );
}

#[test]
fn conditions_on_different_args_are_anded() {
    check(
        vec![arg(0, "SCMP_CMP_EQ", 1, 0), arg(2, "SCMP_CMP_GT", 10, 0)],
        &[[1, 0, 11, 0, 0, 0], [1, 7, 99, 0, 0, 0]],
        &[[1, 0, 10, 0, 0, 0], [2, 0, 11, 0, 0, 0]],
    );
    // Highest index too.
    check(
        vec![arg(5, "SCMP_CMP_EQ", 9, 0)],
        &[[0, 0, 0, 0, 0, 9]],
        &[[9, 0, 0, 0, 0, 0]],
    );
}

#[test]
fn conditions_on_the_same_arg_are_ored_like_runc() {
    // runc: two conditions on one argument become separate rules (either matches).
    check(
        vec![arg(0, "SCMP_CMP_EQ", 3, 0), arg(0, "SCMP_CMP_EQ", 7, 0)],
        &[a0(3), a0(7)],
        &[a0(4), a0(0)],
    );
}
