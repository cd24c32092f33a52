//! `rm`, the monitor's exit command (`container cleanup`), and `container prune`.
//! Removal is idempotent and ordered so a `kill -9` at any point leaves either a row
//! that `rm -f` finishes, or a directory without a row that the next `create` or
//! `prune` collects.

use crate::create::{image_user, img_digest};
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::lock::CtrLock;
use crate::record::Record;
use crate::snapshot::Snapshot;
use crate::state::{read_exit, Status};
use crate::wait::wait_pid_exit;
use std::time::Duration;

impl Engine {
    /// The monitor's exit command: the runtime's container and the mount go; the
    /// exit is copied into the record; `--rm` removes the container.
    pub fn cleanup(&mut self, id: &str) -> Result<()> {
        if !self.db.has(id)? {
            return Ok(());
        }
        let dir = self.ctr_dir(id);
        let lock = CtrLock::acquire(&dir)?;
        // Re-read under the lock: a concurrent `rm` may have finished meanwhile.
        let Some(mut rec) = self.db.get(id)? else {
            return Ok(());
        };
        self.release_exited(&rec)?;
        if rec.host_config.auto_remove {
            // Still under the lock, the runtime's container already gone: straight to
            // the files (the exit is not worth recording in a row about to go; a
            // crash before that leaves exit.json, which `observe` reads first). They
            // release the network too: one open of its database per `run --rm`.
            return self.remove_released(&rec, lock);
        }
        let unplugged =
            crate::network::release_for_mode(&self.layout, id, &rec.host_config.network_mode)?;
        self.emit_net_disconnects(id, &unplugged);
        if let Some(e) = read_exit(&dir)? {
            rec.history.last_exit = Some(e);
            self.db.update(&rec)?;
        }
        Ok(())
    }

    /// `rm [-f]`.
    pub fn remove(&mut self, key: &str, force: bool) -> Result<Record> {
        let mut rec = self.find(key)?;
        let mut obs = self.observe(&rec)?;
        if obs.status.is_running() {
            if !force {
                return Err(EngineError::CannotRemove {
                    id: rec.id.clone(),
                    state: obs.status.as_str().to_string(),
                });
            }
            // docker's rm -f kills: no restart policy brings the container back.
            self.mark_user_stop(&mut rec, crate::restart::UserStop::Canceled)?;
            obs = self.observe(&rec)?;
            let rt = self.runtime_of(&rec)?;
            if obs.status == Status::Paused {
                let _ = rt.resume(&rec.id);
            }
            // Before the signal: the monitor's `die` must not precede it.
            self.emit_ctr(&rec, "kill", &[("signal", "9")]);
            let handoff = obs
                .monitor_alive
                .then(|| self.ask_cleanup(&rec.id))
                .flatten();
            let _ = rt.kill(&rec.id, "KILL", true);
            if let Some((conn, hold)) = handoff {
                if Self::handed_cleanup(conn) {
                    self.remove_exited(&rec.id)?;
                    drop(hold);
                    return Ok(rec);
                }
            }
            wait_pid_exit(obs.pid, Some(Duration::from_secs(10)));
            self.wait_recorded(&rec, &obs)?;
        } else if let Some(m) = obs.monitor.as_ref().filter(|_| obs.monitor_alive) {
            // Exited, and the monitor is finishing its cleanup: let it.
            wait_pid_exit(m.pid, Some(Duration::from_secs(30)));
        }
        if self.db.has(&rec.id)? {
            self.remove_stopped(&rec)?;
        }
        Ok(rec)
    }

    /// `rm -f` of a running container asks its monitor for the cleanup handoff
    /// (docs/engine.md "Attach protocol"), as an attached `run --rm` does: this
    /// process then cleans up and removes in one go, where it would wait for the
    /// monitor's exit command (an `oxcart` start) to clean up first. The connection,
    /// and a second descriptor that keeps it open until the removal is done.
    fn ask_cleanup(&self, id: &str) -> Option<(crate::attach::AttachConn, std::os::fd::OwnedFd)> {
        let conn = crate::attach::connect(&self.ctr_dir(id)).ok()?;
        let hold = conn.request_cleanup().ok()?;
        Some((conn, hold))
    }

    /// Reads the connection to the container's exit (its last output is the log's,
    /// not ours): whether the monitor handed us the cleanup. A monitor that did not —
    /// or a connection that broke — leaves the cleanup to it, as before.
    fn handed_cleanup(conn: crate::attach::AttachConn) -> bool {
        let (mut out, mut err) = (std::io::sink(), std::io::sink());
        let end = conn.relay(crate::attach::RelayIo {
            stdin: None,
            stdout: &mut out,
            stderr: &mut err,
            detach_keys: None,
            resize: None,
        });
        matches!(
            end,
            Ok(crate::attach::AttachEnd::Exited { cleanup: true, .. })
        )
    }

    /// `rm -f`'s side of the handoff: the monitor's cleanup and the removal in one
    /// pass under the lock. `cleanup` then `remove_stopped` would ask the runtime
    /// twice, release the network twice and write the exit into a row deleted right
    /// after. Killed at any point, it leaves what either of those would: a row the
    /// next `rm -f` finishes (the monitor's exit command runs too if we die first).
    fn remove_exited(&mut self, id: &str) -> Result<()> {
        let dir = self.ctr_dir(id);
        let lock = CtrLock::acquire(&dir)?;
        let Some(rec) = self.db.get(id)? else {
            return Ok(());
        };
        self.release_exited(&rec)?;
        self.remove_released(&rec, lock)
    }

    /// The removal once [`Self::release_exited`] is done: the files under the lock,
    /// then (docker's `--rm`) an `--rm` container's anonymous volumes, whoever
    /// removes it — its cleanup, or an `rm -f` handed that cleanup.
    fn remove_released(&mut self, rec: &Record, lock: CtrLock) -> Result<()> {
        self.remove_files(rec, &lock)?;
        drop(lock);
        if rec.host_config.auto_remove {
            self.remove_anonymous_volumes(rec)?;
        }
        Ok(())
    }

    /// What an exited container holds outside its record and directory: the
    /// runtime's container, the rootfs mount, its volumes' mounts. Under its lock.
    fn release_exited(&mut self, rec: &Record) -> Result<()> {
        let rt = self.runtime_of(rec)?;
        rt.delete_if_exists(&rec.id)?;
        Snapshot::open(&self.ctr_dir(&rec.id))?.unmount()?;
        self.volumes_release(rec)?;
        self.emit_volume_mounts("unmount", rec);
        Ok(())
    }

    /// Remove a container that does not run: runtime state, mount, row, image hold,
    /// directory — in that order.
    pub(crate) fn remove_stopped(&mut self, rec: &Record) -> Result<()> {
        let dir = self.ctr_dir(&rec.id);
        let lock = CtrLock::acquire(&dir)?;
        if !self.db.has(&rec.id)? {
            return Ok(());
        }
        if let Ok(rt) = self.runtime_of(rec) {
            rt.delete_if_exists(&rec.id)?;
        }
        self.remove_files(rec, &lock)
    }

    /// The tail of a removal, under the container's lock once the runtime has no
    /// container: mount, row, image hold, directory — in that order.
    fn remove_files(&mut self, rec: &Record, _lock: &CtrLock) -> Result<()> {
        let dir = self.ctr_dir(&rec.id);
        let snap = Snapshot::open(&dir)?;
        snap.unmount()?;
        let unplugged =
            crate::network::release_for_mode(&self.layout, &rec.id, &rec.host_config.network_mode)?;
        self.emit_net_disconnects(&rec.id, &unplugged);
        self.db.delete(&rec.id)?;
        let images = match self.images_cache.take() {
            Some(i) => Ok(i),
            None => self.open_images(),
        };
        if let Ok(mut images) = images {
            let _ = images.release(&img_digest(&rec.image_id), &image_user(&rec.id));
        }
        // Unmounted above (a failure returned there): nothing is mounted in the tree
        // the trash takes.
        crate::trash::discard(&self.layout, &dir, &rec.id)?;
        self.emit_ctr(rec, "destroy", &[]);
        Ok(())
    }

    /// `container prune`: every container that does not run; their ids and the bytes
    /// their writable layers held.
    pub fn prune(&mut self, filter: impl Fn(&Record) -> bool) -> Result<(Vec<String>, u64)> {
        self.collect_debris();
        let mut gone = Vec::new();
        let mut bytes = 0;
        for rec in self.list()? {
            if !filter(&rec) {
                continue;
            }
            let obs = self.observe(&rec)?;
            if obs.status.is_running() {
                continue;
            }
            let upper = self.ctr_dir(&rec.id).join("upper");
            let size = crate::engine::dir_size(&upper);
            self.remove(&rec.id, false)?;
            bytes += size;
            gone.push(rec.id);
        }
        Ok((gone, bytes))
    }
}
