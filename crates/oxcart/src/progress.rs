//! Pull progress: one bar per layer on a terminal, plain lines otherwise, nothing with
//! `--quiet`.

use indicatif::{
    HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle,
};
use oxcart_image::digest::Digest;
use oxcart_image::oci::Descriptor;
use oxcart_image::pull::{LayerState, Progress};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

/// How to show progress.
pub enum Reporter {
    /// Nothing.
    Quiet,
    /// `<layer>: <event>` lines on stdout.
    Lines(Mutex<HashMap<Digest, &'static str>>),
    /// The same lines on stderr (`run --pull`: stdout is the container's).
    ErrLines(Mutex<HashMap<Digest, &'static str>>),
    /// indicatif bars.
    Bars {
        multi: MultiProgress,
        bars: Mutex<HashMap<Digest, ProgressBar>>,
    },
}

impl Reporter {
    /// Pick by `quiet` and whether stdout is a terminal.
    pub fn new(quiet: bool) -> Reporter {
        if quiet {
            Reporter::Quiet
        } else if std::io::stdout().is_terminal() {
            Reporter::Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
                bars: Mutex::new(HashMap::new()),
            }
        } else {
            Reporter::Lines(Mutex::new(HashMap::new()))
        }
    }

    /// Lines on stderr, bars when stderr is a terminal.
    pub fn to_stderr() -> Reporter {
        if std::io::stderr().is_terminal() {
            Reporter::Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                bars: Mutex::new(HashMap::new()),
            }
        } else {
            Reporter::ErrLines(Mutex::new(HashMap::new()))
        }
    }

    fn line(&self, s: String) {
        if let Reporter::ErrLines(_) = self {
            let _ = writeln!(std::io::stderr().lock(), "{s}");
        } else {
            let _ = writeln!(std::io::stdout().lock(), "{s}");
        }
    }
}

fn style_bytes() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg:<12} [{bar:30}] {bytes}/{total_bytes} {rate}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
        // indicatif's own rate estimate starts from a single instant sample and shows
        // absurd GiB/s on the first tick; average over the bar's life instead.
        .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let secs = s.elapsed().as_secs_f64();
            if secs >= 0.2 {
                let _ = write!(w, "{}/s", HumanBytes((s.pos() as f64 / secs) as u64));
            }
        })
}

fn style_text() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg}").unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Progress for Reporter {
    fn resolved(&self, reference: &str, manifest: &Digest, platform: &str) {
        match self {
            Reporter::Quiet => {}
            Reporter::Lines(_) | Reporter::ErrLines(_) => self.line(format!(
                "Pulling {reference} ({platform}) manifest {manifest}"
            )),
            Reporter::Bars { multi, .. } => {
                let _ = multi.println(format!(
                    "Pulling {reference} ({platform}) manifest {manifest}"
                ));
            }
        }
    }

    fn layers(&self, layers: &[Descriptor]) {
        if let Reporter::Bars { multi, bars } = self {
            if let Ok(mut b) = bars.lock() {
                for l in layers {
                    let pb = multi.add(ProgressBar::new(l.size));
                    pb.set_style(style_text());
                    pb.set_prefix(l.digest.short().to_string());
                    pb.set_message("Waiting");
                    b.insert(l.digest.clone(), pb);
                }
            }
        }
    }

    fn layer(&self, layer: &Digest, state: LayerState) {
        match self {
            Reporter::Quiet => {}
            Reporter::Lines(seen) | Reporter::ErrLines(seen) => {
                let word = match state {
                    LayerState::Waiting => "Waiting",
                    LayerState::Exists => "Already exists",
                    LayerState::Downloading { remote: true, .. } => "Downloading and unpacking",
                    LayerState::Downloading { remote: false, .. } => "Unpacking",
                    LayerState::Verifying => "Verifying",
                    LayerState::Done => "Pull complete",
                };
                // One line per phase change, not per chunk.
                let changed = seen
                    .lock()
                    .map(|mut m| m.insert(layer.clone(), word) != Some(word))
                    .unwrap_or(true);
                if changed {
                    self.line(format!("{}: {word}", layer.short()));
                }
            }
            Reporter::Bars { bars, .. } => {
                let Ok(b) = bars.lock() else { return };
                let Some(pb) = b.get(layer) else { return };
                match state {
                    LayerState::Waiting => pb.set_message("Waiting"),
                    LayerState::Exists => {
                        pb.set_style(style_text());
                        pb.finish_with_message("Already exists");
                    }
                    LayerState::Downloading {
                        done,
                        total,
                        remote,
                    } => {
                        // Bytes are unpacked as they arrive: one bar covers both.
                        let word = if remote { "Fetch+unpack" } else { "Unpacking" };
                        if pb.message() != word {
                            pb.set_style(style_bytes());
                            pb.set_length(total);
                            pb.reset_elapsed();
                            pb.set_message(word);
                        }
                        pb.set_position(done);
                    }
                    LayerState::Verifying => pb.set_message("Verifying"),
                    LayerState::Done => {
                        pb.set_style(style_text());
                        pb.finish_with_message("Pull complete");
                    }
                }
            }
        }
    }
}
