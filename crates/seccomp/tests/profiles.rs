//! Whole profiles: podman's default, the cache, unknown names, malformed input.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;
use common::*;
use oxcart_seccomp::{compile, compile_cached, CacheStatus};

const NR_FUTURE: i64 = 1000;

#[cfg(target_arch = "x86_64")]
fn int80(nr: u32) -> Result<u32, i32> {
    let mut ret = nr;
    // SAFETY: an argument-less compat syscall; int 0x80 may clobber r8-r11.
    unsafe {
        std::arch::asm!(
            "int 0x80",
            inlateout("eax") ret,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            options(nostack)
        );
    }
    let r = ret as i32;
    if r < 0 {
        Err(-r)
    } else {
        Ok(ret)
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn podman_default_profile() {
    let p = podman_profile();
    assert_eq!(
        p.architectures,
        ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    );
    // What the profile says, checked first so a changed profile fails here, clearly.
    let allow = vec![("SCMP_ACT_ALLOW".to_string(), None)];
    let eperm = vec![("SCMP_ACT_ERRNO".to_string(), Some(1))];
    for n in ["unshare", "mount", "keyctl", "getpid"] {
        assert_eq!(actions_for(&p, n), allow, "{n} in {PODMAN_PROFILE}");
    }
    for n in ["kexec_load", "bpf", "vmsplice"] {
        assert_eq!(actions_for(&p, n), eperm, "{n} in {PODMAN_PROFILE}");
    }
    assert!(actions_for(&p, "create_module").is_empty());
    assert_eq!(p.default_action, "SCMP_ACT_ERRNO");
    assert_eq!(p.default_errno_ret, Some(libc::ENOSYS as u32));

    let f = compile(&p).unwrap();
    let target = c"/nonexistent-oxcart-seccomp-test";
    let out = run_in_child(&f, |_| {
        if sys0(libc::SYS_getpid).is_err() {
            return 1;
        }
        // Allowed by seccomp (podman relies on capabilities for these): the kernel
        // answers. unshare(0) is a no-op; mount on a missing target is ENOENT;
        // keyctl with an unknown operation is EOPNOTSUPP.
        if sys0(libc::SYS_unshare) != Ok(0) {
            return 2;
        }
        if sys(libc::SYS_mount, [0, target.as_ptr() as u64, 0, 0, 0, 0]) != Err(libc::ENOENT) {
            return 3;
        }
        if sys(libc::SYS_keyctl, [0xffff, 0, 0, 0, 0, 0]) != Err(libc::EOPNOTSUPP) {
            return 4;
        }
        // Denied with the profile's errno.
        if sys0(libc::SYS_kexec_load) != Err(libc::EPERM) {
            return 5;
        }
        if sys0(libc::SYS_bpf) != Err(libc::EPERM) {
            return 6;
        }
        if sys0(libc::SYS_vmsplice) != Err(libc::EPERM) {
            return 7;
        }
        // socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT) without CAP_AUDIT_WRITE: EINVAL.
        let audit = [libc::AF_NETLINK as u64, libc::SOCK_RAW as u64, 9, 0, 0, 0];
        if sys(libc::SYS_socket, audit) != Err(libc::EINVAL) {
            return 8;
        }
        let udp = [libc::AF_INET as u64, libc::SOCK_DGRAM as u64, 0, 0, 0, 0];
        match sys(libc::SYS_socket, udp) {
            Ok(fd) => {
                let _ = sys(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0]);
            }
            Err(_) => return 9,
        }
        // Unlisted (old or newer than the profile): the default, ENOSYS.
        if sys0(174 /* create_module, x86_64 */) != Err(libc::ENOSYS) {
            return 10;
        }
        if sys0(NR_FUTURE) != Err(libc::ENOSYS) {
            return 11;
        }
        // The i386 ABI is covered too: getpid (20) allowed, kexec_load (283) EPERM.
        if int80(20).is_err() {
            return 12;
        }
        if int80(283) != Err(libc::EPERM) {
            return 13;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn cache_hit_returns_the_identical_program() {
    let dir = TempDir::new("cache");
    let cache = dir.0.join("seccomp-cache");
    let p = podman_profile();
    let fresh = compile(&p).unwrap();

    let (f1, s1) = compile_cached(&p, &cache).unwrap();
    assert!(matches!(s1, CacheStatus::Stored), "{s1:?}");
    let (f2, s2) = compile_cached(&p, &cache).unwrap();
    assert!(matches!(s2, CacheStatus::Hit), "{s2:?}");
    assert_eq!(f1, fresh);
    assert_eq!(f2, fresh);

    let entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        entries.len(),
        1,
        "one entry, no temp files left: {entries:?}"
    );
    let entry = &entries[0];
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(entry).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let key = oxcart_seccomp::cache_key(&p);
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        entry.file_name().unwrap().to_str().unwrap(),
        format!("{hex}.bpf")
    );

    // A different profile is a different entry.
    let mut p2 = p.clone();
    p2.default_errno_ret = Some(1);
    let (f3, s3) = compile_cached(&p2, &cache).unwrap();
    assert!(matches!(s3, CacheStatus::Stored));
    assert_ne!(f3.program(), f1.program());

    // A corrupt entry is recompiled and replaced, never loaded.
    let mut bytes = std::fs::read(entry).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(entry, &bytes).unwrap();
    let (f4, s4) = compile_cached(&p, &cache).unwrap();
    assert!(matches!(s4, CacheStatus::Stored), "{s4:?}");
    assert_eq!(f4, fresh);

    // An entry others could have written is not trusted.
    std::fs::set_permissions(entry, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (_, s5) = compile_cached(&p, &cache).unwrap();
    assert!(matches!(s5, CacheStatus::Stored), "{s5:?}");
    let (_, s6) = compile_cached(&p, &cache).unwrap();
    assert!(matches!(s6, CacheStatus::Hit), "{s6:?}");

    // A cached filter still works.
    let out = run_in_child(&f2, |_| {
        (sys0(libc::SYS_kexec_load) != Err(libc::EPERM)) as i32
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn cache_store_failure_still_returns_the_filter() {
    let dir = TempDir::new("cache-ro");
    // A regular file where the cache directory should be.
    let blocker = dir.0.join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let p = profile(
        "SCMP_ACT_ALLOW",
        vec![rule(&["getppid"], "SCMP_ACT_ERRNO", None)],
    );
    let (f, s) = compile_cached(&p, &blocker.join("cache")).unwrap();
    match s {
        CacheStatus::NotStored(e) => assert!(e.to_string().contains("not-a-dir"), "{e}"),
        other => panic!("expected NotStored, got {other:?}"),
    }
    assert_eq!(f, compile(&p).unwrap());
}

#[test]
fn malformed_profiles_are_rejected_even_when_cached() {
    let dir = TempDir::new("cache-bad");
    let mut p = profile(
        "SCMP_ACT_ERRNO",
        vec![
            rule(&["getpid"], "SCMP_ACT_ALLOW", None),
            rule(&["read"], "SCMP_ACT_ALLOW", None),
            rule(&["write"], "SCMP_ACT_ALLOW", None),
            rule(&["close"], "SCMP_ACT_FOO", None),
        ],
    );
    for e in [
        compile(&p).unwrap_err(),
        compile_cached(&p, &dir.0).unwrap_err(),
    ] {
        assert_eq!(
            e.to_string(),
            r#"linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO""#
        );
    }
    p.syscalls[3].action = "SCMP_ACT_ALLOW".into();
    p.syscalls[1].errno_ret = Some(5);
    assert_eq!(
        compile(&p).unwrap_err().to_string(),
        "linux.seccomp.syscalls[1].errnoRet: errnoRet is only valid with SCMP_ACT_ERRNO or \
         SCMP_ACT_TRACE, not SCMP_ACT_ALLOW"
    );
    p.syscalls[1].errno_ret = None;
    p.syscalls[2].args = vec![arg(0, "SCMP_CMP_SORTA", 1, 0)];
    assert_eq!(
        compile(&p).unwrap_err().to_string(),
        r#"linux.seccomp.syscalls[2].args[0].op: unknown operator "SCMP_CMP_SORTA""#
    );
    p.syscalls[2].args.clear();
    p.architectures = vec!["SCMP_ARCH_X86_64".into(), "SCMP_ARCH_Z80".into()];
    assert_eq!(
        compile(&p).unwrap_err().to_string(),
        r#"linux.seccomp.architectures[1]: unknown or unsupported architecture "SCMP_ARCH_Z80""#
    );
    // Nothing was cached for the bad profiles.
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 0);
}

#[test]
fn malformed_config_json_through_the_spec_parser() {
    let json =
        br#"{"ociVersion":"1.2.0","process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0}},
        "root":{"path":"rootfs"},
        "linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
          {"names":["read"],"action":"SCMP_ACT_ALLOW"},
          {"names":["kill"],"action":"SCMP_ACT_KILL_PROCESS","errnoRet":1}]}}}"#;
    let spec = oxcart_spec::parse_config(json, "config.json").unwrap();
    let sc = spec.linux.unwrap().seccomp.unwrap();
    assert_eq!(
        compile(&sc).unwrap_err().to_string(),
        "linux.seccomp.syscalls[1].errnoRet: errnoRet is only valid with SCMP_ACT_ERRNO or \
         SCMP_ACT_TRACE, not SCMP_ACT_KILL_PROCESS"
    );
}

#[test]
fn unknown_syscall_names_are_skipped_like_runc() {
    let p = profile(
        "SCMP_ACT_ALLOW",
        vec![rule(
            &["getppid", "oxcart_no_such_syscall", "getpgid"],
            "SCMP_ACT_ERRNO",
            Some(61),
        )],
    );
    let f = compile(&p).unwrap();
    assert_eq!(f.skipped_syscalls(), ["oxcart_no_such_syscall"]);
    let out = run_in_child(&f, |_| {
        if sys0(libc::SYS_getppid) != Err(61) {
            return 1;
        }
        if sys0(libc::SYS_getpgid) != Err(61) {
            return 2;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn rules_equal_to_the_default_are_dropped() {
    // libseccomp refuses a rule with the default action; runc skips it, and so do we.
    let p = profile(
        "SCMP_ACT_ERRNO",
        vec![
            rule(BASE_ALLOW, "SCMP_ACT_ALLOW", None),
            rule(&["getppid"], "SCMP_ACT_ERRNO", Some(libc::EPERM as u32)),
            rule(&["getpid"], "SCMP_ACT_ERRNO", Some(3)),
        ],
    );
    let f = compile(&p).unwrap();
    let out = run_in_child(&f, |_| {
        if sys0(libc::SYS_getppid) != Err(libc::EPERM) {
            return 1;
        }
        if sys0(libc::SYS_getpid) != Err(3) {
            return 2;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn concurrent_cache_writers_agree() {
    let dir = TempDir::new("cache-race");
    let cache = dir.0.join("c");
    let p = podman_profile();
    let fresh = compile(&p).unwrap();
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let (p, cache) = (p.clone(), cache.clone());
            std::thread::spawn(move || compile_cached(&p, &cache).unwrap().0)
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), fresh);
    }
    let names: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "one entry, no temp files: {names:?}");
    assert!(matches!(
        compile_cached(&p, &cache).unwrap().1,
        CacheStatus::Hit
    ));
}

/// Install podman's filter, then execve busybox (static) as a container's init would;
/// returns (outcome, stderr).
fn exec_under_podman_filter(args: &[&str]) -> (Outcome, String) {
    use std::ffi::CString;
    use std::io::Read;
    use std::os::fd::FromRawFd;
    let f = compile(&podman_profile()).unwrap();
    let argv_c: Vec<CString> = std::iter::once("/bin/busybox")
        .chain(args.iter().copied())
        .map(|s| CString::new(s).unwrap())
        .collect();
    let mut argv: Vec<*const libc::c_char> = argv_c.iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    let mut fds = [0; 2];
    // SAFETY: valid array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (r, w) = (fds[0], fds[1]);
    let out = run_in_child_with(
        &f,
        |_| {
            // SAFETY: closing our copy of the write end so EOF arrives.
            unsafe { libc::close(w) };
        },
        |_| {
            // SAFETY: raw syscalls in the child; argv/envp stay alive until execve.
            unsafe {
                libc::dup2(w, 2);
                libc::execve(argv[0], argv.as_ptr(), envp.as_ptr());
            }
            127
        },
    );
    // SAFETY: we own r.
    let mut rf = unsafe { std::fs::File::from_raw_fd(r) };
    let mut err = String::new();
    rf.read_to_string(&mut err).unwrap();
    (out, err)
}

#[test]
fn execve_after_install_runs_the_program_under_the_filter() {
    // The filter is installed *before* dup2/execve here, as init does: both must pass.
    let (out, err) = exec_under_podman_filter(&["true"]);
    assert_eq!(out, Outcome::Exited(0), "{err}");
    // swapoff is EPERM in podman's profile; without the filter root gets ENOENT.
    let (out, err) = exec_under_podman_filter(&["swapoff", "/nonexistent-oxcart-swap"]);
    assert_eq!(out, Outcome::Exited(1));
    assert!(err.contains("Operation not permitted"), "{err}");
}
