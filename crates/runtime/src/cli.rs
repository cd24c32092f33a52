//! runc's command line, parsed by hand: runc uses urfave/cli on Go's `flag`
//! package, which accepts `-flag` and `--flag`, `-flag=value`, `--flag value`, and
//! `--bool=false`. clap rejects single-dash long flags, and containerd's go-runc
//! sends `-no-subreaper` (compat.md §6.6), so a small table-driven parser it is.

use anyhow::{bail, Result};
use std::collections::HashMap;

#[derive(Clone, Copy)]
pub struct Def {
    pub names: &'static [&'static str],
    pub value: bool,
}

pub const fn flag(names: &'static [&'static str]) -> Def {
    Def {
        names,
        value: false,
    }
}
pub const fn opt(names: &'static [&'static str]) -> Def {
    Def { names, value: true }
}

#[derive(Debug, Default)]
pub struct Parsed {
    values: HashMap<&'static str, Vec<String>>,
    pub args: Vec<String>,
}

impl Parsed {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(|s| s.as_str())
    }
    pub fn bool(&self, name: &str) -> bool {
        self.get(name) == Some("true")
    }
}

/// Go's strconv.ParseBool.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Parse `args` against `defs`. With `stop_after` = Some(n), everything after the
/// n-th positional argument is positional too (urfave/cli's StopOnNthArg, used by
/// `exec`, `kill` and `ps` so that the command's own flags pass through).
pub fn parse(args: &[String], defs: &[Def], stop_after: Option<usize>) -> Result<Parsed> {
    let mut p = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if stop_after.is_some_and(|n| p.args.len() >= n) {
            p.args.push(a.clone());
            continue;
        }
        if a == "--" {
            p.args.extend(args[i..].iter().cloned());
            break;
        }
        if a.len() < 2 || !a.starts_with('-') {
            p.args.push(a.clone());
            continue;
        }
        let body = a.strip_prefix("--").unwrap_or(&a[1..]);
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(def) = defs.iter().find(|d| d.names.contains(&name)) else {
            bail!("flag provided but not defined: -{name}");
        };
        let key = def.names[0];
        let val = if def.value {
            match inline {
                Some(v) => v,
                None => {
                    let Some(v) = args.get(i) else {
                        bail!("flag needs an argument: -{name}");
                    };
                    i += 1;
                    v.clone()
                }
            }
        } else {
            match inline {
                Some(v) => match parse_bool(&v) {
                    Some(b) => b.to_string(),
                    None => bail!("invalid boolean value {v:?} for -{name}"),
                },
                None => "true".into(),
            }
        };
        p.values.entry(key).or_default().push(val);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    const DEFS: &[Def] = &[
        opt(&["bundle", "b"]),
        flag(&["detach", "d"]),
        flag(&["no-subreaper"]),
    ];
    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }
    #[test]
    fn go_style() {
        let p = parse(&s(&["-bundle", "/b", "-no-subreaper", "id"]), DEFS, None).unwrap();
        assert_eq!(p.get("bundle"), Some("/b"));
        assert!(p.bool("no-subreaper"));
        assert_eq!(p.args, vec!["id"]);
        let p = parse(
            &s(&["--bundle=/c", "--detach=false", "-b", "/d", "x"]),
            DEFS,
            None,
        )
        .unwrap();
        assert_eq!(p.get("bundle"), Some("/d"));
        assert!(!p.bool("detach"));
        assert!(parse(&s(&["--nope"]), DEFS, None).is_err());
        assert!(parse(&s(&["--detach=maybe"]), DEFS, None).is_err());
        assert!(parse(&s(&["--bundle"]), DEFS, None).is_err());
    }
    #[test]
    fn stop_on_nth() {
        let p = parse(&s(&["-d", "id", "sh", "-c", "echo"]), DEFS, Some(1)).unwrap();
        assert_eq!(p.args, vec!["id", "sh", "-c", "echo"]);
        assert!(p.bool("detach"));
    }
}
