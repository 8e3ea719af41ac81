//! Test support shared by unit and integration tests: environment-dependent tests (root, network
//! namespaces, an SMTP server) run where they can, skip with a reason where they cannot, and fail
//! instead of skipping when `UPLINKD_TEST_STRICT=1` (set by `.ci/run`).

/// The variable that turns a skip into a failure.
pub const STRICT_VAR: &str = "UPLINKD_TEST_STRICT";

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
            false
        }
    }
}

/// Whether we are root (needed for network namespaces and raw sockets).
pub fn is_root() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc_geteuid() };
    if euid == 0 {
        Ok(())
    } else {
        Err(format!("not root (euid {euid})"))
    }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
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
