//! Reading a container's json-file log across its rotated files, once or following.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::writer::rotated;
use crate::{io_err, Error, Stream, Timestamp};

/// One log entry. `log` is lossy UTF-8 already: the writer replaced invalid bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub log: String,
    pub stream: Stream,
    pub time: Timestamp,
}

/// `docker logs`'s selection.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Only the last N entries (of those `since`/`until` let through).
    pub tail: Option<usize>,
    /// Entries at or after this time.
    pub since: Option<Timestamp>,
    /// Entries at or before this time; following stops after it.
    pub until: Option<Timestamp>,
}

impl ReadOptions {
    fn wants(&self, e: &Entry) -> bool {
        self.since.is_none_or(|s| e.time >= s) && self.until.is_none_or(|u| e.time <= u)
    }
    fn past_until(&self, e: &Entry) -> bool {
        self.until.is_some_and(|u| e.time > u)
    }
}

/// The log's files, oldest first: `ctr.log.N` … `ctr.log.1`, `ctr.log`. Missing ones
/// (no output yet) are simply not listed.
pub fn log_files(path: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut n = 1;
    loop {
        let p = rotated(path, n);
        if !p.exists() {
            break;
        }
        files.push(p);
        n += 1;
    }
    files.reverse();
    if path.exists() {
        files.push(path.to_path_buf());
    }
    files
}

/// Hands the selected entries of the log at `path` (and its rotated files) to `sink`,
/// oldest first.
pub fn read(
    path: &Path,
    opts: &ReadOptions,
    sink: &mut dyn FnMut(Entry) -> io::Result<()>,
) -> Result<(), Error> {
    let mut sel = Selection::new(opts);
    for file in log_files(path) {
        let mut f = match File::open(&file) {
            Ok(f) => f,
            // Rotated away between listing and opening: its entries are gone.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&file)(e)),
        };
        let mut lines = LineReader::new(file);
        lines.read_available(&mut f, &mut |e| sel.push(e))?;
        if sel.done {
            break;
        }
    }
    sel.finish(sink)
}

/// Like [`read`], then keeps handing new entries to `sink` as they are written,
/// across rotations, until `gone()` says the container has stopped writing (checked
/// before a last drain, so nothing written before that is lost) or an entry is past
/// `until`.
pub fn follow(
    path: &Path,
    opts: &ReadOptions,
    gone: &mut dyn FnMut() -> bool,
    sink: &mut dyn FnMut(Entry) -> io::Result<()>,
) -> Result<(), Error> {
    // The live file is opened first; the rotated ones listed after it are older,
    // unless a rotation came in between, which the inode check below catches.
    let (mut cur, mut cur_ino) = match open_with_ino(path)? {
        Some(x) => x,
        None => wait_for_file(path, gone)?
            .ok_or_else(|| io_err(path)(io::Error::from(io::ErrorKind::NotFound)))?,
    };
    let mut sel = Selection::new(opts);
    for file in log_files(path) {
        if file == path {
            break;
        }
        let Some((mut f, ino)) = open_with_ino(&file)? else {
            continue;
        };
        if ino == cur_ino {
            break;
        }
        LineReader::new(file).read_available(&mut f, &mut |e| sel.push(e))?;
    }
    let mut lines = LineReader::new(path.to_path_buf());
    lines.read_available(&mut cur, &mut |e| sel.push(e))?;
    let mut done = sel.done;
    sel.finish(sink)?;
    let mut emit = |e: Entry| -> Result<bool, Error> {
        if opts.past_until(&e) {
            return Ok(true);
        }
        if opts.wants(&e) {
            sink(e).map_err(Error::Sink)?;
        }
        Ok(false)
    };
    while !done {
        let last_round = gone();
        done |= lines.read_available(&mut cur, &mut emit)?;
        // Rotated: finish the old file (the writer may have added to it before the
        // rename), then read the files that came after it, then the new live file.
        while !done {
            match open_with_ino(path)? {
                Some((_, ino)) if ino != cur_ino => {}
                _ => break,
            }
            done |= lines.read_available(&mut cur, &mut emit)?;
            let Some((after, (next, ino))) = files_after(path, cur_ino)? else {
                break;
            };
            for (file, mut f) in after {
                if !done {
                    done |= LineReader::new(file).read_available(&mut f, &mut emit)?;
                }
            }
            (cur, cur_ino) = (next, ino);
            lines = LineReader::new(path.to_path_buf());
            done |= lines.read_available(&mut cur, &mut emit)?;
        }
        if last_round {
            break;
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

/// How often a follower looks for new output: docker's json-file follower polls too
/// when inotify is unavailable; 100 ms is below what a person notices.
const POLL: Duration = Duration::from_millis(100);

fn wait_for_file(
    path: &Path,
    gone: &mut dyn FnMut() -> bool,
) -> Result<Option<(File, u64)>, Error> {
    loop {
        let last = gone();
        if let Some(x) = open_with_ino(path)? {
            return Ok(Some(x));
        }
        if last {
            return Ok(None);
        }
        std::thread::sleep(POLL);
    }
}

/// The rotated files after the one with inode `ino` (oldest first), opened, and the
/// live file, opened: taken as one consistent look. The names are looked at twice
/// around the opens; a rotation in between shifts them (a file opened as `ctr.log.1`
/// may by then be `ctr.log.2`, and would be read twice, or one missed), so the look
/// is redone until both agree.
#[allow(clippy::type_complexity)]
fn files_after(
    path: &Path,
    ino: u64,
) -> Result<Option<(Vec<(PathBuf, File)>, (File, u64))>, Error> {
    loop {
        let names = successors(path, ino);
        let mut opened = Vec::new();
        for p in &names {
            if let Some((f, i)) = open_with_ino(p)? {
                opened.push((p.clone(), f, i));
            }
        }
        let Some((live, live_ino)) = open_with_ino(path)? else {
            return Ok(None);
        };
        let same_names = successors(path, ino) == names;
        let same_files = opened
            .iter()
            .all(|(p, _, i)| std::fs::metadata(p).is_ok_and(|m| m.ino() == *i));
        let same_live = std::fs::metadata(path).is_ok_and(|m| m.ino() == live_ino);
        if same_names && same_files && same_live && opened.len() == names.len() {
            let files = opened.into_iter().map(|(p, f, _)| (p, f)).collect();
            return Ok(Some((files, (live, live_ino))));
        }
    }
}

/// The rotated files newer than the one with inode `ino`, oldest first: after two
/// rotations in one poll interval the old file is `ctr.log.2` and `ctr.log.1` comes
/// between it and the live file.
fn successors(path: &Path, ino: u64) -> Vec<PathBuf> {
    // The directory is listed rather than walked `.1`, `.2`, … until a gap: while the
    // writer shifts the files (`.k` → `.k+1`, newest last) one number is missing for a
    // moment, and a walk that stopped there would skip every file behind the gap.
    let mut numbered: Vec<(u32, PathBuf)> = Vec::new();
    let (Some(dir), Some(base)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}.", base.to_string_lossy());
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = name
            .strip_prefix(&prefix)
            .and_then(|n| n.parse::<u32>().ok())
        {
            numbered.push((n, e.path()));
        }
    }
    numbered.sort();
    let mut out = Vec::new();
    for (_, p) in numbered {
        match std::fs::metadata(&p) {
            Ok(m) if m.ino() == ino => break,
            Ok(_) => out.push(p),
            // Renamed away since the listing: the second look of `files_after` sees it.
            Err(_) => {}
        }
    }
    out.reverse();
    out
}

fn open_with_ino(p: &Path) -> Result<Option<(File, u64)>, Error> {
    match File::open(p) {
        Ok(f) => {
            let ino = f.metadata().map_err(io_err(p))?.ino();
            Ok(Some((f, ino)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(p)(e)),
    }
}

/// Collects the initial selection: filtered by since/until, then the last `tail`.
struct Selection<'a> {
    opts: &'a ReadOptions,
    kept: VecDeque<Entry>,
    done: bool,
}

impl<'a> Selection<'a> {
    fn new(opts: &'a ReadOptions) -> Self {
        Selection {
            opts,
            kept: VecDeque::new(),
            done: false,
        }
    }

    fn push(&mut self, e: Entry) -> Result<bool, Error> {
        if self.opts.past_until(&e) {
            self.done = true;
            return Ok(true);
        }
        if !self.opts.wants(&e) {
            return Ok(false);
        }
        self.kept.push_back(e);
        if let Some(n) = self.opts.tail {
            while self.kept.len() > n {
                self.kept.pop_front();
            }
        }
        Ok(false)
    }

    fn finish(self, sink: &mut dyn FnMut(Entry) -> io::Result<()>) -> Result<(), Error> {
        for e in self.kept {
            sink(e).map_err(Error::Sink)?;
        }
        Ok(())
    }
}

/// Splits a file's bytes into complete lines, keeping an unterminated last line
/// (one the writer is in the middle of) for the next read.
struct LineReader {
    path: PathBuf,
    line_no: u64,
    pending: Vec<u8>,
}

impl LineReader {
    fn new(path: PathBuf) -> Self {
        LineReader {
            path,
            line_no: 0,
            pending: Vec::new(),
        }
    }

    /// Reads `f` to its current end; `each` returns true to stop early.
    fn read_available(
        &mut self,
        f: &mut File,
        each: &mut dyn FnMut(Entry) -> Result<bool, Error>,
    ) -> Result<bool, Error> {
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => return Ok(false),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(&self.path)(e)),
            };
            self.pending.extend_from_slice(&buf[..n]);
            let mut start = 0;
            while let Some(p) = self.pending[start..].iter().position(|&b| b == b'\n') {
                let line = &self.pending[start..start + p];
                start += p + 1;
                self.line_no += 1;
                if line.is_empty() {
                    continue;
                }
                let entry = parse_line(line).map_err(|msg| Error::Parse {
                    path: self.path.clone(),
                    line: self.line_no,
                    msg,
                })?;
                if each(entry)? {
                    return Ok(true);
                }
            }
            self.pending.drain(..start);
        }
    }
}

fn parse_line(line: &[u8]) -> Result<Entry, String> {
    #[derive(Default)]
    struct Raw {
        log: String,
        stream: Option<String>,
        time: Option<String>,
    }
    let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let obj = v.as_object().ok_or("not an object")?;
    let field = |k: &str| -> Result<Option<String>, String> {
        match obj.get(k) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("field {k:?} is not a string")),
        }
    };
    let raw = Raw {
        log: field("log")?.unwrap_or_default(),
        stream: field("stream")?,
        time: field("time")?,
    };
    let stream = match raw.stream.as_deref() {
        Some("stdout") | None => Stream::Stdout,
        Some("stderr") => Stream::Stderr,
        Some(other) => return Err(format!("unknown stream {other:?}")),
    };
    let time_s = raw.time.ok_or("no \"time\"")?;
    let time = Timestamp::parse_rfc3339(&time_s).ok_or_else(|| format!("bad time {time_s:?}"))?;
    Ok(Entry {
        log: raw.log,
        stream,
        time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Writer, WriterOptions};

    fn t(s: i64) -> Timestamp {
        Timestamp {
            secs: 1_700_000_000 + s,
            nanos: 5,
        }
    }

    fn collect(path: &Path, opts: &ReadOptions) -> Vec<String> {
        let mut v = Vec::new();
        read(path, opts, &mut |e| {
            v.push(e.log);
            Ok(())
        })
        .unwrap();
        v
    }

    /// Ten entries "0\n".."9\n" at t(0)..t(9), over several rotated files.
    fn rotated_log(dir: &Path) -> PathBuf {
        let p = dir.join("ctr.log");
        let mut w = Writer::open(
            &p,
            WriterOptions {
                max_size: Some(150),
                max_file: 10,
            },
        )
        .unwrap();
        for i in 0..10 {
            w.write(Stream::Stdout, format!("{i}\n").as_bytes(), t(i))
                .unwrap();
        }
        w.close(t(10)).unwrap();
        assert!(log_files(&p).len() >= 4, "{:?}", log_files(&p));
        p
    }

    #[test]
    fn read_across_files_with_tail_since_until() {
        let d = tempfile::tempdir().unwrap();
        let p = rotated_log(d.path());
        let all: Vec<String> = (0..10).map(|i| format!("{i}\n")).collect();
        assert_eq!(collect(&p, &ReadOptions::default()), all);
        assert_eq!(
            collect(
                &p,
                &ReadOptions {
                    tail: Some(3),
                    ..Default::default()
                }
            ),
            all[7..]
        );
        assert_eq!(
            collect(
                &p,
                &ReadOptions {
                    tail: Some(0),
                    ..Default::default()
                }
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            collect(
                &p,
                &ReadOptions {
                    tail: Some(50),
                    ..Default::default()
                }
            ),
            all
        );
        let since = ReadOptions {
            since: Some(t(4)),
            ..Default::default()
        };
        assert_eq!(collect(&p, &since), all[4..]);
        let until = ReadOptions {
            until: Some(t(2)),
            ..Default::default()
        };
        assert_eq!(collect(&p, &until), all[..3]);
        let window = ReadOptions {
            since: Some(t(3)),
            until: Some(t(7)),
            tail: Some(2),
        };
        assert_eq!(collect(&p, &window), all[6..8]);
    }

    #[test]
    fn stream_and_escapes_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ctr.log");
        let mut w = Writer::open(&p, WriterOptions::default()).unwrap();
        w.write(Stream::Stderr, b"<\"\t\xff>\n", t(0)).unwrap();
        w.close(t(0)).unwrap();
        let mut got = Vec::new();
        read(&p, &ReadOptions::default(), &mut |e| {
            got.push(e);
            Ok(())
        })
        .unwrap();
        assert_eq!(
            got,
            [Entry {
                log: "<\"\t\u{fffd}>\n".into(),
                stream: Stream::Stderr,
                time: t(0)
            }]
        );
    }

    #[test]
    fn bad_line_names_file_and_line() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ctr.log");
        std::fs::write(&p, "{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:05Z\"}\nnot json\n").unwrap();
        let err = read(&p, &ReadOptions::default(), &mut |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("ctr.log:2:"), "{err}");
    }

    #[test]
    fn follow_across_rotation() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ctr.log");
        // Two ~77-byte entries per file.
        let opts = WriterOptions {
            max_size: Some(200),
            max_file: 3,
        };
        let mut w = Writer::open(&p, opts).unwrap();
        w.write(Stream::Stdout, b"first\n", t(0)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let p2 = p.clone();
        let reader = std::thread::spawn(move || {
            follow(
                &p2,
                &ReadOptions::default(),
                &mut || stop2.load(std::sync::atomic::Ordering::SeqCst),
                &mut |e| tx.send(e.log).map_err(|_| io::Error::other("closed")),
            )
        });
        assert_eq!(rx.recv().unwrap(), "first\n");
        // Each write waits until the follower has seen the previous one, so the
        // rotations happen while it holds the old file open.
        for i in 0..8 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes(), t(i))
                .unwrap();
            assert_eq!(rx.recv().unwrap(), format!("line {i}\n"));
        }
        // The follower holds the file with line 7; two rotations come before it
        // looks again, so its file is ctr.log.2 and it must read ctr.log.1 next.
        for i in 8..12 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes(), t(i))
                .unwrap();
        }
        w.write(Stream::Stdout, b"unterminated", t(20)).unwrap();
        w.close(t(21)).unwrap();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        reader.join().unwrap().unwrap();
        let rest: Vec<String> = rx.iter().collect();
        let mut want: Vec<String> = (8..12).map(|i| format!("line {i}\n")).collect();
        want.push("unterminated".into());
        assert_eq!(rest, want);
        assert!(log_files(&p).len() == 3);
    }

    #[test]
    fn follow_applies_tail_then_streams() {
        let d = tempfile::tempdir().unwrap();
        let p = rotated_log(d.path());
        let mut got = Vec::new();
        follow(
            &p,
            &ReadOptions {
                tail: Some(2),
                ..Default::default()
            },
            &mut || true,
            &mut |e| {
                got.push(e.log);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(got, ["8\n", "9\n"]);
    }
}
