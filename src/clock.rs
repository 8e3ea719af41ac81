//! The shell's clocks: the only place the library reads the time (clippy's `disallowed-methods`
//! bans `Instant::now` and `SystemTime::now` everywhere else). The core takes time as an argument.

use std::time::{Instant, SystemTime};

/// Monotonic now, from tokio's clock (so a paused test runtime controls it too).
#[expect(clippy::disallowed_methods, reason = "the shell's one monotonic clock")]
pub fn mono() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Monotonic now as a tokio instant (for `sleep_until`).
#[expect(
    clippy::disallowed_methods,
    reason = "the shell's one monotonic clock, as tokio's type"
)]
pub fn tokio_mono() -> tokio::time::Instant {
    tokio::time::Instant::now()
}

/// Wall-clock now (alert timestamps, the history's unix times).
#[expect(clippy::disallowed_methods, reason = "the shell's one wall clock")]
pub fn wall() -> SystemTime {
    SystemTime::now()
}

/// Unix seconds of a wall-clock time (0 before the epoch, which a sane clock never is).
pub fn unix(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
