//! `features` (runtime-spec features.md / features-linux.md): what this build on this
//! host really supports. Nothing is claimed that is not implemented: systemd cgroups
//! and Intel RDT are reported as unavailable; AppArmor as supported (a property of
//! the runtime, per features-linux.md, not of the host); SELinux only where
//! the host has it with a policy loaded (labels are applied there); idmapped mounts
//! only where the kernel has mount_setattr(2).

use oxcart_container::{caps, idmap, rootfs};
use serde_json::{json, Value};

pub fn features() -> Value {
    let last = caps::last_cap() as usize;
    let capabilities: Vec<&str> = caps::CAP_NAMES.iter().take(last + 1).copied().collect();
    let mut mount_options: Vec<&str> = rootfs::KNOWN_OPTIONS.to_vec();
    // Idmapped bind mounts need mount_setattr(2) (Linux 5.12); probed on this kernel.
    let idmap = idmap::supported();
    if idmap {
        mount_options.extend(["idmap", "ridmap"]);
    }
    mount_options.sort_unstable();
    // libseccomp is linked in (static), so seccomp is always available.
    let seccomp = serde_json::to_value(oxcart_seccomp::features()).unwrap_or(Value::Null);
    let mut annotations = serde_json::Map::new();
    // features.md lets a runtime report the runc version it is most compatible with.
    annotations.insert("org.opencontainers.runc.version".into(), json!("1.1.5"));
    annotations.insert(
        "org.opencontainers.runc.checkpoint.enabled".into(),
        json!("false"),
    );
    annotations.insert(
        "io.github.oxcart.version".into(),
        json!(env!("CARGO_PKG_VERSION")),
    );
    annotations.insert(
        "io.github.seccomp.libseccomp.version".into(),
        json!(oxcart_seccomp::libseccomp_version()),
    );
    json!({
        "ociVersionMin": oxcart_spec::OCI_VERSION_MIN,
        "ociVersionMax": oxcart_spec::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mount_options,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": capabilities,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": true},
            "seccomp": seccomp,
            // features-linux.md: whether the runtime supports AppArmor, "irrelevant to
            // the availability of AppArmor on the host" (runc reports true). Profiles
            // are applied where the host has it, and refused where it has not.
            "apparmor": {"enabled": true},
            // The same rule (features-linux.md, "selinux"): the runtime's support,
            // whatever the host. Labels are applied where the host has SELinux, and a
            // process label is refused where it has not.
            "selinux": {"enabled": true},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": idmap}},
        },
        "annotations": annotations,
        "potentiallyUnsafeConfigAnnotations": ["bundle", "org.systemd.property.", "org.criu.config"],
    })
}
