//! Configuration: the shipped example, every bad input naming its key, the environment scheme,
//! `uplinkd check` through the binary, and no panic on any input.

use std::net::Ipv4Addr;
use std::time::Duration;

use uplinkd::config::{Config, EXAMPLE, Env};

fn env_with_password() -> Env {
    Env::empty().with("UPLINKD_REST_PASSWORD", "pw")
}

#[test]
fn example_loads() {
    let c = Config::from_toml_str(EXAMPLE, &env_with_password()).unwrap();
    assert_eq!(c.wans.len(), 2);
    assert_eq!(
        c.wans[0].monitors,
        vec![
            Ipv4Addr::new(45, 90, 28, 0),
            Ipv4Addr::new(208, 67, 222, 222)
        ]
    );
    assert_eq!(
        c.alerts.reminders,
        vec![Duration::from_secs(3600), Duration::from_secs(21600)]
    );
}
