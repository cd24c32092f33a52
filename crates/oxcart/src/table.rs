//! Tables as docker prints them: Go's tabwriter with docker's settings (minimum cell
//! width 10, padding 3, the last column unpadded), and `--format` templates
//! (`table …`, `json`, Go templates) over rows in docker's JSON shapes.

use anyhow::{Context, Result};
use oxcart_template::Formatter;
use serde_json::Value;
use std::io::Write;

/// Rows (the header first) aligned as docker's tabwriter does.
pub fn align<S: AsRef<str>>(rows: &[Vec<S>]) -> String {
    oxcart_template::align_rows(rows)
}

/// How a list command prints: its default table, or a `--format` (`json`,
/// `table TEMPLATE`, a template per row).
pub enum ListFormat {
    Default,
    Format(Formatter),
}

/// Parse `--format`; a bare `table` is the command's default table, as docker's.
pub fn list_format(fmt: Option<&str>) -> Result<ListFormat> {
    match fmt.map(str::trim) {
        None | Some("") | Some("table") => Ok(ListFormat::Default),
        Some(f) => Ok(ListFormat::Format(
            Formatter::new(f).with_context(|| format!("template parsing error: {f}"))?,
        )),
    }
}

/// Print rows in a list format; `headers` maps a field to docker's column title
/// (`{"ID": "CONTAINER ID"}`); `default` renders the built-in table.
pub fn print_list(
    out: &mut dyn Write,
    fmt: &ListFormat,
    rows: &[Value],
    headers: &Value,
    default: impl Fn(&[Value]) -> String,
) -> Result<()> {
    match fmt {
        ListFormat::Default => out.write_all(default(rows).as_bytes())?,
        ListFormat::Format(f) => out.write_all(f.render(rows, headers)?.as_bytes())?,
    }
    Ok(())
}

/// docker's sizes: decimal units, 3 significant digits (`1.23MB`, `0B`).
pub fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        return format!("{n}B");
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    s + units[i]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_as_dockers_tabwriter() {
        let t = align(&[
            vec!["CONTAINER ID", "IMAGE", "NAMES"],
            vec!["abc", "busybox:latest", "x"],
        ]);
        assert_eq!(
            t,
            "CONTAINER ID   IMAGE            NAMES\nabc            busybox:latest   x\n"
        );
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(1_234_567), "1.23MB");
        assert_eq!(human_size(4_400), "4.4kB");
    }
}
