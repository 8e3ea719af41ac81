//! The router survives the daemon: the install script's netwatch watchdog, running in the
//! emulator on tokio's paused clock, restores every WAN's switched objects when the container
//! stops answering, logs it, and leaves the router alone while the container runs.

use std::time::Duration;

use uplinkd::config::Config;
use uplinkd_emulator::Emulator;

/// Comment → enabled, for every object the daemon switches.
fn switched(emu: &Emulator) -> Vec<(String, bool)> {
    ["/ip/route", "/ip/firewall/mangle"]
        .iter()
        .flat_map(|m| emu.objects(m))
        .filter_map(|o| {
            let c = o.get("comment")?;
            (c.starts_with("uplinkd:route:")
                || c.starts_with("uplinkd:pcc:")
                || c.starts_with("uplinkd:steer:"))
            .then(|| (c.to_string(), o.get("disabled") != Some("true")))
        })
        .collect()
}

fn logged(emu: &Emulator, needle: &str) -> usize {
    emu.log_entries()
        .iter()
        .filter(|l| l.message.contains(needle))
        .count()
}

/// A router with the example's install script and base config, the container running, and
/// ISP2 switched off by the daemon.
fn installed(config: &Config) -> Emulator {
    let emu = Emulator::default();
    let install = uplinkd::rsc::render_install(config, &Default::default()).unwrap();
    emu.import_script(&install).expect("install script");
    emu.import_script(&uplinkd::rsc::render_base(config).unwrap().text)
        .expect("base config");
    emu.import_script("/container start [find where name=uplinkd]")
        .expect("start");
    for menu in ["/ip/route", "/ip/firewall/mangle"] {
        for o in emu.objects(menu) {
            let c = o.get("comment").unwrap_or("");
            if c.starts_with("uplinkd:route:ISP2-")
                || c.starts_with("uplinkd:pcc:ISP2-")
                || (c.starts_with("uplinkd:steer:") && c.contains(".ISP2-"))
            {
                assert!(emu.edit_object(menu, &o.id, &[("disabled", "true")]));
            }
        }
    }
    emu
}

#[tokio::test(start_paused = true)]
async fn a_stopped_container_gets_every_wan_back_and_a_running_one_is_left_alone() {
    // The example with its commented traffic rule (VoIP on ISP2, else ISP1) uncommented: a
    // rule's lines for ISP2 are switched too, and come back with everything else.
    let mut config = Config::example();
    let mut uncommented = String::new();
    let mut on = false;
    for line in uplinkd::config::EXAMPLE.lines() {
        on = (on || line == "# [[policy]]") && !line.is_empty();
        let line = if on {
            line.strip_prefix('#')
                .map_or(line, |l| l.strip_prefix(' ').unwrap_or(l))
        } else {
            line
        };
        uncommented.push_str(line);
        uncommented.push('\n');
    }
    let env = uplinkd::config::Env::empty()
        .with("UPLINKD_REST_PASSWORD", "example")
        .with("UPLINKD_REST_PIN_SHA256", "0".repeat(64));
    config.traffic = Config::from_toml_str(&uncommented, &env)
        .expect("the example with its traffic rule uncommented resolves")
        .traffic;
    assert_eq!(config.traffic.rules.len(), 1, "{uncommented}");
    let after = config.router.watchdog.expect("on by default");
    assert_eq!(after, Duration::from_secs(60));
    let emu = installed(&config);
    let isp2_off = switched(&emu)
        .iter()
        .filter(|(c, on)| c.contains("ISP2-") && !on)
        .count();
    assert!(isp2_off >= 4, "{:?}", switched(&emu));
    assert!(
        switched(&emu)
            .iter()
            .any(|(c, on)| c.starts_with("uplinkd:steer:voip.ISP2-") && !on),
        "{:?}",
        switched(&emu)
    );
    let _netwatch = emu.spawn_netwatch();

    // Running: the watchdog sees it up, runs nothing, and the daemon's failover stands.
    tokio::time::sleep(after * 3).await;
    let entry = emu
        .objects("/tool/netwatch")
        .into_iter()
        .find(|e| e.get("comment") == Some("uplinkd:install:watchdog"))
        .expect("the install script adds the watchdog");
    assert_eq!(entry.get("status"), Some("up"));
    assert_eq!(
        switched(&emu)
            .iter()
            .filter(|(c, on)| c.contains("ISP2-") && !on)
            .count(),
        isp2_off,
        "a running daemon's failover is left alone"
    );
    assert_eq!(
        logged(&emu, "uplinkd watchdog"),
        0,
        "no script on the initial up"
    );

    // Stopped (or crashed and not restarted): within one interval every WAN is back.
    emu.import_script("/container stop [find where name=uplinkd]")
        .unwrap();
    tokio::time::sleep(after + Duration::from_secs(2)).await;
    assert!(
        switched(&emu).iter().all(|(_, on)| *on),
        "{:?}",
        switched(&emu)
    );
    assert_eq!(logged(&emu, "[FAILOVER] uplinkd watchdog"), 1);
    assert_eq!(logged(&emu, "event down"), 1);

    // Back: logged once; the daemon (not the watchdog) decides the WANs from here on.
    emu.import_script("/container start [find where name=uplinkd]")
        .unwrap();
    tokio::time::sleep(after + Duration::from_secs(2)).await;
    assert_eq!(logged(&emu, "the daemon takes over"), 1);
    assert_eq!(
        logged(&emu, "[FAILOVER] uplinkd watchdog"),
        1,
        "once per outage"
    );
    assert!(switched(&emu).iter().all(|(_, on)| *on));
}

#[test]
fn off_means_no_watchdog_and_remote_mode_has_none() {
    let mut config = Config::example();
    config.router.watchdog = None;
    let install = uplinkd::rsc::render_install(&config, &Default::default()).unwrap();
    assert!(!install.contains("/tool netwatch"));
    let mut remote = Config::example();
    remote.router.mode = uplinkd::config::Mode::Remote;
    remote.router.rest.url = "https://192.168.88.1".parse().expect("a REST URL");
    let install = uplinkd::rsc::render_install(&remote, &Default::default()).unwrap();
    assert!(
        !install.contains("/tool netwatch"),
        "the uplinkd host is not the router's to watch"
    );
}

#[test]
fn the_watchdog_time_is_bounded_and_named() {
    let base = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/rsc-variants/two-static.toml"
    ))
    .unwrap();
    let env = uplinkd::config::Env::empty().with("UPLINKD_REST_PASSWORD", "x");
    for (value, ok) in [
        ("\"5s\"", false),
        ("\"2h\"", false),
        ("\"90s\"", true),
        ("\"off\"", true),
    ] {
        let text = base.replacen("[router]\n", &format!("[router]\nwatchdog = {value}\n"), 1);
        match uplinkd::config::Config::from_toml_str(&text, &env) {
            Ok(c) => assert!(ok, "{value} accepted: {:?}", c.router.watchdog),
            Err(e) => {
                assert!(!ok, "{value}: {e}");
                assert!(e.to_string().starts_with("router.watchdog"), "{e}");
            }
        }
    }
}
