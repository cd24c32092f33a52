//! Resources, devices, rlimits and sysctls from docker's `HostConfig`
//! (moby `daemon/oci_linux.go` WithResources/WithDevices/WithRlimits/WithSysctls), and
//! docker's validation of them (`daemon/daemon_unix.go` verifyPlatformContainerResources).

use super::{NetNs, SpecError};
use crate::types::HostConfig;
use oxcart_spec::{
    Linux, LinuxBlockIo, LinuxCpu, LinuxDevice, LinuxDeviceCgroup, LinuxMemory, LinuxPids,
    LinuxResources, PosixRlimit,
};
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// docker's minimum for `--memory` and `--memory-reservation` (6 MiB since 20.10).
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// True on a pure cgroup v2 host (`/sys/fs/cgroup` is cgroup2fs).
pub(crate) fn unified_cgroup_host() -> bool {
    // SAFETY: statfs with a valid C string and an out-struct we own.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::statfs(c"/sys/fs/cgroup".as_ptr(), &mut st) };
    r == 0 && st.f_type == libc::CGROUP2_SUPER_MAGIC
}

/// docker's default `/dev/shm` size.
pub const DEFAULT_SHM_SIZE: i64 = 64 << 20;

/// What docker's daemon fills in at create (`adaptContainerSettings` and the daemon's
/// defaults), so the record and `inspect` show what the container gets: `/dev/shm`
/// 64 MiB, swap twice the memory limit, a private IPC namespace, the cgroup namespace
/// mode this host defaults to, the json-file log driver.
pub fn apply_daemon_defaults(hc: &mut HostConfig) {
    if hc.shm_size == 0 {
        hc.shm_size = DEFAULT_SHM_SIZE;
    }
    if hc.memory > 0 && hc.memory_swap == 0 {
        hc.memory_swap = hc.memory.saturating_mul(2);
    }
    if hc.ipc_mode.is_empty() {
        hc.ipc_mode = "private".into();
    }
    if hc.cgroupns_mode.is_empty() {
        hc.cgroupns_mode = if unified_cgroup_host() {
            "private"
        } else {
            "host"
        }
        .into();
    }
    if hc.log_config.kind.is_empty() {
        hc.log_config.kind = "json-file".into();
    }
}

/// docker's checks at create, with its messages (and the sysctls' namespaces, as far
/// as `NetworkMode` tells). Also run by [`super::build`].
pub fn validate_host_config(hc: &HostConfig) -> Result<(), SpecError> {
    let net = if hc.network_mode == "host" {
        NetNs::Host
    } else {
        NetNs::New
    };
    sysctls(hc, &net)?;
    let bad = |m: String| Err(SpecError::Resources(m));
    if hc.memory != 0 && hc.memory < MIN_MEMORY {
        return bad("Minimum memory limit allowed is 6MB".into());
    }
    if hc.memory > 0 && hc.memory_swap > 0 && hc.memory_swap < hc.memory {
        return bad(
            "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
        );
    }
    if hc.memory == 0 && hc.memory_swap > 0 {
        return bad(
            "You should always set the Memory limit when using Memoryswap limit, see usage".into(),
        );
    }
    if hc.memory_reservation != 0 && hc.memory_reservation < MIN_MEMORY {
        return bad("Minimum memory reservation allowed is 6MB".into());
    }
    if hc.memory > 0 && hc.memory_reservation > 0 && hc.memory < hc.memory_reservation {
        return bad(
            "Minimum memory limit can not be less than memory reservation limit, see usage".into(),
        );
    }
    if let Some(s) = hc.memory_swappiness {
        if s != -1 && !(0..=100).contains(&s) {
            return bad(format!(
                "Invalid value: {s}, valid memory swappiness range is 0-100"
            ));
        }
    }
    validate_cpu(hc)?;
    if hc.blkio_weight > 0 && !(10..=1000).contains(&hc.blkio_weight) {
        return bad("Range of blkio weight is from 10 to 1000".into());
    }
    if !(-1000..=1000).contains(&hc.oom_score_adj) {
        return bad(format!(
            "Invalid value {}, range for oom score adj is [-1000, 1000]",
            hc.oom_score_adj
        ));
    }
    for rule in hc.device_cgroup_rules.as_deref().unwrap_or_default() {
        parse_cgroup_rule(rule)?;
    }
    super::mounts::validate(hc)
}

fn validate_cpu(hc: &HostConfig) -> Result<(), SpecError> {
    let bad = |m: String| Err(SpecError::Resources(m));
    if hc.nano_cpus > 0 && hc.cpu_period > 0 {
        return bad("Conflicting options: Nano CPUs and CPU Period cannot both be set".into());
    }
    if hc.nano_cpus > 0 && hc.cpu_quota > 0 {
        return bad("Conflicting options: Nano CPUs and CPU Quota cannot both be set".into());
    }
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
    if hc.nano_cpus < 0 || hc.nano_cpus > ncpu * 1_000_000_000 {
        return bad(format!(
            "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        ));
    }
    if hc.cpu_period != 0 && !(1000..=1_000_000).contains(&hc.cpu_period) {
        return bad(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
                .into(),
        );
    }
    if hc.cpu_quota > 0 && hc.cpu_quota < 1000 {
        return bad("CPU cfs quota can not be less than 1ms (i.e. 1000)".into());
    }
    for (val, what) in [(&hc.cpuset_cpus, "cpus"), (&hc.cpuset_mems, "mems")] {
        if !val.is_empty() && !valid_cpuset(val) {
            return bad(format!("Invalid value {val} for cpuset {what}"));
        }
    }
    Ok(())
}

/// `0-3,5`: comma-separated numbers and ascending ranges.
fn valid_cpuset(s: &str) -> bool {
    s.split(',').all(|part| match part.split_once('-') {
        Some((a, b)) => matches!((a.parse::<u32>(), b.parse::<u32>()), (Ok(a), Ok(b)) if a <= b),
        None => part.parse::<u32>().is_ok(),
    })
}

/// `linux.resources` (the devices list is filled by [`devices`]).
pub(crate) fn build(hc: &HostConfig) -> Result<LinuxResources, SpecError> {
    let mut r = LinuxResources::default();
    let swap = if hc.memory > 0 && hc.memory_swap == 0 {
        // docker's default: swap (memory+swap) twice the memory (daemon
        // adaptContainerSettings); podman does the same.
        hc.memory.saturating_mul(2)
    } else {
        hc.memory_swap
    };
    let mem = LinuxMemory {
        limit: (hc.memory != 0).then_some(hc.memory),
        reservation: (hc.memory_reservation != 0).then_some(hc.memory_reservation),
        swap: (swap != 0).then_some(swap),
        swappiness: hc.memory_swappiness.and_then(|s| u64::try_from(s).ok()),
        disable_oom_killer: hc.oom_kill_disable.filter(|d| *d),
        ..Default::default()
    };
    if mem != LinuxMemory::default() {
        r.memory = Some(mem);
    }
    let (mut period, mut quota) = (hc.cpu_period, hc.cpu_quota);
    if hc.nano_cpus > 0 {
        // docker: a 100 ms period and the quota that gives NanoCpus/1e9 CPUs.
        period = 100_000;
        quota = hc.nano_cpus * period / 1_000_000_000;
    }
    let cpu = LinuxCpu {
        shares: u64::try_from(hc.cpu_shares).ok().filter(|s| *s != 0),
        quota: (quota != 0).then_some(quota),
        period: u64::try_from(period).ok().filter(|p| *p != 0),
        cpus: Some(hc.cpuset_cpus.clone()).filter(|s| !s.is_empty()),
        mems: Some(hc.cpuset_mems.clone()).filter(|s| !s.is_empty()),
        ..Default::default()
    };
    if cpu != LinuxCpu::default() {
        r.cpu = Some(cpu);
    }
    if let Some(limit) = hc.pids_limit.filter(|l| *l > 0) {
        r.pids = Some(LinuxPids { limit });
    }
    if hc.blkio_weight > 0 {
        r.block_io = Some(LinuxBlockIo {
            weight: Some(hc.blkio_weight),
            ..Default::default()
        });
    }
    Ok(r)
}

/// `--ulimit` as rlimits (docker sets none by default: the container inherits the
/// runtime's, which podman overrides with nofile/nproc defaults and docker does not).
pub(crate) fn rlimits(hc: &HostConfig) -> Vec<PosixRlimit> {
    hc.ulimits
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|u| PosixRlimit {
            typ: format!("RLIMIT_{}", u.name.to_ascii_uppercase()),
            soft: u64::try_from(u.soft).unwrap_or(u64::MAX),
            hard: u64::try_from(u.hard).unwrap_or(u64::MAX),
        })
        .collect()
}

fn rule(allow: bool, typ: &str, major: Option<i64>, minor: Option<i64>) -> LinuxDeviceCgroup {
    LinuxDeviceCgroup {
        allow,
        typ: Some(typ.to_string()),
        major,
        minor,
        access: Some("rwm".into()),
    }
}

/// docker's default device cgroup list (`oci/defaults.go`): deny all, then zero,
/// null, urandom, random, tty, console; fuse denied. runc adds its own defaults
/// (`c *:* m`, `b *:* m`, pts, ptmx, tun) to whatever the spec lists.
fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    let mut v = vec![LinuxDeviceCgroup {
        allow: false,
        access: Some("rwm".into()),
        ..Default::default()
    }];
    for (maj, min) in [(1, 5), (1, 3), (1, 9), (1, 8), (5, 0), (5, 1)] {
        v.push(rule(true, "c", Some(maj), Some(min)));
    }
    v.push(rule(false, "c", Some(10), Some(229)));
    v
}

/// `linux.devices` and the device cgroup: docker's defaults, `--device`s,
/// `--device-cgroup-rule`s; with `--privileged` every host device and allow-all.
pub(crate) fn devices(hc: &HostConfig, linux: &mut Linux) -> Result<(), SpecError> {
    let res = linux.resources.get_or_insert_with(Default::default);
    if hc.privileged {
        linux.devices = host_devices(Path::new("/dev"), Path::new("/dev"))?;
        res.devices = vec![LinuxDeviceCgroup {
            allow: true,
            access: Some("rwm".into()),
            ..Default::default()
        }];
        return Ok(());
    }
    res.devices = default_device_rules();
    for d in &hc.devices {
        let perms = if d.cgroup_permissions.is_empty() {
            "rwm"
        } else {
            d.cgroup_permissions.as_str()
        };
        let dst = if d.path_in_container.is_empty() {
            &d.path_on_host
        } else {
            &d.path_in_container
        };
        for dev in host_devices(Path::new(&d.path_on_host), Path::new(dst))? {
            res.devices.push(LinuxDeviceCgroup {
                allow: true,
                typ: Some(dev.typ.clone()),
                major: Some(dev.major),
                minor: Some(dev.minor),
                access: Some(perms.to_string()),
            });
            linux.devices.push(dev);
        }
    }
    for r in hc.device_cgroup_rules.as_deref().unwrap_or_default() {
        res.devices.push(parse_cgroup_rule(r)?);
    }
    Ok(())
}

/// The device at `src` (or, for a directory, every device under it) as it will
/// appear at `dst` in the container.
fn host_devices(src: &Path, dst: &Path) -> Result<Vec<LinuxDevice>, SpecError> {
    let err = |msg: String| SpecError::Device {
        path: src.display().to_string(),
        msg,
    };
    let md = std::fs::metadata(src).map_err(|e| err(e.to_string()))?;
    let ft = md.file_type();
    if ft.is_dir() {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(src).map_err(|e| err(e.to_string()))?;
        for e in entries.flatten() {
            let name = e.file_name();
            // docker's HostDevices skips these (mounted, not devices of the host's).
            if src == Path::new("/dev")
                && matches!(
                    name.to_str(),
                    Some("pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev")
                )
            {
                continue;
            }
            // runc's HostDevices skips /dev/console too: the container gets its own.
            if src == Path::new("/dev") && name == "console" {
                continue;
            }
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_symlink() {
                continue;
            }
            if let Ok(mut more) = host_devices(&e.path(), &dst.join(&name)) {
                out.append(&mut more);
            }
        }
        return Ok(out);
    }
    let typ = if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else {
        return Err(err("not a device node".into()));
    };
    let rdev = md.rdev();
    Ok(vec![LinuxDevice {
        path: dst.to_string_lossy().into_owned(),
        typ: typ.into(),
        major: i64::from(libc::major(rdev)),
        minor: i64::from(libc::minor(rdev)),
        file_mode: Some(md.mode() & 0o7777),
        uid: Some(md.uid()),
        gid: Some(md.gid()),
    }])
}

/// `c 1:3 rwm`, `b *:* m`, `a` (docker's `--device-cgroup-rule` syntax).
fn parse_cgroup_rule(r: &str) -> Result<LinuxDeviceCgroup, SpecError> {
    let bad = || SpecError::Resources(format!("invalid device cgroup format '{r}'"));
    let num = |s: &str| -> Result<Option<i64>, SpecError> {
        if s == "*" {
            Ok(None)
        } else {
            s.parse::<i64>().map(Some).map_err(|_| bad())
        }
    };
    let f: Vec<&str> = r.split_whitespace().collect();
    let [typ, nums, access] = f[..] else {
        return Err(bad());
    };
    if !matches!(typ, "a" | "b" | "c")
        || access.is_empty()
        || access.len() > 3
        || !access.chars().all(|c| "rwm".contains(c))
    {
        return Err(bad());
    }
    let (maj, min) = nums.split_once(':').ok_or_else(bad)?;
    Ok(LinuxDeviceCgroup {
        allow: true,
        typ: Some(typ.into()),
        major: num(maj)?,
        minor: num(min)?,
        access: Some(access.into()),
    })
}

/// IPC sysctls the kernel namespaces (docker's `ValidateSysctl` list).
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// `linux.sysctl`: docker's two for a private network namespace (unprivileged ping
/// and low ports, since 20.10), then `--sysctl`s, validated as docker does: only
/// namespaced keys, and none of a namespace shared with the host.
pub(crate) fn sysctls(hc: &HostConfig, net: &NetNs) -> Result<BTreeMap<String, String>, SpecError> {
    let mut out = BTreeMap::new();
    if *net != NetNs::Host {
        // Only where the kernel has them (docker's sysctlExists; port_start is 4.11+).
        for (k, v) in [
            ("net.ipv4.ping_group_range", "0 2147483647"),
            ("net.ipv4.ip_unprivileged_port_start", "0"),
        ] {
            if Path::new("/proc/sys").join(k.replace('.', "/")).exists() {
                out.insert(k.into(), v.into());
            }
        }
    }
    for (k, v) in hc.sysctls.iter().flatten() {
        let bad = |why: &str| Err(SpecError::Sysctl(format!("sysctl '{k}' {why}")));
        if IPC_SYSCTLS.contains(&k.as_str()) || k.starts_with("fs.mqueue.") {
            if hc.ipc_mode == "host" {
                return bad("not allowed in host IPC namespace");
            }
        } else if k.starts_with("net.") {
            if *net == NetNs::Host {
                return bad("not allowed in host network namespace");
            }
        } else if k == "kernel.domainname" || k == "kernel.hostname" {
            if hc.uts_mode == "host" {
                return bad("not allowed in host UTS namespace");
            }
        } else {
            return bad("is not allowed");
        }
        out.insert(k.clone(), v.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_swap_default_and_cpus() {
        let hc = HostConfig {
            memory: 64 << 20,
            nano_cpus: 1_500_000_000,
            pids_limit: Some(100),
            ..Default::default()
        };
        let r = build(&hc).expect("resources");
        let m = r.memory.expect("memory");
        assert_eq!((m.limit, m.swap), (Some(64 << 20), Some(128 << 20)));
        let c = r.cpu.expect("cpu");
        assert_eq!((c.period, c.quota), (Some(100_000), Some(150_000)));
        assert_eq!(r.pids.expect("pids").limit, 100);
    }

    #[test]
    fn docker_validation_messages() {
        let cases: &[(HostConfig, &str)] = &[
            (
                HostConfig {
                    memory: 1 << 20,
                    ..Default::default()
                },
                "Minimum memory limit allowed is 6MB",
            ),
            (
                HostConfig {
                    memory_swap: 64 << 20,
                    ..Default::default()
                },
                "You should always set the Memory limit",
            ),
            (
                HostConfig {
                    memory: 64 << 20,
                    memory_swap: 32 << 20,
                    ..Default::default()
                },
                "Minimum memoryswap limit",
            ),
            (
                HostConfig {
                    memory_swappiness: Some(101),
                    ..Default::default()
                },
                "valid memory swappiness range is 0-100",
            ),
            (
                HostConfig {
                    nano_cpus: 1,
                    cpu_quota: 5000,
                    ..Default::default()
                },
                "Nano CPUs and CPU Quota",
            ),
            (
                HostConfig {
                    cpu_period: 10,
                    ..Default::default()
                },
                "CPU cfs period",
            ),
            (
                HostConfig {
                    blkio_weight: 5,
                    ..Default::default()
                },
                "blkio weight",
            ),
            (
                HostConfig {
                    cpuset_cpus: "3-1".into(),
                    ..Default::default()
                },
                "Invalid value 3-1 for cpuset cpus",
            ),
            (
                HostConfig {
                    oom_score_adj: 1001,
                    ..Default::default()
                },
                "range for oom score adj",
            ),
            (
                HostConfig {
                    device_cgroup_rules: Some(vec!["x 1:2 rwm".into()]),
                    ..Default::default()
                },
                "invalid device cgroup format 'x 1:2 rwm'",
            ),
        ];
        for (hc, want) in cases {
            let e = validate_host_config(hc).expect_err(want).to_string();
            assert!(e.contains(want), "{e:?} lacks {want:?}");
        }
    }

    #[test]
    fn sysctl_rules() {
        let mut hc = HostConfig {
            sysctls: Some([("net.core.somaxconn".to_string(), "1024".to_string())].into()),
            ..Default::default()
        };
        let s = sysctls(&hc, &NetNs::New).expect("sysctls");
        assert_eq!(s["net.core.somaxconn"], "1024");
        assert_eq!(s["net.ipv4.ip_unprivileged_port_start"], "0");
        let e = sysctls(&hc, &NetNs::Host).expect_err("host net");
        assert!(e.to_string().contains("host network namespace"), "{e}");
        hc.sysctls = Some([("vm.swappiness".to_string(), "1".to_string())].into());
        let e = sysctls(&hc, &NetNs::New).expect_err("not namespaced");
        assert_eq!(e.to_string(), "sysctl 'vm.swappiness' is not allowed");
    }

    #[test]
    fn cgroup_rules_and_devices() {
        let r = parse_cgroup_rule("c 13:* rwm").expect("rule");
        assert_eq!((r.major, r.minor), (Some(13), None));
        let hc = HostConfig {
            devices: vec![crate::types::DeviceMapping {
                path_on_host: "/dev/null".into(),
                path_in_container: "/dev/mynull".into(),
                cgroup_permissions: "rw".into(),
            }],
            ..Default::default()
        };
        let mut linux = Linux::default();
        devices(&hc, &mut linux).expect("devices");
        assert_eq!(linux.devices[0].path, "/dev/mynull");
        assert_eq!((linux.devices[0].major, linux.devices[0].minor), (1, 3));
        let last = linux.resources.expect("res").devices.pop().expect("rule");
        assert_eq!(last.access.as_deref(), Some("rw"));
        let hc = HostConfig {
            devices: vec![crate::types::DeviceMapping {
                path_on_host: "/dev/nonexistent-x".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let e = devices(&hc, &mut Linux::default()).expect_err("missing");
        assert!(e.to_string().starts_with("error gathering device information while adding custom device \"/dev/nonexistent-x\""), "{e}");
    }
}
