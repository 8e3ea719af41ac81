//! The shell: the only module that spawns tasks, owns channels and reads the clock. Wires probes →
//! health → policy → reconcile → REST, and events → alerts, logs, status.
//!
//! Tasks: one probe task per WAN (drives its `health::Link`), one decision loop (transitions →
//! `policy::decide` → the reconcile task's `watch`, `[FAILOVER]` lines), the reconcile task, and
//! every [`Service`] plugged in through [`Hooks`] (alerts, status). Shutdown is a value passed
//! in (mini-redis style); every task stops when it resolves.
//!
//! It must not decide anything itself: health decides states, policy the desired router state,
//! the planner the writes. It only moves values between them and stamps them with the time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{broadcast, watch};

use crate::config::Config;
use crate::health::{LinkState, Transition};
use crate::probe::Prober;
use crate::reconcile::task::{BootstrapStep, Report, Request, RouterApi};
use crate::types::LinkId;

/// Something that happened, fanned out to every [`Service`] (alerts, status, the demo's timeline).
#[derive(Debug, Clone)]
pub enum Event {
    /// A WAN changed state (emitted once per edge, with its reason).
    Transition {
        transition: Transition,
        /// Wall-clock time of the transition (for alerts and status).
        wall: SystemTime,
    },
    /// The desired router state changed (sent to reconcile).
    Desired(Request),
    /// The outcome of a reconcile pass, or a dropped router-log line.
    Reconcile(Report),
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
    pub shutdown: Shutdown,
}

/// A WAN's state and health statistics at one moment.
#[derive(Debug, Clone)]
pub struct LinkSnapshot {
    pub state: LinkState,
}

/// A long-running consumer of [`Event`]s that the shell spawns (alerts, the status endpoint).
/// The future must end when `ctx.shutdown` fires; it must never block the runtime.
pub trait Service: Send + 'static {
    fn name(&self) -> &'static str;
    fn run(self: Box<Self>, ctx: ServiceContext) -> Pin<Box<dyn Future<Output = ()> + Send>>;
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

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{what} is not available in this build yet")]
    Unavailable { what: &'static str },
}

/// Runs the daemon until `shutdown` resolves.
pub async fn run<P: Prober, R: RouterApi>(
    config: Arc<Config>,
    api: Arc<R>,
    prober: Arc<P>,
    hooks: Hooks,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), AppError> {
    let _ = (config, api, prober, hooks, shutdown);
    Err(AppError::Unavailable {
        what: "the health engine",
    })
}
