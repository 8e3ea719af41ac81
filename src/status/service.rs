//! The status service the daemon runs (spawned by `app` through its [`Service`] hook): keeps a
//! [`Tracker`] of the event stream and the graphs' [`History`] (sampled from the links'
//! statistics, kept in the state dir across restarts) and serves both over HTTP.
//!
//! It reads tokio's clock (virtual under a paused runtime) and the wall clock to stamp
//! snapshots; it never spawns tasks (it is one future that `app` spawns).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use super::history::History;
use super::http::Source;
use super::{AlertsStatus, LinkInput, Tracker, Traffic, unix};
use crate::bus::{Event, LinkSnapshot, Service, ServiceContext};
use crate::config::Config;
use crate::router::Router;
use crate::routeros::Client;
use crate::types::LinkId;

/// REST request counters by status label, read at request time.
pub type RestCounters = Arc<dyn Fn() -> BTreeMap<String, u64> + Send + Sync>;

/// The status endpoint: a [`Tracker`] fed by the event stream, snapshots built per request.
pub struct StatusService {
    /// Each WAN's label and tier, in configuration order.
    labels: Vec<(LinkId, String, u8)>,
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
    router.identity().await.map_err(|e| e.to_string())
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
            .map(|w| (w.id.clone(), w.label.clone(), w.tier.get()))
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
            let (tracker, links, labels, alerts, rest, desired) = (
                tracker.clone(),
                ctx.links.clone(),
                self.labels,
                self.alerts,
                self.rest,
                ctx.desired.clone(),
            );
            move || {
                let snaps: Vec<LinkSnapshot> =
                    links.iter().map(|(_, rx)| rx.borrow().clone()).collect();
                let traffic = Traffic::of_request(&desired.borrow());
                let rules = super::RuleStatus::of_request(&desired.borrow());
                let inputs: Vec<LinkInput<'_>> = links
                    .iter()
                    .zip(&snaps)
                    .map(|((id, _), s)| {
                        let (label, tier) = labels
                            .iter()
                            .find(|(l, _, _)| l == id)
                            .map_or(("", 1), |(_, label, tier)| (label.as_str(), *tier));
                        LinkInput {
                            id,
                            label,
                            state: s.state,
                            stats: Some(&s.stats),
                            traffic: traffic.get(id).copied(),
                            tier,
                        }
                    })
                    .collect();
                let k = tracker.lock().ok()?;
                Some(k.build_with_rules(
                    &inputs,
                    alerts.borrow().clone(),
                    rest(),
                    rules,
                    crate::clock::wall(),
                ))
            }
        };
        let mut stop = ctx.shutdown.clone();
        let source = PageFeed {
            snapshot,
            history: history.clone(),
        };
        let server = super::http::serve(
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
    if let Err(e) = crate::notify::outbox::write_atomic(path, json.as_bytes()) {
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
