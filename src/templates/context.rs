//! The template context: the data every template sees, built from an incident and its
//! timeline at a moment (`TemplateContext::build`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::core::{Incident, Role, Status, TimelineEvent, TimelineKind};

/// Links an incident's communications can carry.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Links {
    /// The war room, e.g. `#inc-7-checkout-down`.
    pub war_room: Option<String>,
    /// The post-incident review document over HTTP.
    pub review: Option<String>,
    /// The incident's page over HTTP.
    pub incident_page: Option<String>,
}

/// The one context every template receives; documented field by field, with an example, in
/// `message-templates/README.md`.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateContext {
    pub incident: IncidentFacts,
    pub resolution: ResolutionFacts,
    pub roles: Roles,
    pub times: Times,
    pub durations: Durations,
    /// The whole timeline, oldest first.
    pub timeline: Vec<TimelineEntry>,
    /// The timeline events that show the fix working: deploys, health checks, the move to
    /// monitoring.
    pub verification: Vec<TimelineEntry>,
    pub checklist: Vec<ChecklistEntry>,
    pub checklist_done: usize,
    pub checklist_total: usize,
    pub links: Links,
    /// When this text was generated, `2026-11-29 15:20 UTC`.
    pub generated_at: String,
}

/// `incident.*`.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentFacts {
    /// `INC-7`.
    pub key: String,
    pub number: i64,
    pub title: String,
    /// May be empty.
    pub description: String,
    /// `P0`.
    pub severity: String,
    /// `security hole, data leak, production down for all`.
    pub severity_meaning: String,
    /// `investigating`, `identified`, `monitoring`, `resolved`, `closed`.
    pub status: String,
    /// The user id of who declared it.
    pub declared_by: String,
    /// `2026-11-29 14:02 UTC`.
    pub declared_at: String,
    /// The day it was declared, `2026-11-29` (UTC).
    pub date: String,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    pub war_room_name: Option<String>,
}

/// `resolution.*`: empty strings and lists until resolved.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ResolutionFacts {
    pub summary: String,
    pub impact: String,
    pub root_cause: String,
    pub fix: String,
    /// Link to the fix's pull request.
    pub pr: String,
    pub follow_ups: Vec<String>,
    pub customer_facing: bool,
}

/// `roles.*`: user ids, null when unassigned.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Roles {
    pub commander: Option<String>,
    pub comms: Option<String>,
    pub ops: Option<String>,
    pub scribe: Option<String>,
}

/// `times.*`: `2026-11-29 14:02 UTC`, null when it has not happened.
#[derive(Debug, Clone, Serialize)]
pub struct Times {
    /// When the incident was declared (= `incident.declared_at`).
    pub discovered: String,
    pub acknowledged: Option<String>,
    /// When the status first moved to monitoring.
    pub monitoring: Option<String>,
    /// When the fix was seen running in production (hotfix tracking).
    pub fix_deployed: Option<String>,
    pub resolved: Option<String>,
    /// The response-target deadline.
    pub target: String,
    /// The incident's span in words: `on 2026-11-29 between 14:02 and 15:14 UTC`, or
    /// `between 2026-11-29 23:40 and 2026-11-30 01:10 UTC`, or `since 2026-11-29 14:02 UTC`.
    pub window: String,
}

/// `durations.*`: human text (`1h 12m`, `3m`, `45s`), rounded to the minute from a minute on.
#[derive(Debug, Clone, Serialize)]
pub struct Durations {
    /// The severity's response target, `2h`.
    pub target: String,
    pub time_to_acknowledge: Option<String>,
    pub time_to_resolve: Option<String>,
    /// From declaration to the fix running in production.
    pub fix_deployed_after: Option<String>,
    /// Resolved within the target; null while unresolved.
    pub target_met: Option<bool>,
    /// Declaration to resolution, or to `generated_at` while unresolved.
    pub elapsed: String,
}

/// One `timeline` (or `verification`) entry.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    /// `14:02:11` (UTC).
    pub at: String,
    /// `2026-11-29`.
    pub date: String,
    /// `2026-11-29 14:02:11 UTC`.
    pub at_utc: String,
    /// Time since the incident was declared, `12m`.
    pub since_declared: String,
    /// True on the first entry and whenever the date changes from the previous entry.
    pub new_day: bool,
    /// A user id, or `warroom`.
    pub actor: String,
    /// `declared`, `status`, `note`, `deploy`, … (`TimelineKind`).
    pub kind: String,
    /// The event in words: people by display name (their bare user id while no directory
    /// is configured, see [`crate::timeline::Directory`]), what they typed as they typed it.
    /// For a Slack template, people named by warroom become mentions with `with_mentions`.
    pub text: String,
    /// The event as data, to render `text` for a template's medium.
    #[serde(skip)]
    pub(crate) detail: crate::core::TimelineDetail,
}

/// One `checklist` item.
#[derive(Debug, Clone, Serialize)]
pub struct ChecklistEntry {
    pub position: i64,
    pub text: String,
    pub done: bool,
    pub done_by: Option<String>,
    pub done_at: Option<String>,
}

fn utc_minute(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Human text for `to - from`, rounded to the minute from a minute on.
fn span(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let secs = (to - from).num_seconds().max(0) as u64;
    let secs = if secs >= 60 {
        (secs + 30) / 60 * 60
    } else {
        secs
    };
    crate::core::human_duration(Duration::from_secs(secs))
}

fn window(from: DateTime<Utc>, to: Option<DateTime<Utc>>) -> String {
    match to {
        None => format!("since {}", utc_minute(from)),
        Some(to) if to.date_naive() == from.date_naive() => format!(
            "on {} between {} and {} UTC",
            from.format("%Y-%m-%d"),
            from.format("%H:%M"),
            to.format("%H:%M")
        ),
        Some(to) => format!(
            "between {} and {} UTC",
            from.format("%Y-%m-%d %H:%M"),
            to.format("%Y-%m-%d %H:%M")
        ),
    }
}

fn is_verification(event: &TimelineEvent) -> bool {
    match event.kind {
        TimelineKind::Deploy | TimelineKind::Health => true,
        TimelineKind::StateChanged => moved_to_monitoring(event),
        _ => false,
    }
}

/// The core writes state changes as `Status investigating → monitoring`.
fn moved_to_monitoring(event: &TimelineEvent) -> bool {
    event.kind == TimelineKind::StateChanged
        && event
            .text()
            .trim_end()
            .ends_with(&format!("→ {}", Status::Monitoring))
}

impl TemplateContext {
    /// The context of an incident as it is at `now`, with its timeline (any order).
    pub fn build(
        incident: &Incident,
        timeline: &[TimelineEvent],
        links: Links,
        now: DateTime<Utc>,
    ) -> TemplateContext {
        let declared = incident.declared_at;
        let resolution = incident.resolution.clone().unwrap_or_default();
        let mut events: Vec<&TimelineEvent> = timeline.iter().collect();
        events.sort_by_key(|e| e.at);

        let entry = |e: &TimelineEvent, new_day: bool| TimelineEntry {
            at: e.at.format("%H:%M:%S").to_string(),
            date: e.at.format("%Y-%m-%d").to_string(),
            at_utc: e.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            since_declared: span(declared, e.at),
            new_day,
            actor: e.actor.clone().unwrap_or_else(|| "warroom".to_string()),
            kind: e.kind.as_str().to_string(),
            // Hook: people by name once a directory exists (`timeline::Directory`).
            text: crate::timeline::plain_text(&e.detail, &crate::timeline::IdsOnly),
            detail: e.detail.clone(),
        };
        let mut previous_day = None;
        let entries: Vec<TimelineEntry> = events
            .iter()
            .map(|e| {
                let day = e.at.date_naive();
                let new_day = previous_day != Some(day);
                previous_day = Some(day);
                entry(e, new_day)
            })
            .collect();
        let mut previous_day = None;
        let verification = events
            .iter()
            .filter(|e| is_verification(e))
            .map(|e| {
                let day = e.at.date_naive();
                let new_day = previous_day != Some(day);
                previous_day = Some(day);
                entry(e, new_day)
            })
            .collect();
        let monitoring = events
            .iter()
            .find(|e| moved_to_monitoring(e))
            .map(|e| utc_minute(e.at));

        let role = |r: Role| incident.roles.get(&r).cloned();
        let checklist: Vec<ChecklistEntry> = incident
            .checklist
            .iter()
            .map(|item| ChecklistEntry {
                position: item.position,
                text: item.text.clone(),
                done: item.done.is_some(),
                done_by: item.done.as_ref().map(|d| d.by.clone()),
                done_at: item.done.as_ref().map(|d| utc_minute(d.at)),
            })
            .collect();
        let resolved_at = incident.resolved_at;

        TemplateContext {
            incident: IncidentFacts {
                key: incident.key(),
                number: incident.number,
                title: incident.title.clone(),
                description: incident.description.clone(),
                severity: incident.severity.as_str().to_string(),
                severity_meaning: incident.severity.meaning().to_string(),
                status: incident.status.as_str().to_string(),
                declared_by: incident.declared_by.clone(),
                declared_at: utc_minute(declared),
                date: declared.format("%Y-%m-%d").to_string(),
                acknowledged_by: incident.acknowledged.as_ref().map(|d| d.by.clone()),
                resolved_at: resolved_at.map(utc_minute),
                resolved_by: incident
                    .resolution
                    .as_ref()
                    .map(|r| r.resolved_by.clone())
                    .filter(|by| !by.is_empty()),
                war_room_name: incident.war_room.as_ref().map(|w| w.name.clone()),
            },
            resolution: ResolutionFacts {
                summary: resolution.summary,
                impact: resolution.impact,
                root_cause: resolution.root_cause,
                fix: resolution.fix,
                pr: resolution.pr,
                follow_ups: resolution.follow_ups,
                customer_facing: resolution.customer_facing,
            },
            roles: Roles {
                commander: role(Role::Commander),
                comms: role(Role::Comms),
                ops: role(Role::Ops),
                scribe: role(Role::Scribe),
            },
            times: Times {
                discovered: utc_minute(declared),
                acknowledged: incident.acknowledged.as_ref().map(|d| utc_minute(d.at)),
                monitoring,
                fix_deployed: incident.fix_deployed_at.map(utc_minute),
                resolved: resolved_at.map(utc_minute),
                target: utc_minute(incident.target_at),
                window: window(declared, resolved_at),
            },
            durations: Durations {
                target: span(declared, incident.target_at),
                time_to_acknowledge: incident.acknowledged.as_ref().map(|d| span(declared, d.at)),
                time_to_resolve: resolved_at.map(|t| span(declared, t)),
                fix_deployed_after: incident.fix_deployed_at.map(|t| span(declared, t)),
                target_met: resolved_at.map(|t| t <= incident.target_at),
                elapsed: span(declared, resolved_at.unwrap_or(now)),
            },
            timeline: entries,
            verification,
            checklist_done: checklist.iter().filter(|i| i.done).count(),
            checklist_total: checklist.len(),
            checklist,
            links,
            generated_at: utc_minute(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates::sample::fixtures::context;

    #[test]
    fn context_derives_times_and_durations() {
        let ctx = context(false);
        assert_eq!(ctx.incident.key, "INC-42");
        assert_eq!(ctx.incident.severity, "P1");
        assert_eq!(ctx.incident.declared_at, "2026-11-29 09:00 UTC");
        assert_eq!(ctx.incident.resolved_by.as_deref(), Some("U0CMDR"));
        assert_eq!(ctx.times.discovered, "2026-11-29 09:00 UTC");
        assert_eq!(
            ctx.times.acknowledged.as_deref(),
            Some("2026-11-29 09:03 UTC")
        );
        assert_eq!(
            ctx.times.fix_deployed.as_deref(),
            Some("2026-11-29 10:00 UTC")
        );
        assert_eq!(ctx.times.resolved.as_deref(), Some("2026-11-29 10:12 UTC"));
        assert_eq!(
            ctx.times.window,
            "on 2026-11-29 between 09:00 and 10:12 UTC"
        );
        assert_eq!(ctx.durations.target, "4h");
        assert_eq!(ctx.durations.time_to_acknowledge.as_deref(), Some("3m"));
        assert_eq!(ctx.durations.time_to_resolve.as_deref(), Some("1h 13m"));
        assert_eq!(ctx.durations.fix_deployed_after.as_deref(), Some("1h"));
        assert_eq!(ctx.durations.target_met, Some(true));
        assert_eq!(context(true).durations.target_met, Some(false));
        assert_eq!((ctx.checklist_done, ctx.checklist_total), (1, 2));
        assert_eq!(ctx.timeline.len(), 5);
        assert_eq!(ctx.timeline[0].at, "09:00:00");
        assert_eq!(ctx.timeline[0].actor, "U0DECL");
        assert!(ctx.timeline[0].new_day && !ctx.timeline[1].new_day);
        assert_eq!(ctx.timeline[3].actor, "warroom");
        assert_eq!(ctx.timeline[3].since_declared, "1h");
        assert_eq!(ctx.verification.len(), 1);

        let json = serde_json::to_value(&ctx).unwrap();
        assert!(json["roles"]["scribe"].is_null());
        assert_eq!(json["roles"]["commander"], "U0CMDR");
        assert!(json["links"]["incident_page"].is_null());
    }

    #[test]
    fn unresolved_context_has_nulls_and_empty_resolution() {
        let ctx = TemplateContext::sample_sparse();
        let json = serde_json::to_value(&ctx).unwrap();
        assert!(json["incident"]["resolved_at"].is_null());
        assert!(json["durations"]["target_met"].is_null());
        assert!(json["durations"]["time_to_resolve"].is_null());
        assert_eq!(json["resolution"]["summary"], "");
        assert_eq!(json["resolution"]["follow_ups"], serde_json::json!([]));
        assert_eq!(ctx.durations.elapsed, "10m");
        assert_eq!(ctx.times.window, "since 2026-11-29 16:00 UTC");
    }
}
