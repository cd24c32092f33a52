//! The engine's config file, `/etc/oxcart/oxcart.toml` (or `$OXCART_CONFIG`): named
//! runtimes with their extra arguments, the default runtime, default log options and
//! the store roots. No file means the defaults; a file that does not parse is an
//! error naming it (a typo must not silently drop a runtime's sandboxing flags).

use crate::error::{EngineError, Result};
use crate::paths::Layout;
use crate::runtime::Runtime;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const DEFAULT_PATH: &str = "/etc/oxcart/oxcart.toml";
/// The runtime a container gets without `--runtime`.
pub const DEFAULT_RUNTIME: &str = "oxcart-runtime";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    #[serde(default)]
    pub engine: EngineSection,
    #[serde(default)]
    pub runtimes: BTreeMap<String, RuntimeEntry>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    pub root: Option<PathBuf>,
    pub runroot: Option<PathBuf>,
    /// Name of the default runtime.
    pub runtime: Option<String>,
    pub log_driver: Option<String>,
    #[serde(default)]
    pub log_opts: BTreeMap<String, String>,
    /// The events journal's bound (`"1m"`; docs/engine.md "Events").
    pub events_max_size: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeEntry {
    pub path: PathBuf,
    #[serde(default)]
    pub args: Vec<String>,
}

impl EngineConfig {
    /// `[engine] events_max_size` in bytes; unset or unparsable (checked by
    /// [`EngineConfig::check`]) is the default.
    pub fn events_max_size(&self) -> u64 {
        self.engine
            .events_max_size
            .as_deref()
            .and_then(|s| crate::start::parse_size(s).ok())
            .unwrap_or(oxcart_jsonlog::events::DEFAULT_MAX_SIZE)
    }

    /// Load `path`, or `$OXCART_CONFIG`, or the default path; absent means defaults.
    pub fn load(path: Option<&Path>) -> Result<EngineConfig> {
        let env = std::env::var_os("OXCART_CONFIG").map(PathBuf::from);
        let explicit = path.map(Path::to_path_buf).or(env);
        let p = explicit
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH));
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
                return Ok(EngineConfig::default())
            }
            Err(e) => return Err(EngineError::Io { path: p, source: e }),
        };
        let c: EngineConfig = toml::from_str(&text)
            .map_err(|e| EngineError::Invalid(format!("engine config {}: {e}", p.display())))?;
        if let Some(s) = &c.engine.events_max_size {
            if crate::start::parse_size(s).is_err() {
                return Err(EngineError::Invalid(format!(
                    "engine config {}: events_max_size = {s:?}: invalid size (a positive number with k, m or g)",
                    p.display()
                )));
            }
        }
        Ok(c)
    }

    /// The runtime a container asks for: empty means the configured default; a path
    /// is used as given; a name is looked up in `[runtimes]`, then (as podman does for
    /// `runc`, `crun`, `runsc`) on `PATH`. Unknown names are docker's error.
    pub fn runtime(&self, name: &str, layout: &Layout) -> Result<Runtime> {
        let name = if name.is_empty() {
            self.engine.runtime.as_deref().unwrap_or(DEFAULT_RUNTIME)
        } else {
            name
        };
        let (path, args) = if let Some(e) = self.runtimes.get(name) {
            (e.path.clone(), e.args.clone())
        } else if name.contains('/') {
            (PathBuf::from(name), Vec::new())
        } else if name == DEFAULT_RUNTIME {
            (default_runtime_path(), Vec::new())
        } else {
            match find_in_path(name) {
                Some(p) => (p, Vec::new()),
                None => {
                    return Err(EngineError::Invalid(format!(
                        "unknown or invalid runtime name: {name}"
                    )))
                }
            }
        };
        if !path.is_file() {
            return Err(EngineError::Invalid(format!(
                "runtime {name}: {} is not an executable file",
                path.display()
            )));
        }
        // The runtime's state root is per name; a path gets a name from its hash-free
        // file name plus a short digest of the path, so two binaries never share state.
        let key = if name.contains('/') {
            let base = path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("{base}-{:08x}", fnv(name.as_bytes()))
        } else {
            name.to_string()
        };
        Ok(Runtime {
            name: name.to_string(),
            path,
            args,
            root: layout.runtime_root(&key),
        })
    }
}

/// FNV-1a: short, stable names from paths (runtime state roots, nft table names).
pub(crate) fn fnv(b: &[u8]) -> u32 {
    b.iter().fold(0x811c_9dc5u32, |h, &c| {
        (h ^ c as u32).wrapping_mul(0x0100_0193)
    })
}

/// `$OXCART_RUNTIME`, else `oxcart-runtime` beside the running `oxcart`, else on PATH.
pub fn default_runtime_path() -> PathBuf {
    if let Some(p) = std::env::var_os("OXCART_RUNTIME") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = crate::paths::self_exe() {
        if let Some(dir) = exe.parent() {
            let p = dir.join(DEFAULT_RUNTIME);
            if p.is_file() {
                return p;
            }
        }
    }
    find_in_path(DEFAULT_RUNTIME).unwrap_or_else(|| PathBuf::from(DEFAULT_RUNTIME))
}

pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_names_runtimes_and_refuses_typos() {
        let c: EngineConfig = toml::from_str(
            "[engine]\nruntime = \"runc\"\n[runtimes.runsc]\npath = \"/usr/bin/runsc\"\nargs = [\"--ignore-cgroups\"]\n",
        )
        .expect("parses");
        assert_eq!(c.runtimes["runsc"].args, ["--ignore-cgroups"]);
        assert!(toml::from_str::<EngineConfig>("[runtimes.x]\npth = \"/a\"\n").is_err());
        let l = Layout::new(Path::new("/r"), Path::new("/run/x"));
        let e = EngineConfig::default().runtime("no-such-runtime-xyz", &l);
        assert!(matches!(e, Err(EngineError::Invalid(m)) if m.contains("no-such-runtime-xyz")));
    }
}
