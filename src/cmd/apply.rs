//! `uplinkd apply`.

use crate::config::Config;

/// `uplinkd apply`, run by a person: prints what importing the base config does (as `plan`),
/// then imports it and verifies it. The consent that `[router] apply_base = "manual"` withholds
/// from the daemon.
pub fn main_apply(config: Config) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write as _;
    super::runtime()?.block_on(async move {
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
