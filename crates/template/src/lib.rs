//! Go `text/template` for docker's `--format` (docs/format.md).
//!
//! Data is a `serde_json::Value` in docker's JSON shapes. Objects behave as Go
//! maps (`{{.Missing}}` prints `<no value>`), `null` as Go's nil (`<nil>`; a
//! `range`, `len`, `join` or `index` over it sees an empty slice or map, as over
//! docker's nil slices and maps). Functions are Go's builtins plus docker's
//! (`json split join title lower upper pad truncate`); `table` is [`Formatter`]'s.

mod exec;
mod funcs;
mod gofmt;
mod parse;
mod tabwriter;

use serde_json::Value;

pub use tabwriter::{align, align_rows};

/// A template that failed to parse or to execute. The message follows Go's
/// `template: :LINE:COL: …` (COL counts bytes from 0, as Go's does).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template: :{line}:{col}: {msg}")]
    Parse {
        line: usize,
        col: usize,
        msg: String,
    },
    #[error("template: :{line}:{col}: executing \"\" at <{at}>: {msg}")]
    Exec {
        line: usize,
        col: usize,
        at: String,
        msg: String,
    },
}

/// Line (from 1) and byte column (from 0) of `pos`, as Go reports them.
fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let before = &src[..pos.min(src.len())];
    let line = 1 + before.matches('\n').count();
    let col = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1);
    (line, col)
}

impl TemplateError {
    pub(crate) fn parse(src: &str, pos: usize, msg: String) -> Self {
        let (line, col) = line_col(src, pos);
        TemplateError::Parse { line, col, msg }
    }

    pub(crate) fn exec(src: &str, pos: usize, at: String, msg: String) -> Self {
        let (line, col) = line_col(src, pos);
        TemplateError::Exec { line, col, at, msg }
    }
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    src: String,
    nodes: Vec<parse::Node>,
}

impl Template {
    /// Parses `src` as Go's `text/template` does (no `\t` unescaping: that is
    /// [`Formatter`]'s, as `docker inspect -f` does not do it either).
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let nodes = parse::Parser::new(src).parse()?;
        Ok(Template {
            src: src.to_string(),
            nodes,
        })
    }

    /// Executes the template with `data` as dot.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        exec::render(&self.src, &self.nodes, data, exec::Mode::Plain)
    }

    /// Executes the template for one row of a list (`docker ps`, `images`, …).
    /// As [`render`](Self::render), except that `{{json .}}` escapes `<`, `>`
    /// and `&` as docker's list rows do (they marshal themselves with
    /// json.Marshal; fields go through docker's non-escaping `json`).
    pub fn render_row(&self, row: &Value) -> Result<String, TemplateError> {
        exec::render(&self.src, &self.nodes, row, exec::Mode::Row)
    }

    /// Executes the template for a table's header row: `data` maps field names
    /// to headers, and docker's functions other than `pad` give back their
    /// argument unchanged (docker's `HeaderFunctions`), so `{{upper .Names}}`
    /// heads its column `NAMES` too.
    pub fn render_header(&self, headers: &Value) -> Result<String, TemplateError> {
        exec::render(&self.src, &self.nodes, headers, exec::Mode::Header)
    }
}

/// docker's list formatter (`docker ps/images/… --format`): `table …` prints a
/// header row and aligns columns; `json` is `{{json .}}`; anything else is a
/// template printed once per row. As docker's `formatter.Context`, the format's
/// surrounding spaces are dropped and the two-character escapes `\t` and `\n`
/// become a tab and a newline. A bare `table` stands for the command's default
/// table format, which the caller substitutes (as each docker command does).
#[derive(Debug, Clone)]
pub struct Formatter {
    template: Template,
    table: bool,
}

impl Formatter {
    pub fn new(format: &str) -> Result<Formatter, TemplateError> {
        let (table, body) = match format.strip_prefix("table") {
            Some(rest) => (true, rest),
            None if format == "json" => (false, "{{json .}}"),
            None => (false, format),
        };
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        Ok(Formatter {
            template: Template::parse(&body)?,
            table,
        })
    }

    /// Whether the format began with `table`.
    pub fn is_table(&self) -> bool {
        self.table
    }

    pub fn template(&self) -> &Template {
        &self.template
    }

    /// All rows, each followed by a newline. A table starts with the header
    /// row (`headers` maps field name → header, e.g. `{"ID": "CONTAINER ID"}`)
    /// and goes through docker's tabwriter settings, even when there are no rows.
    pub fn render(&self, rows: &[Value], headers: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        if self.table {
            // docker ignores the header's execution error and prints what it
            // rendered; a header is never worth failing the listing for.
            let t = &self.template;
            out.push_str(&exec::render_partial(
                &t.src,
                &t.nodes,
                headers,
                exec::Mode::Header,
            ));
            out.push('\n');
        }
        for row in rows {
            out.push_str(&self.template.render_row(row)?);
            out.push('\n');
        }
        Ok(if self.table { align(&out) } else { out })
    }
}

#[cfg(test)]
mod tests;
