//! The `[health]` table as written (also a scenario's `[params]`): every key optional, unknown
//! keys rejected, durations as `"500ms"`/`"2s"`. [`HealthFile::over`] lays it over a base
//! profile into the health core's plain [`Params`]; the core's own consistency check
//! ([`Params::validate`]) and the checks that need the WANs stay with the resolver.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::health::{DurationLevels, LossLevels, Params, duration_str};

/// The `[health]` table. Field names and order are the file's (and `config show`'s).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthFile {
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub interval: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_rounds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_evidence: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_rounds: Option<u32>,
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub hold_down: Option<Duration>,
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_hold_down: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flap_penalty: Option<f64>,
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub flap_half_life: Option<Duration>,
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_deadline: Option<Duration>,
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_deadline: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<u32>,
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub startup_grace: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brownout_loss: Option<LossLevelsFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brownout_latency: Option<DurationLevelsFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brownout_jitter: Option<DurationLevelsFile>,
}

/// `brownout_loss = { fail = 20.0, recover = 10.0 }`: both levels are needed (a table given
/// in part is a mistake, not a request for a default).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LossLevelsFile {
    pub fail: f64,
    pub recover: f64,
}

/// `brownout_latency = { fail = "300ms", recover = "150ms" }` (and `brownout_jitter`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DurationLevelsFile {
    #[serde(with = "duration_str")]
    pub fail: Duration,
    #[serde(with = "duration_str")]
    pub recover: Duration,
}

impl HealthFile {
    /// Every threshold of `p`, as the file would state it (`config show`, error values).
    pub fn from_params(p: &Params) -> Self {
        Self {
            interval: Some(p.interval),
            quorum: Some(p.quorum),
            down_rounds: Some(p.down_rounds),
            down_evidence: Some(p.down_evidence),
            up_rounds: Some(p.up_rounds),
            hold_down: Some(p.hold_down),
            max_hold_down: Some(p.max_hold_down),
            flap_penalty: Some(p.flap_penalty),
            flap_half_life: Some(p.flap_half_life),
            min_deadline: Some(p.min_deadline),
            max_deadline: Some(p.max_deadline),
            window: Some(p.window),
            startup_grace: Some(p.startup_grace),
            brownout_loss: p.brownout_loss.map(|l| LossLevelsFile {
                fail: l.fail,
                recover: l.recover,
            }),
            brownout_latency: p.brownout_latency.map(DurationLevelsFile::from_levels),
            brownout_jitter: p.brownout_jitter.map(DurationLevelsFile::from_levels),
        }
    }

    /// The keys written here over `base`, key by key (a brown-out table replaces the base's
    /// whole). Not validated: see [`Params::validate`].
    pub fn over(self, base: &Params) -> Params {
        Params {
            interval: self.interval.unwrap_or(base.interval),
            quorum: self.quorum.unwrap_or(base.quorum),
            down_rounds: self.down_rounds.unwrap_or(base.down_rounds),
            down_evidence: self.down_evidence.unwrap_or(base.down_evidence),
            up_rounds: self.up_rounds.unwrap_or(base.up_rounds),
            hold_down: self.hold_down.unwrap_or(base.hold_down),
            max_hold_down: self.max_hold_down.unwrap_or(base.max_hold_down),
            flap_penalty: self.flap_penalty.unwrap_or(base.flap_penalty),
            flap_half_life: self.flap_half_life.unwrap_or(base.flap_half_life),
            min_deadline: self.min_deadline.unwrap_or(base.min_deadline),
            max_deadline: self.max_deadline.unwrap_or(base.max_deadline),
            window: self.window.unwrap_or(base.window),
            startup_grace: self.startup_grace.unwrap_or(base.startup_grace),
            brownout_loss: self
                .brownout_loss
                .map(|l| LossLevels {
                    fail: l.fail,
                    recover: l.recover,
                })
                .or(base.brownout_loss),
            brownout_latency: self
                .brownout_latency
                .map(DurationLevelsFile::levels)
                .or(base.brownout_latency),
            brownout_jitter: self
                .brownout_jitter
                .map(DurationLevelsFile::levels)
                .or(base.brownout_jitter),
        }
    }

    /// [`HealthFile::over`] then [`Params::validate`]: the resolved thresholds, or the first
    /// inconsistency as `(key inside the table, what was expected)`.
    pub fn resolve_over(self, base: &Params) -> Result<Params, (&'static str, String)> {
        let params = self.over(base);
        match params.validate() {
            Ok(()) => Ok(params),
            Err(errors) => Err(errors
                .into_iter()
                .next()
                .unwrap_or(("params", "consistent health parameters".into()))),
        }
    }

    /// The value of `key` (dotted, as [`Params::validate`] names it) in `p`, on one line as
    /// TOML writes it (`"200ms"`, `{ fail = 20.0, recover = 10.0 }`).
    pub fn value_of(p: &Params, key: &str) -> Option<String> {
        let table = toml::Value::try_from(Self::from_params(p)).ok()?;
        key.split('.')
            .try_fold(&table, |v, part| v.get(part))
            .map(super::show::inline_value)
    }
}

impl DurationLevelsFile {
    fn from_levels(l: DurationLevels) -> Self {
        Self {
            fail: l.fail,
            recover: l.recover,
        }
    }

    fn levels(self) -> DurationLevels {
        DurationLevels {
            fail: self.fail,
            recover: self.recover,
        }
    }
}

/// Optional humantime durations, with [`duration_str`]'s words for a bad one.
mod duration_opt {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    use crate::health::duration_str;

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        duration_str::deserialize(d).map(Some)
    }

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => duration_str::serialize(d, s),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_table_is_the_default_profile() {
        let f: HealthFile = toml::from_str("").unwrap();
        assert_eq!(f.over(&Params::default()), Params::default());
    }

    #[test]
    fn from_params_round_trips() {
        let p = Params {
            brownout_loss: Some(LossLevels {
                fail: 20.0,
                recover: 10.0,
            }),
            brownout_jitter: Some(DurationLevels {
                fail: Duration::from_millis(40),
                recover: Duration::from_millis(20),
            }),
            ..Params::default()
        };
        let table = toml::Value::try_from(HealthFile::from_params(&p)).unwrap();
        let back: HealthFile = table.try_into().unwrap();
        assert_eq!(back.over(&Params::default()), p);
    }

    #[test]
    fn parses_humantime_and_levels() {
        let f: HealthFile = toml::from_str(
            r#"
            interval = "500ms"
            hold_down = "2m"
            brownout_loss = { fail = 20.0, recover = 10.0 }
            brownout_latency = { fail = "300ms", recover = "150ms" }
            "#,
        )
        .unwrap();
        let p = f.over(&Params::default());
        assert_eq!(p.interval, Duration::from_millis(500));
        assert_eq!(p.hold_down, Duration::from_secs(120));
        assert_eq!(
            p.brownout_loss,
            Some(LossLevels {
                fail: 20.0,
                recover: 10.0
            })
        );
        assert_eq!(
            p.brownout_latency.map(|l| (l.fail, l.recover)),
            Some((Duration::from_millis(300), Duration::from_millis(150)))
        );
        assert_eq!(p.quorum, 1, "unset keys keep their defaults");
    }

    #[test]
    fn keys_override_the_base_one_by_one() {
        let base = Params {
            hold_down: Duration::from_secs(45),
            quorum: 2,
            ..Params::default()
        };
        let f: HealthFile = toml::from_str("quorum = 1").unwrap();
        let p = f.over(&base);
        assert_eq!((p.quorum, p.hold_down), (1, Duration::from_secs(45)));
    }

    #[test]
    fn rejects_unknown_keys_and_bad_durations() {
        let unknown = toml::from_str::<HealthFile>("intervall = \"1s\"")
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("intervall"), "{unknown}");
        let bad = toml::from_str::<HealthFile>("interval = \"fast\"")
            .unwrap_err()
            .to_string();
        assert!(bad.contains("expected a duration"), "{bad}");
        let bad = toml::from_str::<HealthFile>("brownout_loss = { fail = 5.0 }")
            .unwrap_err()
            .to_string();
        assert!(bad.contains("recover"), "{bad}");
    }

    #[test]
    fn resolve_over_names_the_first_bad_key() {
        let f: HealthFile = toml::from_str("window = 2").unwrap();
        let (key, _) = f.resolve_over(&Params::default()).unwrap_err();
        assert_eq!(key, "window");
    }
}
