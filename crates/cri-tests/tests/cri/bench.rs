//! The CRI benchmark (bench/cri.sh runs it): a one-container pod's RunPodSandbox +
//! CreateContainer + StartContainer, and its teardown (StopPodSandbox +
//! RemovePodSandbox), through containerd with oxcart-runtime and with runc.
//!
//! Method (/work/shared/BENCHMARKING.md): the handlers alternate within each pair
//! (and which goes first alternates too), every timed run is preceded by a pause
//! for the kernel's asynchronous teardown of the previous one, and the result is
//! the median of the per-pair ratios. `OXCRI_BENCH_CALIBRATE=1` times runc against
//! runc, which must come out near 1.0 for the method to be trusted.

use crate::cri::Cri;
use crate::env::Env;
use crate::pod::Pod;
use std::time::{Duration, Instant};

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One pod up and down: (start phase, teardown phase) wall times.
fn one(env: &Env, cri: &Cri, handler: &str, pause: Duration) -> (Duration, Duration) {
    std::thread::sleep(pause);
    let t0 = Instant::now();
    let pod = Pod::run(cri, env, handler, "bench", |_| {});
    pod.start(&pod.container("main", &["sleep", "3600"]));
    let up = t0.elapsed();
    std::thread::sleep(pause);
    let t1 = Instant::now();
    let cgroup_parent = pod.cgroup_parent.clone();
    pod.remove_unchecked();
    let down = t1.elapsed();
    crate::env::remove_cgroup_tree(&cgroup_parent);
    (up, down)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn run(env: &Env, cri: &Cri) {
    let pairs = env_num("OXCRI_BENCH_PAIRS", 20.0) as usize;
    let pause = Duration::from_secs_f64(env_num("OXCRI_BENCH_PAUSE", 0.25));
    let calibrate = std::env::var_os("OXCRI_BENCH_CALIBRATE").is_some();
    let (a, b) = if calibrate {
        ("runc", "runc")
    } else {
        ("oxcart", "runc")
    };
    cri.pull(&env.busybox).unwrap();
    // Warm-up: images unpacked, shims and runtimes in the page cache.
    for h in [a, b] {
        one(env, cri, h, pause);
    }
    let (mut up_a, mut up_b, mut dn_a, mut dn_b) = (vec![], vec![], vec![], vec![]);
    let (mut up_r, mut dn_r, mut tot_r) = (vec![], vec![], vec![]);
    for i in 0..pairs {
        let (ra, rb) = if i % 2 == 0 {
            let ra = one(env, cri, a, pause);
            (ra, one(env, cri, b, pause))
        } else {
            let rb = one(env, cri, b, pause);
            (one(env, cri, a, pause), rb)
        };
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        up_a.push(ms(ra.0));
        dn_a.push(ms(ra.1));
        up_b.push(ms(rb.0));
        dn_b.push(ms(rb.1));
        up_r.push(ms(ra.0) / ms(rb.0));
        dn_r.push(ms(ra.1) / ms(rb.1));
        tot_r.push((ms(ra.0) + ms(ra.1)) / (ms(rb.0) + ms(rb.1)));
    }
    let out = serde_json::json!({
        "pairs": pairs,
        "pause_s": pause.as_secs_f64(),
        "a": if calibrate { "runc (calibration)" } else { a },
        "b": b,
        "runtime": env.runtime.display().to_string(),
        "up_ms": {"a": median(&mut up_a), "b": median(&mut up_b), "ratio": median(&mut up_r)},
        "teardown_ms": {"a": median(&mut dn_a), "b": median(&mut dn_b), "ratio": median(&mut dn_r)},
        "total_ratio": median(&mut tot_r),
    });
    println!("OXCRI_BENCH {out}");
}
