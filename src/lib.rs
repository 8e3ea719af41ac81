//! uplinkd: multi-WAN load balancing and failover for MikroTik RouterOS v7.
//!
//! Layers, from the inside out (imports point inward):
//! - pure core, no I/O and no clock: [`health`], [`policy`], [`reconcile::plan`], [`rsc`],
//!   [`notify::schedule`], [`status`] (model and text rendering);
//! - edges: [`routeros`] (REST client), [`probe`] (ICMP), [`notify`] channels;
//! - shell: [`app`], the only module that spawns tasks, owns channels and reads the clock;
//!
//! Not in this crate (the default build is the router build): the strict RouterOS REST emulator
//! (`crates/emulator`, the tests' oracle, independent of this crate) and the test kit
//! (`crates/testkit`: the demo, the scripted prober, the test gates), both dev-dependencies.

pub mod app;
pub mod bootstrap;
pub mod bus;
pub mod cli;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod engine;
pub mod format;
pub mod health;
pub mod logging;
pub mod naming;
pub mod notify;
pub mod pin;
pub mod policy;
pub mod probe;
pub mod reconcile;
pub mod reconciler;
pub mod router;
pub mod routeros;
pub mod rsc;
pub mod simulate;
pub mod status;
pub mod types;
