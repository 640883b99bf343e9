//! The rules of an incident, with no I/O: commands in, state changes and effects out.
//!
//! Nothing here knows Slack, Teams, SQL or the clock. Callers pass the time (`now`) and the
//! policy drawn from configuration; the results are stored and the effects become durable jobs.

mod handle;
pub mod hotfix;
mod incident;
pub mod rules;
mod severity;
mod timeline;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use handle::{handle, pin_key, Change, Command, NewTimelineEvent, Outcome, Policies};
pub use incident::{
    ChecklistItem, Done, Incident, Platform, Resolution, Role, Status, UserId, WarRoom,
};
pub use severity::{InvalidSeverity, Severity};
pub use timeline::{Signal, TextPart, TimelineDetail, TimelineEvent, TimelineKind};

/// Longest title accepted, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// The mark warroom puts before `@U…` when it names a person itself in a reply or an error
/// (the timeline names people structurally: [`TextPart::Person`]): U+2063 INVISIBLE
/// SEPARATOR. Only marked ids become mentions when a medium can mention people; anything a
/// user typed (`@U0BOB`, `<@U0BOB>`) stays text, and user text loses any mark it carried
/// ([`inert`]). Timeline rows stored before the structured timeline used it too
/// (`store::legacy_timeline` reads them).
pub const MENTION_MARK: char = '\u{2063}';

/// How warroom names a person in replies: `⁣@U123` (see [`MENTION_MARK`]).
/// Something that is not a user id (a bot's name) is written `@name`, as text.
pub fn mention(user: &str) -> String {
    let is_id = !user.is_empty()
        && user
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if is_id {
        format!("{MENTION_MARK}@{user}")
    } else {
        format!("@{}", inert(user))
    }
}

/// User text made inert: any [`MENTION_MARK`] removed, so it can name nobody.
pub fn inert(text: &str) -> String {
    text.replace(MENTION_MARK, "")
}

/// Reply text for a medium that cannot mention people (web pages, email, Markdown): the
/// marks removed, people shown as `@U123`.
pub fn plain(text: &str) -> String {
    inert(text)
}

/// What a severity demands: how fast, which steps, whom to page when.
#[derive(Debug, Clone, PartialEq)]
pub struct SeverityPolicy {
    pub target: Duration,
    pub checklist: Vec<String>,
    pub escalation: Vec<EscalationStep>,
    /// Nudge the war room for a status update this often (P0/P1), if nobody posted one.
    pub status_every: Option<Duration>,
    /// Remind about the post-incident review this long after resolution (P0/P1).
    pub review_after: Option<Duration>,
}

/// Page these contacts `after` the incident was declared, unless someone acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationStep {
    #[serde(with = "duration_ms")]
    pub after: Duration,
    pub page: Vec<String>,
}

/// An outgoing action, carried out later by a worker as a durable job. Effects name what must
/// happen, not how: the platform adapter renders the message from the incident as it is when
/// the job runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Create the war room (the platform adapter names it).
    CreateWarRoom,
    /// Bring these users into the war room.
    InviteToWarRoom { users: Vec<UserId> },
    /// Put severity, status and title in the war room's topic.
    SetWarRoomTopic,
    /// Post the kickoff message: summary, roles, checklist buttons, Acknowledge.
    PostKickoff,
    /// Tell the announce channel an incident was declared.
    AnnounceDeclared,
    /// Answer the person who declared, with the war-room link (`reply_to` is the adapter's
    /// reply address, e.g. Slack's `response_url`).
    ReplyToRequester { reply_to: String },
    /// Fire step `step` of the escalation policy (an [`EscalationStep`]) when it comes due.
    /// `plan` identifies the plan it belongs to (a re-plan after a severity change makes a new
    /// one), so each step fires once per plan. Stored as `escalation_step`, its name before the
    /// rename, so that payloads read the same in both directions.
    #[serde(rename = "escalation_step")]
    FireEscalationStep {
        step: usize,
        due_at: DateTime<Utc>,
        page: Vec<String>,
        plan: i64,
    },
    /// Re-render the kickoff message in place (checklist, roles, status, acknowledgement).
    UpdateKickoff,
    /// Post a status update in the war room.
    PostStatusUpdate { text: String, by: UserId },
    /// Repeat a status update in the announce channel (P0/P1).
    AnnounceStatusUpdate { text: String, by: UserId },
    /// Fetch a pinned message's author, text and link into its timeline event.
    FetchPinnedMessage { message: String },
    /// Deliver one page: one contact, one paging route (`slack`, `pagerduty`, `webhook`,
    /// `email`, `sms`), for one escalation step of one plan.
    Page {
        step: usize,
        plan: i64,
        contact: String,
        /// Stored as `channel`, its name before "channel" came to mean a chat channel only, so
        /// that payloads read the same in both directions (an upgrade, or a rollback).
        #[serde(rename = "channel")]
        route: String,
    },
    /// Tell paging providers the incident was acknowledged (PagerDuty acknowledge).
    AcknowledgePagers,
    /// Nudge the war room if no status update was posted for `status_every`.
    StatusReminder { due_at: DateTime<Utc> },
    /// Tell paging providers the incident is resolved (PagerDuty resolve).
    ResolvePagers,
    /// Keep the health checks of every configured service running (while incidents are open).
    WatchHealth,
    /// Post a chat message in the war room (hotfix tracking: deploys, health, rollbacks).
    PostToWarRoom { text: String },
    /// Post a chat message in the announce channel, if one is configured (paging alarms:
    /// nobody could be reached).
    PostToAnnounceChannel { text: String },
    /// Page one person directly: the commander, when the service fails while a fix is
    /// monitored (the timeline says they were paged to decide on a rollback).
    PageUser { user: UserId, reason: String },
    /// The monitoring window after a fix deploy ends: summarise and offer to resolve.
    MonitoringWindowEnd {
        due_at: DateTime<Utc>,
        started_at: DateTime<Utc>,
        version: String,
    },
    /// Post the internal announcement (template `internal-announcement`).
    PublishAnnouncement,
    /// Publish the status-page update, or post it in the war room as a draft.
    PublishStatusPage,
    /// Email customers, or post the email in the war room as a draft.
    PublishCustomerEmail,
    /// Post the post-incident review document in the war room.
    PostReview,
    /// Remind the war room that the review is due, until the incident is closed.
    ReviewReminder { due_at: DateTime<Utc> },
    /// Say loudly, wherever it can still be delivered (the announce channel, the declarer's
    /// DM), that an essential job (`kind`, job `job`) has been failing since `since`.
    DeliveryStuck {
        job: i64,
        kind: String,
        since: DateTime<Utc>,
        error: String,
    },
    /// Warn that the response target is near (`breached` false: 75 % gone) or missed.
    TargetWarning {
        due_at: DateTime<Utc>,
        target_at: DateTime<Utc>,
        breached: bool,
    },
}

impl Effect {
    /// Every effect's [`Effect::name`]: the job kinds that carry effects out.
    pub const KINDS: &'static [&'static str] = &[
        "create_war_room",
        "invite_to_war_room",
        "set_war_room_topic",
        "post_kickoff",
        "announce_declared",
        "reply_to_requester",
        "escalation_step",
        "update_kickoff",
        "post_status_update",
        "announce_status_update",
        "fetch_pinned_message",
        "page",
        "acknowledge_pagers",
        "status_reminder",
        "target_warning",
        "resolve_pagers",
        "watch_health",
        "post_to_war_room",
        "post_to_announce_channel",
        "page_user",
        "monitoring_window_end",
        "publish_announcement",
        "publish_status_page",
        "publish_customer_email",
        "post_review",
        "review_reminder",
        "delivery_stuck",
    ];

    /// A stable name, used as the job kind.
    pub fn name(&self) -> &'static str {
        match self {
            Effect::CreateWarRoom => "create_war_room",
            Effect::InviteToWarRoom { .. } => "invite_to_war_room",
            Effect::SetWarRoomTopic => "set_war_room_topic",
            Effect::PostKickoff => "post_kickoff",
            Effect::AnnounceDeclared => "announce_declared",
            Effect::ReplyToRequester { .. } => "reply_to_requester",
            Effect::FireEscalationStep { .. } => "escalation_step",
            Effect::UpdateKickoff => "update_kickoff",
            Effect::PostStatusUpdate { .. } => "post_status_update",
            Effect::AnnounceStatusUpdate { .. } => "announce_status_update",
            Effect::FetchPinnedMessage { .. } => "fetch_pinned_message",
            Effect::Page { .. } => "page",
            Effect::AcknowledgePagers => "acknowledge_pagers",
            Effect::StatusReminder { .. } => "status_reminder",
            Effect::TargetWarning { .. } => "target_warning",
            Effect::ResolvePagers => "resolve_pagers",
            Effect::WatchHealth => "watch_health",
            Effect::PostToWarRoom { .. } => "post_to_war_room",
            Effect::PostToAnnounceChannel { .. } => "post_to_announce_channel",
            Effect::PageUser { .. } => "page_user",
            Effect::MonitoringWindowEnd { .. } => "monitoring_window_end",
            Effect::PublishAnnouncement => "publish_announcement",
            Effect::PublishStatusPage => "publish_status_page",
            Effect::PublishCustomerEmail => "publish_customer_email",
            Effect::PostReview => "post_review",
            Effect::ReviewReminder { .. } => "review_reminder",
            Effect::DeliveryStuck { .. } => "delivery_stuck",
        }
    }

    /// Effects that can only run once the war room exists.
    pub fn needs_war_room(&self) -> bool {
        matches!(
            self,
            Effect::InviteToWarRoom { .. }
                | Effect::SetWarRoomTopic
                | Effect::PostKickoff
                | Effect::AnnounceDeclared
                | Effect::ReplyToRequester { .. }
                | Effect::UpdateKickoff
                | Effect::PostStatusUpdate { .. }
                | Effect::AnnounceStatusUpdate { .. }
                | Effect::FetchPinnedMessage { .. }
                | Effect::StatusReminder { .. }
                | Effect::TargetWarning { .. }
                | Effect::PostReview
                | Effect::ReviewReminder { .. }
                | Effect::PostToWarRoom { .. }
                | Effect::MonitoringWindowEnd { .. }
        )
    }

    /// When the effect should happen, if not at once.
    pub fn due_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Effect::FireEscalationStep { due_at, .. }
            | Effect::StatusReminder { due_at }
            | Effect::ReviewReminder { due_at }
            | Effect::MonitoringWindowEnd { due_at, .. }
            | Effect::TargetWarning { due_at, .. } => Some(*due_at),
            _ => None,
        }
    }
}

/// Why a command was refused. The text is shown to the user as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotAllowed(String),
}

/// A request to declare an incident.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenIncident {
    pub number: i64,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub platform: Platform,
    pub declared_by: UserId,
    pub declared_in: String,
    /// Platform users to invite besides the declarer (the severity's first responders).
    pub responders: Vec<UserId>,
    pub reply_to: Option<String>,
}

/// An incident just declared, with its first timeline event and everything that must follow.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    pub incident: Incident,
    pub timeline: Vec<TimelineEvent>,
    pub effects: Vec<Effect>,
}

/// Checks and normalises a title: trimmed, whitespace collapsed, 1 to 200 characters.
pub fn clean_title(raw: &str) -> Result<String, CoreError> {
    let title = inert(raw).split_whitespace().collect::<Vec<_>>().join(" ");
    if title.is_empty() {
        return Err(CoreError::Invalid("an incident needs a title".into()));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(CoreError::Invalid(format!(
            "the title is too long ({} characters; at most {MAX_TITLE_CHARS})",
            title.chars().count()
        )));
    }
    Ok(title)
}

/// Declares an incident: the incident itself, a "declared" timeline event, and the effects
/// that open the war room, announce it and start escalation.
pub fn open(
    request: OpenIncident,
    policy: &SeverityPolicy,
    now: DateTime<Utc>,
) -> Result<Opened, CoreError> {
    let title = clean_title(&request.title)?;
    if request.number < 1 {
        return Err(CoreError::Invalid("incident numbers start at 1".into()));
    }
    let target = chrono::Duration::from_std(policy.target)
        .map_err(|_| CoreError::Invalid("the response target is too long".into()))?;
    let checklist = policy
        .checklist
        .iter()
        .enumerate()
        .map(|(i, text)| ChecklistItem {
            position: i as i64 + 1,
            text: text.clone(),
            done: None,
        })
        .collect();
    let incident = Incident {
        number: request.number,
        title,
        description: inert(request.description.trim()),
        severity: request.severity,
        status: Status::Investigating,
        platform: request.platform,
        declared_by: request.declared_by.clone(),
        declared_in: request.declared_in,
        declared_at: now,
        target_at: now + target,
        war_room: None,
        kickoff_ref: None,
        acknowledged: None,
        resolved_at: None,
        resolution: None,
        fix_deployed_at: None,
        closed_at: None,
        hotfixes: Vec::new(),
        versions_at_open: Default::default(),
        fix_from_version: None,
        checklist,
        roles: Default::default(),
    };
    let timeline = vec![TimelineEvent::new(
        now,
        Some(&request.declared_by),
        TimelineKind::Declared,
        TimelineDetail::new()
            .words(format!(
                "{} declared {}: ",
                incident.severity,
                incident.key()
            ))
            .typed(&incident.title),
    )];

    let mut invite = vec![request.declared_by.clone()];
    for user in request.responders {
        if !invite.contains(&user) {
            invite.push(user);
        }
    }
    let mut effects = vec![
        Effect::CreateWarRoom,
        Effect::InviteToWarRoom { users: invite },
        Effect::SetWarRoomTopic,
        Effect::PostKickoff,
        Effect::AnnounceDeclared,
    ];
    if let Some(reply_to) = request.reply_to {
        effects.push(Effect::ReplyToRequester { reply_to });
    }
    effects.extend(escalation_plan(
        &policy.escalation,
        now,
        now.timestamp_millis(),
    ));
    if let Some(every) = policy.status_every.filter(|_| incident.severity.is_major()) {
        effects.push(Effect::StatusReminder {
            due_at: now + chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX),
        });
    }
    effects.extend(target_warnings(
        incident.declared_at,
        incident.target_at,
        now,
    ));
    effects.push(Effect::WatchHealth);
    Ok(Opened {
        incident,
        timeline,
        effects,
    })
}

/// The escalation steps of a policy as effects due from `from`, as plan `plan`.
pub fn escalation_plan(steps: &[EscalationStep], from: DateTime<Utc>, plan: i64) -> Vec<Effect> {
    steps
        .iter()
        .enumerate()
        .filter(|(_, step)| !step.page.is_empty())
        .map(|(i, step)| Effect::FireEscalationStep {
            step: i,
            due_at: from + chrono::Duration::from_std(step.after).unwrap_or(chrono::Duration::MAX),
            page: step.page.clone(),
            plan,
        })
        .collect()
}

/// Warnings for a response target: at 75 % of it and when it is missed, those still ahead.
pub fn target_warnings(
    declared_at: DateTime<Utc>,
    target_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<Effect> {
    let approaching = declared_at + (target_at - declared_at) * 3 / 4;
    [(approaching, false), (target_at, true)]
        .into_iter()
        .filter(|(due, _)| *due > now)
        .map(|(due_at, breached)| Effect::TargetWarning {
            due_at,
            target_at,
            breached,
        })
        .collect()
}

/// A human text for a duration: `2h`, `1h 30m`, `45s`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let (days, hours, minutes, seconds) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    let mut parts = Vec::new();
    if days > 0 {
        parts.push(format!("{days}d"));
    }
    if hours > 0 {
        parts.push(format!("{hours}h"));
    }
    if minutes > 0 {
        parts.push(format!("{minutes}m"));
    }
    if seconds > 0 && days == 0 {
        parts.push(format!("{seconds}s"));
    }
    parts.join(" ")
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn effect_kinds_are_distinct_and_include_each_name() {
        let mut kinds = Effect::KINDS.to_vec();
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds.len(), Effect::KINDS.len());
        for effect in [
            Effect::CreateWarRoom,
            Effect::PostKickoff,
            Effect::UpdateKickoff,
            Effect::WatchHealth,
            Effect::PublishStatusPage,
            Effect::PostReview,
        ] {
            assert!(Effect::KINDS.contains(&effect.name()), "{}", effect.name());
        }
    }

    #[test]
    fn only_warroom_marks_mentions_and_user_text_loses_marks() {
        assert_eq!(mention("U0BOB"), "\u{2063}@U0BOB");
        assert_eq!(mention("deploy-bot"), "@deploy-bot");
        assert_eq!(mention("\u{2063}x"), "@x");
        assert_eq!(inert("a \u{2063}@U0EVE"), "a @U0EVE");
        assert_eq!(plain(&format!("{} hi", mention("U1"))), "@U1 hi");
        assert_eq!(
            clean_title("db \u{2063}@U0EVE down"),
            Ok("db @U0EVE down".to_string())
        );
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0).unwrap()
    }

    fn p0_policy() -> SeverityPolicy {
        SeverityPolicy {
            target: Duration::from_secs(2 * 3600),
            checklist: vec!["Assess impact".into(), "Deploy fix".into()],
            escalation: vec![
                EscalationStep {
                    after: Duration::ZERO,
                    page: vec!["primary".into()],
                },
                EscalationStep {
                    after: Duration::from_secs(15 * 60),
                    page: vec!["senior".into()],
                },
                EscalationStep {
                    after: Duration::from_secs(30 * 60),
                    page: vec![],
                },
            ],
            status_every: Some(Duration::from_secs(30 * 60)),
            review_after: Some(Duration::from_secs(72 * 3600)),
        }
    }

    fn request(title: &str) -> OpenIncident {
        OpenIncident {
            number: 7,
            title: title.into(),
            description: String::new(),
            severity: Severity::P0,
            platform: Platform::Slack,
            declared_by: "U1".into(),
            declared_in: "C1".into(),
            responders: vec!["U2".into(), "U1".into()],
            reply_to: Some("https://hooks.example/1".into()),
        }
    }

    #[test]
    fn open_declares_and_plans_everything() {
        let opened = open(request("  checkout   is down "), &p0_policy(), t0()).unwrap();
        let inc = &opened.incident;
        assert_eq!(inc.key(), "INC-7");
        assert_eq!(inc.title, "checkout is down");
        assert_eq!(inc.status, Status::Investigating);
        assert_eq!(inc.target_at, t0() + chrono::Duration::hours(2));
        assert_eq!(inc.checklist.len(), 2);
        assert_eq!(inc.checklist[1].position, 2);
        assert!(inc.checklist.iter().all(|i| i.done.is_none()));

        assert_eq!(opened.timeline.len(), 1);
        assert_eq!(opened.timeline[0].kind, TimelineKind::Declared);
        assert_eq!(opened.timeline[0].actor.as_deref(), Some("U1"));

        let names: Vec<_> = opened.effects.iter().map(Effect::name).collect();
        assert_eq!(
            names,
            [
                "create_war_room",
                "invite_to_war_room",
                "set_war_room_topic",
                "post_kickoff",
                "announce_declared",
                "reply_to_requester",
                "escalation_step",
                "escalation_step",
                "status_reminder",
                "target_warning",
                "target_warning",
                "watch_health",
            ]
        );
        assert_eq!(
            opened.effects[9],
            Effect::TargetWarning {
                due_at: t0() + chrono::Duration::minutes(90),
                target_at: t0() + chrono::Duration::hours(2),
                breached: false,
            }
        );
        assert_eq!(
            opened.effects[1],
            Effect::InviteToWarRoom {
                users: vec!["U1".into(), "U2".into()]
            }
        );
        assert_eq!(
            opened.effects[7],
            Effect::FireEscalationStep {
                step: 1,
                due_at: t0() + chrono::Duration::minutes(15),
                page: vec!["senior".into()],
                plan: t0().timestamp_millis(),
            }
        );
    }

    #[test]
    fn open_rejects_bad_titles() {
        assert!(matches!(
            open(request("   "), &p0_policy(), t0()),
            Err(CoreError::Invalid(_))
        ));
        assert!(open(request(&"x".repeat(201)), &p0_policy(), t0()).is_err());
        assert!(open(request(&"x".repeat(200)), &p0_policy(), t0()).is_ok());
    }

    #[test]
    fn open_without_reply_address_skips_the_reply() {
        let mut req = request("db");
        req.reply_to = None;
        let opened = open(req, &p0_policy(), t0()).unwrap();
        assert!(!opened
            .effects
            .iter()
            .any(|e| matches!(e, Effect::ReplyToRequester { .. })));
    }

    #[test]
    fn only_war_room_effects_wait_for_the_war_room() {
        assert!(!Effect::CreateWarRoom.needs_war_room());
        assert!(Effect::PostKickoff.needs_war_room());
        let step = Effect::FireEscalationStep {
            step: 0,
            due_at: t0(),
            page: vec![],
            plan: 0,
        };
        assert!(!step.needs_war_room());
        assert_eq!(step.due_at(), Some(t0()));
    }

    #[test]
    fn effects_serialize_with_a_tag() {
        let json = serde_json::to_string(&Effect::InviteToWarRoom {
            users: vec!["U1".into()],
        })
        .unwrap();
        assert_eq!(json, r#"{"effect":"invite_to_war_room","users":["U1"]}"#);
        let back: Effect = serde_json::from_str(&json).unwrap();
        assert_eq!(back.name(), "invite_to_war_room");
    }

    #[test]
    fn page_payloads_written_before_routes_were_named_still_read() {
        // A page job's payload as stored before the paging route was called `route`.
        let stored = r#"{"incident":7,"effect":{"effect":"page","step":1,"plan":3,"contact":"senior","channel":"webhook"}}"#;
        let payload: serde_json::Value = serde_json::from_str(stored).unwrap();
        let effect: Effect = serde_json::from_value(payload["effect"].clone()).unwrap();
        let page = Effect::Page {
            step: 1,
            plan: 3,
            contact: "senior".into(),
            route: "webhook".into(),
        };
        assert_eq!(effect, page);
        assert_eq!(effect.name(), "page");
        let json = serde_json::to_string(&page).unwrap();
        assert_eq!(
            json, r#"{"effect":"page","step":1,"plan":3,"contact":"senior","channel":"webhook"}"#,
            "stored as before, so a rollback reads it too"
        );
        assert_eq!(serde_json::from_str::<Effect>(&json).unwrap(), page);
    }

    #[test]
    fn step_firings_are_stored_as_before_the_rename() {
        // An escalation step job's payload as stored before the effect was called
        // `FireEscalationStep`: it reads, and the effect is written the same way.
        let stored = r#"{"incident":7,"effect":{"effect":"escalation_step","step":1,"due_at":"2024-05-01T12:30:00Z","page":["senior"],"plan":3}}"#;
        let payload: serde_json::Value = serde_json::from_str(stored).unwrap();
        let effect: Effect = serde_json::from_value(payload["effect"].clone()).unwrap();
        let due_at = DateTime::parse_from_rfc3339("2024-05-01T12:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            effect,
            Effect::FireEscalationStep {
                step: 1,
                due_at,
                page: vec!["senior".into()],
                plan: 3,
            }
        );
        assert_eq!(effect.name(), "escalation_step");
        assert_eq!(serde_json::to_value(&effect).unwrap(), payload["effect"]);
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(human_duration(Duration::from_secs(5400)), "1h 30m");
        assert_eq!(human_duration(Duration::from_secs(45)), "45s");
        assert_eq!(human_duration(Duration::from_secs(48 * 3600)), "2d");
        assert_eq!(human_duration(Duration::ZERO), "0s");
    }
}
