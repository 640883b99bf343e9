//! Hotfix tracking rules: linking the fix, reading health checks, deciding when the fix is
//! deployed, when a deploy is a rollback, and what a monitoring window concludes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A fix linked to an incident with `hotfix <url> [version]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HotfixLink {
    pub url: String,
    pub version: Option<String>,
    pub linked_by: String,
    pub linked_at: DateTime<Utc>,
}

/// `https://github.com/acme/shop/pull/812` → `acme/shop#812`; other URLs as they are.
pub fn display_link(url: &str) -> String {
    let rest = url
        .strip_prefix("https://github.com/")
        .or_else(|| url.strip_prefix("http://github.com/"));
    if let Some(rest) = rest {
        let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        if parts.len() >= 4 && (parts[2] == "pull" || parts[2] == "issues") {
            if let Ok(n) = parts[3].parse::<u64>() {
                return format!("{}/{}#{n}", parts[0], parts[1]);
            }
        }
    }
    url.to_string()
}

/// Checks a hotfix link: an http(s) URL.
pub fn check_link(url: &str) -> Result<String, String> {
    let url = url.trim().trim_start_matches('<').trim_end_matches('>');
    let url = url.split('|').next().unwrap_or(url);
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "https" || u.scheme() == "http" => Ok(url.to_string()),
        _ => Err(format!("`{url}` is not a link to a pull request or branch")),
    }
}

/// Versions compare with a leading `v` ignored: `v1.2.4` = `1.2.4`.
pub fn same_version(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let s = s.trim();
        s.strip_prefix('v')
            .or_else(|| s.strip_prefix('V'))
            .unwrap_or(s)
            .to_string()
    };
    norm(a) == norm(b)
}

/// What one poll of a health endpoint saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// Healthy, reporting this version (None when the body has no version).
    Healthy(Option<String>),
    /// Non-2xx, timeout, or unparsable body.
    Failing(String),
}

/// What warroom remembers of a service between polls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceState {
    pub version: Option<String>,
    /// Why it is failing, while it fails.
    pub failing: Option<String>,
}

/// A change worth a timeline event: one per transition, never one per poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceChange {
    Deployed { from: Option<String>, to: String },
    Failing { reason: String },
    Recovered,
}

/// Folds one observation into a service's state.
pub fn observe(
    state: &ServiceState,
    observation: Observation,
) -> (ServiceState, Vec<ServiceChange>) {
    let mut next = state.clone();
    let mut changes = Vec::new();
    match observation {
        Observation::Failing(reason) => {
            if state.failing.is_none() {
                changes.push(ServiceChange::Failing {
                    reason: reason.clone(),
                });
            }
            next.failing = Some(reason);
        }
        Observation::Healthy(version) => {
            if state.failing.is_some() {
                changes.push(ServiceChange::Recovered);
            }
            next.failing = None;
            if let Some(v) = version {
                let changed = match &state.version {
                    Some(old) => !same_version(old, &v),
                    None => false,
                };
                if changed {
                    changes.push(ServiceChange::Deployed {
                        from: state.version.clone(),
                        to: v.clone(),
                    });
                }
                next.version = Some(v);
            }
        }
    }
    (next, changes)
}

/// Whether a deploy of `to` is the incident's fix: the first deploy of a linked version, or,
/// when a link names no version, the first version change after the link.
pub fn is_fix(links: &[HotfixLink], to: &str, now: DateTime<Utc>) -> bool {
    links.iter().any(|l| match &l.version {
        Some(v) => same_version(v, to),
        None => l.linked_at <= now,
    })
}

/// Whether a deploy goes back to the version that ran when the fix was deployed over it.
pub fn is_rollback(fixed_from: Option<&str>, to: &str) -> bool {
    fixed_from.is_some_and(|from| same_version(from, to))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(m: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0).unwrap() + chrono::Duration::minutes(m)
    }

    #[test]
    fn github_links_are_shortened() {
        assert_eq!(
            display_link("https://github.com/acme/shop/pull/812"),
            "acme/shop#812"
        );
        assert_eq!(
            display_link("https://github.com/acme/shop/pull/812/files"),
            "acme/shop#812"
        );
        assert_eq!(
            display_link("https://github.com/acme/shop/tree/hotfix-1"),
            "https://github.com/acme/shop/tree/hotfix-1"
        );
        assert_eq!(
            display_link("https://gitlab.com/x/y/-/merge_requests/3"),
            "https://gitlab.com/x/y/-/merge_requests/3"
        );
        assert!(check_link("<https://github.com/acme/shop/pull/812>").is_ok());
        assert!(check_link("not a url").is_err());
        assert!(check_link("ftp://x").is_err());
    }

    #[test]
    fn versions_ignore_a_leading_v() {
        assert!(same_version("v1.2.4", "1.2.4"));
        assert!(same_version(" V2 ", "2"));
        assert!(!same_version("1.2.4", "1.2.40"));
    }

    #[test]
    fn transitions_are_reported_once() {
        let s0 = ServiceState::default();
        let (s1, c) = observe(&s0, Observation::Healthy(Some("v1.2.3".into())));
        assert!(c.is_empty(), "the first version seen is not a deploy");
        let (s2, c) = observe(&s1, Observation::Healthy(Some("1.2.3".into())));
        assert!(c.is_empty(), "same version, v ignored");
        let (s3, c) = observe(&s2, Observation::Healthy(Some("v1.2.4".into())));
        assert_eq!(
            c,
            [ServiceChange::Deployed {
                from: Some("1.2.3".into()),
                to: "v1.2.4".into()
            }]
        );
        let (s4, c) = observe(&s3, Observation::Failing("HTTP 503".into()));
        assert_eq!(
            c,
            [ServiceChange::Failing {
                reason: "HTTP 503".into()
            }]
        );
        let (s5, c) = observe(&s4, Observation::Failing("timeout".into()));
        assert!(c.is_empty(), "still failing: no flood");
        let (_, c) = observe(&s5, Observation::Healthy(Some("v1.2.4".into())));
        assert_eq!(c, [ServiceChange::Recovered]);
    }

    #[test]
    fn fix_and_rollback_detection() {
        let pinned = vec![HotfixLink {
            url: "u".into(),
            version: Some("v1.2.4".into()),
            linked_by: "U1".into(),
            linked_at: t(0),
        }];
        assert!(is_fix(&pinned, "1.2.4", t(5)));
        assert!(!is_fix(&pinned, "1.2.5", t(5)));
        let any = vec![HotfixLink {
            url: "u".into(),
            version: None,
            linked_by: "U1".into(),
            linked_at: t(0),
        }];
        assert!(is_fix(&any, "whatever", t(5)));
        assert!(!is_fix(&[], "1.2.4", t(5)));
        assert!(is_rollback(Some("v1.2.3"), "1.2.3"));
        assert!(!is_rollback(Some("v1.2.3"), "1.2.4"));
        assert!(!is_rollback(None, "1.2.3"));
    }
}
