//! oxcart_container — one container from an OCI bundle: the runtime core.
//!
//! Process model (crun's, see DESIGN.md): the CLI process (the *parent*) prepares
//! everything it can, then makes one `clone3` with the namespace flags. The child
//! (*init*) waits until the parent has written its id maps and placed it in its
//! cgroups, sets up the rootfs and the process, reports "ready", then blocks on
//! `exec.fifo` until `start` opens the other end, and finally `execve`s the user's
//! program. No re-exec of the runtime binary, no threads.

pub mod apparmor;
pub mod caps;
pub mod cg;
pub mod console;
pub mod error;
pub mod exec;
pub mod hooks;
pub mod idmap;
mod init;
pub mod lifecycle;
pub mod namespaces;
pub mod notify;
pub mod ops;
pub mod process;
pub mod rootfs;
pub mod rootless;
pub mod selfexe;
pub mod selinux;
pub mod state;
pub mod sync;
pub mod sys;
pub mod time;

pub use error::{Error, Result};
pub use exec::{exec, ExecFlags, ExecOpts, ExecProcess};
pub use lifecycle::*;
