//! runc-compatible logging: `--log FILE` (default stderr) and `--log-format
//! text|json`. JSON lines are `{"level":"error","msg":…,"time":…}` exactly, because
//! containerd's shim keeps the last `level == "error"` object's `msg` and podman
//! unmarshals the whole file as one such object (compat.md §6.4, §6.5).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

pub struct Logger {
    file: Option<File>,
    json: bool,
}

impl Logger {
    pub fn new(path: Option<&str>, format: &str) -> anyhow::Result<Logger> {
        let json = match format {
            "json" => true,
            "text" | "" => false,
            other => anyhow::bail!("invalid log-format {other:?}: must be text or json"),
        };
        let file = match path {
            Some(p) if !p.is_empty() => Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o644)
                    .custom_flags(libc::O_SYNC | libc::O_CLOEXEC)
                    .open(p)
                    .map_err(|e| anyhow::anyhow!("open log file {p}: {e}"))?,
            ),
            _ => None,
        };
        Ok(Logger { file, json })
    }

    pub fn to_stderr(&self) -> bool {
        self.file.is_none()
    }

    pub fn log(&mut self, level: &str, msg: &str) {
        let time = oxcart_container::time::now_rfc3339(true);
        let line = if self.json {
            let v = serde_json::json!({"level": level, "msg": msg, "time": time});
            format!("{v}\n")
        } else {
            format!("time={time:?} level={level} msg={msg:?}\n")
        };
        match self.file.as_mut() {
            Some(f) => {
                let _ = f.write_all(line.as_bytes());
            }
            None => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
    }
}
