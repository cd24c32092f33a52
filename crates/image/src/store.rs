//! On-disk layout of an oxcart image store and its crash-safety rules.
//!
//! ```text
//! <root>/store.lock            flock: shared by every command, exclusive for cleanup and GC
//! <root>/images.db             SQLite metadata (see db.rs)
//! <root>/blobs/sha256/<hex>    verified content (manifests, configs, compressed layers)
//! <root>/layers/<chainhex>/    one unpacked layer (overlayfs lowerdir), keyed by ChainID
//! <root>/locks/<chainhex>      flock serialising the unpack of one layer across processes
//! <root>/ingest/, <root>/tmp/  work in progress; renamed into place only once verified
//! ```
//!
//! Nothing becomes visible under `blobs/` or `layers/` until it is complete and verified
//! (write in `ingest/`/`tmp/`, then `rename(2)`, which is atomic within one filesystem).
//! A command killed mid-way leaves only `ingest/`/`tmp/` debris, removed by the next
//! command that finds no other command running (it gets the exclusive lock).

use crate::digest::{Digest, HashingWriter};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Store-level errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Filesystem error on a path.
    #[error("{path}: {source}")]
    Io {
        /// Path involved.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// Content did not match its descriptor.
    #[error("{what}: expected {expected}, got {actual}")]
    Verify {
        /// What was being verified.
        what: String,
        /// Expected value.
        expected: String,
        /// Actual value.
        actual: String,
    },
    /// Copying content failed (the cause names the source).
    #[error("{what}: {source}")]
    Copy {
        /// What was being written.
        what: String,
        /// Cause.
        source: io::Error,
    },
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { path, source }
}

/// A lock on the store, held for a command's lifetime.
pub struct StoreLock {
    file: File,
}

impl StoreLock {
    /// Drop to shared mode. (flock(2): conversion is not atomic, which is fine here.)
    pub fn downgrade(&self) -> io::Result<()> {
        flock(&self.file, libc::LOCK_SH)
    }
    /// Take exclusive mode, waiting for other commands to finish.
    pub fn upgrade(&self) -> io::Result<()> {
        flock(&self.file, libc::LOCK_EX)
    }
}

fn flock(f: &File, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: plain syscall on an fd we own.
        let r = unsafe { libc::flock(f.as_raw_fd(), op) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// An exclusive per-key lock file (e.g. one layer being unpacked).
pub struct KeyLock {
    _file: File,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A unique name for temporary work.
pub(crate) fn unique(prefix: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{t:x}", std::process::id())
}

/// The store's directories.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Open (creating if needed) a store rooted at `root`.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        for d in [
            "blobs/sha256",
            "blobs/sha512",
            "layers",
            "locks",
            "ingest",
            "tmp",
        ] {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        // Unpacked layers hold setuid binaries and device nodes with the image's owners:
        // other users must not reach them (docker keeps /var/lib/docker/overlay2 0710).
        // Only our own subdirectories are tightened; the root may be a directory the
        // user chose.
        use std::os::unix::fs::PermissionsExt;
        for d in ["blobs", "layers", "ingest", "tmp"] {
            let p = root.join(d);
            let mode = std::fs::metadata(&p)
                .map_err(io_err(&p))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700))
                    .map_err(io_err(&p))?;
            }
        }
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Lock the store for a command. `cleanup` removes debris of dead commands when no
    /// other command holds the lock; the lock is left in shared mode.
    pub fn lock(&self) -> Result<StoreLock, StoreError> {
        let p = self.root.join("store.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&p)
            .map_err(io_err(&p))?;
        // SAFETY: plain syscall on an fd we own.
        let got_ex = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        let lock = StoreLock { file };
        if got_ex {
            // Nobody else is running: everything in ingest/ and tmp/ is debris.
            self.clean_work_dirs()?;
        }
        lock.downgrade().map_err(io_err(&p))?;
        Ok(lock)
    }

    fn clean_work_dirs(&self) -> Result<(), StoreError> {
        for d in ["ingest", "tmp"] {
            let dir = self.root.join(d);
            let rd = std::fs::read_dir(&dir).map_err(io_err(&dir))?;
            for e in rd.flatten() {
                crate::unpack::remove_tree(&e.path()).map_err(io_err(e.path()))?;
            }
        }
        Ok(())
    }

    /// Lock one key (a ChainID) exclusively across processes.
    pub fn key_lock(&self, key: &str) -> Result<KeyLock, StoreError> {
        let p = self.root.join("locks").join(key);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(io_err(&p))?;
        flock(&file, libc::LOCK_EX).map_err(io_err(&p))?;
        Ok(KeyLock { _file: file })
    }

    /// Path of a blob (it may not exist).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(d.algorithm().name())
            .join(d.hex())
    }

    /// Whether a blob is present.
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).exists()
    }

    /// Read a whole (small) blob.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        let p = self.blob_path(d);
        std::fs::read(&p).map_err(io_err(p))
    }

    /// Path of an unpacked layer directory.
    pub fn layer_path(&self, chain: &Digest) -> PathBuf {
        self.root.join("layers").join(chain.hex())
    }

    /// A fresh path under `tmp/`.
    pub fn tmp_path(&self, prefix: &str) -> PathBuf {
        self.root.join("tmp").join(unique(prefix))
    }

    /// Start writing a blob; bytes go to `ingest/` until [`Ingest::commit`].
    pub fn ingest(&self, expected: &Digest, size: Option<u64>) -> Result<Ingest, StoreError> {
        let path = self.root.join("ingest").join(unique(expected.hex()));
        let f = File::options()
            .create_new(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok(Ingest {
            w: Some(HashingWriter::new(
                io::BufWriter::with_capacity(1 << 20, f),
                expected.algorithm(),
            )),
            path,
            expected: expected.clone(),
            size,
            dest: self.blob_path(expected),
            committed: false,
        })
    }

    /// Write a small blob whose bytes are in memory.
    pub fn put_bytes(&self, expected: &Digest, data: &[u8]) -> Result<(), StoreError> {
        if self.has_blob(expected) {
            return Ok(());
        }
        let mut ing = self.ingest(expected, Some(data.len() as u64))?;
        ing.write_all(data).map_err(|source| StoreError::Copy {
            what: format!("blob {expected}"),
            source,
        })?;
        ing.commit()
    }

    /// Write a small in-memory blob, checking it against a descriptor's size too.
    pub fn put_bytes_sized(
        &self,
        expected: &Digest,
        size: u64,
        data: &[u8],
    ) -> Result<(), StoreError> {
        if data.len() as u64 != size {
            return Err(StoreError::Verify {
                what: format!("blob {expected} size"),
                expected: size.to_string(),
                actual: data.len().to_string(),
            });
        }
        self.put_bytes(expected, data)
    }

    /// Copy a blob from a reader, verifying it.
    pub fn put_reader(
        &self,
        expected: &Digest,
        size: Option<u64>,
        r: &mut dyn Read,
    ) -> Result<(), StoreError> {
        if self.has_blob(expected) {
            return Ok(());
        }
        let mut ing = self.ingest(expected, size)?;
        io::copy(r, &mut ing).map_err(|source| StoreError::Copy {
            what: format!("blob {expected}"),
            source,
        })?;
        ing.commit()
    }

    /// Delete a blob (GC).
    pub fn remove_blob(&self, d: &Digest) -> Result<(), StoreError> {
        let p = self.blob_path(d);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(p)(e)),
            _ => Ok(()),
        }
    }
}

/// A blob being written. Dropping it without [`Ingest::commit`] deletes the partial file.
pub struct Ingest {
    w: Option<HashingWriter<io::BufWriter<File>>>,
    path: PathBuf,
    expected: Digest,
    size: Option<u64>,
    dest: PathBuf,
    committed: bool,
}

impl Ingest {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.w.as_ref().map(|w| w.count()).unwrap_or(0)
    }

    /// Verify size then digest (descriptor.md: size first), fsync, and rename into place.
    pub fn commit(mut self) -> Result<(), StoreError> {
        let Some(w) = self.w.take() else {
            return Ok(());
        };
        let (buf, digest, count) = w.finish();
        let what = format!("blob {}", self.expected);
        let file = buf.into_inner().map_err(|e| StoreError::Copy {
            what: what.clone(),
            source: e.into_error(),
        })?;
        if let Some(s) = self.size {
            if s != count {
                return Err(StoreError::Verify {
                    what: format!("{what} size"),
                    expected: s.to_string(),
                    actual: count.to_string(),
                });
            }
        }
        if digest != self.expected {
            return Err(StoreError::Verify {
                what: format!("{what} digest"),
                expected: self.expected.to_string(),
                actual: digest.to_string(),
            });
        }
        // fsync before rename: after a crash the name must never point at missing data.
        file.sync_all().map_err(io_err(&self.path))?;
        std::fs::rename(&self.path, &self.dest).map_err(io_err(&self.dest))?;
        self.committed = true;
        Ok(())
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.w {
            Some(w) => {
                let n = w.write(buf)?;
                if let Some(s) = self.size {
                    // Refuse early rather than fill the disk for a lying server.
                    if w.count() > s {
                        return Err(io::Error::other(format!(
                            "more than the {s} bytes the descriptor declares"
                        )));
                    }
                }
                Ok(n)
            }
            None => Err(io::Error::other("ingest already committed")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.w {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ingest_verifies_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let d = Digest::sha256_of(b"hello");
        // Wrong content: refused, nothing visible, no debris.
        assert!(matches!(
            s.put_bytes(&d, b"hellO"),
            Err(StoreError::Verify { .. })
        ));
        assert!(!s.has_blob(&d));
        assert_eq!(
            std::fs::read_dir(dir.path().join("ingest"))
                .unwrap()
                .count(),
            0
        );
        // Wrong size declared.
        let mut r: &[u8] = b"hello";
        assert!(s.put_reader(&d, Some(4), &mut r).is_err());
        assert!(!s.has_blob(&d));
        s.put_bytes(&d, b"hello").unwrap();
        assert_eq!(s.read_blob(&d).unwrap(), b"hello");
    }

    #[test]
    fn lock_cleans_debris_only_when_alone() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let first = s.lock().unwrap();
        std::fs::write(dir.path().join("tmp/debris"), b"x").unwrap();
        // Another command is running (first holds a shared lock): no cleanup.
        let second = s.lock().unwrap();
        assert!(dir.path().join("tmp/debris").exists());
        drop(first);
        drop(second);
        let _third = s.lock().unwrap();
        assert!(!dir.path().join("tmp/debris").exists());
    }
}
