//! A client's line is a URL query (Go's `url.ParseQuery`): `label=a%3Db&label=c` is
//! the filter `{"label": ["a=b", "c"]}`, which selects the resources docker's list
//! endpoints return for it (all of its labels). testcontainers-python sends
//! `label=org.testcontainers.session-id=<uuid>` unescaped; only the first `=` splits.

use std::collections::{BTreeMap, BTreeSet};

/// One client filter: docker's `filters.Args` (each field, the set of its values).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Filter(pub BTreeMap<String, BTreeSet<String>>);

impl Filter {
    /// docker's JSON form (`{"label":{"a=b":true}}`), the `filters` query parameter of
    /// every list endpoint; also the key two equal filters share.
    pub fn to_json(&self) -> String {
        let m: serde_json::Map<String, serde_json::Value> = self
            .0
            .iter()
            .map(|(k, vals)| {
                let set = vals
                    .iter()
                    .map(|v| (v.clone(), serde_json::Value::Bool(true)))
                    .collect();
                (k.clone(), serde_json::Value::Object(set))
            })
            .collect();
        serde_json::Value::Object(m).to_string()
    }
}

/// The fields of a query line in order of appearance, each with its values.
pub type Fields = Vec<(String, Vec<String>)>;

/// Go's `url.ParseQuery` of one line: `&`-separated `key=value` pairs, both
/// `QueryUnescape`d (`+` is a space). Any bad pair (a `;`, a bad `%` escape) fails the
/// whole line, as Ryuk then adds nothing of it.
pub fn parse_query(line: &str) -> Result<Fields, String> {
    let mut out: Fields = Vec::new();
    let mut err = None;
    for pair in line.split('&') {
        if pair.contains(';') {
            err.get_or_insert_with(|| "invalid semicolon separator in query".to_string());
            continue;
        }
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = match (unescape(k), unescape(v)) {
            (Ok(k), Ok(v)) => (k, v),
            (Err(e), _) | (_, Err(e)) => {
                err.get_or_insert(e);
                continue;
            }
        };
        match out.iter_mut().find(|(x, _)| *x == k) {
            Some((_, vals)) => vals.push(v),
            None => out.push((k, vec![v])),
        }
    }
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The filter of parsed fields. An empty one is refused: docker lists every resource
/// for no filter, and a reaper must never take a stray `&` for "remove everything".
pub fn filter_of(fields: &Fields) -> Result<Filter, String> {
    if fields.is_empty() {
        return Err("empty filter: it would select every resource".to_string());
    }
    let mut f = Filter::default();
    for (k, vals) in fields {
        f.0.entry(k.clone())
            .or_default()
            .extend(vals.iter().cloned());
    }
    Ok(f)
}

/// Go's `url.QueryUnescape`.
fn unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (
                    b.get(i + 1).copied().and_then(hex),
                    b.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                    _ => {
                        let end = (i + 3).min(b.len());
                        return Err(format!(
                            "invalid URL escape {:?}",
                            String::from_utf8_lossy(&b[i..end])
                        ));
                    }
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    // Go keeps the bytes; its JSON encoder then writes invalid UTF-8 as U+FFFD.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Percent-encoding of a query value or path segment (everything but RFC 3986's
/// unreserved characters).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(line: &str) -> Result<String, String> {
        filter_of(&parse_query(line)?).map(|f| f.to_json())
    }

    #[test]
    fn lines_are_url_queries() {
        assert_eq!(
            f("label=org.testcontainers.session-id%3Dabc").unwrap(),
            r#"{"label":{"org.testcontainers.session-id=abc":true}}"#
        );
        // testcontainers-python's unescaped form: only the first '=' splits.
        assert_eq!(
            f("label=org.testcontainers.session-id=abc").unwrap(),
            r#"{"label":{"org.testcontainers.session-id=abc":true}}"#
        );
        assert_eq!(
            f("label=testing=true&label=testing.sessionid=mysession").unwrap(),
            r#"{"label":{"testing.sessionid=mysession":true,"testing=true":true}}"#
        );
        // The same filter in another order is the same key.
        assert_eq!(
            f("label=b&label=a").unwrap(),
            f("label=a&&label=b").unwrap()
        );
        assert_eq!(f("name=a+b%2Fc").unwrap(), r#"{"name":{"a b/c":true}}"#);
        assert_eq!(f("label").unwrap(), r#"{"label":{"":true}}"#);
    }

    #[test]
    fn bad_lines_fail_whole() {
        assert_eq!(
            f("label=a;b").unwrap_err(),
            "invalid semicolon separator in query"
        );
        assert_eq!(
            f("label=a&label=%zz").unwrap_err(),
            "invalid URL escape \"%zz\""
        );
        assert_eq!(f("label=%4").unwrap_err(), "invalid URL escape \"%4\"");
        assert!(f("&").unwrap_err().contains("empty filter"));
    }

    #[test]
    fn escapes_what_a_url_needs() {
        assert_eq!(
            escape(r#"{"label":{"a=b":true}}"#),
            "%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D"
        );
        assert_eq!(escape("vol_1.x-y"), "vol_1.x-y");
    }
}
