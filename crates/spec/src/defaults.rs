//! The config `spec` writes: runc's default (libcontainer/specconv Example), so a
//! bundle made by either runtime runs the same way under both.

use crate::config::Spec;
use crate::IdMapping;

const EXAMPLE: &str = r#"{
  "ociVersion": "1.2.0",
  "process": {
    "terminal": true,
    "user": {"uid": 0, "gid": 0},
    "args": ["sh"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "oxcart",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
  ],
  "linux": {
    "resources": {"devices": [{"allow": false, "access": "rwm"}]},
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
    "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}"#;

/// runc's example config; with `rootless`, runc's ToRootless transformation for the
/// given host uid/gid (no network namespace, a user namespace mapping that one id,
/// /sys bound from the host, no gid= on devpts, no cgroup resources).
pub fn example(rootless: Option<(u32, u32)>) -> Spec {
    // The literal above is fixed and tested below.
    let mut s: Spec = serde_json::from_str(EXAMPLE).unwrap_or_default();
    if let Some((uid, gid)) = rootless {
        if let Some(l) = s.linux.as_mut() {
            l.namespaces
                .retain(|n| n.typ != "network" && n.typ != "user");
            l.namespaces.push(crate::LinuxNamespace {
                typ: "user".into(),
                path: None,
            });
            l.uid_mappings = vec![IdMapping {
                container_id: 0,
                host_id: uid,
                size: 1,
            }];
            l.gid_mappings = vec![IdMapping {
                container_id: 0,
                host_id: gid,
                size: 1,
            }];
            l.resources = None;
        }
        for m in s.mounts.iter_mut() {
            if m.destination == "/sys" {
                m.typ = Some("none".into());
                m.source = Some("/sys".into());
                m.options = ["rbind", "nosuid", "noexec", "nodev", "ro"]
                    .map(String::from)
                    .to_vec();
            }
            m.options.retain(|o| !o.starts_with("gid="));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn example_parses_and_validates() {
        let s: crate::Spec = serde_json::from_str(super::EXAMPLE).unwrap();
        crate::validate::validate_spec(&s).unwrap();
        let r = super::example(Some((1000, 1000)));
        let l = r.linux.unwrap();
        assert!(l.namespaces.iter().any(|n| n.typ == "user"));
        assert!(!l.namespaces.iter().any(|n| n.typ == "network"));
        assert_eq!(l.uid_mappings[0].host_id, 1000);
    }
}
