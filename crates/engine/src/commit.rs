//! `commit`: a container's upper directory as a new layer on its image, with docker's
//! `--change` instructions applied to the config (moby `daemon/commit.go` and the
//! builder's `BuildFromConfig`: the container's Config is the base, and the changes
//! are Dockerfile instructions run over it).
//!
//! The layer tar is read from the upper directory alone (`Snapshot` mounts with
//! `redirect_dir=off,metacopy=off`, so it holds every change whole): whiteouts become
//! `.wh.NAME`, opaque directories get `.wh..wh..opq`, hardlinks within it stay
//! hardlinks. Pausing a running container while this reads (docker's `--pause`) is the
//! caller's part.

use crate::copy::{open_dir, pipe_through, Archiver, CopyError};
use crate::types::Config;
use oxcart_image::db::ImageRecord;
use oxcart_image::{ImageStore, Reference};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// A commit error.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// A `--change` that is not one of the instructions docker accepts, or malformed.
    #[error("--change {change:?}: {reason}")]
    Change {
        /// The change as given.
        change: String,
        /// What is wrong.
        reason: String,
    },
    /// The reference to tag the new image with.
    #[error("invalid reference format: {0}")]
    Reference(String),
    /// Reading the upper directory.
    #[error("commit: {0}")]
    Layer(#[from] CopyError),
    /// Storing the image.
    #[error(transparent)]
    Image(#[from] oxcart_image::Error),
    /// The config does not serialise (never expected).
    #[error("commit: config: {0}")]
    Json(#[from] serde_json::Error),
}

/// What `commit` is asked for.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The container's Config (docker's base for the new image's config).
    pub config: Config,
    /// `--change` instructions, in order.
    pub changes: Vec<String>,
    /// `--author`.
    pub author: String,
    /// `--message`.
    pub message: String,
    /// The history entry's `created_by`: docker puts the container's command there.
    pub created_by: String,
    /// `REPOSITORY[:TAG]` for the new image.
    pub reference: Option<String>,
}

/// Write the layer tar of an overlay upper directory.
pub fn layer_tar(upper: &Path, out: &mut dyn Write) -> Result<(), CopyError> {
    let d = open_dir(upper).map_err(|source| CopyError::Io {
        what: format!("open {}", upper.display()),
        source,
    })?;
    let mut a = Archiver::new(out, true);
    a.children(&d, "")?;
    a.finish()
}

/// Make a new image from `parent` and the container's `upper` directory. The changes
/// and the reference are checked before anything is written.
pub fn commit(
    store: &mut ImageStore,
    parent: &ImageRecord,
    upper: &Path,
    opts: &CommitOptions,
) -> Result<ImageRecord, CommitError> {
    let mut cfg = opts.config.clone();
    apply_changes(&mut cfg, &opts.changes)?;
    let reference = opts
        .reference
        .as_deref()
        .map(|r| {
            let p = Reference::parse(r).map_err(|e| CommitError::Reference(format!("{r}: {e}")))?;
            if p.digest.is_some() {
                return Err(CommitError::Reference(format!(
                    "{r}: a tag cannot contain a digest"
                )));
            }
            Ok(p)
        })
        .transpose()?;
    let spec = oxcart_image::commit::CommitSpec {
        config: serde_json::to_value(&cfg)?,
        author: Some(opts.author.as_str()),
        comment: Some(opts.message.as_str()),
        created_by: &opts.created_by,
        reference: reference.as_ref(),
    };
    let mut rec = None;
    let mut ierr = None;
    let r = pipe_through(
        |w| layer_tar(upper, w),
        |r: &mut dyn Read| {
            match store.commit(parent, r, &spec) {
                Ok(x) => rec = Some(x),
                Err(e) => ierr = Some(e),
            }
            Ok(())
        },
    );
    // The writer's error explains a reader's (a broken stream), so it goes first.
    r?;
    match (rec, ierr) {
        (_, Some(e)) => Err(e.into()),
        (Some(x), None) => Ok(x),
        (None, None) => Err(CopyError::Invalid("commit produced no image".into()).into()),
    }
}

// ------------------------------------------------------------------ --change

/// Apply docker's `--change` instructions to `cfg`, in order: CMD, ENTRYPOINT, ENV,
/// EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR. Others are refused, as
/// docker does ("… is not a valid change command"); HEALTHCHECK, which docker takes,
/// is refused as not supported yet.
pub fn apply_changes(cfg: &mut Config, changes: &[String]) -> Result<(), CommitError> {
    let mut cmd_set = false;
    for ch in changes {
        let line = ch.trim();
        let (instr, rest) = match line.split_once(|c: char| c.is_whitespace()) {
            Some((i, r)) => (i, r.trim()),
            None => (line, ""),
        };
        apply_one(cfg, &instr.to_ascii_uppercase(), rest, &mut cmd_set).map_err(|reason| {
            CommitError::Change {
                change: ch.clone(),
                reason,
            }
        })?;
    }
    Ok(())
}

/// One instruction. `cmd_set`: whether an earlier change set CMD.
fn apply_one(cfg: &mut Config, instr: &str, rest: &str, cmd_set: &mut bool) -> Result<(), String> {
    let env = cfg.env.clone().unwrap_or_default();
    match instr {
        "CMD" => {
            cfg.cmd = Some(command(rest, cfg)?);
            *cmd_set = true;
        }
        "ENTRYPOINT" => {
            cfg.entrypoint = Some(command(rest, cfg)?);
            // The builder's dispatchEntrypoint: an ENTRYPOINT resets a CMD that was
            // not set by these same changes.
            if !*cmd_set {
                cfg.cmd = None;
            }
        }
        "ENV" => {
            for (k, v) in pairs(rest, &env)? {
                let e = cfg.env.get_or_insert_with(Vec::new);
                let item = format!("{k}={v}");
                match e
                    .iter_mut()
                    .find(|x| x.split('=').next() == Some(k.as_str()))
                {
                    Some(x) => *x = item,
                    None => e.push(item),
                }
            }
        }
        "LABEL" => cfg.labels.extend(pairs(rest, &env)?),
        "EXPOSE" => {
            for w in words(rest, &env)? {
                for p in ports(&w)? {
                    cfg.exposed_ports
                        .get_or_insert_with(Default::default)
                        .insert(p, Default::default());
                }
            }
        }
        "USER" => cfg.user = one_word(rest, &env)?,
        "WORKDIR" => cfg.working_dir = workdir(&cfg.working_dir, &one_word(rest, &env)?),
        "VOLUME" => {
            for v in volumes(rest, &env)? {
                cfg.volumes
                    .get_or_insert_with(Default::default)
                    .insert(v, Default::default());
            }
        }
        "STOPSIGNAL" => {
            let s = one_word(rest, &env)?;
            check_signal(&s)?;
            cfg.stop_signal = s;
        }
        "ONBUILD" => {
            check_onbuild(rest)?;
            cfg.on_build
                .get_or_insert_with(Vec::new)
                .push(rest.to_string());
        }
        "HEALTHCHECK" => return Err("HEALTHCHECK is not supported by oxcart commit yet".into()),
        "" => return Err("empty change".into()),
        other => return Err(format!("{other} is not a valid change command")),
    }
    Ok(())
}

/// VOLUME's paths: a JSON array or words; none may be empty.
fn volumes(rest: &str, env: &[String]) -> Result<Vec<String>, String> {
    let vols = match json_array(rest) {
        Some(v) => v,
        None => words(rest, env)?,
    };
    if vols.is_empty() {
        return Err("VOLUME needs at least one path".into());
    }
    if vols.iter().any(|v| v.trim().is_empty()) {
        return Err("VOLUME specified can not be an empty string".into());
    }
    Ok(vols)
}

/// The builder's ONBUILD rules: a trigger is needed, and not ONBUILD, FROM or
/// MAINTAINER.
fn check_onbuild(rest: &str) -> Result<(), String> {
    let t = rest
        .split_once(|c: char| c.is_whitespace())
        .map_or(rest, |(t, _)| t)
        .to_ascii_uppercase();
    match t.as_str() {
        "" => Err("ONBUILD needs an instruction".into()),
        "ONBUILD" => Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
        "FROM" | "MAINTAINER" => Err(format!("{t} isn't allowed as an ONBUILD trigger")),
        _ => Ok(()),
    }
}

/// A JSON array of strings (the exec form), or `None`.
fn json_array(s: &str) -> Option<Vec<String>> {
    if !s.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(s).ok()
}

/// CMD/ENTRYPOINT: the exec form, or the shell form run by the config's `Shell`
/// (default `/bin/sh -c`).
fn command(rest: &str, cfg: &Config) -> Result<Vec<String>, String> {
    if let Some(v) = json_array(rest) {
        return Ok(v);
    }
    if rest.is_empty() {
        return Err("needs a command".into());
    }
    let mut v = match &cfg.shell {
        Some(sh) if !sh.is_empty() => sh.clone(),
        _ => vec!["/bin/sh".to_string(), "-c".to_string()],
    };
    v.push(rest.to_string());
    Ok(v)
}

fn one_word(rest: &str, env: &[String]) -> Result<String, String> {
    let w = words(rest, env)?;
    match w.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err("needs an argument".into()),
        _ => Err("takes exactly one argument".into()),
    }
}

/// `k=v k2="v 2"`, or the old `k the value` form (one pair, the rest of the line).
fn pairs(rest: &str, env: &[String]) -> Result<Vec<(String, String)>, String> {
    let ws = words(rest, env)?;
    let Some(first) = ws.first() else {
        return Err("needs a name and a value".into());
    };
    if !first.contains('=') {
        let (k, v) = rest
            .split_once(|c: char| c.is_whitespace())
            .ok_or_else(|| format!("{first} has no value"))?;
        let v = words(v.trim(), env)?.join(" ");
        return Ok(vec![(k.to_string(), v)]);
    }
    ws.into_iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(format!("{w:?}: the name is empty")),
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(format!("{w:?} is not NAME=VALUE")),
        })
        .collect()
}

/// Split into words as the Dockerfile shell-lexer does: whitespace separates unless
/// quoted; `'…'` is literal, `"…"` and bare text expand `$VAR`, `${VAR}`,
/// `${VAR:-default}`, `${VAR:+alt}` from `env`; `\` escapes the next character.
fn words(s: &str, env: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut have = false;
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            c if c.is_whitespace() => {
                if have {
                    out.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            '\'' => {
                have = true;
                loop {
                    match it.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                have = true;
                loop {
                    match it.next() {
                        Some('"') => break,
                        Some('\\') => match it.next() {
                            Some(x) => cur.push(x),
                            None => return Err("unterminated double quote".into()),
                        },
                        Some('$') => cur.push_str(&expand(&mut it, env)?),
                        Some(x) => cur.push(x),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                have = true;
                if let Some(x) = it.next() {
                    cur.push(x);
                }
            }
            '$' => {
                have = true;
                cur.push_str(&expand(&mut it, env)?);
            }
            x => {
                have = true;
                cur.push(x);
            }
        }
    }
    if have {
        out.push(cur);
    }
    Ok(out)
}

fn lookup(env: &[String], name: &str) -> Option<String> {
    env.iter().rev().find_map(|e| {
        e.split_once('=')
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
}

/// After a `$`: the variable's value (`$` alone stays `$`).
fn expand(
    it: &mut std::iter::Peekable<std::str::Chars<'_>>,
    env: &[String],
) -> Result<String, String> {
    if it.peek() == Some(&'{') {
        it.next();
        let mut body = String::new();
        loop {
            match it.next() {
                Some('}') => break,
                Some(c) => body.push(c),
                None => return Err("missing '}' in ${…}".into()),
            }
        }
        if let Some((name, def)) = body.split_once(":-") {
            return Ok(lookup(env, name)
                .filter(|v| !v.is_empty())
                .unwrap_or(def.to_string()));
        }
        if let Some((name, alt)) = body.split_once(":+") {
            return Ok(match lookup(env, name) {
                Some(v) if !v.is_empty() => alt.to_string(),
                _ => String::new(),
            });
        }
        return Ok(lookup(env, &body).unwrap_or_default());
    }
    let mut name = String::new();
    while let Some(&c) = it.peek() {
        if c.is_ascii_alphanumeric() || c == '_' {
            name.push(c);
            it.next();
        } else {
            break;
        }
    }
    if name.is_empty() {
        return Ok("$".into());
    }
    Ok(lookup(env, &name).unwrap_or_default())
}

/// `80`, `80/udp`, `8000-8002/tcp` → `80/tcp`, … (docker's nat.ParsePortSpecs).
fn ports(spec: &str) -> Result<Vec<String>, String> {
    let (range, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let num = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("invalid port: {spec}"))
    };
    let (lo, hi) = match range.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(range)?, num(range)?),
    };
    if hi < lo {
        return Err(format!("invalid range: {spec}"));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

/// WORKDIR: a relative path is taken from the current one; the result is cleaned.
fn workdir(current: &str, w: &str) -> String {
    let joined = if w.starts_with('/') {
        PathBuf::from(w)
    } else {
        Path::new(if current.is_empty() { "/" } else { current }).join(w)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out.display().to_string()
}

/// STOPSIGNAL takes a number or a signal name, with or without `SIG`
/// (docker's `signal.ParseSignal`).
fn check_signal(s: &str) -> Result<(), String> {
    const NAMES: &[&str] = &[
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
    ];
    if let Ok(n) = s.parse::<u32>() {
        return if (1..=64).contains(&n) {
            Ok(())
        } else {
            Err(format!("invalid signal: {s}"))
        };
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let rt = |base: &str| {
        name.strip_prefix(base).is_some_and(|r| {
            r.is_empty()
                || r.strip_prefix(['+', '-'])
                    .and_then(|n| n.parse::<u8>().ok())
                    .is_some_and(|n| n <= 15)
        })
    };
    if NAMES.contains(&name) || rt("RTMIN") || rt("RTMAX") {
        Ok(())
    } else {
        Err(format!("invalid signal: {s}"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn applied(base: Config, changes: &[&str]) -> Result<Config, CommitError> {
        let mut c = base;
        apply_changes(
            &mut c,
            &changes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )?;
        Ok(c)
    }

    #[test]
    fn changes_as_docker() {
        let base = Config {
            cmd: Some(vec!["sh".into()]),
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            working_dir: "/srv".into(),
            ..Default::default()
        };
        let c = applied(
            base.clone(),
            &[
                "CMD [\"echo\", \"hi\"]",
                "env B=\"two words\" A=$A$A",
                "ENV LEGACY the rest of it",
                "EXPOSE 80 53/udp 8000-8001",
                "LABEL a=b \"c d\"=e",
                "USER 1000:1000",
                "WORKDIR sub/../app",
                "VOLUME [\"/data\", \"/logs\"]",
                "VOLUME /more",
                "STOPSIGNAL SIGRTMIN+3",
                "ONBUILD RUN make",
            ],
        )
        .unwrap();
        assert_eq!(c.cmd.unwrap(), ["echo", "hi"]);
        assert_eq!(
            c.env.unwrap(),
            ["PATH=/bin", "A=11", "B=two words", "LEGACY=the rest of it"]
        );
        let ports: Vec<_> = c.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, ["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
        assert_eq!(c.labels["a"], "b");
        assert_eq!(c.labels["c d"], "e");
        assert_eq!(c.user, "1000:1000");
        assert_eq!(c.working_dir, "/srv/app");
        let vols: Vec<_> = c.volumes.unwrap().into_keys().collect();
        assert_eq!(vols, ["/data", "/logs", "/more"]);
        assert_eq!(c.stop_signal, "SIGRTMIN+3");
        assert_eq!(c.on_build.unwrap(), ["RUN make"]);
        // ENTRYPOINT resets a CMD the changes did not set, and the shell form.
        let c = applied(base.clone(), &["ENTRYPOINT /run.sh"]).unwrap();
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "/run.sh"]);
        assert_eq!(c.cmd, None);
        let c = applied(base.clone(), &["CMD x", "ENTRYPOINT [\"e\"]"]).unwrap();
        assert_eq!(c.cmd.unwrap(), ["/bin/sh", "-c", "x"]);
        for (bad, why) in [
            ("RUN echo", "RUN is not a valid change command"),
            ("FROM scratch", "FROM is not a valid change command"),
            ("EXPOSE 70000", "invalid port"),
            ("STOPSIGNAL SIGNOPE", "invalid signal"),
            ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD"),
            ("ENV =x", "the name is empty"),
            ("USER a b", "exactly one"),
            ("HEALTHCHECK NONE", "not supported"),
        ] {
            let e = applied(base.clone(), &[bad]).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(bad), "{bad}: {e}");
        }
    }
}
