//! Parser for the subset of Go's `text/template` docker users write.
//!
//! One pass over the source: text up to `{{`, then the action's tokens up to `}}`.
//! The grammar and the trim/comment rules follow Go's `text/template/parse`
//! documentation; constructs oxcart does not run (`define`, `template`, `block`)
//! are rejected here by name, so a script learns at parse time.

use crate::TemplateError;

/// A node of the parsed template.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    /// `{{pipeline}}`: prints the value unless the pipeline declares variables.
    Action(Pipeline),
    If(Branch),
    Range(Branch),
    With(Branch),
    Break,
    Continue,
}

/// The shared shape of `if`, `range` and `with`.
#[derive(Debug, Clone)]
pub(crate) struct Branch {
    pub pos: usize,
    pub pipe: Pipeline,
    pub body: Vec<Node>,
    pub els: Vec<Node>,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipeline {
    /// Variables declared (`$x :=`) or assigned (`$x =`), without the `$`.
    pub decl: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
pub(crate) struct Command {
    pub pos: usize,
    pub args: Vec<Expr>,
}

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Dot,
    Nil,
    Bool(bool),
    /// A number constant; `float` tells whether Go treats it as a float64
    /// (it has `.`, `e` or `p`) rather than an int.
    Number {
        text: String,
        int: Option<i64>,
        float: f64,
        is_float: bool,
    },
    Str(String),
    /// `.A.B` on dot.
    Field(Vec<String>),
    /// `$x.A.B`; the empty name is `$`.
    Var(String, Vec<String>),
    /// A function name.
    Func(String),
    /// `(pipeline).A.B`.
    Chain(Box<Expr>, Vec<String>),
    Pipe(Box<Pipeline>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Field(String),
    Dot,
    Var(String),
    Str(String),
    Number(String),
    Char(i64),
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
    /// Whether whitespace precedes it: `.A.B` is one chain, `.A .B` two arguments.
    spaced: bool,
}

/// What ended a list of nodes.
enum Stop {
    Eof,
    End,
    Else,
    /// `{{else if …}}` / `{{else with …}}`: the keyword, its position, its
    /// pipeline and the variable stack's length before that pipeline.
    ElseChain(&'static str, usize, Pipeline, usize),
}

pub(crate) struct Parser<'s> {
    src: &'s str,
    pos: usize,
    /// `-}}` asked that the next text lose its leading white space.
    trim_next: bool,
    /// Declared variable names, for Go's parse-time "undefined variable" check.
    vars: Vec<String>,
    range_depth: usize,
}

const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "break", "continue", "define", "template", "block",
];

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

impl<'s> Parser<'s> {
    pub(crate) fn new(src: &'s str) -> Self {
        Parser {
            src,
            pos: 0,
            trim_next: false,
            vars: vec![String::new()],
            range_depth: 0,
        }
    }

    fn err(&self, pos: usize, msg: impl Into<String>) -> TemplateError {
        TemplateError::parse(self.src, pos, msg.into())
    }

    pub(crate) fn parse(mut self) -> Result<Vec<Node>, TemplateError> {
        let (nodes, stop, pos) = self.list()?;
        match stop {
            Stop::Eof => Ok(nodes),
            Stop::End => Err(self.err(pos, "unexpected {{end}}")),
            Stop::Else | Stop::ElseChain(..) => Err(self.err(pos, "unexpected {{else}}")),
        }
    }

    /// Nodes up to `{{end}}`, `{{else}}` or the end of the source.
    fn list(&mut self) -> Result<(Vec<Node>, Stop, usize), TemplateError> {
        let mut nodes = Vec::new();
        loop {
            let rest = &self.src[self.pos..];
            let open = rest.find("{{");
            let mut text = &rest[..open.unwrap_or(rest.len())];
            if std::mem::take(&mut self.trim_next) {
                text = text.trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8));
            }
            let Some(open) = open else {
                if !text.is_empty() {
                    nodes.push(Node::Text(text.to_string()));
                }
                return Ok((nodes, Stop::Eof, self.src.len()));
            };
            let action = self.pos + open;
            let after = &self.src[action + 2..];
            // `{{- ` trims the text before; the space is required (Go: "{{-3}}" is -3).
            let trim_left =
                after.len() >= 2 && after.as_bytes()[0] == b'-' && is_space(after.as_bytes()[1]);
            if trim_left {
                text = text.trim_end_matches(|c: char| c.is_ascii() && is_space(c as u8));
            }
            if !text.is_empty() {
                nodes.push(Node::Text(text.to_string()));
            }
            self.pos = action + 2 + if trim_left { 2 } else { 0 };
            if self.src[self.pos..].starts_with("/*") {
                self.comment(action)?;
                continue;
            }
            let toks = self.action_tokens(action)?;
            if let Some(stop) = self.action(action, toks, &mut nodes)? {
                return Ok((nodes, stop, action));
            }
        }
    }

    fn comment(&mut self, action: usize) -> Result<(), TemplateError> {
        let rest = &self.src[self.pos..];
        let Some(end) = rest.find("*/") else {
            return Err(self.err(action, "unclosed comment"));
        };
        let after = &rest[end + 2..];
        let (skip, trim) = if after.starts_with("}}") {
            (2, false)
        } else if after.starts_with(" -}}")
            || after.starts_with("\t-}}")
            || after.starts_with("\n-}}")
        {
            (4, true)
        } else {
            return Err(self.err(action, "comment ends before closing delimiter"));
        };
        self.pos += end + 2 + skip;
        self.trim_next = trim;
        Ok(())
    }

    /// Handles one action; returns a stop for `end`/`else`.
    fn action(
        &mut self,
        pos: usize,
        toks: Vec<Token>,
        nodes: &mut Vec<Node>,
    ) -> Result<Option<Stop>, TemplateError> {
        let first = match toks.first() {
            Some(Token {
                tok: Tok::Ident(k), ..
            }) if KEYWORDS.contains(&k.as_str()) => k.clone(),
            _ => {
                let pipe = self.pipeline(pos, &toks, false)?;
                nodes.push(Node::Action(pipe));
                return Ok(None);
            }
        };
        let rest = &toks[1..];
        match first.as_str() {
            "end" | "break" | "continue" if !rest.is_empty() => {
                Err(self.err(rest[0].pos, format!("unexpected {} in {{{{{first}}}}}", describe(&rest[0].tok))))
            }
            "end" => Ok(Some(Stop::End)),
            "break" | "continue" if self.range_depth == 0 => {
                Err(self.err(pos, format!("{{{{{first}}}}} outside {{{{range}}}}")))
            }
            "break" => {
                nodes.push(Node::Break);
                Ok(None)
            }
            "continue" => {
                nodes.push(Node::Continue);
                Ok(None)
            }
            "else" => match rest.first().map(|t| &t.tok) {
                None => Ok(Some(Stop::Else)),
                Some(Tok::Ident(k)) if k == "if" || k == "with" => {
                    let kw = if k == "if" { "if" } else { "with" };
                    // The chained branch's variables are scoped to it: `control`
                    // truncates back to `mark` at its {{end}}.
                    let mark = self.vars.len();
                    let pipe = self.pipeline(rest[0].pos, &rest[1..], false)?;
                    Ok(Some(Stop::ElseChain(kw, rest[0].pos, pipe, mark)))
                }
                Some(t) => Err(self.err(rest[0].pos, format!("unexpected {} in {{{{else}}}}", describe(t)))),
            },
            "if" | "with" | "range" => {
                let node = self.control(&first, pos, rest, None)?;
                nodes.push(node);
                Ok(None)
            }
            _ => Err(self.err(
                pos,
                format!("{{{{{first}}}}} is not supported by oxcart's --format (only a single template)"),
            )),
        }
    }

    /// `if`/`with`/`range` up to its `{{end}}`. `pre` is an already parsed
    /// pipeline (from `{{else if …}}`) and the variable stack's length before it.
    fn control(
        &mut self,
        kw: &str,
        pos: usize,
        toks: &[Token],
        pre: Option<(Pipeline, usize)>,
    ) -> Result<Node, TemplateError> {
        let (pipe, mark) = match pre {
            Some(p) => p,
            None if toks.is_empty() => return Err(self.err(pos, format!("missing value for {kw}"))),
            None => {
                let mark = self.vars.len();
                (self.pipeline(pos, toks, kw == "range")?, mark)
            }
        };
        if pipe.cmds.is_empty() {
            return Err(self.err(pos, format!("missing value for {kw}")));
        }
        if kw == "range" {
            self.range_depth += 1;
        }
        let body = self.list();
        if kw == "range" {
            self.range_depth -= 1;
        }
        let (body, stop, stop_pos) = body?;
        let els = self.else_part(kw, pos, stop, stop_pos)?;
        self.vars.truncate(mark);
        let branch = Branch {
            pos,
            pipe,
            body,
            els,
        };
        Ok(match kw {
            "if" => Node::If(branch),
            "with" => Node::With(branch),
            _ => Node::Range(branch),
        })
    }

    /// The `{{else}}` part of a control whose body ended with `stop`.
    fn else_part(
        &mut self,
        kw: &str,
        pos: usize,
        stop: Stop,
        stop_pos: usize,
    ) -> Result<Vec<Node>, TemplateError> {
        let eof = || format!("unexpected EOF: {{{{{kw}}}}} without {{{{end}}}}");
        match stop {
            Stop::Eof => Err(self.err(pos, eof())),
            Stop::End => Ok(Vec::new()),
            Stop::Else => match self.list()? {
                (els, Stop::End, _) => Ok(els),
                (_, Stop::Eof, _) => Err(self.err(pos, eof())),
                (_, _, p) => Err(self.err(p, "expected {{end}}; found {{else}}")),
            },
            Stop::ElseChain(k2, ..) if kw == "range" => {
                Err(self.err(stop_pos, format!("{{{{else {k2}}}}} inside {{{{range}}}}")))
            }
            // Go: `{{if a}}x{{else if b}}y{{end}}` is
            // `{{if a}}x{{else}}{{if b}}y{{end}}{{end}}`, sharing one {{end}}.
            Stop::ElseChain(k2, p2, pipe2, mark2) => {
                Ok(vec![self.control(k2, p2, &[], Some((pipe2, mark2)))?])
            }
        }
    }

    fn pipeline(
        &mut self,
        pos: usize,
        toks: &[Token],
        in_range: bool,
    ) -> Result<Pipeline, TemplateError> {
        let mut decl = Vec::new();
        let mut assign = false;
        let mut i = 0;
        // `$x :=`, `$x =`, or in range `$i, $e :=`.
        if let Some(Tok::Var(v)) = toks.first().map(|t| &t.tok) {
            match toks.get(1).map(|t| &t.tok) {
                Some(Tok::Declare) | Some(Tok::Assign) => {
                    assign = toks[1].tok == Tok::Assign;
                    decl.push(v.clone());
                    i = 2;
                }
                Some(Tok::Comma) if in_range => {
                    match (toks.get(2).map(|t| &t.tok), toks.get(3).map(|t| &t.tok)) {
                        (Some(Tok::Var(w)), Some(Tok::Declare | Tok::Assign)) => {
                            assign = toks[3].tok == Tok::Assign;
                            decl.push(v.clone());
                            decl.push(w.clone());
                            i = 4;
                        }
                        _ => {
                            return Err(self.err(
                                toks[1].pos,
                                "range can only initialize variables as \"$i, $e :=\"",
                            ))
                        }
                    }
                }
                Some(Tok::Comma) => {
                    return Err(self.err(toks[1].pos, "too many declarations in command"))
                }
                _ => {}
            }
        }
        let mut cmds = Vec::new();
        let toks = &toks[i..];
        if !toks.is_empty() {
            for part in split_top(toks, |t| *t == Tok::Pipe) {
                if part.is_empty() {
                    return Err(self.err(pos, "missing command in pipeline"));
                }
                cmds.push(self.command(part)?);
            }
        } else if !decl.is_empty() {
            return Err(self.err(pos, "missing value for command"));
        }
        if toks.is_empty() && decl.is_empty() && !in_range {
            return Err(self.err(pos, "missing value for command"));
        }
        for v in &decl {
            if assign {
                if !self.vars.contains(v) {
                    return Err(self.err(pos, format!("undefined variable \"${v}\"")));
                }
            } else {
                self.vars.push(v.clone());
            }
        }
        Ok(Pipeline { decl, assign, cmds })
    }

    fn command(&mut self, toks: &[Token]) -> Result<Command, TemplateError> {
        let pos = toks[0].pos;
        let mut args = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let (expr, used) = self.operand(&toks[i..])?;
            args.push(expr);
            i += used;
        }
        Ok(Command { pos, args })
    }

    /// One term and the fields chained onto it without a space.
    fn operand(&mut self, toks: &[Token]) -> Result<(Expr, usize), TemplateError> {
        let t = &toks[0];
        let mut used = 1;
        let term = match &t.tok {
            Tok::Dot => Expr::Dot,
            Tok::Field(f) => Expr::Field(vec![f.clone()]),
            Tok::Var(v) if !self.vars.contains(v) => {
                return Err(self.err(t.pos, format!("undefined variable \"${v}\"")))
            }
            Tok::Var(v) => Expr::Var(v.clone(), Vec::new()),
            Tok::Str(s) => Expr::Str(s.clone()),
            Tok::Char(c) => Expr::Number {
                text: c.to_string(),
                int: Some(*c),
                float: *c as f64,
                is_float: false,
            },
            Tok::Number(n) => {
                number(n).ok_or_else(|| self.err(t.pos, format!("bad number syntax: {n:?}")))?
            }
            Tok::Ident(id) => self.ident(t.pos, id)?,
            Tok::LParen => {
                let close =
                    matching_paren(toks).ok_or_else(|| self.err(t.pos, "unclosed left paren"))?;
                let pipe = self.pipeline(t.pos, &toks[1..close], false)?;
                used = close + 1;
                Expr::Pipe(Box::new(pipe))
            }
            other => {
                return Err(self.err(t.pos, format!("unexpected {} in operand", describe(other))))
            }
        };
        // Fields written right after the term, without a space, chain onto it.
        let mut chain = Vec::new();
        while let Some(Token {
            tok: Tok::Field(g),
            spaced: false,
            ..
        }) = toks.get(used)
        {
            chain.push(g.clone());
            used += 1;
        }
        if chain.is_empty() {
            return Ok((term, used));
        }
        let term = match term {
            Expr::Field(mut names) => {
                names.extend(chain);
                Expr::Field(names)
            }
            Expr::Var(v, _) => Expr::Var(v, chain),
            Expr::Pipe(_) => Expr::Chain(Box::new(term), chain),
            _ => {
                let msg = format!("unexpected . after term {}", describe(&t.tok));
                return Err(self.err(t.pos, msg));
            }
        };
        Ok((term, used))
    }

    /// An identifier in a command: a constant or a function name.
    fn ident(&self, pos: usize, id: &str) -> Result<Expr, TemplateError> {
        Ok(match id {
            "true" => Expr::Bool(true),
            "false" => Expr::Bool(false),
            "nil" => Expr::Nil,
            k if KEYWORDS.contains(&k) => {
                return Err(self.err(pos, format!("unexpected <{k}> in command")))
            }
            f if crate::funcs::is_known(f) => Expr::Func(f.to_string()),
            f if crate::funcs::UNSUPPORTED.contains(&f) => {
                let msg = format!("function \"{f}\" is not supported by oxcart's --format");
                return Err(self.err(pos, msg));
            }
            f => return Err(self.err(pos, format!("function \"{f}\" not defined"))),
        })
    }

    /// Tokens of the action starting at `self.pos`, consuming the closing `}}`.
    fn action_tokens(&mut self, action: usize) -> Result<Vec<Token>, TemplateError> {
        let b = self.src.as_bytes();
        let mut toks = Vec::new();
        let mut spaced = true;
        let mut depth = 0usize;
        loop {
            let p = self.pos;
            let Some(&c) = b.get(p) else {
                return Err(self.err(action, "unclosed action"));
            };
            if is_space(c) {
                // ` -}}` closes and trims the following text.
                let rest = &self.src[p..];
                let ws = rest.len()
                    - rest
                        .trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8))
                        .len();
                if self.src[p + ws..].starts_with("-}}") {
                    self.pos = p + ws + 3;
                    self.trim_next = true;
                    break;
                }
                self.pos = p + ws;
                spaced = true;
                continue;
            }
            if self.src[p..].starts_with("}}") {
                self.pos = p + 2;
                break;
            }
            let (tok, len) = self.token(p, depth)?;
            match tok {
                Tok::LParen => depth += 1,
                Tok::RParen => depth = depth.saturating_sub(1),
                _ => {}
            }
            toks.push(Token {
                tok,
                pos: p,
                spaced,
            });
            spaced = false;
            self.pos = p + len;
        }
        Ok(toks)
    }

    fn token(&self, p: usize, depth: usize) -> Result<(Tok, usize), TemplateError> {
        let rest = &self.src[p..];
        let b = rest.as_bytes();
        let word_len = |from: usize| {
            rest[from..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map_or(rest.len(), |n| n + from)
        };
        Ok(match b[0] {
            b'|' => (Tok::Pipe, 1),
            b'(' => (Tok::LParen, 1),
            b')' if depth == 0 => return Err(self.err(p, "unexpected right paren")),
            b')' => (Tok::RParen, 1),
            b',' => (Tok::Comma, 1),
            b':' if rest.starts_with(":=") => (Tok::Declare, 2),
            b'=' => (Tok::Assign, 1),
            b'"' => self.quoted(p)?,
            b'`' => {
                let end = rest[1..]
                    .find('`')
                    .ok_or_else(|| self.err(p, "unterminated raw quoted string"))?;
                (Tok::Str(rest[1..end + 1].to_string()), end + 2)
            }
            b'\'' => self.char_const(p)?,
            b'$' => {
                let n = word_len(1);
                (Tok::Var(rest[1..n].to_string()), n)
            }
            b'.' if b.get(1).is_some_and(u8::is_ascii_digit) => self.number_tok(p),
            b'.' => {
                let n = word_len(1);
                if n == 1 {
                    (Tok::Dot, 1)
                } else {
                    (Tok::Field(rest[1..n].to_string()), n)
                }
            }
            b'0'..=b'9' | b'-' | b'+' => self.number_tok(p),
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let n = word_len(0);
                if n == 0 {
                    return Err(self.err(
                        p,
                        format!(
                            "unrecognized character in action: {:?}",
                            rest.chars().next()
                        ),
                    ));
                }
                (Tok::Ident(rest[..n].to_string()), n)
            }
            _ => {
                let ch = rest.chars().next().unwrap_or('?');
                return Err(self.err(p, format!("unrecognized character in action: {ch:?}")));
            }
        })
    }

    fn number_tok(&self, p: usize) -> (Tok, usize) {
        let rest = &self.src[p..];
        let b = rest.as_bytes();
        let mut n = 0;
        if matches!(b[0], b'+' | b'-') {
            n = 1;
        }
        while n < b.len() {
            let c = b[n];
            let exp_sign = matches!(c, b'+' | b'-')
                && matches!(b[n - 1], b'e' | b'E' | b'p' | b'P')
                && !rest[..n].starts_with("0x");
            if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exp_sign {
                n += 1;
            } else {
                break;
            }
        }
        (Tok::Number(rest[..n].to_string()), n)
    }

    fn quoted(&self, p: usize) -> Result<(Tok, usize), TemplateError> {
        let rest = &self.src[p + 1..];
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Ok((Tok::Str(out), i + 2)),
                '\n' => break,
                '\\' => {
                    let (_, e) = chars
                        .next()
                        .ok_or_else(|| self.err(p, "unterminated quoted string"))?;
                    out.push(self.escape(p, e, &mut chars)?);
                }
                c => out.push(c),
            }
        }
        Err(self.err(p, "unterminated quoted string"))
    }

    /// Go's string escapes (the spec's "Rune literals"): \a \b \f \n \r \t \v \\ \' \" \xNN \NNN \uNNNN \UNNNNNNNN.
    fn escape(
        &self,
        p: usize,
        e: char,
        chars: &mut std::str::CharIndices,
    ) -> Result<char, TemplateError> {
        let hex = |n: usize, chars: &mut std::str::CharIndices, radix: u32| -> Option<char> {
            let s: String = chars.by_ref().take(n).map(|(_, c)| c).collect();
            if s.len() != n {
                return None;
            }
            u32::from_str_radix(&s, radix).ok().and_then(char::from_u32)
        };
        let c = match e {
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            '\\' | '\'' | '"' => Some(e),
            'x' => hex(2, chars, 16),
            'u' => hex(4, chars, 16),
            'U' => hex(8, chars, 16),
            '0'..='7' => {
                let s: String = std::iter::once(e)
                    .chain(chars.by_ref().take(2).map(|(_, c)| c))
                    .collect();
                u32::from_str_radix(&s, 8).ok().and_then(char::from_u32)
            }
            _ => None,
        };
        c.ok_or_else(|| self.err(p, format!("invalid escape \\{e} in quoted string")))
    }

    fn char_const(&self, p: usize) -> Result<(Tok, usize), TemplateError> {
        let rest = &self.src[p + 1..];
        let mut chars = rest.char_indices();
        let c = match chars.next() {
            Some((_, '\\')) => {
                let (_, e) = chars
                    .next()
                    .ok_or_else(|| self.err(p, "unterminated character constant"))?;
                self.escape(p, e, &mut chars)?
            }
            Some((_, c)) if c != '\'' => c,
            _ => return Err(self.err(p, "empty character constant")),
        };
        match chars.next() {
            Some((i, '\'')) => Ok((Tok::Char(c as i64), i + 2)),
            _ => Err(self.err(p, "unterminated character constant")),
        }
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("<{s}>"),
        Tok::Field(s) => format!("<.{s}>"),
        Tok::Dot => "<.>".into(),
        Tok::Var(s) => format!("<${s}>"),
        Tok::Str(s) => format!("{s:?}"),
        Tok::Number(s) => s.clone(),
        Tok::Char(c) => format!("{c}"),
        Tok::Pipe => "\"|\"".into(),
        Tok::LParen => "\"(\"".into(),
        Tok::RParen => "\")\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "\",\"".into(),
    }
}

/// Splits at top-level separators (outside parentheses).
fn split_top(toks: &[Token], is_sep: impl Fn(&Tok) -> bool) -> Vec<&[Token]> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        match t.tok {
            Tok::LParen => depth += 1,
            Tok::RParen => depth = depth.saturating_sub(1),
            _ if depth == 0 && is_sep(&t.tok) => {
                parts.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&toks[start..]);
    parts
}

fn matching_paren(toks: &[Token]) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate() {
        match t.tok {
            Tok::LParen => depth += 1,
            Tok::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// A Go number constant: decimal, 0x/0o/0b integers, `_` separators, floats.
/// Go gives a float literal that is integral an int value too (for int parameters).
fn number(text: &str) -> Option<Expr> {
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    let (neg, body) = match clean.as_bytes().first() {
        Some(b'-') => (true, &clean[1..]),
        Some(b'+') => (false, &clean[1..]),
        _ => (false, clean.as_str()),
    };
    let lower = body.to_ascii_lowercase();
    let radix_int = |digits: &str, radix: u32| i64::from_str_radix(digits, radix).ok();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        if h.contains('p') || h.contains('.') {
            return None; // hex floats: rare in formats, not worth the parser
        }
        radix_int(h, 16)
    } else if let Some(o) = lower.strip_prefix("0o") {
        radix_int(o, 8)
    } else if let Some(b) = lower.strip_prefix("0b") {
        radix_int(b, 2)
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|c| c.is_ascii_digit())
    {
        radix_int(&lower[1..], 8)
    } else if lower.bytes().all(|c| c.is_ascii_digit()) && !lower.is_empty() {
        Some(lower.parse::<i64>().ok()?)
    } else {
        None
    };
    let sign = |v: i64| if neg { -v } else { v };
    if let Some(i) = int {
        return Some(Expr::Number {
            text: text.to_string(),
            int: Some(sign(i)),
            float: sign(i) as f64,
            is_float: false,
        });
    }
    if !body
        .bytes()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == b'.')
        || lower.starts_with("0x")
    {
        return None;
    }
    let f: f64 = body.parse().ok()?;
    let f = if neg { -f } else { f };
    let int = (f.fract() == 0.0 && f.abs() < 9.2e18).then_some(f as i64);
    Some(Expr::Number {
        text: text.to_string(),
        int,
        float: f,
        is_float: true,
    })
}
