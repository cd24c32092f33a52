//! Classic BPF for seccomp: the instruction type and the runc-style ENOSYS stub.
//!
//! The stub (runc `libcontainer/seccomp/patchbpf`) is prepended to libseccomp's
//! program: for each architecture in the filter, a syscall number greater than the
//! largest one the profile names returns `ENOSYS` instead of the default action. Such a
//! syscall is newer than the profile, and glibc falls back to an older syscall only on
//! ENOSYS (e.g. `clone3` → `clone`, `faccessat2` → `faccessat`); EPERM would break it.

/// `struct sock_filter` (linux/filter.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// `struct sock_fprog` (linux/filter.h).
#[repr(C)]
pub(crate) struct SockFprog {
    pub len: u16,
    pub filter: *const SockFilter,
}

/// BPF_MAXINSNS: the kernel rejects longer programs.
pub const MAX_INSNS: usize = 4096;

pub(crate) const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JMP_JA: u16 = 0x05; // BPF_JMP | BPF_JA
const JMP_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JMP_JGT_K: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K
const JMP_JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// offsetof(struct seccomp_data, nr) and (…, arch).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;

/// `__X32_SYSCALL_BIT` (arch/x86/include/uapi/asm/unistd.h): set in x32 syscall numbers,
/// which share AUDIT_ARCH_X86_64 with native x86_64.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const fn ins(code: u16, jt: u8, jf: u8, k: u32) -> SockFilter {
    SockFilter { code, jt, jf, k }
}

/// Largest syscall number the profile names, per kernel architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchMax {
    /// One ABI on this AUDIT_ARCH (`s390` marks s390/s390x: see below).
    Single { max: u32, s390: bool },
    /// AUDIT_ARCH_X86_64: the x86_64 ABI and/or the x32 ABI (numbers with
    /// X32_SYSCALL_BIT). `None` means that ABI is not in the filter: its syscalls go
    /// straight to the filter (which applies its bad-arch or default action).
    X86_64 {
        x86_64: Option<u32>,
        x32: Option<u32>,
    },
}

enum Item {
    Op(SockFilter),
    /// Unconditional jump to a label (32-bit offset, so never out of range).
    Ja(Label),
    Label(Label),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Label {
    Section(usize),
    Enosys,
    Filter,
}

/// Build the stub for `arches` (AUDIT_ARCH value, max). The stub ends by falling into
/// the instruction after it, where the caller places libseccomp's program; it leaves
/// the accumulator holding the arch or the syscall number, and libseccomp's program
/// starts by loading `seccomp_data.arch` itself (checked by the caller).
///
/// Conditional jumps only ever skip 0 or 1 instructions; long distances go through
/// `ja`, whose offset is 32-bit, so no layout can overflow the 8-bit jt/jf fields.
pub fn enosys_stub(arches: &[(u32, ArchMax)], enosys_ret: u32) -> Vec<SockFilter> {
    if arches.is_empty() {
        return Vec::new();
    }
    let mut items = vec![Item::Op(ins(LD_W_ABS, 0, 0, OFF_ARCH))];
    for (i, (audit, _)) in arches.iter().enumerate() {
        items.push(Item::Op(ins(JMP_JEQ_K, 0, 1, *audit)));
        items.push(Item::Ja(Label::Section(i)));
    }
    // Any other arch: libseccomp's program applies its bad-arch action.
    items.push(Item::Ja(Label::Filter));

    // "if A > max goto ENOSYS else goto FILTER"
    fn check(items: &mut Vec<Item>, max: u32) {
        items.push(Item::Op(ins(JMP_JGT_K, 0, 1, max)));
        items.push(Item::Ja(Label::Enosys));
        items.push(Item::Ja(Label::Filter));
    }

    for (i, (_, m)) in arches.iter().enumerate() {
        items.push(Item::Label(Label::Section(i)));
        items.push(Item::Op(ins(LD_W_ABS, 0, 0, OFF_NR)));
        match *m {
            ArchMax::Single { max, s390 } => {
                if s390 {
                    // runc: on s390(x) a syscall number the kernel does not know is
                    // left as 0 (setup(2), unused for decades, multiplexes "large"
                    // numbers), so 0 must get ENOSYS too.
                    items.push(Item::Op(ins(JMP_JEQ_K, 0, 1, 0)));
                    items.push(Item::Ja(Label::Enosys));
                }
                check(&mut items, max);
            }
            ArchMax::X86_64 { x86_64, x32 } => {
                // jset X32_BIT: true → next (x32 part), false → skip the 3-insn x32 part.
                items.push(Item::Op(ins(JMP_JSET_K, 0, 3, X32_SYSCALL_BIT)));
                match x32 {
                    Some(max) => check(&mut items, max),
                    None => {
                        items.push(Item::Ja(Label::Filter));
                        items.push(Item::Ja(Label::Filter));
                        items.push(Item::Ja(Label::Filter));
                    }
                }
                match x86_64 {
                    Some(max) => check(&mut items, max),
                    None => items.push(Item::Ja(Label::Filter)),
                }
            }
        }
    }
    items.push(Item::Label(Label::Enosys));
    items.push(Item::Op(ins(RET_K, 0, 0, enosys_ret)));
    items.push(Item::Label(Label::Filter));

    // Resolve labels.
    let mut pos = Vec::new();
    let mut n = 0usize;
    for it in &items {
        if let Item::Label(l) = it {
            pos.push((*l, n));
        } else {
            n += 1;
        }
    }
    let at = |l: Label| pos.iter().find(|(x, _)| *x == l).map(|(_, p)| *p);
    let mut out = Vec::with_capacity(n);
    for it in &items {
        match it {
            Item::Op(i) => out.push(*i),
            Item::Ja(l) => {
                let here = out.len();
                // Every label is defined above; a forward jump by construction.
                let target = at(*l).unwrap_or(here + 1);
                out.push(ins(JMP_JA, 0, 0, (target - here - 1) as u32));
            }
            Item::Label(_) => {}
        }
    }
    out
}

/// A minimal classic-BPF interpreter for the instructions seccomp programs use, so the
/// stub and whole programs can be checked without loading them.
#[cfg(test)]
pub(crate) fn run(prog: &[SockFilter], data: &[u32]) -> u32 {
    let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
    let mut mem = [0u32; 16];
    loop {
        let i = prog[pc];
        pc += 1;
        let k = i.k;
        match i.code {
            0x20 => a = data[(k / 4) as usize],
            0x00 => a = k,
            0x01 => x = k,
            0x61 => x = mem[k as usize],
            0x60 => a = mem[k as usize],
            0x02 => mem[k as usize] = a,
            0x03 => mem[k as usize] = x,
            0x07 => x = a,
            0x87 => a = x,
            0x54 => a &= k,
            0x5c => a &= x,
            0x05 => pc += k as usize,
            0x15 | 0x25 | 0x35 | 0x45 | 0x1d | 0x2d | 0x3d | 0x4d => {
                let v = if i.code & 0x08 != 0 { x } else { k };
                let t = match i.code & 0xf0 {
                    0x10 => a == v,
                    0x20 => a > v,
                    0x30 => a >= v,
                    _ => a & v != 0,
                };
                pc += usize::from(if t { i.jt } else { i.jf });
            }
            0x06 => return k,
            0x16 => return a,
            c => panic!("unsupported BPF op {c:#x} at {}", pc - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86_64: u32 = 0xC000_003E;
    const I386: u32 = 0x4000_0003;
    const S390X: u32 = 0x8000_0016;
    const ENOSYS: u32 = 0x0005_0000 | 38;
    const PASS: u32 = 0x7fff_0000;

    fn with_tail(stub: Vec<SockFilter>) -> Vec<SockFilter> {
        let mut p = stub;
        p.push(ins(RET_K, 0, 0, PASS));
        p
    }

    fn data(nr: u32, arch: u32) -> [u32; 2] {
        [nr, arch]
    }

    #[test]
    fn single_arch() {
        let p = with_tail(enosys_stub(
            &[(
                I386,
                ArchMax::Single {
                    max: 400,
                    s390: false,
                },
            )],
            ENOSYS,
        ));
        assert_eq!(run(&p, &data(400, I386)), PASS);
        assert_eq!(run(&p, &data(401, I386)), ENOSYS);
        assert_eq!(run(&p, &data(0, I386)), PASS);
        // Other arches fall through to the filter.
        assert_eq!(run(&p, &data(9999, X86_64)), PASS);
    }

    #[test]
    fn x86_64_and_x32() {
        let arches = [
            (
                X86_64,
                ArchMax::X86_64 {
                    x86_64: Some(450),
                    x32: Some(X32_SYSCALL_BIT | 547),
                },
            ),
            (
                I386,
                ArchMax::Single {
                    max: 460,
                    s390: false,
                },
            ),
        ];
        let p = with_tail(enosys_stub(&arches, ENOSYS));
        assert_eq!(run(&p, &data(450, X86_64)), PASS);
        assert_eq!(run(&p, &data(451, X86_64)), ENOSYS);
        assert_eq!(run(&p, &data(X32_SYSCALL_BIT | 547, X86_64)), PASS);
        assert_eq!(run(&p, &data(X32_SYSCALL_BIT | 548, X86_64)), ENOSYS);
        assert_eq!(run(&p, &data(461, I386)), ENOSYS);
        assert_eq!(run(&p, &data(455, I386)), PASS);

        // x86_64 only: x32 numbers are left to the filter (bad arch there).
        let p = with_tail(enosys_stub(
            &[(
                X86_64,
                ArchMax::X86_64 {
                    x86_64: Some(450),
                    x32: None,
                },
            )],
            ENOSYS,
        ));
        assert_eq!(run(&p, &data(X32_SYSCALL_BIT | 9999, X86_64)), PASS);
        assert_eq!(run(&p, &data(451, X86_64)), ENOSYS);
        // x32 only.
        let p = with_tail(enosys_stub(
            &[(
                X86_64,
                ArchMax::X86_64 {
                    x86_64: None,
                    x32: Some(X32_SYSCALL_BIT | 10),
                },
            )],
            ENOSYS,
        ));
        assert_eq!(run(&p, &data(451, X86_64)), PASS);
        assert_eq!(run(&p, &data(X32_SYSCALL_BIT | 11, X86_64)), ENOSYS);
    }

    #[test]
    fn s390_setup_multiplex() {
        let p = with_tail(enosys_stub(
            &[(
                S390X,
                ArchMax::Single {
                    max: 400,
                    s390: true,
                },
            )],
            ENOSYS,
        ));
        assert_eq!(run(&p, &data(0, S390X)), ENOSYS);
        assert_eq!(run(&p, &data(1, S390X)), PASS);
        assert_eq!(run(&p, &data(401, S390X)), ENOSYS);
    }

    #[test]
    fn empty() {
        assert!(enosys_stub(&[], ENOSYS).is_empty());
    }
}
