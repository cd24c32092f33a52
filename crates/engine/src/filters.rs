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
}
