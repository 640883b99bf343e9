//! Carrying out core effects on Slack. Each function is one job: it reads nothing but the
//! incident it is given, makes its Slack calls, and returns the state changes to commit.

use crate::app::AppContext;
use crate::core::{ChannelName, Effect, Incident, TimelineEvent, TimelineKind, WarRoom};
use crate::jobs::{Change, JobError, JobOutcome};

use super::api::{SlackApi, SlackCallError};
use super::render;

/// How many suffixed names to try when the war-room name is taken.
const NAME_ATTEMPTS: u32 = 20;

impl From<SlackCallError> for JobError {
    fn from(e: SlackCallError) -> Self {
        match e {
            SlackCallError::RateLimited(after) => JobError::Retry {
                after,
                reason: e.to_string(),
            },
            e if e.is_retryable() => JobError::retry(e.to_string()),
            e => JobError::fatal(e.to_string()),
        }
    }
}

fn api(ctx: &AppContext) -> Result<&SlackApi, JobError> {
    ctx.slack
        .as_ref()
        .ok_or_else(|| JobError::fatal("Slack is not configured (SLACK_BOT_TOKEN is not set)"))
}

fn war_room(incident: &Incident) -> Result<&WarRoom, JobError> {
    incident
        .war_room
        .as_ref()
        .ok_or_else(|| JobError::retry(format!("{} has no war room yet", incident.key())))
}

/// Performs one effect for an incident that lives on Slack.
pub async fn perform(
    ctx: &AppContext,
    incident: &Incident,
    effect: &Effect,
) -> Result<JobOutcome, JobError> {
    let slack = api(ctx)?;
    let now = ctx.clock.now();
    match effect {
        Effect::CreateWarRoom => {
            if incident.war_room.is_some() {
                return Ok(JobOutcome::none());
            }
            for attempt in 0..NAME_ATTEMPTS {
                let name = ChannelName::with_suffix(incident.number, &incident.title, attempt);
                match slack.create_channel(name.as_str()).await {
                    Ok((id, name)) => {
                        let event = TimelineEvent::new(
                            now,
                            None,
                            TimelineKind::WarRoomOpened,
                            format!("War room #{name} opened"),
                        );
                        return Ok(JobOutcome::none()
                            .with(Change::WarRoom(WarRoom { id, name }))
                            .with(Change::Timeline {
                                event,
                                source_key: Some(format!("war_room_opened:{}", incident.number)),
                            }));
                    }
                    Err(SlackCallError::Api(code)) if code == "name_taken" => {
                        tracing::info!(name = %name, "war-room name taken, trying the next suffix");
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(JobError::fatal(format!(
                "{NAME_ATTEMPTS} war-room names starting {} are taken",
                incident.channel_name
            )))
        }
        Effect::InviteToWarRoom { users } => {
            let room = war_room(incident)?;
            match slack.invite(&room.id, users).await {
                Ok(()) => Ok(JobOutcome::none()),
                Err(e) if e.is_retryable() || users.len() < 2 => Err(e.into()),
                Err(_) => {
                    // One bad user fails the whole call: invite one by one, note who failed.
                    let mut outcome = JobOutcome::none();
                    for user in users {
                        match slack.invite(&room.id, std::slice::from_ref(user)).await {
                            Ok(()) => {}
                            Err(e) if e.is_retryable() => return Err(e.into()),
                            Err(e) => {
                                outcome = outcome.with(Change::Timeline {
                                    event: TimelineEvent::new(
                                        now,
                                        None,
                                        TimelineKind::Failure,
                                        format!("Could not invite {}: {e}", render::user(user)),
                                    ),
                                    source_key: None,
                                });
                            }
                        }
                    }
                    Ok(outcome)
                }
            }
        }
        Effect::SetWarRoomTopic => {
            let room = war_room(incident)?;
            slack.set_topic(&room.id, &render::topic(incident)).await?;
            Ok(JobOutcome::none())
        }
        Effect::PostKickoff => {
            let room = war_room(incident)?;
            if incident.kickoff_ref.is_some() {
                return Ok(JobOutcome::none());
            }
            let posted = slack.post(&room.id, render::kickoff(incident)).await?;
            Ok(JobOutcome::none().with(Change::KickoffRef(posted.ts)))
        }
        Effect::AnnounceDeclared => match &ctx.config.slack.announce_channel {
            Some(channel) => {
                slack.post(channel, render::announcement(incident)).await?;
                Ok(JobOutcome::none())
            }
            None => Ok(JobOutcome::none()),
        },
        Effect::ReplyToRequester { reply_to } => {
            slack
                .respond(reply_to, render::opened_reply(incident))
                .await?;
            Ok(JobOutcome::none())
        }
        Effect::EscalationStep { step, page, .. } => {
            if incident.acknowledged.is_some() || !incident.status.is_active() {
                return Ok(JobOutcome::none());
            }
            let mut outcome = JobOutcome::none();
            for name in page {
                let Some(contact) = ctx.config.contacts.get(name) else {
                    outcome = outcome.with(Change::Timeline {
                        event: TimelineEvent::new(
                            now,
                            None,
                            TimelineKind::Failure,
                            format!(
                                "Escalation step {} pages `{name}`, who is not configured",
                                step + 1
                            ),
                        ),
                        source_key: Some(format!("page:{}:{step}:{name}", incident.number)),
                    });
                    continue;
                };
                let Some(user) = &contact.slack_user else {
                    continue;
                };
                let dm = slack.open_dm(user).await?;
                slack.post(&dm, render::page_dm(incident, *step)).await?;
                outcome = outcome.with(Change::Timeline {
                    event: TimelineEvent::new(
                        now,
                        None,
                        TimelineKind::Paged,
                        format!(
                            "Paged {name} ({}) by Slack DM — escalation step {}",
                            render::user(user),
                            step + 1
                        ),
                    ),
                    source_key: Some(format!("page:{}:{step}:{name}:slack", incident.number)),
                });
            }
            Ok(outcome)
        }
    }
}
