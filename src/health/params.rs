//! The health core's thresholds ([`Params`]), with the default profile as `Default`: plain
//! values and their internal consistency only. The `[health]` table as written (and a
//! scenario's `[params]`) is `config::health::HealthFile`, which resolves into these; whether
//! the quorum fits the number of monitors is the config module's check (it knows the WANs).

use std::fmt;
use std::time::Duration;

/// Effective thresholds of the health core. `Default` is the default profile: probes every
/// 100 ms per WAN with two monitors, outage detection in about a second on a clean link, no
/// false failover at 20 % random loss, failback after 30 s of stable answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Time between probe rounds to each target. The targets of a WAN are probed staggered
    /// within the interval, so with two targets the WAN sees one probe every `interval / 2`.
    pub interval: Duration,
    /// A round is good when at least this many targets answered (default 1: down only when all
    /// targets fail, as the seed does).
    pub quorum: usize,
    /// Minimum number of consecutive bad rounds before a WAN can go down, whatever the evidence.
    pub down_rounds: u32,
    /// Evidence needed to go down: the log-likelihood ratio (natural log) of "outage" against
    /// "this WAN's normal, measured round loss", accumulated over recent rounds (a CUSUM test).
    /// A clean link reaches it after about 3 bad rounds, a link that normally loses 4 % of its
    /// rounds after about 6. False alarms happen at most about once per `e^down_evidence` rounds.
    pub down_evidence: f64,
    /// Consecutive good rounds needed to leave the start-up state, and to start recovering.
    pub up_rounds: u32,
    /// Failback hold-down: how long a recovering WAN must keep answering before it carries
    /// traffic again (lengthened by flap damping).
    pub hold_down: Duration,
    /// Upper bound of the damped hold-down.
    pub max_hold_down: Duration,
    /// Flap damping: each failure adds this many hold-downs to the WAN's penalty; the hold-down
    /// in force is `hold_down × penalty` (at least one, at most `max_hold_down`). 0 = off.
    pub flap_penalty: f64,
    /// The penalty halves every `flap_half_life`.
    pub flap_half_life: Duration,
    /// Loss-deadline clamp: a probe is lost when srtt + 4*rttvar passes, bounded by these.
    pub min_deadline: Duration,
    pub max_deadline: Duration,
    /// Probes per target kept in the statistics window (loss ratio, latency, jitter).
    pub window: u32,
    /// No WAN is declared down before this much time has passed since start (veths and routes
    /// may still be settling); until then a WAN without evidence stays `Unknown` (used).
    pub startup_grace: Duration,
    /// Brown-out on loss, in percent of the window (`{ fail = 20.0, recover = 10.0 }`); off if absent.
    pub brownout_loss: Option<LossLevels>,
    /// Brown-out on mean RTT over the window (`{ fail = "300ms", recover = "150ms" }`); off if absent.
    pub brownout_latency: Option<DurationLevels>,
    /// Brown-out on jitter (mean RTT difference of successive replies); off if absent.
    pub brownout_jitter: Option<DurationLevels>,
}

/// A brown-out loss threshold pair in percent: degraded at `fail` or more, restored at `recover`
/// or less; in between the state holds (hysteresis).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossLevels {
    pub fail: f64,
    pub recover: f64,
}

/// A brown-out time threshold pair: degraded at `fail` or more, restored at `recover` or less.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DurationLevels {
    pub fail: Duration,
    pub recover: Duration,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(200),
            quorum: 1,
            down_rounds: 2,
            down_evidence: 18.0,
            up_rounds: 5,
            hold_down: Duration::from_secs(30),
            max_hold_down: Duration::from_secs(600),
            flap_penalty: 1.0,
            flap_half_life: Duration::from_secs(600),
            min_deadline: Duration::from_millis(250),
            max_deadline: Duration::from_secs(3),
            window: 50,
            startup_grace: Duration::from_secs(3),
            brownout_loss: None,
            brownout_latency: None,
            brownout_jitter: None,
        }
    }
}

/// Upper bound of every per-probe duration (deadlines, brown-out latency and jitter levels):
/// slower than this is not a working line but an outage.
pub const MAX_PROBE_DURATION: Duration = Duration::from_secs(60);
/// Upper bound of every state duration (start-up grace, hold-downs, flap half-life), which
/// keeps the core's time arithmetic far from overflow.
pub const MAX_STATE_DURATION: Duration = Duration::from_secs(24 * 3600);

impl Params {
    /// Checks internal consistency. Each error is `(key inside [health], what was expected)`.
    pub fn validate(&self) -> Result<(), Vec<(&'static str, String)>> {
        let mut errors: Vec<(&'static str, String)> = Vec::new();
        let mut need = |ok: bool, key: &'static str, expected: &str| {
            if !ok {
                errors.push((key, expected.to_string()));
            }
        };
        need(
            self.interval >= Duration::from_millis(10) && self.interval <= Duration::from_secs(60),
            "interval",
            "a duration between 10ms and 60s, e.g. \"200ms\"",
        );
        need(
            self.quorum >= 1,
            "quorum",
            "at least 1 target that must answer",
        );
        need(self.down_rounds >= 1, "down_rounds", "an integer >= 1");
        need(
            self.down_evidence.is_finite()
                && self.down_evidence >= 1.0
                && self.down_evidence <= 100.0,
            "down_evidence",
            "a number between 1 and 100 (default 18)",
        );
        need(self.up_rounds >= 1, "up_rounds", "an integer >= 1");
        need(
            self.hold_down <= MAX_STATE_DURATION,
            "hold_down",
            "a duration of at most 1 day",
        );
        need(
            // Against hold_down within its own bound: an over-long hold_down is its own error.
            self.max_hold_down >= self.hold_down.min(MAX_STATE_DURATION)
                && self.max_hold_down <= MAX_STATE_DURATION,
            "max_hold_down",
            "a duration >= hold_down and at most 1 day",
        );
        need(
            self.flap_penalty.is_finite() && self.flap_penalty >= 0.0,
            "flap_penalty",
            "a number >= 0 (0 turns flap damping off)",
        );
        need(
            (self.flap_penalty == 0.0 || !self.flap_half_life.is_zero())
                && self.flap_half_life <= MAX_STATE_DURATION,
            "flap_half_life",
            "a duration > 0 when flap_penalty is set, at most 1 day",
        );
        need(
            !self.min_deadline.is_zero() && self.min_deadline <= MAX_PROBE_DURATION,
            "min_deadline",
            "a duration > 0 and at most 60s, e.g. \"250ms\"",
        );
        need(
            self.max_deadline >= self.min_deadline.min(MAX_PROBE_DURATION)
                && self.max_deadline <= MAX_PROBE_DURATION,
            "max_deadline",
            "a duration >= min_deadline and at most 60s",
        );
        need(
            self.startup_grace <= MAX_STATE_DURATION,
            "startup_grace",
            "a duration of at most 1 day",
        );
        need(
            (4..=10_000).contains(&self.window),
            "window",
            "an integer between 4 and 10000 (probes per target)",
        );
        if let Some(l) = self.brownout_loss {
            need(
                l.fail.is_finite() && l.fail > 0.0 && l.fail <= 100.0,
                "brownout_loss.fail",
                "a percentage in (0, 100]",
            );
            need(
                l.recover.is_finite() && l.recover >= 0.0 && l.recover < l.fail,
                "brownout_loss.recover",
                "a percentage >= 0 and below brownout_loss.fail",
            );
        }
        for (levels, fail_key, recover_key) in [
            (
                self.brownout_latency,
                "brownout_latency.fail",
                "brownout_latency.recover",
            ),
            (
                self.brownout_jitter,
                "brownout_jitter.fail",
                "brownout_jitter.recover",
            ),
        ] {
            if let Some(l) = levels {
                need(
                    !l.fail.is_zero() && l.fail <= MAX_PROBE_DURATION,
                    fail_key,
                    "a duration > 0 and at most 60s",
                );
                need(
                    l.recover < l.fail,
                    recover_key,
                    "a duration below the fail level",
                );
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// One line with every effective threshold, for the start-up log.
impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |d: Duration| humantime::format_duration(d).to_string();
        write!(
            f,
            "interval={} quorum={} down_rounds={} down_evidence={} up_rounds={} hold_down={} \
             max_hold_down={} flap_penalty={} flap_half_life={} min_deadline={} max_deadline={} \
             window={} startup_grace={}",
            d(self.interval),
            self.quorum,
            self.down_rounds,
            self.down_evidence,
            self.up_rounds,
            d(self.hold_down),
            d(self.max_hold_down),
            self.flap_penalty,
            d(self.flap_half_life),
            d(self.min_deadline),
            d(self.max_deadline),
            self.window,
            d(self.startup_grace),
        )?;
        match self.brownout_loss {
            Some(l) => write!(f, " brownout_loss={}%/{}%", l.fail, l.recover)?,
            None => f.write_str(" brownout_loss=off")?,
        }
        for (name, levels) in [
            ("brownout_latency", self.brownout_latency),
            ("brownout_jitter", self.brownout_jitter),
        ] {
            match levels {
                Some(l) => write!(f, " {name}={}/{}", d(l.fail), d(l.recover))?,
                None => write!(f, " {name}=off")?,
            }
        }
        Ok(())
    }
}

/// Durations as humantime strings (`"500ms"`, `"2s"`, `"10m"`) in TOML and JSON.
pub mod duration_str {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "expected a duration such as \"500ms\" or \"2s\", got {text:?} ({e})"
            ))
        })
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_is_valid() {
        assert_eq!(Params::default().validate(), Ok(()));
    }

    #[test]
    fn validate_names_each_bad_key() {
        let table: &[(&str, Params)] = &[
            (
                "interval",
                Params {
                    interval: Duration::ZERO,
                    ..Params::default()
                },
            ),
            (
                "quorum",
                Params {
                    quorum: 0,
                    ..Params::default()
                },
            ),
            (
                "down_rounds",
                Params {
                    down_rounds: 0,
                    ..Params::default()
                },
            ),
            (
                "down_evidence",
                Params {
                    down_evidence: f64::NAN,
                    ..Params::default()
                },
            ),
            (
                "up_rounds",
                Params {
                    up_rounds: 0,
                    ..Params::default()
                },
            ),
            (
                "max_hold_down",
                Params {
                    max_hold_down: Duration::from_secs(1),
                    ..Params::default()
                },
            ),
            (
                "flap_penalty",
                Params {
                    flap_penalty: -1.0,
                    ..Params::default()
                },
            ),
            (
                "flap_half_life",
                Params {
                    flap_half_life: Duration::ZERO,
                    ..Params::default()
                },
            ),
            (
                "min_deadline",
                Params {
                    min_deadline: Duration::ZERO,
                    ..Params::default()
                },
            ),
            (
                "max_deadline",
                Params {
                    max_deadline: Duration::from_millis(100),
                    ..Params::default()
                },
            ),
            (
                "window",
                Params {
                    window: 2,
                    ..Params::default()
                },
            ),
            (
                "brownout_loss.recover",
                Params {
                    brownout_loss: Some(LossLevels {
                        fail: 10.0,
                        recover: 20.0,
                    }),
                    ..Params::default()
                },
            ),
            (
                "hold_down",
                Params {
                    hold_down: Duration::from_secs(2 * 86_400),
                    max_hold_down: MAX_STATE_DURATION,
                    ..Params::default()
                },
            ),
            (
                "max_hold_down",
                Params {
                    max_hold_down: MAX_STATE_DURATION + Duration::from_secs(1),
                    ..Params::default()
                },
            ),
            (
                "flap_half_life",
                Params {
                    flap_half_life: MAX_STATE_DURATION + Duration::from_secs(1),
                    ..Params::default()
                },
            ),
            (
                "startup_grace",
                Params {
                    startup_grace: MAX_STATE_DURATION + Duration::from_secs(1),
                    ..Params::default()
                },
            ),
            (
                "min_deadline",
                Params {
                    min_deadline: Duration::from_secs(61),
                    max_deadline: MAX_PROBE_DURATION,
                    ..Params::default()
                },
            ),
            (
                "max_deadline",
                Params {
                    max_deadline: Duration::from_secs(61),
                    ..Params::default()
                },
            ),
            (
                "brownout_latency.fail",
                Params {
                    brownout_latency: Some(DurationLevels {
                        fail: Duration::from_secs(61),
                        recover: Duration::from_secs(1),
                    }),
                    ..Params::default()
                },
            ),
            (
                "brownout_jitter.recover",
                Params {
                    brownout_jitter: Some(DurationLevels {
                        fail: Duration::from_millis(10),
                        recover: Duration::from_millis(10),
                    }),
                    ..Params::default()
                },
            ),
        ];
        for (key, params) in table {
            let errors = params.validate().unwrap_err();
            assert_eq!(errors.len(), 1, "{key}: {errors:?}");
            assert_eq!(errors[0].0, *key);
        }
    }

    #[test]
    fn display_lists_every_threshold() {
        let line = Params::default().to_string();
        for key in [
            "interval=200ms",
            "quorum=1",
            "down_evidence=18",
            "hold_down=30s",
            "max_hold_down=10m",
            "min_deadline=250ms",
            "brownout_loss=off",
            "brownout_jitter=off",
        ] {
            assert!(line.contains(key), "{key} missing in {line}");
        }
    }
}
