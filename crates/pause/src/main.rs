//! The pod sandbox ("pause") process: PID 1 of a pod's shared namespaces.
//!
//! A CRI runtime (containerd, CRI-O) starts one per pod to hold the network, IPC and
//! (with `shareProcessNamespace`) PID namespaces the pod's containers join. It must
//! do nothing, cost nothing, and end cleanly on the stop signal:
//!
//! - As PID 1 of a namespace the kernel delivers it no signal it has no handler
//!   for (pid_namespaces(7)), so SIGTERM/SIGINT must be *handled* to stop it: it
//!   blocks them and waits for them synchronously with sigwaitinfo(2) (no async
//!   handler, so nothing here needs to be async-signal-safe).
//! - Orphans of a shared PID namespace are reparented to it (pid_namespaces(7)):
//!   on SIGCHLD it reaps every exited child with waitpid(WNOHANG), or they stay
//!   zombies for the pod's lifetime.
//!
//! Built static (`-C target-feature=+crt-static`, as scripts/build-runtime.sh
//! builds the runtime) so its image needs no libc: one file, no shell.

use std::process::ExitCode;

fn main() -> ExitCode {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it fully.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t owned by this frame.
    unsafe {
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGCHLD] {
            libc::sigaddset(&mut set, sig);
        }
    }
    // Blocked before waiting, so a signal that arrives between two waits stays
    // pending instead of being lost (or, for SIGCHLD, discarded by the default
    // disposition).
    // SAFETY: valid set pointer; a null old-set pointer is allowed.
    if unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) } != 0 {
        eprintln!("pause: sigprocmask: {}", std::io::Error::last_os_error());
        return ExitCode::FAILURE;
    }
    loop {
        // SAFETY: valid set; a null siginfo pointer is allowed.
        let sig = unsafe { libc::sigwaitinfo(&set, std::ptr::null_mut()) };
        match sig {
            libc::SIGTERM | libc::SIGINT => return ExitCode::SUCCESS,
            libc::SIGCHLD => reap(),
            // EINTR (a stop/continue): wait again.
            _ => {}
        }
    }
}

/// Reap every exited child: one SIGCHLD stands for any number of exits (standard
/// signals do not queue, signal(7)).
fn reap() {
    loop {
        let mut status = 0;
        // SAFETY: plain waitpid(2) with a valid status pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            // 0: children remain but none has exited; -1/ECHILD: no children.
            return;
        }
    }
}
