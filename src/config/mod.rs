//! Configuration: a TOML file and/or `UPLINKD_*` environment variables (RouterOS `/container envs`),
//! resolved once into the plain, validated [`Config`] below. Nothing outside this module sees an
//! `Option` that means "not given" or a raw string that still needs parsing.
//!
//! Layers, lowest first: built-in defaults, the TOML file, the environment (see [`env`] for the
//! variable scheme). Reading goes text → TOML table → environment overlay → [`file`] structs (all
//! `Option`, unknown keys rejected) → [`resolve`] (defaults, parsing, cross-checks). The first bad
//! input stops it with one [`ConfigError`] naming the key or variable. This module never talks to
//! the router or the network; it reads only the config file and the secret files it names.

pub mod env;
pub mod error;
pub mod file;
pub mod health;
mod resolve;
mod show;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::Ipv4Net;

use crate::health::Params as HealthParams;
use crate::types::{LinkId, Secret};

pub use env::Env;
pub use error::{ConfigError, KeyPath};
pub use resolve::{
    DEFAULT_MEMORY_PERCENT, DEFAULT_REMINDERS, DEFAULT_REST_TIMEOUT, DEFAULT_REST_USER,
    DEFAULT_RESYNC, DEFAULT_STATE_DIR, DEFAULT_STATUS_LISTEN, DEFAULT_STICKY_TIMEOUT,
    MAX_STICKY_TIMEOUT, MAX_WEIGHT, REMOTE_MIN_DEFAULT_INTERVAL, REMOTE_PROBE_WAIT,
    resolve_policies,
};

/// The shipped example: the seed script's defaults for two WANs. The demo runs on it (with
/// the REST URL pointed at the emulator); a test checks it field by field.
pub const EXAMPLE: &str = include_str!("../../config.example.toml");

/// Whether the secrets (REST and PPPoE passwords, Telegram tokens) must be given. The daemon and
/// `check` need them; offline commands such as `render` do not, and must not force a user to
/// hand a password to a command that never uses it. The same holds for the certificate pin,
/// which exists only once the install script has run: offline commands accept its absence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    Required,
    /// A missing required secret resolves to an empty [`Secret`], and so does one given as a
    /// `*_file` (not opened: it may exist only on the router); inline ones are still checked.
    NotNeeded,
}

/// Reads the configuration file (when given) and the environment, and resolves them.
/// Without a file, the environment alone must be complete.
pub fn load(path: Option<&Path>, env: &Env) -> Result<Config, ConfigError> {
    load_with(path, env, Secrets::Required)
}

/// [`load`], choosing whether missing secrets are an error.
pub fn load_with(path: Option<&Path>, env: &Env, secrets: Secrets) -> Result<Config, ConfigError> {
    // `UPLINKD_CONFIG=""` (the way to clear an image's default in RouterOS envs) means no file.
    match path.filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| ConfigError::ReadFile {
                path: p.to_path_buf(),
                source,
            })?;
            parse(&text, &p.display().to_string(), env, secrets)
        }
        None => parse("", "the environment", env, secrets),
    }
}

impl Config {
    /// Resolves TOML text plus the environment (tests, the demo, `load`).
    pub fn from_toml_str(text: &str, env: &Env) -> Result<Config, ConfigError> {
        parse(text, "the configuration", env, Secrets::Required)
    }

    /// [`Config::from_toml_str`], choosing whether missing secrets are an error.
    pub fn from_toml_str_with(
        text: &str,
        env: &Env,
        secrets: Secrets,
    ) -> Result<Config, ConfigError> {
        parse(text, "the configuration", env, secrets)
    }

    /// [`EXAMPLE`] with a placeholder REST password and certificate pin (the two values a user
    /// adds after the install script ran), for tests and the demo.
    pub fn example() -> Config {
        let env = Env::empty()
            .with("UPLINKD_REST_PASSWORD", "example")
            .with("UPLINKD_REST_PIN_SHA256", "0".repeat(64));
        // Invariant: the shipped example resolves; `tests/config.rs` checks it field by field.
        Config::from_toml_str(EXAMPLE, &env).expect("config.example.toml resolves")
    }

    /// The effective configuration as TOML-like text, secrets as `***` (`uplinkd check`).
    pub fn effective(&self) -> String {
        show::render(self)
    }
}

fn parse(text: &str, origin: &str, env: &Env, secrets: Secrets) -> Result<Config, ConfigError> {
    let mut table: toml::Table =
        text.parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax {
                origin: origin.to_string(),
                message: e.to_string().trim_end().to_string(),
            })?;
    let mut origins = error::Origins::default();
    env::overlay(env, &mut table, &mut origins)?;
    let file: file::FileConfig = serde_path_to_error::deserialize(toml::Value::Table(table))
        .map_err(|e| schema_error(&e, &origins))?;
    resolve::resolve(file, &origins, secrets)
}

/// A serde error (unknown key, wrong type) as one error naming its key.
fn schema_error(
    e: &serde_path_to_error::Error<toml::de::Error>,
    origins: &error::Origins,
) -> ConfigError {
    use serde_path_to_error::Segment;
    let segs = e
        .path()
        .iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(error::Seg::Index(*index)),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                Some(error::Seg::Field(key.clone()))
            }
            Segment::Unknown => None,
        })
        .collect();
    let key = KeyPath::from_segments(segs);
    let message = e.inner().message().trim().to_string();
    let name = origins.describe(&key);
    match message.strip_prefix("unknown field ") {
        Some(rest) => {
            let expected = rest
                .split_once(", expected ")
                .map_or("see docs/config.md", |(_, exp)| exp);
            ConfigError::UnknownKey {
                key: name,
                expected: format!("expected {expected}"),
            }
        }
        None => {
            let mut message = plain_words(&message);
            if let [error::Seg::Field(f)] = key.segments()
                && env::is_table_array(f)
                && message.ends_with("expected a list [...]")
            {
                message = format!("expected one or more [[{f}]] tables (double brackets)");
            }
            ConfigError::Type { key: name, message }
        }
    }
}

/// The whole resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Two or more WANs, in configuration order (the order PCC buckets are laid out in).
    pub wans: Vec<Wan>,
    /// Health thresholds: probe interval, quorum, down/up evidence, hold-down, damping, brown-out.
    pub health: HealthParams,
    /// How new connections are spread (PCC) and which WAN is preferred in the main table.
    pub balance: Balance,
    /// The router: REST endpoint and credentials, target RouterOS version, container or remote mode.
    pub router: Router,
    /// LAN side of the base config (bridge, DHCP, DNS); `None` without a `[lan]` table. Which
    /// parts are applied is in `sections`.
    pub lan: Option<Lan>,
    /// Which base-config sections are rendered and kept applied.
    pub sections: Sections,
    pub alerts: Alerts,
    pub email: Option<Email>,
    pub webhooks: Vec<Webhook>,
    pub status: Status,
    /// Where state that must survive a restart lives (the container's mount): the alert queue.
    pub state_dir: PathBuf,
    /// Reconcile cadence and REST call bounds.
    pub reconcile: Reconcile,
    /// Per-traffic rules, their policies and address lists (`[[rule]]`, `[[policy]]`,
    /// `[lists]`); empty when none are configured: the default policy alone.
    pub traffic: crate::traffic::Traffic,
}

/// One uplink.
#[derive(Debug, Clone)]
pub struct Wan {
    /// Unique short name: `ISP1`.
    pub id: LinkId,
    /// Human label: `Primary-ISP`.
    pub label: String,
    /// RouterOS interface of the WAN: `ether1`, or `pppoe-out1`.
    pub interface: String,
    pub addressing: Addressing,
    /// Monitor IPs probed through this WAN (the same IPs may serve every WAN).
    pub monitors: Vec<Ipv4Addr>,
    /// PCC buckets this WAN gets (the seed's `lLBRatio`).
    pub weight: u32,
    /// Lower is preferred: main-table default route distance order.
    pub priority: u32,
    /// Backup tier, 1 (the default) first: a WAN of tier n carries traffic only while no WAN of
    /// a lower tier can (see [`Promotion`]).
    pub tier: Tier,
    /// The probe path from the container to the router for this WAN.
    pub probe: ProbePath,
}

/// How a WAN gets its address.
#[derive(Debug, Clone)]
pub enum Addressing {
    Static {
        address: Ipv4Net,
        gateway: Ipv4Addr,
    },
    Dhcp,
    Pppoe {
        user: String,
        password: Secret,
        service: Option<String>,
    },
}

/// The container-side probe path of a WAN (design §3): a veth per WAN, a /30, router .1, us .2.
#[derive(Debug, Clone)]
pub struct ProbePath {
    /// RouterOS veth name (≤ 14 characters), also the interface name inside the container.
    pub veth: String,
    /// The router's side of the veth (the container's gateway and REST target).
    pub router_address: Ipv4Addr,
    /// Our source address for this WAN's probes.
    pub source: Ipv4Addr,
    /// Prefix length of the veth subnet (30 by default).
    pub prefix_len: u8,
}

#[derive(Debug, Clone)]
pub struct Balance {
    pub pcc: PccClassifier,
    /// WAN preferred for the main table and for router-originated traffic.
    pub preferred: LinkId,
    /// When traffic moves to the next backup tier.
    pub promote_on: Promotion,
    /// What happens to a backup tier's connections when a lower tier takes traffic back.
    pub handback: Handback,
}

pub use crate::types::{Handback, Promotion, Tier};

/// PCC classifier (`per-connection-classifier=<this>:N/k`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PccClassifier {
    BothAddressesAndPorts,
    /// Source address only: keeps one client on one WAN (banking sites, games).
    SrcAddress,
    BothAddresses,
    /// The seed's hybrid: TCP by `both-addresses-and-ports`, everything else by `src-address`
    /// (a host's UDP flows, calls and games, stay on one WAN). Two rules per bucket.
    Hybrid,
}

impl PccClassifier {
    /// The classifier as a traffic rule's balanced buckets use it.
    pub fn for_rules(self) -> crate::traffic::Classifier {
        use crate::traffic::Classifier;
        match self {
            PccClassifier::BothAddressesAndPorts => Classifier::One("both-addresses-and-ports"),
            PccClassifier::BothAddresses => Classifier::One("both-addresses"),
            PccClassifier::SrcAddress => Classifier::One("src-address"),
            PccClassifier::Hybrid => Classifier::Hybrid,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Router {
    pub rest: Rest,
    pub version: RouterOsVersion,
    pub mode: Mode,
    /// Whether the daemon may import the base config by itself (`[router] apply_base`).
    pub apply_base: ApplyBase,
    /// How long the container may stop answering before the router's watchdog restores every
    /// WAN's switched objects (`[router] watchdog`); `None` = no watchdog.
    pub watchdog: Option<Duration>,
}

/// Consent to import the rendered base config (`[router] apply_base`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyBase {
    /// The daemon never imports a base config by itself; a person applies it (the default).
    Manual,
    /// The daemon imports the base config it renders, after the user has seen it in `plan`.
    Auto,
}

/// RouterOS release the rendered scripts target (property names changed: routeros-facts A3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RouterOsVersion {
    V7_20,
    V7_21,
}

/// Where uplinkd runs and who probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// In a RouterOS container, probing through its veths.
    Container,
    /// On another host (MMIPS routers): the router probes each WAN, uplinkd reads the results.
    Remote,
}

#[derive(Debug, Clone)]
pub struct Rest {
    /// `https://172.31.255.1` (no `/rest` suffix), parsed and checked.
    pub url: crate::types::RestUrl,
    pub user: String,
    pub password: Secret,
    pub trust: Trust,
    /// Bound of one REST call.
    pub timeout: Duration,
}

impl Rest {
    /// Plain HTTP to `url` (an `http://` URL on a trusted link, or the emulator in tests).
    pub fn plain_http(
        url: crate::types::RestUrl,
        user: &str,
        password: &str,
        timeout: Duration,
    ) -> Self {
        Self {
            url,
            user: user.into(),
            password: Secret::new(password),
            trust: Trust::PlainHttp,
            timeout,
        }
    }
}

/// How the router's HTTPS certificate is trusted. Plain HTTP only when the URL says `http://`
/// and `Trust::PlainHttp` was chosen explicitly.
#[derive(Debug, Clone)]
pub enum Trust {
    /// SHA-256 of the router certificate (DER), as `/certificate print` shows it.
    PinnedSha256([u8; 32]),
    /// `trust = "pin-sha256"` with no pin yet: the state between writing the config and
    /// importing the install script, which makes the certificate. Only offline commands
    /// ([`Secrets::NotNeeded`]: `render`) resolve to it; a client refuses it.
    PinPending,
    CaFile(PathBuf),
    /// The bundled Mozilla roots (a router with a public certificate).
    WebPki,
    PlainHttp,
}

#[derive(Debug, Clone)]
pub struct Lan {
    pub bridge: String,
    pub ports: Vec<String>,
    /// Router LAN address with prefix: `192.168.100.1/24`.
    pub address: Ipv4Net,
    /// First and last address handed out. Only meaningful with `sections.dhcp`; when DHCP is
    /// off and no pool was given it is the router address twice.
    pub dhcp_pool: (Ipv4Addr, Ipv4Addr),
    pub dns_servers: Vec<Ipv4Addr>,
}

/// Base-config sections; each can be turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sections {
    pub lan: bool,
    pub dhcp: bool,
    pub dns: bool,
    pub firewall: bool,
    pub hardening: bool,
    pub ipv6_off: bool,
    pub mss_clamp: bool,
    pub ntp: bool,
}

#[derive(Debug, Clone)]
pub struct Alerts {
    pub on_failure: bool,
    /// Reminders while a WAN stays down (seed: 60 and 360 minutes).
    pub reminders: Vec<Duration>,
    pub on_recovery: bool,
    pub memory_percent: Option<u8>,
    pub cpu_percent: Option<u8>,
}

#[derive(Debug, Clone)]
pub struct Email {
    pub server: String,
    pub port: u16,
    pub tls: EmailTls,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub from: String,
    pub to: Vec<String>,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailTls {
    StartTls,
    Implicit,
    /// Only for a relay on a trusted link; credentials are never sent over it.
    None,
}

#[derive(Debug, Clone)]
pub struct Webhook {
    pub kind: WebhookKind,
    pub url: String,
    pub token: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookKind {
    Json,
    Ntfy,
    Telegram { chat_id: String },
}

#[derive(Debug, Clone)]
pub struct Status {
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct Reconcile {
    /// Periodic resync even without events (a rebooted or hand-edited router converges back).
    pub resync_interval: Duration,
}

/// serde speaks Rust (`i64`, `sequence`, `map`); the reader of a config file speaks TOML.
fn plain_words(message: &str) -> String {
    let mut out = message.to_string();
    for (from, to) in [
        ("expected i64", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected usize", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected a list [...]"),
        ("invalid type: map", "invalid type: table"),
        ("invalid type: sequence", "invalid type: list"),
    ] {
        out = out.replace(from, to);
    }
    if let Some(i) = out.find("expected struct ") {
        out.truncate(i);
        out.push_str("expected a table");
    }
    out
}
