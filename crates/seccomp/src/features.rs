//! What this build supports, for `oxcart-runtime features` (runtime-spec
//! `features-linux.md` "Seccomp"; runc prints the same object).

use crate::profile::{filter_flag, ARCHES};
use serde::Serialize;

/// Every `SCMP_ACT_*` name validation accepts.
pub const ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

/// Every `SCMP_CMP_*` name validation accepts.
pub const OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

/// Every `flags` entry validation accepts.
pub const FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// runtime-spec `features-linux.md` `linux.seccomp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompFeatures {
    pub enabled: bool,
    pub actions: Vec<String>,
    pub operators: Vec<String>,
    pub archs: Vec<String>,
    pub known_flags: Vec<String>,
    /// The known flags this kernel accepts (probed).
    pub supported_flags: Vec<String>,
}

/// The features object. Probes the kernel for flags (a few failing seccomp(2) calls);
/// does not call libseccomp (see [`libseccomp_version`] for runc's
/// `io.github.seccomp.libseccomp.version` annotation).
pub fn features() -> SeccompFeatures {
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let supported_flags = FLAGS
        .iter()
        .filter(|name| {
            let f = match **name {
                "SECCOMP_FILTER_FLAG_TSYNC" => filter_flag::TSYNC,
                "SECCOMP_FILTER_FLAG_LOG" => filter_flag::LOG,
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => filter_flag::SPEC_ALLOW,
                // The kernel accepts it only alongside NEW_LISTENER.
                _ => filter_flag::WAIT_KILLABLE_RECV | filter_flag::NEW_LISTENER,
            };
            crate::kernel::flags_supported(f)
        })
        .map(|s| s.to_string())
        .collect();
    SeccompFeatures {
        enabled: true,
        actions: owned(ACTIONS),
        operators: owned(OPERATORS),
        archs: ARCHES.iter().map(|a| a.name.to_string()).collect(),
        known_flags: owned(FLAGS),
        supported_flags,
    }
}

/// `major.minor.micro` of the libseccomp that compiles filters (linked in).
pub fn libseccomp_version() -> String {
    let (a, b, c) = crate::libseccomp::version();
    format!("{a}.{b}.{c}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::validate;
    use oxcart_spec::{LinuxSeccomp, LinuxSeccompArg, LinuxSyscall};

    #[test]
    fn every_listed_name_validates() {
        for a in ACTIONS {
            let p = LinuxSeccomp {
                default_action: "SCMP_ACT_ALLOW".into(),
                listener_path: Some("/x".into()),
                syscalls: vec![LinuxSyscall {
                    names: vec!["getpid".into()],
                    action: a.to_string(),
                    args: OPERATORS
                        .iter()
                        .enumerate()
                        .map(|(i, op)| LinuxSeccompArg {
                            index: (i % 6) as u32,
                            value: 1,
                            value_two: 1,
                            op: op.to_string(),
                        })
                        .collect(),
                    ..Default::default()
                }],
                flags: FLAGS.iter().map(|s| s.to_string()).collect(),
                architectures: ARCHES.iter().map(|a| a.name.to_string()).collect(),
                ..Default::default()
            };
            validate(&p).unwrap();
        }
        let f = features();
        // Linux >= 5.19 accepts all four.
        assert_eq!(f.supported_flags, f.known_flags);
        let v = serde_json::to_value(&f).unwrap();
        assert!(v["knownFlags"].is_array() && v["supportedFlags"].is_array());
        assert_eq!(libseccomp_version().split('.').count(), 3);
    }
}
