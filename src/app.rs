//! The shell: the only module that spawns tasks, owns channels and reads the clock. Wires probes →
//! health → policy → reconcile → REST, and events → alerts, logs, status.
//!
//! Tasks: one loop driving the [`Engine`] (probes sent concurrently, results and timers fed
//! back, its events → the reconcile task's `watch`, `[FAILOVER]` lines, the services), the
//! reconcile task, and every [`Service`] plugged in through [`Hooks`] (alerts, status). Shutdown is a value passed
//! in (mini-redis style); every task stops when it resolves.
//!
//! It must not decide anything itself: health decides states, policy the desired router state,
//! the planner the writes. It only moves values between them and stamps them with the time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;

use crate::config::Config;
use crate::engine::Engine;
use crate::format;
use crate::health::{LinkState, LinkStats, Transition};
use crate::probe::Prober;
use crate::reconcile::task::{
    self, BootstrapStep, FailureKind, LogLevel, Report, Request, Router, RouterLog, Wiring,
};
use crate::types::LinkId;

/// Something that happened, fanned out to every [`Service`] (alerts, status, the demo's timeline).
#[derive(Debug, Clone)]
pub enum Event {
    /// A WAN changed state (emitted once per edge, with its reason).
    Transition {
        transition: Transition,
        /// Wall-clock time of the transition (for alerts and status).
        wall: SystemTime,
        /// The outage this edge ends, from its first Down (see [`crate::engine::Outages`]).
        down_for: Option<Duration>,
        /// This WAN's failovers so far, this edge included.
        failovers: u64,
    },
    /// The desired router state changed (sent to reconcile).
    Desired {
        request: Request,
        at: std::time::Instant,
    },
    /// The outcome of a reconcile pass, or a dropped router-log line.
    Reconcile {
        report: Report,
        /// When the shell received it (the pass ended just before).
        at: std::time::Instant,
    },
}

/// What the shell hands a [`Service`].
pub struct ServiceContext {
    /// Every [`Event`] from the moment the service starts.
    pub events: broadcast::Receiver<Event>,
    /// The latest state and statistics of every WAN, in configuration order (updated after
    /// every probe outcome; read it when needed, e.g. on an HTTP request).
    pub links: Vec<(LinkId, watch::Receiver<LinkSnapshot>)>,
    /// The latest desired router state sent to reconcile.
    pub desired: watch::Receiver<Request>,
    /// The router-log outbox: reconcile writes its lines in order, each after the switch sent
    /// before it (the `[FAILOVER]` lines of the engine go through it too).
    pub router_log: mpsc::Sender<RouterLog>,
    pub shutdown: Shutdown,
}

/// A WAN's state and health statistics at one moment.
#[derive(Debug, Clone)]
pub struct LinkSnapshot {
    pub state: LinkState,
    pub stats: LinkStats,
}

/// A long-running consumer of [`Event`]s that the shell spawns (alerts, the status endpoint).
/// The future must end when `ctx.shutdown` fires; it must never block the runtime.
pub trait Service: Send + 'static {
    fn name(&self) -> &'static str;
    fn run(self: Box<Self>, ctx: ServiceContext) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// What an [`EventTap`] hands its closure.
#[derive(Debug, Clone)]
pub enum Tapped {
    Event(Event),
    /// The tap fell behind and this many events were dropped (the broadcast channel is bounded).
    Lagged(u64),
}

/// A [`Service`] that hands every event to a closure: the demo's journal, the tests' records.
pub struct EventTap<F> {
    name: &'static str,
    on_event: F,
}

impl<F: FnMut(Tapped) + Send + 'static> EventTap<F> {
    pub fn new(name: &'static str, on_event: F) -> Self {
        Self { name, on_event }
    }
}

impl<F: FnMut(Tapped) + Send + 'static> Service for EventTap<F> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(self: Box<Self>, ctx: ServiceContext) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let ServiceContext {
            mut events,
            mut shutdown,
            ..
        } = ctx;
        let mut on_event = self.on_event;
        Box::pin(async move {
            loop {
                tokio::select! {
                    biased;
                    ev = events.recv() => match ev {
                        Ok(ev) => on_event(Tapped::Event(ev)),
                        Err(broadcast::error::RecvError::Lagged(n)) => on_event(Tapped::Lagged(n)),
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    () = shutdown.recv() => return,
                }
            }
        })
    }
}

/// The plug points of the daemon.
#[derive(Default)]
pub struct Hooks {
    /// Consumers of [`Event`]s (the notify helper's alerts and status plug in here).
    pub services: Vec<Box<dyn Service>>,
    /// The base-config bootstrap run at start and at every resync.
    pub bootstrap: BootstrapStep,
}

/// A cloneable shutdown signal handed to every task.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A signal and the trigger that fires it (dropping the trigger fires it too).
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger(tx), Shutdown(rx))
    }

    /// Resolves once shutdown was requested.
    pub async fn recv(&mut self) {
        // An error means the trigger was dropped: shut down as well.
        let _ = self.0.wait_for(|fired| *fired).await;
    }

    pub fn is_fired(&self) -> bool {
        *self.0.borrow()
    }
}

/// Fires a [`Shutdown`].
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

impl ShutdownTrigger {
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }
}

/// The shell's clock: tokio's (virtual under a paused runtime), as the `std` instant the pure
/// core takes.
fn now() -> std::time::Instant {
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
        tasks.spawn(task::run(
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
        let out = format::state_change(tr, ev.down_for, None);
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
            down_for: ev.down_for,
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
                        calls = r.calls,
                        "reconcile: {} {} {}",
                        op.action,
                        op.menu,
                        op.tags.join(" ")
                    );
                }
                for wan in &r.flushed {
                    tracing::info!("reconcile: removing connections of {wan} (background job)");
                }
                let missing: Vec<String> = r.plan.missing.iter().map(|m| m.tag.clone()).collect();
                if missing != self.last_missing {
                    if !missing.is_empty() {
                        tracing::warn!(
                            "the router lacks {}: the base config must be (re-)imported",
                            missing.join(", ")
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
                    tracing::error!(retry_in = ?retry_in, "reconcile failed: {error}");
                } else {
                    tracing::warn!(
                        retry_in = ?retry_in,
                        consecutive,
                        "reconcile failed: {error}"
                    );
                }
            }
            Report::LogDropped { message, error } => {
                tracing::warn!("router log line dropped ({error}): {message}");
            }
        }
    }
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
                tracing::warn!("cannot watch SIGTERM ({e}); stop with Ctrl-C");
                std::future::pending::<()>().await
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// The runtime of every command: one thread (a router has few cores and the work is I/O).
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// `uplinkd run`: the daemon, until SIGTERM or Ctrl-C.
pub fn main_run(config: Config) -> anyhow::Result<()> {
    use crate::config::Mode;
    use crate::probe::icmp::{IcmpProber, KindPreference};
    use crate::probe::remote::RemoteProber;
    use anyhow::Context as _;

    runtime()?.block_on(async move {
        let config = Arc::new(config);
        let client = crate::routeros::Client::new(&config.router.rest)
            .context("building the REST client")?;
        let client = Arc::new(client);
        // The status endpoint shows this client's request counters; the alert service reads
        // /system/resource and writes its lines to the router log through it.
        let services = crate::notify::service::daemon_services(&config, client.clone()).await?;
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
                run(config, client, Arc::new(prober), hooks, termination()).await;
            }
            Mode::Remote => {
                // The router pings each WAN from that WAN's address; the rest is the same.
                let prober = RemoteProber::new((*client).clone(), &config.wans);
                tracing::info!("remote mode: the router probes each WAN over REST");
                run(config, client, Arc::new(prober), hooks, termination()).await;
            }
        }
        Ok(())
    })
}

/// `uplinkd apply`, run by a person: prints what importing the base config does (as `plan`),
/// then imports it and verifies it. The consent that `[router] apply_base = "manual"` withholds
/// from the daemon.
pub fn main_apply(config: Config) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write as _;
    runtime()?.block_on(async move {
        let client = crate::routeros::Client::new(&config.router.rest)
            .context("building the REST client")?;
        let diff = crate::bootstrap::base_plan(&client, &config).await?;
        let mut out = std::io::stdout();
        let _ = write!(out, "router {}: {diff}", config.router.rest.url);
        if diff.is_empty() {
            return Ok(());
        }
        let done = crate::bootstrap::ensure(&client, &config).await?;
        let _ = writeln!(
            out,
            "{}",
            match done {
                crate::bootstrap::BootstrapOutcome::UpToDate => "base config: already current",
                crate::bootstrap::BootstrapOutcome::Imported { .. } =>
                    "base config: imported and verified",
            }
        );
        Ok(())
    })
}

/// `uplinkd plan`: reads the router and prints what `run` would change at start (no probe
/// evidence yet, so every WAN carries). Writes nothing.
pub fn main_plan(config: Config) -> anyhow::Result<()> {
    use anyhow::Context as _;
    runtime()?.block_on(async move {
        let client = crate::routeros::Client::new(&config.router.rest)
            .context("building the REST client")?;
        let text = plan_text(&client, &config).await?;
        use std::io::Write as _;
        let _ = std::io::stdout().write_all(text.as_bytes());
        Ok(())
    })
}

/// The `uplinkd plan` report: the tagged objects found and the plan against the start-up
/// desired state.
pub async fn plan_text<R: Router>(api: &R, config: &Config) -> anyhow::Result<String> {
    let request = Engine::from_config(config, crate::health::Timing::Arrival, now()).request();
    let base = crate::bootstrap::base_plan(api, config).await?;
    let (observed, plan) = task::Reconciler::dry_run(api, &request.target).await?;
    let mut out = String::new();
    out.push_str(&format!("router {}: {base}\n", config.router.rest.url));
    out.push_str(&format!(
        "router {}: objects uplinkd switches (routes and PCC rules tagged uplinkd:)\n",
        config.router.rest.url
    ));
    let mut any = false;
    for o in &observed {
        if crate::reconcile::plan::classify(o.menu, &o.comment).is_some() {
            any = true;
            let state = match o.state {
                crate::reconcile::Switch::Enabled => "enabled",
                crate::reconcile::Switch::Disabled => "disabled",
            };
            out.push_str(&format!(
                "    {:<22} {:<6} {:<9} {}\n",
                o.menu.path(),
                o.id,
                state,
                o.comment
            ));
        }
    }
    if !any {
        out.push_str("    (none)\n");
    }
    out.push_str("\nplan (every WAN carrying, as at start; nothing was changed):\n");
    out.push_str(&plan.to_string());
    Ok(out)
}
