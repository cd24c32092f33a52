//! The events journal (docs/engine.md "Events"): `oxcart events` with no daemon.
//! Every command and every monitor appends docker's event message, one JSON object
//! per line, to `<root>/events/events.log`; readers follow the file like `logs -f`.
//!
//! This is the writer, small enough for the monitor (no JSON library): a line is
//! formatted here and appended with one `write(2)` on an `O_APPEND` descriptor, so
//! concurrent appenders never interleave (a regular file's O_APPEND write is atomic
//! with respect to other appends; lines are far below any partial-write size).
//!
//! Bounded: once the file passes `max_size`, the appender that noticed renames it to
//! `events.log.1` (replacing the previous one), so the journal holds at most about
//! twice `max_size`. Appends hold a shared `flock` on `events.lock` and the rotation an
//! exclusive one, so when a follower sees `events.log` name a new file, every append
//! to the old one has landed and draining it to its end loses nothing.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::escape::escape_json_string;

/// The live journal's name in the events directory.
pub const JOURNAL: &str = "events.log";
/// The rotated journal's name.
pub const JOURNAL_OLD: &str = "events.log.1";
const LOCK: &str = "events.lock";
/// The default bound of the live file (the journal is at most about twice this).
pub const DEFAULT_MAX_SIZE: u64 = 1 << 20;

/// One event in docker's terms (`Type`, `Action`, `Actor.ID`, `Actor.Attributes`).
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// `container`, `image`, `network`, `volume`, …
    pub kind: &'a str,
    /// `create`, `start`, `die`, `exec_create: sh -c …`, …
    pub action: &'a str,
    /// The container id, image reference or id, network id, volume name.
    pub actor: &'a str,
    /// Attributes (docker's `name`, `image`, labels, `exitCode`, …); sorted on output
    /// as Go's map encoding sorts them; a later duplicate key wins.
    pub attributes: &'a [(&'a str, &'a str)],
}

/// Nanoseconds since the epoch (0 before it).
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The journal line of `ev` at `time_nano`: docker's `events.Message` JSON, the
/// legacy `status`/`id`/`from` included for containers as docker includes them.
pub fn line(ev: &Event<'_>, time_nano: i64) -> Vec<u8> {
    let mut attrs: Vec<(&str, &str)> = Vec::with_capacity(ev.attributes.len());
    for &(k, v) in ev.attributes {
        match attrs.iter_mut().find(|(ak, _)| *ak == k) {
            Some(a) => a.1 = v,
            None => attrs.push((k, v)),
        }
    }
    attrs.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::with_capacity(256);
    out.push(b'{');
    if ev.kind == "container" {
        // docker's pre-1.22 fields, still sent for container events (`from`: the image).
        out.extend_from_slice(b"\"status\":");
        escape_json_string(&mut out, ev.action.as_bytes());
        out.extend_from_slice(b",\"id\":");
        escape_json_string(&mut out, ev.actor.as_bytes());
        if let Some((_, img)) = attrs.iter().find(|(k, _)| *k == "image") {
            out.extend_from_slice(b",\"from\":");
            escape_json_string(&mut out, img.as_bytes());
        }
        out.push(b',');
    }
    out.extend_from_slice(b"\"Type\":");
    escape_json_string(&mut out, ev.kind.as_bytes());
    out.extend_from_slice(b",\"Action\":");
    escape_json_string(&mut out, ev.action.as_bytes());
    out.extend_from_slice(b",\"Actor\":{\"ID\":");
    escape_json_string(&mut out, ev.actor.as_bytes());
    out.extend_from_slice(b",\"Attributes\":{");
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        escape_json_string(&mut out, k.as_bytes());
        out.push(b':');
        escape_json_string(&mut out, v.as_bytes());
    }
    let secs = time_nano.div_euclid(1_000_000_000);
    out.extend_from_slice(
        format!("}}}},\"scope\":\"local\",\"time\":{secs},\"timeNano\":{time_nano}}}\n").as_bytes(),
    );
    out
}

/// The journal of one engine root: its directory and bound.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
    max_size: u64,
}

impl Journal {
    pub fn new(dir: impl Into<PathBuf>, max_size: u64) -> Journal {
        Journal {
            dir: dir.into(),
            max_size: max_size.max(1),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn max_size(&self) -> u64 {
        self.max_size
    }

    /// Append `ev` now: one write, no fsync (an event is worth less than a command's
    /// latency; docker keeps its events only in memory).
    pub fn append(&self, ev: &Event<'_>) -> io::Result<()> {
        self.append_line(&line(ev, now_nanos()))
    }

    /// Append a line made by [`line`].
    pub fn append_line(&self, line: &[u8]) -> io::Result<()> {
        let lock = match open_lock(&self.dir) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&self.dir)?;
                open_lock(&self.dir)?
            }
            Err(e) => return Err(e),
        };
        flock(&lock, libc::LOCK_SH)?;
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(self.dir.join(JOURNAL))?;
        // write_all would split the line over several writes only on a short write,
        // which a regular file gives only on a full disk: then the line is lost anyway.
        f.write_all(line)?;
        let m = f.metadata()?;
        drop(lock);
        if m.len() > self.max_size {
            self.rotate(m.ino())?;
        }
        Ok(())
    }

    /// Rename the live file away if it is still the one we wrote (`ino`) and over the
    /// bound; under the exclusive lock, so no append is in flight meanwhile.
    fn rotate(&self, ino: u64) -> io::Result<()> {
        let lock = open_lock(&self.dir)?;
        flock(&lock, libc::LOCK_EX)?;
        let live = self.dir.join(JOURNAL);
        match std::fs::metadata(&live) {
            Ok(m) if m.ino() == ino && m.len() > self.max_size => {
                std::fs::rename(&live, self.dir.join(JOURNAL_OLD))
            }
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn open_lock(dir: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(dir.join(LOCK))
}

fn flock(f: &File, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_has_dockers_shape() {
        let ev = Event {
            kind: "container",
            action: "die",
            actor: "abc",
            attributes: &[("name", "x"), ("image", "busybox"), ("exitCode", "0")],
        };
        let l = String::from_utf8(line(&ev, 1_700_000_000_123_456_789)).unwrap();
        assert_eq!(
            l,
            "{\"status\":\"die\",\"id\":\"abc\",\"from\":\"busybox\",\"Type\":\"container\",\
             \"Action\":\"die\",\"Actor\":{\"ID\":\"abc\",\"Attributes\":{\"exitCode\":\"0\",\
             \"image\":\"busybox\",\"name\":\"x\"}},\"scope\":\"local\",\"time\":1700000000,\
             \"timeNano\":1700000000123456789}\n"
        );
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["Actor"]["Attributes"]["name"], "x");
        let net = Event {
            kind: "network",
            action: "create",
            actor: "n1",
            attributes: &[("name", "a\"b"), ("type", "bridge")],
        };
        let v: serde_json::Value = serde_json::from_slice(&line(&net, 5)).expect("valid json");
        assert!(v.get("status").is_none());
        assert_eq!(v["Actor"]["Attributes"]["name"], "a\"b");
    }

    /// Many processes' worth of appenders (threads with their own descriptors) over a
    /// tiny bound: every line whole, the journal bounded, and no line lost while a
    /// reader drains the rotated file.
    #[test]
    fn concurrent_appends_stay_whole_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path(), 4096);
        std::thread::scope(|s| {
            for t in 0..4 {
                let j = j.clone();
                s.spawn(move || {
                    for i in 0..500 {
                        let actor = format!("t{t}-{i}");
                        let ev = Event {
                            kind: "container",
                            action: "start",
                            actor: &actor,
                            attributes: &[("name", "n")],
                        };
                        j.append(&ev).unwrap();
                    }
                });
            }
        });
        let mut total = 0;
        for f in [JOURNAL, JOURNAL_OLD] {
            let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
            assert!(text.len() as u64 <= 4096 + 512, "{f}: {}", text.len());
            for l in text.lines() {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert_eq!(v["Action"], "start");
                total += 1;
            }
        }
        assert!(total > 0);
    }
}
