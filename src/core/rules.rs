//! Platform-neutral rules that decide what a due effect still means when it runs: whether a
//! status nudge, a target warning or a review reminder is still wanted, and what a monitoring
//! window's end says. Pure functions of the incident and the time; the effect handlers apply
//! them and ask the chat platform to say the result.

use chrono::{DateTime, Duration, Utc};

use super::{human_duration, Effect, Incident, Status, TimelineDetail};

/// What a due status reminder does.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusReminder {
    /// Nothing: the incident is no longer active, or not major.
    Stop,
    /// Someone posted recently: look again at `next`.
    Later { next: DateTime<Utc> },
    /// Nudge the war room (no update for `quiet`) and look again at `next`.
    Nudge {
        quiet: Duration,
        next: DateTime<Utc>,
    },
}

/// Whether the war room is nudged for a status update: active major incidents only, when no
/// update was posted for `every` (since `last_update`, or since the declaration).
pub fn status_reminder(
    incident: &Incident,
    last_update: Option<DateTime<Utc>>,
    every: Duration,
    now: DateTime<Utc>,
) -> StatusReminder {
    if !incident.status.is_active() || !incident.severity.is_major() {
        return StatusReminder::Stop;
    }
    let since = last_update.unwrap_or(incident.declared_at);
    if now - since < every {
        StatusReminder::Later {
            next: since + every,
        }
    } else {
        StatusReminder::Nudge {
            quiet: now - since,
            next: now + every,
        }
    }
}

/// Whether a target warning for `target_at` still applies (a severity change moves the
/// target; a resolved incident needs no warning).
pub fn target_warning_applies(incident: &Incident, target_at: DateTime<Utc>) -> bool {
    incident.status.is_active() && incident.target_at == target_at
}

/// The timeline's words for a target warning.
pub fn target_warning_note(
    incident: &Incident,
    target_at: DateTime<Utc>,
    breached: bool,
) -> String {
    let at = target_at.format("%H:%M UTC");
    if breached {
        format!("Response target missed ({} {at})", incident.severity)
    } else {
        format!("75% of the response target has passed (target {at})")
    }
}

/// Whether a monitoring window's end is still news: the fix is still being monitored.
pub fn monitoring_window_applies(incident: &Incident) -> bool {
    incident.status == Status::Monitoring
}

/// The timeline's verdict on a monitoring window of `window` after `version` was deployed.
pub fn monitoring_verdict(
    version: &str,
    window: std::time::Duration,
    failures: usize,
) -> TimelineDetail {
    // The version is a health endpoint's text: it names nobody.
    if failures == 0 {
        TimelineDetail::new()
            .words(format!(
                "Fix held: healthy for {} since ",
                human_duration(window)
            ))
            .typed(version)
            .words(", 0 failed checks")
    } else {
        TimelineDetail::new()
            .words(format!(
                "Fix under watch: {failures} failed check(s) in the {} after ",
                human_duration(window)
            ))
            .typed(version)
    }
}

/// The next review reminder, while the review is due: the incident is resolved, not closed.
pub fn review_reminder(incident: &Incident, every: Duration, now: DateTime<Utc>) -> Option<Effect> {
    (incident.status == Status::Resolved).then(|| Effect::ReviewReminder {
        due_at: now + every,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration as StdDuration;

    use chrono::TimeZone;

    use super::*;
    use crate::core::{open, OpenIncident, Platform, Severity, SeverityPolicy};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0).unwrap()
    }

    fn incident(severity: Severity) -> Incident {
        let policy = SeverityPolicy {
            target: StdDuration::from_secs(2 * 3600),
            checklist: vec!["Assess".into()],
            escalation: Vec::new(),
            status_every: Some(StdDuration::from_secs(30 * 60)),
            review_after: None,
        };
        open(
            OpenIncident {
                number: 1,
                title: "db down".into(),
                description: String::new(),
                severity,
                platform: Platform::Slack,
                declared_by: "U1".into(),
                declared_in: "C1".into(),
                responders: vec![],
                reply_to: None,
            },
            &policy,
            t0(),
        )
        .unwrap()
        .incident
    }

    #[test]
    fn status_reminders_nudge_major_incidents_left_quiet() {
        let every = Duration::minutes(30);
        let p0 = incident(Severity::P0);
        let at = |m| t0() + Duration::minutes(m);
        assert_eq!(
            status_reminder(&p0, Some(at(20)), every, at(30)),
            StatusReminder::Later { next: at(50) }
        );
        assert_eq!(
            status_reminder(&p0, None, every, at(31)),
            StatusReminder::Nudge {
                quiet: Duration::minutes(31),
                next: at(61)
            }
        );
        let p3 = incident(Severity::P3);
        assert_eq!(
            status_reminder(&p3, None, every, at(90)),
            StatusReminder::Stop
        );
    }

    #[test]
    fn target_warnings_apply_to_the_current_target_only() {
        let p0 = incident(Severity::P0);
        assert!(target_warning_applies(&p0, p0.target_at));
        assert!(!target_warning_applies(
            &p0,
            p0.target_at + Duration::hours(1)
        ));
        assert_eq!(
            target_warning_note(&p0, p0.target_at, true),
            "Response target missed (P0 12:00 UTC)"
        );
    }

    #[test]
    fn a_monitoring_verdict_counts_failed_checks() {
        let hour = StdDuration::from_secs(3600);
        assert!(monitoring_verdict("v1.2", hour, 0)
            .to_string()
            .starts_with("Fix held: healthy for"));
        assert!(monitoring_verdict("v1.2", hour, 2)
            .to_string()
            .starts_with("Fix under watch: 2 failed"));
    }

    #[test]
    fn review_reminders_stop_unless_resolved() {
        let p0 = incident(Severity::P0);
        assert_eq!(review_reminder(&p0, Duration::hours(24), t0()), None);
    }
}
