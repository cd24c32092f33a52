//! `oxcart_cgroups`: a container's cgroups on pure v1, pure v2 and hybrid
//! hosts, behind one [`Manager`].
//!
//! The host layout is detected at run time from the mount table
//! (statmount(2) on Linux ≥ 6.11, else `/proc/self/mountinfo`;
//! [`Layout::detect`]), never chosen by a build feature:
//!
//! * **v1**: one directory per mounted hierarchy (named ones such as
//!   `name=systemd` included).
//! * **v2**: one directory in the cgroup2 mount at `/sys/fs/cgroup`.
//! * **hybrid**: v1 hierarchies *and* the cgroup2 mount (usually
//!   `/sys/fs/cgroup/unified`). The container joins both; a controller bound
//!   to v1 is driven through its v1 files, a controller that exists only in
//!   the unified hierarchy (e.g. `hugetlb` on our machines) through v2 files.
//!
//! `linux.cgroupsPath` is resolved as runc's fs manager does: an absolute
//! path lies under each hierarchy's root, a relative one (and the default,
//! the container id) under the calling process' own cgroup in each
//! hierarchy (`/proc/self/cgroup`). `..` never climbs out. `--systemd-cgroup`
//! takes `slice:prefix:name`; when systemd is not running that is a clear
//! error, and the D-Bus driver itself is not implemented (also an error).
//!
//! # API
//!
//! ```no_run
//! use oxcart_cgroups::{Manager, ManagerState};
//! use oxcart_spec::{LinuxResources, LinuxPids};
//! # fn main() -> Result<(), oxcart_cgroups::CgroupError> {
//! // `create`: resolve (no filesystem change), make, limit, join.
//! let m = Manager::new(Some("/mycontainers/abc"), "abc", false)?;
//! m.create()?; // mkdir in every hierarchy; undone on failure
//! let res = LinuxResources { pids: Some(LinuxPids { limit: 100 }), ..Default::default() };
//! if let Err(e) = m.apply(&res) { m.destroy()?; return Err(e); }
//! let _fd = m.v2_dir_fd()?; // O_PATH fd for clone3(CLONE_INTO_CGROUP) on pure v2
//! m.add_pid(1234)?;         // cgroup.procs in every hierarchy
//! let state: ManagerState = m.to_state(); // persist in state.json (serde)
//!
//! // A later `oxcart-runtime pause/events/delete` process:
//! let m = Manager::from_state(state)?;
//! m.freeze()?; m.thaw()?;
//! let _stats = m.stats()?;            // runc `events --stats` JSON shape
//! let _oom = m.oom_watcher()?;        // wait/poll for OOM kills
//! let _s = m.freezer_state()?;
//! let _pids = m.pids()?;
//! m.kill_all(libc::SIGKILL)?;
//! m.destroy()?;                       // rmdir everywhere, EBUSY retried
//! # Ok(()) }
//! ```
//!
//! `apply` is also `update`: only the fields present are written, with
//! runc's v1 ordering rules (memory vs memsw, cfs period vs quota).
//! Device rules: at create the caller passes the full list built by
//! [`devices::container_device_rules`] (spec rules, then runc's default
//! allowed devices, as runc's specconv does); v1 gets the minimal `devices.allow/deny`
//! transition, v2 an eBPF `BPF_PROG_TYPE_CGROUP_DEVICE` program
//! ([`bpf`]) that replaces the previous one.
//!
//! Every error names the `linux.resources.*` field and/or the file written
//! ([`CgroupError`]). This crate never writes to a cgroup it did not
//! create, with one documented exception that runc shares: on v2 it enables
//! controllers in the ancestors' `cgroup.subtree_control`
//! ([`Layout::delegate_controllers`]).

pub mod apply;
pub mod bpf;
pub mod cpulist;
pub mod devices;
pub mod dircache;
pub mod error;
pub mod freezer;
mod fsutil;
pub mod join;
pub mod layout;
pub mod manager;
mod mounts;
pub mod oom;
pub mod path;
pub mod seqfile;
pub mod stats;

pub use dircache::DirCache;
pub use error::{CgroupError, Result};
pub use freezer::FreezerState;
pub use join::JoinFiles;
pub use layout::{HostMode, Layout};
pub use manager::{Manager, ManagerState, V1Dir, V2Dir};
pub use oom::{OomEvent, OomWatcher};
pub use stats::{Stats, Usage};
