//! `uplinkd probe`.

use crate::probe::oneshot::{Request, run};

/// `uplinkd probe`: prints each result and the summary; fails when nothing answered.
pub fn main_probe(request: Request) -> anyhow::Result<()> {
    super::runtime()?
        .block_on(run(&request, |line| println!("{line}")))
        .map(drop)
        .map_err(Into::into)
}
