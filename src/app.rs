//! The shell: the only module that spawns tasks, owns channels and reads the clock. Wires probes →
//! health → policy → reconcile → REST, and events → alerts, logs, status.
//!
//! SKELETON (issue 2, item 6 and 8).
