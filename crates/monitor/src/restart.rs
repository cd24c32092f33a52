//! docker's restart policies, applied by the monitor as the container's parent
//! (docs/engine.md "Restart policies"): the decision is moby's
//! `restartmanager.ShouldRestart`, the backoff its timer (100 ms doubling up to a
//! minute, back to 100 ms after a run of 10 s or more). The policy is read from the
//! container's `restart-policy` file at every exit, so `update --restart` on a
//! running container takes effect at its next exit; a user's `stop`/`kill` leaves
//! markers the monitor reads before deciding.

use std::path::Path;
use std::time::Duration;

/// Written by the engine at start and by `update --restart`: docker's CLI syntax.
pub const POLICY_FILE: &str = "restart-policy";
/// docker's `HasBeenManuallyStopped`: any `stop` or `kill` by the user (until the
/// next `start`). `unless-stopped` does not restart after it.
pub const STOPPED_FILE: &str = "stopped-by-user";
/// docker's `ExitOnNext` (the restart manager cancelled): a `stop`, a `kill` with
/// SIGKILL or the stop signal, an `rm -f`. No policy restarts after it.
pub const CANCELED_FILE: &str = "restart-canceled";
/// The monitor's account of restarts, read by the engine's state derivation.
pub const STATE_FILE: &str = "restart.json";

const FIRST: Duration = Duration::from_millis(100);
const MAX: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    No,
    Always,
    UnlessStopped,
    OnFailure { max_retries: u64 },
}

impl Policy {
    /// `no`, `always`, `unless-stopped`, `on-failure[:N]`; anything else (a missing
    /// or damaged file) is `no`: never restart what was not asked to be.
    pub fn parse(s: &str) -> Policy {
        match s.trim().split_once(':') {
            Some(("on-failure", n)) => Policy::OnFailure {
                max_retries: n.parse().unwrap_or(0),
            },
            None => match s.trim() {
                "always" => Policy::Always,
                "unless-stopped" => Policy::UnlessStopped,
                "on-failure" => Policy::OnFailure { max_retries: 0 },
                _ => Policy::No,
            },
            _ => Policy::No,
        }
    }

    pub fn read(dir: &Path) -> Policy {
        std::fs::read_to_string(dir.join(POLICY_FILE))
            .map(|s| Policy::parse(&s))
            .unwrap_or(Policy::No)
    }
}

/// The user's markers, read fresh at each decision.
pub struct Markers {
    pub stopped: bool,
    pub canceled: bool,
}

impl Markers {
    pub fn read(dir: &Path) -> Markers {
        Markers {
            stopped: dir.join(STOPPED_FILE).exists(),
            canceled: dir.join(CANCELED_FILE).exists(),
        }
    }
}

/// moby's restart manager for one monitor's life (a `start` begins a new one, as
/// docker's `ResetRestartManager(true)` on a user's start).
#[derive(Debug, Default)]
pub struct Manager {
    /// docker's RestartCount.
    pub count: u64,
    timeout: Duration,
}

impl Manager {
    /// Whether to restart after a run of `ran` that exited with `exit_code`, and
    /// after how long. The backoff grows on every call, restart or not, as docker's.
    pub fn should_restart(
        &mut self,
        policy: Policy,
        exit_code: i32,
        m: &Markers,
        ran: Duration,
    ) -> Option<Duration> {
        if policy == Policy::No || m.canceled {
            return None;
        }
        if ran >= Duration::from_secs(10) {
            self.timeout = Duration::ZERO;
        }
        self.timeout = if self.timeout.is_zero() {
            FIRST
        } else {
            (self.timeout * 2).min(MAX)
        };
        let restart = match policy {
            Policy::No => false,
            Policy::Always => true,
            Policy::UnlessStopped => !m.stopped,
            // docker: 0 retries means no maximum; only a non-zero exit counts.
            Policy::OnFailure { max_retries } => {
                (max_retries == 0 || self.count < max_retries) && exit_code != 0
            }
        };
        if !restart {
            return None;
        }
        self.count += 1;
        Some(self.timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FREE: Markers = Markers {
        stopped: false,
        canceled: false,
    };

    #[test]
    fn policies_parse_as_dockers_cli() {
        assert_eq!(Policy::parse("always\n"), Policy::Always);
        assert_eq!(
            Policy::parse("on-failure:3"),
            Policy::OnFailure { max_retries: 3 }
        );
        assert_eq!(
            Policy::parse("on-failure"),
            Policy::OnFailure { max_retries: 0 }
        );
        assert_eq!(Policy::parse("unless-stopped"), Policy::UnlessStopped);
        assert_eq!(Policy::parse(""), Policy::No);
        assert_eq!(Policy::parse("garbage:x:y"), Policy::No);
    }

    #[test]
    fn backoff_doubles_caps_and_resets_after_ten_seconds() {
        let mut m = Manager::default();
        let short = Duration::from_secs(1);
        let waits: Vec<u128> = (0..12)
            .map(|_| {
                m.should_restart(Policy::Always, 0, &FREE, short)
                    .unwrap()
                    .as_millis()
            })
            .collect();
        assert_eq!(
            waits,
            [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000]
        );
        let d = m.should_restart(Policy::Always, 0, &FREE, Duration::from_secs(10));
        assert_eq!(d, Some(FIRST));
        assert_eq!(m.count, 13);
    }

    #[test]
    fn on_failure_counts_only_failures_up_to_the_maximum() {
        let mut m = Manager::default();
        let p = Policy::OnFailure { max_retries: 2 };
        let t = Duration::ZERO;
        assert_eq!(m.should_restart(p, 0, &FREE, t), None);
        assert!(m.should_restart(p, 1, &FREE, t).is_some());
        assert!(m.should_restart(p, 137, &FREE, t).is_some());
        assert_eq!(m.should_restart(p, 1, &FREE, t), None);
        assert_eq!(m.count, 2);
    }

    #[test]
    fn user_stops() {
        let mut m = Manager::default();
        let stopped = Markers {
            stopped: true,
            canceled: false,
        };
        let canceled = Markers {
            stopped: true,
            canceled: true,
        };
        let t = Duration::ZERO;
        assert!(m.should_restart(Policy::Always, 0, &stopped, t).is_some());
        assert_eq!(
            m.should_restart(Policy::UnlessStopped, 0, &stopped, t),
            None
        );
        assert_eq!(m.should_restart(Policy::Always, 0, &canceled, t), None);
    }
}
