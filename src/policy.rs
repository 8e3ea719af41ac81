//! Policy: link states → the desired router state. Which WANs carry traffic (their routes and PCC
//! rules on), PCC buckets per WAN by weight, the preferred WAN. Never turns off the last WAN: with
//! every WAN down all are enabled, so the first that returns carries traffic at once. Pure.
//!
//! SKELETON (issue 2, item 4).
