//! Shared harness of the reconcile end-to-end tests: an emulated router loaded with the rendered
//! base config, the real daemon with a scripted prober, and helpers to read the router.

#![allow(dead_code)]

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
