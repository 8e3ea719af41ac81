//! The REST client proper: one HTTP/1.1 connection pool to one router, Basic auth, every call
//! bounded by the configured timeout, retried with a short bounded backoff only where repeating
//! the call cannot change the outcome (reads, absolute sets, enable/disable, delete), and counted
//! for metrics. Calls are serialized, because RouterOS runs one REST session per user and source
//! address: a second concurrent call would only queue on the router and eat its timeout there.
//!
//! This module does not decide *what* to change (that is `reconcile`) and does not parse
//! RouterOS values (that is `model`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde_json::{Map, Value};

use super::error::{Error, Method, chain};
use super::model::{
    self, ExecMode, Executed, LogLevel, Menu, Props, Query, Record, Removed, RosId, valid_name,
};
use super::rows::{Attrs, Item};
use super::tls;
use crate::config::{Rest, Trust};

/// How often and how patiently a safe call is repeated after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Pause before the second attempt; doubled for each further one.
    pub first_backoff: Duration,
    /// Upper bound of one pause.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 200 ms then 400 ms: a failover stays well inside a few seconds even when the
    /// router hiccups, and a dead router is reported quickly.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The pause after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Whether repeating a call is harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Reads, absolute sets, enable/disable, delete: the same call twice gives the same state.
    Safe,
    /// Add, commands, `/execute`, `/import`, log: a repeat could do the work twice.
    Never,
}

/// Whether a call changes the router (for the "no writes when nothing changed" counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallKind {
    Read,
    Write,
}

/// How one HTTP attempt ended; the label of `uplinkd_rest_requests_total{status=...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Status(u16),
    Timeout,
    Transport,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Status(s) => write!(f, "{s}"),
            Outcome::Timeout => f.write_str("timeout"),
            Outcome::Transport => f.write_str("transport"),
        }
    }
}

/// One HTTP attempt, as kept in the optional call log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    pub method: Method,
    /// `/rest/ip/route/*1` (no query string).
    pub path: String,
    pub kind: CallKind,
    pub outcome: Outcome,
}

/// Counters since the client was built. Take two snapshots and use [`Stats::since`] for a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// HTTP attempts by outcome (retries count as attempts).
    pub requests: BTreeMap<Outcome, u64>,
    /// Attempts that only read.
    pub reads: u64,
    /// Attempts that (may) change the router.
    pub writes: u64,
    /// Attempts that were repeats of a failed safe call.
    pub retries: u64,
    /// The last attempts (at most [`CALL_LOG_CAP`]), when the call log is on.
    pub log: Vec<CallRecord>,
}

/// The largest answer read (the biggest legitimate one, a `.proplist`-limited print of a large
/// menu, is far smaller); a bigger one is a `Decode` error, never unbounded memory.
pub const MAX_BODY: usize = 16 << 20;

/// How many attempts the optional call log keeps.
pub const CALL_LOG_CAP: usize = 1024;

impl Stats {
    /// All attempts.
    pub fn total(&self) -> u64 {
        self.requests.values().sum()
    }

    /// Attempts by status label (`"200"`, `"500"`, `"timeout"`, `"transport"`): the series of
    /// `uplinkd_rest_requests_total{status=...}` (`status::RestStatus::requests_total`).
    pub fn requests_by_label(&self) -> BTreeMap<String, u64> {
        self.requests
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect()
    }

    /// What happened after `earlier` (a snapshot of the same client).
    pub fn since(&self, earlier: &Stats) -> Stats {
        let requests = self
            .requests
            .iter()
            .map(|(k, v)| (*k, v - earlier.requests.get(k).copied().unwrap_or(0)))
            .filter(|(_, v)| *v > 0)
            .collect();
        let skip = self.log.len().min(earlier.log.len());
        Stats {
            requests,
            reads: self.reads - earlier.reads,
            writes: self.writes - earlier.writes,
            retries: self.retries - earlier.retries,
            log: self.log[skip..].to_vec(),
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    stats: Stats,
    log_on: bool,
}

/// A typed RouterOS REST client. Cheap to clone (shared inner state); calls through clones are
/// serialized too.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    retry: RetryPolicy,
}

struct Inner {
    http: reqwest::Client,
    /// `https://host[:port]` without a trailing slash or `/rest`.
    base: String,
    user: String,
    password: crate::types::Secret,
    timeout: Duration,
    session: tokio::sync::Mutex<()>,
    counters: Mutex<Counters>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base)
            .field("user", &self.inner.user)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// A successful (2xx) answer.
struct Answer {
    body: Vec<u8>,
}

impl Client {
    /// Builds a client for the configured router. Trust is always explicit (see
    /// [`Trust`]); plain HTTP only with `Trust::PlainHttp` and an `http://` URL.
    pub fn new(cfg: &Rest) -> Result<Self, Error> {
        tls::install_crypto_provider();
        let base = cfg.url.as_str().to_string();
        let https = cfg.url.is_https();
        let builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(cfg.timeout)
            .timeout(cfg.timeout)
            .pool_max_idle_per_host(1)
            .user_agent(concat!("uplinkd/", env!("CARGO_PKG_VERSION")));
        let builder = match (&cfg.trust, https) {
            (Trust::PlainHttp, false) => builder,
            (Trust::PlainHttp, true) => {
                return Err(Error::Config {
                    what: format!(
                        "{base}: trust = plain-http needs an http:// URL (and is for a trusted link only)"
                    ),
                });
            }
            (_, false) => {
                return Err(Error::Config {
                    what: format!(
                        "{base}: plain HTTP is used only when trust is set to plain-http explicitly; use https:// or set it"
                    ),
                });
            }
            (Trust::PinnedSha256(pin), true) => {
                builder.tls_backend_preconfigured(tls::pinned_config(*pin)?)
            }
            (Trust::PinPending, true) => {
                return Err(Error::Config {
                    what: format!(
                        "{base}: trust = pin-sha256 but no pin_sha256 yet; `uplinkd pin --url {base} --write CONFIG` reads it"
                    ),
                });
            }
            (Trust::CaFile(path), true) => builder.tls_certs_only(tls::load_ca_file(path)?),
            (Trust::WebPki, true) => builder.tls_certs_only(tls::webpki_roots()?),
        };
        let http = builder.build().map_err(|e| Error::Tls {
            subject: base.clone(),
            what: chain(&e),
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                user: cfg.user.clone(),
                password: cfg.password.clone(),
                timeout: cfg.timeout,
                session: tokio::sync::Mutex::new(()),
                counters: Mutex::new(Counters::default()),
            }),
            retry: RetryPolicy::default(),
        })
    }

    /// This client with another retry policy (tests use `max_attempts: 1` to see raw faults).
    /// Other clones keep theirs; all still share the connection, the session lock and counters.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Turns on the call log in [`Stats::log`] (for tests and `demo`).
    pub fn enable_call_log(&self) {
        self.counters().log_on = true;
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.counters().stats.clone()
    }

    /// `https://host[:port]`, for messages.
    /// The bound of one REST call (the configured `[rest] timeout`).
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        // A poisoned lock only means another thread panicked while counting; the counts are
        // still usable.
        self.inner
            .counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    // --------------------------------------------------------------------------------------------
    // Typed operations.

    /// `print`: every item of `menu` that `query` selects. A `GET` with `.proplist` and equality
    /// filters, or a `POST <menu>/print` with `.query` when the query has API query words.
    pub async fn print(&self, menu: &Menu, query: &Query) -> Result<Vec<Record>, Error> {
        self.print_decoded(menu, query, model::decode_records).await
    }

    /// `print` decoded as typed rows: asks for exactly [`Item::PROPLIST`] (the query's own
    /// proplist is replaced) and decodes every item, so a malformed row fails the read as
    /// `Error::Decode` naming the attribute.
    pub async fn items<T: Item>(&self, menu: &Menu, query: Query) -> Result<Vec<T>, Error> {
        let query = query.proplist(T::PROPLIST);
        self.print_decoded(menu, &query, |body| {
            model::decode_records(body)?
                .into_iter()
                .map(|r| T::decode(r.id, &r.props).map_err(|e| e.to_string()))
                .collect()
        })
        .await
    }

    /// A singleton menu (`/system/resource`) decoded as `T`.
    pub async fn attrs<T: Attrs>(&self, menu: &Menu) -> Result<T, Error> {
        self.read(menu.rest_path(), |body| {
            T::decode(&model::decode_singleton(body)?).map_err(|e| e.to_string())
        })
        .await
    }

    /// [`Client::run_rows`] with every row decoded as `T` (`/ping`).
    pub async fn run<T: Attrs>(&self, command: &Menu, args: &Props) -> Result<Vec<T>, Error> {
        self.run_decoded(command, args, |body| {
            model::decode_rows(body)?
                .iter()
                .map(|p| T::decode(p).map_err(|e| e.to_string()))
                .collect()
        })
        .await
    }

    async fn print_decoded<T>(
        &self,
        menu: &Menu,
        query: &Query,
        decode: impl FnOnce(&[u8]) -> Result<T, String>,
    ) -> Result<T, Error> {
        let mut proplist = query.proplist.clone();
        if !proplist.is_empty() && !proplist.iter().any(|p| p == ".id") {
            proplist.insert(0, ".id".to_owned());
        }
        let (method, path, params, body) = if query.words.is_empty() {
            let mut params = Vec::new();
            if !proplist.is_empty() {
                params.push((".proplist".to_owned(), proplist.join(",")));
            }
            params.extend(query.equal.iter().cloned());
            (Method::Get, menu.rest_path(), params, None)
        } else {
            let mut body = Map::new();
            if !proplist.is_empty() {
                body.insert(".proplist".into(), proplist.into());
            }
            let words: Vec<Value> = query
                .equal
                .iter()
                .map(|(k, v)| Value::from(format!("{k}={v}")))
                .chain(query.words.iter().map(|w| Value::from(w.as_str())))
                .collect();
            body.insert(".query".into(), Value::Array(words));
            (
                Method::Post,
                format!("{}/print", menu.rest_path()),
                Vec::new(),
                Some(Value::Object(body)),
            )
        };
        self.decoded(
            method,
            path,
            &params,
            body,
            CallKind::Read,
            Repeat::Safe,
            decode,
        )
        .await
    }

    /// One item by id (`GET <menu>/<id>`); a missing item is `Error::NotFound`.
    pub async fn get(&self, menu: &Menu, id: &RosId) -> Result<Record, Error> {
        let path = format!("{}/{}", menu.rest_path(), id);
        self.read(path, model::decode_record).await
    }

    /// The attributes of a menu without items (`/system/resource`, `/system/identity`).
    pub async fn singleton(&self, menu: &Menu) -> Result<Props, Error> {
        self.read(menu.rest_path(), model::decode_singleton).await
    }

    /// `add` (`PUT <menu>`): creates one item and returns its id. Never retried: a lost answer
    /// could otherwise create a duplicate; the next reconcile pass sees what exists.
    pub async fn add(&self, menu: &Menu, props: &Props) -> Result<RosId, Error> {
        let body = Some(props_json(props));
        self.decoded(
            Method::Put,
            menu.rest_path(),
            &[],
            body,
            CallKind::Write,
            Repeat::Never,
            model::decode_added_id,
        )
        .await
    }

    /// `set` (`PATCH <menu>/<id>`) to absolute values; retried when transient, since setting the
    /// same values twice is the same as once.
    pub async fn set(&self, menu: &Menu, id: &RosId, props: &Props) -> Result<(), Error> {
        let path = format!("{}/{}", menu.rest_path(), id);
        self.write(Method::Patch, &path, props, Repeat::Safe).await
    }

    /// `set` on a menu without items (`POST <menu>/set`), absolute values, retried when transient.
    pub async fn set_singleton(&self, menu: &Menu, props: &Props) -> Result<(), Error> {
        let path = format!("{}/set", menu.rest_path());
        self.write(Method::Post, &path, props, Repeat::Safe).await
    }

    /// `remove` (`DELETE <menu>/<id>`). A 404 means the item is already gone: success.
    pub async fn remove(&self, menu: &Menu, id: &RosId) -> Result<Removed, Error> {
        let path = format!("{}/{}", menu.rest_path(), id);
        match self
            .call(
                Method::Delete,
                &path,
                &[],
                None,
                CallKind::Write,
                Repeat::Safe,
            )
            .await
        {
            Ok(_) => Ok(Removed::Deleted),
            Err(Error::NotFound { .. }) => Ok(Removed::AlreadyGone),
            Err(e) => Err(e),
        }
    }

    /// Enables many items in one call (`POST <menu>/enable {"numbers":"*1,*2"}`). No ids, no call.
    pub async fn enable(&self, menu: &Menu, ids: &[RosId]) -> Result<(), Error> {
        self.toggle(menu, "enable", ids).await
    }

    /// Disables many items in one call (`POST <menu>/disable {"numbers":"*1,*2"}`).
    pub async fn disable(&self, menu: &Menu, ids: &[RosId]) -> Result<(), Error> {
        self.toggle(menu, "disable", ids).await
    }

    async fn toggle(&self, menu: &Menu, cmd: &str, ids: &[RosId]) -> Result<(), Error> {
        if ids.is_empty() {
            return Ok(());
        }
        let numbers = ids.iter().map(RosId::as_str).collect::<Vec<_>>().join(",");
        let path = format!("{}/{cmd}", menu.rest_path());
        let body = Props::new().with("numbers", numbers);
        self.write(Method::Post, &path, &body, Repeat::Safe).await
    }

    /// Any console command (`POST <menu>/<command>` with `args`); its `ret`, if any. Never
    /// retried: the client cannot know whether a command is idempotent.
    pub async fn command(
        &self,
        menu: &Menu,
        command: &str,
        args: &Props,
    ) -> Result<Option<String>, Error> {
        if !valid_name(command) {
            return Err(Error::Config {
                what: format!("{menu}: {command:?} is not a command name"),
            });
        }
        let path = format!("{}/{command}", menu.rest_path());
        let body = Some(props_json(args));
        self.decoded(
            Method::Post,
            path,
            &[],
            body,
            CallKind::Write,
            Repeat::Never,
            model::decode_ret,
        )
        .await
    }

    /// A command that answers with rows, such as `/ping` (`POST /rest/ping` with `count=1` gives
    /// one row per echo). `command` is the command's full path. Not a write, never retried (a
    /// repeat would run it twice; the caller decides what a failure means).
    pub async fn run_rows(&self, command: &Menu, args: &Props) -> Result<Vec<Props>, Error> {
        self.run_decoded(command, args, model::decode_rows).await
    }

    async fn run_decoded<T>(
        &self,
        command: &Menu,
        args: &Props,
        decode: impl FnOnce(&[u8]) -> Result<T, String>,
    ) -> Result<T, Error> {
        let body = Some(props_json(args));
        self.decoded(
            Method::Post,
            command.rest_path(),
            &[],
            body,
            CallKind::Read,
            Repeat::Never,
            decode,
        )
        .await
    }

    /// Runs a script with `/execute`. `Background` returns the job id at once (use it for work
    /// that may take long, like removing a WAN's connections); `Sync` waits for the output.
    /// Never retried.
    pub async fn execute(&self, script: &str, mode: ExecMode) -> Result<Executed, Error> {
        let path = "/rest/execute".to_owned();
        let mut body = Props::new().with("script", script);
        if mode == ExecMode::Sync {
            // The key's presence makes the call synchronous, whatever its value.
            body.insert("as-string".into(), String::new());
        }
        let body = Some(props_json(&body));
        self.decoded(
            Method::Post,
            path,
            &[],
            body,
            CallKind::Write,
            Repeat::Never,
            |b| model::decode_executed(mode, b),
        )
        .await
    }

    /// Writes a line to the router's log (`POST /log/<level> {"message"}`). Not retried (a
    /// repeat would duplicate the line).
    pub async fn log(&self, level: LogLevel, message: &str) -> Result<(), Error> {
        let path = format!("/rest/log/{}", level.as_str());
        let body = Props::new().with("message", message);
        self.write(Method::Post, &path, &body, Repeat::Never).await
    }

    /// Stores a text file on the router: replaces the contents of an existing file of that name
    /// (`PATCH /file/<id>`), else creates it (`PUT /file`). Returns the file's id.
    pub async fn upload(&self, name: &str, contents: &str) -> Result<RosId, Error> {
        let existing = self
            .print(
                &Menu::FILE,
                &Query::all().proplist(&[".id", "name"]).eq("name", name),
            )
            .await?;
        // The filter is applied by the router; check the name again so a router that ignores the
        // filter cannot make us overwrite another file.
        match existing.into_iter().find(|r| r.str("name") == Some(name)) {
            Some(file) => {
                self.set(
                    &Menu::FILE,
                    &file.id,
                    &Props::new().with("contents", contents),
                )
                .await?;
                Ok(file.id)
            }
            None => {
                self.add(
                    &Menu::FILE,
                    &Props::new().with("name", name).with("contents", contents),
                )
                .await
            }
        }
    }

    /// `/import file-name=<name>`. On failure the error is `Rejected` and its `detail()` is
    /// RouterOS's message with the failing line. Never retried (an import is not idempotent).
    pub async fn import(&self, file_name: &str) -> Result<(), Error> {
        let body = Props::new().with("file-name", file_name);
        self.write(Method::Post, "/rest/import", &body, Repeat::Never)
            .await
    }

    // --------------------------------------------------------------------------------------------
    // The shapes every operation above takes.

    /// A call whose answer is decoded; a body that does not decode is `Error::Decode`.
    #[expect(
        clippy::too_many_arguments,
        reason = "the one shape every REST call takes: method, path, query, body, kind, repeat, decoder"
    )]
    async fn decoded<T>(
        &self,
        method: Method,
        path: String,
        params: &[(String, String)],
        body: Option<Value>,
        kind: CallKind,
        repeat: Repeat,
        decode: impl FnOnce(&[u8]) -> Result<T, String>,
    ) -> Result<T, Error> {
        let answer = self.call(method, &path, params, body, kind, repeat).await?;
        decode(&answer.body).map_err(|what| Error::Decode { method, path, what })
    }

    /// A safe read of one path (`GET`, retried when transient), decoded.
    async fn read<T>(
        &self,
        path: String,
        decode: impl FnOnce(&[u8]) -> Result<T, String>,
    ) -> Result<T, Error> {
        self.decoded(
            Method::Get,
            path,
            &[],
            None,
            CallKind::Read,
            Repeat::Safe,
            decode,
        )
        .await
    }

    /// A write with a JSON body whose answer carries nothing we need.
    async fn write(
        &self,
        method: Method,
        path: &str,
        body: &Props,
        repeat: Repeat,
    ) -> Result<(), Error> {
        self.call(
            method,
            path,
            &[],
            Some(props_json(body)),
            CallKind::Write,
            repeat,
        )
        .await
        .map(drop)
    }

    // --------------------------------------------------------------------------------------------
    // The one place that talks HTTP.

    async fn call(
        &self,
        method: Method,
        path: &str,
        params: &[(String, String)],
        body: Option<Value>,
        kind: CallKind,
        repeat: Repeat,
    ) -> Result<Answer, Error> {
        let mut url =
            reqwest::Url::parse(&format!("{}{}", self.inner.base, path)).map_err(|e| {
                Error::Config {
                    what: format!("{method} {path}: not a valid URL: {e}"),
                }
            })?;
        if !params.is_empty() {
            url.set_query(Some(&query_string(params)));
        }
        // Serializing a `serde_json::Value` cannot fail.
        let body = body.map(|v| serde_json::to_vec(&v).unwrap_or_default());
        let attempts = match repeat {
            Repeat::Safe => self.retry.max_attempts.max(1),
            Repeat::Never => 1,
        };
        let mut attempt = 1;
        loop {
            let result = self
                .attempt(method, path, url.clone(), body.clone(), kind, attempt > 1)
                .await;
            match result {
                Err(e) if attempt < attempts && e.is_transient() => {
                    tracing::warn!(%method, path, attempt, error = %e, "REST call failed, retrying");
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn attempt(
        &self,
        method: Method,
        path: &str,
        url: reqwest::Url,
        body: Option<Vec<u8>>,
        kind: CallKind,
        is_retry: bool,
    ) -> Result<Answer, Error> {
        let http_method = match method {
            Method::Get => reqwest::Method::GET,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
            Method::Post => reqwest::Method::POST,
        };
        let mut req = self
            .inner
            .http
            .request(http_method, url)
            .basic_auth(&self.inner.user, Some(self.inner.password.expose()))
            .timeout(self.inner.timeout);
        if let Some(body) = body {
            // Exactly `application/json`: some RouterOS versions answer 415 to `; charset=...`.
            req = req
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body);
        }
        let result = {
            // One call at a time: RouterOS serializes a user's REST session anyway.
            let _session = self.inner.session.lock().await;
            match req.send().await {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let reason = resp.status().canonical_reason().unwrap_or("").to_owned();
                    let mut body = Vec::new();
                    loop {
                        match resp.chunk().await {
                            Ok(Some(chunk)) if body.len() + chunk.len() > MAX_BODY => {
                                break Err(Error::Decode {
                                    method,
                                    path: path.to_owned(),
                                    what: format!("the answer is larger than {MAX_BODY} bytes"),
                                });
                            }
                            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                            Ok(None) => break Ok((status, reason, body)),
                            Err(e) => break Err(self.transport(method, path, &e)),
                        }
                    }
                }
                Err(e) => Err(self.transport(method, path, &e)),
            }
        };
        let outcome = match &result {
            Ok((status, ..)) => Outcome::Status(*status),
            Err(Error::Timeout { .. }) => Outcome::Timeout,
            Err(_) => Outcome::Transport,
        };
        self.count(method, path, kind, outcome, is_retry);
        let (status, reason, body) = result?;
        tracing::debug!(%method, path, status, "REST call");
        if (200..300).contains(&status) {
            return Ok(Answer { body });
        }
        let eb = model::decode_error_body(&body);
        let path = path.to_owned();
        Err(match status {
            401 => Error::Unauthorized { method, path },
            404 => Error::NotFound {
                method,
                path,
                detail: eb.detail,
            },
            _ => Error::Rejected {
                method,
                path,
                status,
                message: eb.message.unwrap_or(reason),
                detail: eb.detail,
            },
        })
    }

    fn transport(&self, method: Method, path: &str, e: &reqwest::Error) -> Error {
        if e.is_timeout() {
            Error::Timeout {
                method,
                path: path.to_owned(),
                after: self.inner.timeout,
            }
        } else {
            Error::Transport {
                method,
                path: path.to_owned(),
                cause: chain(e),
            }
        }
    }

    fn count(&self, method: Method, path: &str, kind: CallKind, outcome: Outcome, is_retry: bool) {
        let mut c = self.counters();
        let s = &mut c.stats;
        *s.requests.entry(outcome).or_default() += 1;
        match kind {
            CallKind::Read => s.reads += 1,
            CallKind::Write => s.writes += 1,
        }
        if is_retry {
            s.retries += 1;
        }
        if c.log_on {
            let log = &mut c.stats.log;
            if log.len() == CALL_LOG_CAP {
                log.remove(0);
            }
            log.push(CallRecord {
                method,
                path: path.to_owned(),
                kind,
                outcome,
            });
        }
    }
}

/// `k=v&k=v` with RouterOS's own separators left readable: `,` in `.proplist=.id,comment` and
/// `:` and `*` in values stay as they are (RFC 3986 allows them in a query, and RouterOS's
/// documented examples send them raw); everything else outside the unreserved set is
/// percent-encoded, so `&`, `=`, `#`, `+`, spaces and non-ASCII cannot change the query.
fn query_string(params: &[(String, String)]) -> String {
    fn enc(out: &mut String, s: &str) {
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~,:*/".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    let mut out = String::new();
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        enc(&mut out, k);
        out.push('=');
        enc(&mut out, v);
    }
    out
}

fn props_json(props: &Props) -> Value {
    Value::Object(
        props
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Secret;

    fn rest(url: &str, trust: Trust) -> Rest {
        Rest {
            url: url.parse().expect("a REST URL"),
            user: "uplinkd".into(),
            password: Secret::new("pw"),
            trust,
            timeout: Duration::from_secs(2),
        }
    }

    #[test]
    fn trust_and_scheme_must_agree() {
        assert!(Client::new(&rest("http://127.0.0.1:1", Trust::PlainHttp)).is_ok());
        let e = Client::new(&rest("http://127.0.0.1:1", Trust::WebPki)).unwrap_err();
        assert!(e.to_string().contains("plain-http"), "{e}");
        let e = Client::new(&rest("https://127.0.0.1:1", Trust::PlainHttp)).unwrap_err();
        assert!(e.to_string().contains("http://"), "{e}");
        assert!(Client::new(&rest("https://127.0.0.1:1", Trust::WebPki)).is_ok());
        assert!(Client::new(&rest("https://127.0.0.1:1", Trust::PinnedSha256([7; 32]))).is_ok());
        let e = Client::new(&rest(
            "https://127.0.0.1:1",
            Trust::CaFile("/nonexistent.pem".into()),
        ))
        .unwrap_err();
        assert!(matches!(e, Error::Tls { .. }), "{e}");
    }

    #[test]
    fn query_strings_keep_routeros_separators_and_escape_the_rest() {
        let p = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            query_string(&[
                p(".proplist", ".id,comment"),
                p("comment", "uplinkd:route:ISP1-main")
            ]),
            ".proplist=.id,comment&comment=uplinkd:route:ISP1-main"
        );
        assert_eq!(
            query_string(&[p("comment", "a b&c=d#e+f%é")]),
            "comment=a%20b%26c%3Dd%23e%2Bf%25%C3%A9"
        );
    }

    #[test]
    fn backoff_is_bounded() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1), Duration::from_millis(200));
        assert_eq!(p.backoff(2), Duration::from_millis(400));
        assert_eq!(p.backoff(3), Duration::from_millis(800));
        assert_eq!(p.backoff(4), Duration::from_secs(1));
        assert_eq!(p.backoff(1000), Duration::from_secs(1));
    }

    #[test]
    fn stats_window() {
        let mut a = Stats::default();
        a.requests.insert(Outcome::Status(200), 3);
        a.reads = 3;
        let mut b = a.clone();
        *b.requests.entry(Outcome::Status(200)).or_default() += 1;
        b.requests.insert(Outcome::Timeout, 1);
        b.writes = 2;
        b.retries = 1;
        let d = b.since(&a);
        assert_eq!(d.total(), 2);
        assert_eq!(d.reads, 0);
        assert_eq!(d.writes, 2);
        assert_eq!(d.retries, 1);
        assert_eq!(Outcome::Timeout.to_string(), "timeout");
        let labels = b.requests_by_label();
        assert_eq!(labels.get("200"), Some(&4));
        assert_eq!(labels.get("timeout"), Some(&1));
        assert_eq!(Outcome::Status(503).to_string(), "503");
    }
}
