//! `uplinkd simulate FILE`: a fault scenario through the real health core and policy in virtual
//! time; prints the timeline and detection/recovery times. Pure apart from reading the file.
//!
//! SKELETON (issue 2, item 9).
