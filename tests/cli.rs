//! The binary as a user types it: what goes to stdout and what to stderr, which commands need a
//! secret, `--config` honoured by every command that reads one, a closed stdout.

#[path = "support/bin.rs"]
mod bin;
use bin::uplinkd;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

fn example() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml")).unwrap()
}

fn run(args: &[&str]) -> Output {
    uplinkd(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write_temp(dir: &tempfile::TempDir, name: &str, contents: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `render` prints the script and nothing else on stdout, whatever the log level: what a user
/// pipes into a file is exactly what the library renders.
#[test]
fn render_stdout_is_exactly_the_script_at_any_log_level() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_temp(&dir, "uplinkd.toml", &example());
    for script in ["base", "install"] {
        let out = run(&["--log", "trace", "render", script, "--config", s(&config)]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let want = uplinkd::rsc::render_command(
            Some(&example()),
            uplinkd::config::Env::empty(),
            if script == "base" {
                uplinkd::cli::RenderScript::Base
            } else {
                uplinkd::cli::RenderScript::Install
            },
            None,
            &uplinkd::rsc::InstallOptions {
                image: uplinkd::rsc::ImageSource::File("uplinkd.tar".into()),
                state_src: "uplinkd/state".into(),
                root_dir: "uplinkd/root".into(),
            },
        )
        .unwrap();
        assert_eq!(text(&out.stdout), want, "render {script}");
    }
}

/// `render` needs no secret, so a `password_file` that exists only on the router (inside the
/// container) must not stop it; `check`, which resolves secrets, still reads the file.
#[test]
fn render_does_not_open_a_password_file_that_exists_only_on_the_router() {
    let dir = tempfile::tempdir().unwrap();
    let router_only = "/uplinkd-test-nonexistent/state/rest-password";
    let with_file = example().replacen(
        "[rest]\n",
        &format!("[rest]\npassword_file = \"{router_only}\"\n"),
        1,
    );
    assert!(
        with_file.contains(router_only),
        "the example has a [rest] table"
    );
    let config = write_temp(&dir, "uplinkd.toml", &with_file);
    for script in ["base", "install"] {
        let out = run(&["render", script, "--config", s(&config)]);
        assert!(
            out.status.success(),
            "render {script}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains("/ip "),
            "render {script} printed a script"
        );
    }
    let out = run(&["check", "--config", s(&config)]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(router_only),
        "{}",
        text(&out.stderr)
    );
}

/// `status` talks to the daemon's status endpoint, not to the router: no REST password needed.
/// Without a daemon it fails on the connection, naming the URL from the config's `[status]`.
#[test]
fn status_does_not_demand_the_rest_password() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_temp(
        &dir,
        "uplinkd.toml",
        &example().replace("listen = \"127.0.0.1:9180\"", "listen = \"127.0.0.1:9\""),
    );
    let out = run(&["status", "--config", s(&config)]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(!err.contains("password"), "{err}");
    assert!(err.contains("127.0.0.1:9"), "{err}");
}

const SCENARIO: &str = r#"
name = "config honoured"
duration = "20s"
[[wan]]
name = "ISP1"
target = [{ ip = "198.18.1.1", rtt = "20ms" }]
"#;

/// `simulate --config FILE` starts from the config's `[health]` (the scenario's `[params]`
/// override it key by key); a missing config file is an error, not silently the defaults.
#[test]
fn simulate_honours_the_config_health_table() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_temp(
        &dir,
        "uplinkd.toml",
        &example().replacen("[health]\n", "[health]\nhold_down = \"45s\"\n", 1),
    );
    let scenario = write_temp(&dir, "s.toml", SCENARIO);
    let out = run(&["simulate", "--config", s(&config), s(&scenario)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let health = text(&out.stdout)
        .lines()
        .find(|l| l.starts_with("health: "))
        .unwrap()
        .to_string();
    assert!(health.contains(" hold_down=45s "), "{health}");

    let own = write_temp(
        &dir,
        "own.toml",
        &format!("{SCENARIO}\n[params]\nhold_down = \"50s\"\n"),
    );
    let out = run(&["simulate", "--config", s(&config), s(&own)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(" hold_down=50s "));

    let out = run(&["simulate", s(&scenario)]);
    assert!(
        text(&out.stdout).contains(" hold_down=30s "),
        "the default profile"
    );

    let out = run(&[
        "simulate",
        "--config",
        "/uplinkd-test-nonexistent.toml",
        s(&scenario),
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("/uplinkd-test-nonexistent.toml"));
}

/// `simulate FILE | head`: the reader is gone before the first line. No panic, no abort.
#[test]
fn a_closed_stdout_is_not_a_crash() {
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/scenarios/hard_outage.toml"
    );
    for args in [
        vec!["simulate", scenario],
        vec![
            "render",
            "base",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"),
        ],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = uplinkd(&args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            out.status.code().is_some(),
            "{args:?}: killed by a signal: {:?}",
            out.status
        );
        assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
    }
}
