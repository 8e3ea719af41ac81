//! uplinkd: multi-WAN load balancing and failover for MikroTik RouterOS v7.
//!
//! Layers, from the inside out (imports point inward; `scripts/layers.py` checks there is no
//! cycle):
//! - pure core, no I/O and no clock: [`health`], [`policy`], [`engine`] (every link, the
//!   decision and the outage book, as one sans-IO machine), [`reconcile`] (the plan), [`rsc`],
//!   [`format`](mod@format) (every sentence), [`notify::schedule`], [`status`] (model and text rendering);
//! - edges: [`router`] (the one router port, over the [`routeros`] REST client), [`probe`]
//!   (ICMP), the [`notify`] channels; [`clock`] is the only place the time is read;
//! - shell: [`reconciler`] (the reconcile task), [`bus`] (events, services, shutdown), [`app`]
//!   (the daemon's loop: the only place its tasks are spawned and its channels owned), the
//!   services (`notify::service`, `status::service`), and [`cmd`], the composition root that
//!   `main` dispatches to;
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
pub mod explain;
pub mod format;
pub mod health;
pub mod logging;
pub mod naming;
pub mod notify;
pub mod pin;
pub mod policy;
pub mod policy_check;
pub mod probe;
pub mod reconcile;
pub mod reconciler;
pub mod router;
pub mod routeros;
pub mod rsc;
pub mod simulate;
pub mod status;
pub mod traffic;
pub mod types;
