//! Tables as docker prints them: Go's tabwriter with docker's settings (minimum cell
//! width 10, padding 3, the last column unpadded), and `--format` templates
//! (`table …`, `json`, Go templates) over rows in docker's JSON shapes.

use anyhow::{Context, Result};
use oxcart_template::Template;
use serde_json::Value;
use std::io::Write;

/// Align rows (the header first) like `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`.
pub fn align(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut w = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                w[i] = w[i].max((c.chars().count() + 3).max(10));
            }
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                let pad = w[i].saturating_sub(c.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// How a list command prints: its default table, `json` (one object per line, as
/// docker ≥ 23), a `table TEMPLATE`, or a plain template per row.
pub enum ListFormat {
    Default,
    Json,
    Table(Template, Vec<String>),
    Rows(Template),
}

/// Parse `--format`; `headers` maps a field (`.ID`) to docker's column title.
pub fn list_format(fmt: Option<&str>, headers: &[(&str, &str)]) -> Result<ListFormat> {
    let Some(f) = fmt.filter(|f| !f.is_empty() && *f != "table") else {
        return Ok(ListFormat::Default);
    };
    if f == "json" {
        return Ok(ListFormat::Json);
    }
    if let Some(t) = f.strip_prefix("table ") {
        let t = t.replace("\\t", "\t");
        let head = header_for(&t, headers);
        let tpl = Template::parse(&t).with_context(|| format!("template parsing error: {f}"))?;
        return Ok(ListFormat::Table(tpl, head));
    }
    let f = f.replace("\\t", "\t").replace("\\n", "\n");
    Ok(ListFormat::Rows(
        Template::parse(&f).with_context(|| format!("template parsing error: {f}"))?,
    ))
}

/// docker's table header: each `{{.Field}}` replaced by its title, cells split on tabs.
fn header_for(t: &str, headers: &[(&str, &str)]) -> Vec<String> {
    t.split('\t')
        .map(|cell| {
            let mut c = cell.to_string();
            for (field, title) in headers {
                for pat in [format!("{{{{{field}}}}}"), format!("{{{{ {field} }}}}")] {
                    c = c.replace(&pat, title);
                }
            }
            // Whatever template is left (a function call) prints upper-cased, as docker.
            if c.contains("{{") {
                c = c
                    .replace("{{", "")
                    .replace("}}", "")
                    .trim()
                    .trim_start_matches('.')
                    .to_uppercase();
            }
            c
        })
        .collect()
}

/// Print rows in a list format; `default` renders the built-in table.
pub fn print_list(
    out: &mut dyn Write,
    fmt: &ListFormat,
    rows: &[Value],
    default: impl Fn(&[Value]) -> String,
) -> Result<()> {
    match fmt {
        ListFormat::Default => out.write_all(default(rows).as_bytes())?,
        ListFormat::Json => {
            for r in rows {
                writeln!(out, "{r}")?;
            }
        }
        ListFormat::Rows(t) => {
            for r in rows {
                writeln!(out, "{}", t.render(r)?)?;
            }
        }
        ListFormat::Table(t, head) => {
            let mut lines = vec![head.clone()];
            for r in rows {
                lines.push(t.render(r)?.split('\t').map(String::from).collect());
            }
            out.write_all(align(&lines).as_bytes())?;
        }
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
            vec!["CONTAINER ID".into(), "IMAGE".into(), "NAMES".into()],
            vec!["abc".into(), "busybox:latest".into(), "x".into()],
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
