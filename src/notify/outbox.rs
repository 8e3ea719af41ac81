//! Alerts are never lost: a bounded queue of alerts not yet delivered to every channel, kept in a
//! small JSON file in `state_dir` (written atomically: temp file, fsync, rename), retried with
//! exponential backoff, and when full it drops the least important oldest alert and says so.
//!
//! [`Outbox`] is the queue (file I/O, no network); [`Notifier`] puts it together with the
//! channels. Neither reads the clock nor spawns a task: `app` passes `now` and drives
//! [`Notifier::deliver_due`] when [`Notifier::next_due`] says so.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::email::EmailChannel;
use super::schedule::{Alert, Severity};
use super::webhook::WebhookChannel;
use crate::clock::unix;
use crate::config::Config;

/// The alert queue.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertsStatus {
    pub pending: Vec<PendingAlert>,
    pub sent_total: u64,
    pub failed_attempts_total: u64,
    /// Alerts dropped because the queue was full.
    pub dropped_total: u64,
}

/// An alert not yet delivered to every channel.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PendingAlert {
    pub subject: String,
    pub severity: String,
    pub created_unix: u64,
    pub attempts: u32,
    pub next_attempt_unix: u64,
    /// Channels still to deliver to (`email`, `webhook1:ntfy`, ...).
    pub channels: Vec<String>,
    pub last_error: Option<String>,
}

/// The queue file inside `state_dir`.
pub const FILE_NAME: &str = "alerts-outbox.json";
/// Default bound of the queue.
pub const DEFAULT_CAPACITY: usize = 200;
/// First retry delay; doubles per failed attempt up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(15);
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("alert queue: creating {path}: {cause}")]
    CreateDir {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("alert queue: writing {path}: {cause}")]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("alert queue: reading {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("alert queue: setting up channel: {0}")]
    Email(#[from] super::email::Error),
    #[error("alert queue: setting up channel: {0}")]
    Webhook(#[from] super::webhook::Error),
}

/// Delay before the next attempt after `attempts` failed ones (1 → 15 s, 2 → 30 s, ... ≤ 15 min).
pub fn backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    id: u64,
    alert: Alert,
    created_unix: u64,
    attempts: u32,
    next_attempt_unix: u64,
    /// Channels that still have to get it.
    pending: BTreeSet<String>,
    last_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct QueueFile {
    version: u32,
    next_id: u64,
    entries: Vec<Entry>,
}

/// What a push had to drop to stay within bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Dropped {
    pub subject: String,
    pub severity: Severity,
    pub undelivered_to: Vec<String>,
}

/// What opening the queue found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    /// Alerts carried over from before the restart.
    pub pending: usize,
    /// A file that could not be parsed was moved aside to this path (and the queue starts empty).
    pub corrupt_moved_to: Option<PathBuf>,
}

/// A due delivery: an alert and the channels it still has to reach.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    pub id: u64,
    pub alert: Alert,
    pub created: SystemTime,
    pub channels: Vec<String>,
}

/// The persistent, bounded retry queue.
#[derive(Debug)]
pub struct Outbox {
    /// `None`: memory only (no `state_dir`, or tests).
    path: Option<PathBuf>,
    capacity: usize,
    q: QueueFile,
    sent_total: u64,
    failed_attempts_total: u64,
    dropped_total: u64,
}

impl Outbox {
    /// A queue that does not survive a restart.
    pub fn in_memory(capacity: usize) -> Self {
        Self::with(None, capacity, QueueFile::default())
    }

    /// Opens (or starts) the queue file in `state_dir`. A corrupt file is moved aside, not fatal:
    /// the daemon must start, and the `Loaded` report says what happened.
    pub fn open(state_dir: &Path, capacity: usize) -> Result<(Self, Loaded), Error> {
        fs::create_dir_all(state_dir).map_err(|cause| Error::CreateDir {
            path: state_dir.to_path_buf(),
            cause,
        })?;
        let path = state_dir.join(FILE_NAME);
        let mut loaded = Loaded::default();
        let q = match fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<QueueFile>(&bytes) {
                Ok(q) => q,
                Err(_) => {
                    let aside = path.with_extension("json.corrupt");
                    fs::rename(&path, &aside).map_err(|cause| Error::Write {
                        path: aside.clone(),
                        cause,
                    })?;
                    loaded.corrupt_moved_to = Some(aside);
                    QueueFile::default()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => QueueFile::default(),
            Err(cause) => return Err(Error::Read { path, cause }),
        };
        loaded.pending = q.entries.len();
        Ok((Self::with(Some(path), capacity, q), loaded))
    }

    fn with(path: Option<PathBuf>, capacity: usize, mut q: QueueFile) -> Self {
        q.version = FORMAT_VERSION;
        let next = q.entries.iter().map(|e| e.id + 1).max().unwrap_or(0);
        q.next_id = q.next_id.max(next);
        Self {
            path,
            capacity: capacity.max(1),
            q,
            sent_total: 0,
            failed_attempts_total: 0,
            dropped_total: 0,
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn len(&self) -> usize {
        self.q.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.q.entries.is_empty()
    }

    /// Forgets channels that no longer exist (the config changed across a restart); entries left
    /// with no channel are done.
    pub fn retain_channels(&mut self, known: &[String]) -> Result<(), Error> {
        let before = self.q.entries.clone();
        for e in &mut self.q.entries {
            e.pending.retain(|c| known.contains(c));
        }
        self.q.entries.retain(|e| !e.pending.is_empty());
        if self.q.entries != before {
            self.persist()
        } else {
            Ok(())
        }
    }

    /// Queues an alert for `channels`, due at once. Returns what had to be dropped, if anything.
    pub fn push(
        &mut self,
        alert: Alert,
        channels: &[String],
        now: SystemTime,
    ) -> Result<Option<Dropped>, Error> {
        if channels.is_empty() {
            return Ok(None);
        }
        let mut dropped = None;
        if self.q.entries.len() >= self.capacity {
            // Least severe first, oldest first among equals; a critical alert goes last.
            if let Some(i) = self
                .q
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| (e.alert.severity, e.id))
                .map(|(i, _)| i)
            {
                let e = self.q.entries.remove(i);
                self.dropped_total += 1;
                dropped = Some(Dropped {
                    subject: e.alert.subject,
                    severity: e.alert.severity,
                    undelivered_to: e.pending.into_iter().collect(),
                });
            }
        }
        let id = self.q.next_id;
        self.q.next_id += 1;
        self.q.entries.push(Entry {
            id,
            alert,
            created_unix: unix(now),
            attempts: 0,
            next_attempt_unix: unix(now),
            pending: channels.iter().cloned().collect(),
            last_error: None,
        });
        self.persist()?;
        Ok(dropped)
    }

    /// Entries whose next attempt is due at `now`, oldest first.
    pub fn due(&self, now: SystemTime) -> Vec<Due> {
        let now = unix(now);
        self.q
            .entries
            .iter()
            .filter(|e| e.next_attempt_unix <= now)
            .map(|e| Due {
                id: e.id,
                alert: e.alert.clone(),
                created: SystemTime::UNIX_EPOCH + Duration::from_secs(e.created_unix),
                channels: e.pending.iter().cloned().collect(),
            })
            .collect()
    }

    /// Records one delivery round of entry `id`: `results` per channel tried. Channels that took
    /// it are done; if any failed, the entry backs off. Call [`Self::persist`] after a round.
    pub fn record(&mut self, id: u64, results: &[(String, Result<(), String>)], now: SystemTime) {
        let Some(i) = self.q.entries.iter().position(|e| e.id == id) else {
            return;
        };
        let e = &mut self.q.entries[i];
        let mut failed = Vec::new();
        for (channel, r) in results {
            match r {
                Ok(()) => {
                    e.pending.remove(channel);
                }
                Err(err) => failed.push(format!("{channel}: {err}")),
            }
        }
        if !failed.is_empty() {
            e.attempts += 1;
            self.failed_attempts_total += 1;
            e.next_attempt_unix = unix(now).saturating_add(backoff(e.attempts).as_secs());
            e.last_error = Some(failed.join("; "));
        }
        if e.pending.is_empty() {
            self.q.entries.remove(i);
            self.sent_total += 1;
        }
    }

    /// When the next entry is due, if any.
    pub fn next_due(&self) -> Option<SystemTime> {
        self.q
            .entries
            .iter()
            .map(|e| e.next_attempt_unix)
            .min()
            .map(|t| SystemTime::UNIX_EPOCH + Duration::from_secs(t))
    }

    /// The queue as the status endpoint shows it.
    pub fn status(&self) -> AlertsStatus {
        AlertsStatus {
            pending: self
                .q
                .entries
                .iter()
                .map(|e| PendingAlert {
                    subject: e.alert.subject.clone(),
                    severity: e.alert.severity.as_str().to_string(),
                    created_unix: e.created_unix,
                    attempts: e.attempts,
                    next_attempt_unix: e.next_attempt_unix,
                    channels: e.pending.iter().cloned().collect(),
                    last_error: e.last_error.clone(),
                })
                .collect(),
            sent_total: self.sent_total,
            failed_attempts_total: self.failed_attempts_total,
            dropped_total: self.dropped_total,
        }
    }

    /// Writes the queue file atomically (no-op for a memory-only queue).
    pub fn persist(&self) -> Result<(), Error> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        // Plain data with string keys: serializing cannot fail.
        let bytes = serde_json::to_vec_pretty(&self.q).unwrap_or_default();
        write_atomic(path, &bytes).map_err(|cause| Error::Write {
            path: path.clone(),
            cause,
        })
    }
}

/// temp file in the same directory, fsync, rename over, fsync the directory: a crash leaves
/// either the old file or the new one, never half of one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(d) = path.parent().and_then(|dir| fs::File::open(dir).ok()) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A delivery channel.
#[derive(Debug)]
pub enum Channel {
    Email(Box<EmailChannel>),
    Webhook(WebhookChannel),
}

impl Channel {
    pub fn name(&self) -> &str {
        match self {
            Channel::Email(c) => c.name(),
            Channel::Webhook(c) => c.name(),
        }
    }

    async fn send(&self, alert: &Alert, created: SystemTime) -> Result<(), String> {
        match self {
            Channel::Email(c) => c.send(alert, created).await.map_err(|e| e.to_string()),
            Channel::Webhook(c) => c.send(alert, created).await.map_err(|e| e.to_string()),
        }
    }
}

/// What one delivery round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Channel deliveries that succeeded.
    pub delivered: usize,
    /// Channel deliveries that failed (to be retried).
    pub failed: usize,
}

/// The channels and the queue, together.
#[derive(Debug)]
pub struct Notifier {
    outbox: Outbox,
    channels: Vec<Channel>,
}

impl Notifier {
    pub fn new(outbox: Outbox, channels: Vec<Channel>) -> Result<Self, Error> {
        let mut n = Self { outbox, channels };
        let names = n.channel_names();
        n.outbox.retain_channels(&names)?;
        Ok(n)
    }

    /// The channels and the queue file (in `state_dir`) of a config.
    pub fn from_config(cfg: &Config) -> Result<(Self, Loaded), Error> {
        let mut channels = Vec::new();
        if let Some(email) = &cfg.email {
            channels.push(Channel::Email(Box::new(EmailChannel::new(email, None)?)));
        }
        for (i, w) in cfg.webhooks.iter().enumerate() {
            channels.push(Channel::Webhook(WebhookChannel::new(i + 1, w)?));
        }
        let (outbox, loaded) = Outbox::open(&cfg.state_dir, DEFAULT_CAPACITY)?;
        Ok((Self::new(outbox, channels)?, loaded))
    }

    pub fn channel_names(&self) -> Vec<String> {
        self.channels.iter().map(|c| c.name().to_string()).collect()
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Queues an alert for every channel (persisted before this returns).
    pub fn enqueue(&mut self, alert: Alert, now: SystemTime) -> Result<(), Error> {
        let names = self.channel_names();
        if let Some(d) = self.outbox.push(alert, &names, now)? {
            tracing::warn!(
                subject = %d.subject,
                severity = d.severity.as_str(),
                undelivered_to = %d.undelivered_to.join(","),
                capacity = self.outbox.capacity,
                "alert queue full: dropped the least important oldest alert"
            );
        }
        Ok(())
    }

    /// Tries every due alert on every channel it still has to reach, then saves the queue.
    pub async fn deliver_due(&mut self, now: SystemTime) -> Result<Round, Error> {
        let mut round = Round::default();
        for due in self.outbox.due(now) {
            let mut results = Vec::new();
            for name in &due.channels {
                let Some(ch) = self.channels.iter().find(|c| c.name() == name) else {
                    continue;
                };
                let r = ch.send(&due.alert, due.created).await;
                match &r {
                    Ok(()) => {
                        round.delivered += 1;
                        tracing::info!(channel = %name, subject = %due.alert.subject, "alert delivered");
                    }
                    Err(e) => {
                        round.failed += 1;
                        tracing::warn!(channel = %name, subject = %due.alert.subject, error = %e, "alert delivery failed, will retry");
                    }
                }
                results.push((name.clone(), r));
            }
            self.outbox.record(due.id, &results, now);
        }
        if round != Round::default() {
            self.outbox.persist()?;
        }
        Ok(round)
    }

    /// When [`Self::deliver_due`] should run next.
    pub fn next_due(&self) -> Option<SystemTime> {
        self.outbox.next_due()
    }

    pub fn status(&self) -> AlertsStatus {
        self.outbox.status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::schedule::Event;
    use crate::types::LinkId;

    fn alert(n: u32, severity: Severity) -> Alert {
        Alert {
            severity,
            event: Event::LinkDown {
                link: LinkId::new("ISP1"),
                reason: format!("r{n}"),
            },
            subject: format!("a{n}"),
            body: String::new(),
        }
    }

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let got: Vec<u64> = (1..=9).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(got, [15, 30, 60, 120, 240, 480, 900, 900, 900]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn failed_channel_backs_off_and_succeeded_one_is_done() {
        let mut o = Outbox::in_memory(10);
        let chans = ["email".to_string(), "webhook1:json".to_string()];
        o.push(alert(1, Severity::Warning), &chans, t(0)).unwrap();
        let d = o.due(t(0));
        assert_eq!(d.len(), 1);
        o.record(
            d[0].id,
            &[
                ("email".into(), Err("refused".into())),
                ("webhook1:json".into(), Ok(())),
            ],
            t(0),
        );
        assert!(o.due(t(14)).is_empty());
        let d = o.due(t(15));
        assert_eq!(d[0].channels, ["email"]);
        assert_eq!(
            o.status().pending[0].last_error.as_deref(),
            Some("email: refused")
        );
        o.record(d[0].id, &[("email".into(), Err("refused".into()))], t(15));
        assert_eq!(o.next_due(), Some(t(45)));
        o.record(d[0].id, &[("email".into(), Ok(()))], t(45));
        assert!(o.is_empty());
        let s = o.status();
        assert_eq!((s.sent_total, s.failed_attempts_total), (1, 2));
    }

    #[test]
    fn full_queue_drops_least_severe_oldest_and_says_so() {
        let mut o = Outbox::in_memory(3);
        let ch = ["email".to_string()];
        o.push(alert(1, Severity::Warning), &ch, t(0)).unwrap();
        o.push(alert(2, Severity::Info), &ch, t(1)).unwrap();
        o.push(alert(3, Severity::Critical), &ch, t(2)).unwrap();
        let d = o
            .push(alert(4, Severity::Warning), &ch, t(3))
            .unwrap()
            .unwrap();
        assert_eq!((d.subject.as_str(), d.severity), ("a2", Severity::Info));
        let d = o
            .push(alert(5, Severity::Warning), &ch, t(4))
            .unwrap()
            .unwrap();
        assert_eq!(d.subject, "a1");
        let left: Vec<String> = o.status().pending.into_iter().map(|p| p.subject).collect();
        assert_eq!(left, ["a3", "a4", "a5"]);
        assert_eq!(o.status().dropped_total, 2);
    }

    #[test]
    fn survives_reopen_and_atomic_file_is_valid_json() {
        let dir = tempfile::tempdir().unwrap();
        let (mut o, l) = Outbox::open(dir.path(), 10).unwrap();
        assert_eq!(l, Loaded::default());
        o.push(alert(1, Severity::Warning), &["email".to_string()], t(0))
            .unwrap();
        drop(o);
        let (o, l) = Outbox::open(dir.path(), 10).unwrap();
        assert_eq!(l.pending, 1);
        assert_eq!(o.due(t(0))[0].alert, alert(1, Severity::Warning));
        assert!(!dir.path().join("alerts-outbox.json.tmp").exists());
        let v: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.path().join(FILE_NAME)).unwrap()).unwrap();
        assert_eq!(v["version"], 1);
    }

    #[test]
    fn corrupt_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        let (o, l) = Outbox::open(dir.path(), 10).unwrap();
        assert!(o.is_empty());
        assert_eq!(
            l.corrupt_moved_to,
            Some(dir.path().join("alerts-outbox.json.corrupt"))
        );
    }

    #[test]
    fn channels_gone_from_the_config_are_forgotten() {
        let mut o = Outbox::in_memory(10);
        o.push(
            alert(1, Severity::Warning),
            &["email".to_string(), "webhook1:ntfy".to_string()],
            t(0),
        )
        .unwrap();
        o.push(
            alert(2, Severity::Warning),
            &["webhook1:ntfy".to_string()],
            t(0),
        )
        .unwrap();
        o.retain_channels(&["email".to_string()]).unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(o.due(t(0))[0].channels, ["email"]);
    }
}
