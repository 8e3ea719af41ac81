//! The self-contained demonstration: an emulated RouterOS 7.20 on 127.0.0.1, the real daemon
//! against it, ISP1 failing and recovering (no router, no root).
//!
//! ```text
//! cargo run --example demo                 # uplinkd's log at info, then the timeline and summary
//! cargo run --example demo -- --log warn   # only uplinkd's warnings before the report
//! ```

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let mut level = tracing::Level::INFO;
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--log", Some(v)) => match v.parse() {
                Ok(l) => level = l,
                Err(_) => return usage(&format!("unknown log level `{v}`")),
            },
            _ => return usage(&format!("unexpected argument `{arg}`")),
        }
    }
    uplinkd::logging::init(level);
    match uplinkd_testkit::demo::main_demo() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let err: &(dyn std::error::Error + 'static) = e.as_ref();
            eprintln!("demo: {}", uplinkd::types::error_chain(err));
            std::process::ExitCode::FAILURE
        }
    }
}

fn usage(problem: &str) -> std::process::ExitCode {
    eprintln!(
        "demo: {problem}\nusage: cargo run --example demo [-- --log error|warn|info|debug|trace]"
    );
    std::process::ExitCode::from(2)
}
