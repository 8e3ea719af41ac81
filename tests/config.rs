//! Configuration: the shipped example against the seed's documented defaults, every bad input
//! naming its key, the environment scheme, `uplinkd check` through the binary, and no panic on
//! any input (property tests).

#[path = "support/mutate.rs"]
mod mutate;
use mutate::{mutate, value_strategy};

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ipnet::Ipv4Net;
use proptest::prelude::*;
use uplinkd::config::{
    Addressing, ApplyBase, Config, ConfigError, EXAMPLE, EmailTls, Env, Mode, PccClassifier,
    RouterOsVersion, Trust, WebhookKind,
};
use uplinkd::routeros::tls;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn pw() -> Env {
    Env::empty().with("UPLINKD_REST_PASSWORD", "pw")
}

/// A certificate pin, as `uplinkd pin` writes it.
const PIN: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// What a user adds to the shipped example before `check`: the REST password and, once the
/// install script made the certificate, its pin.
fn example_env() -> Env {
    pw().with("UPLINKD_REST_PIN_SHA256", PIN)
}

/// Two small WANs; cases add or replace lines.
const BASE: &str = r#"
[[wan]]
name = "ISP1"
interface = "ether1"
address = "192.168.0.3/24"
gateway = "192.168.0.1"
monitors = ["9.9.9.9", "4.2.2.2"]

[[wan]]
name = "ISP2"
interface = "ether2"
address = "192.168.20.3/24"
gateway = "192.168.20.1"
monitors = ["9.9.9.9", "4.2.2.2"]
"#;

fn load(text: &str, env: &Env) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, env)
}

// ---------------------------------------------------------------------------------------------
// The shipped example

#[test]
fn example_matches_the_seed_defaults_field_by_field() {
    let c = load(EXAMPLE, &example_env()).unwrap();
    // seed-inventory §1: lISP1Name, lWAN1Interface, lWAN1Address + lWAN1Subnet, lWAN1Gateway,
    // lISP1MonitorIP1/2, lLBRatio1 ...
    assert_eq!(c.wans.len(), 2);
    let (w1, w2) = (&c.wans[0], &c.wans[1]);
    assert_eq!(w1.id.as_str(), "ISP1");
    assert_eq!(w1.label, "Primary-ISP");
    assert_eq!(w1.interface, "ether1");
    match &w1.addressing {
        Addressing::Static { address, gateway } => {
            assert_eq!(*address, "192.168.0.3/24".parse::<Ipv4Net>().unwrap());
            assert_eq!(*gateway, ip("192.168.0.1"));
        }
        other => panic!("ISP1 addressing {other:?}"),
    }
    assert_eq!(w1.monitors, vec![ip("45.90.28.0"), ip("208.67.222.222")]);
    assert_eq!(w1.weight, 1);
    assert_eq!(w1.priority, 1);
    assert_eq!(w1.probe.veth, "uplinkd-wan1");
    assert_eq!(w1.probe.router_address, ip("172.31.255.1"));
    assert_eq!(w1.probe.source, ip("172.31.255.2"));
    assert_eq!(w1.probe.prefix_len, 30);

    assert_eq!(w2.id.as_str(), "ISP2");
    assert_eq!(w2.label, "Backup-ISP");
    assert_eq!(w2.interface, "ether2");
    match &w2.addressing {
        Addressing::Static { address, gateway } => {
            assert_eq!(*address, "192.168.20.3/24".parse::<Ipv4Net>().unwrap());
            assert_eq!(*gateway, ip("192.168.20.1"));
        }
        other => panic!("ISP2 addressing {other:?}"),
    }
    assert_eq!(w2.monitors, vec![ip("9.9.9.9"), ip("4.2.2.2")]);
    assert_eq!(w2.weight, 1, "PCC 1:1 (lLBRatio1/2)");
    assert_eq!(w2.priority, 2);
    assert_eq!(w2.probe.veth, "uplinkd-wan2");
    assert_eq!(w2.probe.router_address, ip("172.31.255.5"));
    assert_eq!(w2.probe.source, ip("172.31.255.6"));

    // lPreferredISP = ISP1; PCC both-addresses-and-ports as the seed's mangle.
    assert_eq!(c.balance.preferred.as_str(), "ISP1");
    assert_eq!(c.balance.pcc, PccClassifier::BothAddressesAndPorts);

    // The seed declares a WAN down only when both monitors fail: quorum 1.
    assert_eq!(c.health.quorum, 1);
    assert_eq!(
        c.health,
        uplinkd::health::Params::default(),
        "the default profile"
    );

    // LAN: lLANInterface, lLANAddress, lLANPort1..3, lDHCPPoolRange, lDNSServers.
    let lan = c.lan.as_ref().expect("[lan] present");
    assert_eq!(lan.bridge, "bridge-lan");
    assert_eq!(lan.ports, vec!["ether3", "ether4", "ether5"]);
    assert_eq!(lan.address, "192.168.100.1/24".parse::<Ipv4Net>().unwrap());
    assert_eq!(
        lan.dhcp_pool,
        (ip("192.168.100.100"), ip("192.168.100.200"))
    );
    assert_eq!(
        lan.dns_servers,
        vec![ip("1.1.1.1"), ip("1.0.0.1"), ip("8.8.8.8"), ip("8.8.4.4")]
    );
    let s = c.sections;
    assert!(s.lan && s.dhcp && s.dns && s.firewall && s.mss_clamp && s.ntp);
    // The seed hardened services and disabled IPv6 router-wide; uplinkd asks first (issue 10.2).
    assert!(
        !s.hardening && !s.ipv6_off,
        "router-wide settings are opt-in"
    );

    // lNotifyDelay1/2 = 60 and 360 minutes; memory alarm at 90 % as check-memory.
    assert!(c.alerts.on_failure);
    assert!(c.alerts.on_recovery);
    assert_eq!(
        c.alerts.reminders,
        vec![Duration::from_secs(60 * 60), Duration::from_secs(360 * 60)]
    );
    assert_eq!(c.alerts.memory_percent, Some(90));
    assert_eq!(c.alerts.cpu_percent, None);
    assert!(c.email.is_none(), "e-mail is commented out until filled in");
    assert!(c.webhooks.is_empty());

    // Router side.
    assert_eq!(c.router.version, RouterOsVersion::V7_20);
    assert_eq!(c.router.mode, Mode::Container);
    assert_eq!(
        c.router.apply_base,
        ApplyBase::Manual,
        "the daemon imports nothing by itself unless asked"
    );
    assert_eq!(c.router.rest.url, "https://172.31.255.1");
    assert_eq!(c.router.rest.user, "uplinkd");
    assert_eq!(c.router.rest.password.expose(), "pw");
    // The example chooses the pin and leaves it to `uplinkd pin` (it exists only after the
    // install script ran); here it came from UPLINKD_REST_PIN_SHA256.
    assert!(EXAMPLE.contains("\ntrust = \"pin-sha256\"\n"));
    assert!(!EXAMPLE.lines().any(|l| l.starts_with("pin_sha256")));
    assert!(
        matches!(c.router.rest.trust, Trust::PinnedSha256(p) if tls::hex(&p) == PIN),
        "{:?}",
        c.router.rest.trust
    );
    assert_eq!(c.router.rest.timeout, Duration::from_secs(5));
    assert_eq!(c.status.listen, Some("127.0.0.1:9180".parse().unwrap()));
    assert_eq!(c.state_dir, PathBuf::from("/var/lib/uplinkd"));
    assert_eq!(c.reconcile.resync_interval, Duration::from_secs(60));
}

#[test]
fn example_keeps_the_password_out_of_the_file() {
    assert!(
        !EXAMPLE
            .lines()
            .any(|l| l.trim_start().starts_with("password"))
    );
    let e = load(EXAMPLE, &Env::empty()).unwrap_err();
    assert!(matches!(e, ConfigError::Missing { .. }), "{e}");
    assert_eq!(e.key(), "rest.password");
}

#[test]
fn the_example_is_what_the_defaults_give() {
    // Every value the example spells out is also the default, except the seed's own data (WANs,
    // LAN, preferred): the example documents, it does not change behaviour.
    let minimal = format!(
        "{BASE_EX}\n[lan]\nbridge = \"bridge-lan\"\nports = [\"ether3\", \"ether4\", \"ether5\"]\n\
         address = \"192.168.100.1/24\"\ndhcp_pool = \"192.168.100.100-192.168.100.200\"\n\
         dns_servers = [\"1.1.1.1\", \"1.0.0.1\", \"8.8.8.8\", \"8.8.4.4\"]\n",
        BASE_EX = r#"
[[wan]]
name = "ISP1"
label = "Primary-ISP"
interface = "ether1"
address = "192.168.0.3/24"
gateway = "192.168.0.1"
monitors = ["45.90.28.0", "208.67.222.222"]
[[wan]]
name = "ISP2"
label = "Backup-ISP"
interface = "ether2"
address = "192.168.20.3/24"
gateway = "192.168.20.1"
monitors = ["9.9.9.9", "4.2.2.2"]
"#
    );
    let a = load(EXAMPLE, &example_env()).unwrap();
    let b = load(&minimal, &example_env()).unwrap();
    assert_eq!(a.effective(), b.effective());
}

#[test]
fn example_helper_and_demo_override() {
    let c = Config::example();
    assert_eq!(c.wans.len(), 2);
    // The demo points the REST client at the in-process emulator over loopback HTTP.
    let env = pw()
        .with("UPLINKD_REST_URL", "http://127.0.0.1:18728")
        .with("UPLINKD_REST_TRUST", "plain-http");
    let c = load(EXAMPLE, &env).unwrap();
    assert_eq!(c.router.rest.url, "http://127.0.0.1:18728");
    assert!(matches!(c.router.rest.trust, Trust::PlainHttp));
}

// ---------------------------------------------------------------------------------------------
// Every bad input: one error, naming the key, saying what was expected

#[derive(Debug, Clone, Copy)]
enum K {
    Syntax,
    Env,
    Unknown,
    Missing,
    Invalid,
    Conflict,
    Type,
    SecretFile,
}

fn kind(e: &ConfigError) -> K {
    match e {
        ConfigError::ReadFile { .. } => panic!("no file read here: {e}"),
        ConfigError::Syntax { .. } => K::Syntax,
        ConfigError::Env { .. } => K::Env,
        ConfigError::UnknownKey { .. } => K::Unknown,
        ConfigError::Missing { .. } => K::Missing,
        ConfigError::Invalid { .. } => K::Invalid,
        ConfigError::Conflict { .. } => K::Conflict,
        ConfigError::Type { .. } => K::Type,
        ConfigError::SecretFile { .. } => K::SecretFile,
    }
}

/// `(what, toml (BASE with changes), env, expected key, expected kind)`.
type BadCase = (
    &'static str,
    String,
    Vec<(&'static str, &'static str)>,
    &'static str,
    K,
);

/// One bad input per row.
/// A toml starting with `!` replaces BASE entirely.
#[rustfmt::skip]
fn bad_cases() -> Vec<BadCase> {
    let with_wan1 = |extra: &str| BASE.replacen("monitors = [\"9.9.9.9\", \"4.2.2.2\"]", &format!("monitors = [\"9.9.9.9\", \"4.2.2.2\"]\n{extra}"), 1);
    let replace = |from: &str, to: &str| BASE.replacen(from, to, 1);
    vec![
        ("toml syntax", format!("{BASE}\n[rest\n"), vec![], "the configuration", K::Syntax),
        ("unknown top-level key", format!("colour = \"red\"\n{BASE}"), vec![], "colour", K::Unknown),
        ("unknown key in a WAN", with_wan1("monitor = \"1.2.3.4\""), vec![], "wan[1].monitor", K::Unknown),
        ("unknown key in [rest]", format!("{BASE}\n[rest]\npasswd = \"x\"\n"), vec![], "rest.passwd", K::Unknown),
        ("unknown health key", format!("{BASE}\n[health]\nintervall = \"1s\"\n"), vec![], "health.intervall", K::Unknown),
        ("no WAN at all", "!".into(), vec![], "wan[1].name", K::Missing),
        ("missing interface", replace("interface = \"ether1\"\n", ""), vec![], "wan[1].interface", K::Missing),
        ("missing monitors", replace("monitors = [\"9.9.9.9\", \"4.2.2.2\"]\n", ""), vec![], "wan[1].monitors", K::Missing),
        ("empty monitors", replace("monitors = [\"9.9.9.9\", \"4.2.2.2\"]", "monitors = []"), vec![], "wan[1].monitors", K::Invalid),
        ("bad WAN name", replace("name = \"ISP1\"", "name = \"ISP 1\""), vec![], "wan[1].name", K::Invalid),
        ("two WANs with one name", replace("name = \"ISP2\"", "name = \"isp1\""), vec![], "wan[2].name", K::Conflict),
        ("two WANs on one interface", replace("interface = \"ether2\"", "interface = \"ether1\""), vec![], "wan[2].interface", K::Conflict),
        ("bad address", replace("192.168.0.3/24", "192.168.0.300/24"), vec![], "wan[1].address", K::Invalid),
        ("address without prefix", replace("192.168.0.3/24", "192.168.0.3"), vec![], "wan[1].address", K::Invalid),
        ("network address as host", replace("192.168.0.3/24", "192.168.0.0/24"), vec![], "wan[1].address", K::Invalid),
        ("gateway outside the subnet", replace("gateway = \"192.168.0.1\"", "gateway = \"10.0.0.1\""), vec![], "wan[1].gateway", K::Invalid),
        ("gateway missing", replace("gateway = \"192.168.0.1\"\n", ""), vec![], "wan[1].gateway", K::Missing),
        ("dhcp with an address", with_wan1("addressing = \"dhcp\""), vec![], "wan[1].address", K::Conflict),
        ("unknown addressing", with_wan1("addressing = \"slaac\""), vec![], "wan[1].addressing", K::Invalid),
        ("pppoe without user", replace("address = \"192.168.0.3/24\"\ngateway = \"192.168.0.1\"", "addressing = \"pppoe\""), vec![], "wan[1].pppoe_user", K::Missing),
        ("pppoe without password", replace("address = \"192.168.0.3/24\"\ngateway = \"192.168.0.1\"", "addressing = \"pppoe\"\npppoe_user = \"u\""), vec![], "wan[1].pppoe_password", K::Missing),
        ("bad monitor", replace("monitors = [\"9.9.9.9\", \"4.2.2.2\"]", "monitors = [\"9.9.9.9\", \"dns.quad9\"]"), vec![], "wan[1].monitors[2]", K::Invalid),
        ("duplicate monitor", replace("monitors = [\"9.9.9.9\", \"4.2.2.2\"]", "monitors = [\"9.9.9.9\", \"9.9.9.9\"]"), vec![], "wan[1].monitors[2]", K::Conflict),
        ("broadcast monitor", replace("monitors = [\"9.9.9.9\", \"4.2.2.2\"]", "monitors = [\"255.255.255.255\"]"), vec![], "wan[1].monitors[1]", K::Invalid),
        ("monitors not a list", replace("monitors = [\"9.9.9.9\", \"4.2.2.2\"]", "monitors = \"9.9.9.9\""), vec![], "wan[1].monitors", K::Type),
        ("weight zero", with_wan1("weight = 0"), vec![], "wan[1].weight", K::Invalid),
        ("weight negative", with_wan1("weight = -1"), vec![], "wan[1].weight", K::Invalid),
        ("weight too big", with_wan1("weight = 1000"), vec![], "wan[1].weight", K::Invalid),
        ("weight a string", with_wan1("weight = \"two\""), vec![], "wan[1].weight", K::Type),
        ("tier zero", with_wan1("tier = 0"), vec![], "wan[1].tier", K::Invalid),
        ("tier too high", with_wan1("tier = 10"), vec![], "wan[1].tier", K::Invalid),
        ("env tier not a number", BASE.into(), vec![("UPLINKD_WAN2_TIER", "backup")], "UPLINKD_WAN2_TIER", K::Invalid),
        ("promote_on unknown", format!("{BASE}\n[balance]\npromote_on = \"slow\"\n"), vec![], "balance.promote_on", K::Invalid),
        ("handback unknown", format!("{BASE}\n[balance]\nhandback = \"keep\"\n"), vec![], "balance.handback", K::Invalid),
        ("veth name too long", with_wan1("probe_veth = \"uplinkd-wan-primary\""), vec![], "wan[1].probe_veth", K::Invalid),
        ("shared veth with different router addresses", format!("{}probe_veth = \"uplinkd\"\n", with_wan1("probe_veth = \"uplinkd\"")), vec![], "wan[2].probe_router_address", K::Conflict),
        ("probe source outside the veth subnet", with_wan1("probe_source = \"172.31.254.2\""), vec![], "wan[1].probe_source", K::Invalid),
        ("probe source equals the router end", with_wan1("probe_source = \"172.31.255.1\""), vec![], "wan[1].probe_source", K::Conflict),
        ("overlapping veth subnets", format!("{BASE}probe_router_address = \"172.31.255.1\"\nprobe_source = \"172.31.255.3\"\nprobe_prefix_len = 29\n"), vec![], "wan[2].probe_router_address", K::Conflict),
        ("quorum above the number of monitors", format!("{BASE}\n[health]\nquorum = 3\n"), vec![], "health.quorum", K::Invalid),
        ("quorum zero", format!("{BASE}\n[health]\nquorum = 0\n"), vec![], "health.quorum", K::Invalid),
        ("zero interval", format!("{BASE}\n[health]\ninterval = \"0s\"\n"), vec![], "health.interval", K::Invalid),
        ("interval not a duration", format!("{BASE}\n[health]\ninterval = \"fast\"\n"), vec![], "health.interval", K::Type),
        ("no REST credentials", BASE.into(), vec![("UPLINKD_REST_USER", "admin")], "rest.password", K::Missing),
        ("empty REST password", BASE.into(), vec![("UPLINKD_REST_PASSWORD", "")], "UPLINKD_REST_PASSWORD", K::Invalid),
        ("http URL without plain-http", format!("{BASE}\n[rest]\nurl = \"http://172.31.255.1\"\n"), vec![], "rest.url", K::Conflict),
        ("plain-http with an https URL", format!("{BASE}\n[rest]\ntrust = \"plain-http\"\n"), vec![], "rest.trust", K::Conflict),
        ("URL with /rest", format!("{BASE}\n[rest]\nurl = \"https://172.31.255.1/rest\"\n"), vec![], "rest.url", K::Invalid),
        ("URL that is not one", format!("{BASE}\n[rest]\nurl = \"172.31.255.1\"\n"), vec![], "rest.url", K::Invalid),
        ("ftp URL", format!("{BASE}\n[rest]\nurl = \"ftp://172.31.255.1\"\n"), vec![], "rest.url", K::Invalid),
        ("remote mode without URL", format!("{BASE}\n[router]\nmode = \"remote\"\n"), vec![], "rest.url", K::Missing),
        ("unknown mode", format!("{BASE}\n[router]\nmode = \"cloud\"\n"), vec![], "router.mode", K::Invalid),
        ("unknown apply_base", format!("{BASE}\n[router]\napply_base = \"always\"\n"), vec![], "router.apply_base", K::Invalid),
        ("unsupported RouterOS version", format!("{BASE}\n[router]\nversion = \"6.49\"\n"), vec![], "router.version", K::Invalid),
        ("bad pin", format!("{BASE}\n[rest]\npin_sha256 = \"AB:CD\"\n"), vec![], "rest.pin_sha256", K::Invalid),
        ("pin and CA file", format!("{BASE}\n[rest]\npin_sha256 = \"{}\"\nca_file = \"/ca.pem\"\n", "ab".repeat(32)), vec![], "rest.pin_sha256", K::Conflict),
        ("trust pin without a pin", format!("{BASE}\n[rest]\ntrust = \"pin-sha256\"\n"), vec![], "rest.pin_sha256", K::Missing),
        ("unknown trust", format!("{BASE}\n[rest]\ntrust = \"yes\"\n"), vec![], "rest.trust", K::Invalid),
        ("zero REST timeout", format!("{BASE}\n[rest]\ntimeout = \"0s\"\n"), vec![], "rest.timeout", K::Invalid),
        ("unknown preferred WAN", format!("{BASE}\n[balance]\npreferred = \"ISP3\"\n"), vec![], "balance.preferred", K::Invalid),
        ("unknown PCC classifier", format!("{BASE}\n[balance]\npcc = \"random\"\n"), vec![], "balance.pcc", K::Invalid),
        ("DHCP section without [lan]", format!("{BASE}\n[sections]\ndhcp = true\n"), vec![], "sections.dhcp", K::Conflict),
        ("LAN address missing", format!("{BASE}\n[lan]\nbridge = \"b\"\n"), vec![], "lan.address", K::Missing),
        ("DHCP pool outside the LAN", format!("{BASE}\n[lan]\naddress = \"192.168.100.1/24\"\ndhcp_pool = \"10.0.0.2-10.0.0.9\"\ndns_servers = [\"1.1.1.1\"]\n"), vec![], "lan.dhcp_pool", K::Invalid),
        ("DHCP pool holding the router", format!("{BASE}\n[lan]\naddress = \"192.168.100.1/24\"\ndhcp_pool = \"192.168.100.1-192.168.100.9\"\ndns_servers = [\"1.1.1.1\"]\n"), vec![], "lan.dhcp_pool", K::Conflict),
        ("bad DNS server", format!("{BASE}\n[lan]\naddress = \"192.168.100.1/24\"\ndhcp_pool = \"192.168.100.10-192.168.100.20\"\ndns_servers = [\"1.1.1.1\", \"one\"]\n"), vec![], "lan.dns_servers[2]", K::Invalid),
        // Configs that resolve but would break routing (issue 10.5).
        ("gateway is the network address", replace("gateway = \"192.168.0.1\"", "gateway = \"192.168.0.0\""), vec![], "wan[1].gateway", K::Invalid),
        ("gateway is the broadcast address", replace("gateway = \"192.168.0.1\"", "gateway = \"192.168.0.255\""), vec![], "wan[1].gateway", K::Invalid),
        ("loopback monitor", replace("monitors = [\"9.9.9.9\", \"4.2.2.2\"]", "monitors = [\"127.0.0.1\"]"), vec![], "wan[1].monitors[1]", K::Invalid),
        ("LAN port that is a WAN", format!("{BASE}\n[lan]\naddress = \"192.168.100.1/24\"\ndhcp_pool = \"192.168.100.10-192.168.100.20\"\ndns_servers = [\"1.1.1.1\"]\nports = [\"ether3\", \"ether2\"]\n"), vec![], "lan.ports[2]", K::Conflict),
        ("LAN bridge named like a WAN port", format!("{BASE}\n[lan]\naddress = \"192.168.100.1/24\"\ndhcp_pool = \"192.168.100.10-192.168.100.20\"\ndns_servers = [\"1.1.1.1\"]\nbridge = \"ether1\"\n"), vec![], "lan.bridge", K::Conflict),
        ("LAN overlapping a WAN", format!("{BASE}\n[lan]\naddress = \"192.168.20.1/23\"\ndhcp_pool = \"192.168.20.10-192.168.20.20\"\ndns_servers = [\"1.1.1.1\"]\n"), vec![], "lan.address", K::Conflict),
        ("LAN overlapping the veths", format!("{BASE}\n[lan]\naddress = \"172.31.0.1/16\"\ndhcp_pool = \"172.31.0.10-172.31.0.20\"\ndns_servers = [\"1.1.1.1\"]\n"), vec![], "lan.address", K::Conflict),
        ("probe veth named like a WAN port", with_wan1("probe_veth = \"ether2\""), vec![], "wan[1].probe_veth", K::Conflict),
        ("probe veth named like the management veth", with_wan1("probe_veth = \"uplinkd-mgmt\""), vec![], "wan[1].probe_veth", K::Conflict),
        ("reminders not ascending", format!("{BASE}\n[alerts]\nreminders = [\"6h\", \"1h\"]\n"), vec![], "alerts.reminders[2]", K::Invalid),
        ("memory percent above 100", format!("{BASE}\n[alerts]\nmemory_percent = 150\n"), vec![], "alerts.memory_percent", K::Invalid),
        ("e-mail without recipients", format!("{BASE}\n[email]\nserver = \"smtp.example.com\"\nfrom = \"r@example.com\"\n"), vec![], "email.to", K::Missing),
        ("e-mail bad recipient", format!("{BASE}\n[email]\nserver = \"smtp.example.com\"\nfrom = \"r@example.com\"\nto = [\"admin\"]\n"), vec![], "email.to[1]", K::Invalid),
        ("e-mail password in clear", format!("{BASE}\n[email]\nserver = \"s\"\ntls = \"none\"\nuser = \"u\"\nfrom = \"r@e.com\"\nto = [\"a@e.com\"]\n"), vec![("UPLINKD_EMAIL_PASSWORD", "p")], "email.tls", K::Conflict),
        ("e-mail user without password", format!("{BASE}\n[email]\nserver = \"s\"\nuser = \"u\"\nfrom = \"r@e.com\"\nto = [\"a@e.com\"]\n"), vec![], "email.password", K::Missing),
        ("telegram without chat id", format!("{BASE}\n[[webhook]]\nkind = \"telegram\"\n"), vec![], "webhook[1].chat_id", K::Missing),
        ("telegram without token", format!("{BASE}\n[[webhook]]\nkind = \"telegram\"\nchat_id = \"42\"\n"), vec![], "webhook[1].token", K::Missing),
        ("webhook bad URL", format!("{BASE}\n[[webhook]]\nkind = \"json\"\nurl = \"hooks\"\n"), vec![], "webhook[1].url", K::Invalid),
        ("webhook unknown kind", format!("{BASE}\n[[webhook]]\nkind = \"slack\"\n"), vec![], "webhook[1].kind", K::Invalid),
        ("status listen bad", format!("{BASE}\n[status]\nlisten = \"localhost\"\n"), vec![], "status.listen", K::Invalid),
        ("relative state_dir", format!("state_dir = \"state\"\n{BASE}"), vec![], "state_dir", K::Invalid),
        ("resync below a second", format!("{BASE}\n[reconcile]\nresync_interval = \"10ms\"\n"), vec![], "reconcile.resync_interval", K::Invalid),
        ("[[wan]] written as a table", "![wan]\nname = \"ISP1\"\n".into(), vec![], "wan", K::Type),
        // The environment.
        ("unknown variable", BASE.into(), vec![("UPLINKD_REST_PASWORD", "x")], "UPLINKD_REST_PASWORD", K::Env),
        ("unknown section variable", BASE.into(), vec![("UPLINKD_WANS", "2")], "UPLINKD_WANS", K::Env),
        ("WAN number zero", BASE.into(), vec![("UPLINKD_WAN0_NAME", "x")], "UPLINKD_WAN0_NAME", K::Env),
        ("WAN number with a gap", BASE.into(), vec![("UPLINKD_WAN4_NAME", "ISP4")], "UPLINKD_WAN4_NAME", K::Env),
        ("WAN number too large", BASE.into(), vec![("UPLINKD_WAN99999999_NAME", "x")], "UPLINKD_WAN99999999_NAME", K::Env),
        ("env weight not a number", BASE.into(), vec![("UPLINKD_WAN1_WEIGHT", "abc")], "UPLINKD_WAN1_WEIGHT", K::Invalid),
        ("env weight zero", BASE.into(), vec![("UPLINKD_WAN1_WEIGHT", "0")], "UPLINKD_WAN1_WEIGHT", K::Invalid),
        ("env bad boolean", BASE.into(), vec![("UPLINKD_SECTIONS_NTP", "maybe")], "UPLINKD_SECTIONS_NTP", K::Invalid),
        ("env bad monitor item", BASE.into(), vec![("UPLINKD_WAN2_MONITORS", "1.2.3.4,x")], "UPLINKD_WAN2_MONITORS (wan[2].monitors[2])", K::Invalid),
        ("env bad health value", BASE.into(), vec![("UPLINKD_HEALTH_INTERVAL", "soon")], "UPLINKD_HEALTH_INTERVAL", K::Type),
        ("env unknown health key", BASE.into(), vec![("UPLINKD_HEALTH_SPEED", "1")], "UPLINKD_HEALTH_SPEED", K::Env),
        ("env quorum above monitors", BASE.into(), vec![("UPLINKD_HEALTH_QUORUM", "5")], "UPLINKD_HEALTH_QUORUM", K::Invalid),
        ("env password and password file", BASE.into(), vec![("UPLINKD_REST_PASSWORD", "x"), ("UPLINKD_REST_PASSWORD_FILE", "/nonexistent")], "UPLINKD_REST_PASSWORD", K::Conflict),
        ("env secret file missing", BASE.into(), vec![("UPLINKD_REST_PASSWORD_FILE", "/nonexistent/pw")], "UPLINKD_REST_PASSWORD_FILE", K::SecretFile),
        ("env over a non-table", format!("rest = 5\n{BASE}"), vec![("UPLINKD_REST_URL", "https://r")], "rest", K::Invalid),
        ("env http URL without plain-http", BASE.into(), vec![("UPLINKD_REST_URL", "http://127.0.0.1:8080")], "UPLINKD_REST_URL", K::Conflict),
        ("env WAN created without interface", BASE.into(), vec![("UPLINKD_WAN3_NAME", "ISP3")], "wan[3].interface", K::Missing),
    ]
}

#[test]
fn every_bad_input_names_its_key() {
    let mut failures = Vec::new();
    for (what, text, vars, key, want) in bad_cases() {
        let text = match text.strip_prefix('!') {
            Some(t) => t.to_string(),
            None => text,
        };
        let mut env = pw();
        for (k, v) in &vars {
            env = env.with(*k, *v);
        }
        if vars
            .iter()
            .any(|(k, _)| k.starts_with("UPLINKD_REST_PASSWORD"))
            || what == "no REST credentials"
        {
            // These cases set (or omit) the password themselves.
            env = vars.iter().fold(Env::empty(), |e, (k, v)| e.with(*k, *v));
        }
        match load(&text, &env) {
            Ok(_) => failures.push(format!("{what}: accepted")),
            Err(e) => {
                let msg = e.to_string();
                println!("{what}:\n    {msg}");
                if e.key() != key {
                    failures.push(format!("{what}: key {:?}, want {key:?} ({msg})", e.key()));
                } else if std::mem::discriminant(&kind(&e)) != std::mem::discriminant(&want) {
                    failures.push(format!(
                        "{what}: kind {:?}, want {want:?} ({msg})",
                        kind(&e)
                    ));
                } else if !msg.starts_with(key) {
                    failures.push(format!(
                        "{what}: message does not start with the key: {msg}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn messages_say_what_was_expected() {
    let e = load(
        &BASE.replacen(
            "gateway = \"192.168.0.1\"",
            "gateway = \"192.168.0.1\"\nweight = 0",
            1,
        ),
        &pw(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "wan[1].weight: expected a whole number from 1 to 100, got 0"
    );
    let e = load(&format!("{BASE}\n[health]\nquorum = 3\n"), &pw()).unwrap_err();
    assert!(e.to_string().contains("at most 2"), "{e}");
    let e = load(BASE, &Env::empty()).unwrap_err();
    assert!(e.to_string().contains("UPLINKD_REST_PASSWORD_FILE"), "{e}");
    let e = load(&format!("{BASE}\n[rest]\npasswd = \"x\"\n"), &pw()).unwrap_err();
    assert!(
        e.to_string().contains("password_file"),
        "lists the known keys: {e}"
    );
    let e = load(BASE, &pw().with("UPLINKD_REST_PASWORD", "x")).unwrap_err();
    assert!(
        e.to_string().contains("UPLINKD_REST_PASSWORD_FILE"),
        "lists the known variables: {e}"
    );
    let e = load(BASE, &pw().with("UPLINKD_WAN1_WEIGHT", "heavy")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "UPLINKD_WAN1_WEIGHT: expected a whole number, got \"heavy\""
    );
}

#[test]
fn secrets_never_appear_in_errors_or_output() {
    let secret = "s3cr3t-Value";
    let env = Env::empty()
        .with("UPLINKD_REST_PASSWORD", secret)
        .with("UPLINKD_EMAIL_PASSWORD", secret);
    let text = format!(
        "{BASE}\n[email]\nserver = \"smtp.example.com\"\nuser = \"u\"\nfrom = \"r@example.com\"\nto = [\"a@example.com\"]\n\
         [[webhook]]\nkind = \"telegram\"\nchat_id = \"42\"\ntoken = \"{secret}\"\n"
    );
    let c = load(&text, &env).unwrap();
    assert_eq!(
        c.email
            .as_ref()
            .unwrap()
            .password
            .as_ref()
            .unwrap()
            .expose(),
        secret
    );
    let shown = c.effective();
    assert!(!shown.contains(secret), "{shown}");
    assert!(!format!("{c:?}").contains(secret));
    assert_eq!(shown.matches("\"***\"").count(), 3, "{shown}");
    // An error after the secrets were read does not carry them either.
    let e = load(&format!("{text}\n[status]\nlisten = \"x\"\n"), &env).unwrap_err();
    assert!(!e.to_string().contains(secret));
}

// ---------------------------------------------------------------------------------------------
// The environment scheme

fn env_only() -> Env {
    Env::from_pairs([
        ("UPLINKD_REST_PASSWORD", "pw"),
        ("UPLINKD_WAN1_NAME", "ISP1"),
        ("UPLINKD_WAN1_INTERFACE", "ether1"),
        ("UPLINKD_WAN1_ADDRESS", "192.168.0.3/24"),
        ("UPLINKD_WAN1_GATEWAY", "192.168.0.1"),
        ("UPLINKD_WAN1_MONITORS", "45.90.28.0, 208.67.222.222"),
        ("UPLINKD_WAN2_NAME", "ISP2"),
        ("UPLINKD_WAN2_INTERFACE", "pppoe-out1"),
        ("UPLINKD_WAN2_ADDRESSING", "pppoe"),
        ("UPLINKD_WAN2_PPPOE_USER", "me@isp"),
        ("UPLINKD_WAN2_PPPOE_PASSWORD", "pp"),
        ("UPLINKD_WAN2_MONITORS", "9.9.9.9,4.2.2.2"),
        ("UPLINKD_WAN2_WEIGHT", "2"),
        ("UPLINKD_HEALTH_INTERVAL", "500ms"),
        ("UPLINKD_HEALTH_QUORUM", "2"),
        ("UPLINKD_HEALTH_BROWNOUT_LOSS_FAIL", "20"),
        ("UPLINKD_HEALTH_BROWNOUT_LOSS_RECOVER", "10.5"),
        ("UPLINKD_ALERTS_REMINDERS", "30m,2h"),
        ("UPLINKD_SECTIONS_FIREWALL", "no"),
        ("UPLINKD_STATUS_LISTEN", "off"),
        ("UPLINKD_STATE_DIR", "/data"),
        ("UPLINKD_CONFIG", "/ignored/by/the/layer"),
        ("PATH", "/bin"),
    ])
}

#[test]
fn the_environment_alone_is_a_complete_config() {
    let c = load("", &env_only()).unwrap();
    assert_eq!(c.wans.len(), 2);
    assert_eq!(
        c.wans[0].monitors,
        vec![ip("45.90.28.0"), ip("208.67.222.222")]
    );
    match &c.wans[1].addressing {
        Addressing::Pppoe {
            user,
            password,
            service,
        } => {
            assert_eq!(user, "me@isp");
            assert_eq!(password.expose(), "pp");
            assert_eq!(*service, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.wans[1].weight, 2);
    assert_eq!(c.health.interval, Duration::from_millis(500));
    assert_eq!(c.health.quorum, 2);
    let loss = c.health.brownout_loss.expect("brown-out loss set");
    assert_eq!((loss.fail, loss.recover), (20.0, 10.5));
    assert_eq!(
        c.alerts.reminders,
        vec![Duration::from_secs(1800), Duration::from_secs(7200)]
    );
    assert!(!c.sections.firewall);
    assert!(!c.sections.lan, "no [lan]: LAN sections default off");
    assert!(c.lan.is_none());
    assert_eq!(c.status.listen, None);
    assert_eq!(c.state_dir, PathBuf::from("/data"));
    // Also through `load` without a file.
    assert_eq!(
        uplinkd::config::load(None, &env_only()).unwrap().wans.len(),
        2
    );
}

#[test]
fn the_environment_overrides_the_file_key_by_key() {
    let env = example_env()
        .with("UPLINKD_WAN1_WEIGHT", "3")
        .with("UPLINKD_WAN2_MONITORS", "1.1.1.1")
        .with("UPLINKD_WAN1_LABEL", "Fibre")
        .with("UPLINKD_BALANCE_PREFERRED", "ISP2")
        .with("UPLINKD_ALERTS_MEMORY_PERCENT", "0");
    let c = load(EXAMPLE, &env).unwrap();
    assert_eq!(c.wans[0].weight, 3);
    assert_eq!(c.wans[0].label, "Fibre");
    assert_eq!(c.wans[0].interface, "ether1", "untouched keys stay");
    assert_eq!(
        c.wans[1].monitors,
        vec![ip("1.1.1.1")],
        "a list is replaced whole"
    );
    assert_eq!(c.balance.preferred.as_str(), "ISP2");
    assert_eq!(c.alerts.memory_percent, None, "0 turns it off");
}

#[test]
fn the_environment_adds_a_third_wan() {
    let env = example_env()
        .with("UPLINKD_WAN3_NAME", "LTE")
        .with("UPLINKD_WAN3_INTERFACE", "lte1")
        .with("UPLINKD_WAN3_ADDRESSING", "dhcp")
        .with("UPLINKD_WAN3_MONITORS", "9.9.9.9");
    let c = load(EXAMPLE, &env).unwrap();
    assert_eq!(c.wans.len(), 3);
    let w = &c.wans[2];
    assert!(matches!(w.addressing, Addressing::Dhcp));
    assert_eq!(w.priority, 3);
    assert_eq!(w.probe.veth, "uplinkd-wan3");
    assert_eq!(w.probe.router_address, ip("172.31.255.9"));
    assert_eq!(w.probe.source, ip("172.31.255.10"));
}

#[test]
fn every_documented_variable_is_accepted() {
    // Each variable of the scheme, with the number 1, is recognised (it may still fail on its
    // value, but never as an unknown variable).
    for var in uplinkd::config::env::known_variables() {
        let var = var.replace("<n>", "1");
        let env = pw().with(var.clone(), "x");
        if let Err(ConfigError::Env { var: v, problem }) = load(EXAMPLE, &env) {
            panic!("{var} rejected as {v}: {problem}");
        }
    }
}

#[test]
fn docs_list_every_variable() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/config.md"))
        .expect("docs/config.md");
    let missing: Vec<String> = uplinkd::config::env::known_variables()
        .into_iter()
        .filter(|v| !docs.contains(v.as_str()))
        .collect();
    assert!(missing.is_empty(), "docs/config.md lacks {missing:?}");
}

#[test]
fn secrets_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rest-password");
    std::fs::write(&file, "from-file\n").unwrap();
    let env = Env::empty().with("UPLINKD_REST_PASSWORD_FILE", file.display().to_string());
    let c = load(BASE, &env).unwrap();
    assert_eq!(
        c.router.rest.password.expose(),
        "from-file",
        "the trailing newline is dropped"
    );

    // A file key in the TOML, overridden by the inline variable.
    let text = format!("{BASE}\n[rest]\npassword_file = \"{}\"\n", file.display());
    assert_eq!(
        load(&text, &Env::empty())
            .unwrap()
            .router
            .rest
            .password
            .expose(),
        "from-file"
    );
    assert_eq!(
        load(&text, &pw()).unwrap().router.rest.password.expose(),
        "pw"
    );

    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let e = load(
        BASE,
        &Env::empty().with("UPLINKD_REST_PASSWORD_FILE", empty.display().to_string()),
    )
    .unwrap_err();
    assert!(matches!(e, ConfigError::SecretFile { .. }), "{e}");
    assert_eq!(e.key(), "UPLINKD_REST_PASSWORD_FILE");
    let e = load(
        BASE,
        &Env::empty().with("UPLINKD_REST_PASSWORD_FILE", "/nonexistent/pw"),
    )
    .unwrap_err();
    assert!(matches!(e, ConfigError::SecretFile { .. }), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Topologies and the other sections

#[test]
fn one_veth_carrying_one_source_per_wan() {
    let text = format!(
        "{}probe_veth = \"uplinkd\"\nprobe_router_address = \"172.31.255.1\"\nprobe_source = \"172.31.255.3\"\nprobe_prefix_len = 29\n",
        BASE.replacen(
            "monitors = [\"9.9.9.9\", \"4.2.2.2\"]",
            "monitors = [\"9.9.9.9\", \"4.2.2.2\"]\nprobe_veth = \"uplinkd\"\nprobe_router_address = \"172.31.255.1\"\nprobe_source = \"172.31.255.2\"\nprobe_prefix_len = 29",
            1
        )
    );
    let c = load(&text, &pw()).unwrap();
    assert_eq!(c.wans[0].probe.veth, c.wans[1].probe.veth);
    assert_eq!(c.wans[0].probe.source, ip("172.31.255.2"));
    assert_eq!(c.wans[1].probe.source, ip("172.31.255.3"));
    // The same source twice is refused.
    let dup = text.replace("172.31.255.3", "172.31.255.2");
    assert_eq!(load(&dup, &pw()).unwrap_err().key(), "wan[2].probe_source");
}

#[test]
fn trust_choices() {
    let pin_colons = (0..32)
        .map(|i| format!("{i:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let pin_plain = (0..32).map(|i| format!("{i:02x}")).collect::<String>();
    let expected: [u8; 32] = std::array::from_fn(|i| i as u8);
    for pin in [&pin_colons, &pin_plain] {
        let c = load(&format!("{BASE}\n[rest]\npin_sha256 = \"{pin}\"\n"), &pw()).unwrap();
        assert!(matches!(c.router.rest.trust, Trust::PinnedSha256(p) if p == expected));
    }
    let c = load(
        BASE,
        &pw().with("UPLINKD_REST_CA_FILE", "/etc/uplinkd/ca.pem"),
    )
    .unwrap();
    assert!(
        matches!(&c.router.rest.trust, Trust::CaFile(p) if p == &PathBuf::from("/etc/uplinkd/ca.pem"))
    );
    let c = load(
        &format!(
            "{BASE}\n[router]\nmode = \"remote\"\n[rest]\nurl = \"https://router.lan:8443/\"\n"
        ),
        &pw(),
    )
    .unwrap();
    assert_eq!(
        c.router.rest.url, "https://router.lan:8443",
        "trailing slash dropped"
    );
    assert!(matches!(c.router.rest.trust, Trust::WebPki));
    assert_eq!(c.router.mode, Mode::Remote);
}

#[test]
fn apply_base_is_manual_unless_auto_is_written() {
    let c = load(BASE, &pw()).unwrap();
    assert_eq!(c.router.apply_base, ApplyBase::Manual);
    let c = load(&format!("{BASE}\n[router]\napply_base = \"auto\"\n"), &pw()).unwrap();
    assert_eq!(c.router.apply_base, ApplyBase::Auto);
    assert!(
        c.effective().contains("apply_base = \"auto\""),
        "{}",
        c.effective()
    );
    let c = load(BASE, &pw().with("UPLINKD_ROUTER_APPLY_BASE", "auto")).unwrap();
    assert_eq!(
        c.router.apply_base,
        ApplyBase::Auto,
        "the environment overlay reaches it"
    );
}

#[test]
fn alerts_email_and_webhooks() {
    let text = format!(
        "{BASE}\n[email]\nserver = \"smtp.example.com\"\ntls = \"implicit\"\nuser = \"u\"\nfrom = \"r@example.com\"\nto = [\"a@example.com\", \"b@example.com\"]\n\
         [[webhook]]\nkind = \"ntfy\"\nurl = \"https://ntfy.example.com/router\"\n\
         [[webhook]]\nkind = \"telegram\"\nchat_id = \"-100\"\n"
    );
    let env = pw()
        .with("UPLINKD_EMAIL_PASSWORD", "mail")
        .with("UPLINKD_WEBHOOK2_TOKEN", "bot:token");
    let c = load(&text, &env).unwrap();
    let e = c.email.unwrap();
    assert_eq!((e.tls, e.port), (EmailTls::Implicit, 465));
    assert_eq!(e.to.len(), 2);
    assert_eq!(c.webhooks[0].kind, WebhookKind::Ntfy);
    assert_eq!(c.webhooks[0].token, None);
    assert_eq!(
        c.webhooks[1].kind,
        WebhookKind::Telegram {
            chat_id: "-100".into()
        }
    );
    assert_eq!(c.webhooks[1].url, "https://api.telegram.org");
    assert_eq!(c.webhooks[1].token.as_ref().unwrap().expose(), "bot:token");
}

// ---------------------------------------------------------------------------------------------
// `uplinkd check` through the binary

fn uplinkd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_uplinkd"));
    // The test runner's own UPLINKD_* (UPLINKD_TEST_STRICT) must not leak into the child.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("UPLINKD_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

#[test]
fn check_prints_the_effective_config_with_secrets_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, EXAMPLE).unwrap();
    let out = uplinkd()
        .args(["check", "--config"])
        .arg(&path)
        .env("UPLINKD_REST_PASSWORD", "do-not-print-me")
        .env("UPLINKD_REST_PIN_SHA256", PIN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("do-not-print-me"));
    for line in [
        "password = \"***\"",
        "name = \"ISP1\"",
        "monitors = [\"9.9.9.9\", \"4.2.2.2\"]",
        "interval = \"200ms\"",
        "down_evidence = 18.0",
        "reminders = [\"1h\", \"6h\"]",
        "listen = \"127.0.0.1:9180\"",
    ] {
        assert!(stdout.contains(line), "{line} missing in\n{stdout}");
    }
    // The printed config is itself a valid config that resolves to the same thing.
    let again = load(&stdout, &pw()).unwrap();
    assert_eq!(again.effective(), stdout);
}

#[test]
fn check_fails_with_the_key_on_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, EXAMPLE.replacen("weight = 1", "weight = 0", 1)).unwrap();
    let out = uplinkd()
        .args(["check", "-c"])
        .arg(&path)
        .env("UPLINKD_REST_PASSWORD", "x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("wan[1].weight"), "{stderr}");
    assert!(out.stdout.is_empty());

    // Config path from UPLINKD_CONFIG, an unknown variable named.
    let out = uplinkd()
        .arg("check")
        .env("UPLINKD_CONFIG", &path)
        .env("UPLINKD_REST_PASSWORD", "x")
        .env("UPLINKD_WAN1_WIEGHT", "2")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("UPLINKD_WAN1_WIEGHT"));

    // A missing file.
    let out = uplinkd()
        .args(["check", "-c", "/nonexistent/uplinkd.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/uplinkd.toml"));
}

// ---------------------------------------------------------------------------------------------
// No panic on any input

fn env_strategy() -> impl Strategy<Value = Vec<(String, String)>> {
    let names: Vec<String> = uplinkd::config::env::known_variables()
        .into_iter()
        .filter(|v| !v.ends_with("_FILE"))
        .collect();
    let name = prop_oneof![
        proptest::sample::select(names)
            .prop_flat_map(|n| { (1usize..5).prop_map(move |i| n.replace("<n>", &i.to_string())) }),
        "UPLINKD_[A-Z0-9_]{0,20}",
    ];
    proptest::collection::vec((name, value_strategy()), 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = load(&text, &pw());
    }

    #[test]
    fn mutated_example_never_panics(
        ops in proptest::collection::vec((any::<u8>(), any::<usize>(), value_strategy()), 1..6),
    ) {
        let text = mutate(EXAMPLE, &ops);
        let _ = load(&text, &pw());
    }

    #[test]
    fn arbitrary_environment_never_panics(vars in env_strategy(), ops in proptest::collection::vec((any::<u8>(), any::<usize>(), value_strategy()), 0..3)) {
        let env = vars.iter().fold(Env::empty(), |e, (k, v)| e.with(k.clone(), v.clone()));
        let text = mutate(EXAMPLE, &ops);
        if let Ok(c) = load(&text, &env) {
            // Whatever resolves also prints and re-reads to the same configuration.
            let shown = c.effective();
            let again = load(&shown, &Env::empty().with("UPLINKD_REST_PASSWORD", c.router.rest.password.expose()));
            prop_assert!(again.is_ok(), "re-reading failed: {:?}\n{}", again.err(), shown);
        }
    }
}

#[test]
fn an_empty_config_path_means_the_environment_alone() {
    let c = uplinkd::config::load(Some(std::path::Path::new("")), &env_only()).unwrap();
    assert_eq!(c.wans.len(), 2);
}

#[test]
fn check_notes_webpki_against_an_ip_address() {
    let shown = load(
        &format!("{BASE}\n[rest]\nurl = \"https://192.168.88.1\"\n"),
        &pw(),
    )
    .unwrap()
    .effective();
    assert!(
        shown.contains("# note: a router reached by IP address"),
        "{shown}"
    );
    let c = load(
        &format!("{BASE}\n[rest]\nurl = \"https://router.example.net\"\n"),
        &pw(),
    )
    .unwrap();
    assert!(!c.effective().contains("# note:"));
}

#[test]
fn offline_commands_need_no_secrets() {
    use uplinkd::config::Secrets;
    let pppoe = BASE.replacen(
        "address = \"192.168.0.3/24\"\ngateway = \"192.168.0.1\"",
        "addressing = \"pppoe\"\npppoe_user = \"u\"",
        1,
    ) + "\n[[webhook]]\nkind = \"telegram\"\nchat_id = \"1\"\n";
    assert_eq!(
        load(&pppoe, &Env::empty()).unwrap_err().key(),
        "wan[1].pppoe_password"
    );
    let c = Config::from_toml_str_with(&pppoe, &Env::empty(), Secrets::NotNeeded).unwrap();
    assert!(c.router.rest.password.is_empty());
    assert!(
        matches!(&c.wans[0].addressing, Addressing::Pppoe { password, .. } if password.is_empty())
    );
    assert!(c.webhooks[0].token.as_ref().unwrap().is_empty());
    // Given secrets are still used, and everything else is still checked.
    let c = Config::from_toml_str_with(&pppoe, &pw(), Secrets::NotNeeded).unwrap();
    assert_eq!(c.router.rest.password.expose(), "pw");
    let bad = format!("{pppoe}\n[status]\nlisten = \"x\"\n");
    assert!(Config::from_toml_str_with(&bad, &Env::empty(), Secrets::NotNeeded).is_err());
    let c = uplinkd::config::load_with(
        None,
        &env_only().with("UPLINKD_REST_PASSWORD", ""),
        Secrets::NotNeeded,
    );
    assert!(c.is_err(), "an empty secret that was given is still wrong");
}

/// `trust = "pin-sha256"` before the pin exists (the install script makes the certificate, and
/// is rendered from this config): offline resolution, as `render` does it, gives a pending pin;
/// `check` and the daemon refuse, saying how to get it. Through the binary as a user meets it.
#[test]
fn a_pin_not_known_yet_renders_but_check_says_how_to_get_it() {
    use uplinkd::config::Secrets;
    let text = format!("{BASE}\n[rest]\ntrust = \"pin-sha256\"\n");
    let c = Config::from_toml_str_with(&text, &pw(), Secrets::NotNeeded).unwrap();
    assert!(
        matches!(c.router.rest.trust, Trust::PinPending),
        "{:?}",
        c.router.rest.trust
    );
    let e = load(&text, &pw()).unwrap_err();
    assert!(matches!(e, ConfigError::Missing { .. }), "{e}");
    assert_eq!(e.key(), "rest.pin_sha256");
    assert!(e.to_string().contains("uplinkd pin --url"), "{e}");
    // A client is never built from a pending pin.
    let err = uplinkd::routeros::Client::new(&c.router.rest).unwrap_err();
    assert!(err.to_string().contains("uplinkd pin"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uplinkd.toml");
    std::fs::write(&path, EXAMPLE).unwrap();
    let render = uplinkd()
        .args(["render", "install", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        render.status.success(),
        "{}",
        String::from_utf8_lossy(&render.stderr)
    );
    assert!(String::from_utf8_lossy(&render.stdout).contains("add name=uplinkd-rest"));
    let check = uplinkd()
        .args(["check", "--config"])
        .arg(&path)
        .env("UPLINKD_REST_PASSWORD", "x")
        .output()
        .unwrap();
    assert!(!check.status.success());
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        stderr.contains("rest.pin_sha256") && stderr.contains("uplinkd pin --url"),
        "{stderr}"
    );
}

/// A file that cannot be read is named once, with its cause once, by every command that reads
/// one (the cause used to be printed twice: in the message and again as its source).
#[test]
fn an_unreadable_file_is_named_with_its_cause_once() {
    let missing = "/nonexistent/uplinkd.toml";
    for args in [
        vec!["check", "--config", missing],
        vec!["render", "base", "--config", missing],
        vec!["simulate", missing],
    ] {
        let out = uplinkd().args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(missing), "{args:?}: {stderr}");
        assert_eq!(
            stderr.matches("No such file or directory").count(),
            1,
            "{args:?}: {stderr}"
        );
    }
}

/// Remote mode: one REST session carries every WAN's pings, and a ping that gets no answer holds
/// it for 500 ms. Left unset, the interval is every monitor's 500 ms, at least 2 s; set, an
/// interval the session cannot carry is refused, naming `health.interval`.
#[test]
fn remote_mode_derives_an_interval_the_rest_session_can_carry() {
    let remote = |extra: &str| {
        format!(
            "{BASE}\n[router]\nmode = \"remote\"\n[rest]\nurl = \"https://192.168.88.1\"\n{extra}"
        )
    };
    let third = "[[wan]]\nname = \"ISP3\"\ninterface = \"ether3\"\naddress = \"192.168.30.3/24\"\n\
                 gateway = \"192.168.30.1\"\nmonitors = [\"9.9.9.9\", \"4.2.2.2\", \"1.0.0.1\"]\n";
    // (config, effective interval): 2 WANs × 2 monitors; 7 monitors; a single monitor each.
    let one_each = remote("").replace(", \"4.2.2.2\"]", "]");
    for (text, want) in [
        (remote(""), Duration::from_secs(2)),
        (remote(third), Duration::from_millis(3500)),
        (one_each, Duration::from_secs(2)),
        (
            remote("[health]\ninterval = \"5s\"\n"),
            Duration::from_secs(5),
        ),
    ] {
        let c = load(&text, &pw()).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(c.health.interval, want, "{text}");
        // What `check` prints resolves to the same interval.
        assert_eq!(load(&c.effective(), &pw()).unwrap().health.interval, want);
    }
    // Container mode keeps the health core's own default.
    assert_eq!(
        load(BASE, &pw()).unwrap().health.interval,
        Duration::from_millis(200)
    );
    for (text, env) in [
        (remote("[health]\ninterval = \"1s\"\n"), pw()),
        (remote(""), pw().with("UPLINKD_HEALTH_INTERVAL", "1900ms")),
        (
            remote(third).replace("[rest]", "[health]\ninterval = \"3s\"\n[rest]"),
            pw(),
        ),
    ] {
        let e = load(&text, &env).unwrap_err().to_string();
        assert!(
            e.contains("health.interval") || e.contains("UPLINKD_HEALTH_INTERVAL"),
            "{e}"
        );
        assert!(e.contains("remote mode"), "{e}");
    }
}

#[test]
fn check_refuses_a_remote_interval_the_session_cannot_carry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let text = format!(
        "{BASE}\n[router]\nmode = \"remote\"\n[rest]\nurl = \"https://192.168.88.1\"\n\
         [health]\ninterval = \"200ms\"\n"
    );
    std::fs::write(&path, &text).unwrap();
    let check = || {
        uplinkd()
            .args(["check", "--config"])
            .arg(&path)
            .env("UPLINKD_REST_PASSWORD", "x")
            .output()
            .unwrap()
    };
    let out = check();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("health.interval"), "{stderr}");
    assert!(stderr.contains("at least 2s"), "{stderr}");
    std::fs::write(&path, text.replace("interval = \"200ms\"", "")).unwrap();
    let out = check();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("interval = \"2s\""), "{stdout}");
}

/// `[health]` durations have upper bounds (per-probe ones 60 s, state ones 1 day), each error
/// naming its key; the bounds themselves are accepted.
#[test]
fn health_durations_are_bounded_and_errors_name_the_key() {
    for (line, key) in [
        (
            "hold_down = \"25h\"\nmax_hold_down = \"1d\"",
            "health.hold_down",
        ),
        ("max_hold_down = \"25h\"", "health.max_hold_down"),
        ("flap_half_life = \"25h\"", "health.flap_half_life"),
        ("startup_grace = \"25h\"", "health.startup_grace"),
        ("max_deadline = \"61s\"", "health.max_deadline"),
        (
            "min_deadline = \"61s\"\nmax_deadline = \"60s\"",
            "health.min_deadline",
        ),
        (
            "brownout_latency = { fail = \"61s\", recover = \"1s\" }",
            "health.brownout_latency.fail",
        ),
        (
            "brownout_jitter = { fail = \"2m\", recover = \"1s\" }",
            "health.brownout_jitter.fail",
        ),
    ] {
        let e = load(&format!("{BASE}\n[health]\n{line}\n"), &pw())
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "{line}: {e}");
    }
    let at_bounds = "hold_down = \"1d\"\nmax_hold_down = \"1d\"\nflap_half_life = \"1d\"\n\
                     startup_grace = \"1d\"\nmin_deadline = \"60s\"\nmax_deadline = \"60s\"\n\
                     brownout_latency = { fail = \"60s\", recover = \"1s\" }";
    let c = load(&format!("{BASE}\n[health]\n{at_bounds}\n"), &pw()).unwrap();
    assert_eq!(c.health.hold_down, Duration::from_secs(86_400));
    assert_eq!(c.health.max_deadline, Duration::from_secs(60));
}
