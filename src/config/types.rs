//! The configuration's types: the checked tree (`Config` and its sections) and the built-in
//! values a severity gets when the file says nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use crate::core::{EscalationStep, Severity, SeverityPolicy};

/// The whole configuration, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from, if any.
    pub source: Option<PathBuf>,
    pub slack: SlackSettings,
    pub teams: TeamsSettings,
    pub severities: BTreeMap<Severity, SeveritySettings>,
    pub contacts: BTreeMap<String, Contact>,
    pub reminders: Reminders,
    pub templates: Templates,
    pub health: HealthSettings,
    pub review: ReviewSettings,
    pub customer_email: CustomerEmail,
    pub retention: Retention,
}

/// How long finished records are kept before the periodic clean-up deletes them.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Finished jobs (done, cancelled, failed), counted from when they finished.
    pub jobs: Duration,
    /// Inbound ids (Slack event ids, trigger ids) used to drop redeliveries.
    pub inbound_ids: Duration,
}

#[derive(Debug, Clone)]
pub struct ReviewSettings {
    /// Remind P0/P1 war rooms about the review this long after resolution, until closed.
    pub remind_after: Duration,
}

/// Who receives the customer email on resolution of a customer-facing incident.
#[derive(Debug, Clone, Default)]
pub struct CustomerEmail {
    pub to: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SlackSettings {
    /// Channel id (or `#name`) where declarations and updates are announced.
    pub announce_channel: Option<String>,
    /// Reaction that copies a message into the timeline.
    pub timeline_emoji: String,
    /// The slash command, `/incident` unless configured.
    pub command: String,
}

#[derive(Debug, Clone)]
pub struct TeamsSettings {
    pub incident_channel: Option<String>,
    pub announce_channel: Option<String>,
    pub timeline_reaction: String,
}

#[derive(Debug, Clone)]
pub struct SeveritySettings {
    pub target: Duration,
    pub checklist: Vec<String>,
    pub escalation: Vec<EscalationStep>,
    /// True when the escalation is the built-in default rather than written in the file.
    pub default_escalation: bool,
}

impl SeveritySettings {
    pub fn policy(&self, status_every: Duration, review_after: Duration) -> SeverityPolicy {
        SeverityPolicy {
            target: self.target,
            checklist: self.checklist.clone(),
            escalation: self.escalation.clone(),
            status_every: Some(status_every),
            review_after: Some(review_after),
        }
    }
}

/// Someone warroom can page, by any of their paging routes.
#[derive(Debug, Clone, Default)]
pub struct Contact {
    pub slack_user: Option<String>,
    pub teams_user: Option<String>,
    pub pagerduty_routing_key: Option<SecretString>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<SecretString>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

impl Contact {
    /// The paging routes warroom pages a contact by, in this order.
    pub fn paging_routes(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.slack_user.is_some() {
            out.push("slack");
        }
        if self.pagerduty_routing_key.is_some() {
            out.push("pagerduty");
        }
        if self.webhook_url.is_some() {
            out.push("webhook");
        }
        if self.email.is_some() {
            out.push("email");
        }
        if self.phone.is_some() {
            out.push("sms");
        }
        out
    }
}

#[derive(Debug, Clone)]
pub struct Reminders {
    pub status_every: Duration,
}

#[derive(Debug, Clone)]
pub struct Templates {
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct HealthSettings {
    pub monitor_for: Duration,
    pub services: BTreeMap<String, HealthService>,
}

#[derive(Debug, Clone)]
pub struct HealthService {
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub version_pointer: Option<String>,
    pub monitor_for: Option<Duration>,
}

/// The built-in checklist, from the emergency hotfix runbook.
pub fn default_checklist(severity: Severity) -> Vec<String> {
    let mut items = vec![
        "Assess impact and confirm severity",
        "Incident channel open, commander and comms assigned",
        "Hotfix branch created from production",
        "Minimal fix with a regression test",
        "Expedited code review",
        "Verified on staging",
        "Deployed to production",
        "Post-deploy verification (errors back to normal)",
        "Stakeholders updated",
        "Post-incident review scheduled",
    ];
    if !severity.is_major() {
        items.retain(|i| !i.starts_with("Incident channel") && !i.starts_with("Post-incident"));
    }
    items.into_iter().map(String::from).collect()
}

/// The built-in response target for a severity.
pub fn default_target(severity: Severity) -> Duration {
    let hours = match severity {
        Severity::P0 => 2,
        Severity::P1 => 4,
        Severity::P2 => 24,
        Severity::P3 => 48,
    };
    Duration::from_secs(hours * 3600)
}

/// The built-in escalation ladder for a severity (SPEC §1).
pub fn default_escalation(severity: Severity) -> Vec<EscalationStep> {
    let steps: &[(u64, &str)] = match severity {
        Severity::P0 => &[
            (0, "primary"),
            (15, "senior"),
            (30, "manager"),
            (60, "commander"),
        ],
        Severity::P1 => &[(0, "primary"), (30, "senior"), (60, "manager")],
        Severity::P2 => &[(0, "primary")],
        Severity::P3 => &[],
    };
    steps
        .iter()
        .map(|(minutes, who)| EscalationStep {
            after: Duration::from_secs(minutes * 60),
            page: vec![(*who).to_string()],
        })
        .collect()
}

impl Config {
    /// The settings of one severity (every severity always has some).
    pub fn severity(&self, severity: Severity) -> &SeveritySettings {
        match self.severities.get(&severity) {
            Some(s) => s,
            None => unreachable!("from_table fills in every severity"),
        }
    }

    /// Every severity's policy, for the core.
    pub fn policies(&self) -> crate::core::Policies {
        self.severities
            .iter()
            .map(|(sev, s)| {
                (
                    *sev,
                    s.policy(self.reminders.status_every, self.review.remind_after),
                )
            })
            .collect()
    }

    /// Slack users to invite into a new war room besides the declarer: the contacts paged
    /// at once (escalation steps due at 0s) who have a Slack user.
    pub fn first_responders_on_slack(&self, severity: Severity) -> Vec<String> {
        let mut users = Vec::new();
        for step in &self.severity(severity).escalation {
            if !step.after.is_zero() {
                continue;
            }
            for name in &step.page {
                if let Some(user) = self.contacts.get(name).and_then(|c| c.slack_user.clone()) {
                    if !users.contains(&user) {
                        users.push(user);
                    }
                }
            }
        }
        users
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_runbook() {
        let c = Config::default();
        assert_eq!(c.severity(Severity::P0).target, Duration::from_secs(7200));
        assert_eq!(
            c.severity(Severity::P3).target,
            Duration::from_secs(48 * 3600)
        );
        assert_eq!(c.severity(Severity::P0).checklist.len(), 10);
        let afters: Vec<u64> = c
            .severity(Severity::P0)
            .escalation
            .iter()
            .map(|s| s.after.as_secs() / 60)
            .collect();
        assert_eq!(afters, [0, 15, 30, 60]);
        assert!(c.severity(Severity::P3).escalation.is_empty());
        assert_eq!(c.slack.timeline_emoji, "pushpin");
        assert_eq!(c.slack.command, "/incident");
        assert_eq!(c.reminders.status_every, Duration::from_secs(1800));
        assert_eq!(c.health.monitor_for, Duration::from_secs(1800));
    }
}
