//! `uplinkd check`: resolve the configuration, print it as it will be used (stdout, unchanged so
//! it stays parseable), then the policy check's findings, one line each on stderr
//! (`warning: ...`, `error: ...`). Fails on any error, and with `--strict` on any warning too.
//! The one place a [`Finding`] becomes a sentence.

use crate::policy_check::{Finding, NeverUsed, Severity, Shadowing};

/// Whether warnings fail the check (`uplinkd check --strict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// Only errors fail.
    Normal,
    /// Warnings fail too.
    Strict,
}

/// The findings failed the check: how many of each severity, and whether warnings counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub errors: usize,
    pub warnings: usize,
    pub strictness: Strictness,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the policy check found {} error(s) and {} warning(s)",
            self.errors, self.warnings
        )?;
        match self.strictness {
            Strictness::Strict => f.write_str(" (--strict: warnings fail too)"),
            Strictness::Normal => Ok(()),
        }
    }
}

impl std::error::Error for Failed {}

/// Prints the findings of `config`, one line each on stderr (the caller has printed the
/// effective config on stdout), and whether they fail the check.
impl From<bool> for Strictness {
    /// `check --strict`.
    fn from(strict: bool) -> Self {
        if strict { Self::Strict } else { Self::Normal }
    }
}

pub fn report(config: &crate::config::Config, strictness: Strictness) -> Result<(), Failed> {
    let findings = crate::policy_check::check(config);
    for f in &findings {
        eprintln!("{}", line(f));
    }
    outcome(&findings, strictness)
}

/// Whether `findings` fail the check.
pub fn outcome(findings: &[Finding], strictness: Strictness) -> Result<(), Failed> {
    let errors = findings
        .iter()
        .filter(|f| f.severity() == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    let fails = errors > 0 || (strictness == Strictness::Strict && warnings > 0);
    if fails {
        Err(Failed {
            errors,
            warnings,
            strictness,
        })
    } else {
        Ok(())
    }
}

/// One finding as its line: `<severity>: <sentence>`.
pub fn line(f: &Finding) -> String {
    let severity = match f.severity() {
        Severity::Warning => "warning",
        Severity::Error => "error",
    };
    format!("{severity}: {}", sentence(f))
}

/// What a finding means, in words.
pub fn sentence(f: &Finding) -> String {
    match f {
        Finding::Shadowed {
            rule,
            by,
            effect: Shadowing::Overridden,
        } => format!(
            "rule {rule} is shadowed by rule {by}: every connection it matches is matched first by {by}, so {rule} never applies"
        ),
        Finding::Shadowed {
            rule,
            by,
            effect: Shadowing::Redundant,
        } => format!(
            "rule {rule} is shadowed by rule {by}: every connection it matches is matched first by {by}, which does the same; {rule} is redundant"
        ),
        Finding::OnlyBackupTier {
            policy,
            tier,
            lowest,
        } => format!(
            "policy {policy} uses only backup WANs (tier {tier} and above): its connections leave by them even while tier {lowest} works"
        ),
        Finding::TierNeverUsed {
            tier,
            reason: NeverUsed::CatchAll { rule, policy },
        } => format!(
            "tier {tier} never carries a connection from inside: rule {rule} matches everything, and it and every rule before it use policies without a WAN of tier {tier} that drop when none is usable (policy {policy})"
        ),
        Finding::UnusedPolicy { policy } => {
            format!("policy {policy} is used by no rule")
        }
        Finding::UnusedList { list } => format!("list {list} is matched by no rule"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_always_fail_and_warnings_only_when_strict() {
        let warning = Finding::UnusedList { list: "x".into() };
        let error = Finding::Shadowed {
            rule: "b".into(),
            by: "a".into(),
            effect: Shadowing::Overridden,
        };
        use Strictness::{Normal, Strict};
        assert_eq!(outcome(&[], Strict), Ok(()));
        assert_eq!(outcome(std::slice::from_ref(&warning), Normal), Ok(()));
        assert_eq!(
            outcome(std::slice::from_ref(&warning), Strict),
            Err(Failed {
                errors: 0,
                warnings: 1,
                strictness: Strict
            })
        );
        assert_eq!(
            outcome(&[warning, error.clone()], Normal),
            Err(Failed {
                errors: 1,
                warnings: 1,
                strictness: Normal
            })
        );
        assert_eq!(
            line(&error),
            "error: rule b is shadowed by rule a: every connection it matches is matched first by a, so b never applies"
        );
    }
}
