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
    let mut a = Archiver::new(out, true).without_mount_stubs();
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
/// EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR. Others are
/// refused, as docker does ("… is not a valid change command").
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
        "HEALTHCHECK" => cfg.healthcheck = Some(healthcheck(rest)?),
        "" => return Err("empty change".into()),
        other => return Err(format!("{other} is not a valid change command")),
    }
    Ok(())
}

/// `HEALTHCHECK NONE`, or `HEALTHCHECK [--interval=D] [--timeout=D]
/// [--start-period=D] [--start-interval=D] [--retries=N] CMD command` (the builder's
/// parseHealthcheck: `CMD` with the exec form, `CMD-SHELL` with the shell form).
fn healthcheck(rest: &str) -> Result<crate::types::HealthConfig, String> {
    let mut h = crate::types::HealthConfig::default();
    let mut s = rest.trim_start();
    while let Some(flag) = s.strip_prefix("--") {
        let (f, more) = flag
            .split_once(|c: char| c.is_whitespace())
            .unwrap_or((flag, ""));
        let (name, value) = f
            .split_once('=')
            .ok_or_else(|| format!("HEALTHCHECK flag --{f} needs =VALUE"))?;
        let dur = || -> Result<i64, String> {
            let d = go_duration(value)
                .ok_or_else(|| format!("--{name}: invalid duration {value:?}"))?;
            // container.MinimumDuration: zero (the default) or at least 1ms.
            if d != 0 && d < 1_000_000 {
                return Err(format!("--{name} cannot be less than 1ms"));
            }
            Ok(d)
        };
        match name {
            "interval" => h.interval = dur()?,
            "timeout" => h.timeout = dur()?,
            "start-period" => h.start_period = dur()?,
            "start-interval" => h.start_interval = dur()?,
            "retries" => {
                h.retries = value
                    .parse::<i64>()
                    .map_err(|_| format!("--retries: invalid number {value:?}"))?;
                if h.retries < 0 {
                    return Err("--retries cannot be negative".into());
                }
            }
            other => return Err(format!("unknown HEALTHCHECK flag --{other}")),
        }
        s = more.trim_start();
    }
    let (kind, cmd) = s
        .split_once(|c: char| c.is_whitespace())
        .map_or((s, ""), |(k, c)| (k, c.trim()));
    match kind.to_ascii_uppercase().as_str() {
        "NONE" if cmd.is_empty() && h == crate::types::HealthConfig::default() => {
            h.test = Some(vec!["NONE".into()]);
        }
        "NONE" => return Err("HEALTHCHECK NONE takes no arguments".into()),
        "CMD" => {
            let mut test = match json_array(cmd) {
                Some(v) => v,
                None if cmd.is_empty() => return Err("HEALTHCHECK CMD needs a command".into()),
                None => vec![cmd.to_string()],
            };
            let form = if json_array(cmd).is_some() {
                "CMD"
            } else {
                "CMD-SHELL"
            };
            test.insert(0, form.into());
            h.test = Some(test);
        }
        other => return Err(format!("Unknown type {other:?} in HEALTHCHECK (try CMD)")),
    }
    Ok(h)
}

/// Go's `time.ParseDuration` in nanoseconds: `1h30m`, `1.5s`, `300ms`, `0`.
fn go_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[u..];
        total += num * unit;
    }
    (total < i64::MAX as f64).then_some(total as i64)
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
        let c = applied(
            base.clone(),
            &["HEALTHCHECK --interval=1m30s --timeout=500ms --retries=3 CMD wget -q localhost"],
        )
        .unwrap();
        let h = c.healthcheck.unwrap();
        assert_eq!(h.test.unwrap(), ["CMD-SHELL", "wget -q localhost"]);
        assert_eq!(
            (h.interval, h.timeout, h.retries),
            (90_000_000_000, 500_000_000, 3)
        );
        let c = applied(base.clone(), &["HEALTHCHECK CMD [\"true\"]"]).unwrap();
        assert_eq!(c.healthcheck.unwrap().test.unwrap(), ["CMD", "true"]);
        let c = applied(base.clone(), &["HEALTHCHECK NONE"]).unwrap();
        assert_eq!(c.healthcheck.unwrap().test.unwrap(), ["NONE"]);
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
            (
                "HEALTHCHECK --interval=1us CMD x",
                "cannot be less than 1ms",
            ),
            ("HEALTHCHECK --retries=-1 CMD x", "cannot be negative"),
            ("HEALTHCHECK RUN x", "try CMD"),
            ("HEALTHCHECK --bogus=1 CMD x", "unknown HEALTHCHECK flag"),
        ] {
            let e = applied(base.clone(), &[bad]).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(bad), "{bad}: {e}");
        }
    }
}
