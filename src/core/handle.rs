//! Commands on an existing incident: who can do what, which transitions are legal, and what
//! each produces (state changes, timeline events, effects).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{
    escalation_plan, CoreError, Done, Effect, Incident, Role, Severity, SeverityPolicy, Status,
    TimelineEvent, TimelineKind, UserId,
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
    let event = |kind, text: String| NewTimelineEvent {
        event: TimelineEvent::new(now, Some(actor), kind, text),
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
            out.timeline.push(event(TimelineKind::Status, text.clone()));
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
            out.timeline.push(event(TimelineKind::Note, text));
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
            out.changes.push(Change::Severity {
                severity: to,
                target_at: incident.declared_at + target,
            });
            out.timeline.push(event(
                TimelineKind::SeverityChanged,
                format!(
                    "Severity {} {} → {to}",
                    if raised { "raised" } else { "lowered" },
                    incident.severity
                ),
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
                    "@{user} is already {} of {key}",
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
                format!("@{user} assigned as {}", role.title().to_lowercase()),
            ));
            out.effects.push(Effect::InviteToWarRoom {
                users: vec![user.clone()],
            });
            out.effects.push(Effect::UpdateKickoff);
            out.reply = format!("@{user} is now {} of {key}.", role.title().to_lowercase());
        }
        Command::Acknowledge => {
            require(active, || {
                format!("{key} is {}: nothing to acknowledge", incident.status)
            })?;
            if let Some(done) = &incident.acknowledged {
                return Err(CoreError::NotAllowed(format!(
                    "{key} was already acknowledged by @{} at {}",
                    done.by,
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
                "Acknowledged: paging stopped".to_string(),
            ));
            out.effects.push(Effect::UpdateKickoff);
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
                format!("Status {} → {to}", incident.status),
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
            out.timeline.push(event(TimelineKind::ChecklistItem, text));
            out.effects.push(Effect::UpdateKickoff);
            out.reply = String::new();
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
            Effect::EscalationStep {
                step,
                due_at,
                page,
                plan,
            } if due_at <= now => raised.then_some(Effect::EscalationStep {
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
