//! The RouterOS REST client (reqwest + rustls): typed operations over `/rest/<menu>`, RouterOS's
//! all-string JSON decoded at the edge ([`model`]) into typed rows ([`rows`]), typed errors carrying RouterOS's `detail`
//! ([`error`]), explicit TLS trust ([`tls`]), a timeout on every call and retries only where safe
//! ([`client`]). It knows nothing of WANs, tags or desired state: that is `reconcile`.

pub mod client;
pub mod error;
pub mod model;
pub mod rows;
pub mod tls;

pub use client::{CallKind, CallRecord, Client, Outcome, RetryPolicy, Stats};
pub use error::{Error, Method};
pub use model::{
    ErrorBody, ExecMode, Executed, LogLevel, Menu, Props, Query, Record, Removed, RosId, RosValue,
    ValueError,
};
