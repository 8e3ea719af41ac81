//! Alerts: the pure schedule that decides what to say and when ([`schedule`]), the channels that
//! deliver them ([`email`], [`webhook`]), and the persistent retry queue that makes sure nothing
//! is lost ([`outbox`]). Every sentence comes from [`crate::format`], the one formatter.
//!
//! `schedule` is pure (no I/O, time is an argument). The channels and the outbox do
//! I/O but never spawn tasks or read the clock: `app` drives them with its own `now`.

pub mod email;
pub mod outbox;
pub mod schedule;
pub mod service;
pub mod webhook;

pub use crate::format::{LogLevel, LogLine};
pub use outbox::{Notifier, Outbox};
pub use schedule::{Alert, Event, LinkQuality, Policy, ResourceSample, Schedule, Severity};
