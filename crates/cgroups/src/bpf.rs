//! The cgroup v2 device filter: a `BPF_PROG_TYPE_CGROUP_DEVICE` program
//! built from a [`DeviceState`] and attached to the container's cgroup
//! (Documentation/admin-guide/cgroup-v2.rst "Device controller"; semantics
//! as runc's devicefilter: exceptions to a default policy).
//!
//! The program sees `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major;
//! u32 minor; }` (include/uapi/linux/bpf.h): the low 16 bits of access_type
//! are the device type, the high 16 bits the requested access, and returns
//! 1 to allow, 0 to deny.

use crate::devices::{Access, DevType, DeviceState};
use crate::error::{CgroupError, Result};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

// include/uapi/linux/bpf.h
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
const BPF_DEVCG_ACC_MKNOD: u32 = 1;
const BPF_DEVCG_ACC_READ: u32 = 2;
const BPF_DEVCG_ACC_WRITE: u32 = 4;
const BPF_DEVCG_DEV_BLOCK: u32 = 1;
const BPF_DEVCG_DEV_CHAR: u32 = 2;

// Instruction classes and opcodes (Documentation/bpf/standardization/instruction-set.rst).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54;
const ALU32_RSH_K: u8 = 0x74;
const ALU32_MOV_K: u8 = 0xb4;
const ALU32_MOV_X: u8 = 0xbc;
// JMP32 compares the low 32 bits, so a u32 major/minor above 2^31 is not
// sign-extended into a mismatch as it would be with 64-bit BPF_JMP.
const JMP32_JNE_K: u8 = 0x56;
const JMP32_JNE_X: u8 = 0x5e;
const JMP32_JEQ_K: u8 = 0x16;
const EXIT: u8 = 0x95;

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high nibble.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

fn kernel_access(a: Access) -> u32 {
    let mut k = 0;
    if a.0 & Access::READ != 0 {
        k |= BPF_DEVCG_ACC_READ;
    }
    if a.0 & Access::WRITE != 0 {
        k |= BPF_DEVCG_ACC_WRITE;
    }
    if a.0 & Access::MKNOD != 0 {
        k |= BPF_DEVCG_ACC_MKNOD;
    }
    k
}

/// Compile the device state into a program.
///
/// Every exception has the action opposite to the default, so their order
/// does not matter. An allow exception (default deny) matches only when the
/// requested access is a subset of what it grants; a deny exception
/// (default allow) matches when the request overlaps what it denies — the
/// v1 controller's "partial match" for deny entries, which fails closed.
pub fn program(state: &DeviceState) -> Vec<Insn> {
    let mut p = vec![
        // r2 = type = access_type & 0xffff
        insn(LDX_MEM_W, R2, R1, 0, 0),
        insn(ALU32_AND_K, R2, 0, 0, 0xffff),
        // r3 = access = access_type >> 16
        insn(LDX_MEM_W, R3, R1, 0, 0),
        insn(ALU32_RSH_K, R3, 0, 0, 16),
        // r4 = major, r5 = minor
        insn(LDX_MEM_W, R4, R1, 4, 0),
        insn(LDX_MEM_W, R5, R1, 8, 0),
    ];
    let action = i32::from(!state.default_allow);
    for (m, a) in &state.exceptions {
        // Jumps carry off = -1 until the block length is known.
        let mut b: Vec<Insn> = Vec::new();
        match m.typ {
            DevType::All => {}
            DevType::Block => b.push(insn(JMP32_JNE_K, R2, 0, -1, BPF_DEVCG_DEV_BLOCK as i32)),
            DevType::Char => b.push(insn(JMP32_JNE_K, R2, 0, -1, BPF_DEVCG_DEV_CHAR as i32)),
        }
        let acc = kernel_access(*a) as i32;
        if state.default_allow {
            if *a != Access::ALL {
                b.push(insn(ALU32_MOV_X, R1, R3, 0, 0));
                b.push(insn(ALU32_AND_K, R1, 0, 0, acc));
                b.push(insn(JMP32_JEQ_K, R1, 0, -1, 0));
            }
        } else if *a != Access::ALL {
            b.push(insn(ALU32_MOV_X, R1, R3, 0, 0));
            b.push(insn(ALU32_AND_K, R1, 0, 0, acc));
            b.push(insn(JMP32_JNE_X, R1, R3, -1, 0));
        }
        if let Some(major) = m.major {
            b.push(insn(JMP32_JNE_K, R4, 0, -1, major as i32));
        }
        if let Some(minor) = m.minor {
            b.push(insn(JMP32_JNE_K, R5, 0, -1, minor as i32));
        }
        b.push(insn(ALU32_MOV_K, R0, 0, 0, action));
        b.push(insn(EXIT, 0, 0, 0, 0));
        let len = b.len();
        for (i, ins) in b.iter_mut().enumerate() {
            if ins.off == -1 {
                // Skip to the first instruction after this block.
                ins.off = (len - i - 1) as i16;
            }
        }
        p.extend(b);
    }
    p.push(insn(ALU32_MOV_K, R0, 0, 0, i32::from(state.default_allow)));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: attr points to a live, correctly laid out bpf_attr prefix of
    // size_of::<T>() bytes; the kernel zero-extends shorter attrs.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: fd was just returned by bpf(2) and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Load the program; on failure the verifier log is part of the error.
pub fn load(insns: &[Insn]) -> Result<OwnedFd> {
    let license = b"Apache\0";
    let mut name = [0u8; 16];
    name[..13].copy_from_slice(b"oxcart_devcg\0");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name: name,
        prog_ifindex: 0,
        expected_attach_type: 0,
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned(fd)),
        Err(e) => {
            // Retry with the verifier log to say why.
            let mut log = vec![0u8; 64 * 1024];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let _ = bpf(BPF_PROG_LOAD, &mut attr);
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]).trim().to_string();
            Err(CgroupError::sys(
                format!(
                    "bpf(BPF_PROG_LOAD) of the device filter ({} insns){}",
                    insns.len(),
                    if text.is_empty() {
                        String::new()
                    } else {
                        format!("; verifier: {text}")
                    }
                ),
                e,
            ))
        }
    }
}

fn open_dir(dir: &Path) -> Result<OwnedFd> {
    // BPF_PROG_ATTACH needs a real (not O_PATH) fd of the cgroup directory.
    crate::fsutil::open_fd(dir, libc::O_RDONLY | libc::O_DIRECTORY).map_err(|source| {
        CgroupError::Read {
            path: dir.to_path_buf(),
            source,
        }
    })
}

/// IDs of the device programs attached directly to the cgroup at `dir`.
pub fn attached(dir: &Path) -> Result<Vec<u32>> {
    let cg = open_dir(dir)?;
    query(&cg, dir)
}

fn query(cg: &OwnedFd, dir: &Path) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        query_flags: 0,
        attach_flags: 0,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        _pad: 0,
    };
    bpf(BPF_PROG_QUERY, &mut attr)
        .map_err(|e| CgroupError::sys(format!("bpf(BPF_PROG_QUERY) on {}", dir.display()), e))?;
    ids.truncate(attr.prog_cnt.min(64) as usize);
    Ok(ids)
}

/// Attach a filter for `state` to the cgroup at `dir`, replacing the device
/// programs attached there before. The new program is attached first (with
/// BPF_F_ALLOW_MULTI, which every cgroup BPF user must agree on), then the
/// old ones are detached, so there is no moment without a filter.
pub fn set_device_filter(dir: &Path, state: &DeviceState) -> Result<()> {
    let prog = load(&program(state))?;
    let cg = open_dir(dir)?;
    let old_ids = query(&cg, dir)?;
    let mut old = Vec::new();
    for id in old_ids {
        let mut a = GetFdByIdAttr {
            prog_id: id,
            next_id: 0,
            open_flags: 0,
        };
        match bpf(BPF_PROG_GET_FD_BY_ID, &mut a) {
            Ok(fd) => old.push(owned(fd)),
            // Gone meanwhile: nothing to detach.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => {
                return Err(CgroupError::sys(
                    format!("bpf(BPF_PROG_GET_FD_BY_ID {id})"),
                    e,
                ))
            }
        }
    }
    let mut a = AttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    bpf(BPF_PROG_ATTACH, &mut a).map_err(|e| {
        CgroupError::sys(
            format!("bpf(BPF_PROG_ATTACH) device filter to {}", dir.display()),
            e,
        )
    })?;
    for o in old {
        let mut d = AttachAttr {
            target_fd: cg.as_raw_fd() as u32,
            attach_bpf_fd: o.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: 0,
            replace_bpf_fd: 0,
        };
        match bpf(BPF_PROG_DETACH, &mut d) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => {
                return Err(CgroupError::sys(
                    format!(
                        "bpf(BPF_PROG_DETACH) old device filter from {}",
                        dir.display()
                    ),
                    e,
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::state_from_spec;
    use oxcart_spec::LinuxDeviceCgroup;

    /// A tiny interpreter for exactly the instructions `program` emits, so
    /// the compiled logic is checked without a kernel.
    fn run(p: &[Insn], typ: u32, access: u32, major: u32, minor: u32) -> u32 {
        let ctx = [typ | (access << 16), major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = ctx[(i.off / 4) as usize] as u64,
                ALU32_AND_K => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
                ALU32_RSH_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                ALU32_MOV_K => r[dst] = i.imm as u32 as u64,
                ALU32_MOV_X => r[dst] = r[src] as u32 as u64,
                JMP32_JNE_K => {
                    if r[dst] as u32 != i.imm as u32 {
                        pc += i.off as usize
                    }
                }
                JMP32_JNE_X => {
                    if r[dst] as u32 != r[src] as u32 {
                        pc += i.off as usize
                    }
                }
                JMP32_JEQ_K => {
                    if r[dst] as u32 == i.imm as u32 {
                        pc += i.off as usize
                    }
                }
                EXIT => return r[0] as u32,
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    fn rule(
        allow: bool,
        t: &str,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        LinuxDeviceCgroup {
            allow,
            typ: Some(t.into()),
            major,
            minor,
            access: Some(access.into()),
        }
    }

    const C: u32 = BPF_DEVCG_DEV_CHAR;
    const B: u32 = BPF_DEVCG_DEV_BLOCK;
    const R: u32 = BPF_DEVCG_ACC_READ;
    const W: u32 = BPF_DEVCG_ACC_WRITE;
    const M: u32 = BPF_DEVCG_ACC_MKNOD;

    #[test]
    fn allow_list() {
        let s = state_from_spec(&[
            rule(false, "a", None, None, "rwm"),
            rule(true, "c", Some(1), Some(3), "rw"),
            rule(true, "c", Some(136), None, "rwm"),
            rule(true, "b", None, None, "m"),
        ])
        .unwrap();
        let p = program(&s);
        assert_eq!(run(&p, C, R | W, 1, 3), 1);
        assert_eq!(run(&p, C, R, 1, 3), 1);
        assert_eq!(run(&p, C, M, 1, 3), 0, "mknod not granted");
        assert_eq!(run(&p, C, R | M, 1, 3), 0, "partial grant is a deny");
        assert_eq!(run(&p, C, R, 1, 5), 0);
        assert_eq!(run(&p, B, R, 1, 3), 0, "type matters");
        assert_eq!(run(&p, C, R | W, 136, 7), 1);
        assert_eq!(run(&p, B, M, 8, 0), 1);
        assert_eq!(run(&p, B, R, 8, 0), 0);
    }

    #[test]
    fn deny_list() {
        let s = state_from_spec(&[
            rule(true, "a", None, None, "rwm"),
            rule(false, "c", Some(1), Some(5), "w"),
            rule(false, "b", Some(8), None, "rwm"),
        ])
        .unwrap();
        let p = program(&s);
        assert_eq!(run(&p, C, R, 1, 5), 1);
        assert_eq!(run(&p, C, R | W, 1, 5), 0, "overlapping request is denied");
        assert_eq!(run(&p, B, R, 8, 1), 0);
        assert_eq!(run(&p, C, R, 8, 1), 1);
        assert_eq!(run(&p, C, R | W | M, 4, 1), 1);
    }

    #[test]
    fn empty_deny_all() {
        let p = program(&state_from_spec(&[rule(false, "a", None, None, "rwm")]).unwrap());
        assert_eq!(run(&p, C, R, 1, 3), 0);
        assert_eq!(p.len(), 8);
    }

    #[test]
    fn big_numbers_do_not_sign_extend() {
        let s =
            state_from_spec(&[rule(true, "c", Some(0xffff_fff0), Some(0x8000_0001), "r")]).unwrap();
        let p = program(&s);
        assert_eq!(run(&p, C, R, 0xffff_fff0, 0x8000_0001), 1);
        assert_eq!(run(&p, C, R, 0xffff_fff0, 1), 0);
    }
}
