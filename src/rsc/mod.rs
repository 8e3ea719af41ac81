//! Renders the `.rsc` templates under the top-level `rsc/` (embedded in the binary) from the
//! config: the install script and the base config. Pure.
//!
//! SKELETON (issue 4).
