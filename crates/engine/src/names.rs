//! Container ids and docker-style generated names.

use crate::error::{io_err, EngineError, Result};
use std::io::Read;

/// 64 hex digits from the kernel's random pool, as docker's ids.
pub fn new_id() -> Result<String> {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(io_err("/dev/urandom"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

const ADJECTIVES: &[&str] = &[
    "agile", "bold", "brave", "bright", "calm", "clever", "cosmic", "crisp", "daring", "eager",
    "fancy", "fervent", "gentle", "glad", "happy", "hardy", "jolly", "keen", "kind", "lively",
    "lucid", "merry", "mighty", "nimble", "noble", "patient", "plucky", "proud", "quick", "quiet",
    "rapid", "serene", "sharp", "shiny", "snappy", "steady", "stoic", "sunny", "swift", "tender",
    "tidy", "vivid", "warm", "wise", "witty", "zealous",
];
const NOUNS: &[&str] = &[
    "babbage",
    "bohr",
    "curie",
    "darwin",
    "dijkstra",
    "einstein",
    "euler",
    "faraday",
    "fermi",
    "feynman",
    "franklin",
    "galileo",
    "gauss",
    "hamilton",
    "hopper",
    "hypatia",
    "kepler",
    "knuth",
    "lamarr",
    "lovelace",
    "maxwell",
    "meitner",
    "mendel",
    "newton",
    "noether",
    "pascal",
    "planck",
    "ramanujan",
    "ritchie",
    "shannon",
    "tesla",
    "thompson",
    "turing",
    "volta",
    "wozniak",
    "yonath",
];

/// `adjective_scientist`, picked from the id's random bits; the caller retries with
/// another id on a clash.
pub fn generated_name(id: &str) -> String {
    let n = u64::from_str_radix(&id[..12.min(id.len())], 16).unwrap_or(0);
    let a = ADJECTIVES[(n % ADJECTIVES.len() as u64) as usize];
    let b = NOUNS[((n / 64) % NOUNS.len() as u64) as usize];
    format!("{a}_{b}")
}

/// docker's rule for `--name`: `/?[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate_name(name: &str) -> Result<String> {
    let n = name.strip_prefix('/').unwrap_or(name);
    let ok = n.len() >= 2
        && n.as_bytes()[0].is_ascii_alphanumeric()
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(n.to_string())
    } else {
        Err(EngineError::InvalidName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        assert_eq!(validate_name("/web_1").expect("valid"), "web_1");
        for bad in ["", "a", "-x", "a b", "x/y", "é1"] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
        let id = new_id().expect("id");
        assert_eq!(id.len(), 64);
        assert!(validate_name(&generated_name(&id)).is_ok());
    }
}
