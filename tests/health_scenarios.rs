//! Health scenarios as data: every fixture in tests/fixtures/scenarios/ runs through the real
//! health core and policy in virtual time (`uplinkd::simulate`) and must meet the `[expect]`
//! it states. Virtual time makes the runs exact and independent of the machine's speed.

use std::path::{Path, PathBuf};

use uplinkd::simulate::{self, Scenario};

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

fn run_fixture(name: &str) -> (Scenario, simulate::Report) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/scenarios")
        .join(name);
    let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(scenario.expect.is_some(), "{name} states no [expect]");
    let report = simulate::run(&scenario, false);
    if let Err(failures) = simulate::check(&scenario, &report) {
        panic!(
            "{name}:\n  {}\ntimeline:\n{}",
            failures.join("\n  "),
            report.lines.join("\n")
        );
    }
    (scenario, report)
}

/// Every fixture in the directory has a test below (a new file cannot be forgotten).
#[test]
fn every_fixture_is_covered() {
    let covered = [
        "all_down.toml",
        "brownout.toml",
        "flapping.toml",
        "hard_outage.toml",
        "hold_down.toml",
        "loss_bursts.toml",
        "lte_backup_tier.toml",
        "one_monitor_dead.toml",
        "random_loss_20.toml",
        "satellite.toml",
        "traffic_policies.toml",
    ];
    let names: Vec<String> = fixtures()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, covered);
}

/// Backup tiers tuned offline: LTE carries only while fibre and cable are both down, hands
/// back to fibre after its hold-down and stays a draining backup while it answers.
#[test]
fn a_backup_tier_carries_only_while_the_tier_below_is_down() {
    let (_, r) = run_fixture("lte_backup_tier.toml");
    assert_eq!(
        r.carriers,
        ["fibre+cable", "cable", "LTE", "fibre", "fibre+cable"]
    );
    assert!(!r.saw_all_down);
    let lines = |needle: &str| r.lines.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(lines("LTE active; preferred LTE; tier 2 carries"), 1);
    assert_eq!(lines("LTE backup; preferred fibre; tier 1 carries"), 2);
}

/// Named policies tuned offline: per policy, which WANs its connections take as the tier-1
/// WANs fail and return; the timeline says it on every decision.
#[test]
fn each_policy_shows_which_wans_carry_its_connections() {
    let (_, r) = run_fixture("traffic_policies.toml");
    assert_eq!(r.policies["voip"], ["cable", "any", "fibre", "cable"]);
    assert_eq!(
        r.policies["guests"],
        ["fibre+cable", "cable", "drop", "fibre", "fibre+cable"]
    );
    assert_eq!(r.policies["camera"], ["LTE"]);
    assert!(
        r.lines
            .iter()
            .any(|l| l
                .contains("; voip → any (last resort); guests → drop (last resort); camera → LTE")),
        "{}",
        r.lines.join("\n")
    );
}

#[test]
fn hard_outage_fails_over_and_back() {
    let (_, r) = run_fixture("hard_outage.toml");
    assert_eq!(r.failovers, 1);
    let down = r
        .transitions
        .iter()
        .find(|t| t.to == uplinkd::health::StateKind::Down)
        .unwrap();
    assert!(
        down.reason.contains("none of 2 targets answered"),
        "{}",
        down.reason
    );
    assert!(
        r.lines
            .iter()
            .any(|l| l.contains("[FAILOVER] ISP1 DOWN - ")),
        "seed-style log line"
    );
    assert!(
        r.lines
            .iter()
            .any(|l| l.contains("policy: ISP1 standby, ISP2 active; preferred ISP2"))
    );
    // The daemon's lines (the one formatter): the hold-down is not a `[FAILOVER]` edge, the
    // return says how long the outage lasted, from its first DOWN.
    let timeline: Vec<&str> = r
        .lines
        .iter()
        .filter_map(|l| l.split_once("s  ").map(|(_, text)| text))
        .filter(|text| {
            text.contains("ISP1") && !text.starts_with("fault") && !text.starts_with("policy")
        })
        .collect();
    let starts: Vec<String> = timeline
        .iter()
        .map(|t| t.split(" - ").next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        starts,
        [
            "ISP1 unknown -> up",
            "[FAILOVER] ISP1 DOWN",
            "ISP1 down -> recovering",
            "[FAILOVER] ISP1 UP",
        ],
        "{timeline:#?}"
    );
    assert_eq!(timeline[3], "[FAILOVER] ISP1 UP - recovered after 1m30s");
}

#[test]
fn one_dead_monitor_keeps_the_wan_up() {
    let (_, r) = run_fixture("one_monitor_dead.toml");
    assert_eq!(r.failovers, 0);
}

#[test]
fn twenty_percent_random_loss_never_fails_over() {
    let (_, r) = run_fixture("random_loss_20.toml");
    assert_eq!(r.failovers, 0);
    assert!(
        r.probes_sent > 70_000,
        "an hour of probing: {}",
        r.probes_sent
    );
}

#[test]
fn short_loss_bursts_are_noise() {
    run_fixture("loss_bursts.toml");
}

#[test]
fn flapping_is_damped() {
    let (_, r) = run_fixture("flapping.toml");
    // Undamped, 5 s down / 5 s up for nine minutes would be ~108 transitions.
    assert!(r.transitions.len() <= 25);
    let back = r.recoveries[0]
        .time
        .expect("ISP1 comes back after the flapping");
    assert!(
        back.as_secs() > 60,
        "the damped hold-down is longer than the base 30 s: {back:?}"
    );
}

#[test]
fn brownout_degrades_without_failing() {
    let (_, r) = run_fixture("brownout.toml");
    let degraded = r
        .transitions
        .iter()
        .find(|t| t.to == uplinkd::health::StateKind::Degraded)
        .unwrap();
    assert!(degraded.reason.contains("latency"), "{}", degraded.reason);
}

#[test]
fn recovery_waits_for_the_hold_down() {
    run_fixture("hold_down.toml");
}

#[test]
fn satellite_link_is_not_failed_falsely() {
    let (_, r) = run_fixture("satellite.toml");
    // The only failover is the real outage at 1500 s.
    assert_eq!(r.failovers, 1);
    assert!(
        r.transitions
            .iter()
            .all(|t| t.to != uplinkd::health::StateKind::Down || t.at.as_secs() >= 1500)
    );
}

#[test]
fn every_wan_down_keeps_all_on() {
    let (_, r) = run_fixture("all_down.toml");
    assert!(r.saw_all_down);
    assert!(!r.saw_none_active);
    let icmp = r
        .transitions
        .iter()
        .find(|t| t.wan.as_str() == "ISP2" && t.to == uplinkd::health::StateKind::Down);
    assert!(
        icmp.unwrap().reason.contains("ICMP errors"),
        "ICMP unreachable is evidence of failure"
    );
}

#[test]
fn scenario_errors_name_the_key() {
    let table: &[(&str, &str)] = &[
        ("name = \"x\"\nduration = \"1s\"\nwan = []", "wan"),
        (
            "name = \"x\"\nduration = \"1s\"\n[[wan]]\nname = \"A\"\ntarget = [{ ip = \"198.18.0.1\", rtt = \"1ms\" }]\n[[fault]]\nwan = \"B\"\nkind = \"outage\"\nfrom = \"0s\"\nto = \"1s\"",
            "fault[1].wan",
        ),
        (
            "name = \"x\"\nduration = \"1s\"\n[params]\nquorum = 0\n[[wan]]\nname = \"A\"\ntarget = [{ ip = \"198.18.0.1\", rtt = \"1ms\" }]",
            "params.quorum",
        ),
        ("name = \"x\"\nduration = \"soon\"", "duration"),
        ("name = \"x\"\nduration = \"1s\"\nbogus = 1", "bogus"),
    ];
    for (text, key) in table {
        let err = Scenario::from_toml("t.toml", text).unwrap_err().to_string();
        assert!(err.contains(key), "{key}: {err}");
    }
}

#[test]
fn same_seed_same_run() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios/loss_bursts.toml");
    let s = Scenario::load(&path).unwrap();
    let a = simulate::run(&s, false);
    let b = simulate::run(&s, false);
    assert_eq!(a.lines, b.lines);
}
