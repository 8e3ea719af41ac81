//! The command line. Each subcommand maps to one function; `main` only dispatches.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// uplinkd: multi-WAN load balancing and failover for MikroTik RouterOS v7.
///
/// Runs in a RouterOS container (or on another Linux host for routers without containers),
/// probes every WAN through its own veth, and switches routes and PCC rules through the
/// router's REST API when a WAN fails or recovers.
#[derive(Debug, Parser)]
#[command(name = "uplinkd", version, about, long_about)]
pub struct Cli {
    /// Configuration file (TOML). UPLINKD_* environment variables (RouterOS /container envs)
    /// override it; without a file the environment alone must be complete.
    #[arg(long, short, global = true, env = "UPLINKD_CONFIG")]
    pub config: Option<PathBuf>,

    /// Log level: error, warn, info, debug, trace.
    #[arg(long, global = true, default_value = "info")]
    pub log: tracing::Level,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: probe every WAN, fail over and back through the router's REST API.
    Run,
    /// Validate the configuration and print it as it will be used (secrets shown as ***), then
    /// check its traffic rules, policies and tiers: one `warning: ...` or `error: ...` line per
    /// finding on stderr (stdout stays the configuration alone). Exits non-zero on any error.
    Check {
        /// Fail on warnings too (shadowed but redundant rules, unused policies and lists, ...).
        #[arg(long)]
        strict: bool,
    },
    /// Show what `run` would change on the router right now, without changing anything.
    Plan,
    /// Import the base config after showing what it changes (as `plan`). With `[router]
    /// apply_base = "manual"` (the default) this is the only way it gets onto the router.
    Apply,
    /// Replay a fault scenario (TOML) through the real health engine in virtual time, and print
    /// the timeline with detection and recovery times. Use it to tune thresholds.
    Simulate {
        /// Scenario file.
        file: PathBuf,
    },
    /// Print the running daemon's state like `mwan3 status`: each WAN's state, since when and
    /// why, loss/RTT/jitter per target, the last reconcile and undelivered alerts.
    Status {
        /// Status endpoint of the daemon (default: the config's `[status] listen`, else
        /// http://127.0.0.1:9180).
        #[arg(long)]
        url: Option<String>,
    },
    /// Send ICMP echoes through one probe path, with the same device- and source-bound socket
    /// the daemon uses for a WAN: checks a WAN's veth after install, or a cross-built binary.
    /// Exits non-zero when nothing answers. Changes no route.
    Probe {
        /// Interface to bind to (default: the one that holds --source).
        #[arg(long, short = 'I')]
        interface: Option<String>,
        /// Source address (the WAN's probe address on its veth).
        #[arg(long, short)]
        source: std::net::Ipv4Addr,
        /// Number of echoes.
        #[arg(long, short = 'n', default_value_t = 3)]
        count: u16,
        /// Milliseconds between echoes.
        #[arg(long, default_value_t = 500)]
        interval_ms: u64,
        /// Milliseconds to wait for each reply.
        #[arg(long, default_value_t = 1000)]
        timeout_ms: u64,
        /// ICMP socket kind: datagram first then raw (auto), or only one.
        #[arg(long, value_enum, default_value = "auto")]
        socket: ProbeSocket,
        /// Address to probe.
        target: std::net::Ipv4Addr,
    },
    /// Read the router's HTTPS certificate and print its SHA-256 fingerprint as `[rest]
    /// pin_sha256` takes it; with --write, set it (and trust = "pin-sha256") in a config file,
    /// keeping the rest of the file. Trust on first use: the certificate is accepted unchecked
    /// for this one connection, which sends no request; compare the fingerprint with the one the
    /// install script printed on the router's terminal.
    Pin {
        /// The router's REST address as this machine reaches it: https://ROUTER[:PORT].
        #[arg(long)]
        url: String,
        /// Config file to write the pin into.
        #[arg(long, value_name = "CONFIG")]
        write: Option<PathBuf>,
        /// Milliseconds to wait for the connection and each step of the handshake.
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
    },
    /// Explain a new connection offline, from the configuration alone: which mangle stage or
    /// traffic rule decides it, which policy, and by which WANs it leaves now (all WANs up) and,
    /// with --if-down, while the named WANs are down.
    Explain {
        /// Source address.
        #[arg(long)]
        src: std::net::Ipv4Addr,
        /// Destination address.
        #[arg(long)]
        dst: std::net::Ipv4Addr,
        /// Protocol.
        #[arg(long, value_parser = ["tcp", "udp", "icmp"], default_value = "tcp")]
        protocol: String,
        /// Destination port (tcp and udp).
        #[arg(long)]
        port: Option<u16>,
        /// Interface it arrives on (default: the [lan] bridge, else "bridge").
        #[arg(long)]
        in_interface: Option<String>,
        /// A WAN assumed down (repeatable).
        #[arg(long, value_name = "WAN")]
        if_down: Vec<String>,
        /// Print JSON instead of sentences.
        #[arg(long)]
        json: bool,
    },
    /// Print a RouterOS script rendered from the configuration, to import on the router:
    /// `install` (veths, probe routing, REST user, the container) or `base` (LAN, WAN routing,
    /// PCC, NAT, firewall, hardening; the daemon also keeps it applied by itself). No password
    /// is ever printed; none is needed to render.
    Render {
        /// Which script.
        #[arg(value_enum)]
        script: RenderScript,
        /// Target RouterOS release (some property names differ); default: the config's
        /// router.version.
        #[arg(long, value_parser = ["7.20", "7.21"])]
        routeros: Option<String>,
        /// install: the container image tar, uploaded to the router's files.
        #[arg(long, default_value = "uplinkd.tar")]
        image_file: String,
        /// install: pull the image from a registry instead (`ghcr.io/owner/uplinkd:0.1.0`).
        #[arg(long)]
        remote_image: Option<String>,
        /// install: router directory of the container's state mount.
        #[arg(long, default_value = "uplinkd/state")]
        state_src: String,
        /// install: router directory the image is extracted to (a USB disk on small boards).
        #[arg(long, default_value = "uplinkd/root")]
        root_dir: String,
    },
}

/// The scripts `render` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RenderScript {
    Install,
    Base,
}

/// `probe --socket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbeSocket {
    Auto,
    Datagram,
    Raw,
}

impl From<ProbeSocket> for crate::probe::icmp::KindPreference {
    fn from(s: ProbeSocket) -> Self {
        use crate::probe::icmp::{KindPreference, SocketKind};
        match s {
            ProbeSocket::Auto => KindPreference::Auto,
            ProbeSocket::Datagram => KindPreference::Only(SocketKind::Datagram),
            ProbeSocket::Raw => KindPreference::Only(SocketKind::Raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The binary is the router build: the demo is `cargo run --example demo`, not a subcommand.
    #[test]
    fn help_lists_no_demo() {
        let mut help = Vec::new();
        Cli::command().write_long_help(&mut help).unwrap();
        let help = String::from_utf8(help).unwrap();
        let listed = help.lines().any(|l| l.trim_start().starts_with("demo "));
        assert!(!listed, "{help}");
        assert!(help.lines().any(|l| l.trim_start().starts_with("render ")));
    }
}
