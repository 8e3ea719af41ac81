//! Probing: per-WAN, source- and device-bound ICMP echo (surge-ping + socket2), and the remote
//! mode in which the router pings and uplinkd reads the results.
//!
//! SKELETON (issue 3).
