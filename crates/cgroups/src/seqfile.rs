//! Reading the kernel's single-record text files (the cgroup stats files,
//! `/proc/<pid>/stat`) in as few `read`s as they allow.
//!
//! These are `seq_file`s whose one `show` makes the whole text (`single_open`, or
//! kernfs without `seq_start`): `seq_read_iter` (fs/seq_file.c) copies out as much
//! of it as the caller asked for, so a read that returns less has returned all of
//! it, and the `read` that would only say EOF can be skipped. `stats` reads five
//! cgroup files and a `/proc/<pid>/stat` per container, and every listing the
//! latter: a syscall less for each (on these VMs a syscall is ~3 µs). **Not** for
//! multi-record files (`cgroup.procs`, `mountinfo`, `smaps`): their reads stop at
//! the record that overflows the kernel's page-sized buffer, short of the caller's
//! count and of the end. Nor for regular files.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// The whole text of a `seq_file` opened as `f`.
pub fn read_to_string(f: File) -> io::Result<String> {
    // Read into the vector's spare capacity, not a zero-filled buffer: `stats` reads
    // ~250 of these, and zeroing each 4 KiB buffer (calloc's memset) was an eighth of
    // the instructions of `stats --no-stream` of 50 (docs/benchmarks.md).
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let spare = buf.spare_capacity_mut();
        let want = spare.len();
        // SAFETY: read(2) writes at most `want` bytes at the start of the spare
        // capacity, memory the vector owns.
        let n = unsafe { libc::read(f.as_raw_fd(), spare.as_mut_ptr().cast(), want) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let n = n as usize;
        // SAFETY: the kernel initialised the `n` (<= want) bytes it reported.
        unsafe { buf.set_len(buf.len() + n) };
        if n == 0 || n < want {
            break;
        }
        // Full: there may be more records (a large memory.stat, a long cgroup.procs).
        buf.reserve(buf.capacity());
    }
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// [`read_to_string`] of the file at `path`.
pub fn read_path(path: &std::path::Path) -> io::Result<String> {
    read_to_string(File::open(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_single_record_files_whole_and_grows_past_a_page() {
        let stat = read_path("/proc/self/stat".as_ref()).unwrap();
        assert!(stat.ends_with('\n'), "{stat}");
        assert_eq!(stat.matches('\n').count(), 1, "{stat}");
        let status = read_path("/proc/self/status".as_ref()).unwrap();
        assert!(
            status.starts_with("Name:") && status.contains("\nVmRSS:"),
            "{status}"
        );
        // A file longer than the first buffer is read on until a short read.
        let dir = tempfile_dir();
        let long = dir.join("long");
        let text: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&long, &text).unwrap();
        assert!(text.len() > 2 * 4096);
        assert_eq!(read_path(&long).unwrap(), text);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("seqfile-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
