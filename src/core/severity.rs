//! Severity levels P0–P3.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How bad an incident is. P0 is the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    P0,
    P1,
    P2,
    P3,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::P0, Severity::P1, Severity::P2, Severity::P3];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::P0 => "P0",
            Severity::P1 => "P1",
            Severity::P2 => "P2",
            Severity::P3 => "P3",
        }
    }

    /// What the level means, as the runbook says it.
    pub fn meaning(self) -> &'static str {
        match self {
            Severity::P0 => "security hole, data leak, production down for all",
            Severity::P1 => "critical feature broken, majority of users affected",
            Severity::P2 => "major feature partly broken, workaround exists",
            Severity::P3 => "business-critical but not broken",
        }
    }

    /// P0 and P1 are announced loudly and nudged for status updates.
    pub fn is_major(self) -> bool {
        matches!(self, Severity::P0 | Severity::P1)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a severity: use P0, P1, P2 or P3")]
pub struct InvalidSeverity(pub String);

impl FromStr for Severity {
    type Err = InvalidSeverity;

    /// Accepts `P0`, `p0`, `SEV0` and `sev0`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let digit = lower
            .strip_prefix("sev")
            .or_else(|| lower.strip_prefix('p'))
            .unwrap_or("");
        match digit {
            "0" => Ok(Severity::P0),
            "1" => Ok(Severity::P1),
            "2" => Ok(Severity::P2),
            "3" => Ok(Severity::P3),
            _ => Err(InvalidSeverity(s.trim().to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_spellings() {
        for (s, want) in [
            ("P0", Severity::P0),
            ("p1", Severity::P1),
            ("SEV2", Severity::P2),
            (" sev3 ", Severity::P3),
        ] {
            assert_eq!(s.parse::<Severity>(), Ok(want), "{s}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for s in ["", "P", "P4", "p-1", "critical", "P00", "0"] {
            assert!(s.parse::<Severity>().is_err(), "{s} should be rejected");
        }
    }

    #[test]
    fn orders_worst_first() {
        assert!(Severity::P0 < Severity::P3);
        assert!(Severity::P1.is_major() && !Severity::P2.is_major());
    }
}
