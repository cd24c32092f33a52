//! `oxcart-monitor --empty-trash DIR [--older-than SECS]`: delete the container
//! directories the engine moved into its trash (crates/engine/src/trash.rs has why),
//! detached from the command that removed them and at the lowest best-effort I/O
//! priority, so the deletes' discards queue behind everyone else's I/O.

use std::path::Path;

/// The name prefix of an entry a remover has claimed.
const CLAIM_PREFIX: &str = ".claim-";

/// The whole mode; its exit code.
pub fn main(args: &[std::ffi::OsString]) -> i32 {
    let (dir, older_than) = match args {
        [d] => (d, None),
        [d, flag, s] if flag == "--older-than" => match s.to_str().and_then(|s| s.parse().ok()) {
            Some(n) => (d, Some(n)),
            None => {
                eprintln!("oxcart-monitor: --older-than {s:?}: not a number of seconds");
                return 2;
            }
        },
        _ => {
            eprintln!("oxcart-monitor: usage: --empty-trash DIR [--older-than SECS]");
            return 2;
        }
    };
    // The name the API service's reaper knows its zombie by (the engine's
    // trash::REMOVER_COMM), and `ps` shows it for what it is.
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"oxcart-trash".as_ptr()) };
    lower_io_priority();
    match empty(Path::new(dir), older_than, now_secs()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("oxcart-monitor: emptying {}: {e}", Path::new(dir).display());
            1
        }
    }
}

/// ioprio_set(2): best-effort class, level 7 (the lowest).
fn lower_io_priority() {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    const IOPRIO_CLASS_BE: libc::c_long = 2;
    // SAFETY: a plain syscall on ourselves; failing leaves the default priority.
    unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            (IOPRIO_CLASS_BE << 13) | 7,
        );
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Every entry of `trash` not claimed by another remover — or, with `older_than`,
/// every entry (claimed or not: its remover was killed) that went there more than
/// that long ago.
fn empty(trash: &Path, older_than: Option<u64>, now: u64) -> std::io::Result<()> {
    let mut first_err = None;
    for e in std::fs::read_dir(trash)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let take = match older_than {
            None => !name.starts_with(CLAIM_PREFIX),
            Some(age) => entry_secs(&name).is_some_and(|t| now.saturating_sub(t) > age),
        };
        if take {
            if let Err(err) = claim_and_remove(trash, &name) {
                first_err.get_or_insert(err);
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Rename the entry to a name of ours — if another remover got there first, the
/// rename fails with ENOENT and the entry is not ours — then delete it.
fn claim_and_remove(trash: &Path, name: &str) -> std::io::Result<()> {
    let base = name
        .strip_prefix(CLAIM_PREFIX)
        .and_then(|r| r.split_once('-').map(|(_, rest)| rest))
        .unwrap_or(name);
    let mine = trash.join(format!("{CLAIM_PREFIX}{}-{base}", std::process::id()));
    match std::fs::rename(trash.join(name), &mine) {
        // remove_dir_all never follows a symlink the container planted
        // (CVE-2022-21658 is fixed in the std we build with).
        Ok(()) => match std::fs::remove_dir_all(&mine) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            r => r,
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// `<id>.<secs>.<pid>` as the engine names an entry, claimed or not.
fn entry_secs(name: &str) -> Option<u64> {
    let mut parts = name.rsplit('.');
    let _pid = parts.next()?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn entry_names_give_their_time_claimed_or_not() {
        assert_eq!(entry_secs("abc.1700000000.42"), Some(1_700_000_000));
        assert_eq!(
            entry_secs(".claim-7-abc.1700000000.42"),
            Some(1_700_000_000)
        );
        assert_eq!(entry_secs("junk"), None);
    }

    #[test]
    fn emptying_deletes_whole_trees_and_leaves_other_removers_claims() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a.100.1");
        std::fs::create_dir_all(a.join("upper/etc")).unwrap();
        std::fs::write(a.join("upper/etc/hosts"), "x").unwrap();
        // overlayfs leaves its work/work at mode 000.
        std::fs::create_dir_all(a.join("work/work")).unwrap();
        // A symlink the container planted is removed, never followed.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), a.join("upper/planted")).unwrap();
        std::fs::create_dir(t.path().join(".claim-1-b.100.1")).unwrap();
        empty(t.path(), None, 200).unwrap();
        assert_eq!(names(t.path()), vec![".claim-1-b.100.1"]);
        assert!(outside.path().join("keep").exists());
    }

    #[test]
    fn with_an_age_only_old_entries_go_claimed_or_not() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("old.100.1/upper")).unwrap();
        std::fs::create_dir(t.path().join(".claim-99999999-older.50.1")).unwrap();
        std::fs::create_dir(t.path().join("new.1000.1")).unwrap();
        empty(t.path(), Some(60), 1010).unwrap();
        assert_eq!(names(t.path()), vec!["new.1000.1"]);
    }
}
