//! eBPF without a library: the instruction encoding, a small assembler and the
//! `bpf(2)` commands, and on top of them the cgroup v2 device filter.
//!
//! The encoding and the syscall layer are `pub` because the engine's published-port
//! bypass (`crates/engine/src/network/bypass.rs`: `cgroup/connect4` and friends on the
//! cgroup v2 root) needs the same ones: one copy of the `unsafe` syscall and of the
//! `union bpf_attr` layouts, not one per user. The raw syscall itself stays private:
//! each `pub` wrapper passes the kernel only attrs laid out here, pointing at memory it
//! borrows for the call. Why no BPF library (aya, libbpf-rs): docs/architecture.md.
//!
//! # The device filter
//!
//! A `BPF_PROG_TYPE_CGROUP_DEVICE` program built from a [`DeviceState`] and attached
//! to the container's cgroup (Documentation/admin-guide/cgroup-v2.rst "Device
//! controller"; semantics as runc's devicefilter: exceptions to a default policy).
//!
//! The program sees `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major;
//! u32 minor; }` (include/uapi/linux/bpf.h): the low 16 bits of access_type
//! are the device type, the high 16 bits the requested access, and returns
//! 1 to allow, 0 to deny.

use crate::devices::{Access, DevType, DeviceState};
use crate::error::{CgroupError, Result};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

// include/uapi/linux/bpf.h
const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_BTF_LOAD: libc::c_long = 18;
const BPF_LINK_CREATE: libc::c_long = 28;
/// `src_reg` of an `LD_IMM64` whose immediate is a map's fd, which the kernel
/// replaces with the map at load time.
const BPF_PSEUDO_MAP_FD: u8 = 1;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
const BPF_DEVCG_ACC_MKNOD: u32 = 1;
const BPF_DEVCG_ACC_READ: u32 = 2;
const BPF_DEVCG_ACC_WRITE: u32 = 4;
const BPF_DEVCG_DEV_BLOCK: u32 = 1;
const BPF_DEVCG_DEV_CHAR: u32 = 2;

// Opcodes: class | operation | source (Documentation/bpf/standardization/instruction-set.rst).
pub const MOV64_X: u8 = 0xbf;
pub const MOV64_K: u8 = 0xb7;
pub const MOV32_X: u8 = 0xbc;
pub const MOV32_K: u8 = 0xb4;
pub const AND32_K: u8 = 0x54;
pub const RSH32_K: u8 = 0x74;
pub const LDX_W: u8 = 0x61;
pub const LDX_DW: u8 = 0x79;
pub const STX_W: u8 = 0x63;
pub const LD_IMM64: u8 = 0x18;
pub const JA: u8 = 0x05;
pub const JEQ64_K: u8 = 0x15;
pub const JNE64_X: u8 = 0x5d;
// JMP32 compares the low 32 bits, so a u32 (a major/minor above 2^31, an
// address or port of a context field) is not sign-extended into a mismatch
// as it would be with 64-bit BPF_JMP.
pub const JEQ32_K: u8 = 0x16;
pub const JNE32_K: u8 = 0x56;
pub const JNE32_X: u8 = 0x5e;
pub const CALL: u8 = 0x85;
pub const EXIT: u8 = 0x95;

pub const R0: u8 = 0;
pub const R1: u8 = 1;
pub const R2: u8 = 2;
pub const R3: u8 = 3;
pub const R4: u8 = 4;
pub const R5: u8 = 5;
pub const R6: u8 = 6;
pub const R7: u8 = 7;
pub const R8: u8 = 8;
pub const R9: u8 = 9;

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

/// Encode one instruction.
pub fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

/// A program under construction, with forward jumps to named labels.
#[derive(Default)]
pub struct Asm {
    p: Vec<Insn>,
    fix: Vec<(usize, usize)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    pub fn op(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) -> &mut Self {
        self.p.push(insn(code, dst, src, off, imm));
        self
    }
    /// A new label, placed later with [`Asm::here`].
    pub fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    /// Place label `l` at the next instruction.
    pub fn here(&mut self, l: usize) {
        self.labels[l] = Some(self.p.len());
    }
    /// A jump to label `l` (its offset filled in by `finish`).
    pub fn jump(&mut self, code: u8, dst: u8, src: u8, imm: i32, l: usize) -> &mut Self {
        self.fix.push((self.p.len(), l));
        self.op(code, dst, src, 0, imm)
    }
    /// `dst = v`: the one instruction that takes two slots.
    pub fn imm64(&mut self, dst: u8, src: u8, v: u64) -> &mut Self {
        self.op(LD_IMM64, dst, src, 0, v as u32 as i32);
        self.op(0, 0, 0, 0, (v >> 32) as u32 as i32)
    }
    /// `dst = map`, as the kernel resolves a map fd at load time.
    pub fn map(&mut self, dst: u8, map: &OwnedFd) -> &mut Self {
        self.imm64(dst, BPF_PSEUDO_MAP_FD, map.as_raw_fd() as u32 as u64)
    }
    /// A call of helper function number `f` (include/uapi/linux/bpf.h `__BPF_FUNC_MAPPER`).
    pub fn call(&mut self, f: i32) -> &mut Self {
        self.op(CALL, 0, 0, 0, f)
    }
    pub fn finish(mut self) -> Vec<Insn> {
        for (at, l) in self.fix {
            // Every label is placed before finish; a missing one is a bug here.
            let to = self.labels[l].unwrap_or(at + 1);
            self.p[at].off = (to as isize - at as isize - 1) as i16;
        }
        self.p
    }
}

/// A load the kernel refused: the error of the first attempt, and what the
/// verifier (or the BTF checker) logged about it, trimmed (empty when it said nothing).
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct Rejected {
    #[source]
    pub source: io::Error,
    pub log: String,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: attr points to a live, correctly laid out bpf_attr prefix of
    // size_of::<T>() bytes; the kernel zero-extends shorter attrs. Only this
    // module's attr structs reach here, and their pointers borrow memory that
    // outlives the call.
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

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: fd was just returned by bpf(2) and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// The text a log buffer holds, up to its NUL.
fn log_text(log: &[u8]) -> String {
    let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
    String::from_utf8_lossy(&log[..end]).trim().to_string()
}

/// An object name as the kernel takes it: at most 15 bytes and a NUL
/// (BPF_OBJ_NAME_LEN); the names given here are this code's own constants.
fn obj_name(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    let n = name.len().min(15);
    out[..n].copy_from_slice(&name.as_bytes()[..n]);
    out
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

/// `BPF_PROG_LOAD`. On failure it loads again with the verifier's log, to say why.
pub fn prog_load(
    prog_type: u32,
    expected_attach_type: u32,
    name: &str,
    insns: &[Insn],
) -> std::result::Result<OwnedFd, Rejected> {
    let license = b"Apache\0";
    let mut attr = ProgLoadAttr {
        prog_type,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name: obj_name(name),
        prog_ifindex: 0,
        expected_attach_type,
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned(fd)),
        Err(source) => {
            // Without a log the first load is cheaper; the log is only for the error.
            let mut log = vec![0u8; 64 * 1024];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let _ = bpf(BPF_PROG_LOAD, &mut attr);
            Err(Rejected {
                source,
                log: log_text(&log),
            })
        }
    }
}

#[repr(C)]
struct BtfLoadAttr {
    btf: u64,
    btf_log_buf: u64,
    btf_size: u32,
    btf_log_size: u32,
    btf_log_level: u32,
}

/// `BPF_BTF_LOAD` of raw BTF (Documentation/bpf/btf.rst), with the checker's log.
pub fn btf_load(data: &[u8]) -> std::result::Result<OwnedFd, Rejected> {
    let mut log = vec![0u8; 4096];
    let mut attr = BtfLoadAttr {
        btf: data.as_ptr() as u64,
        btf_log_buf: log.as_mut_ptr() as u64,
        btf_size: data.len() as u32,
        btf_log_size: log.len() as u32,
        btf_log_level: 1,
    };
    match bpf(BPF_BTF_LOAD, &mut attr) {
        Ok(fd) => Ok(owned(fd)),
        Err(source) => Err(Rejected {
            source,
            log: log_text(&log),
        }),
    }
}

#[repr(C)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
    map_ifindex: u32,
    btf_fd: u32,
    btf_key_type_id: u32,
    btf_value_type_id: u32,
}

/// What `BPF_MAP_CREATE` is asked for.
pub struct MapSpec<'a> {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub name: &'a str,
    /// The map's type information ([`btf_load`]), with the ids of its key and
    /// value types in it; some map types (socket storage) require it.
    pub btf: Option<(BorrowedFd<'a>, u32, u32)>,
}

/// `BPF_MAP_CREATE`.
pub fn map_create(spec: &MapSpec<'_>) -> io::Result<OwnedFd> {
    let (btf_fd, btf_key_type_id, btf_value_type_id) = match spec.btf {
        Some((fd, k, v)) => (fd.as_raw_fd() as u32, k, v),
        None => (0, 0, 0),
    };
    let mut attr = MapCreateAttr {
        map_type: spec.map_type,
        key_size: spec.key_size,
        value_size: spec.value_size,
        max_entries: spec.max_entries,
        map_flags: spec.map_flags,
        inner_map_fd: 0,
        numa_node: 0,
        map_name: obj_name(spec.name),
        map_ifindex: 0,
        btf_fd,
        btf_key_type_id,
        btf_value_type_id,
    };
    bpf(BPF_MAP_CREATE, &mut attr).map(owned)
}

#[repr(C)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
}

/// `BPF_LINK_CREATE`: attach `prog` to `target` as a link, owned by the returned fd
/// alone (closing it detaches; other programs attached there stay).
pub fn link_create(
    prog: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    attach_type: u32,
) -> io::Result<OwnedFd> {
    let mut attr = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_fd: target.as_raw_fd() as u32,
        attach_type,
        flags: 0,
    };
    bpf(BPF_LINK_CREATE, &mut attr).map(owned)
}

// The cgroup v2 device filter (the module doc), built on the layer above.

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
        insn(LDX_W, R2, R1, 0, 0),
        insn(AND32_K, R2, 0, 0, 0xffff),
        // r3 = access = access_type >> 16
        insn(LDX_W, R3, R1, 0, 0),
        insn(RSH32_K, R3, 0, 0, 16),
        // r4 = major, r5 = minor
        insn(LDX_W, R4, R1, 4, 0),
        insn(LDX_W, R5, R1, 8, 0),
    ];
    let action = i32::from(!state.default_allow);
    for (m, a) in &state.exceptions {
        // Jumps carry off = -1 until the block length is known.
        let mut b: Vec<Insn> = Vec::new();
        match m.typ {
            DevType::All => {}
            DevType::Block => b.push(insn(JNE32_K, R2, 0, -1, BPF_DEVCG_DEV_BLOCK as i32)),
            DevType::Char => b.push(insn(JNE32_K, R2, 0, -1, BPF_DEVCG_DEV_CHAR as i32)),
        }
        let acc = kernel_access(*a) as i32;
        if state.default_allow {
            if *a != Access::ALL {
                b.push(insn(MOV32_X, R1, R3, 0, 0));
                b.push(insn(AND32_K, R1, 0, 0, acc));
                b.push(insn(JEQ32_K, R1, 0, -1, 0));
            }
        } else if *a != Access::ALL {
            b.push(insn(MOV32_X, R1, R3, 0, 0));
            b.push(insn(AND32_K, R1, 0, 0, acc));
            b.push(insn(JNE32_X, R1, R3, -1, 0));
        }
        if let Some(major) = m.major {
            b.push(insn(JNE32_K, R4, 0, -1, major as i32));
        }
        if let Some(minor) = m.minor {
            b.push(insn(JNE32_K, R5, 0, -1, minor as i32));
        }
        b.push(insn(MOV32_K, R0, 0, 0, action));
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
    p.push(insn(MOV32_K, R0, 0, 0, i32::from(state.default_allow)));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
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

/// Load the program; on failure the verifier log is part of the error.
pub fn load(insns: &[Insn]) -> Result<OwnedFd> {
    prog_load(BPF_PROG_TYPE_CGROUP_DEVICE, 0, "oxcart_devcg", insns).map_err(|r| {
        CgroupError::sys(
            format!(
                "bpf(BPF_PROG_LOAD) of the device filter ({} insns){}",
                insns.len(),
                if r.log.is_empty() {
                    String::new()
                } else {
                    format!("; verifier: {}", r.log)
                }
            ),
            r.source,
        )
    })
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
                LDX_W => r[dst] = ctx[(i.off / 4) as usize] as u64,
                AND32_K => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
                RSH32_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                MOV32_K => r[dst] = i.imm as u32 as u64,
                MOV32_X => r[dst] = r[src] as u32 as u64,
                JNE32_K => {
                    if r[dst] as u32 != i.imm as u32 {
                        pc += i.off as usize
                    }
                }
                JNE32_X => {
                    if r[dst] as u32 != r[src] as u32 {
                        pc += i.off as usize
                    }
                }
                JEQ32_K => {
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
    fn asm_resolves_forward_jumps_and_splits_imm64() {
        let mut a = Asm::default();
        let out = a.label();
        a.jump(JEQ32_K, R1, 0, 7, out)
            .imm64(R2, 0, 0x1122_3344_5566_7788)
            .jump(JA, 0, 0, 0, out);
        a.here(out);
        a.op(EXIT, 0, 0, 0, 0);
        let p = a.finish();
        assert_eq!(p.len(), 5);
        // Offsets count from the instruction after the jump.
        assert_eq!(p[0], insn(JEQ32_K, R1, 0, 3, 7));
        assert_eq!(p[1], insn(LD_IMM64, R2, 0, 0, 0x5566_7788));
        assert_eq!(p[2], insn(0, 0, 0, 0, 0x1122_3344));
        assert_eq!(p[3], insn(JA, 0, 0, 0, 0));
        assert_eq!(insn(MOV64_X, R6, R1, 0, 0).regs, 0x16, "src high, dst low");
    }

    #[test]
    fn object_names_keep_their_nul() {
        assert_eq!(&obj_name("oxcart_devcg")[..13], b"oxcart_devcg\0");
        let long = obj_name("a_name_longer_than_fifteen");
        assert_eq!(long[15], 0);
        assert_eq!(&long[..15], b"a_name_longer_t");
    }

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
