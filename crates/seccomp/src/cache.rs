//! On-disk cache of compiled filters (crun keeps one too: compiling podman's default
//! profile for three arches costs milliseconds; reading a program back, microseconds).
//!
//! Entry: `<dir>/<sha256 key hex>.bpf`, written to a temp file in the same directory
//! and renamed into place, so a reader sees a whole entry or none. Layout (host
//! endian, the cache never leaves the host):
//!
//! ```text
//! "OXSCMP02" | key[32] | flags u32 | notify u32 | lib stamp (5 x u64)
//! | lib name (u32 len + bytes) | skipped: u32 count, each u32 len + bytes
//! | n u32 | n x sock_filter | sha256(all of the above)[32]
//! ```
//! An entry is used only if its checksum, key and owner (our euid, not group/other
//! writable) check out, and the libseccomp that compiled it is the one linked into
//! this binary (a digest of the archive build.rs linked): a runtime
//! built against a libseccomp that learnt new syscall names invalidates entries
//! without anyone clearing the cache.

use crate::bpf::{SockFilter, MAX_INSNS};
use crate::{libseccomp, profile, Filter, SeccompError};
use oxcart_spec::LinuxSeccomp;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Where the runtime keeps compiled filters by default (tmpfs: cleared on boot).
pub const DEFAULT_CACHE_DIR: &str = "/run/oxcart/seccomp-cache";

// 02: the stamp names the linked libseccomp archive (01 stamped a dlopen()ed file).
const MAGIC: &[u8; 8] = b"OXSCMP02";

/// What [`crate::compile_cached`] did with the cache.
#[derive(Debug)]
pub enum CacheStatus {
    /// Loaded from the cache; libseccomp was not used.
    Hit,
    /// Compiled and stored.
    Stored,
    /// Compiled, but the entry could not be written (the filter is still good).
    NotStored(SeccompError),
}

fn feed_str(h: &mut Sha256, s: &str) {
    h.update((s.len() as u64).to_le_bytes());
    h.update(s.as_bytes());
}

fn feed_opt_u32(h: &mut Sha256, v: Option<u32>) {
    match v {
        None => h.update([0u8]),
        Some(v) => {
            h.update([1u8]);
            h.update(v.to_le_bytes());
        }
    }
}

/// The cache key of `profile`: SHA-256 over every field, length-prefixed (no two
/// profiles feed the same bytes), plus this crate's version, the cache format and the
/// native arch (the filter always covers the native arch).
pub fn cache_key(p: &LinuxSeccomp) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(MAGIC);
    feed_str(&mut h, env!("CARGO_PKG_VERSION"));
    feed_str(&mut h, profile::native_arch().map_or("?", |a| a.name));
    feed_str(&mut h, &p.default_action);
    feed_opt_u32(&mut h, p.default_errno_ret);
    h.update((p.architectures.len() as u64).to_le_bytes());
    for a in &p.architectures {
        feed_str(&mut h, a);
    }
    h.update((p.flags.len() as u64).to_le_bytes());
    for f in &p.flags {
        feed_str(&mut h, f);
    }
    // listenerPath/Metadata do not change the program, but keying on them costs
    // nothing and keeps "same key ⇒ same profile" simple to reason about.
    feed_str(&mut h, p.listener_path.as_deref().unwrap_or("\0none"));
    feed_str(&mut h, p.listener_metadata.as_deref().unwrap_or("\0none"));
    h.update((p.syscalls.len() as u64).to_le_bytes());
    for s in &p.syscalls {
        h.update((s.names.len() as u64).to_le_bytes());
        for n in &s.names {
            feed_str(&mut h, n);
        }
        feed_str(&mut h, &s.action);
        feed_opt_u32(&mut h, s.errno_ret);
        h.update((s.args.len() as u64).to_le_bytes());
        for a in &s.args {
            h.update(a.index.to_le_bytes());
            h.update(a.value.to_le_bytes());
            h.update(a.value_two.to_le_bytes());
            feed_str(&mut h, &a.op);
        }
    }
    h.finalize().into()
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

fn entry_name(key: &[u8; 32]) -> String {
    format!("{}.bpf", hex(key))
}

/// Identity of the libseccomp that compiles here: the digest of the archive build.rs
/// linked (another version, or a rebuilt or patched one of the same version, differs),
/// as the name stored in an entry and as its stamp. A constant, so a cache hit calls
/// nothing in libseccomp.
fn lib_identity() -> (String, [u64; 5]) {
    let digest = libseccomp::ARCHIVE_DIGEST;
    (format!("libseccomp.a {digest:016x}"), [digest, 0, 0, 0, 0])
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_ne_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_ne_bytes(self.take(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

fn decode(bytes: &[u8], key: &[u8; 32]) -> Option<Filter> {
    if bytes.len() < 32 {
        return None;
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != sum {
        return None;
    }
    let mut r = Reader(body);
    if r.take(8)? != MAGIC || r.take(32)? != key {
        return None;
    }
    let flags = r.u32()?;
    let uses_notify = r.u32()? != 0;
    let mut stamp = [0u64; 5];
    for s in &mut stamp {
        *s = r.u64()?;
    }
    let lib = r.string()?;
    if (lib, stamp) != lib_identity() {
        return None;
    }
    let n = r.u32()? as usize;
    let mut skipped = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        skipped.push(r.string()?);
    }
    let n = r.u32()? as usize;
    if n == 0 || n > MAX_INSNS || r.0.len() != n * 8 {
        return None;
    }
    let program =
        r.0.chunks_exact(8)
            .map(|c| SockFilter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
    Some(Filter {
        program,
        flags,
        uses_notify,
        skipped,
    })
}

/// A valid entry for `key`, or None (absent, corrupt, stale, or not trustworthy).
pub(crate) fn load(dir: &Path, key: &[u8; 32]) -> Option<Filter> {
    let mut f = fs::File::open(dir.join(entry_name(key))).ok()?;
    let m = f.metadata().ok()?;
    // A filter someone else could have written is not a filter we may load.
    // SAFETY: geteuid has no failure mode.
    if m.uid() != unsafe { libc::geteuid() } || m.mode() & 0o022 != 0 || !m.is_file() {
        return None;
    }
    let mut buf = Vec::with_capacity(m.len() as usize);
    f.read_to_end(&mut buf).ok()?;
    decode(&buf, key)
}

fn encode(key: &[u8; 32], f: &Filter, lib: &str, stamp: [u64; 5]) -> Vec<u8> {
    let mut b = Vec::with_capacity(128 + f.program.len() * 8);
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(key);
    b.extend_from_slice(&f.flags.to_ne_bytes());
    b.extend_from_slice(&u32::from(f.uses_notify).to_ne_bytes());
    for s in stamp {
        b.extend_from_slice(&s.to_ne_bytes());
    }
    let put_str = |b: &mut Vec<u8>, s: &str| {
        b.extend_from_slice(&(s.len() as u32).to_ne_bytes());
        b.extend_from_slice(s.as_bytes());
    };
    put_str(&mut b, lib);
    b.extend_from_slice(&(f.skipped.len() as u32).to_ne_bytes());
    for s in &f.skipped {
        put_str(&mut b, s);
    }
    b.extend_from_slice(&(f.program.len() as u32).to_ne_bytes());
    for i in &f.program {
        b.extend_from_slice(&i.code.to_ne_bytes());
        b.push(i.jt);
        b.push(i.jf);
        b.extend_from_slice(&i.k.to_ne_bytes());
    }
    let sum = Sha256::digest(&b);
    b.extend_from_slice(&sum);
    b
}

/// Write the entry for `key` atomically. Called right after a compile.
pub(crate) fn store(dir: &Path, key: &[u8; 32], f: &Filter) -> Result<(), SeccompError> {
    let err = |path: &Path, source: io::Error| SeccompError::Cache {
        path: path.to_path_buf(),
        source,
    };
    let (lib, stamp) = lib_identity();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| err(dir, e))?;
    let bytes = encode(key, f, &lib, stamp);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(
        ".tmp-{}-{}-{nanos}",
        hex(&key[..8]),
        std::process::id()
    ));
    let write = || -> io::Result<()> {
        let mut t = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)?;
        t.write_all(&bytes)?;
        // No fsync: the default dir is tmpfs, and a torn entry after a crash fails
        // its checksum and is recompiled.
        fs::rename(&tmp, dir.join(entry_name(key)))
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        err(&tmp, e)
    })
}

use std::os::unix::fs::DirBuilderExt;

#[cfg(test)]
mod tests {
    use super::*;
    use oxcart_spec::LinuxSyscall;

    #[test]
    fn key_changes_with_every_field() {
        let base = LinuxSeccomp {
            default_action: "SCMP_ACT_ERRNO".into(),
            syscalls: vec![LinuxSyscall {
                names: vec!["getpid".into()],
                action: "SCMP_ACT_ALLOW".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let k = cache_key(&base);
        assert_eq!(k, cache_key(&base.clone()));
        let mut p = base.clone();
        p.default_errno_ret = Some(1);
        assert_ne!(cache_key(&p), k);
        let mut p = base.clone();
        p.syscalls[0].names = vec!["getp".into(), "id".into()];
        assert_ne!(cache_key(&p), k);
        let mut p = base.clone();
        p.syscalls[0].errno_ret = Some(0);
        assert_ne!(cache_key(&p), k);
        let mut p = base;
        p.flags = vec!["SECCOMP_FILTER_FLAG_LOG".into()];
        assert_ne!(cache_key(&p), k);
    }

    #[test]
    fn decode_rejects_corruption() {
        let f = Filter {
            program: vec![SockFilter {
                code: 6,
                jt: 0,
                jf: 0,
                k: 0x7fff_0000,
            }],
            flags: 2,
            uses_notify: false,
            skipped: vec!["foo".into()],
        };
        let key = [7u8; 32];
        let (lib, stamp) = lib_identity();
        let lib = lib.as_str();
        let bytes = encode(&key, &f, lib, stamp);
        assert_eq!(decode(&bytes, &key), Some(f.clone()));
        assert_eq!(decode(&bytes, &[8u8; 32]), None);
        for i in [0, 9, 45, bytes.len() - 40, bytes.len() - 1] {
            let mut b = bytes.clone();
            b[i] ^= 1;
            assert_eq!(decode(&b, &key), None, "flip at {i}");
        }
        assert_eq!(decode(&bytes[..bytes.len() - 1], &key), None);
        // Compiled by another libseccomp archive.
        let mut other = stamp;
        other[0] ^= 1;
        assert_eq!(decode(&encode(&key, &f, lib, other), &key), None);
        assert_eq!(
            decode(&encode(&key, &f, "libseccomp.a 0", stamp), &key),
            None
        );
    }
}
