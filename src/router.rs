//! The router port: every operation uplinkd performs on the router, as domain calls (read the
//! switched objects, apply a change, run the flush/globals script, write the log, read the
//! resources, check and import the base config), each one bounded REST request, with one error
//! type classified once ([`ApiError::from_rest`]). `routeros::Client` is the implementation;
//! reconcile, the bootstrap and the alert service all take a [`Router`].

use std::collections::BTreeMap;
use std::future::Future;

use crate::reconcile::plan::{Action, Menu, Observed, Op, RosId, Switch};
use crate::routeros::rows::{
    Commented, Enabled, FileEntry, Identity, ScriptVariable, SystemResource,
};
use crate::routeros::{self, Client};
use crate::types::ResourceSample;

/// What kind of failure a router call had; decides the retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// 401: wrong credentials or missing `rest-api` policy. Retrying will not help soon.
    Unauthorized,
    /// No answer within the call's bound.
    Timeout,
    /// Could not connect or the connection broke (router rebooting, TLS failure).
    Transport,
    /// 5xx from the router.
    Server,
    /// A 4xx other than 401: the router refused this request (an object vanished meanwhile, ...).
    Rejected,
    /// A 2xx answer we could not decode.
    Decode,
}

/// A failed router call, naming the operation and its subject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation}: {message}")]
pub struct ApiError {
    pub kind: FailureKind,
    /// `disable /ip/route`, `read /ip/firewall/mangle`, `flush connections`, ...
    pub operation: String,
    pub message: String,
}

pub use crate::routeros::LogLevel;

/// One line for the router's `/log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterLog {
    pub level: LogLevel,
    pub message: String,
}

/// The router as uplinkd needs it. Every call is one bounded REST request (removing objects or
/// a file: one per object).
pub trait Router: Send + Sync + 'static {
    /// Reads one menu with `.proplist=.id,comment,disabled`; every object, tagged or not (the
    /// planner ignores what is not ours, so a foreign object can never be mistaken for one).
    fn read(&self, menu: Menu) -> impl Future<Output = Result<Vec<Observed>, ApiError>> + Send;
    /// Applies one grouped op (one call: `enable`/`disable`/`remove` with the id list). Removing
    /// an object that is already gone is success.
    fn write(&self, op: &Op) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// Runs a script as a background job (`/execute` without `as-string`): returns at once, so the
    /// router's single REST session is not held while it runs.
    fn execute_background(&self, script: &str)
    -> impl Future<Output = Result<(), ApiError>> + Send;
    /// Reads the `:global` variables (`/system/script/environment`, name → value). Only
    /// resync passes read them: a reboot clears them without any other trace.
    fn read_globals(
        &self,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, ApiError>> + Send;
    /// Writes one line to the router log (`/log/info`, `/log/warning`, `/log/error`).
    fn log(
        &self,
        level: LogLevel,
        message: &str,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// The comments of every object of a menu (`/ip/route`), objects without one as `""`.
    fn comments(&self, menu: &str) -> impl Future<Output = Result<Vec<String>, ApiError>> + Send;
    /// Creates or replaces a file with the given text (`PUT /rest/file {name, contents}`).
    fn upload(
        &self,
        name: &str,
        contents: &str,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// Runs `/import file-name=<name>`.
    fn import(&self, name: &str) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// Removes a file; a missing file is not an error.
    fn remove_file(&self, name: &str) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// `/system/resource`: memory and CPU load, for the resource alerts.
    fn resources(&self) -> impl Future<Output = Result<ResourceSample, ApiError>> + Send;
    /// `/system/identity`'s name, for status and metrics.
    fn identity(&self) -> impl Future<Output = Result<String, ApiError>> + Send;
}

impl ApiError {
    /// Classifies a REST client error (the one place it is classified), naming the operation.
    pub fn from_rest(operation: impl Into<String>, err: &routeros::Error) -> Self {
        use routeros::Error as E;
        let kind = match err {
            E::Unauthorized { .. } => FailureKind::Unauthorized,
            E::Timeout { .. } => FailureKind::Timeout,
            E::Transport { .. } => FailureKind::Transport,
            E::Rejected { status, .. } if *status >= 500 => FailureKind::Server,
            E::Rejected { .. } | E::NotFound { .. } | E::Config { .. } => FailureKind::Rejected,
            E::Tls { .. } => FailureKind::Transport,
            E::Decode { .. } => FailureKind::Decode,
        };
        Self {
            kind,
            operation: operation.into(),
            message: err.to_string(),
        }
    }

    /// [`ApiError::from_rest`] with RouterOS's own words as the message when it gave some
    /// (an import error's `detail` names the line), else the whole error.
    pub fn from_rest_detail(operation: impl Into<String>, err: &routeros::Error) -> Self {
        let mut e = Self::from_rest(operation, err);
        if let Some(detail) = err.detail() {
            e.message = detail.to_owned();
        }
        e
    }
}

/// The REST client is the production [`Router`].
impl Router for Client {
    async fn read(&self, menu: Menu) -> Result<Vec<Observed>, ApiError> {
        let rows: Vec<Commented> = self
            .items(&menu.rest_menu(), routeros::Query::all())
            .await
            .map_err(|e| ApiError::from_rest(format!("read {menu}"), &e))?;
        Ok(rows
            .into_iter()
            .map(|r| Observed {
                menu,
                comment: r.comment,
                id: r.id,
                state: match r.enabled {
                    Enabled::Yes => Switch::Enabled,
                    Enabled::No => Switch::Disabled,
                },
            })
            .collect())
    }

    async fn write(&self, op: &Op) -> Result<(), ApiError> {
        let menu = op.menu.rest_menu();
        let what = || format!("{} {} {}", op.action, op.menu, join_ids(&op.ids));
        match op.action {
            Action::Enable => self.enable(&menu, &op.ids).await,
            Action::Disable => self.disable(&menu, &op.ids).await,
            // Removal is rare (a WAN left the config): one DELETE per object, because RouterOS
            // fails a grouped `remove` outright when one id is already gone, and a DELETE of a
            // missing object is success.
            Action::Remove => {
                for id in &op.ids {
                    self.remove(&menu, id)
                        .await
                        .map_err(|e| ApiError::from_rest(what(), &e))?;
                }
                Ok(())
            }
        }
        .map_err(|e| ApiError::from_rest(what(), &e))
    }

    async fn execute_background(&self, script: &str) -> Result<(), ApiError> {
        self.execute(script, routeros::ExecMode::Background)
            .await
            .map(|_| ())
            .map_err(|e| ApiError::from_rest("execute flush/globals", &e))
    }

    async fn read_globals(&self) -> Result<BTreeMap<String, String>, ApiError> {
        const OP: &str = "read /system/script/environment";
        let rows: Vec<ScriptVariable> = self
            .items(
                &routeros::Menu::SYSTEM_SCRIPT_ENVIRONMENT,
                routeros::Query::all(),
            )
            .await
            .map_err(|e| ApiError::from_rest(OP, &e))?;
        Ok(rows.into_iter().map(|v| (v.name, v.value)).collect())
    }

    async fn log(&self, level: LogLevel, message: &str) -> Result<(), ApiError> {
        Client::log(self, level, message)
            .await
            .map_err(|e| ApiError::from_rest(format!("log {}", level.as_str()), &e))
    }

    async fn comments(&self, menu: &str) -> Result<Vec<String>, ApiError> {
        let err = |e: routeros::Error| ApiError::from_rest_detail(format!("print {menu}"), &e);
        let m = routeros::Menu::parse(menu).map_err(|e| ApiError {
            kind: FailureKind::Rejected,
            operation: format!("print {menu}"),
            message: e.to_string(),
        })?;
        let rows: Vec<Commented> = self.items(&m, routeros::Query::all()).await.map_err(err)?;
        Ok(rows.into_iter().map(|r| r.comment).collect())
    }

    async fn upload(&self, name: &str, contents: &str) -> Result<(), ApiError> {
        Client::upload(self, name, contents)
            .await
            .map(drop)
            .map_err(|e| ApiError::from_rest_detail(format!("upload {name}"), &e))
    }

    async fn import(&self, name: &str) -> Result<(), ApiError> {
        Client::import(self, name)
            .await
            .map_err(|e| ApiError::from_rest_detail(format!("import {name}"), &e))
    }

    async fn remove_file(&self, name: &str) -> Result<(), ApiError> {
        let err =
            |e: routeros::Error| ApiError::from_rest_detail(format!("remove file {name}"), &e);
        let menu = routeros::Menu::FILE;
        let files: Vec<FileEntry> = self
            .items(&menu, routeros::Query::all().eq("name", name))
            .await
            .map_err(err)?;
        for f in files.iter().filter(|f| f.name == name) {
            self.remove(&menu, &f.id).await.map_err(err)?;
        }
        Ok(())
    }

    async fn resources(&self) -> Result<ResourceSample, ApiError> {
        let r: SystemResource = self
            .attrs(&routeros::Menu::SYSTEM_RESOURCE)
            .await
            .map_err(|e| ApiError::from_rest("read /system/resource", &e))?;
        Ok(ResourceSample::from_system_resource(
            r.total_memory.unwrap_or(0),
            r.free_memory.unwrap_or(0),
            r.cpu_load,
        ))
    }

    async fn identity(&self) -> Result<String, ApiError> {
        let id: Identity = self
            .attrs(&routeros::Menu::SYSTEM_IDENTITY)
            .await
            .map_err(|e| ApiError::from_rest("read /system/identity", &e))?;
        Ok(id.name)
    }
}

fn join_ids(ids: &[RosId]) -> String {
    ids.iter().map(RosId::as_str).collect::<Vec<_>>().join(",")
}
