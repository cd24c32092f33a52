//! `exec`: a new process in a running container, through the runtime's `exec` with a
//! process.json built from the container's own process (its environment, user,
//! capabilities, AppArmor and no-new-privileges), changed as docker's flags ask.

use crate::engine::Engine;
use crate::error::{io_err, EngineError, Result};
use crate::record::Record;
use crate::runtime::runtime_message;
use crate::start::classify_runtime_error;
use std::path::{Path, PathBuf};
use std::process::Command;

/// docker's `exec` options.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub tty: bool,
    pub detach: bool,
    pub privileged: bool,
}

/// A prepared exec: the command to run (stdio is the caller's) and the files to
/// remove afterwards.
pub struct PreparedExec {
    pub command: Command,
    process_file: PathBuf,
    log_file: PathBuf,
}

fn merge_env(base: &mut Vec<String>, extra: &[String]) {
    for e in extra {
        let key = e.split('=').next().unwrap_or(e);
        base.retain(|b| b.split('=').next() != Some(key));
        base.push(e.clone());
    }
}

/// docker's `errContainerIsRestarting`.
pub fn restarting(id: &str) -> EngineError {
    EngineError::Invalid(format!(
        "Container {id} is restarting, wait until the container is running"
    ))
}

impl Engine {
    /// Build the runtime's `exec` for a running container.
    pub fn prepare_exec(&self, rec: &Record, opts: &ExecOptions) -> Result<PreparedExec> {
        let obs = self.observe(rec)?;
        match obs.status {
            crate::state::Status::Running => {}
            crate::state::Status::Restarting => return Err(restarting(&rec.id)),
            crate::state::Status::Paused => {
                return Err(EngineError::Invalid(format!(
                    "Container {} is paused, unpause the container before exec",
                    rec.id
                )))
            }
            _ => return Err(EngineError::NotRunning(rec.id.clone())),
        }
        if opts.cmd.is_empty() {
            return Err(EngineError::Invalid("exec: no command specified".into()));
        }
        let dir = self.ctr_dir(&rec.id);
        let p = exec_process(&dir, rec, opts)?;
        let tag = &crate::names::new_id()?[..16];
        let process_file = dir.join(format!("exec-{tag}.json"));
        let log_file = dir.join(format!("exec-{tag}.log"));
        let json = serde_json::to_vec(&p).map_err(|e| EngineError::Invalid(e.to_string()))?;
        std::fs::write(&process_file, json).map_err(io_err(&process_file))?;
        let rt = self.runtime_of(rec)?;
        let mut c = Command::new(&rt.path);
        // The runtime's errors go to its log, so they can be told from the process's
        // own exit status (docker's 126/127).
        c.args(&rt.args)
            .arg("--root")
            .arg(rt.root())
            .arg("--log")
            .arg(&log_file)
            .arg("--log-format")
            .arg("json")
            .arg("exec")
            .arg("--process")
            .arg(&process_file);
        if opts.tty {
            c.arg("--tty");
        }
        if opts.detach {
            c.arg("--detach");
        }
        c.arg(&rec.id);
        Ok(PreparedExec {
            command: c,
            process_file,
            log_file,
        })
    }
}

/// The exec's process: the container's own (config.json), changed by the flags.
pub(crate) fn exec_process(
    dir: &Path,
    rec: &Record,
    opts: &ExecOptions,
) -> Result<oxcart_spec::Process> {
    let cfg_path = dir.join("config.json");
    let spec = oxcart_spec::load_config(&cfg_path)
        .map_err(|e| EngineError::Invalid(format!("{}: {e}", cfg_path.display())))?;
    let mut p = spec.process.unwrap_or_default();
    p.args = opts.cmd.clone();
    p.terminal = opts.tty;
    p.console_size = None;
    merge_env(&mut p.env, &opts.env);
    if opts.tty && !p.env.iter().any(|e| e.starts_with("TERM=")) {
        p.env.push("TERM=xterm".into());
    }
    if let Some(u) = &opts.user {
        let eu = crate::spec::resolve_user(
            &dir.join("rootfs"),
            u,
            rec.host_config.group_add.as_deref(),
        )?;
        p.user.uid = eu.uid;
        p.user.gid = eu.gid;
        p.user.additional_gids = eu.additional_gids;
    }
    if let Some(w) = &opts.workdir {
        if !w.starts_with('/') {
            return Err(EngineError::Invalid(format!(
                "the working directory '{w}' is invalid, it needs to be an absolute path"
            )));
        }
        p.cwd = w.clone();
    }
    if opts.privileged {
        // Every capability this engine holds, as `run --privileged` gets (spec::caps).
        let all = crate::spec::all_capabilities();
        p.capabilities = Some(oxcart_spec::LinuxCapabilities {
            bounding: Some(all.clone()),
            effective: Some(all.clone()),
            permitted: Some(all),
            inheritable: None,
            ambient: None,
        });
    }
    Ok(p)
}

impl PreparedExec {
    /// The runtime's own error, when it failed rather than the process: its log holds
    /// an error line only then.
    pub fn runtime_error(&self) -> Option<EngineError> {
        let log = std::fs::read_to_string(&self.log_file).ok()?;
        let errors: String = log
            .lines()
            .filter(|l| l.contains("\"level\":\"error\"") || l.contains("level=error"))
            .collect::<Vec<_>>()
            .join("\n");
        if errors.is_empty() {
            return None;
        }
        Some(classify_runtime_error("exec", runtime_message(&errors)))
    }
}

impl Drop for PreparedExec {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.process_file);
        let _ = std::fs::remove_file(&self.log_file);
    }
}
