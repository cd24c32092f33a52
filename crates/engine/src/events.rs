//! `events` without a daemon (docs/engine.md "Events"): commands and monitors append
//! docker's event messages to the journal (`oxcart_jsonlog::events`); this module
//! emits the engine's, and reads, filters and follows the journal for `oxcart events`.

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::record::Record;
use oxcart_jsonlog::events::{Event, Journal, JOURNAL, JOURNAL_OLD};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

/// The journal of an engine root (`<root>/events`), bounded as configured.
pub fn journal(engine: &Engine) -> Journal {
    Journal::new(engine.layout.events_dir(), engine.config.events_max_size())
}

/// docker's container event attributes: the container's labels, `image` (as the
/// user named it) and `name`.
pub fn container_attrs(rec: &Record) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = rec
        .config
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    v.push(("image".into(), rec.config.image.clone()));
    v.push(("name".into(), rec.name.trim_start_matches('/').to_string()));
    v
}

/// The file in a container's directory with its current event attributes, which the
/// monitor prefers to those of its command line (a `rename` since the start):
/// `KEY=VALUE` items, each ended by a NUL byte (a label may hold a newline).
pub const EVENT_ATTRS_FILE: &str = "event-attrs";

pub(crate) fn write_event_attrs(ctr_dir: &Path, rec: &Record) -> Result<()> {
    let mut b = Vec::new();
    for (k, v) in container_attrs(rec) {
        b.extend_from_slice(format!("{k}={v}\0").as_bytes());
    }
    crate::etcfiles::write_atomic(&ctr_dir.join(EVENT_ATTRS_FILE), &b)
}

/// The image events docker's daemon logs (moby's `LogImageEvent`: actor and `name`),
/// for the verbs that work on the image store without an engine open — the CLI's
/// image verbs and the API's image endpoints both journal through this, so `events`
/// shows the same whichever client did it. Best-effort as [`Engine::emit`].
pub struct ImageEvents {
    journal: Journal,
}

impl ImageEvents {
    pub fn new(layout: &crate::Layout, config: &crate::config::EngineConfig) -> ImageEvents {
        ImageEvents {
            journal: Journal::new(layout.events_dir(), config.events_max_size()),
        }
    }

    fn emit(&self, action: &str, actor: &str, name: &str) {
        let ev = Event {
            kind: "image",
            action,
            actor,
            attributes: &[("name", name)],
        };
        let _ = self.journal.append(&ev);
    }

    /// `pull`: the reference with its tag (`busybox:latest`), `name` without it.
    pub fn pull(&self, image: &str) {
        let last = image.rsplit('/').next().unwrap_or(image);
        let full = if image.contains('@') || last.contains(':') {
            image.to_string()
        } else {
            format!("{image}:latest")
        };
        let name = match full.rfind(':') {
            Some(i) if !full.contains('@') && !full[i..].contains('/') => &full[..i],
            _ => full.as_str(),
        };
        self.emit("pull", &full, name);
    }

    /// `tag`: the image id, `name` the new reference.
    pub fn tag(&self, id: &str, target: &str) {
        self.emit("tag", id, target);
    }

    /// `untag` and `delete` (rmi): docker names the image id in both places.
    pub fn untag(&self, id: &str) {
        self.emit("untag", id, id);
    }

    pub fn delete(&self, id: &str) {
        self.emit("delete", id, id);
    }

    /// `load`: one per tag the archive gave the image, else one for its id.
    pub fn load(&self, id: &str, tags: &[String]) {
        if tags.is_empty() {
            self.emit("load", id, id);
        }
        for t in tags {
            self.emit("load", id, t);
        }
    }

    /// `import`: the new image's id in both places; its reference, if given, was
    /// logged as a `tag` first (moby's ImportImage tags, then logs the import).
    pub fn import(&self, id: &str, reference: Option<&str>) {
        if let Some(r) = reference {
            self.tag(id, r);
        }
        self.emit("import", id, id);
    }

    /// `save`: one per image written to the archive, by id.
    pub fn save(&self, id: &str) {
        self.emit("save", id, id);
    }
}

impl Engine {
    /// Append one event. Best-effort by design: an event that cannot be written (a
    /// full disk) must not fail the operation it reports, which already happened;
    /// docker likewise drops events its buffer cannot take.
    pub fn emit(&self, kind: &str, action: &str, actor: &str, attrs: &[(&str, &str)]) {
        let ev = Event {
            kind,
            action,
            actor,
            attributes: attrs,
        };
        let _ = journal(self).append(&ev);
    }

    /// An event with docker's attributes for a container named by `key` (id, name or
    /// prefix), after a verb that had only its filesystem in hand: `cp`'s
    /// `archive-path`/`extract-to-dir`, `export`.
    pub fn emit_for(&self, key: &str, action: &str) {
        if let Ok(rec) = self.find(key) {
            self.emit_ctr(&rec, action, &[]);
        }
    }

    /// docker's `exec_create: CMD` / `exec_start: CMD` events (the action carries the
    /// command line, `execID` the exec's id), for the CLI's and the API's exec alike.
    pub fn emit_exec(&self, rec: &Record, phase: &str, exec_id: &str, cmd: &[String]) {
        let cmdline = match cmd.split_first() {
            Some((c, rest)) => format!("{c} {}", rest.join(" ")),
            None => String::new(),
        };
        self.emit_ctr(rec, &format!("{phase}: {cmdline}"), &[("execID", exec_id)]);
    }

    /// docker's `exec_die`: `execID` and the process's `exitCode`.
    pub fn emit_exec_die(&self, rec: &Record, exec_id: &str, code: i64) {
        let c = code.to_string();
        self.emit_ctr(rec, "exec_die", &[("execID", exec_id), ("exitCode", &c)]);
    }

    /// A container event with docker's attributes plus `extra` (e.g. `exitCode`).
    pub fn emit_ctr(&self, rec: &Record, action: &str, extra: &[(&str, &str)]) {
        let base = container_attrs(rec);
        let mut attrs: Vec<(&str, &str)> =
            base.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        attrs.extend_from_slice(extra);
        self.emit("container", action, &rec.id, &attrs);
    }
}

impl Engine {
    /// `network connect`/`disconnect` of a container (docker's attributes: the
    /// container's id, the network's name and driver).
    pub fn emit_net_connect(&self, action: &str, ctr: &str, net: &crate::network::Network) {
        self.emit(
            "network",
            action,
            &net.id,
            &[("container", ctr), ("name", &net.name), ("type", "bridge")],
        );
    }

    /// docker's `volume mount` (at a start) and `volume unmount` (at the stop) for
    /// each named or anonymous volume of the container.
    pub(crate) fn emit_volume_mounts(&self, action: &str, rec: &Record) {
        for m in rec.volumes.iter().filter(|m| m.kind == "volume") {
            let rw = m.rw.to_string();
            let attrs: &[(&str, &str)] = if action == "mount" {
                &[
                    ("container", &rec.id),
                    ("destination", &m.destination),
                    ("driver", "local"),
                    ("propagation", &m.propagation),
                    ("read/write", &rw),
                ]
            } else {
                &[("container", &rec.id), ("driver", "local")]
            };
            self.emit("volume", action, &m.name, attrs);
        }
    }

    pub(crate) fn emit_net_disconnects(&self, ctr: &str, nets: &[crate::network::Network]) {
        for n in nets {
            self.emit_net_connect("disconnect", ctr, n);
        }
    }
}

/// docker's `events --filter` (moby daemon/events/filter.go): values of one key are
/// ORed, keys ANDed.
#[derive(Debug, Clone, Default)]
pub struct EventFilter(BTreeMap<String, Vec<String>>);

const FILTER_KEYS: &[&str] = &[
    "container",
    "event",
    "type",
    "image",
    "label",
    "network",
    "volume",
    "scope",
    "daemon",
];

impl EventFilter {
    /// `KEY=VALUE` strings; an unknown key is docker's `Invalid filter 'KEY'`.
    pub fn parse(items: &[String]) -> Result<EventFilter> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in items {
            let Some((k, v)) = f.split_once('=') else {
                return Err(EngineError::Invalid(format!(
                    "bad format of filter (expected name=value): {f}"
                )));
            };
            let k = k.trim().to_ascii_lowercase();
            if !FILTER_KEYS.contains(&k.as_str()) {
                return Err(EngineError::Invalid(format!("Invalid filter '{k}'")));
            }
            m.entry(k).or_default().push(v.to_string());
        }
        Ok(EventFilter(m))
    }

    fn values(&self, key: &str) -> Option<&[String]> {
        self.0.get(key).map(Vec::as_slice)
    }

    /// True when `key` is absent or one of its values equals `s`.
    fn exact(&self, key: &str, s: &str) -> bool {
        self.values(key).is_none_or(|vs| vs.iter().any(|v| v == s))
    }

    /// True when `key` is absent or `s` equals or starts with one of its values.
    fn fuzzy(&self, key: &str, s: &str) -> bool {
        self.values(key)
            .is_none_or(|vs| vs.iter().any(|v| s.starts_with(v.as_str())))
    }

    fn fuzzy_name(&self, key: &str, ev: &Value) -> bool {
        self.values(key).is_none()
            || self.fuzzy(key, str_at(ev, &["Actor", "ID"]))
            || self.fuzzy(key, str_at(ev, &["Actor", "Attributes", "name"]))
    }

    /// Whether the event passes every filter.
    pub fn matches(&self, ev: &Value) -> bool {
        let action = str_at(ev, &["Action"]);
        let typ = str_at(ev, &["Type"]);
        // moby #25798: `event=exec_create` (no colon) matches `exec_create: cmd`.
        let event_ok = match self.values("event") {
            Some(vs)
                if vs.iter().any(|v| {
                    ["health_status", "exec_create", "exec_start"].contains(&v.as_str())
                }) =>
            {
                self.fuzzy("event", action)
            }
            _ => self.exact("event", action),
        };
        event_ok
            && self.exact("type", typ)
            && self.exact("scope", str_at(ev, &["scope"]))
            && self.fuzzy_name("container", ev)
            && self.fuzzy_name("volume", ev)
            && self.fuzzy_name("network", ev)
            && self.image_ok(ev)
            && self.labels_ok(ev)
    }

    fn image_ok(&self, ev: &Value) -> bool {
        if self.values("image").is_none() {
            return true;
        }
        let (id, attr) = if str_at(ev, &["Type"]) == "image" {
            (str_at(ev, &["Actor", "ID"]), "name")
        } else {
            (str_at(ev, &["id"]), "image")
        };
        let name = str_at(ev, &["Actor", "Attributes", attr]);
        [id, name, strip_tag(id), strip_tag(name)]
            .iter()
            .any(|s| !s.is_empty() && self.exact("image", s))
    }

    /// Every `label=K` or `label=K=V` holds among the attributes.
    fn labels_ok(&self, ev: &Value) -> bool {
        let Some(vs) = self.values("label") else {
            return true;
        };
        let attrs = ev.pointer("/Actor/Attributes");
        vs.iter().all(|l| {
            let (k, want) = match l.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (l.as_str(), None),
            };
            match attrs.and_then(|a| a.get(k)).and_then(Value::as_str) {
                Some(have) => want.is_none_or(|w| w == have),
                None => false,
            }
        })
    }
}

/// `busybox:latest` → `busybox` (moby's stripTag keeps digests and registry ports).
fn strip_tag(image: &str) -> &str {
    if image.contains('@') {
        return image;
    }
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(n) => cur = n,
            None => return "",
        }
    }
    cur.as_str().unwrap_or("")
}

/// What `events` reads: past events from `since` (nanoseconds; `None`: only new ones)
/// up to `until` (`None`: follow for ever).
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub filter: EventFilter,
}

/// One journal line: the raw JSON (docker's field order, for `--format json`) and
/// its parsed value.
pub struct Message<'a> {
    pub raw: &'a str,
    pub value: &'a Value,
}

/// Read and follow the journal, calling `sink` for each matching event in order;
/// returns when `until` has passed or `sink` returns false. Follows across
/// rotations as `logs -f` does: the live file's replacement is noticed at its end,
/// and the old one drained first (its appends are complete by then, see
/// oxcart_jsonlog::events).
pub fn follow(
    dir: &Path,
    opts: &ReadOptions,
    mut sink: impl FnMut(Message<'_>) -> std::io::Result<bool>,
) -> Result<()> {
    let io = |e: std::io::Error| EngineError::Io {
        path: dir.to_path_buf(),
        source: e,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let live_path = dir.join(JOURNAL);
    let mut live = open_or_create(&live_path).map_err(io)?;
    let mut emit = |line: &str| -> std::io::Result<bool> {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            return Ok(true); // a torn line from a crash: skipped, as docker skips bad frames
        };
        let t = v.get("timeNano").and_then(Value::as_i64).unwrap_or(0);
        if opts.since.is_some_and(|s| t < s) {
            return Ok(true);
        }
        if opts.until.is_some_and(|u| t > u) {
            return Ok(true);
        }
        if !opts.filter.matches(&v) {
            return Ok(true);
        }
        sink(Message {
            raw: line.trim_end(),
            value: &v,
        })
    };
    if opts.since.is_some() {
        // Past events: the rotated file, unless it is the one just opened (a rotation
        // between the two opens), then the live one from its start.
        if let Ok(old) = File::open(dir.join(JOURNAL_OLD)) {
            let same =
                old.metadata().ok().map(|m| m.ino()) == live.metadata().ok().map(|m| m.ino());
            if !same && !drain(&mut BufReader::new(old), &mut emit).map_err(io)? {
                return Ok(());
            }
        }
    } else {
        live.seek(SeekFrom::End(0)).map_err(io)?;
    }
    let mut reader = BufReader::new(live);
    loop {
        if !drain(&mut reader, &mut emit).map_err(io)? {
            return Ok(());
        }
        if opts
            .until
            .is_some_and(|u| oxcart_jsonlog::events::now_nanos() > u)
        {
            return Ok(());
        }
        let ino = reader.get_ref().metadata().map_err(io)?.ino();
        match std::fs::metadata(&live_path) {
            Ok(m) if m.ino() != ino => {
                // Rotated: what is left of the old file, then the new one from its start.
                if !drain(&mut reader, &mut emit).map_err(io)? {
                    return Ok(());
                }
                let next = open_or_create(&live_path).map_err(io)?;
                // Rotated twice since the last look (a burst of short commands within
                // one poll): the file between is the rotated one now, unless that is
                // the file just drained or the one opened as live. Three rotations
                // within a poll lose the middle one: the journal keeps two files.
                if let Ok(between) = File::open(dir.join(JOURNAL_OLD)) {
                    let b = between.metadata().ok().map(|m| m.ino());
                    let next_ino = next.metadata().ok().map(|m| m.ino());
                    if b != Some(ino)
                        && b != next_ino
                        && !drain(&mut BufReader::new(between), &mut emit).map_err(io)?
                    {
                        return Ok(());
                    }
                }
                reader = BufReader::new(next);
                continue;
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn open_or_create(p: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(p)
}

/// Every whole line up to the end; a partial last line is left for the next call
/// (an append is one write, so only a crash mid-write leaves one for long).
fn drain(
    r: &mut BufReader<File>,
    emit: &mut impl FnMut(&str) -> std::io::Result<bool>,
) -> std::io::Result<bool> {
    let mut line = String::new();
    loop {
        line.clear();
        let start = r.stream_position()?;
        let n = r.read_line(&mut line)?;
        if n == 0 {
            return Ok(true);
        }
        if !line.ends_with('\n') {
            r.seek(SeekFrom::Start(start))?;
            return Ok(true);
        }
        if !emit(&line)? {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, action: &str, actor: &str, attrs: &[(&str, &str)]) -> Value {
        let e = Event {
            kind,
            action,
            actor,
            attributes: attrs,
        };
        serde_json::from_slice(&oxcart_jsonlog::events::line(&e, 1)).expect("json")
    }

    #[test]
    fn filters_as_docker() {
        let f = |s: &[&str]| {
            EventFilter::parse(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>()).expect("ok")
        };
        let start = ev(
            "container",
            "start",
            "abc123",
            &[("name", "web"), ("image", "busybox:latest"), ("tier", "1")],
        );
        let exec = ev("container", "exec_create: sh -c true", "abc123", &[]);
        let net = ev(
            "network",
            "connect",
            "n1",
            &[("name", "bridge"), ("container", "abc123")],
        );
        assert!(f(&["container=web"]).matches(&start));
        assert!(f(&["container=abc"]).matches(&start));
        assert!(!f(&["container=abc"]).matches(&net));
        assert!(f(&["event=start", "event=stop"]).matches(&start));
        assert!(!f(&["event=stop"]).matches(&start));
        assert!(f(&["event=exec_create"]).matches(&exec));
        assert!(f(&["type=network", "network=bridge"]).matches(&net));
        assert!(f(&["image=busybox"]).matches(&start));
        assert!(f(&["image=busybox:latest"]).matches(&start));
        assert!(!f(&["image=alpine"]).matches(&start));
        assert!(f(&["label=tier"]).matches(&start));
        assert!(f(&["label=tier=1"]).matches(&start));
        assert!(!f(&["label=tier=2"]).matches(&start));
        assert!(EventFilter::parse(&["bogus=1".into()]).is_err());
    }

    #[test]
    fn strip_tag_keeps_ports_and_digests() {
        assert_eq!(strip_tag("busybox:latest"), "busybox");
        assert_eq!(strip_tag("localhost:5000/bb"), "localhost:5000/bb");
        assert_eq!(strip_tag("bb@sha256:ab"), "bb@sha256:ab");
    }
}
