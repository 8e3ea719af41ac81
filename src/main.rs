//! Thin entry point: parse the command line, dispatch. Everything else lives in the library.

use clap::Parser;
use uplinkd::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    uplinkd::logging::init(cli.log);
    let result: anyhow::Result<()> = match cli.command {
        Command::Check { strict } => {
            uplinkd::config::load(cli.config.as_deref(), &uplinkd::config::Env::from_process())
                .map_err(Into::into)
                .and_then(|config| {
                    emit(&config.effective());
                    uplinkd::cmd::check::report(&config, strict.into()).map_err(Into::into)
                })
        }
        Command::Render {
            script,
            routeros,
            image_file,
            remote_image,
            state_src,
            root_dir,
        } => cli
            .config
            .as_deref()
            .map(|path| {
                std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("cannot read the configuration file {}: {e}", path.display())
                })
            })
            .transpose()
            .and_then(|text| {
                let options = uplinkd::rsc::InstallOptions {
                    image: match remote_image {
                        Some(r) => uplinkd::rsc::ImageSource::Registry(r),
                        None => uplinkd::rsc::ImageSource::File(image_file),
                    },
                    state_src,
                    root_dir,
                };
                uplinkd::rsc::render_command(
                    text.as_deref(),
                    uplinkd::config::Env::from_process(),
                    script,
                    routeros.as_deref(),
                    &options,
                )
            })
            .map(|text| emit(&text)),
        Command::Simulate { file } => cli
            .config
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|path| {
                uplinkd::config::load_with(
                    Some(path),
                    &uplinkd::config::Env::from_process(),
                    uplinkd::config::Secrets::NotNeeded,
                )
                .map(|config| config.health)
            })
            .transpose()
            .map_err(anyhow::Error::from)
            .and_then(|health| {
                uplinkd::simulate::run_file(&file, health.as_ref()).map_err(Into::into)
            }),
        Command::Run => {
            uplinkd::config::load(cli.config.as_deref(), &uplinkd::config::Env::from_process())
                .map_err(Into::into)
                .and_then(uplinkd::cmd::run::main_run)
        }
        Command::Apply => {
            uplinkd::config::load(cli.config.as_deref(), &uplinkd::config::Env::from_process())
                .map_err(Into::into)
                .and_then(uplinkd::cmd::apply::main_apply)
        }
        Command::Plan => {
            uplinkd::config::load(cli.config.as_deref(), &uplinkd::config::Env::from_process())
                .map_err(Into::into)
                .and_then(uplinkd::cmd::plan::main_plan)
        }
        Command::Probe {
            interface,
            source,
            count,
            interval_ms,
            timeout_ms,
            socket,
            target,
        } => uplinkd::cmd::probe::main_probe(uplinkd::probe::oneshot::Request {
            interface,
            source,
            target,
            count,
            interval: std::time::Duration::from_millis(interval_ms),
            timeout: std::time::Duration::from_millis(timeout_ms),
            kind: socket.into(),
        }),
        Command::Pin {
            url,
            write,
            timeout_ms,
        } => uplinkd::pin::main_pin(&uplinkd::pin::Request {
            url,
            write,
            timeout: std::time::Duration::from_millis(timeout_ms),
        }),
        Command::Explain {
            src,
            dst,
            protocol,
            port,
            in_interface,
            if_down,
            json,
        } => uplinkd::config::load_with(
            cli.config.as_deref(),
            &uplinkd::config::Env::from_process(),
            uplinkd::config::Secrets::NotNeeded,
        )
        .map_err(anyhow::Error::from)
        .and_then(|config| {
            uplinkd::cmd::explain::main_explain(
                &config,
                &uplinkd::cmd::explain::Request {
                    src,
                    dst,
                    protocol,
                    port,
                    in_interface,
                    if_down,
                    json,
                },
            )
        })
        .map(|text| emit(&text)),
        Command::Status { url } => {
            uplinkd::cmd::status::main_status(cli.config.as_deref(), url.as_deref())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let err: &(dyn std::error::Error + 'static) = e.as_ref();
            eprintln!("uplinkd: {}", uplinkd::types::error_chain(err));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Prints a command's output. A reader that went away (`uplinkd render base | head`) is not an
/// error of ours: stop writing, exit normally.
fn emit(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
