//! Does the running kernel support what the profile asks for? Checked in the parent,
//! so an unsupported action or flag is an error naming the field at `create`, not an
//! EINVAL from seccomp(2) in init, nor (worse) a filter whose unknown return value
//! the kernel treats as "kill" (seccomp(2): unknown actions act as KILL_PROCESS).

use crate::profile::{filter_flag, Action, Profile, FIELD};
use crate::SeccompError;
use oxcart_spec::LinuxSeccomp;

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const SECCOMP_GET_ACTION_AVAIL: libc::c_ulong = 2;

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, NULL): the kernel checks the flags before
/// it copies the program, so EFAULT means "flags accepted", EINVAL "not supported"
/// (the probe runc and libseccomp use). Installs nothing.
pub(crate) fn flags_supported(flags: u32) -> bool {
    // SAFETY: a NULL program pointer is never dereferenced; the call fails either way.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            std::ptr::null::<libc::c_void>(),
        )
    };
    rc < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

/// SECCOMP_GET_ACTION_AVAIL (Linux 4.14).
fn action_supported(ret: u32) -> bool {
    let action: u32 = ret & 0xffff_0000;
    // SAFETY: points to a live u32.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_GET_ACTION_AVAIL,
            0 as libc::c_ulong,
            &action as *const u32,
        )
    };
    rc == 0
}

fn flag_bit(name: &str) -> u32 {
    match name {
        "SECCOMP_FILTER_FLAG_TSYNC" => filter_flag::TSYNC,
        "SECCOMP_FILTER_FLAG_LOG" => filter_flag::LOG,
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => filter_flag::SPEC_ALLOW,
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => filter_flag::WAIT_KILLABLE_RECV,
        _ => 0,
    }
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::KillThread => "SCMP_ACT_KILL_THREAD",
        Action::KillProcess => "SCMP_ACT_KILL_PROCESS",
        Action::Trap => "SCMP_ACT_TRAP",
        Action::Errno(_) => "SCMP_ACT_ERRNO",
        Action::Trace(_) => "SCMP_ACT_TRACE",
        Action::Allow => "SCMP_ACT_ALLOW",
        Action::Log => "SCMP_ACT_LOG",
        Action::Notify => "SCMP_ACT_NOTIFY",
    }
}

pub(crate) fn check(raw: &LinuxSeccomp, p: &Profile<'_>) -> Result<(), SeccompError> {
    let unsupported = |field: String, what: &str| SeccompError::Invalid {
        field,
        msg: format!("{what} is not supported by this kernel"),
    };
    // Actions: each distinct one once, reported at its first use.
    let mut seen: Vec<u32> = Vec::with_capacity(8);
    let uses = std::iter::once((None, p.default_action))
        .chain(p.entries.iter().map(|e| (Some(e.index), e.action)));
    for (idx, a) in uses {
        let class = a.ret() & 0xffff_0000;
        if seen.contains(&class) {
            continue;
        }
        seen.push(class);
        if !action_supported(a.ret()) {
            let field = match idx {
                None => format!("{FIELD}.defaultAction"),
                Some(i) => format!("{FIELD}.syscalls[{i}].action"),
            };
            return Err(unsupported(field, action_name(a)));
        }
    }
    if p.flags == 0 || flags_supported(p.flags) {
        return Ok(());
    }
    // Name the culprit: each requested flag with the companions the kernel requires.
    for (i, name) in raw.flags.iter().enumerate() {
        let mut f = flag_bit(name);
        if f == filter_flag::WAIT_KILLABLE_RECV {
            if p.flags & filter_flag::NEW_LISTENER == 0 {
                continue; // dropped by validation: nothing to check
            }
            f |= filter_flag::NEW_LISTENER;
        }
        if !flags_supported(f) {
            return Err(unsupported(format!("{FIELD}.flags[{i}]"), name));
        }
    }
    Err(SeccompError::Invalid {
        field: format!("{FIELD}.flags"),
        msg: format!(
            "this kernel refuses the flag combination {:#x} (SECCOMP_FILTER_FLAG_*)",
            p.flags
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_answer_on_this_kernel() {
        // Linux >= 6.0 has all of these (WAIT_KILLABLE_RECV: 5.19).
        for f in [
            filter_flag::TSYNC,
            filter_flag::LOG,
            filter_flag::SPEC_ALLOW,
            filter_flag::NEW_LISTENER,
            filter_flag::NEW_LISTENER | filter_flag::WAIT_KILLABLE_RECV,
            filter_flag::NEW_LISTENER | filter_flag::TSYNC | filter_flag::TSYNC_ESRCH,
        ] {
            assert!(flags_supported(f), "{f:#x}");
        }
        // Kernel-refused combinations and bits.
        assert!(!flags_supported(filter_flag::WAIT_KILLABLE_RECV));
        assert!(!flags_supported(
            filter_flag::TSYNC | filter_flag::NEW_LISTENER
        ));
        assert!(!flags_supported(1 << 31));
        for a in [
            Action::KillProcess,
            Action::KillThread,
            Action::Trap,
            Action::Errno(1),
            Action::Trace(1),
            Action::Log,
            Action::Allow,
            Action::Notify,
        ] {
            assert!(action_supported(a.ret()), "{a:?}");
        }
        assert!(!action_supported(0x7ff8_0000));
    }
}
