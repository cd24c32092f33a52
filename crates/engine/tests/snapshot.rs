//! Snapshots, diff, cp, export and commit against real overlay mounts over images in a
//! temporary ImageStore. Every test that mounts runs in a private mount namespace owned
//! by a helper thread (`in_private_ns`), so a failing test leaks no mount: the
//! namespace dies with the thread. Needs root, busybox-static and podman.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use oxcart_engine::changes::{changes, Change};
use oxcart_engine::snapshot::{Snapshot, SnapshotError};
use oxcart_image::db::ImageRecord;
use oxcart_image::pull::NoProgress;
use oxcart_image::{ImageStore, Reference};
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

// ------------------------------------------------------------------ helpers

/// Run `f` on a thread in its own mount namespace (everything below `/` private), so
/// mounts vanish with the thread whatever happens.
fn in_private_ns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let h = std::thread::spawn(move || {
        // SAFETY: plain syscalls; unshare(CLONE_NEWNS) affects only this thread (it
        // also unshares CLONE_FS).
        unsafe {
            assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0, "unshare");
            assert_eq!(
                libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null()
                ),
                0,
                "make / private"
            );
        }
        f()
    });
    match h.join() {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// Unmounts on drop (inside the namespace too, so a test also checks unmount works).
struct Mounted(Snapshot);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = self.0.unmount();
    }
}

fn header(path: &str, ty: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).unwrap();
    h.set_entry_type(ty);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(size);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    h
}

/// A small busybox rootfs: busybox with applet symlinks, /etc files, a directory with
/// content (for opaque-directory tests), a hardlink and a file owned by 1000:1000.
fn rootfs_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for d in [
        "bin",
        "etc",
        "opt",
        "opt/keep",
        "opt/keep/sub",
        "usr",
        "usr/share",
        "var",
        "home",
        "home/user",
    ] {
        b.append(&header(d, tar::EntryType::Directory, 0o755, 0), &[][..])
            .unwrap();
    }
    b.append(
        &header("tmp", tar::EntryType::Directory, 0o1777, 0),
        &[][..],
    )
    .unwrap();
    let bb = std::fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
    b.append(
        &header(
            "bin/busybox",
            tar::EntryType::Regular,
            0o755,
            bb.len() as u64,
        ),
        &bb[..],
    )
    .unwrap();
    for app in [
        "sh", "ls", "cat", "rm", "mkdir", "touch", "echo", "chmod", "mv", "ln", "cp", "true",
        "grep", "test",
    ] {
        let mut h = header(&format!("bin/{app}"), tar::EntryType::Symlink, 0o777, 0);
        h.set_link_name("busybox").unwrap();
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
    }
    let files: &[(&str, &[u8], u32)] = &[
        (
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n",
            0o644,
        ),
        ("etc/group", b"root:x:0:\nuser:x:1000:\n", 0o644),
        ("etc/motd", b"image motd\n", 0o600),
        ("opt/keep/a", b"a\n", 0o644),
        ("opt/keep/b", b"b\n", 0o644),
        ("opt/keep/sub/c", b"c\n", 0o644),
        ("usr/share/data", b"data\n", 0o444),
    ];
    for (p, data, mode) in files {
        b.append(
            &header(p, tar::EntryType::Regular, *mode, data.len() as u64),
            &data[..],
        )
        .unwrap();
    }
    let mut h = header("home/user/own", tar::EntryType::Regular, 0o640, 4);
    h.set_uid(1000);
    h.set_gid(1000);
    h.set_cksum();
    b.append(&h, &b"mine"[..]).unwrap();
    let mut h = header("usr/share/data-link", tar::EntryType::Link, 0o444, 0);
    h.set_link_name("usr/share/data").unwrap();
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();
    b.into_inner().unwrap()
}

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    ctrs: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("store");
        let ctrs = tmp.path().join("containers");
        std::fs::create_dir(&ctrs).unwrap();
        Env {
            root,
            ctrs,
            _tmp: tmp,
        }
    }
    fn store(&self) -> ImageStore {
        ImageStore::open(&self.root).unwrap()
    }
    fn image(&self, st: &mut ImageStore) -> ImageRecord {
        let tar = rootfs_tar();
        st.import(
            Box::new(std::io::Cursor::new(tar)),
            Path::new("rootfs.tar"),
            Some(&Reference::parse("test/busybox:1").unwrap()),
            &NoProgress,
        )
        .unwrap()
    }
    fn snapshot(&self, name: &str) -> Snapshot {
        let d = self.ctrs.join(name);
        std::fs::create_dir(&d).unwrap();
        Snapshot::create(&d).unwrap()
    }
}

impl Drop for Env {
    /// After a failed test something may still be mounted (a busy unmount): detach it
    /// so the temporary directory can go. Tests mount only in their own namespace, so
    /// this touches nothing else.
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(&self.ctrs) {
            for e in rd.flatten() {
                if let Ok(c) =
                    std::ffi::CString::new(e.path().join("rootfs").as_os_str().as_encoded_bytes())
                {
                    // SAFETY: valid C string; EINVAL when nothing is mounted.
                    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
                }
            }
        }
    }
}

/// `chroot ROOT /bin/sh -c SCRIPT`, asserting success.
fn sh_in(root: &Path, script: &str) {
    let out = Command::new("chroot")
        .arg(root)
        .args(["/bin/sh", "-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One line per path: type, mode, owner, content digest / target / device, xattrs.
fn dump(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    dump_into(root, root, &mut out);
    out
}

fn dump_into(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    for p in v {
        let md = std::fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        let what = if ft.is_dir() {
            "dir".to_string()
        } else if ft.is_symlink() {
            format!("-> {}", std::fs::read_link(&p).unwrap().display())
        } else if ft.is_file() {
            let mut d = Vec::new();
            std::fs::File::open(&p)
                .unwrap()
                .read_to_end(&mut d)
                .unwrap();
            format!("file {}", oxcart_image::Digest::sha256_of(&d))
        } else if ft.is_char_device() {
            format!("char {}", md.rdev())
        } else {
            "other".into()
        };
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        out.insert(
            rel,
            format!(
                "{what} {:o} {}:{} mtime={} nlink={}",
                md.mode(),
                md.uid(),
                md.gid(),
                if ft.is_dir() { 0 } else { md.mtime() },
                if ft.is_dir() { 0 } else { md.nlink() }
            ),
        );
        if ft.is_dir() {
            dump_into(root, &p, out);
        }
    }
}

fn lines(ch: &[Change]) -> Vec<String> {
    ch.iter().map(|c| c.to_string()).collect()
}

// ------------------------------------------------------------------ snapshot

#[test]
fn a_volatile_mount_can_be_mounted_again() {
    in_private_ns(|| {
        let env = Env::new();
        let mut st = env.store();
        let img = env.image(&mut st);
        let lowers = st.layer_dirs(&img);
        let snap = env.snapshot("cv");
        snap.mount_volatile(&lowers).unwrap();
        let m = Mounted(snap.clone());
        // This thread has its own mount namespace (in_private_ns).
        let opts = std::fs::read_to_string("/proc/thread-self/mounts").unwrap();
        let line = opts
            .lines()
            .find(|l| l.split(' ').nth(1) == Some(snap.rootfs().to_str().unwrap()))
            .expect("the overlay in /proc/self/mounts");
        // Shown as `volatile`, or `fsync=volatile` since Linux 6.7.
        assert!(line.contains("volatile"), "{line}");
        std::fs::write(snap.rootfs().join("kept"), b"k").unwrap();
        drop(m);
        // The kernel's marker stays after a clean unmount and would refuse this.
        assert!(snap.work().join("work/incompat/volatile").exists());
        snap.mount(&lowers).unwrap();
        let _m = Mounted(snap.clone());
        assert_eq!(std::fs::read(snap.rootfs().join("kept")).unwrap(), b"k");
    });
}

#[test]
fn mount_sees_image_and_keeps_layers_untouched() {
    in_private_ns(|| {
        let env = Env::new();
        let mut st = env.store();
        let img = env.image(&mut st);
        let lowers = st.layer_dirs(&img);
        let before: Vec<_> = lowers.iter().map(|l| dump(l)).collect();
        let snap = env.snapshot("c1");
        assert!(!snap.is_mounted().unwrap());
        snap.mount(&lowers).unwrap();
        let m = Mounted(snap.clone());
        assert!(snap.is_mounted().unwrap());
        assert!(matches!(
            snap.mount(&lowers),
            Err(SnapshotError::AlreadyMounted(_))
        ));
        let root = snap.rootfs();
        assert_eq!(std::fs::read(root.join("opt/keep/a")).unwrap(), b"a\n");
        sh_in(
            &root,
            "rm /etc/group && echo changed >> /etc/passwd && rm -r /opt/keep && \
             chmod 700 /usr/share/data && echo new > /usr/share/data-link && \
             mv /etc/motd /etc/motd2 && rm /bin/ls",
        );
        assert!(!root.join("etc/group").exists());
        drop(m);
        assert!(!snap.is_mounted().unwrap());
        let after: Vec<_> = lowers.iter().map(|l| dump(l)).collect();
        assert_eq!(before, after, "the image's layer directories changed");
        // Mount again: the upper dir still hides the deletions.
        snap.mount(&lowers).unwrap();
        let _m = Mounted(snap.clone());
        assert!(!root.join("opt/keep").exists());
        assert!(!root.join("etc/group").exists());
        // Copy-up breaks the image's hardlink (no index=on): only the link changed.
        assert_eq!(
            std::fs::read(root.join("usr/share/data-link")).unwrap(),
            b"new\n"
        );
        assert_eq!(
            std::fs::read(root.join("usr/share/data")).unwrap(),
            b"data\n"
        );
    });
}

#[test]
fn unmount_is_idempotent_and_busy_is_an_error() {
    in_private_ns(|| {
        let env = Env::new();
        let mut st = env.store();
        let img = env.image(&mut st);
        let snap = env.snapshot("c1");
        snap.unmount().unwrap(); // never mounted
        snap.mount(&st.layer_dirs(&img)).unwrap();
        let _m = Mounted(snap.clone());
        let busy = std::fs::File::open(snap.rootfs().join("etc/passwd")).unwrap();
        let e = snap.unmount().unwrap_err();
        assert!(matches!(e, SnapshotError::Busy(_)), "{e}");
        assert!(
            e.to_string().contains(&snap.rootfs().display().to_string()),
            "{e}"
        );
        assert!(
            snap.is_mounted().unwrap(),
            "a busy mount must not be detached"
        );
        drop(busy);
        snap.unmount().unwrap();
        snap.unmount().unwrap();
        assert!(!snap.is_mounted().unwrap());
    });
}

#[test]
fn remove_unmounts_and_does_not_follow_symlinks() {
    in_private_ns(|| {
        let env = Env::new();
        let mut st = env.store();
        let img = env.image(&mut st);
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), b"keep").unwrap();
        let snap = env.snapshot("c1");
        snap.mount(&st.layer_dirs(&img)).unwrap();
        let _m = Mounted(snap.clone());
        std::os::unix::fs::symlink(outside.path(), snap.rootfs().join("escape")).unwrap();
        snap.remove().unwrap();
        assert!(!snap.upper().exists() && !snap.work().exists() && !snap.rootfs().exists());
        assert!(snap.dir().exists(), "the container directory itself stays");
        assert_eq!(
            std::fs::read(outside.path().join("precious")).unwrap(),
            b"keep"
        );
        assert!(Snapshot::open(snap.dir()).is_err());
    });
}

#[test]
fn create_leaves_nothing_when_it_fails() {
    let env = Env::new();
    let d = env.ctrs.join("c1");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("rootfs"), b"in the way").unwrap();
    let e = Snapshot::create(&d).unwrap_err();
    assert!(e.to_string().contains("rootfs"), "{e}");
    assert!(!d.join("upper").exists() && !d.join("work").exists());
    std::fs::remove_file(d.join("rootfs")).unwrap();
    let s = Snapshot::create(&d).unwrap();
    assert_eq!(std::fs::metadata(s.work()).unwrap().mode() & 0o777, 0o700);
    assert!(Snapshot::open(&d).is_ok());
    assert!(
        Snapshot::create(&d).is_err(),
        "a second create must not reuse the dirs"
    );
}

/// 70 layers under long paths: the options are far beyond mount(2)'s one page, so
/// this takes the fsconfig("lowerdir+") path; every layer must be visible, top wins.
#[test]
fn many_layers_with_long_paths() {
    in_private_ns(|| {
        let env = Env::new();
        let base = env._tmp.path().join(format!("layers-{}", "x".repeat(120)));
        let mut lowers = Vec::new();
        for i in 0..70 {
            let d = base.join(format!("{i:03}-{}", "l".repeat(100)));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(format!("f{i}")), format!("{i}")).unwrap();
            std::fs::write(d.join("top"), format!("{i}")).unwrap();
            lowers.push(d);
        }
        let total: usize = lowers.iter().map(|l| l.as_os_str().len() + 1).sum();
        assert!(total > 4096 * 2, "the test must exceed a page: {total}");
        // A path with ':' and ',' cannot go into the legacy option string either.
        let odd = base.join("odd:name,here");
        std::fs::create_dir_all(&odd).unwrap();
        std::fs::write(odd.join("odd"), b"odd").unwrap();
        lowers.insert(0, odd);
        let snap = env.snapshot("c1");
        snap.mount(&lowers).unwrap();
        let _m = Mounted(snap.clone());
        let r = snap.rootfs();
        for i in 0..70 {
            assert_eq!(
                std::fs::read_to_string(r.join(format!("f{i}"))).unwrap(),
                i.to_string()
            );
        }
        assert_eq!(std::fs::read_to_string(r.join("top")).unwrap(), "69");
        assert_eq!(std::fs::read(r.join("odd")).unwrap(), b"odd");
        // Writes go to the upper dir.
        std::fs::write(r.join("new"), b"n").unwrap();
        assert!(snap.upper().join("new").exists());
    });
}

/// A short stack takes mount(2); a mount of a layer path that does not exist fails
/// with an error naming the mount point.
#[test]
fn mount_errors_name_the_mount() {
    in_private_ns(|| {
        let env = Env::new();
        let snap = env.snapshot("c1");
        let e = snap
            .mount(&[PathBuf::from("/nonexistent/layer")])
            .unwrap_err();
        assert!(
            e.to_string().contains(&snap.rootfs().display().to_string()),
            "{e}"
        );
        assert!(matches!(snap.mount(&[]), Err(SnapshotError::NoLayers(_))));
        assert!(!snap.is_mounted().unwrap());
    });
}

// ------------------------------------------------------------------ diff

/// The operations of the differential diff test, run by busybox sh.
const DIFF_SCRIPT: &str = "echo new > /newfile && echo more >> /etc/passwd && rm /etc/group && \
    rm -r /opt/keep && mkdir /opt/keep && echo x > /opt/keep/x && \
    mkdir -p /new/dir/deep && touch /new/dir/deep/f && rm /bin/ls && \
    chmod 700 /usr/share/data && ln -s /etc/passwd /home/user/link && rm /opt/keep/../keep/x && \
    echo y > /opt/keep/y && mv /etc/motd /var/motd && mv /usr/share /usr/moved";

#[test]
fn diff_matches_podman() {
    let ours = in_private_ns(|| {
        let env = Env::new();
        let mut st = env.store();
        let img = env.image(&mut st);
        let lowers = st.layer_dirs(&img);
        let snap = env.snapshot("c1");
        snap.mount(&lowers).unwrap();
        let m = Mounted(snap.clone());
        sh_in(&snap.rootfs(), DIFF_SCRIPT);
        drop(m);
        lines(&changes(&snap.upper(), &lowers).unwrap())
    });
    let theirs = podman_diff(DIFF_SCRIPT);
    assert_eq!(ours, theirs, "ours (left) vs podman diff (right)");
    // And what docker's rules say, spelt out, so a podman change is noticed too.
    for want in [
        "A /newfile",
        "C /etc/passwd",
        "D /etc/group",
        "D /opt/keep",
        "A /opt/keep/y",
        "D /bin/ls",
        "A /new",
        "A /new/dir/deep/f",
        "D /usr/share",
        "A /usr/moved/data",
        "A /home/user/link",
        "D /etc/motd",
        "A /var/motd",
    ] {
        assert!(
            ours.iter().any(|l| l == want),
            "{want} missing from {ours:#?}"
        );
    }
}

/// Paths podman's own setup writes into every container (its mount points for
/// /etc/hosts and friends, /run/.containerenv): not the script's changes.
fn podman_own(line: &str) -> bool {
    [
        "/etc/hostname",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/etc/mtab",
        "/run",
        "/run/.containerenv",
        "/proc",
        "/sys",
        "/dev",
        "/run/secrets",
    ]
    .iter()
    .any(|p| line.get(2..) == Some(*p))
}

/// podman with its own storage in a temporary directory: nothing shared with the
/// host's podman, and all of it reset on drop.
struct Podman {
    tmp: tempfile::TempDir,
    base: Vec<String>,
}

impl Podman {
    fn new() -> Podman {
        let tmp = tempfile::tempdir().unwrap();
        let (sroot, srun) = (tmp.path().join("root"), tmp.path().join("runroot"));
        let mut base: Vec<String> = vec!["--root".into(), sroot.display().to_string()];
        base.extend(["--runroot".into(), srun.display().to_string()]);
        // libpod's own state (its "alive" file, which `system reset` removes) must not
        // be the shared /run/libpod, or another instance's reset makes this one
        // "refresh" its containers as after a reboot.
        let ltmp = tmp.path().join("libpod-tmp");
        base.extend(["--tmpdir".into(), ltmp.display().to_string()]);
        for (k, v) in [
            ("--storage-driver", "overlay"),
            ("--cgroup-manager", "cgroupfs"),
            ("--events-backend", "file"),
            // crun refuses this host's hybrid cgroups; runc takes them.
            ("--runtime", "runc"),
        ] {
            base.extend([k.to_string(), v.to_string()]);
        }
        Podman { tmp, base }
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("podman")
            .args(&self.base)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `podman run` with what this host needs (no network, ulimits within its hard
    /// limits).
    fn run_ctr(&self, name: &str, image: &str, script: &str) -> String {
        self.run(&[
            "run",
            "--name",
            name,
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            image,
            "/bin/sh",
            "-c",
            script,
        ])
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(&self.base)
            .args(["rm", "-a", "-f"])
            .output();
        let _ = Command::new("podman")
            .args(&self.base)
            .args(["system", "reset", "-f"])
            .output();
        // The overlay driver bind-mounts its directory onto itself, and reset leaves
        // that mount behind (seen with podman 4.3): take it off so the directory goes.
        let ov = std::ffi::CString::new(
            self.tmp
                .path()
                .join("root/overlay")
                .as_os_str()
                .as_encoded_bytes(),
        )
        .unwrap();
        // SAFETY: valid C string; our own mount or nothing (EINVAL, ignored).
        unsafe { libc::umount2(ov.as_ptr(), libc::UMOUNT_NOFOLLOW) };
    }
}

fn podman_diff(script: &str) -> Vec<String> {
    let pm = Podman::new();
    let tarp = pm.tmp.path().join("rootfs.tar");
    std::fs::write(&tarp, rootfs_tar()).unwrap();
    let tag = "localhost/oxcart-snapshot-diff:1";
    pm.run(&["import", tarp.to_str().unwrap(), tag]);
    pm.run_ctr("script", tag, script);
    pm.run(&["diff", "script"])
        .lines()
        .filter(|l| !podman_own(l))
        .map(String::from)
        .collect()
}

// ------------------------------------------------------------------ cp / export

use oxcart_engine::copy::{CopyError, Owner, Root};

/// Names, types, modes and owners of a tar stream, in order.
fn tar_list(data: &[u8]) -> Vec<String> {
    let mut ar = tar::Archive::new(data);
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| format!(" -> {}", l.display()))
                .unwrap_or_default();
            format!(
                "{} {:?} {:o} {}:{}{link}",
                e.path().unwrap().display(),
                h.entry_type(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap()
            )
        })
        .collect()
}

/// A mounted container over the test image, for cp tests, in the caller's namespace.
fn with_container<T: Send + 'static>(f: impl FnOnce(&Snapshot, &Path) -> T + Send + 'static) -> T {
    in_private_ns(move || {
        let env = Env::new();
        let mut st = env.store();
        let img = env.image(&mut st);
        let snap = env.snapshot("c1");
        let tm = snap.mount_temporarily(&st.layer_dirs(&img)).unwrap();
        let r = f(&snap, &tm.root());
        tm.finish().unwrap();
        r
    })
}

#[test]
fn cp_out_as_tar() {
    with_container(|_, root| {
        let r = Root::open(root, "ctr1").unwrap();
        let mut out = Vec::new();
        r.copy_out_tar("/home", false, &mut out).unwrap();
        assert_eq!(
            tar_list(&out),
            [
                "home/ Directory 40755 0:0",
                "home/user/ Directory 40755 0:0",
                "home/user/own Regular 100640 1000:1000",
            ]
        );
        let mut out = Vec::new();
        r.copy_out_tar("/usr/share/.", false, &mut out).unwrap();
        assert_eq!(
            tar_list(&out),
            [
                "data Regular 100444 0:0",
                "data-link Link 100444 0:0 -> ./data",
            ]
        );
        // A symlink is copied as itself unless -L.
        let mut out = Vec::new();
        r.copy_out_tar("/bin/sh", false, &mut out).unwrap();
        assert_eq!(tar_list(&out), ["sh Symlink 120777 0:0 -> busybox"]);
        let mut out = Vec::new();
        r.copy_out_tar("/bin/sh", true, &mut out).unwrap();
        assert_eq!(tar_list(&out), ["busybox Regular 100755 0:0"]);
        let e = r.copy_out_tar("/nope", false, &mut Vec::new()).unwrap_err();
        assert_eq!(e.to_string(), "No such container:path: ctr1:/nope");
        let e = r
            .copy_out_tar("/etc/passwd/", false, &mut Vec::new())
            .unwrap_err();
        assert!(matches!(e, CopyError::Invalid(_)), "{e}");
    });
}

#[test]
fn cp_symlinks_never_reach_the_host() {
    with_container(|_, root| {
        let host = tempfile::tempdir().unwrap();
        let hp = host.path().to_path_buf();
        std::fs::write(hp.join("secret"), b"host secret").unwrap();
        let before = dump(&hp);
        // Absolute and relative symlinks in the container pointing at the host dir.
        std::os::unix::fs::symlink(&hp, root.join("escape")).unwrap();
        let up = "../".repeat(20);
        std::os::unix::fs::symlink(
            format!("{up}{}", hp.strip_prefix("/").unwrap().display()),
            root.join("home/rel"),
        )
        .unwrap();
        let r = Root::open(root, "ctr1").unwrap();
        for p in ["/escape/secret", "/home/rel/secret"] {
            let e = r.copy_out_tar(p, false, &mut Vec::new()).unwrap_err();
            assert!(matches!(e, CopyError::NoSuchPath { .. }), "{p}: {e}");
            let e = r.copy_out_tar(p, true, &mut Vec::new()).unwrap_err();
            assert!(matches!(e, CopyError::NoSuchPath { .. }), "{p}: {e}");
        }
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("payload"), b"x").unwrap();
        let e = r
            .copy_in_from_host(&src.path().join("payload"), false, "/escape/", Owner::Keep)
            .unwrap_err();
        assert!(matches!(e, CopyError::NoSuchPath { .. }), "{e}");
        // With the directory made inside the container, the write lands there.
        std::fs::create_dir_all(root.join(hp.strip_prefix("/").unwrap())).unwrap();
        r.copy_in_from_host(&src.path().join("payload"), false, "/escape/", Owner::Keep)
            .unwrap();
        r.copy_in_from_host(
            &src.path().join("payload"),
            false,
            "/home/rel/p2",
            Owner::Keep,
        )
        .unwrap();
        let inside = root.join(hp.strip_prefix("/").unwrap());
        assert!(inside.join("payload").exists() && inside.join("p2").exists());
        // A tar stream that plants a symlink to / and writes through it, and one
        // that climbs with '..'.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header("link", tar::EntryType::Symlink, 0o777, 0);
        h.set_link_name(&hp).unwrap();
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
        b.append(
            &header("link/planted", tar::EntryType::Regular, 0o644, 1),
            &b"p"[..],
        )
        .unwrap();
        r.copy_in_tar(&mut &b.into_inner().unwrap()[..], "/tmp", Owner::Keep)
            .unwrap();
        assert!(inside.join("planted").exists());
        let mut raw = header("x", tar::EntryType::Regular, 0o644, 1);
        raw.as_gnu_mut().unwrap().name[..8].copy_from_slice(b"../../xx");
        raw.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&raw, &b"p"[..]).unwrap();
        let e = r
            .copy_in_tar(&mut &b.into_inner().unwrap()[..], "/tmp", Owner::Keep)
            .unwrap_err();
        assert!(matches!(e, CopyError::Entry { .. }), "{e}");
        assert_eq!(dump(&hp), before, "the host directory changed");
    });
}

#[test]
fn cp_host_rules_like_docker() {
    with_container(|_, root| {
        let r = Root::open(root, "ctr1").unwrap();
        let h = tempfile::tempdir().unwrap();
        let hp = h.path();
        // file → new path; file → existing dir; file → existing file.
        r.copy_out_to_host("/etc/passwd", false, &hp.join("pw"))
            .unwrap();
        assert!(std::fs::read_to_string(hp.join("pw"))
            .unwrap()
            .starts_with("root:"));
        std::fs::create_dir(hp.join("d")).unwrap();
        r.copy_out_to_host("/etc/motd", false, &hp.join("d"))
            .unwrap();
        let md = std::fs::metadata(hp.join("d/motd")).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o600, "mode kept");
        r.copy_out_to_host("/etc/group", false, &hp.join("pw"))
            .unwrap();
        assert!(std::fs::read_to_string(hp.join("pw"))
            .unwrap()
            .starts_with("root:x:0:\n"));
        // dir → new path: a copy named so; dir → existing dir: inside it;
        // dir/. → existing dir: its content.
        r.copy_out_to_host("/opt/keep", false, &hp.join("k"))
            .unwrap();
        assert!(hp.join("k/sub/c").exists());
        r.copy_out_to_host("/opt/keep", false, &hp.join("d"))
            .unwrap();
        assert!(hp.join("d/keep/a").exists());
        r.copy_out_to_host("/opt/keep/.", false, &hp.join("d"))
            .unwrap();
        assert!(hp.join("d/a").exists() && hp.join("d/sub/c").exists());
        // Errors: directory onto a file, a missing dir/ destination, a file with a
        // trailing slash.
        let e = r
            .copy_out_to_host("/opt/keep", false, &hp.join("pw"))
            .unwrap_err();
        assert!(
            e.to_string().contains("cannot copy a directory to a file"),
            "{e}"
        );
        let e = r
            .copy_out_to_host("/etc/passwd", false, &hp.join("nodir/"))
            .unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        let e = r.copy_out_to_host("/etc/passwd/", false, hp).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
        // The same rules inward, and owners kept (docker's daemon keeps the archive's).
        std::fs::create_dir(hp.join("src")).unwrap();
        std::fs::write(hp.join("src/f"), b"f").unwrap();
        std::os::unix::fs::chown(hp.join("src/f"), Some(1234), Some(5678)).unwrap();
        std::fs::set_permissions(
            hp.join("src/f"),
            std::os::unix::fs::PermissionsExt::from_mode(0o4751),
        )
        .unwrap();
        r.copy_in_from_host(&hp.join("src"), false, "/opt", Owner::Keep)
            .unwrap();
        let md = std::fs::metadata(root.join("opt/src/f")).unwrap();
        assert_eq!(
            (md.uid(), md.gid(), md.mode() & 0o7777),
            (1234, 5678, 0o4751)
        );
        r.copy_in_from_host(&hp.join("src/f"), false, "/newname", Owner::Set(7, 8))
            .unwrap();
        let md = std::fs::metadata(root.join("newname")).unwrap();
        assert_eq!((md.uid(), md.gid(), md.mode() & 0o7777), (7, 8, 0o4751));
        r.copy_in_from_host(&hp.join("src/."), false, "/fresh", Owner::Keep)
            .unwrap();
        assert!(root.join("fresh/f").is_file());
        let e = r
            .copy_in_from_host(&hp.join("src"), false, "/etc/passwd", Owner::Keep)
            .unwrap_err();
        assert!(
            e.to_string().contains("cannot copy a directory to a file"),
            "{e}"
        );
        let e = r
            .copy_in_from_host(&hp.join("src/f"), false, "/nodir/", Owner::Keep)
            .unwrap_err();
        assert_eq!(e.to_string(), "No such container:path: ctr1:/nodir/");
        let e = r
            .copy_in_tar(&mut &b""[..], "/etc/passwd", Owner::Keep)
            .unwrap_err();
        assert!(e.to_string().contains("must be a directory"), "{e}");
    });
}

#[test]
fn export_is_the_merged_rootfs() {
    with_container(|_, root| {
        sh_in(root, "rm -r /opt/keep && echo hi > /added");
        let r = Root::open(root, "ctr1").unwrap();
        let mut out = Vec::new();
        r.export(&mut out).unwrap();
        let names: Vec<String> = tar_list(&out)
            .into_iter()
            .map(|l| {
                l.split(' ')
                    .next()
                    .unwrap()
                    .trim_end_matches('/')
                    .to_string()
            })
            .collect();
        let want: Vec<String> = dump(root).into_keys().collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, want);
        assert!(names.contains(&"added".to_string()));
        assert!(!names.iter().any(|n| n.starts_with("opt/keep")));
    });
}

// ------------------------------------------------------------------ commit

use oxcart_engine::commit::{commit, layer_tar, CommitOptions};

const COMMIT_SCRIPT: &str = "echo added > /added && ln /added /added-link && \
    echo more >> /etc/passwd && rm /etc/group && rm -r /opt/keep && mkdir /opt/keep && \
    echo new > /opt/keep/new && rm /bin/ls && mv /usr/share /usr/moved";

/// What the committed image must show, checked in our mount and in podman.
const COMMIT_CHECK: &str = "test \"$(cat /added)\" = added && test ! -e /etc/group && \
    test ! -e /bin/ls && test \"$(ls /opt/keep)\" = new && grep -q more /etc/passwd && \
    test -e /bin/cat && test ! -e /usr/share && test \"$(cat /usr/moved/data)\" = data";

#[test]
fn commit_makes_an_image_that_mounts_saves_and_runs_in_podman() {
    let archive = in_private_ns(|| {
        let env = Env::new();
        let mut st = env.store();
        let parent = env.image(&mut st);
        let lowers = st.layer_dirs(&parent);
        let before: Vec<_> = lowers.iter().map(|l| dump(l)).collect();
        let snap = env.snapshot("c1");
        {
            let tm = snap.mount_temporarily(&lowers).unwrap();
            sh_in(&tm.root(), COMMIT_SCRIPT);
            tm.finish().unwrap();
        }
        // The layer tar in the image-spec's whiteout form.
        let mut t = Vec::new();
        layer_tar(&snap.upper(), &mut t).unwrap();
        let names = tar_list(&t);
        for want in [
            "etc/.wh.group Regular 600 0:0",
            "bin/.wh.ls Regular 600 0:0",
            "opt/keep/.wh..wh..opq Regular 600 0:0",
            "added-link Link 100644 0:0 -> added",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} not in {names:#?}");
        }
        let opts = CommitOptions {
            config: oxcart_engine::types::Config {
                cmd: Some(vec!["sh".into()]),
                env: Some(vec!["PATH=/bin".into()]),
                ..Default::default()
            },
            changes: vec!["ENV A=1".into(), "CMD [\"/bin/cat\", \"/added\"]".into()],
            author: "tester".into(),
            message: "a message".into(),
            created_by: "sh -c script".into(),
            reference: Some("test/committed:2".into()),
        };
        let rec = commit(&mut st, &parent, &snap.upper(), &opts).unwrap();
        assert_eq!(rec.layers.len(), parent.layers.len() + 1);
        assert_eq!(rec.tags, ["docker.io/test/committed:2"]);
        let cfg: serde_json::Value = serde_json::from_slice(&st.config(&rec).unwrap()).unwrap();
        assert_eq!(
            cfg["config"]["Cmd"],
            serde_json::json!(["/bin/cat", "/added"])
        );
        assert_eq!(
            cfg["config"]["Env"],
            serde_json::json!(["PATH=/bin", "A=1"])
        );
        assert_eq!(cfg["author"], "tester");
        let h = cfg["history"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(h["comment"], "a message");
        assert_eq!(h["created_by"], "sh -c script");
        assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
        // A bad change is refused before anything is stored.
        let n = st.list().unwrap().len();
        let mut bad = opts.clone();
        bad.changes = vec!["RUN rm -rf /".into()];
        let e = commit(&mut st, &parent, &snap.upper(), &bad).unwrap_err();
        assert!(
            e.to_string().contains("RUN is not a valid change command"),
            "{e}"
        );
        assert_eq!(st.list().unwrap().len(), n);
        // The new image mounts as a fresh container and shows the changes.
        let snap2 = env.snapshot("c2");
        {
            let tm = snap2.mount_temporarily(&st.layer_dirs(&rec)).unwrap();
            sh_in(&tm.root(), COMMIT_CHECK);
            let a = std::fs::metadata(tm.root().join("added")).unwrap();
            let b = std::fs::metadata(tm.root().join("added-link")).unwrap();
            assert_eq!(a.ino(), b.ino(), "the hardlink is kept");
            sh_in(&tm.root(), SECOND_SCRIPT);
            tm.finish().unwrap();
        }
        // diff over two layers: what the top layer deleted is new again (A), and
        // what the opaque directory hid is not the image's any more.
        let second = lines(&changes(&snap2.upper(), &st.layer_dirs(&rec)).unwrap());
        for want in ["A /etc/group", "A /opt/keep/a", "C /added"] {
            assert!(
                second.iter().any(|l| l == want),
                "{want} not in {second:#?}"
            );
        }
        let after: Vec<_> = lowers.iter().map(|l| dump(l)).collect();
        assert_eq!(before, after, "the parent's layers changed");
        // save works for an image with no registry digest, and loads back.
        let mut out = Vec::new();
        st.save(
            &["test/committed:2".to_string()],
            oxcart_image::archive::SaveFormat::Docker,
            &mut out,
        )
        .unwrap();
        let other = tempfile::tempdir().unwrap();
        let mut st2 = ImageStore::open(other.path()).unwrap();
        let loaded = st2
            .load(
                Box::new(std::io::Cursor::new(out.clone())),
                Path::new("x.tar"),
                &NoProgress,
            )
            .unwrap();
        assert_eq!(loaded[0].id, rec.id);
        (out, second)
    });
    let (archive, second) = archive;
    // podman loads the archive and runs the image: our layer means the same to it.
    let pm = Podman::new();
    let p = pm.tmp.path().join("img.tar");
    std::fs::write(&p, archive).unwrap();
    pm.run(&["load", "-i", p.to_str().unwrap()]);
    let out = pm.run_ctr("check", "docker.io/test/committed:2", COMMIT_CHECK);
    assert_eq!(out, "");
    // The image's own CMD, from the --change.
    let out = pm.run(&[
        "run",
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "docker.io/test/committed:2",
    ]);
    assert_eq!(out, "added\n");
    let cmd = pm.run(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Cmd}}",
        "docker.io/test/committed:2",
    ]);
    assert_eq!(cmd.trim(), r#"["/bin/cat","/added"]"#);
    // podman's diff over the two layers agrees, but for what a directory made opaque
    // in a lower layer hid: containers/storage looks for whiteouts in the layers
    // above, not opaque directories, and calls /opt/keep/a modified though the image
    // (as overlayfs shows it) has none. We say added.
    // (Names podman cannot take for an image ID prefix: `diff` accepts both.)
    pm.run_ctr("second", "docker.io/test/committed:2", SECOND_SCRIPT);
    let not_opt = |l: &String| !l[2..].starts_with("/opt");
    let theirs: Vec<String> = pm
        .run(&["diff", "second"])
        .lines()
        .filter(|l| !podman_own(l))
        .map(String::from)
        .filter(not_opt)
        .collect();
    let ours: Vec<String> = second.into_iter().filter(not_opt).collect();
    assert_eq!(ours, theirs, "ours (left) vs podman diff (right)");
}

/// Run in a container of the committed image: recreate what its layer deleted or hid.
const SECOND_SCRIPT: &str = "echo g > /etc/group && echo a > /opt/keep/a && echo c >> /added";

/// Entries of an export as podman would see them: name (no `./`, no trailing `/`),
/// type, mode, owner, size, link target.
fn export_entries(data: &[u8]) -> Vec<String> {
    let mut ar = tar::Archive::new(data);
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            let name = e.path().unwrap().display().to_string();
            let name = name
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_string();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| format!(" -> {}", l.display()))
                .unwrap_or_default();
            format!(
                "{name} {:?} {:o} {}:{} {}{link}",
                h.entry_type(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.size().unwrap()
            )
        })
        .collect()
}

#[test]
fn export_matches_podman_export() {
    let ours = in_private_ns(|| {
        let env = Env::new();
        let mut st = env.store();
        let img = env.image(&mut st);
        let snap = env.snapshot("c1");
        let tm = snap.mount_temporarily(&st.layer_dirs(&img)).unwrap();
        sh_in(&tm.root(), DIFF_SCRIPT);
        let mut out = Vec::new();
        Root::open(&tm.root(), "c1")
            .unwrap()
            .export(&mut out)
            .unwrap();
        tm.finish().unwrap();
        export_entries(&out)
    });
    let pm = Podman::new();
    let tarp = pm.tmp.path().join("rootfs.tar");
    std::fs::write(&tarp, rootfs_tar()).unwrap();
    pm.run(&[
        "import",
        tarp.to_str().unwrap(),
        "localhost/oxcart-export:1",
    ]);
    pm.run_ctr("exported", "localhost/oxcart-export:1", DIFF_SCRIPT);
    let out = Command::new("podman")
        .args(&pm.base)
        .args(["export", "exported"])
        .output()
        .unwrap();
    assert!(out.status.success());
    // podman's own mount points (/etc/hosts, /run/.containerenv, …) are not the
    // script's; /dev, /proc, /sys and /run are made by the runtime.
    let theirs: Vec<String> = export_entries(&out.stdout)
        .into_iter()
        .filter(|l| {
            let n = l.split(' ').next().unwrap_or("");
            !podman_own(&format!("A /{n}"))
        })
        .collect();
    assert_eq!(ours, theirs, "ours (left) vs podman export (right)");
}

/// A host tree to copy in: `file1`, and `src/` with `f` (0751) and `sub/g`.
fn host_tree(dir: &Path) {
    std::fs::write(dir.join("file1"), b"file one\n").unwrap();
    std::fs::create_dir_all(dir.join("src/sub")).unwrap();
    std::fs::write(dir.join("src/f"), b"f\n").unwrap();
    std::fs::set_permissions(
        dir.join("src/f"),
        std::os::unix::fs::PermissionsExt::from_mode(0o751),
    )
    .unwrap();
    std::fs::write(dir.join("src/sub/g"), b"g\n").unwrap();
}

/// (host source relative to the host tree, container destination) for copies in, and
/// (container source, host destination relative to the output dir) for copies out:
/// docker's destination rules, each case once.
const CP_IN: &[(&str, &str)] = &[
    ("file1", "/opt/"),
    ("file1", "/renamed"),
    ("src", "/opt"),
    ("src", "/newdir"),
    ("src/.", "/opt/keep"),
    ("file1", "/etc/passwd"),
];
const CP_OUT: &[(&str, &str)] = &[
    ("/opt/keep", "k"),
    ("/etc/passwd", "."),
    ("/opt/keep/.", "."),
    ("/usr/share", "k"),
];
// Not here: a symlink source (`c:/bin/sh`). docker copies the link itself unless -L
// (cli/command/container/cp.go resolves it only with followLink); podman copies the
// target. cp_out_as_tar checks docker's behaviour.

/// A host tree as lines without times (podman and we differ in when we copied).
fn tree_lines(dir: &Path) -> Vec<String> {
    dump(dir)
        .into_iter()
        .map(|(k, v)| {
            let v: Vec<&str> = v.split(' ').filter(|w| !w.starts_with("mtime=")).collect();
            format!("{k} {}", v.join(" "))
        })
        .collect()
}

#[test]
fn cp_matches_podman_cp() {
    let host = tempfile::tempdir().unwrap();
    host_tree(host.path());
    let hp = host.path().to_path_buf();
    let (ours_ctr, ours_out) = in_private_ns(move || {
        let env = Env::new();
        let mut st = env.store();
        let img = env.image(&mut st);
        let snap = env.snapshot("c1");
        let tm = snap.mount_temporarily(&st.layer_dirs(&img)).unwrap();
        let r = Root::open(&tm.root(), "c1").unwrap();
        for (src, dst) in CP_IN {
            r.copy_in_from_host(&hp.join(src), false, dst, Owner::Keep)
                .unwrap();
        }
        let out = tempfile::tempdir().unwrap();
        for (src, dst) in CP_OUT {
            r.copy_out_to_host(src, false, &out.path().join(dst))
                .unwrap();
        }
        let mut t = Vec::new();
        r.export(&mut t).unwrap();
        drop(r); // it holds the root open: the unmount would be busy
        tm.finish().unwrap();
        (export_entries(&t), tree_lines(out.path()))
    });
    let pm = Podman::new();
    let tarp = pm.tmp.path().join("rootfs.tar");
    std::fs::write(&tarp, rootfs_tar()).unwrap();
    pm.run(&["import", tarp.to_str().unwrap(), "localhost/oxcart-cp:1"]);
    pm.run(&[
        "create",
        "--name",
        "c",
        "localhost/oxcart-cp:1",
        "/bin/true",
    ]);
    for (src, dst) in CP_IN {
        let s = host.path().join(src);
        pm.run(&["cp", s.to_str().unwrap(), &format!("c:{dst}")]);
    }
    let out = tempfile::tempdir().unwrap();
    for (src, dst) in CP_OUT {
        let d = out.path().join(dst);
        pm.run(&["cp", &format!("c:{src}"), d.to_str().unwrap()]);
    }
    let t = Command::new("podman")
        .args(&pm.base)
        .args(["export", "c"])
        .output()
        .unwrap();
    assert!(t.status.success());
    let theirs_ctr: Vec<String> = export_entries(&t.stdout)
        .into_iter()
        .filter(|l| !podman_own(&format!("A /{}", l.split(' ').next().unwrap_or(""))))
        .collect();
    assert_eq!(
        ours_ctr, theirs_ctr,
        "container: ours (left) vs podman cp (right)"
    );
    assert_eq!(
        ours_out,
        tree_lines(out.path()),
        "host: ours (left) vs podman cp (right)"
    );
}

#[test]
fn cp_in_tar_special_entries() {
    with_container(|_, root| {
        let r = Root::open(root, "ctr1").unwrap();
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(150));
        let mut b = tar::Builder::new(Vec::new());
        b.append(&header("fifo", tar::EntryType::Fifo, 0o640, 0), &[][..])
            .unwrap();
        let mut h = header("null", tar::EntryType::Char, 0o666, 0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        h.set_uid(5);
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
        let mut h = header("x", tar::EntryType::Directory, 0o750, 0);
        b.append_data(&mut h, "d".repeat(120), &[][..]).unwrap();
        let mut h = header("x", tar::EntryType::Regular, 0o600, 4);
        b.append_data(&mut h, &long, &b"long"[..]).unwrap();
        let mut h = header("x", tar::EntryType::Link, 0o600, 0);
        b.append_link(&mut h, "hl", &long).unwrap();
        r.copy_in_tar(&mut &b.into_inner().unwrap()[..], "/tmp", Owner::Keep)
            .unwrap();
        let t = root.join("tmp");
        let md = std::fs::symlink_metadata(t.join("fifo")).unwrap();
        assert!(md.file_type().is_fifo() && md.mode() & 0o7777 == 0o640);
        let md = std::fs::symlink_metadata(t.join("null")).unwrap();
        assert!(md.file_type().is_char_device());
        assert_eq!(
            (md.rdev(), md.uid(), md.mode() & 0o7777),
            (libc::makedev(1, 3), 5, 0o666)
        );
        assert_eq!(std::fs::read(t.join(&long)).unwrap(), b"long");
        assert_eq!(
            std::fs::metadata(t.join("hl")).unwrap().ino(),
            std::fs::metadata(t.join(&long)).unwrap().ino()
        );
        let md = std::fs::metadata(t.join("d".repeat(120))).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o750, "directory attributes set last");
        // Out again: the same entries, the fifo a fifo, the hardlink a link.
        let mut out = Vec::new();
        r.copy_out_tar("/tmp/.", false, &mut out).unwrap();
        let l = tar_list(&out);
        assert!(l.iter().any(|e| e == "fifo Fifo 10640 0:0"), "{l:#?}");
        assert!(
            l.iter()
                .any(|e| e.starts_with("hl Link") || e.contains("Link 100600 0:0 -> ./hl")),
            "{l:#?}"
        );
        // A 0:0 character device would be an overlay whiteout: refused.
        let mut b = tar::Builder::new(Vec::new());
        b.append(&header("wh", tar::EntryType::Char, 0o600, 0), &[][..])
            .unwrap();
        let e = r
            .copy_in_tar(&mut &b.into_inner().unwrap()[..], "/etc", Owner::Keep)
            .unwrap_err();
        assert!(e.to_string().contains("whiteout"), "{e}");
    });
}
