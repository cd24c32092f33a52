//! The kernel bypass of the port proxy for the host's own loopback connections: a
//! `cgroup/connect4` program that rewrites a TCP `connect(127.0.0.1:HOSTPORT)` made in
//! the host's network namespace into `connect(CONTAINER_IP:PORT)`, at the socket, before
//! any packet exists (what Cilium calls socket-level load balancing; kube-proxy's
//! replacement there). The connection is then one TCP connection from the host's
//! address on the bridge (the gateway, as the container sees docker-proxy's) to the
//! container: no relay, no second connection, no packet with a loopback address on
//! the bridge, so neither `route_localnet` nor a DNAT of 127.0.0.1 (CVE-2020-8558).
//!
//! Why: the proxy's second TCP connection over `lo` is kernel work per byte that no
//! relay (splice, or a sockmap redirect between the two sockets) avoids; on a 2-core
//! host it left the proxy at 0.65–0.81× of podman's DNAT throughput
//! (docs/benchmarks.md).
//!
//! `cgroup/connect6` does the same for a dual-stack IPv6 socket connecting to
//! `::ffff:127.0.0.1` (the ports are IPv4 only, so native IPv6 is not ours).
//! The proxy (proxy.rs) still binds and listens on every host port: it holds the port,
//! and it relays what the programs leave alone — UDP, a socket already bound to an
//! address or a device, and connections to the host's other addresses.
//! `cgroup/getpeername4`/`6` programs make `getpeername(2)` of a rewritten socket say
//! 127.0.0.1:HOSTPORT again (what the client connected to, as under DNAT or the
//! proxy), from what the connect program left in the socket's local storage (a
//! `BPF_MAP_TYPE_SK_STORAGE` map: the kernel frees an entry with its socket).
//!
//! All four are attached with `BPF_LINK_CREATE` to the root of the cgroup v2
//! hierarchy (so every process of the host is covered) and owned by the proxy's file
//! descriptors alone: nothing is pinned, so when the proxy exits — killed by the
//! container's teardown, or by `kill -9` — the kernel detaches them and frees the map.
//! The programs run for every `connect`/`getpeername` on the host; each first tests
//! what rules most calls out (the destination port, the peer address) and returns.

use super::NetworkError;
// The eBPF encoding and bpf(2) commands are the cgroups crate's, shared with its
// device filter: one copy of the unsafe syscall and the attr layouts.
use oxcart_cgroups::bpf::{
    self, Asm, Insn, MapSpec, AND32_K, EXIT, JA, JEQ32_K, JEQ64_K, JNE32_K, JNE32_X, JNE64_X,
    LDX_DW, LDX_W, MOV32_K, MOV32_X, MOV64_K, MOV64_X, R0, R1, R2, R3, R4, R6, R7, R8, R9, STX_W,
};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

// include/uapi/linux/bpf.h
const BPF_MAP_TYPE_SK_STORAGE: u32 = 24;
const BPF_F_NO_PREALLOC: u32 = 1;
const BPF_PROG_TYPE_CGROUP_SOCK_ADDR: u32 = 18;
const BPF_CGROUP_INET4_CONNECT: u32 = 10;
const BPF_CGROUP_INET6_CONNECT: u32 = 11;
const BPF_CGROUP_INET4_GETPEERNAME: u32 = 29;
const BPF_CGROUP_INET6_GETPEERNAME: u32 = 30;
const FN_GET_NETNS_COOKIE: i32 = 122;
const FN_SK_STORAGE_GET: i32 = 107;
const BPF_SK_STORAGE_GET_F_CREATE: i32 = 1;
// socket(7): SO_NETNS_COOKIE (Linux 5.14).
const SO_NETNS_COOKIE: libc::c_int = 71;

// struct bpf_sock_addr offsets.
const SA_USER_IP4: i16 = 4;
const SA_USER_IP6: i16 = 8;
const SA_USER_PORT: i16 = 24;
const SA_TYPE: i16 = 32;
const SA_SK: i16 = 64;
// struct bpf_sock offsets.
const SK_BOUND_DEV_IF: i16 = 0;
const SK_SRC_IP4: i16 = 24;
const SK_SRC_IP6: i16 = 28;

/// What the connect program keeps on a rewritten socket (socket-local storage, freed
/// by the kernel with the socket): the address and port it asked for, and the
/// container's, so getpeername can give back the first while it is still connected
/// to the second. Four u32.
const VALUE_SIZE: u32 = 16;

/// One published port the program rewrites: a destination (an address under
/// `mask`, and a port) and the container's address and port. All four are stored as
/// `struct bpf_sock_addr` holds them: network byte order in a u32 read natively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    mask: u32,
    net: u32,
    port: u32,
    ctr_ip: u32,
    ctr_port: u32,
}

impl Rule {
    /// The rule for a TCP port the proxy holds on `host_ip`, or None when the program
    /// cannot stand in for the proxy: only loopback destinations are rewritten (an
    /// unspecified host address takes all of 127.0.0.0/8, as the listener does); a
    /// connection to another host address keeps going through the proxy.
    pub fn new(host_ip: Ipv4Addr, host_port: u16, ctr_ip: Ipv4Addr, ctr_port: u16) -> Option<Rule> {
        let (mask, net) = if host_ip.is_unspecified() {
            (Ipv4Addr::new(255, 0, 0, 0), Ipv4Addr::new(127, 0, 0, 0))
        } else if host_ip.is_loopback() {
            (Ipv4Addr::BROADCAST, host_ip)
        } else {
            return None;
        };
        let ne = |a: Ipv4Addr| u32::from_ne_bytes(a.octets());
        let port = |p: u16| u32::from(p.to_be());
        Some(Rule {
            mask: ne(mask),
            net: ne(net),
            port: port(host_port),
            ctr_ip: ne(ctr_ip),
            ctr_port: port(ctr_port),
        })
    }
}

/// Which hook a program is for. IPv6: only a dual-stack socket connecting to an
/// IPv4-mapped address (`::ffff:127.0.0.1`, what a Java client does by default), which
/// the kernel routes as IPv4 after the hook; the ports are IPv4 only.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6Mapped,
}

/// Word 2 of an IPv4-mapped IPv6 address (`::ffff:0:0/96`), as the context holds it.
const MAPPED: u32 = u32::from_ne_bytes([0, 0, 0xff, 0xff]);

impl Family {
    /// Where the context holds the IPv4 address (for V6Mapped: word 3).
    fn addr(self) -> i16 {
        match self {
            Family::V4 => SA_USER_IP4,
            Family::V6Mapped => SA_USER_IP6 + 12,
        }
    }
}

/// The loaded and attached programs; dropping it (or the process ending) detaches them.
pub struct Bypass {
    _links: Vec<OwnedFd>,
}

/// Load and attach the bypass for `rules`. An error says which step failed; the proxy
/// then relays those connections itself.
pub fn attach(rules: &[Rule]) -> Result<Bypass, NetworkError> {
    let cg = cgroup2_root()?;
    let netns = host_netns_cookie()?;
    // One container per proxy: every rule goes to the same address.
    let Some(ctr) = rules.first().map(|r| r.ctr_ip) else {
        return Ok(Bypass { _links: Vec::new() });
    };
    let map = map_create()?;
    let sa = BPF_PROG_TYPE_CGROUP_SOCK_ADDR;
    // getpeername first: no rewritten socket exists before connect is on.
    let progs = [
        (
            sa,
            BPF_CGROUP_INET4_GETPEERNAME,
            getpeername_program(Family::V4, ctr, &map),
            "getpeername4",
        ),
        (
            sa,
            BPF_CGROUP_INET6_GETPEERNAME,
            getpeername_program(Family::V6Mapped, ctr, &map),
            "getpeername6",
        ),
        (
            sa,
            BPF_CGROUP_INET4_CONNECT,
            connect_program(Family::V4, rules, netns, &map),
            "connect4",
        ),
        (
            sa,
            BPF_CGROUP_INET6_CONNECT,
            connect_program(Family::V6Mapped, rules, netns, &map),
            "connect6",
        ),
    ];
    let mut links = Vec::new();
    for (typ, at, insns, what) in progs {
        let prog = load(typ, at, &insns, what)?;
        links.push(link(&cg, &prog, at)?);
    }
    Ok(Bypass { _links: links })
}

/// `r0 = 1; exit`: every hook here lets the call go on.
fn allow(a: &mut Asm) {
    a.op(MOV64_K, R0, 0, 0, 1).op(EXIT, 0, 0, 0, 0);
}

/// `connect4`/`connect6`: a TCP socket of the host's netns, not bound to an address
/// or device, connecting to one of `rules`' destinations goes to the container instead.
fn connect_program(fam: Family, rules: &[Rule], netns: u64, map: &OwnedFd) -> Vec<Insn> {
    let mut a = Asm::default();
    let (out, record, ours) = (a.label(), a.label(), a.label());
    // Every connect() of the host runs this, once per proxy: the cheapest test that
    // rules out most of them (the destination port) comes first (bench/bypasscost.py).
    a.op(MOV64_X, R6, R1, 0, 0)
        .op(LDX_W, R8, R6, SA_USER_PORT, 0);
    for r in rules {
        a.jump(JEQ32_K, R8, 0, r.port as i32, ours);
    }
    a.jump(JA, 0, 0, 0, out);
    a.here(ours);
    // UDP stays with the proxy (one upstream socket per client, 90 s timeout).
    a.op(LDX_W, R2, R6, SA_TYPE, 0)
        .jump(JNE32_K, R2, 0, libc::SOCK_STREAM, out);
    if fam == Family::V6Mapped {
        // Native IPv6 destinations are not ours (the ports are IPv4).
        a.op(LDX_W, R2, R6, SA_USER_IP6, 0)
            .jump(JNE32_K, R2, 0, 0, out)
            .op(LDX_W, R2, R6, SA_USER_IP6 + 4, 0)
            .jump(JNE32_K, R2, 0, 0, out)
            .op(LDX_W, R2, R6, SA_USER_IP6 + 8, 0)
            .jump(JNE32_K, R2, 0, MAPPED as i32, out);
    }
    // A socket bound to 127.0.0.1 (or to `lo`) would send 127.0.0.1 onto the bridge:
    // the route lookup refuses it (no route_localnet). The proxy has it.
    a.op(LDX_DW, R2, R6, SA_SK, 0);
    let src: &[i16] = match fam {
        Family::V4 => &[SK_SRC_IP4],
        Family::V6Mapped => &[SK_SRC_IP6, SK_SRC_IP6 + 4, SK_SRC_IP6 + 8, SK_SRC_IP6 + 12],
    };
    for off in src.iter().chain(&[SK_BOUND_DEV_IF]) {
        a.op(LDX_W, R3, R2, *off, 0).jump(JNE32_K, R3, 0, 0, out);
    }
    // Only the host's namespace: a container's 127.0.0.1 is its own.
    a.op(MOV64_X, R1, R6, 0, 0)
        .call(FN_GET_NETNS_COOKIE)
        .imm64(R2, 0, netns)
        .jump(JNE64_X, R0, R2, 0, out)
        .op(LDX_W, R7, R6, fam.addr(), 0);
    for r in rules {
        let next = a.label();
        a.op(MOV32_X, R2, R7, 0, 0)
            .op(AND32_K, R2, 0, 0, r.mask as i32)
            .jump(JNE32_K, R2, 0, r.net as i32, next)
            .jump(JNE32_K, R8, 0, r.port as i32, next)
            // The verifier refuses immediate stores into the context: via r2.
            .op(MOV32_K, R2, 0, 0, r.ctr_ip as i32)
            .op(STX_W, R6, R2, fam.addr(), 0)
            .op(MOV32_K, R2, 0, 0, r.ctr_port as i32)
            .op(STX_W, R6, R2, SA_USER_PORT, 0)
            .jump(JA, 0, 0, 0, record);
        a.here(next);
    }
    a.jump(JA, 0, 0, 0, out);
    a.here(record);
    // The socket's storage = {asked ip, asked port, container ip, container port}.
    // Without memory for it the connection still goes straight to the container; only
    // its getpeername() then names the container.
    a.map(R1, map)
        .op(LDX_DW, R2, R6, SA_SK, 0)
        .op(MOV64_K, R3, 0, 0, 0)
        .op(MOV64_K, R4, 0, 0, BPF_SK_STORAGE_GET_F_CREATE)
        .call(FN_SK_STORAGE_GET)
        .jump(JEQ64_K, R0, 0, 0, out)
        .op(STX_W, R0, R7, 0, 0)
        .op(STX_W, R0, R8, 4, 0)
        .op(LDX_W, R2, R6, fam.addr(), 0)
        .op(STX_W, R0, R2, 8, 0)
        .op(LDX_W, R2, R6, SA_USER_PORT, 0)
        .op(STX_W, R0, R2, 12, 0);
    a.here(out);
    allow(&mut a);
    a.finish()
}

/// `getpeername4`/`getpeername6`: a rewritten socket still connected to the container
/// names the address it asked for.
fn getpeername_program(fam: Family, ctr: u32, map: &OwnedFd) -> Vec<Insn> {
    let mut a = Asm::default();
    let out = a.label();
    // Only a socket connected to our container can be ours: that test first, before the
    // map (every getpeername() of the host runs this, once per proxy).
    a.op(MOV64_X, R6, R1, 0, 0)
        .op(LDX_W, R2, R6, fam.addr(), 0)
        .jump(JNE32_K, R2, 0, ctr as i32, out)
        .map(R1, map)
        .op(LDX_DW, R2, R6, SA_SK, 0)
        .op(MOV64_K, R3, 0, 0, 0)
        .op(MOV64_K, R4, 0, 0, 0)
        .call(FN_SK_STORAGE_GET)
        .jump(JEQ64_K, R0, 0, 0, out)
        .op(MOV64_X, R9, R0, 0, 0);
    if fam == Family::V6Mapped {
        a.op(LDX_W, R2, R6, SA_USER_IP6 + 8, 0)
            .jump(JNE32_K, R2, 0, MAPPED as i32, out);
    }
    a.op(LDX_W, R2, R9, 8, 0)
        .op(LDX_W, R3, R6, fam.addr(), 0)
        .jump(JNE32_X, R2, R3, 0, out)
        .op(LDX_W, R2, R9, 12, 0)
        .op(LDX_W, R3, R6, SA_USER_PORT, 0)
        .jump(JNE32_X, R2, R3, 0, out)
        .op(LDX_W, R2, R9, 0, 0)
        .op(STX_W, R6, R2, fam.addr(), 0)
        .op(LDX_W, R2, R9, 4, 0)
        .op(STX_W, R6, R2, SA_USER_PORT, 0);
    a.here(out);
    allow(&mut a);
    a.finish()
}

fn sys(what: &str, e: io::Error) -> NetworkError {
    NetworkError::Unsupported(format!("port bypass: {what}: {e}"))
}

/// The type information a socket-storage map must have (Documentation/bpf/btf.rst):
/// type 1 `int` (the key, as the kernel requires), type 2 `int[4]` (our value).
fn btf() -> Vec<u8> {
    const BTF_KIND_INT: u32 = 1;
    const BTF_KIND_ARRAY: u32 = 3;
    const BTF_INT_SIGNED: u32 = 1;
    let strings = b"\0int\0";
    let mut types: Vec<u32> = Vec::new();
    // [1] int: name "int" (offset 1), size 4, signed, 32 bits.
    types.extend([1, BTF_KIND_INT << 24, 4, (BTF_INT_SIGNED << 24) | 32]);
    // [2] int[4]: no name; element type 1, index type 1, 4 elements.
    types.extend([0, BTF_KIND_ARRAY << 24, 0, 1, 1, VALUE_SIZE / 4]);
    let type_len = (types.len() * 4) as u32;
    let mut b = Vec::new();
    b.extend(0xeb9f_u16.to_ne_bytes());
    b.extend([1u8, 0]);
    for v in [24u32, 0, type_len, type_len, strings.len() as u32] {
        b.extend(v.to_ne_bytes());
    }
    for t in types {
        b.extend(t.to_ne_bytes());
    }
    b.extend(strings);
    b
}

/// Socket-local storage rather than a map keyed by socket: the kernel frees an entry
/// with its socket, so no program has to run at every socket close of the host to
/// forget it (one did: ~0.25 µs per proxy per connection, bench/bypasscost.py).
fn map_create() -> Result<OwnedFd, NetworkError> {
    let btf = bpf::btf_load(&btf())
        .map_err(|r| sys(&format!("bpf(BPF_BTF_LOAD): {}", r.log), r.source))?;
    bpf::map_create(&MapSpec {
        map_type: BPF_MAP_TYPE_SK_STORAGE,
        key_size: 4,
        value_size: VALUE_SIZE,
        max_entries: 0,
        // Required of socket storage: allocated as sockets get it.
        map_flags: BPF_F_NO_PREALLOC,
        name: "oxcart_ports",
        btf: Some((btf.as_fd(), 1, 2)),
    })
    .map_err(|e| sys("bpf(BPF_MAP_CREATE)", e))
}

fn load(prog_type: u32, attach: u32, insns: &[Insn], what: &str) -> Result<OwnedFd, NetworkError> {
    bpf::prog_load(prog_type, attach, "oxcart_port", insns).map_err(|r| {
        sys(
            &format!(
                "bpf(BPF_PROG_LOAD) of the {what} program; verifier: {}",
                r.log
            ),
            r.source,
        )
    })
}

/// Attach as a link (multi-attach: other programs on the root, ours or anyone's, stay),
/// owned by the returned fd alone.
fn link(cg: &OwnedFd, prog: &OwnedFd, attach_type: u32) -> Result<OwnedFd, NetworkError> {
    bpf::link_create(prog.as_fd(), cg.as_fd(), attach_type)
        .map_err(|e| sys("bpf(BPF_LINK_CREATE) on the cgroup v2 root", e))
}

/// The root of the cgroup v2 hierarchy as mounted here (`/sys/fs/cgroup` on a v2 host,
/// `/sys/fs/cgroup/unified` on a hybrid one), from /proc/self/mountinfo.
fn cgroup2_root() -> Result<OwnedFd, NetworkError> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| sys("/proc/self/mountinfo", e))?;
    let dir = info
        .lines()
        .find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let f: Vec<&str> = pre.split_whitespace().collect();
            (post.split_whitespace().next() == Some("cgroup2") && f.get(3) == Some(&"/"))
                .then(|| f.get(4).map(|s| s.to_string()))?
        })
        .ok_or_else(|| NetworkError::Unsupported("port bypass: no cgroup v2 mount".into()))?;
    let c = std::ffi::CString::new(dir.clone())
        .map_err(|_| NetworkError::Unsupported(format!("port bypass: bad path {dir}")))?;
    // SAFETY: open of a NUL-terminated path; the fd is owned below.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(sys(&dir, io::Error::last_os_error()));
    }
    // SAFETY: a fresh fd from open.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The cookie of the network namespace this process is in (the host's, where the
/// proxy binds), as bpf_get_netns_cookie gives it to the program.
fn host_netns_cookie() -> Result<u64, NetworkError> {
    let s = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| sys("socket", e))?;
    let mut v = 0u64;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: getsockopt into a u64 we own, with its size.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            &mut v as *mut u64 as *mut libc::c_void,
            &mut len,
        )
    };
    if r != 0 {
        return Err(sys(
            "getsockopt(SO_NETNS_COOKIE)",
            io::Error::last_os_error(),
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxcart_cgroups::bpf::CALL;

    #[test]
    fn rules_cover_loopback_only() {
        let ctr = Ipv4Addr::new(10, 88, 0, 2);
        let any = Rule::new(Ipv4Addr::UNSPECIFIED, 8080, ctr, 80).unwrap();
        assert_eq!(any.net, u32::from_ne_bytes([127, 0, 0, 0]));
        assert_eq!(any.mask, u32::from_ne_bytes([255, 0, 0, 0]));
        // user_port is the port in network byte order, read as a native u32.
        assert_eq!(any.port.to_ne_bytes()[..2], 8080u16.to_be_bytes());
        assert_eq!(any.ctr_port.to_ne_bytes()[..2], 80u16.to_be_bytes());
        let lo = Rule::new(Ipv4Addr::new(127, 0, 0, 2), 1, ctr, 1).unwrap();
        assert_eq!(lo.mask, u32::MAX);
        assert_eq!(lo.net, u32::from_ne_bytes([127, 0, 0, 2]));
        assert_eq!(Rule::new(Ipv4Addr::new(192, 168, 1, 5), 1, ctr, 1), None);
    }

    #[test]
    fn every_jump_lands_inside_the_program() {
        let r = Rule::new(Ipv4Addr::UNSPECIFIED, 1, Ipv4Addr::new(10, 0, 0, 2), 2).unwrap();
        // A stand-in fd for the map: the encoding is checked, not loaded.
        let f = std::fs::File::open("/dev/null").unwrap();
        let map = OwnedFd::from(f);
        for p in [
            connect_program(Family::V4, &[r, r], 7, &map),
            connect_program(Family::V6Mapped, &[r, r], 7, &map),
            getpeername_program(Family::V4, 9, &map),
            getpeername_program(Family::V6Mapped, 9, &map),
        ] {
            for (i, ins) in p.iter().enumerate() {
                let jmp = ins.code & 0x07 == 0x05 || ins.code & 0x07 == 0x06;
                if jmp && ins.code != CALL && ins.code != EXIT {
                    let to = i as isize + 1 + ins.off as isize;
                    assert!(to > i as isize && (to as usize) < p.len(), "insn {i}");
                }
            }
            assert_eq!(p.last().map(|i| i.code), Some(EXIT));
        }
    }
}
