//! The file layer: what a TOML file (after the `UPLINKD_*` overlay) may contain, exactly as
//! written. Every field is optional and every unknown key is rejected; values that need parsing
//! (addresses, durations, enums) stay strings here so the resolver can say precisely what was
//! expected. Nothing outside `config` sees these types.

use std::path::PathBuf;

use serde::Deserialize;

use crate::types::Secret;

/// The top level of `config.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub state_dir: Option<PathBuf>,
    pub router: Option<RouterFile>,
    pub rest: Option<RestFile>,
    pub wan: Option<Vec<WanFile>>,
    /// The health core's own thresholds, with its defaults for what is left out.
    pub health: Option<super::health::HealthFile>,
    pub balance: Option<BalanceFile>,
    pub lan: Option<LanFile>,
    pub sections: Option<SectionsFile>,
    pub alerts: Option<AlertsFile>,
    pub email: Option<EmailFile>,
    pub webhook: Option<Vec<WebhookFile>>,
    pub status: Option<StatusFile>,
    pub reconcile: Option<ReconcileFile>,
    /// Address lists the rules name (`[lists] servers = ["192.168.88.10/32"]`).
    pub lists: Option<std::collections::BTreeMap<String, Vec<String>>>,
    pub policy: Option<Vec<PolicyFile>>,
    pub rule: Option<Vec<RuleFile>>,
}

/// `[[policy]]`: a named way to use a set of WANs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub wans: Option<Vec<String>>,
    pub weights: Option<std::collections::BTreeMap<String, i64>>,
    pub last_resort: Option<String>,
}

/// `[[rule]]`: which new connections go to which policy.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    pub name: Option<String>,
    pub src_address: Option<String>,
    pub src_address_list: Option<String>,
    pub in_interface: Option<String>,
    pub dst_address: Option<String>,
    pub dst_address_list: Option<String>,
    pub protocol: Option<String>,
    pub dst_port: Option<PortsFile>,
    pub policy: Option<String>,
    pub sticky: Option<String>,
    pub sticky_timeout: Option<String>,
}

/// A port list as a number (`443`) or text (`"80,443,10000-20000"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum PortsFile {
    One(i64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterFile {
    pub version: Option<String>,
    pub mode: Option<String>,
    pub apply_base: Option<String>,
    pub watchdog: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestFile {
    pub url: Option<String>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    pub trust: Option<String>,
    pub pin_sha256: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WanFile {
    pub name: Option<String>,
    pub label: Option<String>,
    pub interface: Option<String>,
    pub addressing: Option<String>,
    pub address: Option<String>,
    pub gateway: Option<String>,
    pub pppoe_user: Option<String>,
    pub pppoe_password: Option<Secret>,
    pub pppoe_password_file: Option<PathBuf>,
    pub pppoe_service: Option<String>,
    pub monitors: Option<Vec<String>>,
    pub weight: Option<i64>,
    pub priority: Option<i64>,
    pub tier: Option<i64>,
    pub probe_veth: Option<String>,
    pub probe_router_address: Option<String>,
    pub probe_source: Option<String>,
    pub probe_prefix_len: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalanceFile {
    pub pcc: Option<String>,
    pub preferred: Option<String>,
    pub promote_on: Option<String>,
    pub handback: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanFile {
    pub bridge: Option<String>,
    pub ports: Option<Vec<String>>,
    pub address: Option<String>,
    pub dhcp_pool: Option<String>,
    pub dns_servers: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectionsFile {
    pub lan: Option<bool>,
    pub dhcp: Option<bool>,
    pub dns: Option<bool>,
    pub firewall: Option<bool>,
    pub hardening: Option<bool>,
    pub ipv6_off: Option<bool>,
    pub mss_clamp: Option<bool>,
    pub ntp: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsFile {
    pub on_failure: Option<bool>,
    pub reminders: Option<Vec<String>>,
    pub on_recovery: Option<bool>,
    pub memory_percent: Option<i64>,
    pub cpu_percent: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailFile {
    pub server: Option<String>,
    pub port: Option<i64>,
    pub tls: Option<String>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    pub from: Option<String>,
    pub to: Option<Vec<String>>,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookFile {
    pub kind: Option<String>,
    pub url: Option<String>,
    pub token: Option<Secret>,
    pub token_file: Option<PathBuf>,
    pub chat_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusFile {
    pub listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileFile {
    pub resync_interval: Option<String>,
}
