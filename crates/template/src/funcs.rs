//! Go's template builtins and docker's functions (docker/cli `templates`).

use crate::exec::{child, truth, Val};
use crate::gofmt::{self, is_float, type_name};
use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;

const FUNCS: &[&str] = &[
    // Go's builtins.
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt",
    "le", "gt", "ge", // docker's (templates.basicFunctions).
    "json", "split", "join", "title", "lower", "upper", "pad", "truncate",
];

/// Go builtins oxcart leaves out: they escape for HTML/JS/URLs or call Go
/// funcs, none of which docker's data holds or its users' formats need.
pub(crate) const UNSUPPORTED: &[&str] = &["html", "js", "urlquery", "call"];

pub(crate) fn is_known(name: &str) -> bool {
    FUNCS.contains(&name)
}

type R<'d> = Result<Val<'d>, String>;

fn owned<'d>(v: Value) -> R<'d> {
    Ok(Some(Cow::Owned(v)))
}

fn want(name: &str, args: &[Val], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

/// A string parameter, with Go's reflect errors for anything else.
fn string_arg<'a>(v: &'a Val) -> Result<&'a str, String> {
    match v.as_deref() {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!(
            "wrong type for value; expected string; got {}",
            type_name(other)
        )),
        None => Err("invalid value; expected string".into()),
    }
}

fn int_arg(v: &Val) -> Result<i64, String> {
    match v.as_deref() {
        Some(Value::Number(n)) if !is_float(n) => {
            n.as_i64().ok_or_else(|| "integer overflow".to_string())
        }
        Some(other) => Err(format!(
            "wrong type for value; expected int; got {}",
            type_name(other)
        )),
        None => Err("invalid value; expected int".into()),
    }
}

/// Go converts a missing value passed as an interface{} to nil.
fn plain(args: &[Val]) -> Vec<Value> {
    args.iter()
        .map(|a| a.as_deref().cloned().unwrap_or(Value::Null))
        .collect()
}

/// `header`: the table's header row is being rendered. `html`: `json` is to
/// escape HTML characters (see `exec::Mode::Row`).
pub(crate) fn call<'d>(name: &str, args: Vec<Val<'d>>, header: bool, html: bool) -> R<'d> {
    // docker's HeaderFunctions: in the header row its string functions give
    // back the header unchanged so it keeps naming the column (pad stays).
    if header
        && matches!(
            name,
            "json" | "split" | "join" | "title" | "lower" | "upper" | "truncate"
        )
    {
        return Ok(args.into_iter().next().flatten());
    }
    match name {
        "not" => {
            want(name, &args, 1)?;
            owned(Value::Bool(!truth(&args[0])))
        }
        "len" => {
            want(name, &args, 1)?;
            len(&args[0])
        }
        "index" => index(args),
        "slice" => slice(args),
        "print" => owned(Value::String(gofmt::sprint(&plain(&args)))),
        "println" => owned(Value::String(gofmt::sprintln(&plain(&args)))),
        "printf" => {
            let Some((f, rest)) = args.split_first() else {
                return Err("wrong number of args for printf: want at least 1 got 0".into());
            };
            owned(Value::String(gofmt::sprintf(string_arg(f)?, &plain(rest))))
        }
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" => comparison(name, &args),
        _ => docker(name, args, html),
    }
}

/// eq (true if the first argument equals any other), ne, lt, le, gt, ge.
fn comparison<'d>(name: &str, args: &[Val<'d>]) -> R<'d> {
    if name == "eq" {
        if args.len() < 2 {
            return Err("missing argument for comparison".into());
        }
        for other in &args[1..] {
            if eq(&args[0], other)? {
                return owned(Value::Bool(true));
            }
        }
        return owned(Value::Bool(false));
    }
    want(name, args, 2)?;
    if name == "ne" {
        return owned(Value::Bool(!eq(&args[0], &args[1])?));
    }
    if kind(&args[0]) == Kind::Bool {
        return Err("invalid type for comparison".into());
    }
    let ord = compare(&args[0], &args[1])?;
    owned(Value::Bool(match name {
        "lt" => ord == Ordering::Less,
        "le" => ord != Ordering::Greater,
        "gt" => ord == Ordering::Greater,
        _ => ord != Ordering::Less,
    }))
}

/// docker/cli's `templates.basicFunctions`.
fn docker<'d>(name: &str, args: Vec<Val<'d>>, html: bool) -> R<'d> {
    let arity = match name {
        "json" | "title" | "lower" | "upper" => 1,
        "split" | "join" | "truncate" => 2,
        "pad" => 3,
        _ => return Err(format!("function {name:?} not defined")),
    };
    want(name, &args, arity)?;
    let s = match name {
        "json" => {
            let mut s = String::new();
            gofmt::write_json(&mut s, args[0].as_deref().unwrap_or(&Value::Null), html);
            s
        }
        "split" => return split(string_arg(&args[0])?, string_arg(&args[1])?),
        "join" => join(&args[0], string_arg(&args[1])?)?,
        "title" => title(string_arg(&args[0])?),
        "lower" => string_arg(&args[0])?.to_lowercase(),
        "upper" => string_arg(&args[0])?.to_uppercase(),
        "pad" => pad(
            string_arg(&args[0])?,
            int_arg(&args[1])?,
            int_arg(&args[2])?,
        )?,
        _ => truncate(string_arg(&args[0])?, int_arg(&args[1])?)?,
    };
    owned(Value::String(s))
}

/// strings.Split; an empty separator splits into characters.
fn split<'d>(s: &str, sep: &str) -> R<'d> {
    let parts: Vec<Value> = if sep.is_empty() {
        s.chars().map(|c| Value::String(c.to_string())).collect()
    } else {
        s.split(sep).map(|p| Value::String(p.to_string())).collect()
    };
    owned(Value::Array(parts))
}

/// strings.Join of a []string; a nil slice joins to "".
fn join(list: &Val, sep: &str) -> Result<String, String> {
    let wrong = |t: &str| format!("wrong type for value; expected []string; got {t}");
    let parts = match list.as_deref() {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|e| e.as_str().ok_or_else(|| wrong("[]interface {}")))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => return Err(wrong(type_name(other))),
    };
    Ok(parts.join(sep))
}

/// docker's padWithSpace: an empty string stays empty.
fn pad(s: &str, pre: i64, post: i64) -> Result<String, String> {
    if pre < 0 || post < 0 {
        return Err("negative Repeat count".into());
    }
    if s.is_empty() {
        return Ok(String::new());
    }
    Ok(format!(
        "{}{s}{}",
        " ".repeat(pre as usize),
        " ".repeat(post as usize)
    ))
}

/// docker's truncateWithLength slices bytes; this stops at a character
/// boundary instead of producing broken UTF-8 (Go prints the broken bytes).
fn truncate(s: &str, n: i64) -> Result<String, String> {
    if n < 0 {
        return Err(format!("slice bounds out of range [:{n}]"));
    }
    let mut end = (n as usize).min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Ok(s[..end].to_string())
}

/// strings.Title: upper-cases the first letter of every word; letters,
/// digits, `_` and non-ASCII non-space characters continue a word.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            c.is_whitespace()
        };
    }
    out
}

fn len<'d>(v: &Val<'d>) -> R<'d> {
    let n = match v.as_deref() {
        // A nil slice or map has length 0.
        None | Some(Value::Null) => 0,
        Some(Value::String(s)) => s.len(),
        Some(Value::Array(a)) => a.len(),
        Some(Value::Object(m)) => m.len(),
        Some(other) => return Err(format!("len of type {}", type_name(other))),
    };
    owned(Value::from(n))
}

/// Go's index: each argument indexes the result of the previous.
fn index(args: Vec<Val<'_>>) -> R<'_> {
    let mut args = args.into_iter();
    let Some(mut cur) = args.next() else {
        return Err("wrong number of args for index: want at least 1 got 0".into());
    };
    for key in args {
        let Some(c) = cur else {
            return Err("index of untyped nil".into());
        };
        cur = match (c.as_ref(), key.as_deref()) {
            (Value::Array(a), Some(Value::Number(n))) if !is_float(n) => {
                let i = n.as_i64().filter(|&i| i >= 0 && (i as usize) < a.len());
                let i = i.ok_or_else(|| format!("index out of range: {n}"))? as usize;
                child(&c, |v| v.get(i))
            }
            (Value::String(s), Some(Value::Number(n))) if !is_float(n) => {
                let i = n.as_i64().filter(|&i| i >= 0 && (i as usize) < s.len());
                let i = i.ok_or_else(|| format!("index out of range: {n}"))? as usize;
                // Go indexes a string's bytes and prints the byte as a number.
                Some(Cow::Owned(Value::from(s.as_bytes()[i])))
            }
            (Value::Object(m), Some(Value::String(k))) => match child(&c, |v| v.get(k.as_str())) {
                Some(v) => Some(v),
                None => Some(Cow::Owned(missing_entry(m))),
            },
            // docker's nil map[string]string (Labels, Options) gives "".
            (Value::Null, Some(Value::String(_))) => Some(Cow::Owned(Value::String(String::new()))),
            (Value::Array(_) | Value::String(_), k) => {
                return Err(format!(
                    "cannot index slice/array with type {}",
                    k.map_or("nil", type_name)
                ))
            }
            (Value::Object(_), k) => {
                return Err(format!(
                    "value has type {}; should be string",
                    k.map_or("nil", type_name)
                ))
            }
            (other, _) => return Err(format!("can't index item of type {}", type_name(other))),
        };
    }
    Ok(cur)
}

/// Go's index gives the map's zero value for a missing key. JSON loses the
/// element type; a map of strings (docker's labels and options) gives "",
/// any other map nil.
fn missing_entry(m: &serde_json::Map<String, Value>) -> Value {
    if m.values().all(Value::is_string) {
        Value::String(String::new())
    } else {
        Value::Null
    }
}

fn slice(args: Vec<Val<'_>>) -> R<'_> {
    let Some((item, idx)) = args.split_first() else {
        return Err("wrong number of args for slice: want at least 1 got 0".into());
    };
    let Some(item) = item.as_deref() else {
        return Err("slice of untyped nil".into());
    };
    let len = match item {
        Value::String(s) => s.len(),
        Value::Array(a) => a.len(),
        other => return Err(format!("can't slice item of type {}", type_name(other))),
    };
    if idx.len() > 3 || (idx.len() == 3 && item.is_string()) {
        return Err(format!("too many slice indexes: {}", idx.len()));
    }
    let mut bounds = Vec::new();
    for i in idx {
        let n = int_arg(i)?;
        if n < 0 || n as usize > len {
            return Err(format!("index out of range: {n}"));
        }
        bounds.push(n as usize);
    }
    let lo = bounds.first().copied().unwrap_or(0);
    let hi = bounds.get(1).copied().unwrap_or(len);
    if lo > hi {
        return Err(format!("invalid slice index: {lo} > {hi}"));
    }
    match item {
        Value::String(s) => s
            .get(lo..hi)
            .map(|t| Some(Cow::Owned(Value::String(t.to_string()))))
            .ok_or_else(|| format!("slice [{lo}:{hi}] splits a UTF-8 character")),
        // Only strings and arrays got a length above.
        _ => owned(Value::Array(
            item.as_array()
                .map(|a| a[lo..hi].to_vec())
                .unwrap_or_default(),
        )),
    }
}

/// Go's basic kinds for comparison.
#[derive(PartialEq, Clone, Copy, Debug)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    String,
    Other,
}

fn kind(v: &Val) -> Kind {
    match v.as_deref() {
        // Go compares an interface's element: nil becomes the invalid value.
        None | Some(Value::Null) => Kind::Invalid,
        Some(Value::Bool(_)) => Kind::Bool,
        Some(Value::Number(n)) if is_float(n) => Kind::Float,
        Some(Value::Number(_)) => Kind::Int,
        Some(Value::String(_)) => Kind::String,
        Some(_) => Kind::Other,
    }
}

fn eq(a: &Val, b: &Val) -> Result<bool, String> {
    let (ka, kb) = (kind(a), kind(b));
    if ka != kb {
        if ka == Kind::Invalid || kb == Kind::Invalid {
            return Ok(false);
        }
        return Err("incompatible types for comparison".into());
    }
    match ka {
        Kind::Invalid => Ok(true),
        Kind::Other => Err(format!(
            "non-comparable type {}",
            a.as_deref().map_or("<nil>", type_name)
        )),
        _ => Ok(compare(a, b)? == Ordering::Equal),
    }
}

fn compare(a: &Val, b: &Val) -> Result<Ordering, String> {
    let (ka, kb) = (kind(a), kind(b));
    if ka != kb {
        return Err("incompatible types for comparison".into());
    }
    let (Some(x), Some(y)) = (a.as_deref(), b.as_deref()) else {
        return Err("invalid type for comparison".into());
    };
    match (x, y) {
        (Value::Bool(p), Value::Bool(q)) if ka == Kind::Bool => Ok(p.cmp(q)),
        (Value::String(p), Value::String(q)) => Ok(p.cmp(q)),
        (Value::Number(p), Value::Number(q)) if ka == Kind::Int => {
            Ok(match (p.as_i64(), q.as_i64()) {
                (Some(i), Some(j)) => i.cmp(&j),
                // Not an i64 means a u64 above i64::MAX (Go's int/uint special case).
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => p.as_u64().cmp(&q.as_u64()),
            })
        }
        (Value::Number(p), Value::Number(q)) => p
            .as_f64()
            .partial_cmp(&q.as_f64())
            .ok_or_else(|| "invalid type for comparison".to_string()),
        _ => Err("invalid type for comparison".into()),
    }
}
