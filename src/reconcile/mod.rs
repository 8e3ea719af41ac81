//! Reconcile: reads the router's objects tagged `uplinkd:`, diffs them against the desired state
//! and applies the smallest set of REST writes; idempotent, periodic, one at a time.
//! [`plan`] is pure; the `reconciler` module runs it against the router. Neither spawns tasks nor reads the
//! clock (the shell, `app`, does).

pub mod plan;

pub use plan::Request;
pub use plan::{Menu, Observed, Plan, RosId, Switch, Target, Want, plan};
