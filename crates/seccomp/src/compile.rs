//! Profile → classic BPF, through libseccomp, plus runc's ENOSYS stub.

use crate::bpf::{self, ArchMax, SockFilter};
use crate::libseccomp::{self, ScmpArgCmp};
use crate::profile::{self, Action, Arch, Profile, FIELD};
use crate::SeccompError;

/// The compiled program and what compiling learnt.
pub(crate) struct Compiled {
    pub program: Vec<SockFilter>,
    /// Syscall names libseccomp does not know (skipped, as runc does).
    pub skipped: Vec<String>,
}

fn lib_err(field: impl Into<String>, msg: String) -> SeccompError {
    SeccompError::Compile {
        field: field.into(),
        msg,
    }
}

/// The arches the filter covers: the profile's, plus the native one (seccomp_init
/// always includes it).
fn filter_arches(p: &Profile) -> Vec<Arch> {
    let mut v: Vec<Arch> = Vec::with_capacity(p.arches.len() + 1);
    for a in p.arches.iter().copied().chain(profile::native_arch()) {
        if !v.contains(&a) {
            v.push(a);
        }
    }
    v
}

pub(crate) fn compile(p: &Profile) -> Result<Compiled, SeccompError> {
    // build.rs checks the system's libseccomp through pkg-config; this is the check of
    // the archive actually linked, whatever directory it came from.
    let (maj, min, mic) = libseccomp::version();
    if (maj, min) < (2, 5) {
        return Err(lib_err(
            FIELD,
            format!("libseccomp {maj}.{min}.{mic} is linked: SCMP_ACT_NOTIFY and the runtime-spec actions need >= 2.5"),
        ));
    }
    if p.uses_notify {
        // libseccomp refuses SCMP_ACT_NOTIFY below API level 5 (kernel without
        // SECCOMP_RET_USER_NOTIF); say so plainly instead of an EINVAL per rule.
        let level = libseccomp::api_level();
        if level < 5 {
            return Err(lib_err(
                FIELD,
                format!("SCMP_ACT_NOTIFY needs libseccomp API level 5 (kernel >= 5.0); this host has level {level}"),
            ));
        }
    }

    // The stub dispatches on the AUDIT_ARCH values of our arch table; make sure our
    // idea of the native arch is libseccomp's.
    let native = libseccomp::native_token();
    if profile::native_arch().map(|a| a.token) != Some(native) {
        return Err(lib_err(
            FIELD,
            format!("libseccomp's native arch {native:#x} is not this build's target arch"),
        ));
    }

    let default = p.default_action.ret();
    let mut f = libseccomp::Filter::new(default)?;
    // We export the program and load it ourselves; libseccomp must not touch
    // no_new_privs (the caller owns that decision, runtime-spec `noNewPrivileges`).
    f.attr_set(libseccomp::ATTR_CTL_NNP, 0)
        .map_err(|e| lib_err(FIELD, format!("seccomp_attr_set(CTL_NNP): {e}")))?;
    for (i, a) in p.arches.iter().enumerate() {
        f.arch_add(a.token).map_err(|e| {
            lib_err(
                format!("{FIELD}.architectures[{i}]"),
                format!("libseccomp cannot add {}: {e}", a.name),
            )
        })?;
    }
    // runc: binary-tree dispatch for longer rulesets (libseccomp <= 2.5.4 misbehaves
    // with the optimisation and zero rules, hence the threshold). Faster syscalls in
    // the container for the same semantics; an old libseccomp without it is fine.
    if p.entries.iter().map(|e| e.names.len()).sum::<usize>() > 32 {
        let _ = f.attr_set(libseccomp::ATTR_CTL_OPTIMIZE, 2);
    }

    let mut skipped = Vec::new();
    for e in &p.entries {
        let act = e.action.ret();
        // libseccomp rejects a rule whose action equals the default; it would be a
        // no-op anyway (runc skips it the same way).
        if act == default {
            continue;
        }
        let conds: Vec<ScmpArgCmp> = e
            .args
            .iter()
            .map(|a| ScmpArgCmp {
                arg: a.index,
                op: a.op as u32,
                datum_a: a.value,
                datum_b: a.value_two,
            })
            .collect();
        // runc: if two conditions test the same argument, libseccomp cannot AND them
        // in one rule (it errors); runc then adds each condition as its own rule (OR).
        let mut seen = [0u8; 6];
        for c in &conds {
            seen[c.arg as usize] += 1;
        }
        let split = seen.iter().any(|&n| n > 1);
        for (j, name) in e.names.iter().enumerate() {
            let Some(nr) = libseccomp::resolve(name) else {
                // runc: "unknown seccomp syscall %q ignored" (debug level): a profile
                // may name syscalls newer than this build's tables (or of another
                // arch). The default action applies to them;
                // `Filter::skipped_syscalls` lists them.
                skipped.push(name.clone());
                continue;
            };
            let add = |f: &mut libseccomp::Filter, c: &[ScmpArgCmp]| {
                f.rule_add(act, nr, c).map_err(|err| {
                    lib_err(
                        e.field(j),
                        format!("libseccomp cannot add a rule for {name:?}: {err}"),
                    )
                })
            };
            if split {
                for c in &conds {
                    add(&mut f, std::slice::from_ref(c))?;
                }
            } else {
                add(&mut f, &conds)?;
            }
        }
    }

    let bytes = f
        .export_bpf()
        .map_err(|e| lib_err(FIELD, format!("seccomp_export_bpf: {e}")))?;
    let sz = std::mem::size_of::<SockFilter>();
    if bytes.is_empty() || bytes.len() % sz != 0 {
        return Err(lib_err(
            FIELD,
            format!(
                "seccomp_export_bpf produced {} bytes, not a whole program",
                bytes.len()
            ),
        ));
    }
    let body: Vec<SockFilter> = bytes
        .chunks_exact(sz)
        .map(|c| SockFilter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    // The stub leaves the accumulator dirty; libseccomp's program begins by loading
    // seccomp_data.arch. Refuse to patch anything else.
    if body[0].code != bpf::LD_W_ABS {
        return Err(lib_err(
            FIELD,
            "libseccomp's program does not start with a load; cannot prepend the ENOSYS stub"
                .into(),
        ));
    }

    let mut program = stub(p)?;
    program.extend(body);
    if program.len() > bpf::MAX_INSNS {
        return Err(lib_err(
            FIELD,
            format!(
                "the filter needs {} BPF instructions; the kernel allows {}",
                program.len(),
                bpf::MAX_INSNS
            ),
        ));
    }
    Ok(Compiled { program, skipped })
}

/// runc `patchbpf.generatePatch`: no stub behind a permissive default (ALLOW, LOG,
/// TRACE) or when the default already returns ENOSYS.
fn stub(p: &Profile) -> Result<Vec<SockFilter>, SeccompError> {
    if p.default_action.is_permissive() || p.default_action == Action::Errno(libc::ENOSYS as u16) {
        return Ok(Vec::new());
    }
    let mut per_audit: Vec<(u32, ArchMax)> = Vec::new();
    for a in filter_arches(p) {
        let mut max: Option<u32> = None;
        for name in p.entries.iter().flat_map(|e| e.names) {
            if let Some(n) = libseccomp::resolve_arch(a.token, name) {
                // Negative numbers are libseccomp pseudo-syscalls (not on this arch).
                if n > 0 {
                    max = Some(max.map_or(n as u32, |m| m.max(n as u32)));
                }
            }
        }
        // No syscall of the profile exists on this arch: runc leaves it to the filter.
        let Some(max) = max else { continue };
        let is_x86_64 = a.name == "SCMP_ARCH_X86_64";
        let is_x32 = a.name == "SCMP_ARCH_X32";
        if is_x86_64 || is_x32 {
            let slot = match per_audit.iter_mut().find(|(au, _)| *au == a.audit) {
                Some(s) => s,
                None => {
                    per_audit.push((
                        a.audit,
                        ArchMax::X86_64 {
                            x86_64: None,
                            x32: None,
                        },
                    ));
                    let last = per_audit.len() - 1;
                    &mut per_audit[last]
                }
            };
            if let ArchMax::X86_64 { x86_64, x32 } = &mut slot.1 {
                if is_x86_64 {
                    *x86_64 = Some(max);
                } else {
                    // libseccomp's x32 numbers already carry __X32_SYSCALL_BIT; make
                    // sure, since the stub compares the raw seccomp_data.nr.
                    *x32 = Some(max | bpf::X32_SYSCALL_BIT);
                }
            }
        } else {
            let s390 = matches!(a.name, "SCMP_ARCH_S390" | "SCMP_ARCH_S390X");
            per_audit.push((a.audit, ArchMax::Single { max, s390 }));
        }
    }
    Ok(bpf::enosys_stub(
        &per_audit,
        Action::Errno(libc::ENOSYS as u16).ret(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::run;
    use oxcart_spec::{LinuxSeccomp, LinuxSyscall};

    const X86_64: u32 = 0xC000_003E;
    const I386: u32 = 0x4000_0003;
    const X32_BIT: u32 = bpf::X32_SYSCALL_BIT;

    fn program(p: &LinuxSeccomp) -> Vec<SockFilter> {
        compile(&profile::validate(p).unwrap()).unwrap().program
    }

    /// seccomp_data for (nr, arch) with zero args, as 16 u32 words.
    fn data(nr: u32, arch: u32) -> [u32; 16] {
        let mut d = [0u32; 16];
        d[0] = nr;
        d[1] = arch;
        d
    }

    #[test]
    fn x32_abi_through_the_whole_program() {
        // The kernel here lacks CONFIG_X86_X32_ABI, so run the program in the
        // interpreter: libseccomp's rules and the stub must agree on x32 numbering.
        let mut p = LinuxSeccomp {
            default_action: "SCMP_ACT_ERRNO".into(),
            architectures: vec![
                "SCMP_ARCH_X86_64".into(),
                "SCMP_ARCH_X86".into(),
                "SCMP_ARCH_X32".into(),
            ],
            syscalls: vec![
                LinuxSyscall {
                    names: vec!["read".into(), "getrandom".into()],
                    action: "SCMP_ACT_ALLOW".into(),
                    ..Default::default()
                },
                LinuxSyscall {
                    names: vec!["kexec_load".into()],
                    action: "SCMP_ACT_ERRNO".into(),
                    errno_ret: Some(13),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let prog = program(&p);
        let allow = ret_allow();
        let eperm = 0x0005_0000 | libc::EPERM as u32;
        let enosys = 0x0005_0000 | libc::ENOSYS as u32;
        let eacces = 0x0005_0000 | 13;
        let x32 = |name: &str| libseccomp::resolve_arch(0x4000_003E, name).unwrap() as u32;
        assert_eq!(
            x32("read") & X32_BIT,
            X32_BIT,
            "libseccomp numbers x32 with the x32 bit"
        );
        assert_eq!(run(&prog, &data(x32("read"), X86_64)), allow);
        assert_eq!(run(&prog, &data(x32("getrandom"), X86_64)), allow);
        assert_eq!(run(&prog, &data(x32("kexec_load"), X86_64)), eacces);
        assert_eq!(run(&prog, &data(x32("getpid"), X86_64)), eperm);
        // x32's largest listed number is kexec_load (an x32-specific entry, 528), so
        // getrandom + 1 is below it (default action) and 529 is beyond (ENOSYS).
        assert_eq!(run(&prog, &data(x32("getrandom") + 1, X86_64)), eperm);
        assert_eq!(run(&prog, &data(x32("kexec_load") + 1, X86_64)), enosys);
        // x86_64 and i386 alongside.
        assert_eq!(run(&prog, &data(0, X86_64)), allow);
        assert_eq!(run(&prog, &data(318 + 1, X86_64)), enosys);
        assert_eq!(run(&prog, &data(39, X86_64)), eperm);
        assert_eq!(run(&prog, &data(3, I386)), allow);
        assert_eq!(run(&prog, &data(20, I386)), eperm);
        assert_eq!(run(&prog, &data(1000, I386)), enosys);
        // An arch outside the filter: libseccomp's bad-arch action (KILL).
        assert_eq!(run(&prog, &data(0, 0xC000_00B7)), 0);

        // Without x32 in the filter, x32 syscalls are a bad arch... for libseccomp's
        // x86_64 filter they are simply not x86_64 syscalls: whatever libseccomp
        // decides, the stub must not turn them into ENOSYS.
        p.architectures.pop();
        let prog = program(&p);
        let r = run(&prog, &data(x32("kexec_load") + 1, X86_64));
        assert_ne!(r, enosys);
    }

    #[test]
    fn every_arch_name_is_a_libseccomp_arch() {
        // libseccomp's arch tokens are the kernel's AUDIT_ARCH values (x32 aside), so
        // seccomp_arch_add accepting our token checks our table. libseccomp refuses to
        // mix endiannesses in one filter (the native arch is always in it): those
        // must fail with an error naming the entry.
        for a in profile::ARCHES {
            let p = LinuxSeccomp {
                default_action: "SCMP_ACT_ERRNO".into(),
                architectures: vec![a.name.into()],
                syscalls: vec![LinuxSyscall {
                    names: vec!["read".into()],
                    action: "SCMP_ACT_ALLOW".into(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            let little = a.token & 0x4000_0000 != 0;
            match compile(&profile::validate(&p).unwrap()) {
                Ok(_) => assert!(little, "{}: big-endian arch accepted", a.name),
                Err(e) => {
                    assert!(!little, "{}: {e}", a.name);
                    assert!(
                        e.to_string()
                            .starts_with("linux.seccomp.architectures[0]: "),
                        "{e}"
                    );
                }
            }
        }
    }

    #[test]
    fn arch_errors_keep_the_profile_index_despite_repeats() {
        let p = LinuxSeccomp {
            default_action: "SCMP_ACT_ERRNO".into(),
            architectures: vec![
                "SCMP_ARCH_X86_64".into(),
                "SCMP_ARCH_X86_64".into(),
                "SCMP_ARCH_S390X".into(),
            ],
            ..Default::default()
        };
        let e = compile(&profile::validate(&p).unwrap()).err().unwrap();
        assert!(
            e.to_string().starts_with(
                "linux.seccomp.architectures[2]: libseccomp cannot add SCMP_ARCH_S390X"
            ),
            "{e}"
        );
    }

    fn ret_allow() -> u32 {
        0x7fff_0000
    }
}
