//! Renders the `.rsc` templates under the top-level `rsc/` (embedded in the binary) from the
//! config: the install script (veths, probe tables, REST user and service, the container) and the
//! base config (LAN, WANs, routes, PCC, NAT, firewall, hardening). Pure: no I/O, no clock.
//!
//! Every value is computed here and written into the script as a literal (no `:local` carried
//! across lines of an imported file: whether it survives depends on the import mode). Every object
//! a script creates carries a comment whose first word is an `uplinkd:<section>:<name>` tag, so a
//! re-import removes and re-adds exactly those and nothing of the user's. No secret is ever
//! rendered: the REST password, a PPPoE password and SMTP credentials never appear in a script.

mod context;
pub mod manifest;
mod steer;
mod upsert;

pub use steer::steer_line;

use minijinja::Environment;

use crate::config::{Config, RouterOsVersion};

pub use context::{
    ImageSource, InstallOptions, LocalOrigin, LocalSubnet, fallbacks, local_subnets, probe_sources,
    rank,
};
pub use manifest::{Expected, expected_objects};

/// The base config template (LAN, WANs, routes, PCC, NAT, firewall, hardening).
pub const BASE_TEMPLATE: &str = include_str!("../../rsc/base.rsc.j2");
/// The install script template (probe plumbing, REST access, the container).
pub const INSTALL_TEMPLATE: &str = include_str!("../../rsc/install.rsc.j2");

/// Name of the `/system script` that marks a complete base-config import (written last).
pub const MARKER_SCRIPT: &str = "uplinkd-base";
/// Tag section of the marker.
pub const SECTION_MARKER: &str = "marker";

/// Which script to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    Install,
    Base,
}

/// A rendered base config and the marker that identifies it on the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The whole `.rsc` text, marker included.
    pub text: String,
    /// The marker object's comment: `uplinkd:marker:base v=<crate version> h=<content hash>`.
    pub marker: String,
}

/// A template could not be rendered (a bug in a template, or a config the templates cannot express).
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("rendering the {script} script: template error: {source}")]
    Template {
        script: &'static str,
        #[source]
        source: minijinja::Error,
    },
    #[error("rendering the {script} script: {what}")]
    Unsupported { script: &'static str, what: String },
}

/// The RouterOS release as the scripts name it.
pub fn version_str(v: RouterOsVersion) -> &'static str {
    match v {
        RouterOsVersion::V7_20 => "7.20",
        RouterOsVersion::V7_21 => "7.21",
    }
}

/// Renders the base config for `config.router.version`.
pub fn render_base(config: &Config) -> Result<Rendered, RenderError> {
    let ctx = context::base(config).map_err(|what| RenderError::Unsupported {
        script: "base",
        what,
    })?;
    let body = render("base", BASE_TEMPLATE, &ctx)?;
    let dynamic: Vec<String> = config
        .wans
        .iter()
        .filter(|w| matches!(w.addressing, crate::config::Addressing::Dhcp))
        .map(|w| w.id.to_string())
        .collect();
    let body = upsert::transform(&body, &context::cleanup_regex(), &dynamic);
    let hash = content_hash(&body);
    let marker = format!(
        "{} v={} h={hash:016x}",
        crate::naming::tag(SECTION_MARKER, "base"),
        env!("CARGO_PKG_VERSION")
    );
    // The marker is added last: its presence means the import ran to the end.
    let text = format!(
        "{body}\n# Marker of a complete import (uplinkd checks it over REST at start and each resync).\n\
         /system script\n\
         add name={MARKER_SCRIPT} source=\":log info \\\"uplinkd base config present\\\"\" comment=\"{marker}\"\n\
         :log info \"uplinkd: base config imported ({marker})\"\n"
    );
    Ok(Rendered { text, marker })
}

/// Renders the install script for `config.router.version`.
pub fn render_install(config: &Config, options: &InstallOptions) -> Result<String, RenderError> {
    let ctx = context::install(config, options).map_err(|what| RenderError::Unsupported {
        script: "install",
        what,
    })?;
    render("install", INSTALL_TEMPLATE, &ctx)
}

fn render<S: serde::Serialize>(
    script: &'static str,
    template: &str,
    ctx: &S,
) -> Result<String, RenderError> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_filter("q", quote);
    let err = |source| RenderError::Template { script, source };
    env.add_template(script, template).map_err(err)?;
    let text = env
        .get_template(script)
        .map_err(err)?
        .render(ctx)
        .map_err(err)?;
    // Collapse the blank lines that skipped blocks leave behind.
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

/// A value as a bare RouterOS word when it is one (names, addresses, port lists, `!negations`),
/// else as a [`quote`]d literal.
pub fn word(value: &str) -> String {
    let bare = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/!,:+".contains(&b));
    if bare {
        value.to_string()
    } else {
        quote(value)
    }
}

/// A RouterOS string literal: `"..."` with `\`, `"` and `$` escaped (a `$` would start a variable).
pub fn quote(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    s.push('"');
    for c in value.chars() {
        match c {
            '\\' | '"' | '$' => {
                s.push('\\');
                s.push(c);
            }
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            _ => s.push(c),
        }
    }
    s.push('"');
    s
}

/// FNV-1a 64 of the rendered text: stable across builds and platforms (std's hasher is not).
pub fn content_hash(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Resolves a config for rendering only. Rendering never needs a secret (none is ever printed),
/// so a password the environment does not give is replaced by a placeholder instead of failing:
/// `uplinkd render` then works on a workstation that holds no credentials.
pub fn config_for_render(
    toml_text: &str,
    env: crate::config::Env,
) -> Result<Config, crate::config::ConfigError> {
    const PLACEHOLDER: &str = "not-used-by-render";
    let mut env = env;
    let missing = |env: &crate::config::Env, var: &str| {
        env.get(var).is_none() && env.get(&format!("{var}_FILE")).is_none()
    };
    let table: toml::Table = toml_text.parse().unwrap_or_default();
    let file_has =
        |t: &toml::Table, key: &str| t.contains_key(key) || t.contains_key(&format!("{key}_file"));
    let rest_in_file = table
        .get("rest")
        .and_then(|r| r.as_table())
        .is_some_and(|r| file_has(r, "password"));
    if !rest_in_file && missing(&env, "UPLINKD_REST_PASSWORD") {
        env = env.with("UPLINKD_REST_PASSWORD", PLACEHOLDER);
    }
    let wans = table
        .get("wan")
        .and_then(|w| w.as_array())
        .cloned()
        .unwrap_or_default();
    for (i, w) in wans.iter().enumerate() {
        let Some(w) = w.as_table() else { continue };
        let var = format!("UPLINKD_WAN{}_PPPOE_PASSWORD", i + 1);
        let pppoe = w.get("addressing").and_then(|a| a.as_str()) == Some("pppoe")
            || env.get(&format!("UPLINKD_WAN{}_ADDRESSING", i + 1)) == Some("pppoe");
        if pppoe && !file_has(w, "pppoe_password") && missing(&env, &var) {
            env = env.with(var, PLACEHOLDER);
        }
    }
    Config::from_toml_str_with(toml_text, &env, crate::config::Secrets::NotNeeded)
}

/// `uplinkd render`: the config text (none: the environment alone), the script, an optional
/// target release overriding `router.version`.
pub fn render_command(
    toml_text: Option<&str>,
    env: crate::config::Env,
    script: crate::cli::RenderScript,
    routeros: Option<&str>,
    options: &InstallOptions,
) -> anyhow::Result<String> {
    let mut config = config_for_render(toml_text.unwrap_or(""), env)?;
    match routeros {
        Some("7.20") => config.router.version = RouterOsVersion::V7_20,
        Some("7.21") => config.router.version = RouterOsVersion::V7_21,
        Some(other) => anyhow::bail!("--routeros {other}: expected 7.20 or 7.21"),
        None => {}
    }
    Ok(match script {
        crate::cli::RenderScript::Base => render_base(&config)?.text,
        crate::cli::RenderScript::Install => render_install(&config, options)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_what_routeros_interprets() {
        assert_eq!(quote("plain"), "\"plain\"");
        assert_eq!(quote("a\"b$c\\d"), "\"a\\\"b\\$c\\\\d\"");
        assert_eq!(quote("x\ny"), "\"x\\ny\"");
    }

    #[test]
    fn hash_is_fnv1a() {
        // Reference values of FNV-1a 64.
        assert_eq!(content_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(content_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
