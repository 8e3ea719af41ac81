//! `uplinkd status`.

use crate::status::http::{fetch, status_url};

/// `uplinkd status [--url URL]`: prints the running daemon's status table. The config (when one
/// is given) only supplies the address.
pub fn main_status(config: Option<&std::path::Path>, url: Option<&str>) -> anyhow::Result<()> {
    let listen = match (url, config) {
        (None, Some(path)) => {
            // `status` reads the daemon's HTTP endpoint, never the router: no REST password.
            let cfg = crate::config::load_with(
                Some(path),
                &crate::config::Env::from_process(),
                crate::config::Secrets::NotNeeded,
            )?;
            Some(cfg.status.listen)
        }
        _ => None,
    };
    let base = status_url(url, listen)?;
    let rt = super::runtime()?;
    let snapshot = rt.block_on(fetch(&base))?;
    use std::io::Write as _;
    let _ = std::io::stdout().write_all(crate::status::table::render(&snapshot).as_bytes());
    Ok(())
}
