//! The lab benchmark behind scripts/bench-lab.sh (not a test: it measures, it does not judge).
//! Needs root, iproute2, nftables. Runs the given `uplinkd` binary in the namespace lab against
//! the REST emulator and prints, as Markdown:
//! 1. detection: N hard outages (blackhole on ISP1) injected at a random phase; the time from the
//!    fault being in place to the emulator receiving the first switching write (p50/p95/max);
//! 2. false failovers: a run at 20 % iid loss on ISP1 for the given duration;
//! 3. the daemon's CPU share and RSS during steady probing of 2 WANs × 2 monitors;
//! 4. start-up: from spawning the daemon to its log line saying the probe sockets are open.
//!
//! Usage: bench_lab <uplinkd binary> <trials> <loss seconds> <steady seconds>
//! BENCH_RTT_MS=20 gives both WANs a standing one-way delay of that many milliseconds on the ISP
//! -> internet link (`netlab.sh latency`), so the outages hit a line with a real RTT.
#![expect(
    clippy::disallowed_methods,
    reason = "a test measures and waits in real time; the clock ban is for the library"
)]

#[path = "../tests/netlab/daemon.rs"]
mod daemon;
#[path = "../tests/netlab/lab.rs"]
mod lab;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use daemon::{Daemon, Router, wait_until};
use lab::{Lab, Topology};
use uplinkd_emulator::Emulator;

const LIMIT: Duration = Duration::from_secs(60);
/// Shortened so trials do not wait 30 s each; it does not enter detection time.
const HOLD_DOWN: &str = "3s";
/// Flap damping off: 20 outages in a few minutes are a flapping link to the default profile,
/// whose growing hold-down would outlast the wait for recovery between trials. Damping acts only
/// on recovery (the outage test does not read it), so detection times are those of the default.
const FLAP_PENALTY: &str = "0";
/// The default resync interval (the lab tests use 5 s).
const RESYNC: &str = "60s";

fn switch_writes(emu: &Emulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| r.is_write())
        .filter(|r| {
            r.path.starts_with("/rest/ip/route") || r.path.starts_with("/rest/ip/firewall/mangle")
        })
        .count()
}

fn all_enabled(emu: &Emulator) -> bool {
    ["/ip/route", "/ip/firewall/mangle"].iter().all(|m| {
        emu.objects(m)
            .iter()
            .filter(|o| o.get("comment").is_some_and(|c| c.starts_with("uplinkd:")))
            .all(|o| o.get("disabled") != Some("true"))
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// utime + stime of a process, in clock ticks (USER_HZ = 100 on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    num(11) + num(12)
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: bench_lab <uplinkd binary> <trials> <loss seconds> <steady seconds>");
        std::process::exit(2);
    }
    let bin = PathBuf::from(&args[1]);
    let trials: usize = args[2].parse().expect("trials");
    let loss_secs: u64 = args[3].parse().expect("loss seconds");
    let steady_secs: u64 = args[4].parse().expect("steady seconds");

    let lab = Lab::up(Topology::Veth, 2);
    let rtt_ms: u32 = std::env::var("BENCH_RTT_MS")
        .ok()
        .map(|v| v.parse().expect("BENCH_RTT_MS"))
        .unwrap_or(0);
    if rtt_ms > 0 {
        for wan in 1..=2 {
            lab.latency(wan, rtt_ms);
        }
    }
    let router = Router::start(&lab);
    let state = daemon::state_dir();
    let text = daemon::config_text(
        &lab,
        &router.url,
        &state,
        &format!("hold_down = \"{HOLD_DOWN}\"\nflap_penalty = {FLAP_PENALTY}"),
    )
    // The tests resync every 5 s to see repairs quickly; the bench measures the default (60 s),
    // whose REST reads are part of the steady CPU figure.
    .replace(
        "resync_interval = \"5s\"",
        &format!("resync_interval = \"{RESYNC}\""),
    );
    let config = daemon::parse_config(&text);
    uplinkd_testkit::demo::load_base_objects(&router.emu, &config).expect("base objects");
    let config_path = state.join("uplinkd.toml");
    std::fs::write(&config_path, &text).expect("config");
    let emu = router.emu.clone();
    let interval = config.health.interval;
    println!(
        "lab {}: binary {}, probe interval {interval:?}, hold-down {HOLD_DOWN}, flap penalty {FLAP_PENALTY}, resync {RESYNC}, added delay {rtt_ms} ms per WAN (other settings: defaults)\n",
        lab.name,
        bin.display()
    );

    let spawned = Instant::now();
    let daemon = Daemon::start(&lab, &bin, &config_path);
    // Start-up: the daemon opens its probe sockets after loading the config and preparing the
    // probe routes, and its link tasks send their first probes in the same tick.
    let mut startup = None;
    while spawned.elapsed() < LIMIT {
        if daemon.has_line("ICMP probe sockets open") {
            startup = Some(spawned.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        wait_until(LIMIT, || daemon.has_line("ISP1") && all_enabled(&emu)),
        "daemon did not start:\n{}",
        daemon.output()
    );
    // Past the start-up grace, with a settled RTT estimate.
    std::thread::sleep(Duration::from_secs(5));

    // 3. Steady probing first, on an undisturbed lab.
    let pid = daemon.pid();
    let t0 = Instant::now();
    let c0 = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(steady_secs));
    let cpu = (cpu_ticks(pid) - c0) as f64 / 100.0 / t0.elapsed().as_secs_f64() * 100.0;
    let rss = status_kib(pid, "VmRSS:");
    let hwm = status_kib(pid, "VmHWM:");

    // 1. Detection trials.
    let mut detect = Vec::new();
    let mut inject_ms = Vec::new();
    for trial in 0..trials {
        // A random phase relative to the probe schedule.
        std::thread::sleep(Duration::from_secs(1) + interval.mul_f64(fastrand::f64() * 5.0));
        let before = switch_writes(&emu);
        let start = Instant::now();
        lab.fault(1, &["blackhole"]);
        let placed = Instant::now();
        inject_ms.push(placed.duration_since(start).as_secs_f64() * 1000.0);
        let mut seen = None;
        let end = placed + LIMIT;
        while Instant::now() < end {
            if switch_writes(&emu) > before {
                seen = Some(placed.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        lab.fault(1, &["clear"]);
        match seen {
            Some(d) => detect.push(d.as_secs_f64()),
            None => println!("trial {trial}: no route change within {LIMIT:?}"),
        }
        assert!(
            wait_until(LIMIT, || all_enabled(&emu)),
            "ISP1 did not come back after trial {trial}:\n{}",
            daemon.output()
        );
    }
    detect.sort_by(f64::total_cmp);

    // 2. False failovers at 20 % loss.
    std::thread::sleep(Duration::from_secs(3));
    let writes0 = switch_writes(&emu);
    let downs0 = daemon.output().matches("ISP1 DOWN").count();
    lab.fault(1, &["loss", "20"]);
    std::thread::sleep(Duration::from_secs(loss_secs));
    lab.fault(1, &["clear"]);
    let false_downs = daemon.output().matches("ISP1 DOWN").count() - downs0;
    let false_writes = switch_writes(&emu) - writes0;

    println!("| measure | value |\n|---|---|");
    println!(
        "| outage → first route/PCC write, {} trials | p50 {:.3} s, p95 {:.3} s, max {:.3} s |",
        detect.len(),
        percentile(&detect, 50.0),
        percentile(&detect, 95.0),
        detect.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "| fault injection time (netlab.sh fault) | max {:.0} ms |",
        inject_ms.iter().copied().fold(0.0, f64::max)
    );
    println!(
        "| 20 % iid loss on ISP1 for {loss_secs} s | {false_downs} false DOWN, {false_writes} switching writes |"
    );
    println!(
        "| start-up: process spawned → probe sockets open (first probes in the same tick) | {} |",
        startup.map_or("not seen".into(), |d| format!(
            "{:.1} ms",
            d.as_secs_f64() * 1000.0
        ))
    );
    println!(
        "| steady probing, 2 WANs × 2 monitors, {steady_secs} s | CPU {cpu:.2} % of one core, RSS {rss} KiB (peak {hwm} KiB) |"
    );
    println!(
        "\ndetection samples (s): {}",
        detect
            .iter()
            .map(|d| format!("{d:.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    drop(daemon);
    let _ = std::fs::remove_dir_all(&state);
}
