//! Log set-up: one line per event, no colour codes (RouterOS `/log` shows container stdout).

/// Installs the stdout subscriber once.
pub fn init(level: tracing::Level) {
    let _ = tracing_subscriber::fmt()
        .compact()
        .with_ansi(false)
        .with_target(false)
        .with_max_level(level)
        .with_writer(std::io::stdout)
        .try_init();
}
