//! Differential test against runc (Debian's runc 1.1.5): runc and our
//! manager apply the same `linux.resources`; the cgroup files they leave
//! must be identical.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use oxcart_cgroups::Manager;
use oxcart_spec::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct RuncContainer {
    root: PathBuf,
    bundle: PathBuf,
    id: String,
}

impl Drop for RuncContainer {
    fn drop(&mut self) {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "-f", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.bundle);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn runc_available() -> bool {
    Command::new("runc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A busybox bundle whose process sleeps, run detached by runc.
fn runc_run(tag: &str, cgroups_path: &str, resources: &LinuxResources) -> RuncContainer {
    runc_run_with_devices(tag, cgroups_path, resources, &[])
}

fn runc_run_with_devices(
    tag: &str,
    cgroups_path: &str,
    resources: &LinuxResources,
    devices: &[LinuxDevice],
) -> RuncContainer {
    let uniq = unique_path(tag).trim_start_matches('/').to_string();
    let base = std::env::temp_dir().join(&uniq);
    let bundle = base.join("bundle");
    let root = base.join("runc-root");
    std::fs::create_dir_all(bundle.join("rootfs/bin")).unwrap();
    std::fs::create_dir_all(&root).unwrap();
    std::fs::copy(BUSYBOX, bundle.join("rootfs/bin/busybox")).unwrap();
    for l in ["sh", "sleep"] {
        std::os::unix::fs::symlink("busybox", bundle.join("rootfs/bin").join(l)).unwrap();
    }
    let st = Command::new("runc")
        .arg("spec")
        .current_dir(&bundle)
        .status()
        .unwrap();
    assert!(st.success());
    let cfg_path = bundle.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg["process"]["args"] = serde_json::json!(["sleep", "1000"]);
    cfg["process"]["terminal"] = serde_json::json!(false);
    cfg["linux"]["cgroupsPath"] = serde_json::json!(cgroups_path);
    cfg["linux"]["resources"] = serde_json::to_value(resources).unwrap();
    if !devices.is_empty() {
        cfg["linux"]["devices"] = serde_json::to_value(devices).unwrap();
    }
    std::fs::write(&cfg_path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    let c = RuncContainer {
        root,
        bundle: base.clone(),
        id: uniq.replace('/', "-"),
    };
    // The detached container inherits runc's stdio: a pipe would never
    // reach EOF while it runs, so runc's errors go to a file.
    let log = base.join("runc.stderr");
    let st = Command::new("runc")
        .arg("--root")
        .arg(&c.root)
        .args(["run", "-d", "--bundle"])
        .arg(&bundle)
        .arg(&c.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    assert!(
        st.success(),
        "runc run failed: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    c
}

fn v1_dir(controller: &str, path: &str) -> PathBuf {
    // Resolve the mountpoint of the hierarchy through a throwaway manager.
    let m = Manager::new(Some(path), "x", false).unwrap();
    m.v1_path(controller).unwrap().to_path_buf()
}

fn compare(files: &[(&str, &str)], runc_path: &str, ours: &Manager) -> Vec<String> {
    let mut diffs = Vec::new();
    for (ctrl, file) in files {
        let theirs = read(&v1_dir(ctrl, runc_path), file);
        let mine = read(ours.v1_path(ctrl).unwrap(), file);
        if theirs != mine {
            diffs.push(format!("{ctrl}/{file}: runc {theirs:?} vs ours {mine:?}"));
        }
    }
    diffs
}

#[test]
fn same_files_as_runc() {
    if !require_hybrid("same_files_as_runc") {
        return;
    }
    if !runc_available() {
        panic!("runc is not installed (apt-get install runc)");
    }
    let spec_devices = vec![
        LinuxDeviceCgroup {
            allow: false,
            access: Some("rwm".into()),
            ..Default::default()
        },
        LinuxDeviceCgroup {
            allow: true,
            typ: Some("c".into()),
            major: Some(4),
            minor: Some(64),
            access: Some("rw".into()),
        },
        LinuxDeviceCgroup {
            allow: true,
            typ: Some("b".into()),
            major: Some(254),
            minor: None,
            access: Some("r".into()),
        },
    ];
    let bd = block_device();
    let resources = LinuxResources {
        devices: spec_devices.clone(),
        memory: Some(LinuxMemory {
            limit: Some(96 << 20),
            reservation: Some(48 << 20),
            swap: Some(192 << 20),
            swappiness: Some(20),
            disable_oom_killer: Some(true),
            ..Default::default()
        }),
        cpu: Some(LinuxCpu {
            shares: Some(700),
            quota: Some(30000),
            period: Some(60000),
            realtime_runtime: Some(10000),
            realtime_period: Some(500000),
            cpus: Some("0".into()),
            mems: Some("0".into()),
            ..Default::default()
        }),
        pids: Some(LinuxPids { limit: 33 }),
        block_io: Some(LinuxBlockIo {
            weight: Some(300),
            throttle_read_bps_device: vec![LinuxThrottleDevice {
                major: bd.0,
                minor: bd.1,
                rate: 2 << 20,
            }],
            throttle_write_bps_device: vec![LinuxThrottleDevice {
                major: bd.0,
                minor: bd.1,
                rate: 3 << 20,
            }],
            throttle_read_iops_device: vec![LinuxThrottleDevice {
                major: bd.0,
                minor: bd.1,
                rate: 400,
            }],
            throttle_write_iops_device: vec![LinuxThrottleDevice {
                major: bd.0,
                minor: bd.1,
                rate: 500,
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let ours_path = unique_path("ours");
    let g = Guard::new(Manager::new(Some(&ours_path), "x", false).unwrap());
    g.m.create().unwrap();
    // A blkio weight needs CFQ or BFQ; without either, runc fails too.
    let blk = g.m.v1_path("blkio").unwrap().to_path_buf();
    let mut resources = resources;
    if !blk.join("blkio.weight").exists() && !blk.join("blkio.bfq.weight").exists() {
        note("same_files_as_runc: no CFQ/BFQ weight file here; blockIO.weight not compared");
        resources.block_io.as_mut().unwrap().weight = None;
    }
    let runc_path = unique_path("runc");
    let _runc = runc_run("runc-bundle", &runc_path, &resources);
    let mut mine = resources.clone();
    mine.devices = oxcart_cgroups::devices::container_device_rules(&spec_devices, &[]);
    g.m.apply(&mine).unwrap();

    let mut files = vec![
        ("memory", "memory.limit_in_bytes"),
        ("memory", "memory.soft_limit_in_bytes"),
        ("memory", "memory.memsw.limit_in_bytes"),
        ("memory", "memory.swappiness"),
        ("cpu", "cpu.shares"),
        ("cpu", "cpu.cfs_quota_us"),
        ("cpu", "cpu.cfs_period_us"),
        ("cpu", "cpu.rt_runtime_us"),
        ("cpu", "cpu.rt_period_us"),
        ("cpuset", "cpuset.cpus"),
        ("cpuset", "cpuset.mems"),
        ("pids", "pids.max"),
        ("blkio", "blkio.throttle.read_bps_device"),
        ("blkio", "blkio.throttle.write_bps_device"),
        ("blkio", "blkio.throttle.read_iops_device"),
        ("blkio", "blkio.throttle.write_iops_device"),
        ("devices", "devices.list"),
    ];
    for w in ["blkio.weight", "blkio.bfq.weight"] {
        if blk.join(w).exists() {
            files.push(("blkio", w));
        }
    }
    // memory.oom_control also reports live state (under_oom); compare the
    // setting line only.
    let oom_line = |d: &Path| {
        read(d, "memory.oom_control")
            .lines()
            .next()
            .unwrap()
            .to_string()
    };
    let mut diffs = compare(&files, &runc_path, &g.m);
    let (a, b) = (
        oom_line(&v1_dir("memory", &runc_path)),
        oom_line(g.m.v1_path("memory").unwrap()),
    );
    if a != b {
        diffs.push(format!("memory.oom_control: runc {a:?} vs ours {b:?}"));
    }
    assert!(
        diffs.is_empty(),
        "differences from runc:\n{}",
        diffs.join("\n")
    );
    // Both joined the unified hierarchy too.
    let unified = Path::new("/sys/fs/cgroup/unified");
    assert!(unified.join(runc_path.trim_start_matches('/')).is_dir());
    assert!(g.m.unified_path().unwrap().is_dir());
}

fn runc(c: &RuncContainer, args: &[&str]) -> String {
    let out = Command::new("runc")
        .arg("--root")
        .arg(&c.root)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "runc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn update_matches_runc_update() {
    if !require_hybrid("update_matches_runc_update") {
        return;
    }
    assert!(runc_available(), "runc is not installed");
    let initial = LinuxResources {
        memory: Some(LinuxMemory {
            limit: Some(64 << 20),
            swap: Some(64 << 20),
            ..Default::default()
        }),
        cpu: Some(LinuxCpu {
            quota: Some(20000),
            period: Some(100000),
            ..Default::default()
        }),
        pids: Some(LinuxPids { limit: 20 }),
        ..Default::default()
    };
    let runc_path = unique_path("runc-upd");
    let c = runc_run("runc-upd-bundle", &runc_path, &initial);
    let g = Guard::new(Manager::new(Some(&unique_path("ours-upd")), "x", false).unwrap());
    g.m.create().unwrap();
    g.m.apply(&initial).unwrap();
    let files = [
        ("memory", "memory.limit_in_bytes"),
        ("memory", "memory.memsw.limit_in_bytes"),
        ("cpu", "cpu.cfs_quota_us"),
        ("cpu", "cpu.cfs_period_us"),
        ("pids", "pids.max"),
    ];
    // Raising memory above the current memsw limit (memsw must go first),
    // then lowering both (memory must go first), then unlimited (-1), and
    // a smaller period with a quota.
    let steps: Vec<(Vec<&str>, LinuxResources)> = vec![
        (
            vec![
                "--memory",
                "268435456",
                "--memory-swap",
                "536870912",
                "--pids-limit",
                "40",
            ],
            LinuxResources {
                memory: Some(LinuxMemory {
                    limit: Some(256 << 20),
                    swap: Some(512 << 20),
                    ..Default::default()
                }),
                pids: Some(LinuxPids { limit: 40 }),
                ..Default::default()
            },
        ),
        (
            vec!["--memory", "33554432", "--memory-swap", "67108864"],
            LinuxResources {
                memory: Some(LinuxMemory {
                    limit: Some(32 << 20),
                    swap: Some(64 << 20),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ),
        (
            vec!["--memory", "-1", "--memory-swap", "-1"],
            LinuxResources {
                memory: Some(LinuxMemory {
                    limit: Some(-1),
                    swap: Some(-1),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ),
        (
            vec!["--cpu-period", "50000", "--cpu-quota", "40000"],
            LinuxResources {
                cpu: Some(LinuxCpu {
                    quota: Some(40000),
                    period: Some(50000),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ),
    ];
    for (i, (args, res)) in steps.iter().enumerate() {
        let mut a = vec!["update"];
        a.extend(args.iter().copied());
        a.push(&c.id);
        runc(&c, &a);
        g.m.apply(res).unwrap_or_else(|e| panic!("step {i}: {e}"));
        let diffs = compare(&files, &runc_path, &g.m);
        assert!(
            diffs.is_empty(),
            "step {i} differs from runc:\n{}",
            diffs.join("\n")
        );
    }
}

/// Every key path of a JSON value (objects only; array elements share a path).
fn key_paths(v: &serde_json::Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let p = format!("{prefix}.{k}");
                out.insert(p.clone());
                key_paths(v, &p, out);
            }
        }
        serde_json::Value::Array(a) => {
            for v in a {
                key_paths(v, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn stats_json_has_runc_shape() {
    if !require_hybrid("stats_json_has_runc_shape") {
        return;
    }
    assert!(runc_available(), "runc is not installed");
    let res = LinuxResources {
        memory: Some(LinuxMemory {
            limit: Some(64 << 20),
            ..Default::default()
        }),
        pids: Some(LinuxPids { limit: 20 }),
        ..Default::default()
    };
    let runc_path = unique_path("runc-stats");
    let c = runc_run("runc-stats-bundle", &runc_path, &res);
    let theirs: serde_json::Value =
        serde_json::from_str(&runc(&c, &["events", "--stats", &c.id])).unwrap();
    assert_eq!(theirs["type"], "stats");
    let theirs = &theirs["data"];

    // Our manager over runc's own cgroup: the same numbers' shape.
    let ours = Manager::new(Some(&runc_path), "x", false)
        .unwrap()
        .stats()
        .unwrap();
    let ours = serde_json::to_value(&ours).unwrap();
    let (mut a, mut b) = (Default::default(), Default::default());
    key_paths(theirs, "", &mut a);
    key_paths(&ours, "", &mut b);
    // Raw memory.stat keys and live counters may differ between two reads;
    // everything else must be the same set.
    let strip = |s: &std::collections::BTreeSet<String>| -> std::collections::BTreeSet<String> {
        s.iter()
            .filter(|k| !k.starts_with(".memory.raw."))
            .cloned()
            .collect()
    };
    let (a, mut b) = (strip(&a), strip(&b));
    // hugetlb is a cgroup2-only controller on this host's kernel (no v1
    // hierarchy). runc 1.1's v1 manager reads v1 hierarchies only and reports
    // `"hugetlb": {}` here; ours reads it through the unified hierarchy once
    // the controller is enabled for the cgroup's parent, which oxcart's own
    // delegation does the first time a container sets a hugepage limit (and
    // nothing undoes). Those entries must then have runc's per-size shape
    // (runc types.HugetlbStats: usage, max omitempty; failcnt), and runc's
    // are empty.
    let layout = oxcart_cgroups::Layout::detect().unwrap();
    let v2_hugetlb = !layout
        .v1
        .iter()
        .any(|h| h.controllers.iter().any(|c| c == "hugetlb"));
    if v2_hugetlb && !ours["hugetlb"].as_object().unwrap().is_empty() {
        assert_eq!(
            theirs["hugetlb"],
            serde_json::json!({}),
            "runc read hugetlb"
        );
        for (size, h) in ours["hugetlb"].as_object().unwrap() {
            let keys: Vec<_> = h.as_object().unwrap().keys().collect();
            assert!(
                keys.iter()
                    .all(|k| ["usage", "max", "failcnt"].contains(&k.as_str()))
                    && keys.iter().any(|k| *k == "failcnt"),
                "hugetlb {size}: {keys:?}"
            );
        }
        b.retain(|k| !k.starts_with(".hugetlb."));
    }
    assert!(a.len() > 20, "runc reported too little to compare: {a:?}");
    eprintln!("runc events --stats: {theirs}");
    let only_runc: Vec<_> = a.difference(&b).collect();
    let only_ours: Vec<_> = b.difference(&a).collect();
    // Zero-valued omitempty counters (e.g. throttling) can legitimately
    // appear on one side only if they changed between the two reads; none
    // of the fields of an idle sleeping container do.
    assert!(
        only_runc.is_empty() && only_ours.is_empty(),
        "only runc: {only_runc:?}\nonly ours: {only_ours:?}"
    );
    assert_eq!(theirs["pids"]["limit"], ours["pids"]["limit"]);
    assert_eq!(
        theirs["memory"]["usage"]["limit"],
        ours["memory"]["usage"]["limit"]
    );
    assert_eq!(theirs["cpuset"], ours["cpuset"]);
}

/// Where runc is, if anywhere (the v2 lane only has it with --copy).
fn runc_or_note(test: &str) -> bool {
    if runc_available() {
        return true;
    }
    note(&format!(
        "{test}: skipped: runc is not installed here (in the v2 lane: tests/v2-lane/run.sh --package oxcart_cgroups --copy /usr/sbin/runc)"
    ));
    false
}

#[test]
fn same_v2_files_as_runc() {
    if !require_pure_v2("same_v2_files_as_runc") || !runc_or_note("same_v2_files_as_runc") {
        return;
    }
    let resources = LinuxResources {
        memory: Some(LinuxMemory {
            limit: Some(96 << 20),
            reservation: Some(48 << 20),
            swap: Some(192 << 20),
            ..Default::default()
        }),
        cpu: Some(LinuxCpu {
            shares: Some(700),
            quota: Some(30000),
            period: Some(60000),
            cpus: Some("0".into()),
            mems: Some("0".into()),
            ..Default::default()
        }),
        pids: Some(LinuxPids { limit: 33 }),
        block_io: Some(LinuxBlockIo {
            weight: Some(300),
            ..Default::default()
        }),
        ..Default::default()
    };
    let runc_path = unique_path("runc-v2");
    let _runc = runc_run("runc-v2-bundle", &runc_path, &resources);
    let g = Guard::new(Manager::new(Some(&unique_path("ours-v2")), "x", false).unwrap());
    g.m.create().unwrap();
    g.m.apply(&resources).unwrap();
    let theirs = Path::new("/sys/fs/cgroup").join(runc_path.trim_start_matches('/'));
    let ours = g.m.unified_path().unwrap();
    let mut files = vec![
        "memory.max",
        "memory.low",
        "cpu.weight",
        "cpu.max",
        "cpuset.cpus",
        "cpuset.mems",
        "pids.max",
        "io.weight",
        "io.bfq.weight",
    ];
    if ours.join("memory.swap.max").exists() {
        files.push("memory.swap.max");
    }
    let mut diffs = Vec::new();
    let mut compared = 0;
    for f in files {
        if !ours.join(f).exists() && !theirs.join(f).exists() {
            continue;
        }
        compared += 1;
        let (a, b) = (read(&theirs, f), read(ours, f));
        if a != b {
            diffs.push(format!("{f}: runc {a:?} vs ours {b:?}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "differences from runc:\n{}",
        diffs.join("\n")
    );
    assert!(compared >= 7, "only {compared} files compared");
}

#[test]
fn v2_device_filter_behaves_like_runcs() {
    if !require_pure_v2("v2_device_filter_behaves_like_runcs")
        || !runc_or_note("v2_device_filter_behaves_like_runcs")
    {
        return;
    }
    let spec_devices = vec![
        LinuxDeviceCgroup {
            allow: false,
            access: Some("rwm".into()),
            ..Default::default()
        },
        LinuxDeviceCgroup {
            allow: false,
            typ: Some("c".into()),
            major: Some(1),
            minor: Some(5),
            access: Some("rw".into()),
        },
        LinuxDeviceCgroup {
            allow: true,
            typ: Some("c".into()),
            major: Some(1),
            minor: Some(1),
            access: Some("r".into()),
        },
    ];
    let resources = LinuxResources {
        devices: spec_devices.clone(),
        ..Default::default()
    };
    // runc appends its defaults after the spec's rules, except a default
    // whose path linux.devices redefines: /dev/zero here, so the spec's
    // deny decides for it while /dev/full keeps its default allow.
    let zero = LinuxDevice {
        path: "/dev/zero".into(),
        typ: "c".into(),
        major: 1,
        minor: 5,
        file_mode: Some(0o666),
        uid: Some(0),
        gid: Some(0),
    };
    let c = runc_run_with_devices(
        "runc-v2-dev",
        &unique_path("runc-v2-dev"),
        &resources,
        std::slice::from_ref(&zero),
    );
    let script = "for d in /dev/null /dev/zero /dev/full /dev/random /dev/tty; do \
        if head -c 1 $d >/dev/null 2>&1; then echo \"$d ok\"; else echo \"$d denied\"; fi; done";
    let theirs = runc(&c, &["exec", &c.id, "sh", "-c", script]);
    let mut g = Guard::new(Manager::new(Some(&unique_path("ours-v2-dev")), "x", false).unwrap());
    g.m.create().unwrap();
    g.m.apply(&LinuxResources {
        devices: oxcart_cgroups::devices::container_device_rules(&spec_devices, &[zero]),
        ..Default::default()
    })
    .unwrap();
    let tmp = tempdir("ours-v2-dev");
    let out = tmp.join("probe");
    g.spawn(&format!("( {script} ) > {}", out.display()));
    g.wait_children();
    let ours = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_dir_all(tmp);
    assert_eq!(ours, theirs);
    assert!(
        theirs.contains("/dev/null ok") && theirs.contains("/dev/zero denied"),
        "{theirs}"
    );
}
