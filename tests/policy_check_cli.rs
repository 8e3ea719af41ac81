//! `uplinkd check` as a user runs it: the effective config alone on stdout, one line per policy
//! check finding on stderr, a non-zero exit on an error (and on a warning with `--strict`), and
//! unknown references still config errors that name their key. The shipped configs are clean.

#[path = "support/bin.rs"]
mod bin;

use std::path::Path;
use std::process::Output;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/rsc-variants/traffic-rules.toml"
);
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");

fn fixture() -> String {
    std::fs::read_to_string(FIXTURE).unwrap()
}

/// `uplinkd check [--strict] --config <path>` with only the secrets a user adds (the runner's
/// own UPLINKD_* variables removed by `bin::uplinkd`).
fn check(path: &Path, strict: bool) -> Output {
    let mut args = vec!["check", "--config", path.to_str().unwrap()];
    if strict {
        args.push("--strict");
    }
    bin::uplinkd(&args)
        .env("UPLINKD_REST_PASSWORD", "test")
        .env("UPLINKD_REST_PIN_SHA256", "0".repeat(64))
        .output()
        .unwrap()
}

fn check_text(dir: &tempfile::TempDir, contents: &str, strict: bool) -> Output {
    let p = dir.path().join("uplinkd.toml");
    std::fs::write(&p, contents).unwrap();
    check(&p, strict)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn finding_lines(out: &Output) -> Vec<String> {
    text(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("warning: ") || l.starts_with("error: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_shipped_example_and_the_traffic_rules_fixture_have_no_findings() {
    for path in [EXAMPLE, FIXTURE] {
        for strict in [false, true] {
            let out = check(Path::new(path), strict);
            assert!(out.status.success(), "{path}: {}", text(&out.stderr));
            assert_eq!(finding_lines(&out), Vec::<String>::new(), "{path}");
        }
    }
}

#[test]
fn a_warning_is_printed_on_stderr_and_fails_only_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{}\n[[policy]]\nname = \"spare\"\nkind = \"only\"\nwans = [\"LTE\"]\n",
        fixture()
    );
    let out = check_text(&dir, &config, false);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        finding_lines(&out),
        ["warning: policy spare is used by no rule"]
    );
    // stdout is the effective configuration alone (the unused policy in it), no finding.
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("warning"), "{stdout}");
    assert!(
        stdout.contains("[reconcile]") && stdout.contains("name = \"spare\""),
        "{stdout}"
    );

    let strict = check_text(&dir, &config, true);
    assert!(!strict.status.success());
    assert_eq!(finding_lines(&strict), finding_lines(&out));
    assert!(
        text(&strict.stderr).contains("the policy check found 0 error(s) and 1 warning(s)"),
        "{}",
        text(&strict.stderr)
    );
    assert_eq!(strict.stdout, out.stdout);
}

#[test]
fn a_rule_shadowed_by_one_with_another_policy_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{}\n[[rule]]\nname = \"sip\"\nprotocol = \"udp\"\ndst_port = 5060\npolicy = \"fixed-ip\"\n",
        fixture()
    );
    for strict in [false, true] {
        let out = check_text(&dir, &config, strict);
        assert!(!out.status.success(), "strict {strict}");
        assert_eq!(
            finding_lines(&out),
            [
                "error: rule sip is shadowed by rule voip: every connection it matches is matched first by voip, so sip never applies"
            ]
        );
    }
}

#[test]
fn unknown_references_are_config_errors_naming_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            fixture().replace(
                "wans = [\"cable\", \"fibre\"]",
                "wans = [\"cable\", \"dsl\"]",
            ),
            "policy[1].wans[2]",
            "\"dsl\"",
        ),
        (
            fixture().replace(
                "src_address_list = \"servers\"\npolicy = \"fixed-ip\"",
                "src_address_list = \"servers\"\npolicy = \"nope\"",
            ),
            "rule[2].policy",
            "\"nope\"",
        ),
        (
            fixture().replace(
                "src_address_list = \"servers\"",
                "src_address_list = \"nobody\"",
            ),
            "rule[2].src_address_list",
            "\"nobody\"",
        ),
    ];
    for (config, key, value) in cases {
        assert_ne!(config, fixture(), "{key}: the replacement applied");
        let out = check_text(&dir, &config, false);
        assert!(!out.status.success(), "{key}");
        let err = text(&out.stderr);
        assert!(err.contains(key) && err.contains(value), "{key}: {err}");
        assert!(out.stdout.is_empty(), "{key}: no config printed");
    }
}
