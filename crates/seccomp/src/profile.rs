//! Validation of a runtime-spec seccomp profile (`config-linux.md` "Seccomp") into typed
//! actions, operators, architectures and flags.
//!
//! This is pure Rust and runs on every `compile`, cache hit or not, so a malformed
//! profile is always rejected with an error naming the JSON path of the bad entry
//! (`linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO"`).

use crate::SeccompError;
use oxcart_spec::LinuxSeccomp;

/// JSON path prefix used in error messages.
pub(crate) const FIELD: &str = "linux.seccomp";

/// `SECCOMP_RET_*` values (linux/seccomp.h). libseccomp's `SCMP_ACT_*` are the same numbers.
pub(crate) mod ret {
    pub const KILL_PROCESS: u32 = 0x8000_0000;
    pub const KILL_THREAD: u32 = 0x0000_0000;
    pub const TRAP: u32 = 0x0003_0000;
    pub const ERRNO: u32 = 0x0005_0000;
    pub const USER_NOTIF: u32 = 0x7fc0_0000;
    pub const TRACE: u32 = 0x7ff0_0000;
    pub const LOG: u32 = 0x7ffc_0000;
    pub const ALLOW: u32 = 0x7fff_0000;
}

/// `SECCOMP_FILTER_FLAG_*` (linux/seccomp.h).
pub mod filter_flag {
    pub const TSYNC: u32 = 1 << 0;
    pub const LOG: u32 = 1 << 1;
    pub const SPEC_ALLOW: u32 = 1 << 2;
    pub const NEW_LISTENER: u32 = 1 << 3;
    pub const TSYNC_ESRCH: u32 = 1 << 4;
    pub const WAIT_KILLABLE_RECV: u32 = 1 << 5;
}

/// The largest errno the kernel returns as-is: `SECCOMP_RET_ERRNO` data above
/// `MAX_ERRNO` (4095) is silently clamped (kernel/seccomp.c `__seccomp_filter`), so a
/// larger `errnoRet` would not do what the profile says.
const MAX_ERRNO: u32 = 4095;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    KillThread,
    KillProcess,
    Trap,
    Errno(u16),
    Trace(u16),
    Allow,
    Log,
    Notify,
}

impl Action {
    /// The `SECCOMP_RET_*` value (also libseccomp's action token).
    pub fn ret(self) -> u32 {
        match self {
            Action::KillThread => ret::KILL_THREAD,
            Action::KillProcess => ret::KILL_PROCESS,
            Action::Trap => ret::TRAP,
            Action::Errno(e) => ret::ERRNO | u32::from(e),
            Action::Trace(m) => ret::TRACE | u32::from(m),
            Action::Allow => ret::ALLOW,
            Action::Log => ret::LOG,
            Action::Notify => ret::USER_NOTIF,
        }
    }

    /// runc `patchbpf.isAllowAction`: no ENOSYS stub behind a permissive default
    /// (a tracer is expected to handle new syscalls itself).
    pub fn is_permissive(self) -> bool {
        matches!(self, Action::Allow | Action::Log | Action::Trace(_))
    }
}

/// `scmp_compare` (seccomp.h); values are libseccomp's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Op {
    Ne = 1,
    Lt = 2,
    Le = 3,
    Eq = 4,
    Ge = 5,
    Gt = 6,
    MaskedEq = 7,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arg {
    pub index: u32,
    pub op: Op,
    /// For `MaskedEq` the mask; the value compared is `value_two` (runtime-spec:
    /// `value` and `valueTwo` map to libseccomp's `datum_a`, `datum_b`).
    pub value: u64,
    pub value_two: u64,
}

/// One `syscalls[index]` entry: its action and conditions apply to each of `names`
/// (runc's specconv expands it per name the same way).
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub index: usize,
    pub names: &'a [String],
    pub action: Action,
    pub args: Vec<Arg>,
}

impl Entry<'_> {
    /// `linux.seccomp.syscalls[i].names[j]`, for error messages.
    pub fn field(&self, name_index: usize) -> String {
        format!("{FIELD}.syscalls[{}].names[{name_index}]", self.index)
    }
}

/// A seccomp architecture this build knows: the runtime-spec name, libseccomp's
/// token (equal to the kernel's `AUDIT_ARCH_*`, except x32) and the `AUDIT_ARCH_*`
/// the kernel reports in `seccomp_data.arch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arch {
    pub name: &'static str,
    pub token: u32,
    pub audit: u32,
}

const AUDIT_64BIT: u32 = 0x8000_0000;
const AUDIT_LE: u32 = 0x4000_0000;
const AUDIT_MIPS64_N32: u32 = 0x2000_0000;
const EM_386: u32 = 3;
const EM_MIPS: u32 = 8;
const EM_PARISC: u32 = 15;
const EM_PPC: u32 = 20;
const EM_PPC64: u32 = 21;
const EM_S390: u32 = 22;
const EM_ARM: u32 = 40;
const EM_X86_64: u32 = 62;
const EM_AARCH64: u32 = 183;
const EM_RISCV: u32 = 243;

const fn arch(name: &'static str, audit: u32) -> Arch {
    Arch {
        name,
        token: audit,
        audit,
    }
}

/// Architectures libseccomp 2.5.4 supports, by runtime-spec name. (`SCMP_ARCH_LOONGARCH64`,
/// `SCMP_ARCH_M68K`, `SCMP_ARCH_SH*` need libseccomp 2.6 and are rejected by name.)
pub const ARCHES: &[Arch] = &[
    arch("SCMP_ARCH_X86", EM_386 | AUDIT_LE),
    arch("SCMP_ARCH_X86_64", EM_X86_64 | AUDIT_64BIT | AUDIT_LE),
    // x32 shares AUDIT_ARCH_X86_64 in the kernel (syscall numbers carry
    // __X32_SYSCALL_BIT); libseccomp gives it a distinct token without the 64-bit bit.
    Arch {
        name: "SCMP_ARCH_X32",
        token: EM_X86_64 | AUDIT_LE,
        audit: EM_X86_64 | AUDIT_64BIT | AUDIT_LE,
    },
    arch("SCMP_ARCH_ARM", EM_ARM | AUDIT_LE),
    arch("SCMP_ARCH_AARCH64", EM_AARCH64 | AUDIT_64BIT | AUDIT_LE),
    arch("SCMP_ARCH_MIPS", EM_MIPS),
    arch("SCMP_ARCH_MIPS64", EM_MIPS | AUDIT_64BIT),
    arch(
        "SCMP_ARCH_MIPS64N32",
        EM_MIPS | AUDIT_64BIT | AUDIT_MIPS64_N32,
    ),
    arch("SCMP_ARCH_MIPSEL", EM_MIPS | AUDIT_LE),
    arch("SCMP_ARCH_MIPSEL64", EM_MIPS | AUDIT_64BIT | AUDIT_LE),
    arch(
        "SCMP_ARCH_MIPSEL64N32",
        EM_MIPS | AUDIT_64BIT | AUDIT_LE | AUDIT_MIPS64_N32,
    ),
    arch("SCMP_ARCH_PPC", EM_PPC),
    arch("SCMP_ARCH_PPC64", EM_PPC64 | AUDIT_64BIT),
    arch("SCMP_ARCH_PPC64LE", EM_PPC64 | AUDIT_64BIT | AUDIT_LE),
    arch("SCMP_ARCH_S390", EM_S390),
    arch("SCMP_ARCH_S390X", EM_S390 | AUDIT_64BIT),
    arch("SCMP_ARCH_PARISC", EM_PARISC),
    arch("SCMP_ARCH_PARISC64", EM_PARISC | AUDIT_64BIT),
    arch("SCMP_ARCH_RISCV64", EM_RISCV | AUDIT_64BIT | AUDIT_LE),
];

/// The architecture this binary runs as (the filter always covers it: libseccomp's
/// `seccomp_init` adds the native arch).
pub fn native_arch() -> Option<Arch> {
    let name = if cfg!(target_arch = "x86_64") {
        if cfg!(target_pointer_width = "32") {
            "SCMP_ARCH_X32"
        } else {
            "SCMP_ARCH_X86_64"
        }
    } else if cfg!(target_arch = "x86") {
        "SCMP_ARCH_X86"
    } else if cfg!(target_arch = "aarch64") {
        "SCMP_ARCH_AARCH64"
    } else if cfg!(target_arch = "arm") {
        "SCMP_ARCH_ARM"
    } else if cfg!(target_arch = "riscv64") {
        "SCMP_ARCH_RISCV64"
    } else if cfg!(target_arch = "s390x") {
        "SCMP_ARCH_S390X"
    } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
        "SCMP_ARCH_PPC64LE"
    } else if cfg!(target_arch = "powerpc64") {
        "SCMP_ARCH_PPC64"
    } else {
        return None;
    };
    ARCHES.iter().copied().find(|a| a.name == name)
}

/// A validated profile.
#[derive(Debug, Clone)]
pub struct Profile<'a> {
    pub default_action: Action,
    pub arches: Vec<Arch>,
    /// `SECCOMP_FILTER_FLAG_*` requested by `flags` (NEW_LISTENER added when NOTIFY is used).
    pub flags: u32,
    pub uses_notify: bool,
    pub entries: Vec<Entry<'a>>,
}

fn invalid(field: impl Into<String>, msg: impl Into<String>) -> SeccompError {
    SeccompError::Invalid {
        field: field.into(),
        msg: msg.into(),
    }
}

/// `entry`: None for `defaultAction`/`defaultErrnoRet`, Some(i) for `syscalls[i]`.
/// Field paths are only formatted on error: validation runs on every cache hit.
fn parse_action(
    entry: Option<usize>,
    name: &str,
    errno_ret: Option<u32>,
) -> Result<Action, SeccompError> {
    let field = || match entry {
        None => format!("{FIELD}.defaultAction"),
        Some(i) => format!("{FIELD}.syscalls[{i}].action"),
    };
    let errno_field = || match entry {
        None => format!("{FIELD}.defaultErrnoRet"),
        Some(i) => format!("{FIELD}.syscalls[{i}].errnoRet"),
    };
    let action = match name {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        "SCMP_ACT_TRAP" => Action::Trap,
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_LOG" => Action::Log,
        "SCMP_ACT_NOTIFY" => Action::Notify,
        // runtime-spec: errnoRet "If not specified then its default value is EPERM".
        "SCMP_ACT_ERRNO" => {
            let e = errno_ret.unwrap_or(libc::EPERM as u32);
            if e > MAX_ERRNO {
                return Err(invalid(
                    errno_field(),
                    format!("errno {e} is out of range (the kernel caps errno at {MAX_ERRNO})"),
                ));
            }
            Action::Errno(e as u16)
        }
        // The 16 data bits of SECCOMP_RET_TRACE go to the tracer (PTRACE_GETEVENTMSG);
        // runc puts errnoRet there, EPERM by default.
        "SCMP_ACT_TRACE" => {
            let e = errno_ret.unwrap_or(libc::EPERM as u32);
            let e = u16::try_from(e).map_err(|_| {
                invalid(
                    errno_field(),
                    format!("{e} does not fit the 16 data bits of SECCOMP_RET_TRACE"),
                )
            })?;
            Action::Trace(e)
        }
        "" => return Err(invalid(field(), "missing action")),
        other => return Err(invalid(field(), format!("unknown action {other:?}"))),
    };
    // runtime-spec: "When the action doesn't support an errno, the runtime MUST print
    // and error and fail."
    if errno_ret.is_some() && !matches!(action, Action::Errno(_) | Action::Trace(_)) {
        return Err(invalid(
            errno_field(),
            format!("errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {name}"),
        ));
    }
    Ok(action)
}

fn parse_op(field: impl FnOnce() -> String, op: &str) -> Result<Op, SeccompError> {
    Ok(match op {
        "SCMP_CMP_NE" => Op::Ne,
        "SCMP_CMP_LT" => Op::Lt,
        "SCMP_CMP_LE" => Op::Le,
        "SCMP_CMP_EQ" => Op::Eq,
        "SCMP_CMP_GE" => Op::Ge,
        "SCMP_CMP_GT" => Op::Gt,
        "SCMP_CMP_MASKED_EQ" => Op::MaskedEq,
        other => return Err(invalid(field(), format!("unknown operator {other:?}"))),
    })
}

/// Validate every field of `p`. Does not resolve syscall names (that needs libseccomp's
/// tables; unknown names are skipped at compile time, as runc does).
pub fn validate(p: &LinuxSeccomp) -> Result<Profile<'_>, SeccompError> {
    let default_action = parse_action(None, &p.default_action, p.default_errno_ret)?;
    // runc: NOTIFY as the default would notify on the very syscalls the runtime
    // needs to hand the listener over; it refuses, and so do we.
    if default_action == Action::Notify {
        return Err(invalid(
            format!("{FIELD}.defaultAction"),
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }

    let mut arches: Vec<Arch> = Vec::new();
    for (i, name) in p.architectures.iter().enumerate() {
        let field = format!("{FIELD}.architectures[{i}]");
        let a = ARCHES
            .iter()
            .copied()
            .find(|a| a.name == name)
            .ok_or_else(|| {
                invalid(
                    &field,
                    format!("unknown or unsupported architecture {name:?}"),
                )
            })?;
        // Kept in order, duplicates included, so `arches[i]` is `architectures[i]` in
        // error messages (libseccomp's EEXIST on a repeat is ignored).
        arches.push(a);
    }

    let mut flags = 0;
    for (i, name) in p.flags.iter().enumerate() {
        flags |= match name.as_str() {
            "SECCOMP_FILTER_FLAG_TSYNC" => filter_flag::TSYNC,
            "SECCOMP_FILTER_FLAG_LOG" => filter_flag::LOG,
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => filter_flag::SPEC_ALLOW,
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => filter_flag::WAIT_KILLABLE_RECV,
            other => {
                return Err(invalid(
                    format!("{FIELD}.flags[{i}]"),
                    format!("unknown flag {other:?}"),
                ))
            }
        };
    }

    let mut entries = Vec::with_capacity(p.syscalls.len());
    let mut uses_notify = false;
    for (i, sc) in p.syscalls.iter().enumerate() {
        let action = parse_action(Some(i), &sc.action, sc.errno_ret)?;
        // runtime-spec: "names ... MUST contain at least one entry".
        if sc.names.is_empty() {
            return Err(invalid(
                format!("{FIELD}.syscalls[{i}].names"),
                "must not be empty",
            ));
        }
        let mut args = Vec::with_capacity(sc.args.len());
        for (j, a) in sc.args.iter().enumerate() {
            // A syscall has at most 6 arguments (seccomp_data.args[6]).
            if a.index >= 6 {
                return Err(invalid(
                    format!("{FIELD}.syscalls[{i}].args[{j}].index"),
                    format!("argument index {} is out of range (0..=5)", a.index),
                ));
            }
            args.push(Arg {
                index: a.index,
                op: parse_op(|| format!("{FIELD}.syscalls[{i}].args[{j}].op"), &a.op)?,
                value: a.value,
                value_two: a.value_two,
            });
        }
        let e = Entry {
            index: i,
            names: &sc.names,
            action,
            args,
        };
        for (j, name) in sc.names.iter().enumerate() {
            if name.is_empty() {
                return Err(invalid(e.field(j), "empty syscall name"));
            }
            // runc: the runtime's init writes to hand over the listener; a notified
            // `write` would deadlock before anyone listens.
            if action == Action::Notify && name == "write" {
                return Err(invalid(
                    e.field(j),
                    "SCMP_ACT_NOTIFY cannot be used for the write syscall",
                ));
            }
        }
        uses_notify |= action == Action::Notify;
        entries.push(e);
    }

    if uses_notify {
        flags |= filter_flag::NEW_LISTENER;
        // runtime-spec: listenerPath "the runtime MUST send ... to the listener";
        // without one the first notified syscall would block forever.
        if p.listener_path.as_deref().unwrap_or("").is_empty() {
            return Err(invalid(
                format!("{FIELD}.listenerPath"),
                "SCMP_ACT_NOTIFY is used but listenerPath is not set",
            ));
        }
        // The kernel refuses TSYNC with NEW_LISTENER unless TSYNC_ESRCH is set
        // (seccomp(2): "...EBUSY... cannot be used with SECCOMP_FILTER_FLAG_NEW_LISTENER
        // unless TSYNC_ESRCH"), which only changes how a TSYNC failure is reported.
        if flags & filter_flag::TSYNC != 0 {
            flags |= filter_flag::TSYNC_ESRCH;
        }
    } else {
        // WAIT_KILLABLE_RECV only changes how notifications are waited for, and the
        // kernel rejects it without NEW_LISTENER (EINVAL). Without NOTIFY rules there is
        // nothing it could apply to, so dropping it changes nothing.
        flags &= !filter_flag::WAIT_KILLABLE_RECV;
    }
    if let Some(path) = p.listener_path.as_deref() {
        if !path.is_empty() && !path.starts_with('/') {
            return Err(invalid(
                format!("{FIELD}.listenerPath"),
                format!("{path:?} is not an absolute path"),
            ));
        }
    }

    Ok(Profile {
        default_action,
        arches,
        flags,
        uses_notify,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxcart_spec::{LinuxSeccompArg, LinuxSyscall};

    fn base() -> LinuxSeccomp {
        LinuxSeccomp {
            default_action: "SCMP_ACT_ERRNO".into(),
            syscalls: vec![LinuxSyscall {
                names: vec!["getpid".into()],
                action: "SCMP_ACT_ALLOW".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn err(p: &LinuxSeccomp) -> String {
        validate(p).unwrap_err().to_string()
    }

    #[test]
    fn default_errno_is_eperm() {
        let b = base();
        let v = validate(&b).unwrap();
        assert_eq!(v.default_action, Action::Errno(libc::EPERM as u16));
        let mut p = base();
        p.default_errno_ret = Some(38);
        assert_eq!(validate(&p).unwrap().default_action, Action::Errno(38));
    }

    #[test]
    fn unknown_action_names_entry() {
        let mut p = base();
        p.syscalls.push(LinuxSyscall {
            names: vec!["read".into()],
            action: "SCMP_ACT_FOO".into(),
            ..Default::default()
        });
        assert_eq!(
            err(&p),
            r#"linux.seccomp.syscalls[1].action: unknown action "SCMP_ACT_FOO""#
        );
        let mut p = base();
        p.default_action = "SCMP_ACT_NOPE".into();
        assert_eq!(
            err(&p),
            r#"linux.seccomp.defaultAction: unknown action "SCMP_ACT_NOPE""#
        );
    }

    #[test]
    fn bad_operator_and_index() {
        let mut p = base();
        p.syscalls[0].args = vec![
            LinuxSeccompArg {
                index: 0,
                value: 1,
                value_two: 0,
                op: "SCMP_CMP_EQ".into(),
            },
            LinuxSeccompArg {
                index: 1,
                value: 1,
                value_two: 0,
                op: "SCMP_CMP_ALMOST".into(),
            },
        ];
        assert_eq!(
            err(&p),
            r#"linux.seccomp.syscalls[0].args[1].op: unknown operator "SCMP_CMP_ALMOST""#
        );
        p.syscalls[0].args[1].op = "SCMP_CMP_NE".into();
        p.syscalls[0].args[1].index = 6;
        assert!(err(&p).starts_with("linux.seccomp.syscalls[0].args[1].index: "));
    }

    #[test]
    fn errno_ret_only_with_errno_or_trace() {
        let mut p = base();
        p.syscalls[0].errno_ret = Some(1);
        assert_eq!(
            err(&p),
            "linux.seccomp.syscalls[0].errnoRet: errnoRet is only valid with SCMP_ACT_ERRNO \
             or SCMP_ACT_TRACE, not SCMP_ACT_ALLOW"
        );
        let mut p = base();
        p.default_action = "SCMP_ACT_KILL".into();
        p.default_errno_ret = Some(1);
        assert!(err(&p).starts_with("linux.seccomp.defaultErrnoRet: "));
        let mut p = base();
        p.syscalls[0].action = "SCMP_ACT_TRACE".into();
        p.syscalls[0].errno_ret = Some(7);
        assert_eq!(validate(&p).unwrap().entries[0].action, Action::Trace(7));
        let mut p = base();
        p.syscalls[0].action = "SCMP_ACT_ERRNO".into();
        p.syscalls[0].errno_ret = Some(5000);
        assert!(err(&p).starts_with("linux.seccomp.syscalls[0].errnoRet: errno 5000"));
    }

    #[test]
    fn unknown_arch_and_flag() {
        let mut p = base();
        p.architectures = vec!["SCMP_ARCH_X86_64".into(), "SCMP_ARCH_VAX".into()];
        assert_eq!(
            err(&p),
            r#"linux.seccomp.architectures[1]: unknown or unsupported architecture "SCMP_ARCH_VAX""#
        );
        let mut p = base();
        p.flags = vec![
            "SECCOMP_FILTER_FLAG_LOG".into(),
            "SECCOMP_FILTER_FLAG_X".into(),
        ];
        assert_eq!(
            err(&p),
            r#"linux.seccomp.flags[1]: unknown flag "SECCOMP_FILTER_FLAG_X""#
        );
    }

    #[test]
    fn notify_rules() {
        let mut p = base();
        p.syscalls[0].action = "SCMP_ACT_NOTIFY".into();
        assert_eq!(
            err(&p),
            "linux.seccomp.listenerPath: SCMP_ACT_NOTIFY is used but listenerPath is not set"
        );
        p.listener_path = Some("/run/agent.sock".into());
        p.flags = vec![
            "SECCOMP_FILTER_FLAG_TSYNC".into(),
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV".into(),
        ];
        let v = validate(&p).unwrap();
        assert!(v.uses_notify);
        assert_eq!(
            v.flags,
            filter_flag::TSYNC
                | filter_flag::TSYNC_ESRCH
                | filter_flag::NEW_LISTENER
                | filter_flag::WAIT_KILLABLE_RECV
        );
        p.syscalls[0].names.push("write".into());
        assert_eq!(
            err(&p),
            "linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for the write syscall"
        );
        let mut p = base();
        p.default_action = "SCMP_ACT_NOTIFY".into();
        assert!(err(&p).starts_with("linux.seccomp.defaultAction: "));
    }

    #[test]
    fn empty_names_rejected() {
        let mut p = base();
        p.syscalls[0].names.clear();
        assert_eq!(
            err(&p),
            "linux.seccomp.syscalls[0].names: must not be empty"
        );
    }
}
