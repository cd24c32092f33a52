//! The container's seccomp filter: docker's rules (`profiles/seccomp` setupSeccomp)
//! applied to a docker/podman-format profile — podman's default at
//! `/usr/share/containers/seccomp.json`, or the user's `--security-opt seccomp=…` —
//! keeping the rules whose `includes`/`excludes` (capabilities, architectures,
//! minimum kernel) fit this container on this host.

use super::{SecurityOpts, SpecError, SpecInput, DEFAULT_SECCOMP_PROFILE};
use oxcart_spec::{LinuxSeccomp, LinuxSeccompArg, LinuxSyscall};
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    listener_path: Option<String>,
    #[serde(default)]
    listener_metadata: Option<String>,
    #[serde(default)]
    syscalls: Vec<Syscall>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Syscall {
    #[serde(default)]
    name: String,
    #[serde(default)]
    names: Vec<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<LinuxSeccompArg>>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// `linux.seccomp`: none for `--privileged` and `seccomp=unconfined`.
pub(crate) fn for_container(
    input: &SpecInput<'_>,
    sec: &SecurityOpts,
    caps: &[String],
) -> Result<Option<LinuxSeccomp>, SpecError> {
    if input.host_config.privileged || sec.seccomp_unconfined {
        return Ok(None);
    }
    let (name, text) = match &sec.seccomp_profile {
        Some(json) => ("--security-opt seccomp".to_string(), json.clone()),
        None => {
            let p = input
                .seccomp_profile
                .unwrap_or(Path::new(DEFAULT_SECCOMP_PROFILE));
            let text = std::fs::read_to_string(p).map_err(|e| SpecError::Seccomp {
                path: p.display().to_string(),
                msg: e.to_string(),
            })?;
            (p.display().to_string(), text)
        }
    };
    let err = |msg: String| SpecError::Seccomp {
        path: name.clone(),
        msg,
    };
    let profile: Profile = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
    evaluate(profile, caps, Host::current())
        .map(Some)
        .map_err(err)
}

/// What a profile's conditions are checked against.
#[derive(Clone, Copy)]
struct Host {
    /// Go's name (`amd64`), which profiles' `arches` use.
    go_arch: &'static str,
    /// libseccomp's (`SCMP_ARCH_X86_64`), which `archMap` uses.
    native: &'static str,
    kernel: (u32, u32),
}

impl Host {
    fn current() -> Host {
        let (go_arch, native) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", "SCMP_ARCH_X86_64"),
            "aarch64" => ("arm64", "SCMP_ARCH_AARCH64"),
            "x86" => ("386", "SCMP_ARCH_X86"),
            "arm" => ("arm", "SCMP_ARCH_ARM"),
            "powerpc64" => ("ppc64le", "SCMP_ARCH_PPC64LE"),
            "s390x" => ("s390x", "SCMP_ARCH_S390X"),
            "riscv64" => ("riscv64", "SCMP_ARCH_RISCV64"),
            "mips64" => ("mips64le", "SCMP_ARCH_MIPSEL64"),
            other => (other, "SCMP_ARCH_NATIVE"),
        };
        Host {
            go_arch,
            native,
            kernel: kernel_version(),
        }
    }
}

fn kernel_version() -> (u32, u32) {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    parse_version(rel.trim()).unwrap_or((0, 0))
}

/// `5.8` / `6.18.44-fc` → (major, minor).
fn parse_version(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(['.', '-']);
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

fn evaluate(p: Profile, caps: &[String], host: Host) -> Result<LinuxSeccomp, String> {
    if !p.architectures.is_empty() && !p.arch_map.is_empty() {
        return Err("'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'".into());
    }
    let mut architectures = p.architectures;
    for a in p.arch_map.iter().filter(|a| a.architecture == host.native) {
        architectures.push(a.architecture.clone());
        architectures.extend(a.sub_architectures.iter().cloned());
    }
    let mut syscalls = Vec::new();
    for call in p.syscalls {
        if !call.name.is_empty() && !call.names.is_empty() {
            return Err("'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'".into());
        }
        if call.excludes.min_kernel.is_some() {
            return Err("minKernel is not supported in excludes".into());
        }
        if !applies(&call.includes, &call.excludes, caps, host)? {
            continue;
        }
        let names = if call.name.is_empty() {
            call.names
        } else {
            vec![call.name]
        };
        syscalls.push(LinuxSyscall {
            names,
            action: call.action,
            errno_ret: call.errno_ret,
            args: call.args.unwrap_or_default(),
        });
    }
    Ok(LinuxSeccomp {
        default_action: p.default_action,
        default_errno_ret: p.default_errno_ret,
        architectures,
        flags: p.flags,
        listener_path: p.listener_path,
        listener_metadata: p.listener_metadata,
        syscalls,
    })
}

/// docker: every included capability present, the host's arch among the included
/// ones (if any), the kernel new enough; no excluded capability or arch.
fn applies(inc: &Filter, exc: &Filter, caps: &[String], host: Host) -> Result<bool, String> {
    let has = |c: &String| caps.contains(c);
    if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == host.go_arch) {
        return Ok(false);
    }
    if !inc.caps.iter().all(has) {
        return Ok(false);
    }
    if let Some(min) = &inc.min_kernel {
        let want = parse_version(min).ok_or_else(|| format!("invalid minKernel {min:?}"))?;
        if host.kernel < want {
            return Ok(false);
        }
    }
    if exc.arches.iter().any(|a| a == host.go_arch) || exc.caps.iter().any(has) {
        return Ok(false);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: Host = Host {
        go_arch: "amd64",
        native: "SCMP_ARCH_X86_64",
        kernel: (5, 10),
    };

    fn profile() -> Profile {
        serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,
            "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]},
                       {"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]}],
            "syscalls":[
              {"names":["read"],"action":"SCMP_ACT_ALLOW"},
              {"names":["arch_prctl"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["amd64"]}},
              {"names":["breakpoint"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["arm64"]}},
              {"names":["bpf"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
              {"names":["bpf"],"action":"SCMP_ACT_ERRNO","errnoRet":1,"excludes":{"caps":["CAP_SYS_ADMIN"]}},
              {"names":["new"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"5.11"}}
            ]}"#,
        )
        .expect("profile")
    }

    #[test]
    fn includes_and_excludes() {
        let s = evaluate(profile(), &[], HOST).expect("eval");
        assert_eq!(s.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
        let names: Vec<_> = s
            .syscalls
            .iter()
            .map(|c| (c.names[0].as_str(), c.action.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("read", "SCMP_ACT_ALLOW"),
                ("arch_prctl", "SCMP_ACT_ALLOW"),
                ("bpf", "SCMP_ACT_ERRNO")
            ]
        );
        let s = evaluate(profile(), &["CAP_SYS_ADMIN".into()], HOST).expect("eval");
        assert!(s
            .syscalls
            .iter()
            .any(|c| c.names[0] == "bpf" && c.action == "SCMP_ACT_ALLOW"));
        assert!(!s
            .syscalls
            .iter()
            .any(|c| c.names[0] == "bpf" && c.action == "SCMP_ACT_ERRNO"));
        let newer = Host {
            kernel: (6, 1),
            ..HOST
        };
        assert!(evaluate(profile(), &[], newer)
            .expect("eval")
            .syscalls
            .iter()
            .any(|c| c.names[0] == "new"));
    }
}
