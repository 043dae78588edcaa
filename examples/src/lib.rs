//! What the example programs share: the connections (the built-in simulators by default, real
//! servers when the environment names them), the three flows composed from `sync-core`, and the
//! warehouse that ships orders in the simulated ERP.
//!
//! The flows live in [`flows`]: each function is the whole composition of one flow — a source,
//! a declarative mapping file from `examples/mappings/`, a sink, and the flow's options — and is
//! the place to start when you build a flow of your own.

pub mod flows;
pub mod systems;
pub mod warehouse;

pub use systems::Systems;

/// A boxed error: the example programs report and exit.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Prints one line per run report: what was read and what happened to it.
pub fn print_report(report: &sync_core::RunReport) {
    let c = &report.counts;
    println!(
        "{:<11} read {:>4} · created {:>4} · updated {:>4} · unchanged {:>4} · deferred {:>3} · \
         dead-lettered {:>3} · unknown {:>3} · actions {:>4} · {} ms",
        report.flow,
        c.read,
        c.created,
        c.updated,
        c.unchanged,
        c.deferred,
        c.dead_lettered,
        c.unknown + c.actions_unknown,
        c.actions_done,
        report.finished_at - report.started_at
    );
    for failure in &report.failures {
        println!("    {}: {:?}", failure.source_key, failure.outcome);
    }
}
