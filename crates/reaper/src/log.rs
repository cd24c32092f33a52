//! Log lines in Ryuk's form (Go slog's text handler on stdout):
//! `time=… level=INFO msg=Started address=[::]:8080`. testcontainers for Java and Go
//! wait for the `Started` line, so its wording is kept as Ryuk's.

use std::fmt::Display;
use std::io::Write;
use std::time::SystemTime;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

pub type Attrs<'a> = &'a [(&'a str, &'a dyn Display)];

pub struct Log {
    min: Level,
    /// Unit tests' logs go nowhere (they would bypass the test harness's capture).
    silent: bool,
}

impl Log {
    pub fn new(verbose: bool) -> Log {
        Log {
            min: if verbose { Level::Debug } else { Level::Info },
            silent: false,
        }
    }

    #[cfg(test)]
    pub fn silent() -> Log {
        Log {
            min: Level::Debug,
            silent: true,
        }
    }

    pub fn log(&self, level: Level, msg: &str, attrs: Attrs) {
        if level < self.min {
            return;
        }
        let mut line = format!(
            "time={} level={} msg={}",
            crate::timefmt::log_stamp(SystemTime::now()),
            level.name(),
            quoted(msg)
        );
        for (k, v) in attrs {
            line.push(' ');
            line.push_str(k);
            line.push('=');
            line.push_str(&quoted(&v.to_string()));
        }
        line.push('\n');
        if self.silent {
            return;
        }
        // One write per line, so the lines of concurrent client threads never mix;
        // a closed stdout loses the log, not the reaping.
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }

    pub fn debug(&self, msg: &str, attrs: Attrs) {
        self.log(Level::Debug, msg, attrs);
    }
    pub fn info(&self, msg: &str, attrs: Attrs) {
        self.log(Level::Info, msg, attrs);
    }
    pub fn warn(&self, msg: &str, attrs: Attrs) {
        self.log(Level::Warn, msg, attrs);
    }
    pub fn error(&self, msg: &str, attrs: Attrs) {
        self.log(Level::Error, msg, attrs);
    }
}

/// slog's rule: a value is quoted (Go `strconv.Quote`) when it is empty or holds a
/// space, `"`, `=` or anything unprintable; otherwise it is written as is.
pub fn quoted(s: &str) -> String {
    let needs = s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '=' || c.is_control());
    if !needs {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A list as Go's `%+v` prints a `[]string` (`[a b]`), as Ryuk logs filter values.
pub struct GoList<'a>(pub &'a [String]);

impl Display for GoList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}]", self.0.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_as_slog_does() {
        assert_eq!(quoted("Started"), "Started");
        assert_eq!(quoted("[::]:8080"), "[::]:8080");
        assert_eq!(quoted("client connected"), "\"client connected\"");
        assert_eq!(quoted(""), "\"\"");
        assert_eq!(quoted("a=b"), "\"a=b\"");
        assert_eq!(quoted("x\"y\\\nz\u{1}"), "\"x\\\"y\\\\\\nz\\x01\"");
        let v = vec!["a=b".to_string(), "c".to_string()];
        assert_eq!(quoted(&GoList(&v).to_string()), "\"[a=b c]\"");
        assert_eq!(GoList(&["x".to_string()]).to_string(), "[x]");
    }
}
