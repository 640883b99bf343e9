//! Commands on an existing incident: who can do what, which transitions are legal, and what
//! each produces (state changes, timeline events, effects).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{
    escalation_plan, inert, mention, target_warnings, CoreError, Done, Effect, Incident,
    Resolution, Role, Severity, SeverityPolicy, Status, TimelineDetail, TimelineEvent,
    TimelineKind, UserId,
};

/// Something a responder asks of an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    PostStatus {
        text: String,
    },
    AddNote {
        text: String,
    },
    ChangeSeverity {
        to: Severity,
    },
    AssignRole {
        role: Role,
        user: UserId,
    },
    Acknowledge,
    ChangeState {
        to: Status,
    },
    ToggleChecklistItem {
        position: i64,
    },
    /// Resolve with these facts (`resolved_by` is taken from the actor). Without a
    /// `customer_facing` answer, P0/P1 count as customer-facing.
    Resolve {
        resolution: Resolution,
        customer_facing: Option<bool>,
    },
    /// The review is done: close a resolved incident.
    Close,
    /// Link the fix (a PR or branch URL) and, optionally, the version that carries it.
    LinkHotfix {
        url: String,
        version: Option<String>,
    },
    /// A chat message was marked for the timeline; `message` identifies it on the platform.
    PinMessage {
        message: String,
    },
    UnpinMessage {
        message: String,
    },
}

/// A change to the stored incident.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Status(Status),
    Severity {
        severity: Severity,
        target_at: DateTime<Utc>,
    },
    Role {
        role: Role,
        user: UserId,
        by: UserId,
    },
    Acknowledged(Done),
    ChecklistItem {
        position: i64,
        done: Option<Done>,
    },
    /// Pending escalation steps are cancelled (acknowledged, or re-planned).
    CancelEscalation,
    /// Resolved now, with these facts.
    Resolved(Resolution),
    /// A fix linked.
    HotfixLinked(super::hotfix::HotfixLink),
    /// The timeline event with this key is removed (a pin taken back).
    RemoveTimeline {
        source_key: String,
    },
}

/// A timeline event to append; with a key, at most one such event exists.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTimelineEvent {
    pub event: TimelineEvent,
    pub source_key: Option<String>,
}

/// Everything a command produces.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    pub changes: Vec<Change>,
    pub timeline: Vec<NewTimelineEvent>,
    pub effects: Vec<Effect>,
    /// A confirmation for the person who acted.
    pub reply: String,
}

/// Severity policies, for re-planning escalation.
pub type Policies = BTreeMap<Severity, SeverityPolicy>;

/// The timeline key of a pinned message.
pub fn pin_key(incident: i64, message: &str) -> String {
    format!("pin:{incident}:{message}")
}

/// Applies `command` by `actor` at `now` to `incident`.
pub fn handle(
    incident: &Incident,
    command: Command,
    actor: &str,
    now: DateTime<Utc>,
    policies: &Policies,
) -> Result<Outcome, CoreError> {
    let event = |kind, detail: TimelineDetail| NewTimelineEvent {
        event: TimelineEvent::new(now, Some(actor), kind, detail),
        source_key: None,
    };
    let closed = incident.status == Status::Closed;
    let active = incident.status.is_active();
    let key = incident.key();
    let mut out = Outcome::default();
    match command {
        Command::PostStatus { text } => {
            let text = clean_text(&text, "a status update")?;
            require(active, || {
                format!("{key} is {}: no more status updates", incident.status)
            })?;
            out.timeline.push(event(
                TimelineKind::Status,
                TimelineDetail::new().typed(&text),
            ));
            out.effects.push(Effect::PostStatusUpdate {
                text: text.clone(),
                by: actor.to_string(),
            });
            if incident.severity.is_major() {
                out.effects.push(Effect::AnnounceStatusUpdate {
                    text,
                    by: actor.to_string(),
                });
            }
            out.reply = format!("Status update posted to {key}.");
        }
        Command::AddNote { text } => {
            let text = clean_text(&text, "a note")?;
            require(!closed, || format!("{key} is closed"))?;
            out.timeline
                .push(event(TimelineKind::Note, TimelineDetail::new().typed(text)));
            out.reply = format!("Note added to the {key} timeline.");
        }
        Command::ChangeSeverity { to } => {
            require(active, || {
                format!("{key} is {}: its severity is final", incident.status)
            })?;
            if to == incident.severity {
                return Err(CoreError::NotAllowed(format!("{key} is already {to}")));
            }
            let policy = policies
                .get(&to)
                .ok_or_else(|| CoreError::Invalid(format!("no policy for {to}")))?;
            let target = chrono::Duration::from_std(policy.target)
                .map_err(|_| CoreError::Invalid("the response target is too long".into()))?;
            let raised = to < incident.severity;
            let target_at = incident.declared_at + target;
            out.changes.push(Change::Severity {
                severity: to,
                target_at,
            });
            out.effects
                .extend(target_warnings(incident.declared_at, target_at, now));
            if to.is_major() && !incident.severity.is_major() {
                if let Some(every) = policy.status_every {
                    out.effects.push(Effect::StatusReminder {
                        due_at: now
                            + chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX),
                    });
                }
            }
            out.timeline.push(event(
                TimelineKind::SeverityChanged,
                format!(
                    "Severity {} {} → {to}",
                    if raised { "raised" } else { "lowered" },
                    incident.severity
                )
                .into(),
            ));
            if incident.acknowledged.is_none() {
                out.changes.push(Change::CancelEscalation);
                out.effects.extend(replan(
                    &policy.escalation,
                    incident.declared_at,
                    now,
                    raised,
                ));
            }
            out.effects.push(Effect::SetWarRoomTopic);
            out.effects.push(Effect::UpdateKickoff);
            out.reply = format!("{key} is now {to}.");
        }
        Command::AssignRole { role, user } => {
            require(!closed, || format!("{key} is closed"))?;
            if incident.roles.get(&role) == Some(&user) {
                return Err(CoreError::NotAllowed(format!(
                    "{} is already {} of {key}",
                    mention(&user),
                    role.title().to_lowercase()
                )));
            }
            out.changes.push(Change::Role {
                role,
                user: user.clone(),
                by: actor.to_string(),
            });
            out.timeline.push(event(
                TimelineKind::RoleAssigned,
                TimelineDetail::new()
                    .person(&user)
                    .words(format!(" assigned as {}", role.title().to_lowercase())),
            ));
            out.effects.push(Effect::InviteToWarRoom {
                users: vec![user.clone()],
            });
            out.effects.push(Effect::UpdateKickoff);
            out.reply = format!(
                "{} is now {} of {key}.",
                mention(&user),
                role.title().to_lowercase()
            );
        }
        Command::Acknowledge => {
            require(active, || {
                format!("{key} is {}: nothing to acknowledge", incident.status)
            })?;
            if let Some(done) = &incident.acknowledged {
                return Err(CoreError::NotAllowed(format!(
                    "{key} was already acknowledged by {} at {}",
                    mention(&done.by),
                    done.at.format("%H:%M UTC")
                )));
            }
            out.changes.push(Change::Acknowledged(Done {
                by: actor.to_string(),
                at: now,
            }));
            out.changes.push(Change::CancelEscalation);
            out.timeline.push(event(
                TimelineKind::Acknowledged,
                "Acknowledged: paging stopped".into(),
            ));
            out.effects.push(Effect::UpdateKickoff);
            out.effects.push(Effect::AcknowledgePagers);
            out.reply = format!("{key} acknowledged: paging stopped.");
        }
        Command::ChangeState { to } => {
            if !matches!(to, Status::Identified | Status::Monitoring) {
                return Err(CoreError::Invalid(
                    "`state` takes identified or monitoring (use `resolve` to resolve)".into(),
                ));
            }
            require(active, || {
                format!("{key} is {}: it cannot move to {to}", incident.status)
            })?;
            if incident.status == to {
                return Err(CoreError::NotAllowed(format!("{key} is already {to}")));
            }
            out.changes.push(Change::Status(to));
            out.timeline.push(event(
                TimelineKind::StateChanged,
                format!("Status {} → {to}", incident.status).into(),
            ));
            out.effects.push(Effect::SetWarRoomTopic);
            out.effects.push(Effect::UpdateKickoff);
            out.reply = format!("{key} is now {to}.");
        }
        Command::ToggleChecklistItem { position } => {
            require(!closed, || format!("{key} is closed"))?;
            let item = incident
                .checklist
                .iter()
                .find(|i| i.position == position)
                .ok_or_else(|| {
                    CoreError::Invalid(format!("{key} has no checklist item {position}"))
                })?;
            let (done, text) = match &item.done {
                Some(_) => (None, format!("Checklist: unticked “{}”", item.text)),
                None => (
                    Some(Done {
                        by: actor.to_string(),
                        at: now,
                    }),
                    format!("Checklist: ticked “{}”", item.text),
                ),
            };
            out.changes.push(Change::ChecklistItem { position, done });
            out.timeline
                .push(event(TimelineKind::ChecklistItem, text.into()));
            out.effects.push(Effect::UpdateKickoff);
            out.reply = String::new();
        }
        Command::Resolve {
            mut resolution,
            customer_facing,
        } => {
            match incident.status {
                Status::Resolved | Status::Closed => {
                    return Err(CoreError::NotAllowed(format!(
                        "{key} was already resolved{}: nothing to do",
                        incident
                            .resolved_at
                            .map(|t| format!(" at {}", t.format("%Y-%m-%d %H:%M UTC")))
                            .unwrap_or_default()
                    )))
                }
                _ => {}
            }
            resolution.summary = clean_text(&resolution.summary, "a resolution summary")?;
            resolution.resolved_by = actor.to_string();
            resolution.customer_facing =
                customer_facing.unwrap_or_else(|| incident.severity.is_major());
            resolution.follow_ups.retain(|f| !f.trim().is_empty());
            let policy = policies.get(&incident.severity);
            out.changes.push(Change::Resolved(resolution.clone()));
            out.changes.push(Change::CancelEscalation);
            out.timeline.push(event(
                TimelineKind::Resolved,
                TimelineDetail::new()
                    .words("Resolved: ")
                    .typed(&resolution.summary),
            ));
            out.effects.extend([
                Effect::UpdateKickoff,
                Effect::SetWarRoomTopic,
                Effect::ResolvePagers,
                Effect::PublishAnnouncement,
                Effect::PublishStatusPage,
                Effect::PublishCustomerEmail,
                Effect::PostReview,
            ]);
            if let Some(after) = policy
                .and_then(|p| p.review_after)
                .filter(|_| incident.severity.is_major())
            {
                out.effects.push(Effect::ReviewReminder {
                    due_at: now
                        + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX),
                });
            }
            out.reply = format!(
                "{key} resolved. Paging stopped; the announcement, status page, customer email and review are on their way."
            );
        }
        Command::Close => {
            match incident.status {
                Status::Resolved => {}
                Status::Closed => {
                    return Err(CoreError::NotAllowed(format!("{key} is already closed")))
                }
                _ => {
                    return Err(CoreError::NotAllowed(format!(
                        "{key} is {}: resolve it before closing it",
                        incident.status
                    )))
                }
            }
            out.changes.push(Change::Status(Status::Closed));
            out.timeline.push(event(
                TimelineKind::StateChanged,
                "Closed: post-incident review done".into(),
            ));
            out.effects.push(Effect::SetWarRoomTopic);
            out.effects.push(Effect::UpdateKickoff);
            out.reply = format!("{key} closed.");
        }
        Command::LinkHotfix { url, version } => {
            require(active, || {
                format!(
                    "{key} is {}: link the fix while it is open",
                    incident.status
                )
            })?;
            let url = super::hotfix::check_link(&url).map_err(CoreError::Invalid)?;
            let version = version.map(|v| inert(v.trim())).filter(|v| !v.is_empty());
            let link = super::hotfix::HotfixLink {
                url: url.clone(),
                version: version.clone(),
                linked_by: actor.to_string(),
                linked_at: now,
            };
            out.changes.push(Change::HotfixLinked(link));
            let shown = super::hotfix::display_link(&url);
            let detail = match &version {
                Some(v) => TimelineDetail::new()
                    .words(format!("Hotfix linked: {shown} ("))
                    .typed(v)
                    .words("); warroom watches for ")
                    .typed(v)
                    .words(" in production"),
                None => format!("Hotfix linked: {shown}; the next deploy counts as the fix").into(),
            };
            out.timeline.push(event(TimelineKind::Deploy, detail));
            out.effects.push(Effect::UpdateKickoff);
            out.effects.push(Effect::WatchHealth);
            out.reply = format!("Hotfix {shown} linked to {key}.");
        }
        Command::PinMessage { message } => {
            require(!closed, || format!("{key} is closed"))?;
            out.timeline.push(NewTimelineEvent {
                event: TimelineEvent::new(
                    now,
                    Some(actor),
                    TimelineKind::Pinned,
                    "Pinned a message",
                ),
                source_key: Some(pin_key(incident.number, &message)),
            });
            out.effects.push(Effect::FetchPinnedMessage { message });
        }
        Command::UnpinMessage { message } => {
            out.changes.push(Change::RemoveTimeline {
                source_key: pin_key(incident.number, &message),
            });
        }
    }
    Ok(out)
}

/// The steps of a new severity's ladder, counted from the declaration. Steps already past are
/// fired now when the severity was raised (more people are needed at once) and dropped when it
/// was lowered.
fn replan(
    steps: &[super::EscalationStep],
    declared_at: DateTime<Utc>,
    now: DateTime<Utc>,
    raised: bool,
) -> Vec<Effect> {
    escalation_plan(steps, declared_at, now.timestamp_millis())
        .into_iter()
        .filter_map(|e| match e {
            Effect::FireEscalationStep {
                step,
                due_at,
                page,
                plan,
            } if due_at <= now => raised.then_some(Effect::FireEscalationStep {
                step,
                due_at: now,
                page,
                plan,
            }),
            other => Some(other),
        })
        .collect()
}

fn require(ok: bool, message: impl FnOnce() -> String) -> Result<(), CoreError> {
    if ok {
        Ok(())
    } else {
        Err(CoreError::NotAllowed(message()))
    }
}

/// Trims user text; refuses empty or very long text.
fn clean_text(text: &str, what: &str) -> Result<String, CoreError> {
    let text = inert(text);
    let text = text.trim();
    if text.is_empty() {
        return Err(CoreError::Invalid(format!("{what} needs some text")));
    }
    if text.chars().count() > 3000 {
        return Err(CoreError::Invalid(format!(
            "{what} is too long (at most 3000 characters)"
        )));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone;

    use super::*;
    use crate::core::{open, EscalationStep, OpenIncident, Platform};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0).unwrap()
    }

    fn policies() -> Policies {
        let ladder = |steps: &[(u64, &str)]| {
            steps
                .iter()
                .map(|(m, who)| EscalationStep {
                    after: Duration::from_secs(m * 60),
                    page: vec![who.to_string()],
                })
                .collect()
        };
        let mut p = Policies::new();
        for (sev, hours, steps) in [
            (
                Severity::P0,
                2,
                ladder(&[(0, "primary"), (15, "senior"), (30, "manager")]),
            ),
            (Severity::P1, 4, ladder(&[(0, "primary"), (30, "senior")])),
            (Severity::P2, 24, ladder(&[(0, "primary")])),
            (Severity::P3, 48, Vec::new()),
        ] {
            p.insert(
                sev,
                SeverityPolicy {
                    target: Duration::from_secs(hours * 3600),
                    checklist: vec!["Assess".into(), "Fix".into()],
                    escalation: steps,
                    status_every: Some(Duration::from_secs(30 * 60)),
                    review_after: Some(Duration::from_secs(72 * 3600)),
                },
            );
        }
        p
    }

    fn incident(severity: Severity) -> Incident {
        let policies = policies();
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
            &policies[&severity],
            t0(),
        )
        .unwrap()
        .incident
    }

    fn run(incident: &Incident, command: Command, minutes: i64) -> Result<Outcome, CoreError> {
        handle(
            incident,
            command,
            "U2",
            t0() + chrono::Duration::minutes(minutes),
            &policies(),
        )
    }

    fn effect_names(o: &Outcome) -> Vec<&'static str> {
        o.effects.iter().map(Effect::name).collect()
    }

    #[test]
    fn status_is_posted_and_announced_only_for_major_incidents() {
        let major = run(
            &incident(Severity::P1),
            Command::PostStatus {
                text: " fixing ".into(),
            },
            5,
        )
        .unwrap();
        assert_eq!(
            effect_names(&major),
            ["post_status_update", "announce_status_update"]
        );
        assert_eq!(major.timeline[0].event.text(), "fixing");
        assert_eq!(major.timeline[0].event.actor.as_deref(), Some("U2"));
        let minor = run(
            &incident(Severity::P3),
            Command::PostStatus { text: "x".into() },
            5,
        )
        .unwrap();
        assert_eq!(effect_names(&minor), ["post_status_update"]);
        assert!(run(
            &incident(Severity::P3),
            Command::PostStatus { text: "  ".into() },
            5
        )
        .is_err());
    }

    #[test]
    fn acknowledging_stops_escalation_once() {
        let mut inc = incident(Severity::P0);
        let out = run(&inc, Command::Acknowledge, 3).unwrap();
        assert!(out.changes.contains(&Change::CancelEscalation));
        assert!(matches!(out.changes[0], Change::Acknowledged(ref d) if d.by == "U2"));
        inc.acknowledged = Some(Done {
            by: "U2".into(),
            at: t0(),
        });
        assert!(matches!(
            run(&inc, Command::Acknowledge, 4),
            Err(CoreError::NotAllowed(m)) if m.contains("already acknowledged")
        ));
    }

    #[test]
    fn raising_severity_fires_past_steps_now_and_keeps_future_ones() {
        let inc = incident(Severity::P2);
        let out = run(&inc, Command::ChangeSeverity { to: Severity::P0 }, 20).unwrap();
        let now = t0() + chrono::Duration::minutes(20);
        assert!(out.changes.contains(&Change::Severity {
            severity: Severity::P0,
            target_at: t0() + chrono::Duration::hours(2)
        }));
        assert!(out.changes.contains(&Change::CancelEscalation));
        let steps: Vec<_> = out
            .effects
            .iter()
            .filter_map(|e| match e {
                Effect::FireEscalationStep { step, due_at, .. } => Some((*step, *due_at)),
                _ => None,
            })
            .collect();
        assert_eq!(
            steps,
            [
                (0, now),
                (1, now),
                (2, t0() + chrono::Duration::minutes(30))
            ]
        );
        assert!(out.timeline[0].event.text().contains("raised P2 → P0"));
    }

    #[test]
    fn lowering_severity_drops_past_steps_and_acked_incidents_are_not_replanned() {
        let inc = incident(Severity::P0);
        let out = run(&inc, Command::ChangeSeverity { to: Severity::P1 }, 20).unwrap();
        let steps: Vec<usize> = out
            .effects
            .iter()
            .filter_map(|e| match e {
                Effect::FireEscalationStep { step, .. } => Some(*step),
                _ => None,
            })
            .collect();
        assert_eq!(steps, [1], "only the 30m step is still ahead");
        let mut acked = incident(Severity::P0);
        acked.acknowledged = Some(Done {
            by: "U3".into(),
            at: t0(),
        });
        let out = run(&acked, Command::ChangeSeverity { to: Severity::P1 }, 20).unwrap();
        assert!(!out.changes.contains(&Change::CancelEscalation));
        assert!(!effect_names(&out).contains(&"escalation_step"));
        assert!(run(&inc, Command::ChangeSeverity { to: Severity::P0 }, 1).is_err());
    }

    #[test]
    fn state_changes_follow_the_lifecycle() {
        let mut inc = incident(Severity::P1);
        let out = run(
            &inc,
            Command::ChangeState {
                to: Status::Monitoring,
            },
            1,
        )
        .unwrap();
        assert_eq!(out.changes, [Change::Status(Status::Monitoring)]);
        assert!(run(
            &inc,
            Command::ChangeState {
                to: Status::Resolved
            },
            1
        )
        .is_err());
        assert!(run(
            &inc,
            Command::ChangeState {
                to: Status::Investigating
            },
            1
        )
        .is_err());
        inc.status = Status::Monitoring;
        assert!(run(
            &inc,
            Command::ChangeState {
                to: Status::Identified
            },
            1
        )
        .is_ok());
        assert!(run(
            &inc,
            Command::ChangeState {
                to: Status::Monitoring
            },
            1
        )
        .is_err());
        inc.status = Status::Resolved;
        for command in [
            Command::ChangeState {
                to: Status::Monitoring,
            },
            Command::PostStatus { text: "x".into() },
            Command::ChangeSeverity { to: Severity::P0 },
            Command::Acknowledge,
        ] {
            assert!(matches!(
                run(&inc, command, 1),
                Err(CoreError::NotAllowed(_))
            ));
        }
        assert!(run(
            &inc,
            Command::AddNote {
                text: "follow-up".into()
            },
            1
        )
        .is_ok());
        inc.status = Status::Closed;
        assert!(run(
            &inc,
            Command::AddNote {
                text: "late".into()
            },
            1
        )
        .is_err());
    }

    #[test]
    fn checklist_items_toggle_with_who_and_when() {
        let mut inc = incident(Severity::P1);
        let out = run(&inc, Command::ToggleChecklistItem { position: 2 }, 7).unwrap();
        let done = Done {
            by: "U2".into(),
            at: t0() + chrono::Duration::minutes(7),
        };
        assert_eq!(
            out.changes,
            [Change::ChecklistItem {
                position: 2,
                done: Some(done.clone())
            }]
        );
        assert_eq!(effect_names(&out), ["update_kickoff"]);
        inc.checklist[1].done = Some(done);
        let out = run(&inc, Command::ToggleChecklistItem { position: 2 }, 8).unwrap();
        assert_eq!(
            out.changes,
            [Change::ChecklistItem {
                position: 2,
                done: None
            }]
        );
        assert!(out.timeline[0].event.text().contains("unticked"));
        assert!(run(&inc, Command::ToggleChecklistItem { position: 9 }, 8).is_err());
    }

    #[test]
    fn roles_invite_and_refuse_repeats() {
        let mut inc = incident(Severity::P1);
        let out = run(
            &inc,
            Command::AssignRole {
                role: Role::Commander,
                user: "U9".into(),
            },
            1,
        )
        .unwrap();
        assert_eq!(effect_names(&out), ["invite_to_war_room", "update_kickoff"]);
        inc.roles.insert(Role::Commander, "U9".into());
        assert!(run(
            &inc,
            Command::AssignRole {
                role: Role::Commander,
                user: "U9".into()
            },
            2
        )
        .is_err());
    }

    #[test]
    fn pins_are_keyed_by_message() {
        let inc = incident(Severity::P2);
        let pin = run(
            &inc,
            Command::PinMessage {
                message: "C1:1.2".into(),
            },
            1,
        )
        .unwrap();
        assert_eq!(pin.timeline[0].source_key.as_deref(), Some("pin:1:C1:1.2"));
        assert_eq!(effect_names(&pin), ["fetch_pinned_message"]);
        let unpin = run(
            &inc,
            Command::UnpinMessage {
                message: "C1:1.2".into(),
            },
            2,
        )
        .unwrap();
        assert_eq!(
            unpin.changes,
            [Change::RemoveTimeline {
                source_key: "pin:1:C1:1.2".into()
            }]
        );
    }
}
