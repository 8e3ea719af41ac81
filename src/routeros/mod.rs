//! The RouterOS REST client (reqwest + rustls): typed operations, all-string JSON decoded at the
//! edge, typed errors carrying RouterOS's `detail`, a timeout on every call, retries only where
//! safe.
//!
//! SKELETON (issue 2, item 5).
