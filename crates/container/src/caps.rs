//! Capabilities (capabilities(7)): names, the bounding set, capset(2) and ambient.
//! An unknown capability name is an error (fail closed), where runc only warns.

use crate::error::{Error, Result};
use oxcart_spec::LinuxCapabilities;

/// Capability names in kernel order (include/uapi/linux/capability.h); the table
/// lives in oxcart_spec so the engine's docker defaults use the same one.
pub use oxcart_spec::CAPABILITY_NAMES as CAP_NAMES;

/// The highest capability the running kernel knows (/proc/sys/kernel/cap_last_cap).
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(CAP_NAMES.len() as u32 - 1)
}

pub fn cap_number(name: &str) -> Option<u32> {
    CAP_NAMES.iter().position(|n| *n == name).map(|i| i as u32)
}

/// Bit masks of the five sets; `None` means the set is not configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: Option<u64>,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// Parse the config's capability lists into masks, naming the bad entry on error.
pub fn parse(caps: &LinuxCapabilities, field: &str) -> Result<CapSets> {
    let last = last_cap();
    let mask = |set: &Option<Vec<String>>, name: &str| -> Result<u64> {
        let mut m = 0u64;
        for (i, c) in set.iter().flatten().enumerate() {
            let n = cap_number(c).ok_or_else(|| {
                Error::config(
                    format!("{field}.{name}[{i}]"),
                    format!("unknown capability {c:?}"),
                )
            })?;
            if n > last {
                return Err(Error::config(
                    format!("{field}.{name}[{i}]"),
                    format!(
                        "capability {c:?} is not supported by this kernel (last cap is {last})"
                    ),
                ));
            }
            m |= 1 << n;
        }
        Ok(m)
    };
    Ok(CapSets {
        bounding: match &caps.bounding {
            Some(_) => Some(mask(&caps.bounding, "bounding")?),
            None => None,
        },
        effective: mask(&caps.effective, "effective")?,
        permitted: mask(&caps.permitted, "permitted")?,
        inheritable: mask(&caps.inheritable, "inheritable")?,
        ambient: mask(&caps.ambient, "ambient")?,
    })
}

/// Drop every capability outside `bounding` from the bounding set (PR_CAPBSET_DROP).
/// Needs CAP_SETPCAP, so it runs before the user switch.
pub fn apply_bounding(bounding: u64) -> Result<()> {
    for cap in 0..=last_cap() {
        if bounding & (1 << cap) == 0 {
            // SAFETY: prctl with integer arguments.
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            if r < 0 {
                return Err(Error::last(format!(
                    "drop capability {} from the bounding set",
                    name(cap)
                )));
            }
        }
    }
    Ok(())
}

fn name(cap: u32) -> &'static str {
    CAP_NAMES.get(cap as usize).copied().unwrap_or("unknown")
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// This process's effective set (capget(2)), as a bit mask by capability number.
pub fn effective() -> Result<u64> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and two data structs as capget(2) v3 requires.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(Error::last("capget"));
    }
    Ok(u64::from(data[0].effective) | u64::from(data[1].effective) << 32)
}

/// capset(2) for effective/permitted/inheritable, then raise the ambient set.
pub fn apply_sets(s: &CapSets) -> Result<()> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let split = |m: u64| (m as u32, (m >> 32) as u32);
    let (e0, e1) = split(s.effective);
    let (p0, p1) = split(s.permitted);
    let (i0, i1) = split(s.inheritable);
    let data = [
        CapData {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        CapData {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: header and two data structs as capset(2) v3 requires.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    if r < 0 {
        return Err(Error::last("capset"));
    }
    // Ambient caps must be in permitted and inheritable (PR_CAP_AMBIENT in prctl(2));
    // the kernel rejects others with EPERM and we report which.
    for cap in 0..=last_cap() {
        if s.ambient & (1 << cap) != 0 {
            // SAFETY: prctl with integer arguments.
            let r = unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    cap as libc::c_ulong,
                    0,
                    0,
                )
            };
            // runc's own default config lists ambient caps that are not inheritable,
            // which the kernel refuses (EPERM). runc ignores that, and so do we: a
            // capability not raised only ever leaves the process *less* privileged.
            let _ = r;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn names_and_errors() {
        assert_eq!(cap_number("CAP_CHOWN"), Some(0));
        assert_eq!(cap_number("CAP_SYS_ADMIN"), Some(21));
        let c = LinuxCapabilities {
            bounding: Some(vec!["CAP_KILL".into()]),
            effective: Some(vec!["CAP_KILL".into(), "CAP_BOGUS".into()]),
            ..Default::default()
        };
        let e = parse(&c, "process.capabilities").unwrap_err().to_string();
        assert!(e.contains("process.capabilities.effective[1]"), "{e}");
        assert!(e.contains("CAP_BOGUS"), "{e}");
        let c = LinuxCapabilities {
            bounding: Some(vec!["CAP_KILL".into()]),
            ..Default::default()
        };
        assert_eq!(parse(&c, "x").unwrap().bounding, Some(1 << 5));
    }
}
