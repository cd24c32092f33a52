//! Compile vs cached-load cost for podman's default profile (the DESIGN.md benchmark).
//!
//!     cargo run --release -p oxcart_seccomp --example seccomp_bench [iterations]
//!
//! Run as root (the cache dir is created under a temp dir).

#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use oxcart_seccomp::{compile, compile_cached, CacheStatus};
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn bench(n: usize, mut f: impl FnMut()) -> Duration {
    median(
        (0..n)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let three = common::podman_profile();
    let mut one = three.clone();
    one.architectures = vec!["SCMP_ARCH_X86_64".into()];

    // First compile in this process: libseccomp's own first-use set-up (its syscall tables).
    let t = Instant::now();
    let f = compile(&three).unwrap();
    let first = t.elapsed();
    println!(
        "podman profile: {} rules, {} BPF instructions (3 arches)",
        three.syscalls.iter().map(|s| s.names.len()).sum::<usize>(),
        f.program().len()
    );
    println!("first compile in the process:             {first:>10.1?}");
    println!(
        "compile, 3 arches (x86_64, x86, x32):     {:>10.1?}",
        bench(n, || {
            compile(&three).unwrap();
        })
    );
    println!(
        "compile, x86_64 only:                     {:>10.1?}",
        bench(n, || {
            compile(&one).unwrap();
        })
    );

    let dir = common::TempDir::new("bench");
    let cache = dir.0.join("cache");
    let (_, s) = compile_cached(&three, &cache).unwrap();
    assert!(matches!(s, CacheStatus::Stored));
    println!(
        "cache hit (validate + key + read + verify): {:>8.1?}",
        bench(n * 10, || {
            let (_, s) = compile_cached(&three, &cache).unwrap();
            assert!(matches!(s, CacheStatus::Hit));
        })
    );
    println!(
        "  of which cache_key (SHA-256 of profile):  {:>8.1?}",
        bench(n * 10, || {
            std::hint::black_box(oxcart_seccomp::cache_key(&three));
        })
    );
    let spec_json = serde_json::to_vec(&three).unwrap();
    println!(
        "  (for scale: serde parse of the profile):  {:>8.1?}",
        bench(n * 10, || {
            let p: oxcart_spec::LinuxSeccomp = serde_json::from_slice(&spec_json).unwrap();
            std::hint::black_box(p);
        })
    );
    // install() in a forked child: the kernel's copy + verification of the program.
    println!(
        "install() in a fresh child (fork+install+exit+wait): {:>8.1?}",
        bench(n, || {
            let out = common::run_in_child(&f, |_| 0);
            assert_eq!(out, common::Outcome::Exited(0));
        })
    );
    println!(
        "fork+exit+wait without install (baseline):           {:>8.1?}",
        bench(n, || {
            // SAFETY: fork; the child exits at once.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                unsafe { libc::_exit(0) }
            }
            common::wait(pid);
        })
    );

    // Per-syscall cost inside the filter. getpid's verdict does not depend on its
    // arguments, so the kernel's seccomp action cache (5.11+) skips the program;
    // personality(0xffffffff) (a query) is allowed only by an argument check, so the
    // program runs every time.
    let per_call = |filter: Option<&oxcart_seccomp::Filter>, nr: i64, a0: u64| -> f64 {
        let mut fds = [0; 2];
        unsafe { libc::pipe(fds.as_mut_ptr()) };
        const N: u32 = 1_000_000;
        let body = move |_| {
            let t = Instant::now();
            for _ in 0..N {
                unsafe { libc::syscall(nr, a0) };
            }
            let ns = (t.elapsed().as_nanos() as u64).to_ne_bytes();
            unsafe { libc::write(fds[1], ns.as_ptr().cast(), 8) };
            0
        };
        let none = oxcart_seccomp::compile(&common::profile("SCMP_ACT_ALLOW", vec![])).ok();
        let f = filter.or(none.as_ref()).unwrap();
        if filter.is_none() {
            // No filter at all: run the loop in a plain child.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let code = body(None);
                unsafe { libc::_exit(code) }
            }
            common::wait(pid);
        } else {
            assert_eq!(common::run_in_child(f, body), common::Outcome::Exited(0));
        }
        let mut b = [0u8; 8];
        unsafe { libc::read(fds[0], b.as_mut_ptr().cast(), 8) };
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        u64::from_ne_bytes(b) as f64 / f64::from(N)
    };
    for (what, nr, a0) in [
        ("getpid", libc::SYS_getpid, 0),
        (
            "personality(0xffffffff)",
            libc::SYS_personality,
            0xffff_ffff,
        ),
    ] {
        println!(
            "{what:<24} no filter {:>6.1} ns, podman filter {:>6.1} ns per call",
            per_call(None, nr, a0),
            per_call(Some(&f), nr, a0)
        );
    }
}
