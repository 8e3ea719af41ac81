//! The daemon's bus: the events the engine loop fans out, the context and trait of the services
//! that consume them (alerts, status, the demo's and the tests' taps), and the shutdown signal.
//! Types only and one trivial service: `app` owns the channels, the services live in their own
//! modules (`notify::service`, `status::service`) and import this, never `app`.

use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use tokio::sync::{broadcast, mpsc, watch};

use crate::engine::OutageMark;
use crate::health::{LinkState, LinkStats, Transition};
use crate::reconciler::{Report, Request};
use crate::router::RouterLog;
use crate::types::LinkId;

/// Something that happened, fanned out to every [`Service`] (alerts, status, the demo's timeline).
#[derive(Debug, Clone)]
pub enum Event {
    /// A WAN changed state (emitted once per edge, with its reason).
    Transition {
        transition: Transition,
        /// Wall-clock time of the transition (for alerts and status).
        wall: SystemTime,
        /// Where the edge stands in the WAN's outage (the engine's outage book).
        outage: OutageMark,
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
