//! The daemon's loop: the only place that spawns the daemon's tasks and owns their channels.
//! Wires probes → [`Engine`] (health, policy, outages) → reconcile → REST, and events → the
//! router-log outbox, alerts, status.
//!
//! Tasks: one loop driving the [`Engine`] (probes sent concurrently, results and timers fed
//! back, its events → the reconcile task's `watch`, `[FAILOVER]` lines, the services), the
//! reconcile task, and every [`Service`] plugged in through [`Hooks`] (alerts, status). Shutdown
//! is a value passed in (mini-redis style); every task stops when it resolves.
//!
//! It must not decide anything itself: health decides states, policy the desired router state,
//! the planner the writes. It only moves values between them and stamps them with the time.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;

use crate::bus::{Event, LinkSnapshot, Service, ServiceContext, Shutdown};
use crate::config::Config;
use crate::engine::Engine;
use crate::format;
use crate::probe::Prober;
use crate::reconciler::{
    self as reconciler, BootstrapStep, FailureKind, LogLevel, Report, Request, Router, RouterLog,
    Wiring,
};

/// The plug points of the daemon.
#[derive(Default)]
pub struct Hooks {
    /// Consumers of [`Event`]s (the notify helper's alerts and status plug in here).
    pub services: Vec<Box<dyn Service>>,
    /// The base-config bootstrap run at start and at every resync.
    pub bootstrap: BootstrapStep,
}

/// The shell's clock: tokio's (virtual under a paused runtime), as the `std` instant the pure
/// core takes.
pub(crate) fn now() -> std::time::Instant {
    crate::clock::mono()
}

/// Capacity of the event fan-out; a service that lags further loses the oldest events.
const EVENT_CAPACITY: usize = 256;

/// Runs the daemon until `shutdown` resolves: probes every WAN, fails over and back through
/// `api`, and feeds every [`Service`] of `hooks`.
pub async fn run<P: Prober, R: Router>(
    config: Arc<Config>,
    api: Arc<R>,
    prober: Arc<P>,
    hooks: Hooks,
    shutdown: impl Future<Output = ()> + Send,
) {
    let (trigger, stop) = Shutdown::new();
    let (events, _) = broadcast::channel(EVENT_CAPACITY);
    let mut tasks = JoinSet::new();
    let mut engine = Engine::from_config(&config, prober.timing(), now());

    tracing::info!(
        wans = config.wans.len(),
        params = ?config.health,
        resync = ?config.reconcile.resync_interval,
        "uplinkd starting with these effective health thresholds"
    );

    // Every WAN's latest state, for the services.
    let (snapshots, links): (Vec<_>, Vec<_>) = engine
        .links()
        .iter()
        .map(|l| {
            let (tx, rx) = watch::channel(LinkSnapshot {
                state: l.state(),
                stats: l.stats(),
            });
            (tx, (l.id().clone(), rx))
        })
        .unzip();

    // The reconcile task.
    let (desired_tx, desired_rx) = watch::channel(engine.request());
    let (logs_tx, logs_rx) = mpsc::channel::<RouterLog>(64);
    let (reports_tx, mut reports) = mpsc::unbounded_channel::<Report>();
    {
        let mut stop = stop.clone();
        tasks.spawn(reconciler::run(
            api,
            Wiring {
                desired: desired_rx.clone(),
                logs: logs_rx,
                reports: reports_tx,
                resync_interval: config.reconcile.resync_interval,
                bootstrap: hooks.bootstrap,
            },
            async move { stop.recv().await },
        ));
    }

    for service in hooks.services {
        let name = service.name();
        let ctx = ServiceContext {
            events: events.subscribe(),
            links: links.clone(),
            desired: desired_rx.clone(),
            router_log: logs_tx.clone(),
            shutdown: stop.clone(),
        };
        tracing::debug!(service = name, "starting service");
        tasks.spawn(service.run(ctx));
    }

    // The one loop: probes run concurrently, their results and the timers go to the engine,
    // its events to reconcile, the router's log and the services.
    tokio::pin!(shutdown);
    let mut reporter = ReportLog::default();
    let mut in_flight = JoinSet::new();
    let wait = engine.max_wait();
    loop {
        let t = now();
        while let Some((id, req)) = engine.poll_probe(t) {
            let prober = prober.clone();
            in_flight.spawn(async move {
                let result = prober.probe(&id, req.target, req.seq, wait).await;
                (id, req, result)
            });
        }
        publish(&mut engine, &desired_tx, &logs_tx, &events);
        for (tx, l) in snapshots.iter().zip(engine.links()) {
            tx.send_replace(LinkSnapshot {
                state: l.state(),
                stats: l.stats(),
            });
        }
        // Without any timer (no WAN has targets) wake up now and then anyway.
        let wake = engine
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| crate::clock::tokio_mono() + Duration::from_secs(60));
        tokio::select! {
            () = &mut shutdown => break,
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                if let Ok((id, req, result)) = done {
                    engine.handle_result(now(), &id, req.target, req.seq, result);
                }
            }
            () = tokio::time::sleep_until(wake) => engine.handle_timeout(now()),
            Some(report) = reports.recv() => {
                reporter.log(&report);
                let _ = events.send(Event::Reconcile { report, at: now() });
            }
        }
    }
    tracing::info!("shutting down");
    trigger.fire();
    in_flight.abort_all();
    while tasks.join_next().await.is_some() {}
}

/// Hands the engine's events on: the desired state to reconcile first, then each edge's line
/// (logged here, queued for the router's log when it is a `[FAILOVER]` line) and event, then
/// the new desired state's event.
fn publish(
    engine: &mut Engine,
    desired_tx: &watch::Sender<Request>,
    logs_tx: &mpsc::Sender<RouterLog>,
    events: &broadcast::Sender<Event>,
) {
    let mut batch = Vec::new();
    while let Some(ev) = engine.poll_event() {
        batch.push(ev);
    }
    if batch.is_empty() {
        return;
    }
    let wall = crate::clock::wall();
    let request = engine.request();
    // Only a real change wakes reconcile (a WAN entering `Recovering` changes nothing on the
    // router).
    let changed = desired_tx.send_if_modified(|cur| {
        let changed = *cur != request;
        if changed {
            *cur = request.clone();
        }
        changed
    });
    for ev in batch {
        let tr = &ev.transition;
        let out = format::state_change(tr, ev.outage.lasted(), None);
        match out.line.level {
            LogLevel::Info => tracing::info!(
                link = %tr.link, from = %tr.from, to = %tr.to, "{}", out.line.message
            ),
            _ => tracing::warn!(
                link = %tr.link, from = %tr.from, to = %tr.to, "{}", out.line.message
            ),
        }
        // The line after the desired state it reports: reconcile, seeing the line, sees the
        // change too, and writes the line only after the pass that makes it.
        if out.scope == format::Scope::Router {
            // A full queue means the router has been unreachable for long: the line is in our
            // own log already, so dropping it from the router's is acceptable.
            let _ = logs_tx.try_send(RouterLog {
                level: out.line.level,
                message: out.line.message,
            });
        }
        let _ = events.send(Event::Transition {
            transition: ev.transition,
            wall,
            outage: ev.outage,
            failovers: ev.failovers,
        });
    }
    if changed {
        let _ = events.send(Event::Desired { request, at: now() });
    }
}

/// Logs reconcile outcomes, each kind of problem once until it changes.
#[derive(Default)]
struct ReportLog {
    last_missing: Vec<String>,
}

impl ReportLog {
    fn log(&mut self, report: &Report) {
        match report {
            Report::Applied(r) => {
                for op in &r.plan.ops {
                    tracing::info!(
                        action = %op.action,
                        menu = %op.menu,
                        tags = %op.tags.join(" "),
                        calls = r.calls,
                        "reconcile applied"
                    );
                }
                for wan in &r.flushed {
                    tracing::info!(%wan, "reconcile: removing the WAN's connections (background job)");
                }
                let missing: Vec<String> = r.plan.missing.iter().map(|m| m.tag.clone()).collect();
                if missing != self.last_missing {
                    if !missing.is_empty() {
                        tracing::warn!(
                            missing = %missing.join(", "),
                            "the router lacks tagged objects: the base config must be (re-)imported"
                        );
                    }
                    self.last_missing = missing;
                }
            }
            Report::Failed {
                error,
                retry_in,
                consecutive,
                ..
            } => {
                if error.kind == FailureKind::Unauthorized {
                    tracing::error!(%error, retry_in = ?retry_in, "reconcile failed");
                } else {
                    tracing::warn!(%error, retry_in = ?retry_in, consecutive, "reconcile failed");
                }
            }
            Report::LogDropped { message, error } => {
                tracing::warn!(%error, line = %message, "router log line dropped");
            }
        }
    }
}
