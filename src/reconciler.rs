//! The reconcile task: one pass = read the two menus, [`plan`](crate::reconcile::plan::plan), write, then the
//! connection flush as one background `/execute`. The loop runs one pass at a time, on the latest
//! desired state (a `watch` channel), on every periodic resync, and after an error when the pure
//! [`error_policy`] says so (backoff that resets on success).
//!
//! It must not spawn tasks, read the wall clock, or touch anything outside `/ip/route` and
//! `/ip/firewall/mangle` objects tagged `uplinkd:` (plus the flush and the router log). The
//! router behind it is the [`Router`] seam; the REST client implements it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::naming;
use crate::reconcile::plan::{self, Menu, Observed, Plan, Target};
use crate::types::LinkId;

pub use crate::router::{ApiError, FailureKind, LogLevel, Router, RouterLog};

pub use crate::reconcile::plan::{GlobalStatus, Request};

/// A step run before reading the router at start and at every resync: the bootstrap that
/// (re-)imports the base config when its tagged objects are missing or stale.
pub trait Bootstrap: Send + Sync + 'static {
    /// Makes sure the base config is on the router. Errors are reported and retried at the next
    /// resync; they never stop reconcile.
    fn ensure(&self)
    -> Pin<Box<dyn Future<Output = Result<BootstrapOutcome, String>> + Send + '_>>;
}

/// What a bootstrap step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootstrapOutcome {
    /// The base config was already there.
    Present,
    /// It was (re-)imported; the summary says what.
    Imported(String),
}

/// Whether and how the base config is ensured before passes.
#[derive(Clone, Default)]
pub enum BootstrapStep {
    /// Never (tests, `plan`, a router configured by hand).
    #[default]
    Skip,
    /// Run this at start and at each resync.
    Run(Arc<dyn Bootstrap>),
}

impl fmt::Debug for BootstrapStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootstrapStep::Skip => f.write_str("Skip"),
            BootstrapStep::Run(_) => f.write_str("Run(..)"),
        }
    }
}

/// Why a pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Start,
    /// The desired state changed.
    Desired,
    /// The periodic resync.
    Resync,
    /// A retry after an error.
    Retry,
}

/// The result of one successful pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub trigger: Trigger,
    /// The plan that was applied (a no-op when the router already matched).
    pub plan: Plan,
    /// WANs whose connections were flushed in this pass.
    pub flushed: Vec<LinkId>,
    /// REST calls made by this pass (reads, writes, execute).
    pub calls: u32,
    pub bootstrap: Option<BootstrapOutcome>,
}

/// What the task tells the shell after each pass.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Applied(PassReport),
    Failed {
        trigger: Trigger,
        error: ApiError,
        /// When the next attempt will be made.
        retry_in: Duration,
        consecutive: u32,
    },
    /// A router-log line could not be written (dropped after the retries).
    LogDropped {
        message: String,
        error: ApiError,
    },
}

/// What to do after a failed pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorAction {
    /// Try again after this long (a new desired state retries at once).
    RetryAfter(Duration),
}

/// Backoff bounds of [`error_policy`].
pub const BACKOFF_BASE: Duration = Duration::from_millis(250);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The pure error policy: how long to wait after the `consecutive`-th failure in a row (1-based).
/// Transient failures back off exponentially from [`BACKOFF_BASE`] to [`BACKOFF_MAX`]; a refused
/// request (an object vanished between read and write) re-reads at once; bad credentials wait the
/// maximum, since only a human can fix them.
pub fn error_policy(err: &ApiError, consecutive: u32) -> ErrorAction {
    let exp = |n: u32| {
        let factor = 1u32 << n.saturating_sub(1).min(16);
        BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_MAX)
    };
    ErrorAction::RetryAfter(match err.kind {
        FailureKind::Unauthorized => BACKOFF_MAX,
        FailureKind::Rejected | FailureKind::Decode if consecutive <= 1 => Duration::ZERO,
        FailureKind::Rejected | FailureKind::Decode => exp(consecutive),
        FailureKind::Timeout | FailureKind::Transport | FailureKind::Server => exp(consecutive),
    })
}

/// The script that removes the flushed WANs' connections and updates the status globals. The
/// globals come first: a flush racing with expiring entries may stop the script midway.
pub fn flush_script(flush: &[LinkId], globals: &BTreeMap<LinkId, GlobalStatus>) -> String {
    flush_and_release_script(flush, &[], globals)
}

/// [`flush_script`], also forgetting the sticky memories `release` names (rule, WAN): their
/// sources choose a WAN again. Before the connection flush, which may stop midway.
pub fn flush_and_release_script(
    flush: &[LinkId],
    release: &[(String, LinkId)],
    globals: &BTreeMap<LinkId, GlobalStatus>,
) -> String {
    let mut lines: Vec<String> = globals
        .iter()
        .map(|(wan, s)| format!(":global {wan}Status \"{}\"", s.as_str()))
        .collect();
    lines.extend(release.iter().map(|(rule, wan)| {
        format!(
            "/ip firewall address-list remove [find where list=\"{}\" || list=\"{}\"]",
            crate::traffic::sticky_src_list(rule, wan),
            crate::traffic::sticky_dst_list(rule, wan)
        )
    }));
    lines.extend(flush.iter().map(|wan| {
        format!(
            "/ip firewall connection remove [find where connection-mark=\"{}\"]",
            naming::conn_mark(wan)
        )
    }));
    lines.join("\n")
}

/// State that survives between passes.
#[derive(Debug, Default)]
pub struct Reconciler {
    /// WANs that went to standby whose flush has not run yet (kept across failed passes, so a
    /// failure after the switch never loses the flush).
    pending_flush: BTreeSet<LinkId>,
    /// Sticky memories to forget whose release has not run yet (as `pending_flush`).
    pending_release: BTreeSet<(String, LinkId)>,
    /// The globals last written successfully (`None`: never, so the first pass writes them).
    globals_written: Option<BTreeMap<LinkId, GlobalStatus>>,
}

impl Reconciler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the router and plans, without writing anything (`uplinkd plan`).
    pub async fn dry_run<R: Router>(
        api: &R,
        target: &Target,
    ) -> Result<(Vec<Observed>, Plan), ApiError> {
        let observed = read_all(api).await?;
        let plan = plan::plan(&observed, target);
        Ok((observed, plan))
    }

    /// One pass: read both menus, plan, write the ops, then one background `/execute` with the
    /// flush and the globals when either is due.
    pub async fn pass<R: Router>(
        &mut self,
        api: &R,
        request: &Request,
        trigger: Trigger,
        bootstrap: &BootstrapStep,
    ) -> Result<PassReport, ApiError> {
        let mut boot = None;
        if let (BootstrapStep::Run(b), Trigger::Start | Trigger::Resync) = (bootstrap, trigger) {
            match b.ensure().await {
                Ok(outcome) => boot = Some(outcome),
                Err(e) => tracing::warn!(error = %e, "bootstrap failed; reconciling what exists"),
            }
        }
        let mut calls = 0u32;
        let observed = read_all(api).await?;
        calls += Menu::ALL.len() as u32;
        let plan = plan::plan(&observed, &request.target);

        // A WAN that carries again must not be flushed by a stale pending entry.
        self.pending_flush.retain(|w| {
            request.target.wans.get(w) == Some(&plan::Want::Standby)
                && !everyone_carries(&request.target)
        });
        // Remembered before writing: if a write fails after the router applied it, the next
        // pass sees nothing left to switch but must still flush.
        self.pending_flush.extend(plan.flush.iter().cloned());
        // A memory whose WAN its rule may use again is kept: the sticky line is on again.
        self.pending_release.retain(|(rule, wan)| {
            !request
                .target
                .steer
                .get(rule)
                .is_some_and(|set| set.contains(wan))
        });
        self.pending_release.extend(plan.release.iter().cloned());
        for op in &plan.ops {
            calls += 1;
            api.write(op).await?;
        }
        // Only once every switch is in place do the flush: the seed did it before, a race.

        if matches!(trigger, Trigger::Resync) && !request.globals.is_empty() {
            calls += 1;
            let on_router = api.read_globals().await?;
            let intact = request.globals.iter().all(|(wan, g)| {
                on_router.get(&format!("{wan}Status")).map(String::as_str) == Some(g.as_str())
            });
            if !intact {
                // Cleared by a reboot or changed by hand: write them again.
                self.globals_written = None;
            }
        }
        let flush: Vec<LinkId> = self.pending_flush.iter().cloned().collect();
        let release: Vec<(String, LinkId)> = self.pending_release.iter().cloned().collect();
        let globals_due = self.globals_written.as_ref() != Some(&request.globals);
        if !flush.is_empty() || !release.is_empty() || (globals_due && !request.globals.is_empty())
        {
            let script = flush_and_release_script(&flush, &release, &request.globals);
            calls += 1;
            api.execute_background(&script).await?;
            self.pending_flush.clear();
            self.pending_release.clear();
            self.globals_written = Some(request.globals.clone());
        }
        Ok(PassReport {
            trigger,
            plan,
            flushed: flush,
            calls,
            bootstrap: boot,
        })
    }
}

impl Reconciler {
    /// Takes note of a failed pass: after a broken connection or a timeout the router may have
    /// rebooted, which clears `:global` variables, so the next good pass writes them again.
    pub fn note_failure(&mut self, err: &ApiError) {
        if matches!(err.kind, FailureKind::Transport | FailureKind::Timeout) {
            self.globals_written = None;
        }
    }
}

/// Whether the target makes every WAN carry (no WAN wants to: the planner then enables all).
fn everyone_carries(target: &Target) -> bool {
    !target.wans.values().any(|w| *w == plan::Want::Carry)
}

async fn read_all<R: Router>(api: &R) -> Result<Vec<Observed>, ApiError> {
    let mut observed = Vec::new();
    for menu in Menu::ALL {
        observed.extend(api.read(menu).await?);
    }
    Ok(observed)
}

/// How the task is wired (channel ends are owned by the shell and handed in).
pub struct Wiring {
    pub desired: watch::Receiver<Request>,
    pub logs: mpsc::Receiver<RouterLog>,
    pub reports: mpsc::UnboundedSender<Report>,
    pub resync_interval: Duration,
    pub bootstrap: BootstrapStep,
}

/// Log lines kept while the router is unreachable; older ones are dropped first.
const LOG_QUEUE_MAX: usize = 64;
/// Attempts per log line before it is dropped (logs must never hold up failover).
const LOG_ATTEMPTS: u32 = 3;

/// The reconcile loop. Returns when `shutdown` resolves or the desired-state sender is dropped.
pub async fn run<R: Router>(api: Arc<R>, wiring: Wiring, shutdown: impl Future<Output = ()>) {
    let Wiring {
        mut desired,
        mut logs,
        reports,
        resync_interval,
        bootstrap,
    } = wiring;
    tokio::pin!(shutdown);
    let mut rec = Reconciler::new();
    let mut trigger = Trigger::Start;
    let mut failures = 0u32;
    let mut log_queue: std::collections::VecDeque<(RouterLog, u32)> = Default::default();
    let mut logs_open = true;

    loop {
        let request = desired.borrow_and_update().clone();
        let wait = match rec.pass(api.as_ref(), &request, trigger, &bootstrap).await {
            Ok(report) => {
                failures = 0;
                let _ = reports.send(Report::Applied(report));
                resync_interval
            }
            Err(error) => {
                rec.note_failure(&error);
                failures = failures.saturating_add(1);
                let ErrorAction::RetryAfter(retry_in) = error_policy(&error, failures);
                let _ = reports.send(Report::Failed {
                    trigger,
                    error,
                    retry_in,
                    consecutive: failures,
                });
                retry_in
            }
        };
        let failed = failures > 0;

        // Router-log lines go out after the switch, never before it. A line is sent after the
        // desired state it reports (app), so when the desired state changed while this pass ran
        // (its lines may be among those just received), the next pass makes the switch first.
        while let Ok(line) = logs.try_recv() {
            push_log(&mut log_queue, line);
        }
        let behind = desired.has_changed().unwrap_or(false);
        if !failed && !behind {
            write_logs(api.as_ref(), &mut log_queue, &reports).await;
        }

        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        trigger = loop {
            tokio::select! {
                biased;
                () = &mut shutdown => return,
                changed = desired.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break Trigger::Desired;
                }
                () = &mut sleep => break if failed { Trigger::Retry } else { Trigger::Resync },
                line = logs.recv(), if logs_open => match line {
                    Some(line) => {
                        push_log(&mut log_queue, line);
                        while let Ok(line) = logs.try_recv() {
                            push_log(&mut log_queue, line);
                        }
                        if desired.has_changed().unwrap_or(false) {
                            break Trigger::Desired;
                        }
                        if !failed {
                            write_logs(api.as_ref(), &mut log_queue, &reports).await;
                        }
                    }
                    None => logs_open = false,
                },
            }
        };
    }
}

fn push_log(queue: &mut std::collections::VecDeque<(RouterLog, u32)>, line: RouterLog) {
    if queue.len() >= LOG_QUEUE_MAX {
        queue.pop_front();
    }
    queue.push_back((line, 0));
}

async fn write_logs<R: Router>(
    api: &R,
    queue: &mut std::collections::VecDeque<(RouterLog, u32)>,
    reports: &mpsc::UnboundedSender<Report>,
) {
    while let Some((line, attempts)) = queue.pop_front() {
        match api.log(line.level, &line.message).await {
            Ok(()) => {}
            Err(error) if attempts + 1 >= LOG_ATTEMPTS => {
                let _ = reports.send(Report::LogDropped {
                    message: line.message,
                    error,
                });
            }
            Err(_) => {
                // Keep it for the next successful pass; stop writing while the router fails.
                queue.push_front((line, attempts + 1));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: FailureKind) -> ApiError {
        ApiError {
            kind,
            operation: "read /ip/route".into(),
            message: "x".into(),
        }
    }

    #[test]
    fn the_router_log_queue_is_bounded_and_keeps_the_newest() {
        let mut q = std::collections::VecDeque::new();
        for i in 0..LOG_QUEUE_MAX + 10 {
            push_log(
                &mut q,
                RouterLog {
                    level: crate::types::LogLevel::Warning,
                    message: format!("line {i}"),
                },
            );
        }
        assert_eq!(q.len(), LOG_QUEUE_MAX);
        assert_eq!(q.front().map(|(l, _)| l.message.as_str()), Some("line 10"));
        assert_eq!(
            q.back().map(|(l, _)| l.message.clone()),
            Some(format!("line {}", LOG_QUEUE_MAX + 9))
        );
    }

    #[test]
    fn error_policy_table() {
        let ms = Duration::from_millis;
        let cases = [
            (FailureKind::Server, 1, ms(250)),
            (FailureKind::Server, 2, ms(500)),
            (FailureKind::Timeout, 3, ms(1000)),
            (FailureKind::Transport, 20, BACKOFF_MAX),
            (FailureKind::Rejected, 1, Duration::ZERO),
            (FailureKind::Rejected, 2, ms(500)),
            (FailureKind::Unauthorized, 1, BACKOFF_MAX),
        ];
        for (kind, n, want) in cases {
            assert_eq!(
                error_policy(&err(kind), n),
                ErrorAction::RetryAfter(want),
                "{kind:?} #{n}"
            );
        }
    }

    #[test]
    fn flush_script_sets_globals_then_flushes() {
        let g = BTreeMap::from([
            (LinkId::new("ISP1"), GlobalStatus::Down),
            (LinkId::new("ISP2"), GlobalStatus::Up),
        ]);
        assert_eq!(
            flush_script(&[LinkId::new("ISP1")], &g),
            ":global ISP1Status \"down\"\n:global ISP2Status \"up\"\n\
             /ip firewall connection remove [find where connection-mark=\"conn-ISP1\"]"
        );
    }
}
