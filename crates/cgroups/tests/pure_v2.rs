//! Tests that need a pure cgroup v2 host (/sys/fs/cgroup is cgroup2). On
//! other hosts each prints "skipped: not a pure v2 host"; they really run
//! in the v2 lane (tests/v2-lane/run.sh, OXCART_V2_LANE=1), where a host
//! that is not pure v2 is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use oxcart_cgroups::{FreezerState, HostMode, Manager, OomEvent};
use oxcart_spec::*;
use std::path::Path;
use std::time::{Duration, Instant};

fn manager(test: &str) -> Option<Guard> {
    if !require_pure_v2(test) {
        return None;
    }
    let m = Manager::new(Some(&unique_path(test)), "x", false).unwrap();
    assert_eq!(m.mode(), HostMode::V2);
    assert!(m.unified_path().unwrap().starts_with("/sys/fs/cgroup"));
    m.create().unwrap();
    Some(Guard::new(m))
}

fn has_ctrl(dir: &Path, c: &str) -> bool {
    read(dir, "cgroup.controllers")
        .split_whitespace()
        .any(|x| x == c)
}

#[test]
fn v2_memory_max_and_swap() {
    let Some(g) = manager("v2_memory_max_and_swap") else {
        return;
    };
    let d = g.m.unified_path().unwrap();
    assert!(has_ctrl(d, "memory"));
    g.m.apply(&LinuxResources {
        memory: Some(LinuxMemory {
            limit: Some(64 << 20),
            reservation: Some(16 << 20),
            swap: Some(96 << 20),
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(d, "memory.max"), (64u64 << 20).to_string());
    assert_eq!(read(d, "memory.low"), (16u64 << 20).to_string());
    if d.join("memory.swap.max").exists() {
        assert_eq!(read(d, "memory.swap.max"), (32u64 << 20).to_string());
    }
    // -1 is unlimited for both.
    g.m.apply(&LinuxResources {
        memory: Some(LinuxMemory {
            limit: Some(-1),
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(d, "memory.max"), "max");
    for (m, field) in [
        (
            LinuxMemory {
                swappiness: Some(10),
                ..Default::default()
            },
            "linux.resources.memory.swappiness",
        ),
        (
            LinuxMemory {
                disable_oom_killer: Some(true),
                ..Default::default()
            },
            "linux.resources.memory.disableOOMKiller",
        ),
        (
            LinuxMemory {
                limit: Some(100),
                swap: Some(50),
                ..Default::default()
            },
            "linux.resources.memory.swap",
        ),
    ] {
        let e =
            g.m.apply(&LinuxResources {
                memory: Some(m),
                ..Default::default()
            })
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(field), "{e}");
    }
}

#[test]
fn v2_pids_max() {
    let Some(mut g) = manager("v2_pids_max") else {
        return;
    };
    g.m.apply(&LinuxResources {
        pids: Some(LinuxPids { limit: 6 }),
        ..Default::default()
    })
    .unwrap();
    let d = g.m.unified_path().unwrap().to_path_buf();
    assert_eq!(read(&d, "pids.max"), "6");
    g.spawn("for i in $(seq 1 30); do sleep 1000 & done; sleep 1000");
    let deadline = Instant::now() + Duration::from_secs(60);
    while read(&d, "pids.events")
        .split_whitespace()
        .nth(1)
        .is_none_or(|n| n == "0")
    {
        assert!(Instant::now() < deadline, "the pids limit was never hit");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(g.m.pids().unwrap().len() <= 6);
    g.m.kill_all(libc::SIGKILL).unwrap();
    g.wait_empty();
    g.m.apply(&LinuxResources {
        pids: Some(LinuxPids { limit: -1 }),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(&d, "pids.max"), "max");
}

#[test]
fn v2_cpu_max_weight_cpuset() {
    let Some(g) = manager("v2_cpu_max_weight_cpuset") else {
        return;
    };
    let d = g.m.unified_path().unwrap();
    g.m.apply(&LinuxResources {
        cpu: Some(LinuxCpu {
            shares: Some(1024),
            quota: Some(50000),
            period: Some(100000),
            cpus: Some("0".into()),
            mems: Some("0".into()),
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(d, "cpu.weight"), "39");
    assert_eq!(read(d, "cpu.max"), "50000 100000");
    assert_eq!(read(d, "cpuset.cpus"), "0");
    assert_eq!(read(d, "cpuset.mems"), "0");
    // Updating only the period keeps the quota.
    g.m.apply(&LinuxResources {
        cpu: Some(LinuxCpu {
            period: Some(200000),
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(d, "cpu.max"), "50000 200000");
    g.m.apply(&LinuxResources {
        cpu: Some(LinuxCpu {
            quota: Some(-1),
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(d, "cpu.max"), "max 200000");
    if d.join("cpu.max.burst").exists() {
        g.m.apply(&LinuxResources {
            cpu: Some(LinuxCpu {
                burst: Some(1000),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(read(d, "cpu.max.burst"), "1000");
    }
    if d.join("cpu.idle").exists() {
        g.m.apply(&LinuxResources {
            cpu: Some(LinuxCpu {
                idle: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(read(d, "cpu.idle"), "1");
    }
    let e =
        g.m.apply(&LinuxResources {
            cpu: Some(LinuxCpu {
                realtime_runtime: Some(1000),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("linux.resources.cpu.realtimeRuntime"), "{e}");
    let e =
        g.m.apply(&LinuxResources {
            cpu: Some(LinuxCpu {
                cpus: Some("0-4095".into()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("linux.resources.cpu.cpus: \"0-4095\" is outside online CPUs"),
        "{e}"
    );
}

#[test]
fn v2_io_weight() {
    let Some(g) = manager("v2_io_weight") else {
        return;
    };
    let d = g.m.unified_path().unwrap();
    g.m.apply(&LinuxResources {
        block_io: Some(LinuxBlockIo {
            weight: Some(500),
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();
    if d.join("io.bfq.weight").exists() {
        assert!(
            read(d, "io.bfq.weight").contains("500"),
            "{}",
            read(d, "io.bfq.weight")
        );
    } else {
        assert_eq!(read(d, "io.weight"), "default 4950");
    }
    let e =
        g.m.apply(&LinuxResources {
            block_io: Some(LinuxBlockIo {
                leaf_weight: Some(500),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("linux.resources.blockIO.leafWeight"), "{e}");
}

#[test]
fn v2_hugetlb_and_unified() {
    let Some(g) = manager("v2_hugetlb_and_unified") else {
        return;
    };
    let d = g.m.unified_path().unwrap();
    if has_ctrl(d, "hugetlb") && Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
        g.m.apply(&LinuxResources {
            hugepage_limits: vec![LinuxHugepageLimit {
                page_size: "2MB".into(),
                limit: 4 << 20,
            }],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(read(d, "hugetlb.2MB.max"), (4u64 << 20).to_string());
    } else {
        note("v2_hugetlb_and_unified: no 2MB huge pages or no hugetlb controller; hugetlb part not run");
    }
    g.m.apply(&LinuxResources {
        unified: Some([("memory.high".to_string(), "33554432".to_string())].into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(d, "memory.high"), "33554432");
    let e =
        g.m.apply(&LinuxResources {
            unified: Some([("nosuch.file".to_string(), "1".to_string())].into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("linux.resources.unified.nosuch.file"), "{e}");
}

#[test]
fn v2_freeze_and_kill() {
    let Some(mut g) = manager("v2_freeze_and_kill") else {
        return;
    };
    let tmp = tempdir("v2-freeze-pure");
    let counter = tmp.join("n");
    g.spawn(&format!(
        "i=0; while :; do i=$((i+1)); echo $i > {}; done",
        counter.display()
    ));
    let read_n = || {
        std::fs::read_to_string(&counter)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    wait_progress(&read_n);
    g.m.freeze().unwrap();
    assert_eq!(g.m.freezer_state().unwrap(), FreezerState::Frozen);
    let a = read_n();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(read_n(), a, "a frozen process made progress");
    g.m.thaw().unwrap();
    wait_progress(&read_n);
    assert!(g.m.unified_path().unwrap().join("cgroup.kill").exists());
    g.m.kill_all(libc::SIGKILL).unwrap();
    g.wait_empty();
    g.m.destroy().unwrap();
    assert!(!g.m.exists());
    let _ = std::fs::remove_dir_all(tmp);
}

#[test]
fn v2_ebpf_device_filter() {
    let Some(mut g) = manager("v2_ebpf_device_filter") else {
        return;
    };
    let dev = |allow: bool, typ: &str, major: Option<i64>, minor: Option<i64>, access: &str| {
        LinuxDeviceCgroup {
            allow,
            typ: Some(typ.into()),
            major,
            minor,
            access: Some(access.into()),
        }
    };
    let mut devs = vec![dev(false, "a", None, None, "rwm")];
    devs.extend(oxcart_cgroups::devices::default_device_rules());
    // Take read/write of /dev/zero back (its mknod stays with "c *:* m";
    // denying "m" too would punch a hole in that wildcard, an error).
    devs.push(dev(false, "c", Some(1), Some(5), "rw"));
    g.m.apply(&LinuxResources {
        devices: devs,
        ..Default::default()
    })
    .unwrap();
    let tmp = tempdir("v2-dev-pure");
    let out = tmp.join("probe");
    g.spawn(&device_probe_script(&out));
    g.wait_children();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "/dev/null ok\n/dev/zero denied\n/dev/full ok\n"
    );
    let _ = std::fs::remove_dir_all(tmp);
}

#[test]
fn v2_oom_and_stats() {
    let Some(mut g) = manager("v2_oom_and_stats") else {
        return;
    };
    let d = g.m.unified_path().unwrap().to_path_buf();
    let mut mem = LinuxMemory {
        limit: Some(16 << 20),
        ..Default::default()
    };
    if d.join("memory.swap.max").exists() {
        mem.swap = Some(16 << 20);
    }
    g.m.apply(&LinuxResources {
        memory: Some(mem),
        pids: Some(LinuxPids { limit: 20 }),
        ..Default::default()
    })
    .unwrap();
    let mut w = g.m.oom_watcher().unwrap();
    g.spawn("x=$(head -c 67108864 /dev/zero | tr '\\0' a); sleep 1000");
    match w.wait(Some(Duration::from_secs(120))).unwrap() {
        OomEvent::Oom(n) => assert!(n >= 1),
        other => panic!("expected an OOM kill, got {other:?}"),
    }
    // The kill's victims and the pipeline they broke are still exiting: wait until
    // the process count holds still, so the full and the lean read below count the
    // same processes (CI once saw 4, then 1).
    let count = || {
        std::fs::read_to_string(d.join("pids.current"))
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let (mut last, mut same) = (count(), 0);
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(50));
        let n = count();
        same = if n == last { same + 1 } else { 0 };
        last = n;
        if same == 6 {
            break;
        }
    }
    let s = g.m.stats().unwrap();
    assert_eq!(s.memory.usage.limit, 16 << 20);
    assert_eq!(s.pids.limit, 20);
    assert!(s.cpu.usage.total > 0);
    assert!(!s.memory.raw.is_empty());
    // `stats`' lean read (docker's columns) agrees with the full one.
    let u = g.m.usage().unwrap();
    assert_eq!(u.mem_limit, 16 << 20);
    // Through a DirCache (`stats` over many containers): the same files, read
    // relative to the cgroups' parents; the v2 controller check answered once.
    let cache = oxcart_cgroups::DirCache::new();
    for _ in 0..2 {
        let c = g.m.usage_in(&cache).unwrap();
        assert_eq!((c.mem_limit, c.pids), (u.mem_limit, u.pids), "{c:?}");
        assert!(c.cpu_ns >= u.cpu_ns && c.mem_usage > 0, "{c:?}");
    }
    assert!(u.cpu_ns >= s.cpu.usage.total, "{u:?}");
    assert!(u.mem_usage > 0 && u.mem_usage <= 16 << 20, "{u:?}");
    assert_eq!(u.pids, s.pids.current);
    g.m.kill_all(libc::SIGKILL).unwrap();
    g.wait_empty();
    g.m.destroy().unwrap();
    assert_eq!(w.check().unwrap(), OomEvent::CgroupGone);
}

#[test]
fn v2_check_before_update() {
    let Some(mut g) = manager("v2_check_before_update") else {
        return;
    };
    g.spawn("x=$(head -c 25165824 /dev/zero | tr '\\0' a); sleep 1000");
    let d = g.m.unified_path().unwrap().to_path_buf();
    let deadline = Instant::now() + Duration::from_secs(60);
    while read(&d, "memory.current").parse::<u64>().unwrap() < 20 << 20 {
        assert!(Instant::now() < deadline, "child never used memory");
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = LinuxResources {
        memory: Some(LinuxMemory {
            limit: Some(1 << 20),
            check_before_update: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    let e = g.m.apply(&r).unwrap_err().to_string();
    assert!(
        e.starts_with("linux.resources.memory.limit: 1048576 is below the current usage"),
        "{e}"
    );
    assert_eq!(read(&d, "memory.max"), "max", "nothing was written");
}
