//! docs/install.md followed as a user follows it, on a router that runs RouterOS's default
//! configuration (defconf: the text of a real 7.20.1 export, tests/fixtures/defconf): the
//! documented commands typed in order (the blocks marked `<!-- test: NAME -->`), the rendered
//! install script imported, the REST user given its password, the daemon's first start
//! importing the base config with consent, then a failover and a recovery. After each journey
//! the admin still reaches WinBox, WebFig and SSH the way they did before, DNS from the LAN is
//! accepted, and the WANs are firewalled (asked of the emulator's filter oracle).

mod reconcile_support;

use docs::doc_block;
use reconcile_support::docs;

use std::net::Ipv4Addr;
use std::time::Duration;

use reconcile_support::{Daemon, defconf_emulator, wait_for, wan_is};
use uplinkd::config::{ApplyBase, Config, Env, Mode, Rest};
use uplinkd_emulator::{Emulator, EmulatorConfig, Packet, Reach, User, Verdict};

/// A hEX after its first boot: defconf imported, the admin user only.
fn defconf_router() -> Emulator {
    defconf_emulator(EmulatorConfig {
        users: vec![User::new("admin", "admin-pw")],
        ethernet: (1..=5).map(|i| format!("ether{i}")).collect(),
        ..EmulatorConfig::default()
    })
}

/// Types one terminal line: `/import file-name=` as the terminal runs it (the same `/import` as
/// over REST), anything else through the script interpreter.
fn type_line(emu: &Emulator, line: &str) {
    if let Some(file) = line.strip_prefix("/import file-name=") {
        let body = serde_json::json!({ "file-name": file.trim() }).to_string();
        let (status, reply) = emu.request("POST", "/rest/import", body.as_bytes());
        assert_eq!(status, 200, "{line}: {reply}");
    } else {
        emu.import_script(line)
            .unwrap_or_else(|e| panic!("typing {line:?}: {e}"));
    }
}

fn type_block(emu: &Emulator, name: &str) {
    for line in doc_block(name) {
        type_line(emu, &line);
    }
}

/// The password typed in step 5 (`/user set uplinkd password="..."`).
fn typed_password() -> String {
    doc_block("install-user")
        .iter()
        .find_map(|l| {
            l.strip_prefix("/user set uplinkd password=\"")
                .and_then(|r| r.split_once('"'))
                .map(|(p, _)| p.to_string())
        })
        .expect("step 5 sets the REST user's password")
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// Where an admin manages the router from: a port (bridge ports resolve to their bridge), their
/// address, and the router's address they connect to.
struct Admin {
    port: &'static str,
    src: Ipv4Addr,
    router: Ipv4Addr,
}

fn assert_admin_reaches(emu: &Emulator, admin: &Admin, when: &str) {
    for service in ["winbox", "www", "ssh"] {
        assert_eq!(
            emu.reaches_service(service, admin.port, admin.src, admin.router),
            Ok(Reach::Answers),
            "{when}: {service} from {} on {}",
            admin.src,
            admin.port
        );
    }
}

fn assert_lan_dns_accepted(emu: &Emulator, admin: &Admin) {
    for protocol in ["udp", "tcp"] {
        let verdict = emu.filter_verdict(&Packet {
            chain: "input",
            in_interface: emu.l3_interface(admin.port),
            src: admin.src,
            dst: admin.router,
            protocol,
            dst_port: Some(53),
        });
        assert!(
            matches!(verdict, Ok(Verdict::Accepted(_))),
            "DNS/{protocol} from the LAN: {verdict:?}"
        );
    }
}

/// Every WAN is firewalled: WinBox is not reachable from it, and a new connection from it
/// into the LAN that is not a port forward is dropped.
fn assert_wans_firewalled(emu: &Emulator, config: &Config, lan_host: Ipv4Addr) {
    for w in &config.wans {
        let reach = emu.reaches_service("winbox", &w.interface, ip("203.0.113.9"), lan_host);
        assert!(
            matches!(reach, Ok(Reach::Filtered(_))),
            "WinBox from {} ({}): {reach:?}",
            w.id,
            w.interface
        );
        let forward = emu.filter_verdict(&Packet {
            chain: "forward",
            in_interface: w.interface.clone(),
            src: ip("203.0.113.9"),
            dst: lan_host,
            protocol: "tcp",
            dst_port: Some(445),
        });
        assert!(
            matches!(forward, Ok(Verdict::Dropped(_))),
            "new connection from {} into the LAN: {forward:?}",
            w.id
        );
    }
}

/// The journey after the router-side preparation: install script, password, daemon's first
/// start with consent, failover, recovery.
async fn install_and_fail_over(emu: &Emulator, mut config: Config) {
    let install = uplinkd::rsc::render_install(&config, &Default::default()).expect("render");
    emu.add_object(
        "/file",
        &[("name", "uplinkd-install.rsc"), ("contents", &install)],
    )
    .expect("upload");
    type_block(emu, "install-user");
    let server = emu
        .serve(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    // The emulator speaks plain HTTP on loopback; everything else is the user's config.
    config.router.rest = Rest::plain_http(
        server.url().parse().expect("the emulator's URL"),
        &config.router.rest.user,
        &typed_password(),
        Duration::from_secs(5),
    );
    // Step 1's consent, as the user adds it to uplinkd.toml.
    let consent: toml::Value = toml::from_str(&doc_block("consent").join("\n")).expect("TOML");
    assert_eq!(consent["router"]["apply_base"].as_str(), Some("auto"));
    config.router.apply_base = ApplyBase::Auto;
    let hold_down = config.health.hold_down;
    let daemon = Daemon::start_with_bootstrap(config);
    assert!(
        wait_for(Duration::from_secs(30), || {
            wan_is(emu, "ISP1", true) && wan_is(emu, "ISP2", true)
        })
        .await,
        "the first start did not import the base config: {:#?}",
        emu.log_entries()
    );
    assert!(
        emu.objects("/system/script")
            .iter()
            .any(|s| s.get("name") == Some("uplinkd-base")),
        "the marker is written last"
    );
    daemon.fail(1);
    assert!(
        wait_for(Duration::from_secs(30), || wan_is(emu, "ISP1", false)).await,
        "ISP1 failed over"
    );
    assert!(wan_is(emu, "ISP2", true));
    daemon.repair(1);
    assert!(
        wait_for(hold_down + Duration::from_secs(60), || wan_is(
            emu, "ISP1", true
        ))
        .await,
        "ISP1 recovered"
    );
    daemon.stop().await;
}

/// The PPPoE + DHCP variant (DSL on ether2 as install.md's PPPoE step creates it).
fn dhcp_pppoe() -> Config {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/rsc-variants/dhcp-pppoe.toml"
    ))
    .unwrap();
    let env = Env::empty()
        .with("UPLINKD_REST_PASSWORD", "unused")
        .with("UPLINKD_WAN2_PPPOE_PASSWORD", "secret");
    Config::from_toml_str(&text, &env).expect("variant resolves")
}

fn example_without_lan() -> Config {
    let mut config = Config::example();
    config.lan = None;
    config.sections.lan = false;
    config.sections.dhcp = false;
    config.sections.dns = false;
    config
}

#[test]
fn defconf_fixture_is_what_routeros_ships() {
    let emu = defconf_router();
    let ports: Vec<String> = emu
        .objects("/interface/bridge/port")
        .iter()
        .filter_map(|p| p.get("interface").map(str::to_string))
        .collect();
    assert_eq!(ports, ["ether2", "ether3", "ether4", "ether5"]);
    let client = &emu.objects("/ip/dhcp-client")[0];
    assert_eq!(client.get("interface"), Some("ether1"));
    assert_ne!(client.get("add-default-route"), Some("no"));
    // Before anything of uplinkd's: the admin on the bridge reaches the router, the WAN not.
    let admin = Admin {
        port: "ether3",
        src: ip("192.168.88.20"),
        router: ip("192.168.88.1"),
    };
    assert_admin_reaches(&emu, &admin, "defconf");
    assert_lan_dns_accepted(&emu, &admin);
    assert!(matches!(
        emu.reaches_service("winbox", "ether1", ip("203.0.113.9"), ip("192.168.88.1")),
        Ok(Reach::Filtered(_))
    ));
}

/// Skipping step 4b: the base config stops before changing anything, naming what to fix.
#[test]
fn base_config_on_untouched_defconf_stops_with_the_reason() {
    let emu = defconf_router();
    let base = uplinkd::rsc::render_base(&Config::example()).expect("render");
    let before = emu.objects("/ip/route").len() + emu.objects("/ip/firewall/filter").len();
    let err = emu.import_script(&base.text).expect_err("stops");
    assert!(
        err.to_string().contains("has a DHCP client") && err.to_string().contains("step 4b"),
        "{err}"
    );
    assert_eq!(
        emu.objects("/ip/route").len() + emu.objects("/ip/firewall/filter").len(),
        before,
        "nothing changed"
    );
    type_line(&emu, "/ip dhcp-client remove [find where interface=ether1]");
    let err = emu.import_script(&base.text).expect_err("stops");
    assert!(
        err.to_string().contains("ether2 of ISP2 is a bridge port"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn defconf_with_the_example_config() {
    let emu = defconf_router();
    type_block(&emu, "defconf-wans");
    type_block(&emu, "defconf-lan-ports");
    let config = Config::example();
    install_and_fail_over(&emu, config.clone()).await;
    // A computer on a moved port, with its new lease, and one on defconf's bridge (Wi-Fi, a
    // kept port): both reach the router.
    let moved = Admin {
        port: "ether3",
        src: ip("192.168.100.150"),
        router: ip("192.168.100.1"),
    };
    let on_defconf_bridge = Admin {
        port: "bridge",
        src: ip("192.168.88.20"),
        router: ip("192.168.88.1"),
    };
    for admin in [&moved, &on_defconf_bridge] {
        assert_admin_reaches(&emu, admin, "after the install");
        assert_lan_dns_accepted(&emu, admin);
    }
    assert_wans_firewalled(&emu, &config, ip("192.168.100.150"));
}

#[tokio::test(start_paused = true)]
async fn defconf_with_the_example_config_without_lan() {
    let emu = defconf_router();
    type_block(&emu, "defconf-wans");
    let admin = Admin {
        port: "ether3",
        src: ip("192.168.88.20"),
        router: ip("192.168.88.1"),
    };
    let config = example_without_lan();
    install_and_fail_over(&emu, config.clone()).await;
    assert_admin_reaches(&emu, &admin, "after the install");
    assert_lan_dns_accepted(&emu, &admin);
    assert_wans_firewalled(&emu, &config, ip("192.168.88.20"));
}

#[tokio::test(start_paused = true)]
async fn defconf_with_a_pppoe_and_a_dhcp_wan() {
    let config = dhcp_pppoe();
    let emu = defconf_router();
    type_block(&emu, "pppoe-client");
    type_block(&emu, "defconf-wans");
    type_block(&emu, "defconf-lan-ports");
    install_and_fail_over(&emu, config.clone()).await;
    let admin = Admin {
        port: "ether3",
        src: ip("192.168.100.150"),
        router: ip("192.168.100.1"),
    };
    assert_admin_reaches(&emu, &admin, "after the install");
    assert_lan_dns_accepted(&emu, &admin);
    assert_wans_firewalled(&emu, &config, ip("192.168.100.150"));
}

#[tokio::test(start_paused = true)]
async fn defconf_in_remote_mode() {
    // An RB750Gr3 (no container package) managed from a host on defconf's LAN.
    let mut config = example_without_lan();
    config.router.mode = Mode::Remote;
    config.router.rest.url = "https://192.168.88.1".parse().expect("a REST URL");
    let emu = defconf_router();
    type_block(&emu, "defconf-wans");
    install_and_fail_over(&emu, config.clone()).await;
    let admin = Admin {
        port: "ether3",
        src: ip("192.168.88.10"),
        router: ip("192.168.88.1"),
    };
    assert_admin_reaches(&emu, &admin, "after the install");
    assert_eq!(
        emu.reaches_service("www-ssl", admin.port, admin.src, admin.router),
        Ok(Reach::Answers),
        "the uplinkd host reaches REST"
    );
    assert_lan_dns_accepted(&emu, &admin);
    assert_wans_firewalled(&emu, &config, ip("192.168.88.10"));
}

/// The install script names a PPPoE WAN's client (its probe route, the masquerade): without the
/// client it stops at once, saying which step creates it, before changing anything.
#[test]
fn install_script_without_its_pppoe_client_stops_first() {
    let config = dhcp_pppoe();
    let install = uplinkd::rsc::render_install(&config, &Default::default()).unwrap();
    let emu = defconf_router();
    let before = emu.objects("/interface/veth").len() + emu.objects("/ip/route").len();
    let err = emu.import_script(&install).expect_err("stops");
    assert!(
        err.to_string()
            .contains("PPPoE client pppoe-out1 does not exist yet")
            && err.to_string().contains("step 4b"),
        "{err}"
    );
    assert_eq!(
        emu.objects("/interface/veth").len() + emu.objects("/ip/route").len(),
        before
    );
}
