//! `uplinkd plan`.

use crate::config::Config;
use crate::engine::Engine;
use crate::reconciler;
use crate::router::Router;

/// `uplinkd plan`: reads the router and prints what `run` would change at start (no probe
/// evidence yet, so every WAN carries). Writes nothing.
pub fn main_plan(config: Config) -> anyhow::Result<()> {
    use anyhow::Context as _;
    super::runtime()?.block_on(async move {
        let client = crate::routeros::Client::new(&config.router.rest)
            .context("building the REST client")?;
        let text = plan_text(&client, &config).await?;
        use std::io::Write as _;
        let _ = std::io::stdout().write_all(text.as_bytes());
        Ok(())
    })
}

/// The `uplinkd plan` report: the tagged objects found and the plan against the start-up
/// desired state.
pub async fn plan_text<R: Router>(api: &R, config: &Config) -> anyhow::Result<String> {
    let request =
        Engine::from_config(config, crate::health::Timing::Arrival, crate::clock::mono()).request();
    let base = crate::bootstrap::base_plan(api, config).await?;
    let (observed, plan) = reconciler::Reconciler::dry_run(api, &request.target).await?;
    let mut out = String::new();
    out.push_str(&format!("router {}: {base}\n", config.router.rest.url));
    out.push_str(&format!(
        "router {}: objects uplinkd switches (routes and PCC rules tagged uplinkd:)\n",
        config.router.rest.url
    ));
    let mut any = false;
    for o in &observed {
        if crate::reconcile::plan::classify(o.menu, &o.comment).is_some() {
            any = true;
            let state = match o.state {
                crate::reconcile::Switch::Enabled => "enabled",
                crate::reconcile::Switch::Disabled => "disabled",
            };
            out.push_str(&format!(
                "    {:<22} {:<6} {:<9} {}\n",
                o.menu.path(),
                o.id,
                state,
                o.comment
            ));
        }
    }
    if !any {
        out.push_str("    (none)\n");
    }
    out.push_str("\nplan (every WAN carrying, as at start; nothing was changed):\n");
    out.push_str(&plan.to_string());
    Ok(out)
}
