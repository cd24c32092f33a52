//! The CRI end-to-end suite: oxcart-runtime under containerd's CRI plugin, driven
//! over its gRPC socket as a kubelet drives it, with runc as the reference. Every
//! scenario runs once per runtime handler (`<scenario>::oxcart`,
//! `<scenario>::runc`). docs/kubernetes.md says what is covered and why.
//!
//! One containerd (with a registry and a CNI bridge of ours) serves all scenarios:
//! it is set up by the first scenario to run and torn down after the last, so a
//! filtered run (`cargo test -p oxcart-cri-tests -- lifecycle`) pays for it once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bench;
mod cri;
mod env;
mod pause;
mod pod;
mod scenarios;
mod stream;

use std::sync::{Arc, Mutex};

static ENV: Mutex<Option<Arc<env::Env>>> = Mutex::new(None);

/// The shared environment, set up on first use. A set-up that panicked poisons the
/// lock: every later scenario then fails naming that.
fn shared_env() -> Arc<env::Env> {
    let mut g = ENV
        .lock()
        .unwrap_or_else(|_| panic!("the CRI environment's set-up failed (see the first failure)"));
    g.get_or_insert_with(|| Arc::new(env::Env::setup())).clone()
}

fn main() {
    let mut args = libtest_mimic::Arguments::from_args();
    // The scenarios mostly wait on containerd: more than the 2 cores' worth.
    args.test_threads.get_or_insert(4);
    let mut trials = vec![];
    for (name, scenario) in scenarios::all() {
        for handler in env::HANDLERS {
            trials.push(libtest_mimic::Trial::test(
                format!("{name}::{handler}"),
                move || {
                    let env = shared_env();
                    let cri = cri::Cri::connect(&env.socket);
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        scenario(&env, &cri, handler)
                    }));
                    if let Err(p) = r {
                        eprintln!(
                            "{name}::{handler} failed; containerd's log ends:\n{}",
                            env.containerd_log_tail()
                        );
                        std::panic::resume_unwind(p);
                    }
                    Ok(())
                },
            ));
        }
    }
    // Not a test: bench/cri.sh runs it (`--ignored --exact bench`).
    trials.push(
        libtest_mimic::Trial::test("bench", || {
            let env = shared_env();
            bench::run(&env, &cri::Cri::connect(&env.socket));
            Ok(())
        })
        .with_ignored_flag(true),
    );
    let conclusion = libtest_mimic::run(&args, trials);
    // Every trial (and its clone of the Arc) is gone: this drops the last one.
    let env = ENV.lock().map(|mut g| g.take()).unwrap_or(None);
    drop(env);
    conclusion.exit();
}
