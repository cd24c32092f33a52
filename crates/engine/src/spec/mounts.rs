//! The container's mounts: docker's defaults (`oci/defaults.go`), `/etc/hostname`,
//! `/etc/hosts`, `/etc/resolv.conf`, `-v` binds, `--mount`, `--tmpfs` and the `--init`
//! binary, as moby's `daemon/oci_linux.go` WithMounts lays them out.

use super::resources::DEFAULT_SHM_SIZE;
use super::{SpecError, SpecInput, INIT_CANDIDATES, INIT_DESTINATION};
use crate::types::HostConfig;
use oxcart_spec::Mount;
use std::collections::HashSet;
use std::path::Path;

fn mount(dst: &str, typ: &str, src: &str, opts: &[&str]) -> Mount {
    Mount {
        destination: dst.to_string(),
        typ: Some(typ.to_string()),
        source: Some(src.to_string()),
        options: opts.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn default_mounts(hc: &HostConfig) -> Vec<Mount> {
    // --privileged: /sys and its cgroup mount read-write (docker clears `ro`).
    let ro: &[&str] = if hc.privileged { &[] } else { &["ro"] };
    let sys: Vec<&str> = ["nosuid", "noexec", "nodev"]
        .iter()
        .chain(ro)
        .copied()
        .collect();
    let cg: Vec<&str> = ro
        .iter()
        .chain(&["nosuid", "noexec", "nodev"])
        .copied()
        .collect();
    let mut m = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount("/sys", "sysfs", "sysfs", &sys),
        mount("/sys/fs/cgroup", "cgroup", "cgroup", &cg),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
    ];
    m.extend(shm_mount(hc));
    m
}

/// `/dev/shm`: the host's with `--ipc host`, none with `--ipc none`, else a tmpfs of
/// `--shm-size` (docker mounts that tmpfs on the host and binds it; the container
/// sees the same mount).
fn shm_mount(hc: &HostConfig) -> Option<Mount> {
    match hc.ipc_mode.as_str() {
        "none" => None,
        "host" => Some(mount(
            "/dev/shm",
            "bind",
            "/dev/shm",
            &["rbind", "rprivate", "nosuid", "noexec", "nodev"],
        )),
        _ => {
            let size = if hc.shm_size > 0 {
                hc.shm_size
            } else {
                DEFAULT_SHM_SIZE
            };
            let size = format!("size={size}");
            Some(mount(
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777", &size],
            ))
        }
    }
}

/// One `-v /host:/ctr[:opts]`.
#[derive(Debug)]
struct Bind {
    src: String,
    dst: String,
    ro: bool,
    propagation: Option<String>,
}

const PROPAGATIONS: &[&str] = &[
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

fn parse_bind(spec: &str) -> Result<Bind, SpecError> {
    let bad = |why: &str| SpecError::Mount(format!("invalid volume specification: '{spec}'{why}"));
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts[..] {
        [src, dst] => (src, dst, ""),
        [src, dst, mode] => (src, dst, mode),
        // An anonymous volume (volumes.rs makes it at create).
        [dst] => ("", dst, ""),
        _ => return Err(bad("")),
    };
    // A named volume: volumes.rs resolves it to its directory before the spec is built.
    if !src.starts_with('/') && !src.is_empty() && !crate::volumes::valid_name(src) {
        return Err(SpecError::Mount(format!(
            "create {src}: \"{src}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    check_destination(dst).map_err(|why| bad(&format!(": {why}")))?;
    let mut b = Bind {
        src: src.to_string(),
        dst: dst.to_string(),
        ro: false,
        propagation: None,
    };
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => b.ro = true,
            "rw" => b.ro = false,
            // SELinux relabelling: a no-op where SELinux is disabled (as in docker).
            "z" | "Z" => {}
            "consistent" | "cached" | "delegated" => {}
            // Volumes only: do not fill the volume with the image's content.
            "nocopy" if !src.starts_with('/') => {}
            p if PROPAGATIONS.contains(&p) => b.propagation = Some(p.to_string()),
            _ => return Err(bad(&format!(": invalid mode: {m}"))),
        }
    }
    Ok(b)
}

fn check_destination(dst: &str) -> Result<(), String> {
    if !dst.starts_with('/') {
        return Err(format!(
            "invalid mount path: '{dst}' mount path must be absolute"
        ));
    }
    if Path::new(dst).components().count() <= 1 {
        return Err("destination can't be '/'".into());
    }
    Ok(())
}

/// docker's create-time checks of `Binds`, `Mounts` and `Tmpfs`.
pub(crate) fn validate(hc: &HostConfig) -> Result<(), SpecError> {
    let mut seen = HashSet::new();
    let mut dup = |d: &str| {
        let clean = Path::new(d).components().collect::<std::path::PathBuf>();
        if seen.insert(clean) {
            Ok(())
        } else {
            Err(SpecError::Mount(format!("Duplicate mount point: {d}")))
        }
    };
    for b in hc.binds.iter().flatten() {
        dup(&parse_bind(b)?.dst)?;
    }
    for m in &hc.mounts {
        check_destination(&m.target).map_err(|why| {
            SpecError::Mount(format!("invalid mount config for type {:?}: {why}", m.kind))
        })?;
        match m.kind.as_str() {
            "bind" => {
                if m.source.is_empty() {
                    return Err(SpecError::Mount(
                        "invalid mount config for type \"bind\": field Source must not be empty"
                            .into(),
                    ));
                }
                if !Path::new(&m.source).exists() {
                    return Err(SpecError::BindSourceMissing(m.source.clone()));
                }
            }
            "tmpfs" => {}
            "volume" => {
                if !m.source.is_empty() && !crate::volumes::valid_name(&m.source) {
                    return Err(SpecError::Mount(format!(
                        "invalid mount config for type \"volume\": invalid volume name {:?}",
                        m.source
                    )));
                }
            }
            t => return Err(SpecError::Mount(format!("mount type unknown: {t:?}"))),
        }
        dup(&m.target)?;
    }
    for (dst, data) in hc.tmpfs.iter().flatten() {
        check_destination(dst)
            .map_err(|why| SpecError::Mount(format!("invalid tmpfs mount {dst:?}: {why}")))?;
        merge_tmpfs_options(&tmpfs_defaults_and(data))?;
        dup(dst)?;
    }
    Ok(())
}

fn tmpfs_defaults_and(data: &str) -> Vec<String> {
    ["noexec", "nosuid", "nodev", "rprivate"]
        .iter()
        .map(|s| s.to_string())
        .chain(
            data.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        )
        .collect()
}

/// The flag group a tmpfs mount option belongs to (a later option of the same group
/// wins), or `None` for a `key=value` data option.
fn flag_group(o: &str) -> Option<&'static str> {
    Some(match o {
        "ro" | "rw" => "ro",
        "suid" | "nosuid" => "suid",
        "dev" | "nodev" => "dev",
        "exec" | "noexec" => "exec",
        "sync" | "async" => "sync",
        "dirsync" => "dirsync",
        "mand" | "nomand" => "mand",
        "atime" | "noatime" => "atime",
        "diratime" | "nodiratime" => "diratime",
        "relatime" | "norelatime" => "relatime",
        "strictatime" | "nostrictatime" => "strictatime",
        "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" | "unbindable"
        | "runbindable" => "propagation",
        _ => return None,
    })
}

/// docker's `MergeTmpfsOptions`: later options override earlier ones of their kind;
/// data options limited to the tmpfs ones.
fn merge_tmpfs_options(opts: &[String]) -> Result<Vec<String>, SpecError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for o in opts.iter().rev() {
        if o == "defaults" {
            continue;
        }
        let key = match flag_group(o) {
            Some(g) => g.to_string(),
            None => match o.split_once('=') {
                Some((k, _))
                    if matches!(
                        k,
                        "size" | "mode" | "uid" | "gid" | "nr_inodes" | "nr_blocks" | "mpol"
                    ) =>
                {
                    format!("={k}")
                }
                _ => return Err(SpecError::Mount(format!("invalid tmpfs option {o:?}"))),
            },
        };
        if seen.insert(key) {
            out.push(o.clone());
        }
    }
    out.reverse();
    Ok(out)
}

/// docker's `ConvertTmpfsOptions` for `--mount type=tmpfs`.
fn tmpfs_data(m: &crate::types::Mount) -> String {
    let mut v = Vec::new();
    if m.read_only {
        v.push("ro".to_string());
    }
    if let Some(t) = &m.tmpfs_options {
        if let Some(mode) = t.mode.filter(|m| *m != 0) {
            v.push(format!("mode={mode:o}"));
        }
        if t.size_bytes != 0 {
            let s = t.size_bytes;
            v.push(match s {
                _ if s % (1 << 30) == 0 => format!("size={}g", s >> 30),
                _ if s % (1 << 20) == 0 => format!("size={}m", s >> 20),
                _ if s % (1 << 10) == 0 => format!("size={}k", s >> 10),
                _ => format!("size={s}"),
            });
        }
    }
    v.join(",")
}

fn bind_mount(src: &str, dst: &str, ro: bool, propagation: Option<&str>, recursive: bool) -> Mount {
    let mut opts = vec![if recursive { "rbind" } else { "bind" }];
    if ro {
        opts.push("ro");
    }
    opts.push(propagation.unwrap_or("rprivate"));
    mount(dst, "bind", src, &opts)
}

/// User mounts (binds, `--mount`, `--tmpfs`), with the source of each `-v` created as
/// docker does when missing (a directory), and the rootfs propagation they need.
fn user_mounts(hc: &HostConfig) -> Result<(Vec<Mount>, Option<String>), SpecError> {
    let mut out = Vec::new();
    for spec in hc.binds.iter().flatten() {
        let b = parse_bind(spec)?;
        if !b.src.starts_with('/') {
            // Volumes reach the spec as binds of their directories (volumes.rs).
            return Err(SpecError::Unsupported(format!(
                "-v {spec}: an unresolved volume is"
            )));
        }
        if !Path::new(&b.src).exists() {
            std::fs::create_dir_all(&b.src).map_err(|source| SpecError::CreateBindSource {
                path: b.src.clone(),
                source,
            })?;
        }
        out.push(bind_mount(
            &b.src,
            &b.dst,
            b.ro,
            b.propagation.as_deref(),
            true,
        ));
    }
    for m in &hc.mounts {
        match m.kind.as_str() {
            "bind" => {
                let bo = m.bind_options.as_ref();
                let prop = bo.map(|b| b.propagation.as_str()).filter(|p| !p.is_empty());
                let recursive = !bo.is_some_and(|b| b.non_recursive);
                out.push(bind_mount(
                    &m.source,
                    &m.target,
                    m.read_only,
                    prop,
                    recursive,
                ));
            }
            "tmpfs" => out.push(tmpfs_mount(&m.target, &tmpfs_data(m))?),
            t => return Err(SpecError::Unsupported(format!("--mount type={t} is"))),
        }
    }
    for (dst, data) in hc.tmpfs.iter().flatten() {
        out.push(tmpfs_mount(dst, data)?);
    }
    // Parents before children (docker's sortMounts: by the number of components).
    out.sort_by_key(|m| Path::new(&m.destination).components().count());
    let props = out.iter().flat_map(|m| &m.options).map(String::as_str);
    let mut root = None;
    for p in props {
        match p {
            // docker: a shared bind needs a shared rootfs, a slave one at least rslave.
            "shared" | "rshared" => root = Some("rshared"),
            "slave" | "rslave" if root.is_none() => root = Some("rslave"),
            _ => {}
        }
    }
    Ok((out, root.map(str::to_string)))
}

fn tmpfs_mount(dst: &str, data: &str) -> Result<Mount, SpecError> {
    let opts = merge_tmpfs_options(&tmpfs_defaults_and(data))?;
    let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
    Ok(mount(dst, "tmpfs", "tmpfs", &opts))
}

/// All mounts in order; `--init` also prefixes `args`. Returns the mounts and the
/// rootfs propagation the user's binds need.
pub(crate) fn build(
    input: &SpecInput<'_>,
    args: &mut Vec<String>,
) -> Result<(Vec<Mount>, Option<String>), SpecError> {
    let hc = input.host_config;
    let (user, rootfs_propagation) = user_mounts(hc)?;
    let user_dsts: HashSet<&str> = user.iter().map(|m| m.destination.as_str()).collect();
    let mount_dev = user_dsts.contains("/dev");
    let mut out: Vec<Mount> = default_mounts(hc)
        .into_iter()
        .filter(|m| !user_dsts.contains(m.destination.as_str()))
        .filter(|m| !(mount_dev && m.destination.starts_with("/dev/")))
        .collect();
    for name in ["hostname", "hosts", "resolv.conf"] {
        let dst = format!("/etc/{name}");
        let src = input.container_dir.join(name);
        if !user_dsts.contains(dst.as_str()) && src.exists() {
            out.push(bind_mount(&src.to_string_lossy(), &dst, false, None, true));
        }
    }
    if hc.init == Some(true) {
        let init = find_init(input.init_path)?;
        out.push(mount(INIT_DESTINATION, "bind", &init, &["bind", "ro"]));
        // docker: `/sbin/docker-init -- <entrypoint> <cmd>`.
        args.splice(0..0, [INIT_DESTINATION.to_string(), "--".to_string()]);
    }
    out.extend(user);
    Ok((out, rootfs_propagation))
}

fn find_init(given: Option<&Path>) -> Result<String, SpecError> {
    if let Some(p) = given {
        return if p.is_file() {
            Ok(p.to_string_lossy().into_owned())
        } else {
            Err(SpecError::InitNotFound(p.display().to_string()))
        };
    }
    INIT_CANDIDATES
        .iter()
        .find(|p| Path::new(p).is_file())
        .map(|p| p.to_string())
        .ok_or_else(|| SpecError::InitNotFound(INIT_CANDIDATES.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tmpfs_option_merge() {
        let o = merge_tmpfs_options(&tmpfs_defaults_and("exec,size=64m,mode=1770")).expect("merge");
        assert_eq!(
            o,
            s(&[
                "nosuid",
                "nodev",
                "rprivate",
                "exec",
                "size=64m",
                "mode=1770"
            ])
        );
        let e = merge_tmpfs_options(&s(&["bogus=1"])).expect_err("bad");
        assert!(e.to_string().contains("invalid tmpfs option"), "{e}");
    }

    #[test]
    fn bind_specs() {
        let b = parse_bind("/a:/b:ro,rshared").expect("bind");
        assert!(b.ro && b.propagation.as_deref() == Some("rshared"));
        let v = parse_bind("vol:/b:ro,nocopy").expect("named volume");
        assert!(v.ro && v.src == "vol");
        assert_eq!(parse_bind("/b").expect("anonymous").src, "");
        assert!(parse_bind("/a:/b:nocopy").is_err(), "nocopy is for volumes");
        let e = parse_bind("a/b:/c").expect_err("bad name").to_string();
        assert!(
            e.contains("invalid characters for a local volume name"),
            "{e}"
        );
        let e = parse_bind("/a:/").expect_err("root").to_string();
        assert!(e.contains("destination can't be '/'"), "{e}");
        let e = parse_bind("/a:/b:xx").expect_err("mode").to_string();
        assert!(e.contains("invalid mode: xx"), "{e}");
    }

    #[test]
    fn mount_validation() {
        let hc = HostConfig {
            mounts: vec![crate::types::Mount {
                kind: "bind".into(),
                source: "/nonexistent/oxcart-spec".into(),
                target: "/x".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let e = validate(&hc).expect_err("missing").to_string();
        assert_eq!(e, "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent/oxcart-spec");
        let hc = HostConfig {
            binds: Some(s(&["/tmp:/x", "/tmp:/x/"])),
            ..Default::default()
        };
        let e = validate(&hc).expect_err("dup").to_string();
        assert_eq!(e, "invalid mount config: Duplicate mount point: /x/");
    }
}
