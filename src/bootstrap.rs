//! Self-healing base config: at start and at each resync, checks over REST that the router holds
//! the base config this build renders (the marker script's comment carries the version and a
//! content hash) and every object it always creates (by tag, menu by menu). When the marker is
//! missing or stale, or a tagged object is gone, uploads the rendered script as a `/file` and
//! imports it, then checks again. An import error is reported with RouterOS's message and line.
//!
//! It never touches an object without an uplinkd tag (the script's own cleanup only removes
//! tagged objects) and never writes a secret: the rendered base config contains none.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use crate::config::Config;
use crate::router::{ApiError, Router};
use crate::rsc::{self, Expected, MARKER_SCRIPT};

/// Name of the uploaded script in the router's files (removed after the import).
pub const UPLOAD_NAME: &str = "uplinkd-base.rsc";

/// Why the base config was (re-)imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// No marker: a fresh router, or one reset or hand-cleaned.
    MarkerMissing,
    /// A marker from another version or another config.
    MarkerStale { found: String },
    /// The marker is current but tagged objects are gone (removed by hand, or a partial import).
    ObjectsMissing { missing: Vec<Expected> },
}

/// What `ensure` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootstrapOutcome {
    /// The router already holds this base config: nothing written.
    UpToDate,
    /// The base config was imported and verified.
    Imported { reason: Reason },
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("bootstrap: {0}")]
    Render(#[from] rsc::RenderError),
    #[error("bootstrap: checking the router: {0}")]
    Check(#[source] ApiError),
    #[error("bootstrap: uploading {UPLOAD_NAME}: {0}")]
    Upload(#[source] ApiError),
    /// RouterOS rejected the script: its message, and the line when it names one.
    #[error("bootstrap: importing {UPLOAD_NAME} failed{}: {message}{}", line.map(|l| format!(" at line {l}")).unwrap_or_default(), source_line.as_ref().map(|t| format!("; the line: {}", t.trim())).unwrap_or_default())]
    Import {
        message: String,
        line: Option<u32>,
        /// The text of that line of the rendered script, when known.
        source_line: Option<String>,
    },
    #[error("bootstrap: after the import the router still lacks: {}", list(.missing))]
    Verify { missing: Vec<String> },
}

fn list(v: &[String]) -> String {
    v.join(", ")
}

/// Checks the router against the base config `config` renders; imports it when missing or stale.
pub async fn ensure<C: Router>(
    client: &C,
    config: &Config,
) -> Result<BootstrapOutcome, BootstrapError> {
    let rendered = rsc::render_base(config)?;
    let expected = rsc::expected_objects(&rendered.text);
    let Some(reason) = check(client, &rendered.marker, &expected)
        .await
        .map_err(BootstrapError::Check)?
    else {
        return Ok(BootstrapOutcome::UpToDate);
    };
    tracing::info!(reason = ?reason, "importing the base config");

    client
        .upload(UPLOAD_NAME, &rendered.text)
        .await
        .map_err(BootstrapError::Upload)?;
    let imported = client.import(UPLOAD_NAME).await;
    // The file holds no secret, but nothing of ours should linger in the router's files.
    if let Err(e) = client.remove_file(UPLOAD_NAME).await {
        tracing::warn!(error = %e, "could not remove the uploaded base config file");
    }
    if let Err(e) = imported {
        let line = import_error_line(&e.message);
        return Err(BootstrapError::Import {
            source_line: line
                .and_then(|l| rendered.text.lines().nth(l.saturating_sub(1) as usize))
                .map(str::to_owned),
            message: e.message,
            line,
        });
    }

    match check(client, &rendered.marker, &expected)
        .await
        .map_err(BootstrapError::Check)?
    {
        None => Ok(BootstrapOutcome::Imported { reason }),
        Some(Reason::MarkerMissing) => Err(BootstrapError::Verify {
            missing: vec![format!("the marker /system/script {MARKER_SCRIPT}")],
        }),
        Some(Reason::MarkerStale { found }) => Err(BootstrapError::Verify {
            missing: vec![format!("the current marker (found {found:?})")],
        }),
        Some(Reason::ObjectsMissing { missing }) => Err(BootstrapError::Verify {
            missing: missing
                .into_iter()
                .map(|e| format!("{} {}", e.menu, e.tag))
                .collect(),
        }),
    }
}

/// `None` when the router holds the marker and every expected object; otherwise why not.
async fn check<C: Router>(
    client: &C,
    marker: &str,
    expected: &[Expected],
) -> Result<Option<Reason>, ApiError> {
    let scripts = client.comments("/system/script").await?;
    let markers: Vec<&String> = scripts
        .iter()
        .filter(|c| first_word(c).starts_with(&crate::naming::tag(rsc::SECTION_MARKER, "")))
        .collect();
    if !markers.iter().any(|c| c.as_str() == marker) {
        return Ok(Some(match markers.first() {
            None => Reason::MarkerMissing,
            Some(found) => Reason::MarkerStale {
                found: (*found).clone(),
            },
        }));
    }
    let mut by_menu: BTreeMap<&str, Vec<&Expected>> = BTreeMap::new();
    for e in expected {
        by_menu.entry(e.menu.as_str()).or_default().push(e);
    }
    let mut missing = Vec::new();
    for (menu, wanted) in by_menu {
        let have: BTreeSet<String> = client
            .comments(menu)
            .await?
            .iter()
            .map(|c| first_word(c).to_owned())
            .collect();
        missing.extend(
            wanted
                .into_iter()
                .filter(|e| !have.contains(&e.tag))
                .cloned(),
        );
    }
    Ok((!missing.is_empty()).then_some(Reason::ObjectsMissing { missing }))
}

/// What importing the base config would do to the router's tagged objects (`uplinkd plan`):
/// the marker's state and, menu by menu, the objects the import adds and the tagged objects it
/// removes. Objects without an uplinkd tag are never touched and never listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseDiff {
    /// `None` when the router holds this build's marker.
    pub reason: Option<Reason>,
    /// Menu, then the tags the import adds there.
    pub add: BTreeMap<String, Vec<String>>,
    /// Menu, then the tagged objects on the router that the script does not always re-create
    /// (its cleanup removes them; one under an `:if` is re-created when its condition holds).
    pub remove: BTreeMap<String, Vec<String>>,
    /// Tagged objects present, set in place to what the script says.
    pub kept: usize,
    /// The router-wide settings the import sets (`/ip settings set rp-filter=loose`, ...): not
    /// objects, so not tagged, and the part of an import that changes what you had.
    pub settings: Vec<String>,
}

impl BaseDiff {
    /// Whether `run` would import nothing.
    pub fn is_empty(&self) -> bool {
        self.reason.is_none() && self.add.is_empty()
    }
}

/// Pure: the diff of the expected objects against the first words of the router's comments per
/// menu (`have`), given why the marker check failed (`reason`, `None` = current).
pub fn base_diff(
    reason: Option<Reason>,
    expected: &[Expected],
    have: &BTreeMap<String, Vec<String>>,
) -> BaseDiff {
    let mut diff = BaseDiff {
        reason,
        add: BTreeMap::new(),
        remove: BTreeMap::new(),
        kept: 0,
        settings: Vec::new(),
    };
    let wanted: BTreeSet<(&str, &str)> = expected
        .iter()
        .map(|e| (e.menu.as_str(), e.tag.as_str()))
        .collect();
    for e in expected {
        let present = have
            .get(&e.menu)
            .is_some_and(|tags| tags.iter().any(|t| t == &e.tag));
        if present {
            diff.kept += 1;
        } else {
            diff.add
                .entry(e.menu.clone())
                .or_default()
                .push(e.tag.clone());
        }
    }
    for (menu, tags) in have {
        for tag in tags {
            if crate::naming::parse_tag(tag).is_some()
                && !wanted.contains(&(menu.as_str(), tag.as_str()))
            {
                diff.remove
                    .entry(menu.clone())
                    .or_default()
                    .push(tag.clone());
            }
        }
    }
    if diff.reason.is_none() && !diff.add.is_empty() {
        diff.reason = Some(Reason::ObjectsMissing {
            missing: expected
                .iter()
                .filter(|e| diff.add.get(&e.menu).is_some_and(|t| t.contains(&e.tag)))
                .cloned()
                .collect(),
        });
    }
    if diff.reason.is_none() {
        // The marker is current and every object is there: the import would not run.
        diff.remove.clear();
    }
    diff
}

/// The settings lines of a rendered base config, as `menu args`: a `set` of a menu's own
/// properties (`/ip settings set rp-filter=loose`) or of a named entry (`/ip service` then
/// `set telnet disabled=yes`), never a `set [find ...]` of uplinkd's own objects.
pub fn settings_of(script: &str) -> Vec<String> {
    let mut menu = String::new();
    let mut out = Vec::new();
    for line in script.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line.starts_with('/') {
            if let Some((path, args)) = line.split_once(" set ") {
                out.push(format!("{path} {args}"));
                continue;
            }
            if !line.contains('=') && !line.contains('[') {
                menu = line.to_string();
            }
            continue;
        }
        if let Some(args) = line.strip_prefix("set ")
            && !args.starts_with('[')
        {
            out.push(format!("{menu} {args}"));
        }
    }
    out
}

impl std::fmt::Display for BaseDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(reason) = &self.reason else {
            return writeln!(
                f,
                "base config: up to date ({} tagged objects): no changes",
                self.kept
            );
        };
        let why = match reason {
            Reason::MarkerMissing => "missing (no marker on the router)".to_string(),
            Reason::MarkerStale { found } => format!("stale (the router has {found:?})"),
            Reason::ObjectsMissing { missing } => {
                format!("incomplete ({} tagged object(s) missing)", missing.len())
            }
        };
        writeln!(f, "base config: {why}; importing it would:")?;
        for (menu, tags) in &self.add {
            writeln!(f, "    add     {menu} ({} object(s))", tags.len())?;
            for t in tags {
                writeln!(f, "        {t}")?;
            }
        }
        for (menu, tags) in &self.remove {
            writeln!(f, "    remove  {menu} ({} object(s))", tags.len())?;
            for t in tags {
                writeln!(f, "        {t}")?;
            }
        }
        for s in &self.settings {
            writeln!(f, "    set     {s}")?;
        }
        writeln!(
            f,
            "    set in place {} tagged object(s) already present",
            self.kept
        )
    }
}

/// Reads the router and diffs it against the base config `config` renders. Writes nothing.
pub async fn base_plan<C: Router>(client: &C, config: &Config) -> Result<BaseDiff, BootstrapError> {
    let rendered = rsc::render_base(config)?;
    let expected = rsc::expected_objects(&rendered.text);
    let reason = check(client, &rendered.marker, &expected)
        .await
        .map_err(BootstrapError::Check)?;
    let menus: BTreeSet<&str> = expected.iter().map(|e| e.menu.as_str()).collect();
    let mut have = BTreeMap::new();
    for menu in menus {
        let tags = client
            .comments(menu)
            .await
            .map_err(BootstrapError::Check)?
            .iter()
            .map(|c| first_word(c).to_owned())
            .filter(|w| crate::naming::parse_tag(w).is_some())
            .collect();
        have.insert(menu.to_owned(), tags);
    }
    let mut diff = base_diff(reason, &expected, &have);
    if diff.reason.is_some() {
        diff.settings = settings_of(&rendered.text);
    }
    Ok(diff)
}

fn first_word(comment: &str) -> &str {
    comment.split_whitespace().next().unwrap_or("")
}

/// The line number RouterOS names in an import error (`... (line 12 column 5)`), if any.
pub fn import_error_line(detail: &str) -> Option<u32> {
    let at = detail.find("line ")? + 5;
    let digits: String = detail[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The bootstrap as the reconcile task runs it at start and at each resync.
pub struct BaseConfig<C> {
    pub client: std::sync::Arc<C>,
    pub config: std::sync::Arc<Config>,
    /// Failed imports of this rendered script, so a script the router rejects is not imported
    /// again at every resync.
    retry: std::sync::Mutex<ImportRetry>,
}

impl<C> BaseConfig<C> {
    pub fn new(client: std::sync::Arc<C>, config: std::sync::Arc<Config>) -> Self {
        Self {
            client,
            config,
            retry: std::sync::Mutex::default(),
        }
    }
}

/// First wait after a failed import, doubling per failure of the same script up to
/// [`IMPORT_RETRY_MAX`]. A different script (another config or version) is tried at once.
pub const IMPORT_RETRY_FIRST: Duration = Duration::from_secs(60);
pub const IMPORT_RETRY_MAX: Duration = Duration::from_secs(3600);

/// Pure: when the import of a rendered script (known by its marker) may run again.
#[derive(Debug, Default)]
pub struct ImportRetry {
    failed: Option<(String, u32, std::time::Instant)>,
}

impl ImportRetry {
    /// `Err(wait)` while the same script failed and its backoff has not passed.
    pub fn check(&self, marker: &str, now: std::time::Instant) -> Result<(), (u32, Duration)> {
        match &self.failed {
            Some((m, n, at)) if m == marker => {
                let wait = IMPORT_RETRY_FIRST
                    .saturating_mul(1u32 << (n.saturating_sub(1)).min(16))
                    .min(IMPORT_RETRY_MAX);
                let due = at.checked_add(wait).unwrap_or(*at);
                if now < due {
                    Err((*n, due - now))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    pub fn failed(&mut self, marker: &str, now: std::time::Instant) {
        let n = match &self.failed {
            Some((m, n, _)) if m == marker => n.saturating_add(1),
            _ => 1,
        };
        self.failed = Some((marker.to_string(), n, now));
    }

    pub fn succeeded(&mut self) {
        self.failed = None;
    }
}

impl<C: Router + Send + Sync + 'static> crate::reconciler::Bootstrap for BaseConfig<C> {
    fn ensure(
        &self,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<crate::reconciler::BootstrapOutcome, String>> + Send + '_>,
    > {
        use crate::reconciler::BootstrapOutcome as Done;
        Box::pin(async move {
            if self.config.router.apply_base == crate::config::ApplyBase::Manual {
                // No consent to import: check only, and say how a person applies it. Reconcile
                // then switches only what exists; probing and alerts go on.
                return match base_plan(self.client.as_ref(), &self.config).await {
                    Ok(diff) if diff.is_empty() => Ok(Done::Present),
                    Ok(diff) => Err(format!(
                        "{}; not importing it by itself ([router] apply_base = \"manual\"): \
                         run `uplinkd plan` to see it, then `uplinkd apply`",
                        diff.to_string()
                            .lines()
                            .next()
                            .unwrap_or("base config not applied")
                    )),
                    Err(e) => Err(e.to_string()),
                };
            }
            let marker = rsc::render_base(&self.config)
                .map(|r| r.marker)
                .map_err(|e| e.to_string())?;
            let now = crate::clock::mono();
            let waiting = self
                .retry
                .lock()
                .map_err(|_| "bootstrap: retry state poisoned".to_string())?
                .check(&marker, now);
            if let Err((failures, wait)) = waiting {
                return Err(format!(
                    "bootstrap: the import of this base config failed {failures} time(s); next \
                     attempt in {} (a changed config is tried at once)",
                    humantime::format_duration(Duration::from_secs(wait.as_secs()))
                ));
            }
            let result = ensure(self.client.as_ref(), &self.config).await;
            if let Ok(mut r) = self.retry.lock() {
                match &result {
                    Err(BootstrapError::Import { .. } | BootstrapError::Verify { .. }) => {
                        r.failed(&marker, now);
                    }
                    Ok(_) => r.succeeded(),
                    // The router did not answer: no verdict on the script.
                    Err(_) => {}
                }
            }
            match result {
                Ok(BootstrapOutcome::UpToDate) => Ok(Done::Present),
                Ok(BootstrapOutcome::Imported { reason }) => Ok(Done::Imported(match reason {
                    Reason::MarkerMissing => {
                        "base config imported (no marker on the router)".into()
                    }
                    Reason::MarkerStale { found } => {
                        format!("base config re-imported (the router had {found:?})")
                    }
                    Reason::ObjectsMissing { missing } => format!(
                        "base config re-imported ({} tagged object(s) were missing: {})",
                        missing.len(),
                        missing
                            .iter()
                            .map(|e| format!("{} {}", e.menu, e.tag))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_import_waits_longer_each_time_and_a_new_script_goes_at_once() {
        let t0 = crate::clock::mono();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut r = ImportRetry::default();
        assert!(r.check("h1", t0).is_ok());
        r.failed("h1", t0);
        assert_eq!(r.check("h1", at(30)), Err((1, Duration::from_secs(30))));
        assert!(r.check("h1", at(60)).is_ok());
        r.failed("h1", at(60));
        assert_eq!(r.check("h1", at(100)), Err((2, Duration::from_secs(80))));
        assert!(r.check("h2", at(100)).is_ok(), "another config: at once");
        for n in 3..40 {
            r.failed("h1", at(1000 * n));
        }
        assert_eq!(
            r.check("h1", at(39_000)),
            Err((39, IMPORT_RETRY_MAX)),
            "bounded"
        );
        r.succeeded();
        assert!(r.check("h1", at(39_000)).is_ok());
    }

    #[test]
    fn settings_are_the_set_lines_that_are_not_uplinkd_objects() {
        let script = "/ip settings set rp-filter=loose\n\
                      /ip service\n\
                      set telnet disabled=yes\n\
                      /ip route\n\
                      set [find where comment~\"^uplinkd:\"] distance=1\n\
                      :if (true) do={ set [find] x=1 }\n\
                      # set ignored=1\n\
                      /system ntp client set enabled=yes\n";
        assert_eq!(
            settings_of(script),
            [
                "/ip settings rp-filter=loose",
                "/ip service telnet disabled=yes",
                "/system ntp client enabled=yes"
            ]
        );
    }

    #[test]
    fn base_diff_groups_adds_and_removals_by_menu() {
        let e = |menu: &str, tag: &str| Expected {
            menu: menu.into(),
            tag: tag.into(),
        };
        let expected = [
            e("/ip/route", "uplinkd:route:ISP1-main"),
            e("/ip/route", "uplinkd:route:ISP2-main"),
            e("/ip/firewall/mangle", "uplinkd:pcc:ISP1-0"),
        ];
        let have = BTreeMap::from([
            (
                "/ip/route".to_string(),
                vec![
                    "uplinkd:route:ISP1-main".to_string(),
                    "uplinkd:route:OLD-main".into(),
                ],
            ),
            ("/ip/firewall/mangle".to_string(), vec![]),
        ]);
        let d = base_diff(Some(Reason::MarkerMissing), &expected, &have);
        assert_eq!(d.kept, 1);
        assert_eq!(d.add["/ip/route"], vec!["uplinkd:route:ISP2-main"]);
        assert_eq!(d.add["/ip/firewall/mangle"], vec!["uplinkd:pcc:ISP1-0"]);
        assert_eq!(d.remove["/ip/route"], vec!["uplinkd:route:OLD-main"]);
        let text = d.to_string();
        assert!(
            text.contains("add     /ip/route (1 object(s))\n        uplinkd:route:ISP2-main\n")
        );
        assert!(text.contains("remove  /ip/route (1 object(s))"));

        // Marker current, every object there: nothing to import, nothing listed.
        let all = BTreeMap::from([
            (
                "/ip/route".to_string(),
                vec![
                    "uplinkd:route:ISP1-main".to_string(),
                    "uplinkd:route:ISP2-main".into(),
                ],
            ),
            (
                "/ip/firewall/mangle".to_string(),
                vec!["uplinkd:pcc:ISP1-0".to_string()],
            ),
        ]);
        let d = base_diff(None, &expected, &all);
        assert!(d.is_empty());
        assert!(d.to_string().contains("no changes"));
    }

    #[test]
    fn import_error_lines() {
        assert_eq!(
            import_error_line("expected end of command (line 12 column 5)"),
            Some(12)
        );
        assert_eq!(
            import_error_line("failure: already have such address"),
            None
        );
    }
}
