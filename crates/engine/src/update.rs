//! `update`: change a container's resources, live when it runs (the runtime's
//! `update`, which keeps every limit it is not given) and in its record for the next
//! start, as docker does.

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::record::Record;
use crate::types::HostConfig;

/// The resources `docker update` can change; `None` leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct UpdateRequest {
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub memory_swap: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
}

impl UpdateRequest {
    pub fn is_empty(&self) -> bool {
        self.memory.is_none()
            && self.memory_reservation.is_none()
            && self.memory_swap.is_none()
            && self.nano_cpus.is_none()
            && self.cpu_shares.is_none()
            && self.cpu_period.is_none()
            && self.cpu_quota.is_none()
            && self.cpuset_cpus.is_none()
            && self.cpuset_mems.is_none()
            && self.pids_limit.is_none()
            && self.blkio_weight.is_none()
    }

    fn apply(&self, h: &mut HostConfig) -> Result<()> {
        if self.nano_cpus.is_some() && (self.cpu_period.is_some() || self.cpu_quota.is_some()) {
            return Err(EngineError::Invalid(
                "Conflicting options: --cpus and --cpu-period/--cpu-quota".into(),
            ));
        }
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = &self.$f { h.$f = v.clone(); } )* };
        }
        set!(
            memory,
            memory_reservation,
            memory_swap,
            nano_cpus,
            cpu_shares,
            cpu_period,
            cpu_quota,
            cpuset_cpus,
            cpuset_mems,
            blkio_weight
        );
        if let Some(p) = self.pids_limit {
            h.pids_limit = Some(p);
        }
        // docker: a memory limit above the current swap limit moves swap with it
        // ("Memory limit should be smaller than already set memoryswap limit").
        if h.memory > 0 && h.memory_swap > 0 && h.memory > h.memory_swap {
            if self.memory_swap.is_some() {
                return Err(EngineError::Invalid(
                    "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
                ));
            }
            return Err(EngineError::Invalid(
                "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into(),
            ));
        }
        Ok(())
    }
}

impl Engine {
    pub fn update(&mut self, key: &str, req: &UpdateRequest) -> Result<Record> {
        let rec = self.find(key)?;
        let _lock = crate::lock::CtrLock::acquire(&self.ctr_dir(&rec.id))?;
        let mut rec = self
            .db
            .get(&rec.id)?
            .ok_or_else(|| EngineError::NoSuchContainer(key.to_string()))?;
        req.apply(&mut rec.host_config)?;
        if self.observe(&rec)?.status.is_running() {
            let res = crate::spec::build_resources(&rec.host_config)?;
            let v = serde_json::to_value(&res).map_err(|e| EngineError::Invalid(e.to_string()))?;
            self.runtime_of(&rec)?.update(&rec.id, &v)?;
        }
        self.db.update(&rec)?;
        self.emit_ctr(&rec, "update", &[]);
        Ok(rec)
    }

    /// `top`: the container's processes as `ps ARGS` shows them (docker runs the
    /// host's `ps` and keeps the rows whose PID is the container's).
    pub fn top(&self, key: &str, ps_args: &[String]) -> Result<(Vec<String>, Vec<Vec<String>>)> {
        let rec = self.find(key)?;
        if !self.observe(&rec)?.status.is_running() {
            return Err(EngineError::NotRunning(rec.id.clone()));
        }
        let pids = self.runtime_of(&rec)?.pids(&rec.id)?;
        let args: Vec<String> = if ps_args.is_empty() {
            vec!["-ef".into()]
        } else {
            ps_args.to_vec()
        };
        let out = std::process::Command::new("ps")
            .args(&args)
            .output()
            .map_err(crate::error::io_err("ps"))?;
        if !out.status.success() {
            return Err(EngineError::Invalid(format!(
                "ps {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let rows = parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)?;
        self.emit_ctr(&rec, "top", &[]);
        Ok(rows)
    }
}

/// Split `ps` output into titles and the container's rows (the last column, the
/// command, keeps its spaces), as docker's `parsePSOutput`.
pub fn parse_ps(out: &str, pids: &[i32]) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut lines = out.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| EngineError::Invalid("Couldn't find PID field in ps output".into()))?;
    let mut rows = Vec::new();
    for l in lines {
        let fields: Vec<&str> = l.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i32>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = fields[..titles.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .collect();
        row.push(fields[titles.len() - 1..].join(" "));
        rows.push(row);
    }
    Ok((titles, rows))
}

#[cfg(test)]
mod tests {
    use super::parse_ps;

    #[test]
    fn ps_rows_keep_the_command_whole_and_only_the_containers() {
        let out = "UID PID PPID C STIME TTY TIME CMD\nroot 10 1 0 10:00 ? 00:00:00 sleep 100 x\nroot 11 1 0 10:00 ? 00:00:00 other\n";
        let (t, r) = parse_ps(out, &[10]).expect("parses");
        assert_eq!(t.len(), 8);
        assert_eq!(
            r,
            vec![vec![
                "root",
                "10",
                "1",
                "0",
                "10:00",
                "?",
                "00:00:00",
                "sleep 100 x"
            ]]
        );
        assert!(parse_ps("A B\n", &[1]).is_err());
    }
}
