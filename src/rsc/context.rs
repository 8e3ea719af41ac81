//! Turns a [`Config`] into the flat, literal values the templates print: every name, tag,
//! distance and address is decided here, in Rust, so the templates only lay lines out.

use std::net::Ipv4Addr;
use std::time::Duration;

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::config::{Addressing, Config, Mode, PccClassifier, RouterOsVersion, Trust};
use crate::naming;
use crate::types::LinkId;

/// Interface list of the WAN interfaces (uplinkd's own, so a defconf `WAN` list is never touched).
pub(super) const WAN_LIST: &str = naming::WAN_LIST;
/// Interface list of the LAN bridge (management: MAC server, neighbour discovery).
pub(super) const LAN_LIST: &str = "uplinkd-lan";
/// Address list of destinations that must never be balanced or policy-routed.
pub(super) const LOCAL_LIST: &str = "uplinkd-local";
/// Address list of the container's probe sources (steered by routing rules, never by mangle).
pub(super) const PROBE_LIST: &str = "uplinkd-probe";
/// First distance of the failsafe routes in `main`; they are never switched.
pub(super) const FAILSAFE_DISTANCE: u32 = 250;

/// Base-config sections that the base cleanup owns (the install script's `probe` and `install`
/// sections are not among them, so a base re-import never removes the probe plumbing).
pub(super) const BASE_SECTIONS: &[&str] = &[
    "lan", "wan", "dhcp", "table", "route", "fallback", "failsafe", "list", "mangle", "pcc", "nat",
    "filter", "ipv6", "ntp", "marker", "steer", "rule",
];

/// Where the container image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// A `docker save` tar uploaded to the router's files: `uplinkd.tar`, `usb1/uplinkd.tar`.
    File(String),
    /// A registry reference: `ghcr.io/example/uplinkd:0.1.0`.
    Registry(String),
}

/// Install-script choices that are not part of the daemon's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallOptions {
    pub image: ImageSource,
    /// Router-side directory holding the container's state mount (`usb1/uplinkd`).
    pub state_src: String,
    /// Router-side directory where the image is extracted (`usb1/uplinkd-root`).
    pub root_dir: String,
}

impl Default for InstallOptions {
    fn default() -> Self {
        Self {
            image: ImageSource::File("uplinkd.tar".into()),
            state_src: "uplinkd/state".into(),
            root_dir: "uplinkd/root".into(),
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct Sections {
    lan: bool,
    dhcp: bool,
    dns: bool,
    firewall: bool,
    hardening: bool,
    ipv6_off: bool,
    mss_clamp: bool,
    ntp: bool,
}

#[derive(Debug, Serialize)]
pub(super) struct Fallback {
    tag: String,
    gateway: String,
    distance: u32,
}

#[derive(Debug, Serialize)]
pub(super) struct Wan {
    id: String,
    label: String,
    interface: String,
    /// `static`, `dhcp` or `pppoe`.
    kind: &'static str,
    /// Static only: `192.168.0.3/24`.
    address: Option<String>,
    /// Static only: `192.168.0.0/24`.
    network: Option<String>,
    /// The `gateway=` value of every route through this WAN (DHCP: the interface until the lease
    /// script writes the leased gateway).
    gateway: String,
    /// The note after the tag of every route through this WAN: the DHCP lease script finds them by it.
    gw_note: String,
    conn_mark: String,
    table: String,
    main_distance: u32,
    failsafe_distance: u32,
    main_tag: String,
    table_tag: String,
    fallbacks: Vec<Fallback>,
    /// DHCP only: the lease script, already escaped as a RouterOS string literal.
    lease_script: Option<String>,
    /// DHCP only: the one-shot that copies an already-bound lease's gateway into the routes.
    gateway_sync: Option<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct Pcc {
    wan: String,
    /// Per-connection-classifier value: `both-addresses-and-ports:4/0`.
    classifier: String,
    /// Hybrid only: the classifier of the non-TCP twin (`src-address:4/0`).
    other: Option<String>,
    conn_mark: String,
    tag: String,
}

#[derive(Debug, Serialize)]
pub(super) struct Lan {
    bridge: String,
    ports: Vec<String>,
    address: String,
    network: String,
    router_ip: String,
    pool: String,
    dns_servers: String,
}

#[derive(Debug, Serialize)]
pub(super) struct Base {
    uplinkd_version: &'static str,
    routeros: &'static str,
    cleanup_regex: String,
    sections: Sections,
    wan_list: &'static str,
    lan_list: &'static str,
    local_list: &'static str,
    probe_list: &'static str,
    wans: Vec<Wan>,
    lan: Option<Lan>,
    local_subnets: Vec<String>,
    probe_sources: Vec<String>,
    pcc: Vec<Pcc>,
    pcc_total: u32,
    /// The traffic rules' mangle lines, each a whole `add` command (`rsc::steer_line`).
    steer_lines: Vec<String>,
    /// The drop table's name when some policy's last resort is `drop`.
    blocked: Option<&'static str>,
    /// (interface, rule) of every rule with an `in_interface`: checked before anything changes.
    rule_interfaces: Vec<(String, String)>,
    /// `[lists]` entries: (list, address, tag).
    user_lists: Vec<(String, String, String)>,
    /// The REST service the daemon uses (never disabled by hardening): `www-ssl` or `www`.
    rest_service: &'static str,
    dns_servers: String,
    ntp_servers: Vec<&'static str>,
}

/// Public pool names, not addresses: RouterOS 7 resolves them (the seed replaced every NTP server).
const NTP_SERVERS: &[&str] = &["0.pool.ntp.org", "1.pool.ntp.org"];
/// Private ranges that are never balanced: VLANs, VPNs and the veths live there (seed bug B14).
const PRIVATE: &[&str] = &["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

pub(super) fn base(config: &Config) -> Result<Base, String> {
    let sections = Sections {
        lan: config.sections.lan && config.lan.is_some(),
        dhcp: config.sections.dhcp && config.sections.lan && config.lan.is_some(),
        dns: config.sections.dns,
        firewall: config.sections.firewall,
        hardening: config.sections.hardening,
        ipv6_off: config.sections.ipv6_off,
        mss_clamp: config.sections.mss_clamp,
        ntp: config.sections.ntp,
    };
    let ranked = rank(config);
    let mut wans = Vec::with_capacity(config.wans.len());
    for w in &config.wans {
        let r = ranked.iter().position(|id| *id == w.id).unwrap_or(0) as u32;
        let fallbacks = fallbacks(config, &w.id)
            .iter()
            .enumerate()
            .map(|(i, via)| Fallback {
                tag: format!(
                    "{} {}",
                    naming::tag("fallback", &format!("{}-via-{via}", w.id)),
                    gw_note(via)
                ),
                gateway: gateway_of(config, via),
                distance: 2 + i as u32,
            })
            .collect();
        let (kind, address, network) = match &w.addressing {
            Addressing::Static { address, .. } => (
                "static",
                Some(address.to_string()),
                Some(address.trunc().to_string()),
            ),
            Addressing::Dhcp => ("dhcp", None, None),
            Addressing::Pppoe { .. } => ("pppoe", None, None),
        };
        let (lease_script, gateway_sync) = if kind == "dhcp" {
            (Some(lease_script(&w.id)), Some(gateway_sync(&w.id)))
        } else {
            (None, None)
        };
        wans.push(Wan {
            id: w.id.to_string(),
            label: w.label.clone(),
            interface: w.interface.clone(),
            kind,
            address,
            network,
            gateway: gateway_of(config, &w.id),
            gw_note: gw_note(&w.id),
            conn_mark: naming::conn_mark(&w.id),
            table: naming::route_table(&w.id),
            main_distance: 1 + r,
            failsafe_distance: FAILSAFE_DISTANCE + r,
            main_tag: naming::tag(naming::SECTION_ROUTE, &format!("{}-main", w.id)),
            table_tag: naming::tag(naming::SECTION_ROUTE, &format!("{}-table", w.id)),
            fallbacks,
            lease_script,
            gateway_sync,
        });
    }

    let lan = config.lan.as_ref().filter(|_| sections.lan).map(|l| Lan {
        bridge: l.bridge.clone(),
        ports: l.ports.clone(),
        address: l.address.to_string(),
        network: l.address.trunc().to_string(),
        router_ip: l.address.addr().to_string(),
        pool: format!("{}-{}", l.dhcp_pool.0, l.dhcp_pool.1),
        dns_servers: join(&l.dns_servers),
    });

    let local_subnets: Vec<String> = local_subnets(config)?
        .iter()
        .map(|s| s.net.to_string())
        .collect();

    let (pcc, pcc_total) = pcc_rules(config);
    let cleanup_regex = cleanup_regex();
    Ok(Base {
        uplinkd_version: env!("CARGO_PKG_VERSION"),
        routeros: super::version_str(config.router.version),
        cleanup_regex,
        sections,
        wan_list: WAN_LIST,
        lan_list: LAN_LIST,
        local_list: LOCAL_LIST,
        probe_list: PROBE_LIST,
        wans,
        dns_servers: lan
            .as_ref()
            .map(|l| l.dns_servers.clone())
            .unwrap_or_default(),
        lan,
        local_subnets,
        probe_sources: probe_sources(config)
            .iter()
            .map(ToString::to_string)
            .collect(),
        pcc,
        pcc_total,
        steer_lines: steer_lines(config),
        blocked: config
            .traffic
            .policies
            .iter()
            .any(|p| p.last_resort == crate::traffic::LastResort::Drop)
            .then_some(crate::traffic::BLOCKED),
        rule_interfaces: config
            .traffic
            .rules
            .iter()
            .filter_map(|r| {
                let lan = config.lan.as_ref().map(|l| l.bridge.as_str());
                r.matcher
                    .in_interface
                    .clone()
                    // The LAN bridge is made by this very script.
                    .filter(|i| Some(i.as_str()) != lan)
                    .map(|i| (i, r.name.clone()))
            })
            .collect(),
        user_lists: config
            .traffic
            .lists
            .iter()
            .flat_map(|(name, nets)| {
                nets.iter().enumerate().map(move |(i, n)| {
                    (
                        crate::traffic::list_name(name),
                        n.to_string(),
                        naming::tag("list", &format!("user.{name}-{}", i + 1)),
                    )
                })
            })
            .collect(),
        rest_service: rest_service(config),
        ntp_servers: NTP_SERVERS.to_vec(),
    })
}

/// Where a destination of the local bypass list comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LocalOrigin {
    /// The LAN's network (a connected route of `main`).
    Lan,
    /// A static WAN's subnet (connected).
    Wan { wan: LinkId },
    /// A WAN's probe veth (container mode; connected).
    Probe { wan: LinkId },
    /// A private range that is never balanced (VLANs, VPNs): `main` routes it.
    Private,
}

impl LocalOrigin {
    /// Whether the router has an address in it, so `main` routes it as a connected network.
    pub fn connected(&self) -> bool {
        !matches!(self, LocalOrigin::Private)
    }
}

/// One destination of the `uplinkd-local` address list (the mangle's local bypass).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalSubnet {
    pub net: Ipv4Net,
    pub origin: LocalOrigin,
}

/// The local bypass list in the order the base config renders it: the LAN, the static WANs'
/// subnets, the probe veths (container mode), the private ranges; a subnet already listed is not
/// listed again (the first origin is kept).
pub fn local_subnets(config: &Config) -> Result<Vec<LocalSubnet>, String> {
    let mut out: Vec<LocalSubnet> = Vec::new();
    let mut push = |net: Ipv4Net, origin: LocalOrigin| {
        if !out.iter().any(|s| s.net == net) {
            out.push(LocalSubnet { net, origin });
        }
    };
    if config.sections.lan
        && let Some(l) = &config.lan
    {
        push(l.address.trunc(), LocalOrigin::Lan);
    }
    for w in &config.wans {
        if let Addressing::Static { address, .. } = &w.addressing {
            push(address.trunc(), LocalOrigin::Wan { wan: w.id.clone() });
        }
    }
    if config.router.mode == Mode::Container {
        for w in &config.wans {
            let net = veth_net(w.probe.router_address, w.probe.prefix_len)?;
            push(net, LocalOrigin::Probe { wan: w.id.clone() });
        }
    }
    for p in PRIVATE {
        // Invariant: PRIVATE holds literal networks.
        let net: Ipv4Net = p.parse().expect("a literal network");
        push(net, LocalOrigin::Private);
    }
    Ok(out)
}

/// The container's probe sources, which the mangle leaves alone (container mode only).
pub fn probe_sources(config: &Config) -> Vec<Ipv4Addr> {
    if config.router.mode == Mode::Container {
        config.wans.iter().map(|w| w.probe.source).collect()
    } else {
        Vec::new()
    }
}

/// The fallbacks of WAN `wan`'s own table `to-<wan>`, in distance order (2, 3, ...): every other
/// WAN by [`rank`]. Never switched.
pub fn fallbacks(config: &Config, wan: &LinkId) -> Vec<LinkId> {
    rank(config).into_iter().filter(|id| id != wan).collect()
}

/// WANs by preference: the preferred WAN first, then by priority, then in configuration order.
/// The main table's default routes (and failsafes) have distances in this order.
pub fn rank(config: &Config) -> Vec<LinkId> {
    let mut order: Vec<(bool, u32, usize, &LinkId)> = config
        .wans
        .iter()
        .enumerate()
        .map(|(i, w)| (w.id != config.balance.preferred, w.priority, i, &w.id))
        .collect();
    order.sort();
    order.into_iter().map(|(_, _, _, id)| id.clone()).collect()
}

/// The regex of the base config's removal lines: every tag of its sections.
pub(super) fn cleanup_regex() -> String {
    format!("^uplinkd:({}):", BASE_SECTIONS.join("|"))
}

fn gateway_of(config: &Config, id: &LinkId) -> String {
    match config.wans.iter().find(|w| w.id == *id) {
        Some(w) => match &w.addressing {
            // Two WANs behind identical modems (both 192.168.1.1, the most common dual-WAN
            // case): a bare address resolves through whichever interface RouterOS finds first,
            // for both WANs' tables. Bound to the interface (`gw%iface`, routeros-facts H), each
            // route leaves by its own WAN.
            Addressing::Static { gateway, .. }
                if config.wans.iter().any(|o| {
                    o.id != w.id
                        && matches!(&o.addressing, Addressing::Static { gateway: g, .. } if g == gateway)
                }) =>
            {
                format!("{gateway}%{}", w.interface)
            }
            Addressing::Static { gateway, .. } => gateway.to_string(),
            // Until the lease script writes the leased gateway; PPP links need no next hop.
            Addressing::Dhcp | Addressing::Pppoe { .. } => w.interface.clone(),
        },
        None => String::new(),
    }
}

fn gw_note(id: &LinkId) -> String {
    format!("gw:{id}")
}

/// The regex (as RouterOS sees it) selecting every uplinkd route through WAN `id`.
fn gw_regex(id: &LinkId) -> String {
    format!("^uplinkd:.* gw:{id}$")
}

/// The DHCP client's lease script: on bound, point every uplinkd route through this WAN at the
/// leased gateway. Returned escaped, ready to print after `script=`.
fn lease_script(id: &LinkId) -> String {
    let code = format!(
        ":if ($bound=1) do={{ /ip route set [find where comment~{}] gateway=$\"gateway-address\" }}",
        super::quote(&gw_regex(id))
    );
    super::quote(&code)
}

/// Only a bound lease has a gateway: before that `get ... gateway` is empty, and writing it
/// would leave every route through this WAN with `gateway=""`.
fn gateway_sync(id: &LinkId) -> String {
    let client = super::quote(&format!(
        "^{}( |$)",
        naming::tag("wan", &format!("{id}-dhcp"))
    ));
    format!(
        ":do {{ :if ([/ip dhcp-client get [find where comment~{client}] status] = \"bound\") do={{ /ip route set [find where comment~{}] gateway=[/ip dhcp-client get [find where comment~{client}] gateway] }} }} on-error={{}}",
        super::quote(&gw_regex(id)),
    )
}

fn veth_net(router: Ipv4Addr, prefix: u8) -> Result<Ipv4Net, String> {
    Ipv4Net::new(router, prefix)
        .map(|n| n.trunc())
        .map_err(|e| format!("veth prefix /{prefix}: {e}"))
}

fn join(ips: &[Ipv4Addr]) -> String {
    ips.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn rest_service(config: &Config) -> &'static str {
    match config.router.rest.trust {
        Trust::PlainHttp => "www",
        _ => "www-ssl",
    }
}

/// The traffic rules' mangle lines (`traffic::lines`), rendered.
fn steer_lines(config: &Config) -> Vec<String> {
    crate::traffic::lines(
        &config.traffic,
        config.balance.pcc.for_rules(),
        &config.wans.iter().map(|w| (w.id.clone(), w.tier)).collect(),
    )
    .iter()
    .map(super::steer_line)
    .collect()
}

/// The PCC rules in bucket order (tier by tier), and the first tier's bucket total.
fn pcc_rules(config: &Config) -> (Vec<Pcc>, u32) {
    let weights: Vec<(LinkId, u32, crate::types::Tier)> = config
        .wans
        .iter()
        .map(|w| (w.id.clone(), w.weight, w.tier))
        .collect();
    let layout = crate::traffic::pcc_layout(&weights);
    let total = layout.first().map_or(0, |b| b.total);
    let rules = layout
        .iter()
        .map(|b| {
            let (main, other) = match config.balance.pcc {
                PccClassifier::BothAddressesAndPorts => ("both-addresses-and-ports", None),
                PccClassifier::BothAddresses => ("both-addresses", None),
                PccClassifier::SrcAddress => ("src-address", None),
                PccClassifier::Hybrid => ("both-addresses-and-ports", Some("src-address")),
            };
            Pcc {
                wan: b.wan.to_string(),
                classifier: format!("{main}:{}/{}", b.total, b.index),
                other: other.map(|o: &str| format!("{o}:{}/{}", b.total, b.index)),
                conn_mark: naming::conn_mark(&b.wan),
                tag: naming::tag(naming::SECTION_PCC, &format!("{}-{}", b.wan, b.index)),
            }
        })
        .collect();
    (rules, total)
}

#[derive(Debug, Serialize)]
pub(super) struct Veth {
    wan: String,
    name: String,
    router_address: String,
    router_ip: String,
    container_address: String,
    subnet: String,
    interface: String,
}

/// One WAN's probe table, its default route and the rule pinning probe sources to it.
#[derive(Debug, Serialize)]
pub(super) struct ProbeRoute {
    wan: String,
    table: String,
    gateway: String,
    gw_note: String,
    /// `src-address=` of the pin rule; `None` for a remote DHCP/PPPoE WAN (uplinkd sets it).
    pin: Option<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct Install {
    /// PPPoE WANs' client names: the script names them (routes, masquerade), so they must exist
    /// before it runs (docs/install.md, step 4b).
    pppoe_interfaces: Vec<String>,
    /// Container mode with `[router] watchdog` set: the router's netwatch entry that restores
    /// every WAN when the container stops answering.
    watchdog: Option<Watchdog>,
    uplinkd_version: &'static str,
    routeros: &'static str,
    v7_21: bool,
    veths: Vec<Veth>,
    veth_names: String,
    /// The management veth (container mode): the container's own traffic, routed by `main`.
    mgmt: Option<Mgmt>,
    /// `/user address=`: who may log in as the REST user (empty: not restricted).
    user_addresses: String,
    /// The certificate's common name: the first address uplinkd connects to.
    common_name: String,
    /// Remote mode: no veths and no container; the router pings from each WAN's own address.
    remote: bool,
    probe_routes: Vec<ProbeRoute>,
    rest_service: &'static str,
    rest_port: u16,
    rest_user: String,
    rest_group: &'static str,
    rest_policies: &'static str,
    /// Whether the script creates and installs its own self-signed certificate: with a pin
    /// (known or not yet), not with `trust = "webpki"` or `"ca-file"` (the user's certificate).
    own_certificate: bool,
    /// Destinations that stay in `main` for the container (veths and LAN), above the pin rules.
    exempt_subnets: Vec<String>,
    image_file: Option<String>,
    remote_image: Option<String>,
    state_src: String,
    state_dst: String,
    root_dir: String,
    config_path: String,
    san: String,
}

/// The container's management veth: its default route and its resolver (`dns=`), through which
/// alerts leave by whichever WAN `main` uses, so a dead WAN's DOWN alert is not stuck behind it.
#[derive(Debug, Serialize)]
pub(super) struct Mgmt {
    name: &'static str,
    router_address: String,
    router_ip: String,
    container_address: String,
    subnet: &'static str,
    /// Every WAN interface, one masquerade each (the mgmt source leaves by whichever WAN is up).
    interfaces: Vec<String>,
}

/// A netwatch entry pinging the container's management address; when it stops answering (the
/// container stopped, crashed, or did not start after a reboot) its down-script enables every
/// switched route and PCC rule (what the daemon does when every WAN is down: the safe state), so
/// no failover outlives the daemon that made it. The daemon takes over again when it is back.
#[derive(Debug, Serialize)]
pub(super) struct Watchdog {
    host: String,
    interval: String,
    /// Quoted, ready to print after `down-script=`.
    down_script: String,
    up_script: String,
}

fn watchdog(after: Duration) -> Watchdog {
    let down = format!(
        "/ip route enable [find where comment~\"^uplinkd:route:\"]; /ip firewall mangle enable [find where comment~\"^uplinkd:(pcc|steer):\"]; :log warning \"[FAILOVER] uplinkd watchdog: the container has not answered for {}; every WAN's routes, PCC rules and traffic-rule lines enabled until the daemon is back\"",
        humantime::format_duration(after)
    );
    let up = ":log info \"uplinkd watchdog: the container answers again; the daemon takes over\"";
    Watchdog {
        host: naming::MGMT_CONTAINER.to_string(),
        interval: format!("{}s", after.as_secs()),
        down_script: super::quote(&down),
        up_script: super::quote(up),
    }
}

/// One WAN's veth (container mode).
fn veth(w: &crate::config::Wan) -> Result<Veth, String> {
    let net = veth_net(w.probe.router_address, w.probe.prefix_len)?;
    if w.probe.veth.len() > naming::MAX_VETH_NAME {
        return Err(format!(
            "veth name {:?} is longer than {} characters",
            w.probe.veth,
            naming::MAX_VETH_NAME
        ));
    }
    Ok(Veth {
        wan: w.id.to_string(),
        name: w.probe.veth.clone(),
        router_address: format!("{}/{}", w.probe.router_address, w.probe.prefix_len),
        router_ip: w.probe.router_address.to_string(),
        container_address: format!("{}/{}", w.probe.source, w.probe.prefix_len),
        subnet: net.to_string(),
        interface: w.interface.clone(),
    })
}

/// The REST group's policies: read and write for routes, mangle and conntrack; `test` for
/// `/ping`; `rest-api` for the REST service itself; `api` is listed by RouterOS's own groups
/// next to `rest-api` and is kept until a device shows it is not needed (routeros-facts C).
pub(super) const REST_POLICIES: &str = "read,write,test,api,rest-api";

pub(super) fn install(config: &Config, options: &InstallOptions) -> Result<Install, String> {
    let remote = config.router.mode == Mode::Remote;
    let mut veths = Vec::new();
    if !remote {
        for w in &config.wans {
            veths.push(veth(w)?);
        }
    }
    // The probe tables and pin rules: in a container the veth's source address; in remote mode
    // the WAN's own address, static here or set by uplinkd once it has read a lease.
    let probe_routes: Vec<ProbeRoute> = config
        .wans
        .iter()
        .map(|w| ProbeRoute {
            wan: w.id.to_string(),
            table: naming::probe_table(&w.id),
            gateway: gateway_of(config, &w.id),
            gw_note: gw_note(&w.id),
            pin: match (remote, &w.addressing) {
                (false, _) => Some(format!("{}/32", w.probe.source)),
                (true, Addressing::Static { address, .. }) => {
                    Some(format!("{}/32", address.addr()))
                }
                (true, Addressing::Dhcp | Addressing::Pppoe { .. }) => None,
            },
        })
        .collect();
    let (rest_service, rest_port) = match rest_service(config) {
        "www" => ("www", 80),
        _ => ("www-ssl", 443),
    };
    let lan = config
        .lan
        .as_ref()
        .filter(|_| config.sections.lan)
        .map(|l| l.address.trunc().to_string());
    let veth_subnets: Vec<String> = veths.iter().map(|v| v.subnet.clone()).collect();
    let mgmt = (!remote).then(|| Mgmt {
        name: naming::MGMT_VETH,
        router_address: format!("{}/{}", naming::MGMT_ROUTER, naming::MGMT_PREFIX_LEN),
        router_ip: naming::MGMT_ROUTER.to_string(),
        container_address: format!("{}/{}", naming::MGMT_CONTAINER, naming::MGMT_PREFIX_LEN),
        subnet: naming::MGMT_SUBNET,
        interfaces: config.wans.iter().map(|w| w.interface.clone()).collect(),
    });
    // Destinations that stay in `main` above the pin rules: the veths and the LAN.
    let mut exempt_subnets = veth_subnets.clone();
    exempt_subnets.extend(lan.clone());
    // The REST user may log in from the veths, or (remote) from the LAN; with no LAN section the
    // remote host's address is not known here, and the user is not restricted by address.
    let user_addresses = if remote {
        lan.clone().unwrap_or_default()
    } else {
        veth_subnets.join(",")
    };
    // The certificate names the addresses uplinkd connects to.
    let (common_name, san) = if remote {
        // A parsed RestUrl always has a host.
        match config.router.rest.url.host() {
            Some(url::Host::Ipv4(ip)) => (ip.to_string(), format!("IP:{ip}")),
            Some(url::Host::Ipv6(ip)) => (ip.to_string(), format!("IP:{ip}")),
            Some(url::Host::Domain(name)) => (name.to_string(), format!("DNS:{name}")),
            None => {
                return Err(format!(
                    "router.rest.url {:?} has no host for the certificate",
                    config.router.rest.url.as_str()
                ));
            }
        }
    } else {
        let addresses: Vec<String> = config
            .wans
            .iter()
            .map(|w| w.probe.router_address.to_string())
            .collect();
        let san = addresses
            .iter()
            .map(|a| format!("IP:{a}"))
            .collect::<Vec<_>>()
            .join(",");
        (addresses[0].clone(), san)
    };
    let (image_file, remote_image) = match &options.image {
        ImageSource::File(f) => (Some(f.clone()), None),
        ImageSource::Registry(r) => (None, Some(r.clone())),
    };
    let state_dst = config.state_dir.display().to_string();
    Ok(Install {
        pppoe_interfaces: config
            .wans
            .iter()
            .filter(|w| matches!(w.addressing, Addressing::Pppoe { .. }))
            .map(|w| w.interface.clone())
            .collect(),
        watchdog: config.router.watchdog.filter(|_| !remote).map(watchdog),
        uplinkd_version: env!("CARGO_PKG_VERSION"),
        routeros: super::version_str(config.router.version),
        v7_21: config.router.version >= RouterOsVersion::V7_21,
        // The management veth first: RouterOS gives the container its default route from the
        // first interface only (routeros-facts A4), so the container's own traffic takes it.
        veth_names: mgmt
            .iter()
            .map(|m| m.name)
            .chain(veths.iter().map(|v| v.name.as_str()))
            .collect::<Vec<_>>()
            .join(","),
        mgmt,
        user_addresses,
        common_name,
        san,
        remote,
        veths,
        probe_routes,
        rest_service,
        rest_port,
        rest_user: config.router.rest.user.clone(),
        rest_group: "uplinkd",
        rest_policies: REST_POLICIES,
        // Only a pin trusts a certificate the router makes itself; with "webpki" or "ca-file"
        // www-ssl must keep the certificate the user gave it (public, or signed by their CA).
        own_certificate: matches!(
            config.router.rest.trust,
            Trust::PinnedSha256(_) | Trust::PinPending
        ),
        exempt_subnets,
        image_file,
        remote_image,
        state_src: options.state_src.clone(),
        config_path: format!("{state_dst}/uplinkd.toml"),
        state_dst,
        root_dir: options.root_dir.clone(),
    })
}
