//! The chat effects of an incident, decided here and said through the chat-platform port: the
//! war room, the kickoff, announcements, status updates and nudges, target warnings, the end of
//! a monitoring window, the resolution communications and the review. What a platform shows
//! is its adapter's business; what to say, where and whether is decided here, the same for
//! every platform.

use chrono::{DateTime, Utc};

use crate::chat::{ChatPlatform, Destination, Document, Message, PostKey};
use crate::context::AppContext;
use crate::core::{
    pin_key, rules, Effect, Incident, TimelineDetail, TimelineEvent, TimelineKind, WarRoom,
};
use crate::jobs::{JobChange, JobError, JobOutcome, JobRun};
use crate::resolution::{self, Publication};
use crate::templates::{Medium, Template};

fn war_room(incident: &Incident) -> Result<&WarRoom, JobError> {
    incident
        .war_room
        .as_ref()
        .ok_or_else(|| JobError::retry(format!("{} has no war room yet", incident.key())))
}

fn every(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Carries out one chat effect of `incident` on `chat`, as attempt `run` of its job.
pub async fn perform(
    ctx: &AppContext,
    chat: &dyn ChatPlatform,
    incident: &Incident,
    effect: &Effect,
    run: JobRun,
) -> Result<JobOutcome, JobError> {
    let now = ctx.clock.now();
    let first = PostKey::new(run, 0);
    match effect {
        Effect::CreateWarRoom => {
            if incident.war_room.is_some() {
                return Ok(JobOutcome::none());
            }
            let room = chat.create_war_room(incident).await?;
            Ok(war_room_opened(incident, now, room))
        }
        Effect::InviteToWarRoom { users } => {
            let room = war_room(incident)?;
            let mut outcome = JobOutcome::none();
            for (user, why) in chat.invite(room, users).await? {
                outcome = outcome.with(JobChange::Timeline {
                    event: TimelineEvent::new(
                        now,
                        None,
                        TimelineKind::Failure,
                        TimelineDetail::new()
                            .words("Could not invite ")
                            .person(user)
                            .words(format!(": {why}")),
                    ),
                    source_key: None,
                });
            }
            Ok(outcome)
        }
        Effect::SetWarRoomTopic => {
            chat.set_topic(war_room(incident)?, incident).await?;
            Ok(JobOutcome::none())
        }
        Effect::PostKickoff => {
            let room = war_room(incident)?;
            if incident.kickoff_ref.is_some() {
                return Ok(JobOutcome::none());
            }
            let kickoff = chat.post_kickoff(room, incident, run.retry).await?;
            Ok(JobOutcome::none().with(JobChange::KickoffRef(kickoff)))
        }
        Effect::UpdateKickoff => {
            let room = war_room(incident)?;
            match &incident.kickoff_ref {
                Some(kickoff) => {
                    chat.update_kickoff(room, kickoff, incident).await?;
                    Ok(JobOutcome::none())
                }
                // No kickoff is known: it gave up, or a post that reached the platform was
                // never recorded (its job was superseded by this one, say). Always look first.
                None => {
                    let kickoff = chat.post_kickoff(room, incident, true).await?;
                    Ok(JobOutcome::none().with(JobChange::KickoffRef(kickoff)))
                }
            }
        }
        Effect::AnnounceDeclared => {
            if let Some(channel) = chat.announce_channel() {
                let to = Destination::Announce(&channel);
                chat.post(to, incident, &Message::Declared, first).await?;
            }
            Ok(JobOutcome::none())
        }
        Effect::ReplyToRequester { reply_to } => {
            chat.reply(reply_to, incident, &Message::Opened).await?;
            Ok(JobOutcome::none())
        }
        Effect::PostStatusUpdate { text, by } => {
            let to = Destination::WarRoom(war_room(incident)?);
            let message = Message::StatusUpdate {
                text: text.clone(),
                by: by.clone(),
            };
            chat.post(to, incident, &message, first).await?;
            Ok(JobOutcome::none())
        }
        Effect::AnnounceStatusUpdate { text, by } => {
            if let Some(channel) = chat.announce_channel() {
                let message = Message::StatusAnnouncement {
                    text: text.clone(),
                    by: by.clone(),
                };
                chat.post(Destination::Announce(&channel), incident, &message, first)
                    .await?;
            }
            Ok(JobOutcome::none())
        }
        Effect::StatusReminder { .. } => {
            let last = {
                let mut conn = ctx.store.acquire().await?;
                crate::store::last_timeline_at(&mut conn, incident.number, TimelineKind::Status)
                    .await?
            };
            let every = every(ctx.config.reminders.status_every);
            match rules::status_reminder(incident, last, every, now) {
                rules::StatusReminder::Stop => Ok(JobOutcome::none()),
                rules::StatusReminder::Later { next } => Ok(reminder_at(next)),
                rules::StatusReminder::Nudge { quiet, next } => {
                    let to = Destination::WarRoom(war_room(incident)?);
                    chat.post(to, incident, &Message::StatusNudge { quiet }, first)
                        .await?;
                    Ok(reminder_at(next))
                }
            }
        }
        Effect::TargetWarning {
            target_at,
            breached,
            ..
        } => {
            if !rules::target_warning_applies(incident, *target_at) {
                return Ok(JobOutcome::none());
            }
            let to = Destination::WarRoom(war_room(incident)?);
            let message = Message::TargetWarning {
                breached: *breached,
            };
            chat.post(to, incident, &message, first).await?;
            let text = rules::target_warning_note(incident, *target_at, *breached);
            Ok(JobOutcome::none().with(JobChange::Timeline {
                event: TimelineEvent::new(now, None, TimelineKind::Failure, text),
                source_key: Some(format!(
                    "target:{}:{}:{breached}",
                    incident.number,
                    target_at.timestamp_millis()
                )),
            }))
        }
        Effect::DeliveryStuck {
            kind, since, error, ..
        } => {
            // Said wherever it can still be heard: the war room may be what failed.
            let message = Message::DeliveryStuck {
                kind: kind.clone(),
                since: *since,
                now,
                error: error.clone(),
            };
            if let Some(channel) = chat.announce_channel() {
                chat.post(Destination::Announce(&channel), incident, &message, first)
                    .await?;
            }
            let to = Destination::User(&incident.declared_by);
            chat.post(to, incident, &message, PostKey::new(run, 1))
                .await?;
            Ok(JobOutcome::none())
        }
        Effect::PostToWarRoom { text } => {
            let to = Destination::WarRoom(war_room(incident)?);
            chat.post(to, incident, &Message::Text(text.clone()), first)
                .await?;
            Ok(JobOutcome::none())
        }
        Effect::PostToAnnounceChannel { text } => {
            if let Some(channel) = chat.announce_channel() {
                let to = Destination::Announce(&channel);
                chat.post(to, incident, &Message::Text(text.clone()), first)
                    .await?;
            }
            Ok(JobOutcome::none())
        }
        Effect::PageUser { user, reason } => {
            let message = Message::DirectPage {
                reason: reason.clone(),
            };
            chat.post(Destination::User(user), incident, &message, first)
                .await?;
            Ok(JobOutcome::none().with(JobChange::Timeline {
                event: TimelineEvent::new(
                    now,
                    None,
                    TimelineKind::Paged,
                    TimelineDetail::new()
                        .words("Paged ")
                        .person(user)
                        .words(format!(
                            " by {} DM to decide on a rollback",
                            chat.display_name()
                        )),
                ),
                source_key: None,
            }))
        }
        Effect::MonitoringWindowEnd {
            started_at,
            version,
            due_at,
        } => {
            if !rules::monitoring_window_applies(incident) {
                return Ok(JobOutcome::none());
            }
            let to = Destination::WarRoom(war_room(incident)?);
            let failures =
                crate::health::failures_between(ctx, incident.number, *started_at, *due_at).await?;
            let window = (*due_at - *started_at).to_std().unwrap_or_default();
            let message = Message::MonitoringSummary {
                version: version.clone(),
                window,
                failures,
            };
            chat.post(to, incident, &message, first).await?;
            let text = rules::monitoring_verdict(version, window, failures);
            Ok(JobOutcome::none().with(JobChange::Timeline {
                event: TimelineEvent::new(now, None, TimelineKind::Health, text),
                source_key: Some(format!(
                    "window:{}:{}",
                    incident.number,
                    started_at.timestamp_millis()
                )),
            }))
        }
        Effect::PublishAnnouncement => {
            // Posted in chat, so in the platform's medium.
            let text =
                resolution::render(ctx, incident, Template::InternalAnnouncement, chat.medium())
                    .await?;
            // The announce channel when there is one, else the war room.
            let announce = chat.announce_channel();
            let (to, place) = match (&announce, &incident.war_room) {
                (Some(c), _) => (
                    Destination::Announce(c),
                    format!("the announce channel ({c})"),
                ),
                (None, Some(room)) => (Destination::WarRoom(room), format!("#{}", room.name)),
                (None, None) => return Err(JobError::retry("no war room yet")),
            };
            chat.post(to, incident, &Message::Document(text), first)
                .await?;
            Ok(published(
                incident,
                now,
                "announcement",
                format!("Internal announcement posted in {place}"),
            ))
        }
        Effect::PublishStatusPage => {
            let outcome = resolution::status_page(ctx, incident, run.retry).await?;
            publish_or_draft(
                chat,
                run,
                incident,
                now,
                "status_page",
                "Status-page update",
                outcome,
            )
            .await
        }
        Effect::PublishCustomerEmail => {
            let outcome = resolution::customer_email(ctx, incident).await?;
            publish_or_draft(
                chat,
                run,
                incident,
                now,
                "customer_email",
                "Customer email",
                outcome,
            )
            .await
        }
        Effect::PostReview => {
            let room = war_room(incident)?;
            // A Markdown file, whatever the platform.
            let body = resolution::render(
                ctx,
                incident,
                Template::PostIncidentReview,
                Medium::Markdown,
            )
            .await?;
            let filename = format!("{}-post-incident-review.md", incident.key().to_lowercase());
            let comment = format!(
                "The post-incident review draft for {} is attached. Fill in what went well, \
                 what went wrong and the action items in the review meeting, then `/incident close`.{}",
                incident.key(),
                resolution::links(ctx, incident)
                    .review
                    .map(|l| format!(" It is also at {l}"))
                    .unwrap_or_default()
            );
            let document = Document {
                title: format!("{} post-incident review", incident.key()),
                filename: filename.clone(),
                body,
                comment,
            };
            chat.share_document(room, &document, first).await?;
            Ok(published(
                incident,
                now,
                "review",
                format!("Post-incident review posted in #{} ({filename})", room.name),
            ))
        }
        Effect::ReviewReminder { .. } => {
            let every = every(ctx.config.review.remind_after);
            let Some(next) = rules::review_reminder(incident, every, now) else {
                return Ok(JobOutcome::none());
            };
            let to = Destination::WarRoom(war_room(incident)?);
            chat.post(to, incident, &Message::ReviewReminder, first)
                .await?;
            Ok(JobOutcome::none().with(JobChange::Enqueue(vec![next])))
        }
        Effect::FetchPinnedMessage { message } => {
            let fetched = chat.fetch_message(message).await?;
            let link = fetched.link.map(|l| format!(" — {l}")).unwrap_or_default();
            let detail = match fetched.text {
                Some(text) => {
                    let by = TimelineDetail::new().words("Pinned ");
                    let by = match fetched.author {
                        Some(user) => by.person(user),
                        None => by.words("a message"),
                    };
                    by.words(": “").typed(text.trim()).words(format!("”{link}"))
                }
                None => format!("Pinned a message that could no longer be read{link}").into(),
            };
            Ok(JobOutcome::none().with(JobChange::TimelineText {
                source_key: pin_key(incident.number, message),
                detail,
            }))
        }
        Effect::FireEscalationStep { .. }
        | Effect::Page { .. }
        | Effect::AcknowledgePagers
        | Effect::ResolvePagers
        | Effect::WatchHealth => Err(JobError::fatal(format!(
            "`{}` is not a chat effect",
            effect.name()
        ))),
    }
}

fn reminder_at(due_at: DateTime<Utc>) -> JobOutcome {
    JobOutcome::none().with(JobChange::Enqueue(vec![Effect::StatusReminder { due_at }]))
}

/// The job outcome of a war room opened (created, or adopted after a lost answer).
fn war_room_opened(incident: &Incident, now: DateTime<Utc>, room: WarRoom) -> JobOutcome {
    let event = TimelineEvent::new(
        now,
        None,
        TimelineKind::WarRoomOpened,
        format!("War room #{} opened", room.name),
    );
    JobOutcome::none()
        .with(JobChange::WarRoom(room))
        .with(JobChange::Timeline {
            event,
            source_key: Some(format!("war_room_opened:{}", incident.number)),
        })
}

/// A timeline entry saying what was published where (once per incident and kind).
fn published(incident: &Incident, now: DateTime<Utc>, what: &str, text: String) -> JobOutcome {
    JobOutcome::none().with(JobChange::Timeline {
        event: TimelineEvent::new(now, None, TimelineKind::Published, text),
        source_key: Some(format!("published:{}:{what}", incident.number)),
    })
}

/// Records a publication, or posts the draft in the war room for a human to paste.
async fn publish_or_draft(
    chat: &dyn ChatPlatform,
    run: JobRun,
    incident: &Incident,
    now: DateTime<Utc>,
    what: &str,
    label: &str,
    outcome: Publication,
) -> Result<JobOutcome, JobError> {
    match outcome {
        Publication::Published(text) => Ok(published(incident, now, what, text)),
        Publication::Draft {
            reason,
            title,
            body,
        } => {
            let room = war_room(incident)?;
            let message = Message::Draft {
                label: label.to_string(),
                reason: reason.clone(),
                title,
                body,
            };
            chat.post(
                Destination::WarRoom(room),
                incident,
                &message,
                PostKey::new(run, 0),
            )
            .await?;
            Ok(published(
                incident,
                now,
                what,
                format!("{label} drafted in #{} ({reason})", room.name),
            ))
        }
    }
}
