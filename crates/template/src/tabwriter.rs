//! Column alignment as docker's tables do it: Go's `text/tabwriter` (elastic
//! tabstops) with docker/cli's settings `NewWriter(out, 10, 1, 3, ' ', 0)`:
//! every column at least 10 wide, its widest cell plus 3 spaces of padding,
//! cells left-aligned and padded with spaces.
//!
//! As Go's, a cell belongs to a column only when a tab ends it; a column is a
//! run of adjacent lines that all have a cell in it, so a line without tabs
//! ends every column above it. The text after a line's last tab is not padded.

const MIN_WIDTH: usize = 10;
const PADDING: usize = 3;

struct Cell<'a> {
    text: &'a str,
    width: usize,
}

/// Aligns tab-separated, newline-terminated rows.
pub fn align(text: &str) -> String {
    let mut lines: Vec<Vec<Cell>> = Vec::new();
    let mut segments: Vec<&str> = text.split('\n').collect();
    // Text after the last newline is a line with no newline; an empty one is none.
    let last_has_newline = segments.last() == Some(&"");
    if last_has_newline {
        segments.pop();
    }
    for (i, seg) in segments.iter().enumerate() {
        let mut cells: Vec<Cell> = seg
            .split('\t')
            .map(|t| Cell {
                text: t,
                width: width(t),
            })
            .collect();
        // An unterminated last line ending in a tab has no trailing cell.
        if i + 1 == segments.len()
            && !last_has_newline
            && cells.last().is_some_and(|c| c.text.is_empty())
        {
            cells.pop();
        }
        lines.push(cells);
    }
    let mut out = String::with_capacity(text.len() * 2);
    let mut widths = Vec::new();
    format(&mut out, &lines, &mut widths, 0, lines.len());
    if !last_has_newline && !lines.is_empty() {
        out.pop();
    }
    out
}

/// Aligns rows given as cells (each row a line).
pub fn align_rows<R: AsRef<[S]>, S: AsRef<str>>(rows: &[R]) -> String {
    let mut text = String::new();
    for row in rows {
        for (i, cell) in row.as_ref().iter().enumerate() {
            if i > 0 {
                text.push('\t');
            }
            text.push_str(cell.as_ref());
        }
        text.push('\n');
    }
    align(&text)
}

/// Whether line `l` has a tab-terminated cell in `column`.
fn has_column(line: &[Cell], column: usize) -> bool {
    column + 1 < line.len()
}

/// Go's recursive block formatting: finds each run of lines with a cell in
/// the next column, fixes that column's width for the run, and recurses for
/// the columns right of it.
fn format(
    out: &mut String,
    lines: &[Vec<Cell>],
    widths: &mut Vec<usize>,
    line0: usize,
    line1: usize,
) {
    let column = widths.len();
    let mut start = line0;
    let mut this = line0;
    while this < line1 {
        if !has_column(&lines[this], column) {
            this += 1;
            continue;
        }
        write_lines(out, lines, widths, start, this);
        start = this;
        let mut width = MIN_WIDTH;
        while this < line1 && has_column(&lines[this], column) {
            width = width.max(lines[this][column].width + PADDING);
            this += 1;
        }
        widths.push(width);
        format(out, lines, widths, start, this);
        widths.pop();
        start = this;
    }
    write_lines(out, lines, widths, start, line1);
}

fn write_lines(
    out: &mut String,
    lines: &[Vec<Cell>],
    widths: &[usize],
    line0: usize,
    line1: usize,
) {
    for line in &lines[line0..line1] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell.text);
            if j < widths.len() {
                // Pushed in place: a `" ".repeat` per cell was an allocation each.
                let pad = widths[j].saturating_sub(cell.width);
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
}

/// Display width: docker's tabwriter counts East Asian wide characters as
/// two columns (go-runewidth); this covers the wide blocks, not every rule.
fn width(s: &str) -> usize {
    // Most cells are ASCII (ids, sizes, dates): one byte, one column.
    if s.is_ascii() {
        return s.len();
    }
    s.chars()
        .map(|c| match c as u32 {
            0x1100..=0x115F
            | 0x2E80..=0x303E
            | 0x3041..=0x33FF
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xA000..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x1F300..=0x1F64F
            | 0x1F900..=0x1F9FF
            | 0x20000..=0x3FFFD => 2,
            _ => 1,
        })
        .sum()
}
