//! oxcart_spec — the OCI runtime-spec (v1.2/1.3) data types, hand-written.
//!
//! Why hand-written rather than `oci-spec`: see docs/architecture.md. In short, the
//! runtime parses a config on every `create`, so we keep these types lean (no
//! builder/regex machinery) and lenient exactly where runc is (unknown fields are
//! ignored, as runtime-spec `config.md` requires: "Runtimes ... MUST NOT generate an
//! error if they encounter an unknown property").
//!
//! Validation that needs more than types (id syntax, absolute paths, ociVersion range)
//! lives in [`validate`], with errors naming the JSON path of the bad field.

pub mod config;
pub mod defaults;
pub mod resources;
pub mod seccomp;
pub mod state;
pub mod validate;

pub use config::*;
pub use resources::*;
pub use seccomp::*;
pub use state::*;

use std::path::Path;

/// The runtime-spec version this build implements (and reports).
pub const OCI_VERSION: &str = "1.2.0";
/// Oldest config `ociVersion` accepted (runc accepts any 1.x).
pub const OCI_VERSION_MIN: &str = "1.0.0";

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("open {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A JSON error with the path of the field that failed (e.g. `process.user.uid`).
    #[error("{file}: invalid field `{field}`: {msg}")]
    Field {
        file: String,
        field: String,
        msg: String,
    },
    #[error("{file}: {msg}")]
    Invalid { file: String, msg: String },
}

/// Parse a config.json from bytes; `file` names it in errors.
pub fn parse_config(bytes: &[u8], file: &str) -> Result<Spec, SpecError> {
    parse_json(bytes, file)
}

/// Parse any spec JSON document, reporting the path of the failing field.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    file: &str,
) -> Result<T, SpecError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        if field == "." || field.is_empty() {
            SpecError::Invalid {
                file: file.to_string(),
                msg: inner.to_string(),
            }
        } else {
            SpecError::Field {
                file: file.to_string(),
                field,
                msg: inner.to_string(),
            }
        }
    })
}

/// Read and parse `<bundle>/config.json`.
pub fn load_config(path: &Path) -> Result<Spec, SpecError> {
    let bytes = std::fs::read(path).map_err(|source| SpecError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_config(&bytes, &path.display().to_string())
}

/// Go's encoding/json decodes `null` into an empty slice or map, and configs written
/// by Go tools carry such nulls (podman's seccomp.json has `"args": null`); serde's
/// `default` alone only covers a missing key.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    use serde::Deserialize;
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Capability names in kernel order (include/uapi/linux/capability.h): a
/// capability's number is its index. The runtime parses `process.capabilities` with
/// it; the engine lists docker's `ALL` from it.
pub const CAPABILITY_NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];
