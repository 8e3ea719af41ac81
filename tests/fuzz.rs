//! No panic from any input, beyond the config, REST and script parsers (tests/config.rs,
//! tests/routeros_client.rs, tests/emulator.rs): scenario files for `uplinkd simulate`, the
//! command line (`probe` and every other subcommand), and the status listener's HTTP input.
//! Bounded case counts so CI runs them every time; a failing case proptest finds is kept under
//! tests/fuzz.proptest-regressions and replayed first.

#[path = "support/mutate.rs"]
mod mutate;

use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser as _;
use mutate::{mutate, value_strategy};
use proptest::prelude::*;
use uplinkd::simulate::{self, Scenario};

const SCENARIOS: &[(&str, &str)] = &[
    (
        "hard_outage",
        include_str!("fixtures/scenarios/hard_outage.toml"),
    ),
    ("flapping", include_str!("fixtures/scenarios/flapping.toml")),
    ("brownout", include_str!("fixtures/scenarios/brownout.toml")),
    (
        "satellite",
        include_str!("fixtures/scenarios/satellite.toml"),
    ),
];

/// Runs a parsed scenario when it is small enough to run in a test (the parser accepts long
/// ones: `uplinkd simulate` runs what it is given).
fn run_if_small(s: &Scenario) {
    let targets: usize = s.wans.iter().map(|w| w.targets.len()).sum();
    if s.duration <= Duration::from_secs(600)
        && targets <= 8
        && s.params.interval >= Duration::from_millis(50)
    {
        let report = simulate::run(s, false);
        let _ = simulate::check(s, &report);
    }
}

fn arg_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        Just("probe".to_string()),
        Just("simulate".to_string()),
        Just("render".to_string()),
        Just("--count".to_string()),
        Just("--interval".to_string()),
        Just("--timeout".to_string()),
        Just("--source".to_string()),
        Just("--device".to_string()),
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("18446744073709551616".to_string()),
        Just("500000000y".to_string()),
        Just("198.18.0.1".to_string()),
        Just("::1".to_string()),
        "[a-z\\-=0-9.]{0,16}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn mutated_scenarios_never_panic(
        which in 0..SCENARIOS.len(),
        ops in proptest::collection::vec((any::<u8>(), any::<usize>(), value_strategy()), 1..5),
    ) {
        let (name, text) = SCENARIOS[which];
        let text = mutate(text, &ops);
        if let Ok(s) = Scenario::from_toml(name, &text) {
            run_if_small(&s);
        }
    }

    #[test]
    fn any_command_line_parses_or_errors(args in proptest::collection::vec(arg_strategy(), 0..6)) {
        let argv = std::iter::once("uplinkd".to_string()).chain(args);
        let _ = uplinkd::cli::Cli::try_parse_from(argv);
    }
}

/// Arbitrary bytes at the status listener: each connection gets an answer or is closed, and
/// the listener still serves a well-formed request afterwards.
#[tokio::test]
async fn the_status_listener_survives_any_request_bytes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let feed: Arc<dyn uplinkd::status::http::Source> =
        Arc::new(|| Some(uplinkd::status::Snapshot::default()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(uplinkd::status::http::serve(listener, feed, async move {
        let _ = stop_rx.await;
    }));
    let mut rng = fastrand::Rng::with_seed(7);
    let requests: Vec<Vec<u8>> = (0..300)
        .map(|i| match i % 4 {
            0 => (0..rng.usize(0..300)).map(|_| rng.u8(..)).collect(),
            1 => format!(
                "GET /{} HTTP/1.1\r\nHost: x\r\n\r\n",
                (0..rng.usize(0..40))
                    .map(|_| rng.alphanumeric())
                    .collect::<String>()
            )
            .into_bytes(),
            2 => format!(
                "{} /metrics?{} HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
                ["GET", "POST", "DELETE", "PUT", "X"][rng.usize(0..5)],
                "%zz&a=".repeat(rng.usize(0..20)),
                rng.u64(..)
            )
            .into_bytes(),
            _ => b"GET /status HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
                .to_vec(),
        })
        .collect();
    let probe = tokio::task::spawn_blocking(move || {
        for req in &requests {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = s.write_all(req);
            let _ = s.shutdown(std::net::Shutdown::Write);
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer);
        }
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    });
    let answer = probe.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
}
