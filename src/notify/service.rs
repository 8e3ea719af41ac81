//! The alert and status services the daemon runs (shell parts, spawned by `app` through its
//! [`Service`] hook): the alert service drives the pure [`Schedule`] from link transitions, the
//! clock and `/system/resource`, queues what it says in the [`Notifier`] and delivers it; the
//! status service keeps a [`Tracker`] of the event stream and the graphs' [`History`] (sampled
//! from the links' statistics, kept in the state dir across restarts) and serves both over HTTP.
//!
//! They read tokio's clock (virtual under a paused runtime) and the wall clock to stamp alerts
//! and snapshots, as `app` does; they never spawn tasks (each is one future that `app` spawns).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use super::outbox::Notifier;
use super::schedule::{LinkQuality, Policy, Schedule};
use crate::app::{Event, LinkSnapshot, Service, ServiceContext};
use crate::config::Config;
use crate::format::LogLevel;
use crate::router::{Router, RouterLog};
use crate::routeros::{Client, Menu};
use crate::status::history::History;
use crate::status::http::{self as status_http, Source};
use crate::status::{AlertsStatus, LinkInput, Tracker, unix};
use crate::types::LinkId;

/// How often `/system/resource` is read when a memory or CPU threshold is set.
pub const RESOURCE_INTERVAL: Duration = Duration::from_secs(60);

/// Why the services could not be set up (the daemon does not start).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Notify(#[from] super::outbox::Error),
    #[error(transparent)]
    Status(#[from] status_http::Error),
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
        let listener = status_http::bind(addr).await?;
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
                    Ok(Event::Transition { transition, .. }) => {
                        let quality = quality_of(&ctx.links, &transition.link);
                        self.schedule.handle_transition(&transition, quality);
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

/// REST request counters by status label, read at request time.
pub type RestCounters = Arc<dyn Fn() -> BTreeMap<String, u64> + Send + Sync>;

/// The status endpoint: a [`Tracker`] fed by the event stream, snapshots built per request.
pub struct StatusService {
    labels: Vec<(LinkId, String)>,
    listener: tokio::net::TcpListener,
    alerts: watch::Receiver<AlertsStatus>,
    rest: RestCounters,
    identity: Option<Arc<Client>>,
    history: History,
    history_file: Option<std::path::PathBuf>,
}

/// The history file inside `state_dir`.
pub const HISTORY_FILE: &str = "history.json";
/// How often the links' statistics are sampled into the history (five per 10 s point).
pub const HISTORY_SAMPLE: Duration = Duration::from_secs(2);
/// How often the history file is rewritten (and once at shutdown): a crash loses at most this
/// much, and the router's flash sees one small write per interval.
pub const HISTORY_SAVE: Duration = Duration::from_secs(600);

/// The first and the longest wait between attempts to read `/system/identity`.
pub const IDENTITY_RETRY: (Duration, Duration) = (Duration::from_secs(2), Duration::from_secs(60));

/// The router's name, `/system/identity`'s `name`.
pub async fn read_identity(router: &Client) -> Result<String, String> {
    let p = router
        .singleton(&Menu::SYSTEM_IDENTITY)
        .await
        .map_err(|e| e.to_string())?;
    match p.str("name") {
        Some(name) if !name.is_empty() => Ok(name.to_string()),
        _ => Err("/system/identity has no name".to_string()),
    }
}

impl StatusService {
    pub fn new(
        config: &Config,
        listener: tokio::net::TcpListener,
        alerts: watch::Receiver<AlertsStatus>,
        rest: RestCounters,
    ) -> Self {
        let labels = config
            .wans
            .iter()
            .map(|w| (w.id.clone(), w.label.clone()))
            .collect();
        Self {
            labels,
            listener,
            alerts,
            rest,
            identity: None,
            history: History::new(config.wans.iter().map(|w| (&w.id, &w.monitors[..]))),
            history_file: None,
        }
    }

    /// Keeps the history in `path` across restarts (read at start, rewritten every
    /// [`HISTORY_SAVE`] and at shutdown; a corrupt or older file is replaced).
    pub fn with_history_file(mut self, path: std::path::PathBuf) -> Self {
        self.history_file = Some(path);
        self
    }

    /// Labels the snapshots with the router's identity, read from `router` at start (retried
    /// until the router answers; a rename shows after a restart).
    pub fn with_identity(mut self, router: Arc<Client>) -> Self {
        self.identity = Some(router);
        self
    }

    async fn run_loop(self, mut ctx: ServiceContext) {
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        let mut kept = self.history;
        if let Some(path) = &self.history_file {
            load_history(&mut kept, path);
        }
        let history = Arc::new(Mutex::new(kept));
        let snapshot = {
            let (tracker, links, labels, alerts, rest) = (
                tracker.clone(),
                ctx.links.clone(),
                self.labels,
                self.alerts,
                self.rest,
            );
            move || {
                let snaps: Vec<LinkSnapshot> =
                    links.iter().map(|(_, rx)| rx.borrow().clone()).collect();
                let inputs: Vec<LinkInput<'_>> = links
                    .iter()
                    .zip(&snaps)
                    .map(|((id, _), s)| LinkInput {
                        id,
                        label: labels
                            .iter()
                            .find(|(l, _)| l == id)
                            .map_or("", |(_, label)| label.as_str()),
                        state: s.state,
                        stats: Some(&s.stats),
                    })
                    .collect();
                let k = tracker.lock().ok()?;
                Some(k.build(
                    &inputs,
                    alerts.borrow().clone(),
                    rest(),
                    crate::clock::wall(),
                ))
            }
        };
        let mut stop = ctx.shutdown.clone();
        let source = PageFeed {
            snapshot,
            history: history.clone(),
        };
        let server = status_http::serve(
            self.listener,
            Arc::new(source) as Arc<dyn Source>,
            async move { stop.recv().await },
        );
        let mut shutdown = ctx.shutdown.clone();
        let mut sample = tokio::time::interval(HISTORY_SAMPLE);
        sample.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Saved every this many samples (one timer fewer in the loop: smaller router build).
        let save_every = (HISTORY_SAVE.as_secs() / HISTORY_SAMPLE.as_secs()).max(1);
        let mut samples = 0u64;
        let history_file = self.history_file;
        let events = async {
            loop {
                tokio::select! {
                    () = shutdown.recv() => break,
                    ev = ctx.events.recv() => {
                        let (Ok(mut k), Ok(mut h)) = (tracker.lock(), history.lock()) else { break };
                        match ev {
                            Ok(Event::Transition { transition, wall, failovers, .. }) => {
                                k.handle_transition(&transition, wall, failovers);
                                h.handle_transition(&transition, unix(wall));
                            }
                            Ok(Event::Reconcile { report, .. }) => {
                                k.handle_report(&report, crate::clock::wall());
                                h.handle_report(&report, unix(crate::clock::wall()));
                            }
                            Ok(_) => {}
                            Err(RecvError::Lagged(n)) => tracing::warn!(missed = n, "status fell behind the event stream"),
                            Err(RecvError::Closed) => break,
                        }
                    }
                    _ = sample.tick() => {
                        if let Ok(mut h) = history.lock() {
                            let now = unix(crate::clock::wall());
                            for (_, rx) in &ctx.links {
                                h.handle_stats(&rx.borrow().stats, now);
                            }
                        }
                        samples += 1;
                        if samples.is_multiple_of(save_every) {
                            save_history(&history, history_file.as_deref());
                        }
                    }
                }
            }
            save_history(&history, history_file.as_deref());
        };
        let mut stopped = ctx.shutdown.clone();
        let identity = async {
            let Some(router) = self.identity else { return };
            // Shutdown also ends a read in flight (a hung router must not delay the exit).
            tokio::select! {
                () = stopped.recv() => {}
                () = label_with_identity(&router, &tracker) => {}
            }
        };
        let (served, (), ()) = tokio::join!(server, events, identity);
        if let Err(e) = served {
            tracing::error!(error = %e, "status endpoint stopped");
        }
    }
}

/// The status endpoint's source: snapshots built per request, and the history.
struct PageFeed<F> {
    snapshot: F,
    history: Arc<Mutex<History>>,
}

impl<F: Fn() -> Option<crate::status::Snapshot> + Send + Sync + 'static> Source for PageFeed<F> {
    fn snapshot(&self) -> Option<crate::status::Snapshot> {
        (self.snapshot)()
    }

    fn history_json(&self) -> Option<String> {
        self.history.lock().ok().map(|h| h.to_json())
    }
}

/// Takes the kept history into `history`; a missing file is a first start, an unreadable one is
/// logged and left to be replaced by the next save.
fn load_history(history: &mut History, path: &std::path::Path) {
    let error = match std::fs::read_to_string(path) {
        Ok(json) => match history.load(&json, unix(crate::clock::wall())) {
            Ok(()) => return,
            Err(e) => e.to_string(),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => e.to_string(),
    };
    tracing::warn!(file = %path.display(), %error, "history file not used; the graphs start empty");
}

/// Writes the history file (atomically: a crash leaves the old file or the new one).
fn save_history(history: &Mutex<History>, path: Option<&std::path::Path>) {
    let Some(path) = path else { return };
    let Some(json) = history.lock().ok().map(|h| h.to_json()) else {
        return;
    };
    if let Err(e) = super::outbox::write_atomic(path, json.as_bytes()) {
        tracing::warn!(file = %path.display(), error = %e, "history file not written");
    }
}

/// Reads `/system/identity` until it answers (backing off), then hands the name to the tracker.
async fn label_with_identity(router: &Client, tracker: &Mutex<Tracker>) {
    let mut wait = IDENTITY_RETRY.0;
    loop {
        match read_identity(router).await {
            Ok(name) => {
                tracing::info!(router = %name, "metrics are labelled with the router's identity");
                if let Ok(mut k) = tracker.lock() {
                    k.handle_identity(&name);
                }
                return;
            }
            Err(e) => tracing::warn!(
                error = %e,
                retry_in = ?wait,
                "reading /system/identity failed; metrics carry no router label yet"
            ),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(IDENTITY_RETRY.1);
    }
}

impl Service for StatusService {
    fn name(&self) -> &'static str {
        "status"
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
