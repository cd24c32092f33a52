//! Execution, following Go's `text/template/exec.go` semantics on JSON data.

use crate::funcs;
use crate::gofmt;
use crate::parse::{Branch, Command, Expr, Node, Pipeline};
use crate::TemplateError;
use serde_json::Value;
use std::borrow::Cow;

/// A value during execution; `None` is Go's invalid value (a missing map
/// key), which prints as `<no value>`.
pub(crate) type Val<'d> = Option<Cow<'d, Value>>;

/// A child of `v` (borrowed when `v` is), if `get` finds one.
pub(crate) fn child<'d>(
    v: &Cow<'d, Value>,
    get: impl for<'a> Fn(&'a Value) -> Option<&'a Value>,
) -> Val<'d> {
    match v {
        Cow::Borrowed(b) => get(b).map(Cow::Borrowed),
        Cow::Owned(o) => get(o).map(|c| Cow::Owned(c.clone())),
    }
}

/// Go's truth: false for the zero value, nil, empty strings, slices and maps.
pub(crate) fn truth(v: &Val) -> bool {
    match v.as_deref() {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
    }
}

#[derive(PartialEq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

/// What the data is.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Mode {
    /// A document (`docker inspect -f`).
    Plain,
    /// A list row (`docker ps --format`). docker's row contexts marshal
    /// themselves with json.Marshal, so `{{json .}}` of the row escapes `<>&`
    /// while `{{json .Names}}` of a field does not.
    Row,
    /// The header map of a table (docker's HeaderFunctions).
    Header,
}

struct State<'s, 'd> {
    src: &'s str,
    vars: Vec<(&'s str, Val<'d>)>,
    out: String,
    mode: Mode,
    root: &'d Value,
}

pub(crate) fn render(
    src: &str,
    nodes: &[Node],
    data: &Value,
    mode: Mode,
) -> Result<String, TemplateError> {
    match run(src, nodes, data, mode) {
        (out, None) => Ok(out),
        (_, Some(e)) => Err(e),
    }
}

/// As `render`, but keeps what was printed before an error and drops the
/// error: docker/cli's table header (`formatter.Context.postFormat` ignores
/// the header's execution error and prints the partial row).
pub(crate) fn render_partial(src: &str, nodes: &[Node], data: &Value, mode: Mode) -> String {
    run(src, nodes, data, mode).0
}

/// The output up to the end or to the first error, and that error.
fn run(src: &str, nodes: &[Node], data: &Value, mode: Mode) -> (String, Option<TemplateError>) {
    let root: Val = Some(Cow::Borrowed(data));
    let mut st = State {
        src,
        vars: vec![("", root.clone())],
        out: String::new(),
        mode,
        root: data,
    };
    let err = st.walk(&root, nodes).err();
    (st.out, err)
}

impl<'s, 'd> State<'s, 'd> {
    fn fail(&self, pos: usize, at: &dyn std::fmt::Display, msg: String) -> TemplateError {
        TemplateError::exec(self.src, pos, at.to_string(), msg)
    }

    fn walk(&mut self, dot: &Val<'d>, nodes: &'s [Node]) -> Result<Flow, TemplateError> {
        for node in nodes {
            let flow = match node {
                Node::Text(t) => {
                    self.out.push_str(t);
                    Flow::Normal
                }
                Node::Action(pipe) => {
                    let v = self.pipeline(dot, pipe)?;
                    // Go prints nothing for `{{$x := …}}`.
                    if pipe.decl.is_empty() {
                        match v.as_deref() {
                            None => self.out.push_str("<no value>"),
                            Some(v) => gofmt::write_v(&mut self.out, v),
                        }
                    }
                    Flow::Normal
                }
                Node::If(b) | Node::With(b) => {
                    self.if_with(dot, b, matches!(node, Node::With(_)))?
                }
                Node::Range(b) => self.range(dot, b)?,
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn if_with(&mut self, dot: &Val<'d>, b: &'s Branch, with: bool) -> Result<Flow, TemplateError> {
        let mark = self.vars.len();
        let v = self.pipeline(dot, &b.pipe)?;
        let flow = if truth(&v) {
            self.walk(if with { &v } else { dot }, &b.body)
        } else {
            self.walk(dot, &b.els)
        };
        self.vars.truncate(mark);
        flow
    }

    fn range(&mut self, dot: &Val<'d>, b: &'s Branch) -> Result<Flow, TemplateError> {
        let mark = self.vars.len();
        let v = self.commands(dot, &b.pipe)?;
        let items = self.range_items(&v, b)?;
        if items.is_empty() {
            let flow = self.walk(dot, &b.els);
            self.vars.truncate(mark);
            return flow;
        }
        for (key, elem) in items {
            match b.pipe.decl.as_slice() {
                [e] => self.bind(e, elem.clone(), b.pipe.assign),
                [k, e] => {
                    self.bind(k, Some(Cow::Owned(key)), b.pipe.assign);
                    self.bind(e, elem.clone(), b.pipe.assign);
                }
                _ => {}
            }
            let flow = self.walk(&elem, &b.body);
            self.vars.truncate(mark);
            if flow? == Flow::Break {
                break;
            }
        }
        Ok(Flow::Normal)
    }

    /// What `range` visits: (key or index, element) pairs.
    fn range_items(&self, v: &Val<'d>, b: &Branch) -> Result<Vec<(Value, Val<'d>)>, TemplateError> {
        let Some(c) = v else { return Ok(Vec::new()) };
        Ok(match c.as_ref() {
            // docker's nil slices and maps are JSON null: they range zero times.
            Value::Null => Vec::new(),
            Value::Array(a) => (0..a.len())
                .map(|i| (Value::from(i), child(c, |v| v.get(i))))
                .collect(),
            Value::Object(m) => {
                // Go visits map keys in sorted order.
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                keys.into_iter()
                    .map(|k| (Value::from(k.as_str()), child(c, |v| v.get(k.as_str()))))
                    .collect()
            }
            // Go ≥ 1.22 ranges over an integer n as 0..n.
            Value::Number(n) if n.as_i64().is_some() => {
                if b.pipe.decl.len() > 1 {
                    return Err(self.fail(
                        b.pos,
                        &"range",
                        "can't use $i, $e with an integer".into(),
                    ));
                }
                (0..n.as_i64().unwrap_or(0).max(0))
                    .map(|i| (Value::from(i), Some(Cow::Owned(Value::from(i)))))
                    .collect()
            }
            other => {
                let msg = format!("range can't iterate over {}", gofmt::v_string(other));
                return Err(self.fail(b.pos, &"range", msg));
            }
        })
    }

    fn bind(&mut self, name: &'s str, v: Val<'d>, assign: bool) {
        if assign {
            if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| *n == name) {
                slot.1 = v;
                return;
            }
        }
        self.vars.push((name, v));
    }

    /// The pipeline's commands, each one's result the last argument of the next.
    fn commands(&mut self, dot: &Val<'d>, pipe: &'s Pipeline) -> Result<Val<'d>, TemplateError> {
        let mut last: Option<Val<'d>> = None;
        for cmd in &pipe.cmds {
            last = Some(self.command(dot, cmd, last)?);
        }
        Ok(last.flatten())
    }

    fn pipeline(&mut self, dot: &Val<'d>, pipe: &'s Pipeline) -> Result<Val<'d>, TemplateError> {
        let v = self.commands(dot, pipe)?;
        if let Some(name) = pipe.decl.first() {
            self.bind(name, v.clone(), pipe.assign);
        }
        Ok(v)
    }

    fn var(&self, name: &str) -> Val<'d> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.clone())
    }

    fn command(
        &mut self,
        dot: &Val<'d>,
        cmd: &'s Command,
        last: Option<Val<'d>>,
    ) -> Result<Val<'d>, TemplateError> {
        let first = &cmd.args[0];
        let rest = &cmd.args[1..];
        let fail = |st: &Self, msg: String| st.fail(cmd.pos, first, msg);
        match first {
            Expr::Field(names) => self.field_chain(dot.clone(), names, rest, last, cmd),
            Expr::Var(name, names) if !names.is_empty() => {
                self.field_chain(self.var(name), names, rest, last, cmd)
            }
            Expr::Chain(inner, names) => {
                let recv = self.arg(dot, inner, cmd)?;
                self.field_chain(recv, names, rest, last, cmd)
            }
            Expr::Func(name) => self.call(dot, name, rest, last, cmd),
            Expr::Nil => Err(fail(self, "nil is not a command".into())),
            _ if !rest.is_empty() || last.is_some() => Err(fail(
                self,
                format!("can't give argument to non-function {first}"),
            )),
            _ => self.arg(dot, first, cmd),
        }
    }

    /// An argument's value (Go's evalArg for interface{} parameters).
    fn arg(
        &mut self,
        dot: &Val<'d>,
        e: &'s Expr,
        cmd: &'s Command,
    ) -> Result<Val<'d>, TemplateError> {
        Ok(match e {
            Expr::Dot => dot.clone(),
            Expr::Nil => Some(Cow::Owned(Value::Null)),
            Expr::Bool(b) => Some(Cow::Owned(Value::Bool(*b))),
            Expr::Str(s) => Some(Cow::Owned(Value::String(s.clone()))),
            // Go's idealConstant: a float if it was written as one, else an int.
            Expr::Number {
                int,
                float,
                is_float,
                ..
            } => Some(Cow::Owned(match (int, is_float) {
                (Some(i), false) => Value::from(*i),
                _ => serde_json::Number::from_f64(*float).map_or(Value::Null, Value::Number),
            })),
            Expr::Field(names) => self.field_chain(dot.clone(), names, &[], None, cmd)?,
            Expr::Var(name, names) => self.field_chain(self.var(name), names, &[], None, cmd)?,
            Expr::Chain(inner, names) => {
                let recv = self.arg(dot, inner, cmd)?;
                self.field_chain(recv, names, &[], None, cmd)?
            }
            Expr::Func(name) => self.call(dot, name, &[], None, cmd)?,
            Expr::Pipe(p) => self.pipeline(dot, p)?,
        })
    }

    fn field_chain(
        &mut self,
        mut recv: Val<'d>,
        names: &'s [String],
        args: &'s [Expr],
        last: Option<Val<'d>>,
        cmd: &'s Command,
    ) -> Result<Val<'d>, TemplateError> {
        let Some((final_name, path)) = names.split_last() else {
            return Ok(recv);
        };
        for name in path {
            recv = self
                .field(recv, name)
                .map_err(|m| self.fail(cmd.pos, &cmd.args[0], m))?;
        }
        let v = self
            .field(recv, final_name)
            .map_err(|m| self.fail(cmd.pos, &cmd.args[0], m))?;
        if args.is_empty() && last.is_none() {
            return Ok(v);
        }
        let mut vals = Vec::new();
        for a in args {
            vals.push(self.arg(&v, a, cmd)?);
        }
        vals.extend(last);
        self.method(v, final_name, vals)
            .map_err(|m| self.fail(cmd.pos, &cmd.args[0], m))
    }

    /// `.Name` on a value: Go's map index, `<no value>` when absent.
    fn field(&self, recv: Val<'d>, name: &str) -> Result<Val<'d>, String> {
        let Some(recv) = recv else { return Ok(None) };
        match recv.as_ref() {
            Value::Object(_) => Ok(child(&recv, |v| v.get(name))),
            Value::Null => Err(format!("nil pointer evaluating interface {{}}.{name}")),
            other => Err(format!(
                "can't evaluate field {name} in type {}",
                gofmt::type_name(other)
            )),
        }
    }

    /// A field called with arguments. docker's list contexts have methods
    /// taking a key (`{{.Label "com.example"}}` on ps, images, volumes and
    /// networks); their data here is the map the key indexes, so one string
    /// argument looks it up and, as docker's methods, gives "" when absent.
    fn method(&self, v: Val<'d>, name: &str, args: Vec<Val<'d>>) -> Result<Val<'d>, String> {
        if self.mode == Mode::Header {
            return Ok(v);
        }
        match (v.as_deref(), args.as_slice()) {
            (Some(Value::Object(_)), [Some(key)]) if key.is_string() => {
                let key = key.as_str().unwrap_or_default();
                let v = v.as_ref().and_then(|c| child(c, |m| m.get(key)));
                Ok(Some(v.unwrap_or(Cow::Owned(Value::String(String::new())))))
            }
            (Some(Value::Null) | None, [Some(key)]) if key.is_string() => {
                Ok(Some(Cow::Owned(Value::String(String::new()))))
            }
            _ => Err(format!("{name} is not a method but has arguments")),
        }
    }

    fn call(
        &mut self,
        dot: &Val<'d>,
        name: &str,
        args: &'s [Expr],
        last: Option<Val<'d>>,
        cmd: &'s Command,
    ) -> Result<Val<'d>, TemplateError> {
        // and/or evaluate their arguments only as far as needed (Go ≥ 1.18) and
        // give back the deciding argument itself, not a bool.
        if name == "and" || name == "or" {
            let n = args.len() + usize::from(last.is_some());
            if n == 0 {
                return Err(self.fail(
                    cmd.pos,
                    &name,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let mut v = None;
            for a in args {
                v = self.arg(dot, a, cmd)?;
                if truth(&v) == (name == "or") {
                    return Ok(v);
                }
            }
            return Ok(last.unwrap_or(v));
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.arg(dot, a, cmd)?);
        }
        vals.extend(last);
        let html = self.mode == Mode::Row
            && name == "json"
            && matches!(vals.first(), Some(Some(Cow::Borrowed(v))) if std::ptr::eq(*v, self.root));
        funcs::call(name, vals, self.mode == Mode::Header, html).map_err(|m| {
            // Go reports argument type and count errors as they are, and
            // errors a function returns as "error calling NAME: …".
            let arg_error = ["wrong type", "invalid value", "wrong number of args"]
                .iter()
                .any(|p| m.starts_with(p));
            let msg = if arg_error {
                m
            } else {
                format!("error calling {name}: {m}")
            };
            self.fail(cmd.pos, &name, msg)
        })
    }
}

impl std::fmt::Display for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expr::Dot => f.write_str("."),
            Expr::Nil => f.write_str("nil"),
            Expr::Bool(b) => write!(f, "{b}"),
            Expr::Number { text, .. } => f.write_str(text),
            Expr::Str(s) => write!(f, "{}", gofmt::quote(s)),
            Expr::Field(names) => names.iter().try_for_each(|n| write!(f, ".{n}")),
            Expr::Var(v, names) => {
                write!(f, "${v}")?;
                names.iter().try_for_each(|n| write!(f, ".{n}"))
            }
            Expr::Func(name) => f.write_str(name),
            Expr::Chain(inner, names) => {
                write!(f, "{inner}")?;
                names.iter().try_for_each(|n| write!(f, ".{n}"))
            }
            Expr::Pipe(_) => f.write_str("(…)"),
        }
    }
}
