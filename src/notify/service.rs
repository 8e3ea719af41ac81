//! The alert service the daemon runs (spawned by `app` through its [`Service`] hook): drives the
//! pure [`Schedule`] from link transitions, the clock and `/system/resource`, queues what it
//! says in the [`Notifier`] and delivers it, and hands its log lines to the router-log outbox.
//!
//! It reads tokio's clock (virtual under a paused runtime) and the wall clock to stamp alerts;
//! it never spawns tasks (it is one future that `app` spawns).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use super::outbox::AlertsStatus;
use super::outbox::Notifier;
use super::schedule::{LinkQuality, Policy, Schedule};
use crate::bus::{Event, LinkSnapshot, Service, ServiceContext};
use crate::config::Config;
use crate::format::LogLevel;
use crate::router::{Router, RouterLog};
use crate::types::LinkId;

/// How often `/system/resource` is read when a memory or CPU threshold is set.
pub const RESOURCE_INTERVAL: Duration = Duration::from_secs(60);

/// Alerts: schedule → outbox → channels, and the schedule's own log lines.
pub struct AlertService<R: Router> {
    schedule: Schedule,
    notifier: Notifier,
    router: Option<Arc<R>>,
    published: watch::Sender<AlertsStatus>,
}

impl<R: Router> AlertService<R> {
    pub fn new(
        config: &Config,
        notifier: Notifier,
        router: Option<Arc<R>>,
        published: watch::Sender<AlertsStatus>,
    ) -> Self {
        let policy = Policy::from_config(&config.alerts);
        let schedule = Schedule::new(policy, config.wans.iter().map(|w| w.id.clone()));
        Self {
            schedule,
            notifier,
            router,
            published,
        }
    }

    async fn run_loop(mut self, mut ctx: ServiceContext) {
        let policy = self.schedule.policy().clone();
        tracing::info!(
            channels = %self.notifier.channel_names().join(","),
            queue = %self.notifier.outbox().path().map_or("memory only".into(), |p| p.display().to_string()),
            "{}",
            policy.summary()
        );
        let sample = self.router.is_some() && (policy.memory.is_some() || policy.cpu.is_some());
        let mut resource_tick = tokio::time::interval(RESOURCE_INTERVAL);
        resource_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut shutdown = ctx.shutdown.clone();
        loop {
            self.flush(&ctx.router_log).await;
            let reminder = self
                .schedule
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            let delivery = self.notifier.next_due().map(|due| {
                let wait = due.duration_since(crate::clock::wall()).unwrap_or_default();
                // Whole seconds in the queue: wake just after the second turns.
                crate::clock::tokio_mono() + wait + Duration::from_millis(50)
            });
            tokio::select! {
                () = shutdown.recv() => break,
                ev = ctx.events.recv() => match ev {
                    Ok(Event::Transition { transition, outage, .. }) => {
                        let quality = quality_of(&ctx.links, &transition.link);
                        self.schedule.handle_transition(&transition, outage, quality);
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => tracing::warn!(missed = n, "alert service fell behind the event stream"),
                    Err(RecvError::Closed) => break,
                },
                () = sleep_until(reminder) => self.schedule.handle_timeout(now()),
                () = sleep_until(delivery) => {}
                _ = resource_tick.tick(), if sample => {
                    if let Some(r) = &self.router {
                        match r.resources().await {
                            Ok(s) => self.schedule.handle_resources(s),
                            Err(e) => tracing::debug!(error = %e, "reading /system/resource failed"),
                        }
                    }
                }
            }
        }
    }

    /// Queues new alerts, hands new log lines to the router-log outbox (reconcile writes them,
    /// in order, after the switch they follow), delivers what is due, publishes the queue.
    async fn flush(&mut self, router_log: &tokio::sync::mpsc::Sender<RouterLog>) {
        while let Some(line) = self.schedule.poll_log() {
            match line.level {
                // The message is the line itself (the seed's format, which users grep for).
                LogLevel::Info => tracing::info!("{}", line.message),
                LogLevel::Warning => tracing::warn!("{}", line.message),
                LogLevel::Error => tracing::error!("{}", line.message),
            }
            // A full outbox means the router has been unreachable for long: the line is in our
            // own log already.
            let _ = router_log.try_send(RouterLog {
                level: line.level,
                message: line.message,
            });
        }
        let now_wall = crate::clock::wall();
        while let Some(alert) = self.schedule.poll_alert() {
            tracing::info!(severity = alert.severity.as_str(), subject = %alert.subject, "alert raised");
            if let Err(e) = self.notifier.enqueue(alert, now_wall) {
                tracing::error!(error = %e, "alert could not be queued");
            }
        }
        let due = self
            .notifier
            .next_due()
            .is_some_and(|t| t <= crate::clock::wall());
        if due && let Err(e) = self.notifier.deliver_due(crate::clock::wall()).await {
            tracing::error!(error = %e, "alert queue could not be saved");
        }
        self.published.send_replace(self.notifier.status());
    }
}

impl<R: Router> Service for AlertService<R> {
    fn name(&self) -> &'static str {
        "alerts"
    }

    fn run(self: Box<Self>, ctx: ServiceContext) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.run_loop(ctx))
    }
}

fn quality_of(
    links: &[(LinkId, watch::Receiver<LinkSnapshot>)],
    id: &LinkId,
) -> Option<LinkQuality> {
    links
        .iter()
        .find(|(l, _)| l == id)
        .map(|(_, rx)| LinkQuality::from_stats(&rx.borrow().stats))
}

fn now() -> std::time::Instant {
    crate::clock::mono()
}

async fn sleep_until(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
