//! `features` claims only what works: each claimed item is exercised here.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use serde_json::{json, Value};

#[test]
fn features_claims_are_true() {
    let o = std::process::Command::new(oxcart())
        .arg("features")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let f: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["ociVersionMax"].as_str().unwrap().starts_with("1."));
    assert_eq!(
        f["linux"]["cgroup"]["systemd"], false,
        "no systemd driver yet"
    );
    // Idmapped mounts work on this project's kernels (>= 5.12; tests/idmap.rs), and
    // the options are listed with them.
    assert_eq!(f["linux"]["mountExtensions"]["idmap"]["enabled"], true);
    let opts: Vec<String> = serde_json::from_value(f["mountOptions"].clone()).unwrap();
    assert!(opts.iter().any(|o| o == "idmap") && opts.iter().any(|o| o == "ridmap"));
    let caps: Vec<String> = serde_json::from_value(f["linux"]["capabilities"].clone()).unwrap();
    assert!(caps.contains(&"CAP_SYS_ADMIN".to_string()));
    let namespaces: Vec<String> = serde_json::from_value(f["linux"]["namespaces"].clone()).unwrap();
    assert_eq!(namespaces.len(), 8);

    // Every claimed capability and every claimed seccomp action is accepted by create.
    let rt = Runtime::oxcart();
    let mut b = Bundle::new(&["true"]);
    b.config["process"]["capabilities"]["bounding"] = json!(caps);
    let actions: Vec<String> =
        serde_json::from_value(f["linux"]["seccomp"]["actions"].clone()).unwrap();
    let syscalls: Vec<Value> = actions
        .iter()
        .filter(|a| *a != "SCMP_ACT_NOTIFY" && *a != "SCMP_ACT_ALLOW")
        .enumerate()
        // Syscalls a busybox `true` never makes.
        .map(|(i, a)| {
            let names = [
                "acct",
                "swapon",
                "swapoff",
                "kexec_load",
                "reboot",
                "pivot_root",
                "syslog",
            ];
            json!({"names": [names[i % names.len()]], "action": a})
        })
        .collect();
    b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls});
    b.write();
    let (code, _, err) = rt.run_bundle(&b);
    assert_eq!(code, 0, "{err}");
}
