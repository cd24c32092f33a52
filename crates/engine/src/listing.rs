//! What `ps` shows of a container in docker's words (its STATUS and COMMAND texts) and
//! `ps`'s filters: shared by the CLI's `ps` and the API's `GET /containers/json`.

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::record::Record;
use crate::state::{Observed, Status};

/// go-units' HumanDuration, which docker's STATUS and CREATED columns use.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    // go-units rounds the hours (`int(d.Hours() + 0.5)`) but not the minutes, and
    // takes the years from the unrounded hours.
    let (m, h) = (s / 60, (s + 1800) / 3600);
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if m == 1 => "About a minute".into(),
        _ if m < 60 => format!("{m} minutes"),
        _ if h == 1 => "About an hour".into(),
        _ if h < 48 => format!("{h} hours"),
        _ if h < 24 * 7 * 2 => format!("{} days", h / 24),
        _ if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        _ if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", s / 3600 / 24 / 365),
    }
}

pub fn since(ts: &str, now: i64) -> Option<i64> {
    crate::time::parse(ts).map(|(s, _)| now - s)
}

/// docker's STATUS: `Up 3 minutes (Paused)`, `Exited (0) 2 seconds ago`, `Created`.
pub fn status_text(o: &Observed, now: i64) -> String {
    match o.status {
        Status::Created => "Created".into(),
        Status::Restarting => {
            // docker: `Restarting (1) 2 seconds ago`, from the run that ended.
            let code = o.exit.as_ref().map(|e| e.exit_code).unwrap_or(0);
            let ago = o
                .exit
                .as_ref()
                .and_then(|e| since(&e.finished_at, now))
                .map(human_duration)
                .unwrap_or_default();
            format!("Restarting ({code}) {ago} ago")
        }
        Status::Running | Status::Paused => {
            let up = since(&o.started_at, now)
                .map(human_duration)
                .unwrap_or_default();
            let mut s = format!("Up {up}");
            if o.status == Status::Paused {
                s += " (Paused)";
            } else if let Some(h) = &o.health {
                // docker's Health.String(): `health: starting`, else the status.
                if h.status == "starting" {
                    s += " (health: starting)";
                } else {
                    s += &format!(" ({})", h.status);
                }
            }
            s
        }
        Status::Exited | Status::Dead | Status::Removing => {
            let code = o.exit.as_ref().map(|e| e.exit_code).unwrap_or(0);
            let ago = o
                .exit
                .as_ref()
                .and_then(|e| since(&e.finished_at, now))
                .map(|d| format!(" {} ago", human_duration(d)))
                .unwrap_or_default();
            if o.status == Status::Dead {
                "Dead".into()
            } else {
                format!("Exited ({code}){ago}")
            }
        }
    }
}

/// The command as one line, unquoted (the API's `Command`).
pub fn command_line(rec: &Record) -> String {
    std::iter::once(rec.path.as_str())
        .chain(rec.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// docker's COMMAND cell: the command, cut to 20 characters with `…`, quoted as Go's
/// strconv.Quote.
pub fn command_text(rec: &Record, trunc: bool) -> String {
    let mut c = command_line(rec);
    if trunc && c.chars().count() > 20 {
        c = c.chars().take(19).collect::<String>() + "…";
    }
    serde_json::to_string(&c).unwrap_or(c)
}

/// `ps`'s filters (`--filter k=v` and the API's `filters`): values of one key are
/// ORed (labels ANDed, as docker), different keys ANDed.
#[derive(Debug, Clone, Default)]
pub struct Filters(pub Vec<(String, String)>);

impl Filters {
    pub fn parse(v: &[String]) -> Result<Filters> {
        let pairs = crate::filters::split_pairs(v)?;
        for (k, val) in &pairs {
            let (k, val) = (k.as_str(), val.as_str());
            if ![
                "status", "name", "id", "label", "ancestor", "exited", "health",
            ]
            .contains(&k)
            {
                return Err(EngineError::Invalid(format!("invalid filter '{k}'")));
            }
            if k == "health" && !["none", "starting", "healthy", "unhealthy"].contains(&val) {
                return Err(EngineError::Invalid(format!("invalid filter 'health={val}': invalid value for health ({val}): must be one of none, starting, healthy, unhealthy")));
            }
            if k == "status"
                && ![
                    "created",
                    "restarting",
                    "running",
                    "removing",
                    "paused",
                    "exited",
                    "dead",
                ]
                .contains(&val)
            {
                return Err(EngineError::Invalid(format!(
                    "invalid filter 'status={val}'"
                )));
            }
        }
        Ok(Filters(pairs))
    }

    /// docker: values of one key are ORed, different keys ANDed.
    pub fn matches(&self, e: &Engine, rec: &Record, o: &Observed) -> bool {
        let keys: std::collections::BTreeSet<&str> =
            self.0.iter().map(|(k, _)| k.as_str()).collect();
        keys.into_iter().all(|k| {
            let mut vals = self.0.iter().filter(|(kk, _)| kk == k);
            // docker's `MatchKVList`: every label filter must hold (compose finds a
            // project's containers by two labels at once); other keys are ORed.
            if k == "label" {
                vals.all(|(_, v)| one_matches(e, k, v, rec, o))
            } else {
                vals.any(|(_, v)| one_matches(e, k, v, rec, o))
            }
        })
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }
}

fn one_matches(e: &Engine, k: &str, v: &str, rec: &Record, o: &Observed) -> bool {
    match k {
        "status" => o.status.as_str() == v,
        "name" => rec.name.contains(v.trim_start_matches('/')),
        "id" => rec.id.starts_with(v),
        "label" => crate::filters::holds(&rec.config.labels, v),
        "ancestor" => {
            rec.config.image == v
                || rec.image_id == v
                || rec.image_id.trim_start_matches("sha256:").starts_with(v)
                || e.open_images()
                    .and_then(|i| Ok(i.find(v)?))
                    .map(|img| img.id.to_string() == rec.image_id)
                    .unwrap_or(false)
        }
        // docker's snapshot: `none` without a health state.
        "health" => {
            o.health
                .as_ref()
                .map(|h| h.status.as_str())
                .unwrap_or("none")
                == v
        }
        "exited" => {
            o.status == Status::Exited
                && o.exit.as_ref().map(|x| x.exit_code.to_string()) == Some(v.to_string())
        }
        _ => false,
    }
}
