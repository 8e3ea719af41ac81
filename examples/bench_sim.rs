//! Benchmark of the health core in virtual time (not a test): false failovers over 24 simulated
//! hours at 20 % iid loss on every monitor, and the detection and recovery time distribution of
//! a hard outage at the default profile on a 20 ms link, over N random-phase trials.
//!
//! Usage: `cargo run --example bench_sim -- [TRIALS] [HOURS] [RUNS]` (defaults 200, 24, 1: RUNS
//! independent runs of HOURS each for the false-failover count), or
//! `scripts/bench-sim.sh`. Everything runs through the real `health::Link` and `policy::decide`
//! via `uplinkd::simulate`; no packet is sent, no clock is read.

use uplinkd::health::StateKind;
use uplinkd::simulate::{self, Scenario};

fn wan(name: &str, prio: u32, rtt_ms: u32, loss: f64) -> String {
    format!(
        "[[wan]]\nname = \"{name}\"\npriority = {prio}\ntarget = [\n  {{ ip = \"198.18.1.1\", rtt = \"{rtt_ms}ms\", jitter = \"2ms\", loss = {loss:.1} }},\n  {{ ip = \"198.18.1.2\", rtt = \"{}ms\", jitter = \"2ms\", loss = {loss:.1} }},\n]\n",
        rtt_ms + 2
    )
}

fn scenario(text: &str) -> Scenario {
    Scenario::from_toml("bench", text).unwrap_or_else(|e| panic!("bench scenario: {e}"))
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

fn distribution(name: &str, mut v: Vec<f64>, missing: usize) {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        println!("  {name}: no samples ({missing} missing)");
        return;
    }
    println!(
        "  {name:<10} n={:<4} min {:>7.3}s  p50 {:>7.3}s  p95 {:>7.3}s  max {:>7.3}s{}",
        v.len(),
        v[0],
        pct(&v, 50.0),
        pct(&v, 95.0),
        v[v.len() - 1],
        if missing > 0 {
            format!("  ({missing} trials without it)")
        } else {
            String::new()
        }
    );
}

/// Hard outages at a random phase on ISP1 (RTT `rtt_ms`, iid `loss` % per monitor).
fn outage_trials(trials: u64, rtt_ms: u32, loss: f64) {
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let (mut det, mut rec) = (Vec::new(), Vec::new());
    let (mut det_missing, mut rec_missing) = (0, 0);
    for trial in 0..trials {
        // Warm-up long enough for the baseline to settle (as in steady operation), then the
        // outage at a random phase of the probe schedule.
        let start = 180.0 + rng.f64() * 10.0;
        let end = start + 60.0;
        let text = format!(
            "name = \"trial {trial}\"\nseed = {seed}\nduration = \"{dur}ms\"\n{w1}{w2}\n[[fault]]\nwan = \"ISP1\"\nkind = \"outage\"\nfrom = \"{from}us\"\nto = \"{to}us\"\n",
            seed = 1000 + trial,
            dur = ((end + 60.0) * 1000.0) as u64,
            w1 = wan("ISP1", 1, rtt_ms, loss),
            w2 = wan("ISP2", 2, 30, 0.0),
            from = (start * 1e6) as u64,
            to = (end * 1e6) as u64,
        );
        let r = simulate::run(&scenario(&text), false);
        match r.detections.first().and_then(|m| m.time) {
            Some(d) => det.push(d.as_secs_f64()),
            None => det_missing += 1,
        }
        match r.recoveries.first().and_then(|m| m.time) {
            Some(d) => rec.push(d.as_secs_f64()),
            None => rec_missing += 1,
        }
    }
    distribution("detection", det, det_missing);
    distribution("recovery", rec, rec_missing);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let trials: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let hours: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(24);
    let days: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let defaults = uplinkd::health::Params::default();
    println!("uplinkd health benchmark (virtual time; default profile)");
    println!("health: {defaults}");

    println!(
        "\n1. false failovers: {days} x {hours} simulated hours (seeds 20..), 2 WANs x 2 monitors, 20 ms, \
         20 % iid loss on every monitor"
    );
    let (mut probes, mut failovers, mut transitions) = (0u64, 0usize, 0usize);
    for day in 0..days {
        let text = format!(
            "name = \"20% loss\"\nseed = {}\nduration = \"{hours}h\"\n{}{}",
            20 + day,
            wan("ISP1", 1, 20, 20.0),
            wan("ISP2", 2, 20, 20.0)
        );
        let r = simulate::run(&scenario(&text), false);
        probes += r.probes_sent;
        failovers += r.failovers;
        transitions += r.transitions.len();
        for t in r.transitions.iter().filter(|t| t.to == StateKind::Down) {
            println!(
                "  false failover (seed {}) at {:?}: {} {}",
                20 + day,
                t.at,
                t.wan,
                t.reason
            );
        }
    }
    println!(
        "  {} WAN-hours, probes sent {probes}, transitions {transitions} (start-up included), false failovers {failovers}",
        2 * days * hours
    );

    println!(
        "\n2. hard outage (60 s) on a 20 ms link, no background loss: {trials} random-phase trials"
    );
    outage_trials(trials, 20, 0.0);

    println!(
        "\n3. hard outage (60 s) on a 20 ms link with 20 % iid loss per monitor: {trials} trials"
    );
    outage_trials(trials, 20, 20.0);
}
