//! Log set-up: one line per event, no colour codes. Logs go to stderr, so the output of `plan`,
//! `render` and `simulate` on stdout stays exactly what the command prints (RouterOS `/log`
//! shows a container's stdout and stderr alike).

/// Installs the stderr subscriber once.
pub fn init(level: tracing::Level) {
    let _ = tracing_subscriber::fmt()
        .compact()
        .with_ansi(false)
        .with_target(false)
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .try_init();
}
