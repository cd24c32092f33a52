//! docker's `--filter` semantics shared by every listing and prune, for the CLI and
//! the API alike (moby's `api/types/filters`): values of one key are ORed and keys
//! ANDed, except labels, which `MatchKVList` ANDs (compose finds a project's objects
//! by two labels at once), and prunes' `label!`, which excludes an object only when
//! every one of its values holds (moby's `matchLabels` in the prune paths).

use crate::error::{EngineError, Result};
use crate::volumes::Volume;
use std::collections::{BTreeMap, HashMap};

/// `KEY=VALUE` filter arguments (the CLI's `--filter`), as `(key, value)` pairs.
pub fn split_pairs(args: &[String]) -> Result<Vec<(String, String)>> {
    args.iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| {
                    EngineError::Invalid(format!("bad format of filter (expected name=value): {f}"))
                })
        })
        .collect()
}

/// `label=KEY[=VALUE]` and `label!=KEY[=VALUE]`.
#[derive(Debug, Clone, Default)]
pub struct LabelFilter {
    want: Vec<String>,
    not: Vec<String>,
}

/// moby's `MatchKVList` of one value: the key is present, with that value if given.
pub fn holds(labels: &BTreeMap<String, String>, kv: &str) -> bool {
    match kv.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(kv),
    }
}

impl LabelFilter {
    /// Take `key=value` if `key` is `label` (or, where `negated_ok`, `label!`);
    /// false for any other key, which the caller judges.
    pub fn take(&mut self, key: &str, value: &str, negated_ok: bool) -> bool {
        match key {
            "label" => self.want.push(value.to_string()),
            "label!" if negated_ok => self.not.push(value.to_string()),
            _ => return false,
        }
        true
    }

    /// A prune's filter: labels only (docker's prunes also take `until`, which is
    /// not supported: refused by name rather than ignored).
    pub fn for_prune(pairs: &[(String, String)]) -> Result<LabelFilter> {
        let mut f = LabelFilter::default();
        for (k, v) in pairs {
            if !f.take(k, v, true) {
                return Err(EngineError::Invalid(format!("invalid filter '{k}'")));
            }
        }
        Ok(f)
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.want.iter().all(|kv| holds(labels, kv))
            && (self.not.is_empty() || !self.not.iter().all(|kv| holds(labels, kv)))
    }
}

/// `volume ls`/`volume prune` filters: `name` (substring), `driver`, `dangling`,
/// labels.
#[derive(Debug, Clone, Default)]
pub struct VolumeFilter {
    labels: LabelFilter,
    others: Vec<(String, String)>,
}

impl VolumeFilter {
    /// `ls` takes name, driver, dangling and label; `prune` labels only (`label!`
    /// too), as docker's.
    pub fn parse(pairs: &[(String, String)], for_prune: bool) -> Result<VolumeFilter> {
        let mut f = VolumeFilter::default();
        for (k, v) in pairs {
            if f.labels.take(k, v, for_prune) {
                continue;
            }
            if for_prune || !["name", "driver", "dangling"].contains(&k.as_str()) {
                return Err(EngineError::Invalid(format!("invalid filter '{k}'")));
            }
            if k == "dangling" && !matches!(v.as_str(), "true" | "false" | "1" | "0") {
                return Err(EngineError::Invalid(format!(
                    "invalid filter 'dangling={v}'"
                )));
            }
            f.others.push((k.clone(), v.clone()));
        }
        Ok(f)
    }

    /// `users`: the containers using each volume, by name (for `dangling`).
    pub fn matches(&self, v: &Volume, users: &HashMap<String, Vec<String>>) -> bool {
        if !self.labels.matches(&v.labels) {
            return false;
        }
        ["name", "driver", "dangling"].iter().all(|kind| {
            let mut of_kind = self.others.iter().filter(|(k, _)| k == kind).peekable();
            of_kind.peek().is_none()
                || of_kind.any(|(_, val)| match *kind {
                    "name" => v.name.contains(val.as_str()),
                    "driver" => v.driver == *val,
                    _ => matches!(val.as_str(), "true" | "1") != users.contains_key(&v.name),
                })
        })
    }
}

/// `images` filters of API 1.41 (moby's `acceptedImageFilterTags`): `label` (all of
/// them hold), `reference` (a glob over the familiar name, with or without the tag),
/// `dangling`, `before` and `since` (an image's creation time); anything else is
/// refused by name, as dockerd does, never ignored — a reaper acting on a filter the
/// engine dropped would remove every image.
#[derive(Debug, Clone, Default)]
pub struct ImageFilter {
    labels: LabelFilter,
    references: Vec<String>,
    dangling: Option<bool>,
    /// Only images created strictly before / after these (ns since the epoch).
    before: Option<i128>,
    since: Option<i128>,
}

/// The tags and digests of one image that an `ImageFilter` lets through.
#[derive(Debug, PartialEq, Eq)]
pub struct ImageRefs {
    pub tags: Vec<String>,
    pub digests: Vec<String>,
}

/// docker's familiar form of a stored reference: `docker.io/library/x:t` → `x:t`,
/// `docker.io/u/x:t` → `u/x:t`, any other registry's as is.
pub fn familiar(r: &str) -> &str {
    r.strip_prefix("docker.io/library/")
        .or_else(|| r.strip_prefix("docker.io/"))
        .unwrap_or(r)
}

impl ImageFilter {
    /// `created_of` resolves a `before`/`since` image reference to its creation time
    /// (ns since the epoch), or the engine's not-found error.
    pub fn parse(
        pairs: &[(String, String)],
        created_of: &dyn Fn(&str) -> Result<i128>,
    ) -> Result<ImageFilter> {
        let mut f = ImageFilter::default();
        for (k, v) in pairs {
            if f.labels.take(k, v, false) {
                continue;
            }
            match k.as_str() {
                "reference" => {
                    glob_match(v, "")?;
                    f.references.push(v.clone());
                }
                // moby's GetBoolOrDefault: true wins over false when both are given.
                "dangling" => match v.to_ascii_lowercase().as_str() {
                    "true" | "1" => f.dangling = Some(true),
                    "false" | "0" => {
                        f.dangling.get_or_insert(false);
                    }
                    _ => {
                        return Err(EngineError::Invalid(format!(
                            "invalid filter 'dangling={v}'"
                        )))
                    }
                },
                // Several values: the oldest `before`, the newest `since` (all ANDed).
                "before" => {
                    let t = created_of(v)?;
                    f.before = Some(f.before.map_or(t, |b| b.min(t)));
                }
                "since" => {
                    let t = created_of(v)?;
                    f.since = Some(f.since.map_or(t, |b| b.max(t)));
                }
                _ => return Err(EngineError::Invalid(format!("invalid filter '{k}'"))),
            }
        }
        Ok(f)
    }

    /// Whether an image (created at `created` ns, with these labels, tags and
    /// digests) is listed, and with which of its references: a `reference` filter
    /// also narrows the tags and digests shown, as dockerd's does.
    pub fn select(
        &self,
        created: i128,
        labels: &BTreeMap<String, String>,
        tags: &[String],
        digests: &[String],
    ) -> Option<ImageRefs> {
        if self.before.is_some_and(|b| created >= b) || self.since.is_some_and(|s| created <= s) {
            return None;
        }
        if !self.labels.matches(labels) {
            return None;
        }
        let keep = |r: &&String| {
            self.references.is_empty() || self.references.iter().any(|p| reference_matches(p, r))
        };
        let refs = ImageRefs {
            tags: tags.iter().filter(keep).cloned().collect(),
            digests: digests.iter().filter(keep).cloned().collect(),
        };
        let untagged = refs.tags.is_empty() && refs.digests.is_empty();
        if untagged && !self.references.is_empty() {
            return None;
        }
        match self.dangling {
            Some(true) if !tags.is_empty() => None,
            Some(false) if tags.is_empty() && digests.is_empty() => None,
            _ => Some(refs),
        }
    }
}

/// distribution's `FamiliarMatch`: the pattern against the familiar reference, then
/// against its name alone (`busybox` matches `busybox:latest`).
fn reference_matches(pattern: &str, r: &str) -> bool {
    let fam = familiar(r);
    if glob_match(pattern, fam).unwrap_or(false) {
        return true;
    }
    let name = match fam.split_once('@') {
        Some((n, _)) => n,
        // A tag's colon comes after the last slash (a registry's port comes before).
        None => match fam.rfind(':') {
            Some(i) if !fam[i..].contains('/') => &fam[..i],
            _ => fam,
        },
    };
    glob_match(pattern, name).unwrap_or(false)
}

/// Go's `path.Match`: `*` any run and `?` any one character except `/`, `[...]`
/// classes (ranges, `^` negation), `\` escapes. A malformed pattern is an error
/// (checked whole, as Go does, even where a mismatch comes first).
pub fn glob_match(pattern: &str, name: &str) -> Result<bool> {
    let bad = || {
        EngineError::Invalid(format!(
            "invalid reference filter {pattern:?}: syntax error in pattern"
        ))
    };
    let p: Vec<char> = pattern.chars().collect();
    // Validate every class and escape first.
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err(bad());
                }
                i += 2;
            }
            '[' => i = class_end(&p, i).ok_or_else(bad)?,
            _ => i += 1,
        }
    }
    let n: Vec<char> = name.chars().collect();
    Ok(glob_at(&p, &n))
}

/// The index after the `]` closing the class that opens at `p[start]`.
fn class_end(p: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if p.get(i) == Some(&'^') {
        i += 1;
    }
    let mut first = true;
    loop {
        let c = *p.get(i)?;
        if c == ']' && !first {
            return Some(i + 1);
        }
        first = false;
        let lo = if c == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            c
        };
        i += 1;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|c| *c != ']') {
            i += 1;
            let hi = if p[i] == '\\' {
                i += 1;
                *p.get(i)?
            } else {
                p[i]
            };
            if hi < lo {
                return None;
            }
            i += 1;
        }
    }
}

/// Whether `c` is in the class `p[start..end]` (validated by `class_end`).
fn in_class(p: &[char], start: usize, end: usize, c: char) -> bool {
    let mut i = start + 1;
    let negated = p[i] == '^';
    if negated {
        i += 1;
    }
    let mut hit = false;
    while i < end - 1 {
        let lo = if p[i] == '\\' {
            i += 1;
            p[i]
        } else {
            p[i]
        };
        i += 1;
        let mut hi = lo;
        if i < end - 1 && p[i] == '-' && i + 1 < end - 1 {
            i += 1;
            hi = if p[i] == '\\' {
                i += 1;
                p[i]
            } else {
                p[i]
            };
            i += 1;
        }
        hit |= lo <= c && c <= hi;
    }
    hit != negated
}

fn glob_at(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len())
            .take_while(|&k| k == 0 || n[k - 1] != '/')
            .any(|k| glob_at(&p[1..], &n[k..])),
        Some(_) if n.is_empty() => false,
        Some('?') => n[0] != '/' && glob_at(&p[1..], &n[1..]),
        Some('[') => {
            let Some(end) = class_end(p, 0) else {
                return false;
            };
            n[0] != '/' && in_class(p, 0, end, n[0]) && glob_at(&p[end..], &n[1..])
        }
        Some('\\') => p.get(1) == Some(&n[0]) && glob_at(&p[2..], &n[1..]),
        Some(c) => *c == n[0] && glob_at(&p[1..], &n[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn pairs(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn labels_are_anded_and_label_not_excludes_when_all_hold() {
        let l = labels(&[("a", "1"), ("b", "2")]);
        let f = LabelFilter::for_prune(&pairs(&[("label", "a"), ("label", "b=2")])).unwrap();
        assert!(f.matches(&l));
        let f = LabelFilter::for_prune(&pairs(&[("label", "a"), ("label", "c")])).unwrap();
        assert!(!f.matches(&l), "every label must hold");
        let f = LabelFilter::for_prune(&pairs(&[("label!", "a=1")])).unwrap();
        assert!(!f.matches(&l));
        // moby's matchLabels: `label!` values are a MatchKVList too.
        let f = LabelFilter::for_prune(&pairs(&[("label!", "a"), ("label!", "c")])).unwrap();
        assert!(f.matches(&l), "excluded only when every label! holds");
        assert!(LabelFilter::for_prune(&pairs(&[("until", "1h")]))
            .unwrap_err()
            .to_string()
            .contains("invalid filter 'until'"));
    }

    #[test]
    fn volume_filters_refuse_what_the_verb_does_not_take() {
        assert!(VolumeFilter::parse(&pairs(&[("name", "x")]), true).is_err());
        assert!(VolumeFilter::parse(&pairs(&[("label!", "x")]), false).is_err());
        assert!(VolumeFilter::parse(&pairs(&[("colour", "x")]), false).is_err());
        assert!(VolumeFilter::parse(&pairs(&[("dangling", "maybe")]), false).is_err());
        assert!(split_pairs(&["nameonly".to_string()]).is_err());
    }

    #[test]
    fn image_filters_as_dockerd() {
        let created = |r: &str| match r {
            "old" => Ok(100),
            "new" => Ok(300),
            _ => Err(EngineError::Invalid(format!("No such image: {r}"))),
        };
        let f = |kv: &[(&str, &str)]| ImageFilter::parse(&pairs(kv), &created);
        let l = labels(&[("org.testcontainers.session-id", "abc"), ("x", "1")]);
        let tags = vec![
            "docker.io/library/busybox:latest".to_string(),
            "127.0.0.1:5000/test/bb:v1".to_string(),
        ];
        let digests = vec!["docker.io/library/busybox@sha256:00".to_string()];
        let sel = |f: &ImageFilter, t: i128, l: &BTreeMap<String, String>| {
            f.select(t, l, &tags, &digests)
        };
        // label: every value must hold.
        let g = f(&[("label", "org.testcontainers.session-id=abc")]).unwrap();
        assert!(sel(&g, 200, &l).is_some());
        assert!(sel(&g, 200, &labels(&[("x", "1")])).is_none());
        let g = f(&[
            ("label", "org.testcontainers.session-id=abc"),
            ("label", "y"),
        ])
        .unwrap();
        assert!(sel(&g, 200, &l).is_none());
        // reference: familiar name with or without the tag; narrows the tags shown.
        let g = f(&[("reference", "busybox")]).unwrap();
        assert_eq!(
            sel(&g, 200, &l),
            Some(ImageRefs {
                tags: vec![tags[0].clone()],
                digests: digests.clone()
            })
        );
        let g = f(&[("reference", "*/test/*:v?")]).unwrap();
        assert_eq!(sel(&g, 200, &l).unwrap().tags, vec![tags[1].clone()]);
        assert!(sel(&f(&[("reference", "busy")]).unwrap(), 200, &l).is_none());
        assert!(sel(&f(&[("reference", "busybox:[a-m]*")]).unwrap(), 200, &l).is_some());
        assert!(sel(&f(&[("reference", "busybox:[^l]*")]).unwrap(), 200, &l).is_none());
        // `*` stops at a slash, as Go's path.Match.
        assert!(sel(&f(&[("reference", "*bb:v1")]).unwrap(), 200, &l).is_none());
        assert!(f(&[("reference", "[a-")]).is_err());
        // dangling, before, since.
        let g = f(&[("dangling", "true")]).unwrap();
        assert!(sel(&g, 200, &l).is_none());
        assert!(g.select(200, &l, &[], &[]).is_some());
        assert!(f(&[("dangling", "false")])
            .unwrap()
            .select(200, &l, &[], &[])
            .is_none());
        let g = f(&[("before", "new"), ("since", "old")]).unwrap();
        assert!(sel(&g, 200, &l).is_some());
        assert!(sel(&g, 300, &l).is_none() && sel(&g, 100, &l).is_none());
        assert!(f(&[("before", "nosuch")])
            .unwrap_err()
            .to_string()
            .contains("No such image: nosuch"));
        // What 1.41 does not take is refused by name, never ignored.
        for k in ["until", "label!", "colour"] {
            assert!(
                f(&[(k, "x")])
                    .unwrap_err()
                    .to_string()
                    .contains(&format!("invalid filter '{k}'")),
                "{k}"
            );
        }
        assert!(f(&[("dangling", "maybe")]).is_err());
    }

    #[test]
    fn globs_as_go_path_match() {
        let m = |p: &str, n: &str| glob_match(p, n).unwrap();
        assert!(m("a*c", "abbc") && m("a*", "a") && !m("a*", "a/b") && m("a/*", "a/b"));
        assert!(m("a?c", "abc") && !m("a?c", "a/c"));
        assert!(m("[]a]", "]") && m("[a-c]x", "bx") && !m("[^a-c]x", "bx"));
        assert!(m("a\\*", "a*") && !m("a\\*", "ab"));
        assert!(glob_match("[", "x").is_err() && glob_match("a\\", "a").is_err());
        assert!(glob_match("[z-a]", "x").is_err());
    }
}
