//! Alerts: a pure schedule (at failure, reminders, recovery) and the channels (email, webhooks)
//! with a persistent retry queue.
//!
//! SKELETON (issue 5).
