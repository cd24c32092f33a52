//! oxcart-monitor: the per-container supervisor (docs/engine.md).

fn main() {
    eprintln!("oxcart-monitor: not built yet");
    std::process::exit(1);
}
