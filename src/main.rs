//! Thin entry point: parse the command line, dispatch. Everything else lives in the library.

use clap::Parser;
use uplinkd::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    uplinkd::logging::init(cli.log);
    let result: anyhow::Result<()> = match cli.command {
        Command::Check => {
            uplinkd::config::load(cli.config.as_deref(), &uplinkd::config::Env::from_process())
                .map(|config| print!("{}", config.effective()))
                .map_err(Into::into)
        }
        Command::Run | Command::Plan | Command::Simulate { .. } | Command::Demo => {
            Err(anyhow::anyhow!("not implemented yet"))
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("uplinkd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
