//! `uplinkd run`: the daemon, wired from the configuration.

use std::sync::Arc;

use tokio::sync::watch;

use crate::app::{self, Hooks};
use crate::bus::Service;
use crate::config::Config;
use crate::notify::Notifier;
use crate::notify::service::AlertService;
use crate::reconciler::BootstrapStep;
use crate::routeros::Client;
use crate::status::service::{HISTORY_FILE, StatusService};

/// `uplinkd run`: the daemon, until SIGTERM or Ctrl-C.
pub fn main_run(config: Config) -> anyhow::Result<()> {
    use crate::config::Mode;
    use crate::probe::icmp::{IcmpProber, KindPreference};
    use crate::probe::remote::RemoteProber;
    use anyhow::Context as _;

    super::runtime()?.block_on(async move {
        let config = Arc::new(config);
        let client = crate::routeros::Client::new(&config.router.rest)
            .context("building the REST client")?;
        let client = Arc::new(client);
        // The status endpoint shows this client's request counters; the alert service reads
        // /system/resource and writes its lines to the router log through it.
        let services = daemon_services(&config, client.clone()).await?;
        // The base config is checked (and re-imported when missing or stale) at start and at
        // every resync, before reconcile reads the router.
        let hooks = Hooks {
            services,
            bootstrap: BootstrapStep::Run(Arc::new(crate::bootstrap::BaseConfig::new(
                client.clone(),
                config.clone(),
            ))),
        };
        match config.router.mode {
            Mode::Container => {
                // Finds each WAN's veth by its source address and installs the per-WAN routes
                // and rules in our namespace before opening the bound sockets.
                let prober = IcmpProber::for_container(&config.wans, KindPreference::Auto)
                    .context("preparing the probe paths and sockets")?;
                tracing::info!(kind = ?prober.kind(), "container mode: probing with ICMP");
                app::run(config, client, Arc::new(prober), hooks, termination()).await;
            }
            Mode::Remote => {
                // The router pings each WAN from that WAN's address; the rest is the same.
                let prober = RemoteProber::new((*client).clone(), &config.wans);
                tracing::info!("remote mode: the router probes each WAN over REST");
                app::run(config, client, Arc::new(prober), hooks, termination()).await;
            }
        }
        Ok(())
    })
}

/// Resolves on SIGTERM (`/container stop`) or Ctrl-C.
async fn termination() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            // Without a SIGTERM handler only Ctrl-C stops us; say so rather than fail.
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; stop with Ctrl-C");
                std::future::pending::<()>().await
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// Why the services could not be set up (the daemon does not start).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Notify(#[from] crate::notify::outbox::Error),
    #[error(transparent)]
    Status(#[from] crate::status::http::Error),
}

/// The daemon's alert and status services for `config`, sharing the REST client `router`.
/// Opens the alert queue and binds the status address now, so a bad path or address stops the
/// start, not a task later.
pub async fn daemon_services(
    config: &Arc<Config>,
    router: Arc<Client>,
) -> Result<Vec<Box<dyn Service>>, SetupError> {
    let (notifier, loaded) = Notifier::from_config(config)?;
    if let Some(aside) = &loaded.corrupt_moved_to {
        tracing::warn!(moved_to = %aside.display(), "alert queue file was corrupt; starting empty");
    }
    if loaded.pending > 0 {
        tracing::info!(
            pending = loaded.pending,
            "undelivered alerts carried over from before the restart"
        );
    }
    let (alerts_tx, alerts_rx) = watch::channel(notifier.status());
    let mut services: Vec<Box<dyn Service>> = vec![Box::new(AlertService::new(
        config,
        notifier,
        Some(router.clone()),
        alerts_tx,
    ))];
    if let Some(addr) = config.status.listen {
        let listener = crate::status::http::bind(addr).await?;
        tracing::info!(%addr, "status endpoint listening (/status, /metrics, /healthz)");
        let counted = router.clone();
        let rest = move || {
            counted
                .stats()
                .requests
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect()
        };
        services.push(Box::new(
            StatusService::new(config, listener, alerts_rx, Arc::new(rest))
                .with_identity(router.clone())
                .with_history_file(config.state_dir.join(HISTORY_FILE)),
        ));
    }
    Ok(services)
}
