//! Test kit for uplinkd: what the tests, the examples and the demo share, kept out of the router
//! build. A dev-dependency of `uplinkd`; it depends on `uplinkd` and on the emulator.
//!
//! - [`demo`]: the self-contained demonstration (`cargo run --example demo`);
//! - [`reasons`]: reasons as the health core gives them;
//! - [`scripted`]: a scripted prober (no network, exact under tokio's paused clock);
//! - [`testenv`]: gates for environment-dependent tests (root, programs on PATH) and their skips.

pub mod demo;
pub mod reasons;
pub mod scripted;
pub mod testenv;
