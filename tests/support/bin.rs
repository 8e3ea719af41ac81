//! The `uplinkd` binary as a user runs it, for the tests that run the command line.

use std::process::Command;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_uplinkd");

/// The binary with `args` and none of the test runner's own UPLINKD_* variables.
pub(crate) fn uplinkd(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("UPLINKD_") {
            cmd.env_remove(k);
        }
    }
    cmd
}
