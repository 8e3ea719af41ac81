//! The commands: what `main` dispatches to, each building what it needs from the configuration
//! (the composition root). Nothing below the commands imports them.

pub mod apply;
pub mod check;
pub mod explain;
pub mod plan;
pub mod probe;
pub mod run;
pub mod status;

/// The runtime of every command: one thread (a router has few cores and the work is I/O).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
