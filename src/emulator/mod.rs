//! A strict RouterOS 7.20 REST emulator, in-process on loopback: used by the tests and by
//! `uplinkd demo`. The one emulator of the repository.
//!
//! SKELETON (issue 2, item 7).
