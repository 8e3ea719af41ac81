//! Scripted answers of the emulated `/ping`, per source address and target: the emulator has no
//! network, so a test says what each WAN's path does (answer after an RTT, time out, or return an
//! ICMP error). A scripted echo takes its time on the request (the RTT, or the whole `interval`
//! on a timeout), so it holds the client's REST session as a real router's ping does.
//!
//! It must not change anything else in the emulated router.

use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::{Value, json};

use super::Emulator;

/// What one echo does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingOutcome {
    /// The target answers after `rtt`.
    Reply { rtt: Duration },
    /// Nothing comes back within the ping's `interval`.
    Timeout,
    /// A router on the path answers with an ICMP error (`status` is RouterOS's text, like
    /// `net unreachable`).
    Error { from: Ipv4Addr, status: String },
}

/// Rules, the last matching one wins; unmatched echoes time out at once (the emulator's old
/// behaviour, so unscripted tests keep their speed).
#[derive(Debug, Default)]
pub(crate) struct PingScript {
    rules: Vec<(Option<String>, Option<String>, PingOutcome)>,
    served: u64,
}

impl Emulator {
    /// Scripts echoes from `source` (None: any) to `target` (None: any). Later rules win.
    pub fn script_ping(&self, source: Option<&str>, target: Option<&str>, outcome: PingOutcome) {
        let mut s = self.pings();
        s.rules.push((
            source.map(str::to_owned),
            target.map(str::to_owned),
            outcome,
        ));
    }

    /// Forgets every ping rule.
    pub fn clear_ping_script(&self) {
        self.pings().rules.clear();
    }

    /// Echoes answered so far (for rate measurements).
    pub fn pings_served(&self) -> u64 {
        self.pings().served
    }

    fn pings(&self) -> std::sync::MutexGuard<'_, PingScript> {
        // Poisoned only by a panicking test thread; the rules are still valid.
        self.inner.pings.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The rows of `/ping address=.. [src-address=..] count=N [interval=..]`, taking the echoes' time.
/// Runs on a blocking thread (the HTTP layer dispatches there), so sleeping is fine.
pub(crate) fn rows(
    emu: &Emulator,
    address: &str,
    source: Option<&str>,
    count: u32,
    interval: Duration,
) -> Value {
    let outcome = {
        let mut s = emu.pings();
        s.served += u64::from(count);
        s.rules
            .iter()
            .rev()
            .find(|(src, dst, _)| {
                src.as_deref().is_none_or(|x| Some(x) == source)
                    && dst.as_deref().is_none_or(|x| x == address)
            })
            .map(|(_, _, o)| o.clone())
    };
    let rows: Vec<Value> = (0..count.min(100))
        .map(|seq| {
            let (sent, seq) = ((seq + 1).to_string(), seq.to_string());
            match &outcome {
                None => json!({"seq": seq, "host": address, "status": "timeout",
                    "sent": sent, "received": "0", "packet-loss": "100"}),
                Some(PingOutcome::Timeout) => {
                    std::thread::sleep(interval);
                    json!({"seq": seq, "host": address, "status": "timeout",
                        "sent": sent, "received": "0", "packet-loss": "100"})
                }
                Some(PingOutcome::Reply { rtt }) => {
                    std::thread::sleep(*rtt);
                    let time = format!("{}us", rtt.as_micros());
                    json!({"seq": seq, "host": address, "size": "56", "ttl": "60",
                        "time": time, "sent": sent, "received": sent, "packet-loss": "0"})
                }
                Some(PingOutcome::Error { from, status }) => {
                    json!({"seq": seq, "host": from.to_string(), "status": status,
                        "sent": sent, "received": "0", "packet-loss": "100"})
                }
            }
        })
        .collect();
    Value::Array(rows)
}

/// `interval` as `/ping` takes it: `500ms`, `1s`, `1s500ms`, or bare seconds.
pub(crate) fn parse_interval(s: &str) -> Option<Duration> {
    if let Ok(secs) = s.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        total += match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "us" => Duration::from_micros(n),
            _ => return None,
        };
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse() {
        assert_eq!(parse_interval("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_interval("1s500ms"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_interval("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_interval("fast"), None);
    }

    #[test]
    fn last_matching_rule_wins_per_source() {
        let emu = Emulator::default();
        emu.script_ping(None, None, PingOutcome::Timeout);
        emu.script_ping(
            Some("198.18.11.2"),
            None,
            PingOutcome::Reply {
                rtt: Duration::from_micros(1),
            },
        );
        let up = rows(&emu, "198.18.100.1", Some("198.18.11.2"), 1, Duration::ZERO);
        assert_eq!(up[0]["received"], "1");
        let down = rows(&emu, "198.18.100.1", Some("198.18.12.2"), 1, Duration::ZERO);
        assert_eq!(down[0]["status"], "timeout");
        assert_eq!(emu.pings_served(), 2);
    }
}
