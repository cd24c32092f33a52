//! CPU and memory-node lists (`0-3,5`), cpuset(7) "List format".

use std::collections::BTreeSet;

/// Parse a list; `None` if malformed.
pub fn parse(s: &str) -> Option<BTreeSet<u32>> {
    let mut out = BTreeSet::new();
    let s = s.trim();
    if s.is_empty() {
        return Some(out);
    }
    for part in s.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if a > b || b - a > 65536 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => {
                out.insert(part.parse().ok()?);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists() {
        assert_eq!(
            super::parse("0-2,5")
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            [0, 1, 2, 5]
        );
        assert!(super::parse("").unwrap().is_empty());
        assert!(super::parse("3-1").is_none());
        assert!(super::parse("a").is_none());
        assert!(super::parse("0-1\n").is_some());
    }
}
