//! The `uplinkd` binary as a user runs it, for the tests that run the command line.

use std::process::Command;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_uplinkd");

/// The binary with `args` and none of the test runner's own UPLINKD_* variables.
pub(crate) fn uplinkd(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    uplinkd_testkit::testenv::without_runner_env(&mut cmd);
    cmd
}
