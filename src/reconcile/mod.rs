//! Reconcile: reads the router's objects tagged `uplinkd:`, diffs them against the desired state
//! and applies the smallest set of REST writes; idempotent, periodic, one at a time.
//! `plan` is pure; the task that runs it lives in `task`.
//!
//! SKELETON (issue 2, item 6).
