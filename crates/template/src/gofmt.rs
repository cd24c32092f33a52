//! Go's `fmt` and `encoding/json` output for JSON values, as a template prints
//! them: `%v` of the Go values docker's structs hold (ints, float64, strings,
//! slices as `[a b]`, maps as `map[k:v]` with sorted keys, nil as `<nil>`).

use serde_json::{Number, Value};
use std::fmt::Write;

/// Go's type name for a value, for `%!d(string=x)` and type errors.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if is_float(n) => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// serde_json keeps integers as integers; a number that only fits f64 is
/// Go's float64.
pub(crate) fn is_float(n: &Number) -> bool {
    !(n.is_i64() || n.is_u64())
}

/// `%v`.
pub(crate) fn write_v(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => out.push_str(s),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_v(out, e);
            }
            out.push(']');
        }
        Value::Object(m) => {
            // fmt prints map keys sorted (Go ≥ 1.12), whatever the map's order.
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_v(out, &m[k.as_str()]);
            }
            out.push(']');
        }
    }
}

pub(crate) fn v_string(v: &Value) -> String {
    let mut s = String::new();
    write_v(&mut s, v);
    s
}

fn write_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        out.push_str(&float_v(f));
    }
}

/// Decimal digits of `f` (no trailing zeros) and the decimal point's
/// position: f = 0.d1d2… × 10^dp. `sig` rounds to that many significant digits;
/// without it the digits are the shortest that read back as `f`, as Go's
/// strconv with precision -1.
fn digits(f: f64, sig: Option<usize>) -> (Vec<u8>, i32) {
    if f == 0.0 {
        return (Vec::new(), 0);
    }
    let s = match sig {
        Some(p) => format!("{:.*e}", p.saturating_sub(1), f.abs()),
        None => format!("{:e}", f.abs()),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while d.len() > 1 && d.last() == Some(&b'0') {
        d.pop();
    }
    (d, exp + 1)
}

/// strconv's %e layout: d.ddde±XX with `prec` decimals.
fn fmt_e(neg: bool, d: &[u8], dp: i32, prec: usize, upper: bool) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    s.push(d.first().map_or('0', |&c| c as char));
    if prec > 0 {
        s.push('.');
        for i in 1..=prec {
            s.push(d.get(i).map_or('0', |&c| c as char));
        }
    }
    s.push(if upper { 'E' } else { 'e' });
    let exp = if d.is_empty() { 0 } else { dp - 1 };
    let _ = write!(s, "{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    s
}

/// strconv's %f layout with `prec` decimals from already-rounded digits.
fn fmt_f(neg: bool, d: &[u8], dp: i32, prec: usize) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    if dp > 0 {
        for i in 0..dp as usize {
            s.push(d.get(i).map_or('0', |&c| c as char));
        }
    } else {
        s.push('0');
    }
    if prec > 0 {
        s.push('.');
        for i in 0..prec as i32 {
            let j = dp + i;
            s.push(if j >= 0 {
                d.get(j as usize).map_or('0', |&c| c as char)
            } else {
                '0'
            });
        }
    }
    s
}

/// Go's `%v` for a float64: `%g` with the shortest digits, so an exponent
/// below 1e-4 and from 1e+06 up (strconv: "if precision was the shortest
/// possible, use precision 6 for this decision").
pub(crate) fn float_v(f: f64) -> String {
    g_format(f, None, false)
}

/// strconv's 'g': `prec` significant digits (None: shortest).
fn g_format(f: f64, prec: Option<usize>, upper: bool) -> String {
    if let Some(s) = non_finite(f) {
        return s;
    }
    let neg = f.is_sign_negative() && f != 0.0;
    let (d, dp) = digits(f, prec.map(|p| p.max(1)));
    let nd = d.len() as i32;
    let mut eprec = prec.map_or(nd, |p| p.max(1) as i32);
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if prec.is_none() {
        eprec = 6;
    }
    let exp = dp - 1;
    if !d.is_empty() && (exp < -4 || exp >= eprec) {
        return fmt_e(neg, &d, dp, (nd - 1).max(0) as usize, upper);
    }
    fmt_f(neg, &d, dp, (nd - dp).max(0) as usize)
}

fn non_finite(f: f64) -> Option<String> {
    if f.is_nan() {
        Some("NaN".into())
    } else if f.is_infinite() {
        Some(if f > 0.0 { "+Inf" } else { "-Inf" }.into())
    } else {
        None
    }
}

/// encoding/json's float64: fixed notation unless below 1e-6 or from 1e21,
/// then an exponent without the leading zero for negative exponents (e-7).
pub(crate) fn float_json(f: f64) -> String {
    let abs = f.abs();
    let neg = f.is_sign_negative() && f != 0.0;
    let (d, dp) = digits(f, None);
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = fmt_e(neg, &d, dp, d.len().saturating_sub(1), false);
        // json's "clean up e-09 to e-9".
        if let Some(i) = s.find("e-0") {
            return format!("{}e-{}", &s[..i], &s[i + 3..]);
        }
        return s;
    }
    fmt_f(neg, &d, dp, (d.len() as i32 - dp).max(0) as usize)
}

/// docker's `json`: encoding/json with SetEscapeHTML(false) (docker/cli
/// templates.go), so `<`, `>` and `&` stay as they are, unless `html`: then
/// they are `\u003c`, `\u003e`, `\u0026` as json.Marshal writes them.
pub(crate) fn write_json(out: &mut String, v: &Value, html: bool) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => {
                let _ = write!(out, "{i}");
            }
            (_, Some(u), _) => {
                let _ = write!(out, "{u}");
            }
            (_, _, Some(f)) => out.push_str(&float_json(f)),
            _ => out.push_str("null"),
        },
        Value::String(s) => write_json_str(out, s, html),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, e, html);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_str(out, k, html);
                out.push(':');
                write_json(out, e, html);
            }
            out.push('}');
        }
    }
}

fn write_json_str(out: &mut String, s: &str, html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Go ≥ 1.22 writes \b and \f short; older Go wrote \u0008 and \u000c.
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            '<' | '>' | '&' if html => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            // encoding/json always escapes the JavaScript line terminators.
            '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// strconv.Quote: Go escapes, printable characters kept.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        quote_char(&mut out, c, '"');
    }
    out.push('"');
    out
}

fn quote_char(out: &mut String, c: char, q: char) {
    match c {
        c if c == q || c == '\\' => {
            out.push('\\');
            out.push(c);
        }
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c == '\x7f' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if c.is_control() => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => out.push(c),
    }
}

/// fmt.Sprint: a space between operands when neither is a string.
pub(crate) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        write_v(&mut out, a);
    }
    out
}

/// fmt.Sprintln: spaces between all operands, and a newline.
pub(crate) fn sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_v(&mut out, a);
    }
    out.push('\n');
    out
}

#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// fmt.Sprintf for the verbs formats use: v s q d x X o b c U e E f F g G t T %.
/// Bad verbs, missing and extra operands print as Go prints them
/// (`%!d(string=x)`, `%!s(MISSING)`, `%!(EXTRA int=1)`).
pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                _ => break,
            }
            chars.next();
        }
        spec.width = number_or_star(&mut chars, args, &mut next);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.prec = Some(number_or_star(&mut chars, args, &mut next).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        next += 1;
        out.push_str(&format_arg(arg, verb, &spec));
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args[next..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{}={}", type_name(a), v_string(a));
        }
        out.push(')');
    }
    out
}

fn number_or_star(
    chars: &mut std::iter::Peekable<std::str::Chars>,
    args: &[Value],
    next: &mut usize,
) -> Option<usize> {
    if chars.peek() == Some(&'*') {
        chars.next();
        let n = args.get(*next).and_then(Value::as_u64);
        *next += 1;
        return n.map(|n| n.min(1_000_000) as usize);
    }
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        // Go rejects widths over 1e6; capping keeps a typo from allocating gigabytes.
        n = Some((n.unwrap_or(0) * 10 + d as usize).min(1_000_000));
        chars.next();
    }
    n
}

fn bad_verb(verb: char, v: &Value) -> String {
    match v {
        Value::Null => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", type_name(v), v_string(v)),
    }
}

fn format_arg(v: &Value, verb: char, spec: &Spec) -> String {
    let (body, numeric) = match (verb, v) {
        ('v', _) => (v_verb(v, spec), matches!(v, Value::Number(_))),
        ('T', _) => (type_name(v).to_string(), false),
        ('s', Value::String(s)) => (truncate_chars(s, spec.prec), false),
        ('q', Value::String(s)) => (quote(&truncate_chars(s, spec.prec)), false),
        (
            's' | 'q' | 'd' | 'x' | 'X' | 'o' | 'b' | 'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 't',
            Value::Array(a),
        ) => {
            let parts: Vec<String> = a.iter().map(|e| format_arg(e, verb, spec)).collect();
            return format!("[{}]", parts.join(" "));
        }
        // fmt applies the verb to a map's keys and values, in key order.
        (
            's' | 'q' | 'd' | 'x' | 'X' | 'o' | 'b' | 'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 't',
            Value::Object(m),
        ) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    let key = format_arg(&Value::String(k.clone()), verb, spec);
                    format!("{key}:{}", format_arg(&m[k.as_str()], verb, spec))
                })
                .collect();
            return format!("map[{}]", parts.join(" "));
        }
        ('x' | 'X', Value::String(s)) => {
            let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
            (if verb == 'X' { hex.to_uppercase() } else { hex }, false)
        }
        ('t', Value::Bool(b)) => (b.to_string(), false),
        (_, Value::Number(n)) if !is_float(n) => match int_verb(n, verb, spec) {
            Some(s) => (s, true),
            None => return bad_verb(verb, v),
        },
        ('e' | 'E' | 'f' | 'F' | 'g' | 'G', Value::Number(n)) => {
            (float_verb(n.as_f64().unwrap_or(0.0), verb, spec), true)
        }
        _ => return bad_verb(verb, v),
    };
    pad(body, spec, numeric)
}

fn v_verb(v: &Value, spec: &Spec) -> String {
    match v {
        Value::Number(n) if is_float(n) => float_verb(n.as_f64().unwrap_or(0.0), 'v', spec),
        Value::Number(n) => int_verb(n, 'd', spec).unwrap_or_default(),
        Value::String(s) => truncate_chars(s, spec.prec),
        _ => v_string(v),
    }
}

fn truncate_chars(s: &str, prec: Option<usize>) -> String {
    match prec {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_string(),
    }
}

fn sign(neg: bool, spec: &Spec) -> &'static str {
    if neg {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

fn int_verb(n: &Number, verb: char, spec: &Spec) -> Option<String> {
    let (neg, mag) = match (n.as_i64(), n.as_u64()) {
        (Some(i), _) => (i < 0, i.unsigned_abs()),
        (None, Some(u)) => (false, u),
        _ => return None,
    };
    let digits = match verb {
        'd' | 'v' => mag.to_string(),
        'x' => format!("{}{mag:x}", if spec.sharp { "0x" } else { "" }),
        'X' => format!("{}{mag:X}", if spec.sharp { "0X" } else { "" }),
        'o' => format!("{}{mag:o}", if spec.sharp { "0" } else { "" }),
        'b' => format!("{mag:b}"),
        'c' => return char::from_u32(mag as u32).map(String::from),
        'q' => {
            let c = char::from_u32(mag as u32)?;
            let mut s = String::from("'");
            quote_char(&mut s, c, '\'');
            s.push('\'');
            return Some(s);
        }
        'U' => return Some(format!("U+{mag:04X}")),
        _ => return None,
    };
    let digits = match spec.prec {
        Some(p) if digits.len() < p => format!("{}{digits}", "0".repeat(p - digits.len())),
        _ => digits,
    };
    Some(format!("{}{digits}", sign(neg, spec)))
}

fn float_verb(f: f64, verb: char, spec: &Spec) -> String {
    let neg = f.is_sign_negative() && f != 0.0;
    let body = match verb {
        'e' | 'E' => {
            let p = spec.prec.unwrap_or(6);
            let (d, dp) = digits(f, Some(p + 1));
            fmt_e(false, &d, dp, p, verb == 'E')
        }
        'f' | 'F' => format!("{:.*}", spec.prec.unwrap_or(6), f.abs()),
        'g' | 'G' => g_format(f.abs(), spec.prec, verb == 'G'),
        _ => match spec.prec {
            Some(p) => g_format(f.abs(), Some(p), false),
            None => float_v(f.abs()),
        },
    };
    if let Some(s) = non_finite(f) {
        return s;
    }
    format!("{}{body}", sign(neg, spec))
}

/// Width padding: spaces on the left (right with `-`), or zeros after the
/// sign for numbers with `0`.
fn pad(body: String, spec: &Spec, numeric: bool) -> String {
    let Some(width) = spec.width else { return body };
    let len = body.chars().count();
    if len >= width {
        return body;
    }
    let fill = width - len;
    if spec.minus {
        format!("{body}{}", " ".repeat(fill))
    } else if spec.zero && numeric {
        let split = body.find(|c: char| c.is_ascii_digit()).unwrap_or(0);
        format!("{}{}{}", &body[..split], "0".repeat(fill), &body[split..])
    } else if spec.zero {
        format!("{}{body}", "0".repeat(fill))
    } else {
        format!("{}{body}", " ".repeat(fill))
    }
}
