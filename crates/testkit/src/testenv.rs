//! Test support shared by unit and integration tests: environment-dependent tests (root, network
//! namespaces, an SMTP server) run where they can, skip with a reason where they cannot, and fail
//! instead of skipping when `UPLINKD_TEST_STRICT=1` (set by `.ci/run`).

/// The variable that turns a skip into a failure.
pub const STRICT_VAR: &str = "UPLINKD_TEST_STRICT";

/// `cmd` without the test runner's own `UPLINKD_*` variables (`UPLINKD_TEST_STRICT` above all):
/// a child `uplinkd` sees only what the test sets, as on a user's machine, and refuses an
/// `UPLINKD_*` name that is not a configuration key.
pub fn without_runner_env(cmd: &mut std::process::Command) -> &mut std::process::Command {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("UPLINKD_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Whether skips are forbidden (CI).
pub fn strict() -> bool {
    std::env::var(STRICT_VAR).is_ok_and(|v| v == "1")
}

/// Returns `true` when the test may run. When `available` is an error: in strict mode panics with
/// the reason (the test fails), otherwise prints the reason and returns `false` (the caller returns
/// early, i.e. skips).
pub fn require(what: &str, available: Result<(), String>) -> bool {
    match available {
        Ok(()) => true,
        Err(why) if strict() => panic!("{what} required ({STRICT_VAR}=1) but unavailable: {why}"),
        Err(why) => {
            // Straight to the process's stderr, not `eprintln!`: the test harness captures the
            // macro's output of a passing test, and a skip nobody sees looks like a pass.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIP {what}: {why} (set {STRICT_VAR}=1 to make this a failure)"
            );
            // The harness names each test's thread after the test.
            let test = std::thread::current().name().unwrap_or("?").to_string();
            record_skip(&format!("{test}: {what}: {why}"));
            false
        }
    }
}

/// Where skips are written for the run's summary (`tests/zz_skipped.rs`, which cargo runs last).
fn skip_log() -> std::path::PathBuf {
    std::env::temp_dir().join("uplinkd-test-skips.log")
}

/// Appends a skip, keyed by the parent process: every test binary of one `cargo test` is a child
/// of the same cargo process, so the summary lists this run's skips only.
fn record_skip(line: &str) {
    use std::io::Write as _;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(skip_log())
    {
        let _ = writeln!(f, "{}\t{line}", std::os::unix::process::parent_id());
    }
}

/// The skips recorded by the test binaries of this `cargo test` run.
pub fn skips_of_this_run() -> Vec<String> {
    let run = format!("{}\t", std::os::unix::process::parent_id());
    std::fs::read_to_string(skip_log())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix(&run).map(str::to_string))
        .collect()
}

/// Whether we are root (needed for network namespaces and raw sockets).
pub fn is_root() -> Result<(), String> {
    // The effective uid is the second field of `Uid:` in /proc/self/status (real, effective,
    // saved, filesystem): no `unsafe` call to geteuid needed.
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| "no effective uid in /proc/self/status".to_string())?;
    if euid == 0 {
        Ok(())
    } else {
        Err(format!("not root (euid {euid})"))
    }
}

/// Whether a program is on PATH.
pub fn have_program(name: &str) -> Result<(), String> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        Err(format!("`{name}` not found on PATH"))
    }
}
