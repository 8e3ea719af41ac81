//! Status: the JSON/Prometheus model of links and reconcile, and its HTTP endpoint.
//!
//! SKELETON (issue 5).
