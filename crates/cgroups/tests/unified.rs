//! The pure-v2 code path on a hybrid host: the manager is pointed at the
//! cgroup2 hierarchy at /sys/fs/cgroup/unified as if it were a pure v2 host
//! (no v1 hierarchies). That hierarchy holds no resource controllers here,
//! but the core v2 features do not need any: cgroup.procs, cgroup.freeze,
//! cgroup.kill, the eBPF device filter and CLONE_INTO_CGROUP. Controller
//! delegation is off, so nothing outside our own cgroups is written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use oxcart_cgroups::{FreezerState, HostMode, Layout, Manager};
use oxcart_spec::*;
use std::path::Path;
use std::time::Duration;

const UNIFIED: &str = "/sys/fs/cgroup/unified";

fn unified_manager(tag: &str) -> Option<Manager> {
    let is_cgroup2 = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(UNIFIED) && l.contains(" - cgroup2 "));
    if !is_cgroup2 {
        note(&format!(
            "{tag}: skipped: no cgroup2 hierarchy at {UNIFIED} (not a hybrid host)"
        ));
        return None;
    }
    let layout = Layout::v2_at(UNIFIED, false).unwrap();
    let m = Manager::with_layout(&layout, Some(&unique_path(tag)), "x").unwrap();
    assert_eq!(m.mode(), HostMode::V2);
    assert!(m.v1_dirs().is_empty());
    Some(m)
}

#[test]
fn v2_create_procs_destroy() {
    let Some(m) = unified_manager("v2-basic") else {
        return;
    };
    let mut g = Guard::new(m);
    g.m.create().unwrap();
    let dir = g.m.unified_path().unwrap().to_path_buf();
    assert!(dir.starts_with(UNIFIED) && dir.is_dir());
    let pid = g.spawn("sleep 1000");
    assert_eq!(read(&dir, "cgroup.procs"), pid.to_string());
    assert_eq!(g.m.pids().unwrap(), vec![pid as i32]);
    // A state round trip keeps driving the v2 code path.
    let m2 = Manager::from_state(g.m.to_state()).unwrap();
    assert_eq!(m2.pids().unwrap(), vec![pid as i32]);
    g.m.kill_all(libc::SIGKILL).unwrap();
    g.wait_empty();
    g.m.destroy().unwrap();
    assert!(!dir.exists());
}

#[test]
fn v2_freeze_thaw() {
    let Some(m) = unified_manager("v2-freeze") else {
        return;
    };
    let mut g = Guard::new(m);
    g.m.create().unwrap();
    let tmp = tempdir("v2-freeze");
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
    assert_eq!(read(g.m.unified_path().unwrap(), "cgroup.freeze"), "1");
    let a = read_n();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(read_n(), a, "a frozen process made progress");
    g.m.thaw().unwrap();
    assert_eq!(g.m.freezer_state().unwrap(), FreezerState::Thawed);
    wait_progress(&read_n);
    drop(g);
    let _ = std::fs::remove_dir_all(tmp);
}

#[test]
fn v2_cgroup_kill() {
    let Some(m) = unified_manager("v2-kill") else {
        return;
    };
    let mut g = Guard::new(m);
    g.m.create().unwrap();
    assert!(
        g.m.unified_path().unwrap().join("cgroup.kill").exists(),
        "kernel without cgroup.kill"
    );
    g.spawn("sleep 1000 & sleep 1000 & sleep 1000");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while g.m.pids().unwrap().len() < 3 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    g.m.kill_all(libc::SIGKILL).unwrap();
    g.wait_empty();
}

fn probe(g: &mut Guard, tag: &str) -> String {
    let tmp = tempdir(tag);
    let out = tmp.join("probe");
    g.spawn(&device_probe_script(&out));
    g.wait_children();
    g.children.clear();
    let s = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_dir_all(tmp);
    s
}

fn dev(
    allow: bool,
    typ: &str,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    LinuxDeviceCgroup {
        allow,
        typ: Some(typ.into()),
        major,
        minor,
        access: Some(access.into()),
    }
}

#[test]
fn v2_ebpf_device_filter() {
    let Some(m) = unified_manager("v2-dev") else {
        return;
    };
    let mut g = Guard::new(m);
    g.m.create().unwrap();
    let dir = g.m.unified_path().unwrap().to_path_buf();
    assert_eq!(
        probe(&mut g, "probe0"),
        "/dev/null ok\n/dev/zero ok\n/dev/full ok\n"
    );

    // Allow-list: /dev/null (rw) and /dev/full (r) only.
    let r = LinuxResources {
        devices: vec![
            dev(false, "a", None, None, "rwm"),
            dev(true, "c", Some(1), Some(3), "rw"),
            dev(true, "c", Some(1), Some(7), "r"),
        ],
        ..Default::default()
    };
    g.m.apply(&r).unwrap();
    assert_eq!(oxcart_cgroups::bpf::attached(&dir).unwrap().len(), 1);
    assert_eq!(
        probe(&mut g, "probe1"),
        "/dev/null ok\n/dev/zero denied\n/dev/full ok\n"
    );

    // Update: the old program is replaced, not stacked.
    let r = LinuxResources {
        devices: vec![
            dev(false, "a", None, None, "rwm"),
            dev(true, "c", Some(1), None, "rw"),
        ],
        ..Default::default()
    };
    g.m.apply(&r).unwrap();
    assert_eq!(oxcart_cgroups::bpf::attached(&dir).unwrap().len(), 1);
    assert_eq!(
        probe(&mut g, "probe2"),
        "/dev/null ok\n/dev/zero ok\n/dev/full ok\n"
    );

    // Deny-list form: everything but /dev/zero.
    let r = LinuxResources {
        devices: vec![
            dev(true, "a", None, None, "rwm"),
            dev(false, "c", Some(1), Some(5), "rwm"),
        ],
        ..Default::default()
    };
    g.m.apply(&r).unwrap();
    assert_eq!(
        probe(&mut g, "probe3"),
        "/dev/null ok\n/dev/zero denied\n/dev/full ok\n"
    );
}

#[test]
fn v2_controller_errors_name_the_field() {
    let Some(m) = unified_manager("v2-errs") else {
        return;
    };
    let g = Guard::new(m);
    g.m.create().unwrap();
    let e =
        g.m.apply(&LinuxResources {
            memory: Some(LinuxMemory {
                limit: Some(1 << 20),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        e.to_string().starts_with(
            "linux.resources.memory: the memory controller is not available on this cgroup v2 host"
        ),
        "{e}"
    );
    let e =
        g.m.apply(&LinuxResources {
            network: Some(LinuxNetwork {
                class_id: Some(1),
                priorities: vec![],
            }),
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("linux.resources.network: net_cls and net_prio are cgroup v1 controllers"),
        "{e}"
    );
    // hugetlb is available in this hierarchy but not enabled for our parent,
    // and we may not enable it there (that would write a host cgroup).
    let parent_has = read(Path::new(UNIFIED), "cgroup.subtree_control")
        .split_whitespace()
        .any(|c| c == "hugetlb");
    let root_has = read(Path::new(UNIFIED), "cgroup.controllers")
        .split_whitespace()
        .any(|c| c == "hugetlb");
    if root_has && !parent_has {
        let r = LinuxResources {
            hugepage_limits: vec![LinuxHugepageLimit {
                page_size: "2MB".into(),
                limit: 2 << 20,
            }],
            ..Default::default()
        };
        let e = g.m.apply(&r).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "linux.resources.hugepageLimits: the hugetlb controller is not available"
            ),
            "{e}"
        );
        assert!(e.contains("cgroup.subtree_control"), "{e}");
        assert!(
            !read(Path::new(UNIFIED), "cgroup.subtree_control").contains("hugetlb"),
            "host cgroup was written"
        );
    }
    let e =
        g.m.apply(&LinuxResources {
            unified: Some([("memory.max".to_string(), "1".to_string())].into()),
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        e.to_string().starts_with(
            "linux.resources.unified.memory.max: the memory controller is not available"
        ),
        "{e}"
    );
    // cgroup core files are always there.
    g.m.apply(&LinuxResources {
        unified: Some([("cgroup.max.descendants".to_string(), "3".to_string())].into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        read(g.m.unified_path().unwrap(), "cgroup.max.descendants"),
        "3"
    );
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

#[test]
fn v2_dir_fd_works_with_clone_into_cgroup() {
    use std::os::fd::AsRawFd;
    let Some(m) = unified_manager("v2-clone3") else {
        return;
    };
    let g = Guard::new(m);
    g.m.create().unwrap();
    let fd = g.m.v2_dir_fd().unwrap().expect("a cgroup2 fd");
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: fd.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM behaves like fork; the child only
    // calls pause(2) (async-signal-safe) until it is killed.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if pid == 0 {
        loop {
            unsafe { libc::pause() };
        }
    }
    assert!(pid > 0, "clone3: {}", std::io::Error::last_os_error());
    let pid = pid as i32;
    let procs = g.m.pids().unwrap();
    g.m.kill_all(libc::SIGKILL).unwrap();
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(procs, vec![pid], "the child was not born in the cgroup");
}

#[test]
fn v2_usage_through_a_dir_cache_agrees() {
    let Some(m) = unified_manager("v2-usage") else {
        return;
    };
    let mut g = Guard::new(m);
    g.m.create().unwrap();
    g.spawn("sleep 1000");
    // Controllers this hierarchy lacks (here: all but hugetlb) read as 0 both ways:
    // the cache's once-read `cgroup.controllers` / `subtree_control` answer is
    // `v2_has`'s.
    let by_path = g.m.usage().unwrap();
    let cache = oxcart_cgroups::DirCache::new();
    for _ in 0..2 {
        assert_eq!(g.m.usage_in(&cache).unwrap(), by_path);
    }
    g.m.kill_all(libc::SIGKILL).unwrap();
    g.wait_empty();
}
