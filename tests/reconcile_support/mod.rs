//! Shared harness of the reconcile end-to-end tests: an emulated router loaded with the rendered
//! base config, the real daemon with a scripted prober, and helpers to read the router.

#![allow(dead_code)]

#[path = "../support/docs.rs"]
pub(crate) mod docs;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use uplinkd::app::{self, Hooks};
use uplinkd::bus::{self, Event, Shutdown, ShutdownTrigger};
use uplinkd::config::Config;
use uplinkd::reconcile::Menu;
use uplinkd::reconcile::plan::{Kind, classify};
use uplinkd::reconciler::BootstrapStep;
use uplinkd::routeros::Client;
use uplinkd::types::LinkId;
use uplinkd_emulator::{
    Connection, Emulator, EmulatorConfig, RequestRecord, RunningEmulator, User,
};
use uplinkd_testkit::scripted::{Behaviour, ScriptedProber};

pub(crate) const RTT: Duration = Duration::from_millis(20);

pub(crate) fn isp(n: u8) -> LinkId {
    LinkId::new(format!("ISP{n}"))
}

/// An emulated router with the rendered base config and three connections per WAN.
pub(crate) async fn router(password: &str) -> (Emulator, RunningEmulator) {
    router_named(password, &EmulatorConfig::default().identity).await
}

/// [`router`] with `/system/identity` set to `identity`.
pub(crate) async fn router_named(password: &str, identity: &str) -> (Emulator, RunningEmulator) {
    let emu = Emulator::new(EmulatorConfig {
        users: vec![User::new("uplinkd", password)],
        identity: identity.to_string(),
        ..EmulatorConfig::default()
    });
    let server = emu
        .serve(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("emulator listens on loopback");
    let config = uplinkd_testkit::demo::demo_config(&server.url()).unwrap();
    uplinkd_testkit::demo::load_base_objects(&emu, &config).unwrap();
    for wan in ["ISP1", "ISP2"] {
        add_connections(&emu, wan);
    }
    emu.clear_requests();
    (emu, server)
}

/// The default configuration of a hEX (the text of a real 7.20.1 export).
pub(crate) const DEFCONF: &str = include_str!("../fixtures/defconf/hex-7.20.1.rsc");

/// A router after its first boot: `config`'s users and ports, defconf imported.
pub(crate) fn defconf_emulator(config: EmulatorConfig) -> Emulator {
    let emu = Emulator::new(config);
    emu.import_script(DEFCONF).expect("defconf imports");
    emu
}

/// Three TCP connections from LAN hosts marked for `wan` (`conn-<wan>`), for the flush to remove.
pub(crate) fn add_connections(emu: &Emulator, wan: &str) {
    for n in 0..3 {
        emu.add_connection(Connection {
            protocol: "tcp".into(),
            src_address: format!("192.168.100.{}:4000{n}", 10 + n),
            dst_address: format!("198.18.0.{}:443", n + 1),
            connection_mark: format!("conn-{wan}"),
        });
    }
}

/// config.example.toml with its commented LTE `[[wan]]` uncommented (as a user would) and
/// `handback` set.
pub(crate) fn example_with_lte(handback: &str) -> String {
    let mut out = String::new();
    let mut in_lte = false;
    for line in uplinkd::config::EXAMPLE.lines() {
        if line == "# [[wan]]" {
            in_lte = true;
        }
        if in_lte && line.is_empty() {
            in_lte = false;
        }
        let line = if in_lte {
            line.strip_prefix("# ").unwrap_or(line)
        } else {
            line
        };
        if line.starts_with("handback = ") {
            out.push_str(&format!("handback = \"{handback}\"\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(
        out.contains("\n[[wan]]\nname = \"LTE\""),
        "the example has the LTE block"
    );
    out
}

/// Where a new connection leaves, by the emulator's mangle and routing oracle: the WAN of the
/// chosen route (its `gw:<WAN>` note), or `"dropped"` when there is no route (a blackhole).
/// With `open`, what its first packet adds to address lists stays (sticky rules).
pub(crate) fn leaves_by(emu: &Emulator, flow: &uplinkd_emulator::Flow, open: bool) -> String {
    let decision = if open {
        emu.open_connection(flow)
    } else {
        emu.route_new_connection(flow)
    }
    .unwrap_or_else(|e| panic!("{flow:?}: {e}"));
    match decision.routed() {
        None => "dropped".to_string(),
        Some(routed) => routed
            .route_comment
            .as_deref()
            .and_then(|c| c.split_whitespace().find_map(|w| w.strip_prefix("gw:")))
            .unwrap_or_else(|| panic!("{flow:?} leaves by an untagged route: {routed:?}"))
            .to_string(),
    }
}

/// Shares in percent of [`leaves_by`] over `flows`.
pub(crate) fn shares_of(
    emu: &Emulator,
    flows: impl IntoIterator<Item = uplinkd_emulator::Flow>,
) -> BTreeMap<String, f64> {
    let mut count: BTreeMap<String, u32> = BTreeMap::new();
    let mut total = 0u32;
    for flow in flows {
        *count.entry(leaves_by(emu, &flow, false)).or_default() += 1;
        total += 1;
    }
    count
        .into_iter()
        .map(|(w, n)| (w, f64::from(n) * 100.0 / f64::from(total.max(1))))
        .collect()
}

/// 2,000 new TCP connections to port 443 of distinct public addresses, from LAN hosts
/// 192.168.100.`first`.. on `in_interface`.
pub(crate) fn lan_flows(
    in_interface: &str,
    first: u8,
    hosts: u8,
) -> impl Iterator<Item = uplinkd_emulator::Flow> + '_ {
    (0..2_000u32).map(move |i| {
        let src = std::net::Ipv4Addr::new(192, 168, 100, first + (i % u32::from(hosts)) as u8);
        let dst = std::net::Ipv4Addr::new(198, 19, (i / 250) as u8, (i % 250) as u8 + 1);
        uplinkd_emulator::Flow::tcp(in_interface, src, 40_000 + (i % 20_000) as u16, dst, 443)
    })
}

/// A hEX with an LTE modem after defconf, prepared as docs/install.md step 4 says (its blocks
/// typed as written), before any uplinkd script.
pub(crate) fn prepared_hex() -> Emulator {
    let emu = defconf_emulator(EmulatorConfig {
        users: vec![User::new("admin", "admin-pw"), User::new("uplinkd", "demo")],
        ethernet: (1..=5)
            .map(|i| format!("ether{i}"))
            .chain(["lte1".to_string()])
            .collect(),
        ..EmulatorConfig::default()
    });
    for block in ["defconf-wans", "defconf-lan-ports"] {
        for line in docs::doc_block(block) {
            emu.import_script(&line)
                .unwrap_or_else(|e| panic!("typing {line:?}: {e}"));
        }
    }
    emu
}

/// [`prepared_hex`], `before_base` run (a user's own VLAN, say), then the base config of
/// `config_of` imported and three connections on each of ISP1 and ISP2.
pub(crate) async fn hex_with_lte(
    config_of: impl Fn(&RunningEmulator) -> Config,
    before_base: impl Fn(&Emulator),
) -> (Emulator, RunningEmulator, Config) {
    let emu = prepared_hex();
    before_base(&emu);
    let server = emu
        .serve(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("emulator listens on loopback");
    let config = config_of(&server);
    let base = uplinkd::rsc::render_base(&config).expect("renders");
    emu.import_script(&base.text)
        .expect("the base config imports over defconf");
    for wan in ["ISP1", "ISP2"] {
        add_connections(&emu, wan);
    }
    emu.clear_requests();
    (emu, server, config)
}

/// The demo config pointed at `server` (password `demo`, as `router("demo")` creates).
pub(crate) fn config(server: &RunningEmulator) -> Config {
    uplinkd_testkit::demo::demo_config(&server.url()).unwrap()
}

/// Tag (first word of the comment) → enabled, for every object uplinkd switches.
pub(crate) fn switched(emu: &Emulator) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    for (menu, path) in [
        (Menu::Route, "/ip/route"),
        (Menu::Mangle, "/ip/firewall/mangle"),
    ] {
        for o in emu.objects(path) {
            let comment = o.get("comment").unwrap_or("").to_string();
            if classify(menu, &comment).is_some() {
                let disabled = matches!(o.get("disabled"), Some("true") | Some("yes"));
                let tag = comment.split_whitespace().next().unwrap_or("").to_string();
                out.insert(tag, !disabled);
            }
        }
    }
    out
}

/// The ids of every object uplinkd may switch.
pub(crate) fn switched_ids(emu: &Emulator) -> Vec<String> {
    let mut out = Vec::new();
    for (menu, path) in [
        (Menu::Route, "/ip/route"),
        (Menu::Mangle, "/ip/firewall/mangle"),
    ] {
        for o in emu.objects(path) {
            if classify(menu, o.get("comment").unwrap_or("")).is_some() {
                out.push(format!("{path}:{}", o.id));
            }
        }
    }
    out
}

/// Whether every switched object of `wan` is enabled (`true`) or disabled (`false`).
pub(crate) fn wan_is(emu: &Emulator, wan: &str, enabled: bool) -> bool {
    let s = switched(emu);
    let mine: Vec<bool> = s
        .iter()
        .filter(|(tag, _)| {
            let menu = if tag.starts_with("uplinkd:route:") {
                Menu::Route
            } else {
                Menu::Mangle
            };
            matches!(classify(menu, tag), Some((w, _)) if w.as_str() == wan)
        })
        .map(|(_, e)| *e)
        .collect();
    !mine.is_empty() && mine.iter().all(|e| *e == enabled)
}

/// Counts connections by mark.
pub(crate) fn connections(emu: &Emulator, mark: &str) -> usize {
    emu.connections()
        .iter()
        .filter(|c| c.connection_mark == mark)
        .count()
}

/// Sleeps (virtual time) in small steps until `cond` holds, at most `limit`. Returns whether it
/// held.
pub(crate) async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let step = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    while waited <= limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(step).await;
        waited += step;
    }
    cond()
}

/// Writes seen in the request log that succeeded.
pub(crate) fn applied_writes(reqs: &[RequestRecord]) -> Vec<&RequestRecord> {
    reqs.iter()
        .filter(|r| r.is_write() && (200..300).contains(&r.status))
        .collect()
}

/// Kind is re-exported for tests that need it.
pub(crate) fn kind_of(menu: Menu, tag: &str) -> Option<Kind> {
    classify(menu, tag).map(|(_, k)| k)
}

/// The daemon running in a task of the test's runtime.
pub(crate) struct Daemon {
    pub prober: Arc<ScriptedProber>,
    pub events: Arc<Mutex<Vec<Event>>>,
    trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<()>,
}

impl Daemon {
    pub(crate) fn start(config: Config) -> Self {
        Self::start_with(config, BootstrapStep::Skip)
    }

    /// With the real base-config bootstrap at start and at every resync.
    pub(crate) fn start_with_bootstrap(config: Config) -> Self {
        let client = Arc::new(Client::new(&config.router.rest).unwrap());
        let step = BootstrapStep::Run(Arc::new(uplinkd::bootstrap::BaseConfig::new(
            client,
            Arc::new(config.clone()),
        )));
        Self::start_with(config, step)
    }

    fn start_with(config: Config, bootstrap: BootstrapStep) -> Self {
        let client = Arc::new(Client::new(&config.router.rest).unwrap());
        Self::spawn(Arc::new(config), client, bootstrap, Vec::new())
    }

    /// As `uplinkd run` wires it: with the daemon's own alert and status services (the status
    /// listener at `config.status.listen`, metrics labelled with the router's identity), which
    /// share the daemon's REST client.
    pub(crate) async fn start_with_services(config: Config) -> Self {
        let config = Arc::new(config);
        let client = Arc::new(Client::new(&config.router.rest).unwrap());
        let services = uplinkd::cmd::run::daemon_services(&config, client.clone())
            .await
            .unwrap();
        Self::spawn(config, client, BootstrapStep::Skip, services)
    }

    fn spawn(
        config: Arc<Config>,
        client: Arc<Client>,
        bootstrap: BootstrapStep,
        mut services: Vec<Box<dyn bus::Service>>,
    ) -> Self {
        let prober = Arc::new(ScriptedProber::new(Behaviour::Reply { rtt: RTT }));
        let events = Arc::new(Mutex::new(Vec::new()));
        services.push(Box::new(bus::EventTap::new("test-recorder", {
            let events = events.clone();
            move |t| {
                if let bus::Tapped::Event(ev) = t {
                    events.lock().unwrap().push(ev);
                }
            }
        })));
        let hooks = Hooks {
            services,
            bootstrap,
        };
        let (trigger, stop) = Shutdown::new();
        let mut stop2 = stop.clone();
        let task = tokio::spawn(app::run(
            config,
            client,
            prober.clone(),
            hooks,
            async move { stop2.recv().await },
        ));
        Self {
            prober,
            events,
            trigger,
            task,
        }
    }

    pub(crate) fn fail(&self, n: u8) {
        self.prober.set(&isp(n), Behaviour::Silent);
    }

    pub(crate) fn repair(&self, n: u8) {
        self.prober.set(&isp(n), Behaviour::Reply { rtt: RTT });
    }

    pub(crate) async fn stop(self) {
        self.trigger.fire();
        self.task.await.unwrap();
    }
}
