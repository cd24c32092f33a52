//! The json-file writer: line assembly, encoding and rotation.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::escape::escape_json_string;
use crate::{Stream, Timestamp};

/// The longest `log` value of one entry: docker's copier reads 16 KiB at a time and
/// writes a longer line as several partial entries (moby daemon/logger/copier.go).
pub const MAX_LINE: usize = 16 * 1024;

/// `--log-opt max-size` / `max-file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Rotate before the file would grow beyond this many bytes; `None`: never.
    pub max_size: Option<u64>,
    /// How many files to keep, the live one included (docker's default: 1).
    pub max_file: u32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            max_size: None,
            max_file: 1,
        }
    }
}

/// Appends a container's output to `ctr.log` as docker's json-file driver does.
pub struct Writer {
    path: PathBuf,
    file: File,
    /// Bytes in the live file.
    size: u64,
    opts: WriterOptions,
    /// Per stream, the bytes of a line whose newline has not come yet.
    partial: [Vec<u8>; 2],
    /// Encoded entries not yet written.
    out: Vec<u8>,
    /// The last time formatted, and its text: one `write` call stamps every line of
    /// its chunk with the same time, formatted once.
    stamp: (Timestamp, Vec<u8>),
}

impl Writer {
    /// Opens (appending: a restarted container continues its log, as docker's does)
    /// or creates `path`.
    pub fn open(path: impl Into<PathBuf>, opts: WriterOptions) -> io::Result<Writer> {
        let path = path.into();
        let file = open_log(&path)?;
        let size = file.metadata()?.len();
        Ok(Writer {
            path,
            file,
            size,
            opts,
            partial: [Vec::new(), Vec::new()],
            out: Vec::new(),
            stamp: (Timestamp::default(), Vec::new()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds a chunk of a stream's output: every complete line becomes an entry, the
    /// rest waits for its newline unless it reaches [`MAX_LINE`].
    pub fn write(&mut self, stream: Stream, data: &[u8], now: Timestamp) -> io::Result<()> {
        let idx = stream as usize;
        let mut data = data;
        while !data.is_empty() {
            let end = data
                .iter()
                .position(|&b| b == b'\n')
                .map_or(data.len(), |p| p + 1);
            let (mut seg, rest) = data.split_at(end);
            data = rest;
            if self.partial[idx].is_empty() && seg.ends_with(b"\n") && seg.len() <= MAX_LINE {
                // A whole line: encoded straight from the chunk, without a copy.
                self.emit(stream, seg, now)?;
                continue;
            }
            while self.partial[idx].len() + seg.len() > MAX_LINE {
                let n = MAX_LINE - self.partial[idx].len();
                self.partial[idx].extend_from_slice(&seg[..n]);
                seg = &seg[n..];
                self.emit_partial(stream, now)?;
            }
            self.partial[idx].extend_from_slice(seg);
            if seg.ends_with(b"\n") {
                self.emit_partial(stream, now)?;
            }
        }
        self.flush_out()
    }

    /// Writes out the unterminated lines as partial entries (at close, or when the
    /// stream ended).
    pub fn flush_partial(&mut self, now: Timestamp) -> io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            if !self.partial[stream as usize].is_empty() {
                self.emit_partial(stream, now)?;
            }
        }
        self.flush_out()
    }

    /// Flushes the partial lines and closes the file.
    pub fn close(mut self, now: Timestamp) -> io::Result<()> {
        self.flush_partial(now)
    }

    fn emit_partial(&mut self, stream: Stream, now: Timestamp) -> io::Result<()> {
        let line = std::mem::take(&mut self.partial[stream as usize]);
        self.emit(stream, &line, now)?;
        // Keep the allocation for the next line.
        self.partial[stream as usize] = line;
        self.partial[stream as usize].clear();
        Ok(())
    }

    fn emit(&mut self, stream: Stream, log: &[u8], now: Timestamp) -> io::Result<()> {
        let start = self.out.len();
        if self.stamp.1.is_empty() || self.stamp.0 != now {
            self.stamp.1.clear();
            // Timestamp's Display writes ASCII only.
            let _ = write!(self.stamp.1, "{now}");
            self.stamp.0 = now;
        }
        encode_entry(&mut self.out, stream, log, &self.stamp.1);
        let len = (self.out.len() - start) as u64;
        if let Some(max) = self.opts.max_size {
            let before = self.size + start as u64;
            // An entry bigger than max-size still goes into a fresh file: docker
            // never splits entries across files.
            if before > 0 && before + len > max {
                let entry = self.out.split_off(start);
                self.flush_out()?;
                self.rotate()?;
                self.out = entry;
            }
        }
        Ok(())
    }

    fn flush_out(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let r = self.file.write_all(&self.out);
        // On failure (a full disk) the entries are dropped rather than kept to grow
        // without bound; the size is re-read since part of them may be written.
        match &r {
            Ok(()) => self.size += self.out.len() as u64,
            Err(_) => self.size = self.file.metadata().map_or(self.size, |m| m.len()),
        }
        self.out.clear();
        r
    }

    /// `ctr.log.(N-1)` is dropped, every `ctr.log.i` becomes `.i+1`, `ctr.log` becomes
    /// `.1` and a new `ctr.log` starts. Renaming, never truncating: a `logs -f` reader
    /// holding the old file keeps reading it to its end and finds the new one by inode.
    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.opts.max_file.max(1);
        if keep == 1 {
            remove_if_exists(&self.path)?;
        } else {
            remove_if_exists(&rotated(&self.path, keep - 1))?;
            for i in (1..keep - 1).rev() {
                rename_if_exists(&rotated(&self.path, i), &rotated(&self.path, i + 1))?;
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))?;
        }
        self.file = open_log(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// `ctr.log` → `ctr.log.N`.
pub(crate) fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn open_log(path: &Path) -> io::Result<File> {
    // 0640 as docker's json-file driver creates it.
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
}

fn remove_if_exists(p: &Path) -> io::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// One line of the file: the field order of moby's `JSONLogs.MarshalJSONBuf`.
fn encode_entry(out: &mut Vec<u8>, stream: Stream, log: &[u8], time: &[u8]) {
    out.extend_from_slice(b"{\"log\":");
    escape_json_string(out, log);
    out.extend_from_slice(b",\"stream\":\"");
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(time);
    out.extend_from_slice(b"\"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp {
            secs: 1704164645 + s,
            nanos: 123456789,
        }
    }

    fn lines(p: &Path) -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    #[test]
    fn entry_format() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ctr.log");
        let mut w = Writer::open(&p, WriterOptions::default()).unwrap();
        w.write(Stream::Stdout, b"hello <world>\n", t(0)).unwrap();
        w.write(Stream::Stderr, b"oops\n", t(1)).unwrap();
        w.close(t(2)).unwrap();
        assert_eq!(
            lines(&p),
            [
                r#"{"log":"hello \u003cworld\u003e\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}"#,
                r#"{"log":"oops\n","stream":"stderr","time":"2024-01-02T03:04:06.123456789Z"}"#,
            ]
        );
    }

    /// Bytes docker 20.10's json-file driver wrote for
    /// `printf 'a<b>&\tc\377\342\200\250 "q" \\ \r\n'` (captured 2026-12-06).
    #[test]
    fn same_bytes_as_docker() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ctr.log");
        let mut w = Writer::open(&p, WriterOptions::default()).unwrap();
        let t = Timestamp::parse_rfc3339("2026-12-06T13:04:42.81009296Z").unwrap();
        w.write(Stream::Stdout, b"a<b>&\tc\xff\xe2\x80\xa8 \"q\" \\ \r\n", t)
            .unwrap();
        w.close(t).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            concat!(
                r#"{"log":"a\u003cb\u003e\u0026\u0009c\ufffd\u2028 \"q\" \\ \r\n","stream":"stdout","time":"2026-12-06T13:04:42.81009296Z"}"#,
                "\n"
            )
        );
    }

    #[test]
    fn partial_lines_per_stream() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ctr.log");
        let mut w = Writer::open(&p, WriterOptions::default()).unwrap();
        w.write(Stream::Stdout, b"hel", t(0)).unwrap();
        w.write(Stream::Stderr, b"err", t(0)).unwrap();
        // Nothing complete yet: nothing written.
        assert_eq!(std::fs::read(&p).unwrap().len(), 0);
        w.write(Stream::Stdout, b"lo\nwor", t(1)).unwrap();
        w.close(t(2)).unwrap();
        let got: Vec<serde_json::Value> = lines(&p)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0]["log"], "hello\n");
        assert_eq!(got[0]["stream"], "stdout");
        // At close the unterminated lines are flushed without "\n".
        let rest: Vec<(&str, &str)> = got[1..]
            .iter()
            .map(|v| (v["stream"].as_str().unwrap(), v["log"].as_str().unwrap()))
            .collect();
        assert!(rest.contains(&("stdout", "wor")), "{rest:?}");
        assert!(rest.contains(&("stderr", "err")), "{rest:?}");
    }

    #[test]
    fn long_line_split_at_16k() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ctr.log");
        let mut w = Writer::open(&p, WriterOptions::default()).unwrap();
        let mut big = vec![b'x'; MAX_LINE * 2 + 10];
        big.push(b'\n');
        // In two chunks, the first already beyond the limit.
        w.write(Stream::Stdout, &big[..MAX_LINE + 5], t(0)).unwrap();
        assert_eq!(
            lines(&p).len(),
            1,
            "a full 16 KiB buffer is flushed at once"
        );
        w.write(Stream::Stdout, &big[MAX_LINE + 5..], t(0)).unwrap();
        let logs: Vec<String> = lines(&p)
            .iter()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["log"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            logs.iter().map(String::len).collect::<Vec<_>>(),
            [MAX_LINE, MAX_LINE, 11]
        );
        assert!(logs[2].ends_with('\n') && !logs[0].ends_with('\n'));
    }

    #[test]
    fn rotation_renames_and_drops_oldest() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ctr.log");
        let opts = WriterOptions {
            max_size: Some(200),
            max_file: 3,
        };
        let mut w = Writer::open(&p, opts).unwrap();
        // Each entry is ~80 bytes: two fit in 200.
        let mut inodes = Vec::new();
        for i in 0..10 {
            use std::os::unix::fs::MetadataExt;
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes(), t(i))
                .unwrap();
            inodes.push(std::fs::metadata(&p).unwrap().ino());
        }
        w.close(t(20)).unwrap();
        for f in [&p, &rotated(&p, 1), &rotated(&p, 2)] {
            let len = std::fs::metadata(f).unwrap().len();
            assert!(len > 0 && len <= 200, "{f:?}: {len}");
        }
        assert!(!rotated(&p, 3).exists());
        let all: Vec<String> = [rotated(&p, 2), rotated(&p, 1), p.clone()]
            .iter()
            .flat_map(|f| lines(f))
            .collect();
        let first: serde_json::Value = serde_json::from_str(&all[0]).unwrap();
        let last: serde_json::Value = serde_json::from_str(all.last().unwrap()).unwrap();
        assert_eq!(all.len(), 6, "three files of two entries: {all:?}");
        assert_eq!(first["log"], "line 4\n");
        assert_eq!(last["log"], "line 9\n");
        // A new file every two entries: rotation made new inodes, not truncation.
        inodes.dedup();
        assert_eq!(inodes.len(), 5);
    }

    #[test]
    fn max_file_one_replaces_the_file() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ctr.log");
        let mut w = Writer::open(
            &p,
            WriterOptions {
                max_size: Some(100),
                max_file: 1,
            },
        )
        .unwrap();
        w.write(Stream::Stdout, b"one\n", t(0)).unwrap();
        let held = File::open(&p).unwrap();
        w.write(Stream::Stdout, b"two\n", t(0)).unwrap();
        assert_eq!(lines(&p).len(), 1);
        assert!(lines(&p)[0].contains("two"));
        // The old file was unlinked, not truncated: a reader keeps its content.
        assert_ne!(
            held.metadata().unwrap().ino(),
            std::fs::metadata(&p).unwrap().ino()
        );
        assert!(held.metadata().unwrap().len() > 0);
        assert!(!rotated(&p, 1).exists());
    }

    #[test]
    fn reopen_appends() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ctr.log");
        Writer::open(&p, WriterOptions::default())
            .unwrap()
            .write(Stream::Stdout, b"a\n", t(0))
            .unwrap();
        Writer::open(&p, WriterOptions::default())
            .unwrap()
            .write(Stream::Stdout, b"b\n", t(0))
            .unwrap();
        assert_eq!(lines(&p).len(), 2);
    }
}
