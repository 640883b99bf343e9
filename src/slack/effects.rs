//! Carrying out core effects on Slack. Each function is one job: it reads nothing but the
//! incident it is given, makes its Slack calls, and returns the state changes to commit.

use crate::context::AppContext;
use crate::core::{pin_key, ChannelName, Effect, Incident, TimelineEvent, TimelineKind, WarRoom};
use crate::jobs::{JobChange, JobError, JobOutcome, JobRun};
use crate::resolution::{self, Publication};
use crate::templates::Template;
use slack_morphism::prelude::{SlackMessageContent, SlackMessageMetadata};

use super::api::{SlackApi, SlackCallError};
use super::render;

/// How many suffixed names to try when the war-room name is taken.
const NAME_ATTEMPTS: u32 = 20;
/// The message-metadata `event_type` of the kickoff; its `event_payload` names the incident
/// (`{"incident": "INC-7"}`), so a retried post finds the kickoff an earlier attempt posted.
pub const KICKOFF_EVENT: &str = "warroom_kickoff";
/// The message-metadata `event_type` of every other message a job posts; its `event_payload`
/// names the incident and the post (`{"incident": "INC-7", "post": "42.1"}`: the job's id and
/// the index of the post within the job, the same on every attempt of that job), so a retried
/// post finds the message an earlier attempt posted.
pub const POST_EVENT: &str = "warroom_post";

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

/// Performs one effect for an incident that lives on Slack, as attempt `run` of its job. Every
/// message it posts is marked with the job, and a retry finds what an earlier attempt posted
/// instead of posting it again ([`post_marked`]).
pub async fn perform(
    ctx: &AppContext,
    incident: &Incident,
    effect: &Effect,
    run: JobRun,
) -> Result<JobOutcome, JobError> {
    let slack = api(ctx)?;
    let now = ctx.clock.now();
    // Where a text cut to fit Slack's limits can be read whole.
    let page = resolution::links(ctx, incident).incident_page;
    let page = page.as_deref();
    match effect {
        Effect::CreateWarRoom => {
            if incident.war_room.is_some() {
                return Ok(JobOutcome::none());
            }
            for attempt in 0..NAME_ATTEMPTS {
                let name = ChannelName::with_suffix(incident.number, &incident.title, attempt);
                match slack.create_channel(name.as_str()).await {
                    Ok((id, name)) => return Ok(war_room_opened(incident, now, id, name)),
                    Err(SlackCallError::Api(code)) if code == "name_taken" => {
                        if let Some(id) = own_war_room(slack, incident, &name).await? {
                            // An earlier attempt created it and died before saying so.
                            tracing::info!(name = %name, channel = %id, "adopting the war room an earlier attempt created");
                            return Ok(war_room_opened(incident, now, id, name.to_string()));
                        }
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
                                outcome = outcome.with(JobChange::Timeline {
                                    event: TimelineEvent::new(
                                        now,
                                        None,
                                        TimelineKind::Failure,
                                        format!(
                                            "Could not invite {}: {e}",
                                            crate::core::mention(user)
                                        ),
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
            let ts = post_kickoff(slack, &room.id, incident, page, run.retry).await?;
            Ok(JobOutcome::none().with(JobChange::KickoffRef(ts)))
        }
        Effect::AnnounceDeclared => match &ctx.config.slack.announce_channel {
            Some(channel) => {
                post(
                    slack,
                    run,
                    incident,
                    0,
                    channel,
                    render::announcement(incident, page),
                )
                .await?;
                Ok(JobOutcome::none())
            }
            None => Ok(JobOutcome::none()),
        },
        Effect::ReplyToRequester { reply_to } => {
            reply(slack, reply_to, render::opened_reply(incident)).await?;
            Ok(JobOutcome::none())
        }
        Effect::UpdateKickoff => {
            let room = war_room(incident)?;
            match &incident.kickoff_ref {
                Some(ts) => {
                    slack
                        .update(&room.id, ts, kickoff_content(incident, page))
                        .await?;
                    Ok(JobOutcome::none())
                }
                // No kickoff is known: it gave up, or a post that reached Slack was never
                // recorded (its job was superseded by this one, say). Always look first.
                None => {
                    let ts = post_kickoff(slack, &room.id, incident, page, true).await?;
                    Ok(JobOutcome::none().with(JobChange::KickoffRef(ts)))
                }
            }
        }
        Effect::PostStatusUpdate { text, by } => {
            let room = war_room(incident)?;
            let content = render::status_update(incident, text, by, page);
            post(slack, run, incident, 0, &room.id, content).await?;
            Ok(JobOutcome::none())
        }
        Effect::AnnounceStatusUpdate { text, by } => match &ctx.config.slack.announce_channel {
            Some(channel) => {
                let content = render::status_announcement(incident, text, by, page);
                post(slack, run, incident, 0, channel, content).await?;
                Ok(JobOutcome::none())
            }
            None => Ok(JobOutcome::none()),
        },
        Effect::StatusReminder { .. } => {
            if !incident.status.is_active() || !incident.severity.is_major() {
                return Ok(JobOutcome::none());
            }
            let every = ctx.config.reminders.status_every;
            let every_c = chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX);
            let last = {
                let mut conn = ctx.store.acquire().await?;
                crate::store::last_timeline_at(&mut conn, incident.number, TimelineKind::Status)
                    .await?
            };
            let since = last.unwrap_or(incident.declared_at);
            if now - since < every_c {
                // Someone posted recently: look again one interval after that update.
                return Ok(JobOutcome::none().with(JobChange::Enqueue(vec![
                    Effect::StatusReminder {
                        due_at: since + every_c,
                    },
                ])));
            }
            let room = war_room(incident)?;
            let content = render::status_nudge(incident, now - since);
            post(slack, run, incident, 0, &room.id, content).await?;
            Ok(
                JobOutcome::none().with(JobChange::Enqueue(vec![Effect::StatusReminder {
                    due_at: now + every_c,
                }])),
            )
        }
        Effect::TargetWarning {
            target_at,
            breached,
            ..
        } => {
            // A severity change moved the target: this warning is for the old one.
            if !incident.status.is_active() || incident.target_at != *target_at {
                return Ok(JobOutcome::none());
            }
            let room = war_room(incident)?;
            let content = render::target_warning(incident, *breached);
            post(slack, run, incident, 0, &room.id, content).await?;
            let text = if *breached {
                format!(
                    "Response target missed ({} {})",
                    incident.severity,
                    render::clock(*target_at)
                )
            } else {
                format!(
                    "75% of the response target has passed (target {})",
                    render::clock(*target_at)
                )
            };
            Ok(JobOutcome::none().with(JobChange::Timeline {
                event: TimelineEvent::new(now, None, TimelineKind::Failure, text),
                source_key: Some(format!(
                    "target:{}:{}:{breached}",
                    incident.number,
                    target_at.timestamp_millis()
                )),
            }))
        }
        Effect::EscalationStep { .. }
        | Effect::Page { .. }
        | Effect::AcknowledgePagers
        | Effect::ResolvePagers => Err(JobError::fatal(format!(
            "`{}` is a paging effect",
            effect.name()
        ))),
        Effect::WatchHealth => Err(JobError::fatal("`watch_health` is run by the job runner")),
        Effect::DeliveryStuck {
            kind, since, error, ..
        } => {
            // Said wherever it can still be heard: the war room may be what failed.
            let content = render::delivery_stuck(incident, kind, *since, now, error);
            if let Some(channel) = &ctx.config.slack.announce_channel {
                post(slack, run, incident, 0, channel, content.clone()).await?;
            }
            post_dm(slack, run, incident, 1, &incident.declared_by, content).await?;
            Ok(JobOutcome::none())
        }
        Effect::PostToWarRoom { text } => {
            let room = war_room(incident)?;
            post(
                slack,
                run,
                incident,
                0,
                &room.id,
                render::war_room_text(text),
            )
            .await?;
            Ok(JobOutcome::none())
        }
        Effect::PostToAnnounceChannel { text } => {
            if let Some(channel) = &ctx.config.slack.announce_channel {
                post(
                    slack,
                    run,
                    incident,
                    0,
                    channel,
                    render::war_room_text(text),
                )
                .await?;
            }
            Ok(JobOutcome::none())
        }
        Effect::PageUser { user, reason } => {
            let content = render::direct_page(incident, reason);
            post_dm(slack, run, incident, 0, user, content).await?;
            Ok(JobOutcome::none().with(JobChange::Timeline {
                event: TimelineEvent::new(
                    now,
                    None,
                    TimelineKind::Paged,
                    format!(
                        "Paged {} by Slack DM to decide on a rollback",
                        crate::core::mention(user)
                    ),
                ),
                source_key: None,
            }))
        }
        Effect::MonitoringWindowEnd {
            started_at,
            version,
            due_at,
        } => {
            if incident.status != crate::core::Status::Monitoring {
                return Ok(JobOutcome::none());
            }
            let room = war_room(incident)?;
            let failures =
                crate::health::failures_between(ctx, incident.number, *started_at, *due_at).await?;
            let window = (*due_at - *started_at).to_std().unwrap_or_default();
            let content = render::monitoring_summary(incident, version, window, failures);
            post(slack, run, incident, 0, &room.id, content).await?;
            // The version is a health endpoint's text: it names nobody.
            let version = crate::core::inert(version);
            let text = if failures == 0 {
                format!(
                    "Fix held: healthy for {} since {version}, 0 failed checks",
                    crate::core::human_duration(window)
                )
            } else {
                format!(
                    "Fix under watch: {failures} failed check(s) in the {} after {version}",
                    crate::core::human_duration(window)
                )
            };
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
            let text = resolution::render(ctx, incident, Template::InternalAnnouncement).await?;
            let (channel, place) = match (&ctx.config.slack.announce_channel, &incident.war_room) {
                (Some(c), _) => (c.clone(), format!("the announce channel ({c})")),
                (None, Some(room)) => (room.id.clone(), format!("#{}", room.name)),
                (None, None) => return Err(JobError::retry("no war room yet")),
            };
            post(
                slack,
                run,
                incident,
                0,
                &channel,
                render::document(&text, page),
            )
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
                slack,
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
                slack,
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
            let markdown = resolution::render(ctx, incident, Template::PostIncidentReview).await?;
            // The copy shared in Slack has `&`, `<` and `>` as entities: Markdown renders them
            // the same, and no Slack control sequence (`<!channel>`) survives in user text.
            let text = render::escape(&markdown);
            let filename = format!("{}-post-incident-review.md", incident.key().to_lowercase());
            let comment = format!(
                ":memo: The post-incident review draft for {} is attached. Fill in what went well, \
                 what went wrong and the action items in the review meeting, then `/incident close`.{}",
                incident.key(),
                resolution::links(ctx, incident)
                    .review
                    .map(|l| format!(" It is also at {l}"))
                    .unwrap_or_default()
            );
            // A file upload carries no metadata: a retry finds the review by its title.
            let title = format!("{} post-incident review", incident.key());
            let shared = if run.retry {
                earlier(slack.find_shared_file(&room.id, &title).await, &room.id)?
            } else {
                None
            };
            if shared.is_none() {
                slack
                    .upload_text_file(&room.id, &filename, &title, &text, &comment)
                    .await?;
            }
            Ok(published(
                incident,
                now,
                "review",
                format!("Post-incident review posted in #{} ({filename})", room.name),
            ))
        }
        Effect::ReviewReminder { .. } => {
            if incident.status != crate::core::Status::Resolved {
                return Ok(JobOutcome::none());
            }
            let room = war_room(incident)?;
            post(
                slack,
                run,
                incident,
                0,
                &room.id,
                render::review_reminder(incident),
            )
            .await?;
            let every = chrono::Duration::from_std(ctx.config.review.remind_after)
                .unwrap_or(chrono::Duration::MAX);
            Ok(
                JobOutcome::none().with(JobChange::Enqueue(vec![Effect::ReviewReminder {
                    due_at: now + every,
                }])),
            )
        }
        Effect::FetchPinnedMessage { message } => {
            let Some((channel, ts)) = parse_message_ref(message) else {
                return Err(JobError::fatal(format!("`{message}` is not channel:ts")));
            };
            let fetched = slack.message(channel, ts).await?;
            let link = match slack.permalink(channel, ts).await {
                Ok(link) => Some(link),
                Err(e) if e.is_retryable() => return Err(e.into()),
                Err(_) => None,
            };
            let text = match fetched {
                Some(m) => format!(
                    "Pinned {}: “{}”{}",
                    m.user
                        .map(|u| crate::core::mention(&u))
                        .unwrap_or_else(|| "a message".into()),
                    crate::core::inert(m.text.trim()),
                    link.map(|l| format!(" — {l}")).unwrap_or_default()
                ),
                None => format!(
                    "Pinned a message that could no longer be read{}",
                    link.map(|l| format!(" — {l}")).unwrap_or_default()
                ),
            };
            Ok(JobOutcome::none().with(JobChange::TimelineText {
                source_key: pin_key(incident.number, message),
                text,
            }))
        }
    }
}

/// The job outcome of a war room opened (created, or adopted after a lost answer).
fn war_room_opened(
    incident: &Incident,
    now: chrono::DateTime<chrono::Utc>,
    id: String,
    name: String,
) -> JobOutcome {
    let event = TimelineEvent::new(
        now,
        None,
        TimelineKind::WarRoomOpened,
        format!("War room #{name} opened"),
    );
    JobOutcome::none()
        .with(JobChange::WarRoom(WarRoom { id, name }))
        .with(JobChange::Timeline {
            event,
            source_key: Some(format!("war_room_opened:{}", incident.number)),
        })
}

/// The id of the channel named `name` when it is this incident's war room that an earlier
/// attempt created (its `conversations.create` succeeded, but the answer or the commit was
/// lost): created by the bot, named for this incident (`inc-<n>` or `inc-<n>-…`), not
/// archived. Anything else (a person's channel, another app's) is left alone.
///
/// An archived channel is skipped, never unarchived: the room an earlier attempt created a
/// moment ago is not archived unless someone closed it on purpose, and an archived bot channel
/// with this name is most likely an earlier incident's room (a database started afresh numbers
/// incidents from 1 again). A fresh room with the next suffix is the safe choice.
///
/// When the lookup itself is refused (a missing scope, say), the name counts as taken by
/// someone else, as before adoption existed; a lookup that may succeed later is retried.
async fn own_war_room(
    slack: &SlackApi,
    incident: &Incident,
    name: &ChannelName,
) -> Result<Option<String>, JobError> {
    let found = match slack.find_channel_by_name(name.as_str()).await {
        Ok(found) => found,
        Err(e) if e.is_retryable() => return Err(e.into()),
        Err(e) => {
            tracing::warn!(name = %name, error = %e, "could not look for the channel holding the war-room name");
            return Ok(None);
        }
    };
    let Some(channel) = found else {
        return Ok(None);
    };
    let prefix = format!("inc-{}", incident.number);
    let for_incident = channel.name == prefix || channel.name.starts_with(&format!("{prefix}-"));
    if !for_incident || channel.is_archived {
        return Ok(None);
    }
    let bot = slack.identity().await?;
    Ok((channel.creator.as_deref() == Some(bot.user_id.as_str())).then_some(channel.id))
}

/// How a message is marked so that a retry finds it: the `event_type` and `event_payload` of
/// its message metadata. A message is found again by every field of its payload.
struct Mark {
    event_type: &'static str,
    payload: Vec<(&'static str, String)>,
}

impl Mark {
    /// The kickoff: one per incident, found by any job (a retried post, or an update that
    /// knows no kickoff).
    fn kickoff(incident: &Incident) -> Mark {
        Mark {
            event_type: KICKOFF_EVENT,
            payload: vec![("incident", incident.key())],
        }
    }

    /// The `index`th message job `run` posts for `incident`. The declaration time tells this
    /// incident from an earlier one of the same number (a database started afresh).
    fn post(incident: &Incident, run: JobRun, index: u32) -> Mark {
        Mark {
            event_type: POST_EVENT,
            payload: vec![
                ("incident", incident.key()),
                ("post", format!("{}.{index}", run.job)),
                (
                    "declared_at",
                    incident.declared_at.timestamp_millis().to_string(),
                ),
            ],
        }
    }

    fn apply(&self, content: SlackMessageContent) -> SlackMessageContent {
        let payload = self
            .payload
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        content.with_metadata(
            SlackMessageMetadata::new(self.event_type.to_string()).with_event_payload(payload),
        )
    }
}

/// What [`post_marked`] did.
enum Posted {
    /// Posted now: its `ts`.
    Now(String),
    /// An earlier attempt had posted it: its `ts`.
    Found(String),
}

/// Every `chat.postMessage` a job makes goes through here: `content` is posted in `channel`
/// carrying `mark` as its metadata. When `look_first` (a retry), an earlier attempt may have
/// posted it and lost the answer or died before its commit: the channel's recent history is
/// read first, and a message of the bot's with this mark is found instead of posting a second
/// one. A refused lookup (a missing scope, a channel the bot is not in) falls back to posting;
/// one that may succeed later is retried.
async fn post_marked(
    slack: &SlackApi,
    channel: &str,
    content: SlackMessageContent,
    mark: &Mark,
    look_first: bool,
) -> Result<Posted, JobError> {
    if look_first {
        let payload: Vec<(&str, &str)> =
            mark.payload.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let lookup = slack.find_posted(channel, mark.event_type, &payload).await;
        if let Some(ts) = earlier(lookup, channel)? {
            return Ok(Posted::Found(ts));
        }
    }
    Ok(Posted::Now(
        slack.post(channel, mark.apply(content)).await?.ts,
    ))
}

/// What a look for a message an earlier attempt posted found: its `ts`, or `None` when there
/// is none or the look was refused (a missing scope, a channel the bot is not in: then posting
/// again is all that is left); a look that may succeed later is retried.
fn earlier(
    lookup: Result<Option<String>, SlackCallError>,
    channel: &str,
) -> Result<Option<String>, JobError> {
    match lookup {
        Ok(Some(ts)) => {
            tracing::info!(channel, %ts, "found the message an earlier attempt posted");
            Ok(Some(ts))
        }
        Ok(None) => Ok(None),
        Err(e) if e.is_retryable() => Err(e.into()),
        Err(e) => {
            tracing::warn!(channel, error = %e, "could not look for a message an earlier attempt may have posted; posting");
            Ok(None)
        }
    }
}

/// Posts the `index`th message of job `run` about `incident` in `channel` (at most once
/// per job and index, see [`post_marked`]). Returns its `ts`.
async fn post(
    slack: &SlackApi,
    run: JobRun,
    incident: &Incident,
    index: u32,
    channel: &str,
    content: SlackMessageContent,
) -> Result<String, JobError> {
    let mark = Mark::post(incident, run, index);
    match post_marked(slack, channel, content, &mark, run.retry).await? {
        Posted::Now(ts) | Posted::Found(ts) => Ok(ts),
    }
}

/// Like [`post`], in `user`'s DM (the channel `conversations.open` gives).
async fn post_dm(
    slack: &SlackApi,
    run: JobRun,
    incident: &Incident,
    index: u32,
    user: &str,
    content: SlackMessageContent,
) -> Result<String, JobError> {
    let dm = slack.open_dm(user).await?;
    post(slack, run, incident, index, &dm, content).await
}

/// The kickoff as posted or updated: the rendered message with its metadata.
fn kickoff_content(incident: &Incident, page: Option<&str>) -> SlackMessageContent {
    Mark::kickoff(incident).apply(render::kickoff(incident, page))
}

/// Posts the kickoff in `room` and returns its `ts`. When `look_first` (a retry, or an update
/// that knows no kickoff), a kickoff an earlier attempt posted is found by its metadata,
/// brought up to date and adopted instead of posting a second one.
async fn post_kickoff(
    slack: &SlackApi,
    room: &str,
    incident: &Incident,
    page: Option<&str>,
    look_first: bool,
) -> Result<String, JobError> {
    let mark = Mark::kickoff(incident);
    match post_marked(
        slack,
        room,
        render::kickoff(incident, page),
        &mark,
        look_first,
    )
    .await?
    {
        Posted::Now(ts) => Ok(ts),
        Posted::Found(ts) => {
            tracing::info!(incident = %incident.key(), %ts, "adopting the kickoff an earlier attempt posted");
            slack
                .update(room, &ts, kickoff_content(incident, page))
                .await?;
            Ok(ts)
        }
    }
}

/// A Slack message reference as the adapter writes it: `<channel>:<ts>`.
pub fn message_ref(channel: &str, ts: &str) -> String {
    format!("{channel}:{ts}")
}

fn parse_message_ref(message: &str) -> Option<(&str, &str)> {
    message
        .split_once(':')
        .filter(|(c, t)| !c.is_empty() && !t.is_empty())
}

/// The reply address for an ephemeral message to `user` in `channel` (when there is no
/// `response_url`, e.g. after a modal).
pub fn ephemeral_target(channel: &str, user: &str) -> String {
    format!("ephemeral:{channel}:{user}")
}

/// Sends a reply to a reply address: a `response_url`, or `ephemeral:<channel>:<user>`.
async fn reply(
    slack: &SlackApi,
    reply_to: &str,
    content: slack_morphism::prelude::SlackMessageContent,
) -> Result<(), SlackCallError> {
    match reply_to
        .strip_prefix("ephemeral:")
        .and_then(|r| r.split_once(':'))
    {
        Some((channel, user)) => slack.post_ephemeral(channel, user, content).await,
        None => slack.respond(reply_to, content).await,
    }
}

/// The job kind of plain replies: one job per reply, each waiting for the one before it, so
/// replies arrive in order and a retry resumes after the replies already delivered.
pub const REPLY_JOB: &str = "slack_reply";

#[derive(serde::Serialize, serde::Deserialize)]
struct ReplyJob {
    reply_to: String,
    /// One text (jobs enqueued before replies were chained may hold several).
    texts: Vec<String>,
    /// Where a retry goes once this reply has used its share of the `response_url`'s posts:
    /// `ephemeral:<channel>:<user>` for the same person.
    #[serde(default)]
    fallback: Option<String>,
    /// How many replies of the chain go to `reply_to` (they share its 5 posts).
    #[serde(default)]
    parts: usize,
}

/// Whether a reply address is a `response_url` (which takes at most 5 posts).
fn is_response_url(reply_to: &str) -> bool {
    !reply_to.starts_with("ephemeral:")
}

/// Enqueues replies (already mrkdwn) to a reply address, sent in order.
pub async fn enqueue_replies(
    ctx: &AppContext,
    reply_to: &str,
    texts: Vec<String>,
) -> Result<(), crate::store::StoreError> {
    enqueue_replies_or(ctx, reply_to, None, texts).await
}

/// Enqueues replies (already mrkdwn) to a reply address, sent in order: one job per reply,
/// chained, all enqueued together. A `response_url` takes 5 posts in all, so its replies
/// share them: a reply whose earlier attempt may have been delivered is retried through
/// `fallback` (an [`ephemeral_target`]) when its share is used, and replies that would need
/// more than 5 posts all go through `fallback` (without one, only the first 5 are sent).
pub async fn enqueue_replies_or(
    ctx: &AppContext,
    reply_to: &str,
    fallback: Option<&str>,
    mut texts: Vec<String>,
) -> Result<(), crate::store::StoreError> {
    let mut reply_to = reply_to;
    if is_response_url(reply_to) && texts.len() > super::limits::RESPONSE_URL_POSTS {
        match fallback {
            Some(f) => reply_to = f,
            None => {
                tracing::warn!(
                    replies = texts.len(),
                    "a response_url takes 5 posts: the other replies are dropped"
                );
                texts.truncate(super::limits::RESPONSE_URL_POSTS);
            }
        }
    }
    let now = ctx.clock.now();
    let parts = texts.len();
    let mut tx = ctx.store.begin().await?;
    let mut previous = None;
    for text in texts {
        let payload = serde_json::to_string(&ReplyJob {
            reply_to: reply_to.to_string(),
            texts: vec![text],
            fallback: fallback.filter(|f| *f != reply_to).map(str::to_string),
            parts,
        })
        .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
        previous = crate::store::enqueue(
            &mut tx,
            &crate::store::NewJob {
                kind: REPLY_JOB.into(),
                incident: None,
                payload,
                run_at: now,
                blocked_by: previous,
                dedup_key: None,
                coalesce_key: None,
            },
            now,
        )
        .await?;
    }
    tx.commit().await?;
    ctx.wake.notify_waiters();
    Ok(())
}

/// Runs a reply job; `attempt` counts its runs, this one included. Every run may have posted
/// (a run counts before it starts), so a reply to a `response_url` posts there at most its
/// share of the 5 times, then through its fallback, or gives up.
/// Runs the chained replies of `/incident timeline`.
pub struct ReplyHandler {
    pub ctx: AppContext,
}

#[async_trait::async_trait]
impl crate::jobs::JobHandler for ReplyHandler {
    fn kinds(&self) -> Vec<&'static str> {
        vec![REPLY_JOB]
    }

    async fn run(
        &self,
        job: &crate::store::ClaimedJob,
        _: chrono::DateTime<chrono::Utc>,
    ) -> Result<JobOutcome, JobError> {
        send_replies(&self.ctx, &job.payload, job.attempts).await
    }
}

pub async fn send_replies(
    ctx: &AppContext,
    payload: &str,
    attempt: i64,
) -> Result<JobOutcome, JobError> {
    let slack = api(ctx)?;
    let job: ReplyJob = serde_json::from_str(payload)
        .map_err(|e| JobError::fatal(format!("unreadable reply job: {e}")))?;
    let parts = job.parts.max(job.texts.len()).max(1);
    let share = super::limits::RESPONSE_URL_POSTS / parts;
    let target = if !is_response_url(&job.reply_to) || attempt <= share as i64 {
        &job.reply_to
    } else if let Some(fallback) = &job.fallback {
        fallback
    } else {
        return Err(JobError::fatal(
            "the response_url has taken its share of Slack's 5 posts",
        ));
    };
    for text in job.texts {
        let content = slack_morphism::prelude::SlackMessageContent::new().with_text(text);
        reply(slack, target, content).await?;
    }
    Ok(JobOutcome::none())
}

/// Pages `user` by Slack DM, as attempt `run` of the page's job: opens the DM and posts the
/// page with an Acknowledge button (once per job, see [`post_marked`]).
pub async fn send_page_dm(
    ctx: &AppContext,
    incident: &Incident,
    user: &str,
    step: usize,
    run: JobRun,
) -> Result<(), JobError> {
    let slack = api(ctx)?;
    post_dm(
        slack,
        run,
        incident,
        0,
        user,
        render::page_dm(incident, step),
    )
    .await?;
    Ok(())
}

/// A timeline entry saying what was published where (once per incident and kind).
fn published(
    incident: &Incident,
    now: chrono::DateTime<chrono::Utc>,
    what: &str,
    text: String,
) -> JobOutcome {
    JobOutcome::none().with(JobChange::Timeline {
        event: TimelineEvent::new(now, None, TimelineKind::Published, text),
        source_key: Some(format!("published:{}:{what}", incident.number)),
    })
}

/// Records a publication, or posts the draft in the war room for a human to paste.
async fn publish_or_draft(
    slack: &SlackApi,
    run: JobRun,
    incident: &Incident,
    now: chrono::DateTime<chrono::Utc>,
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
            let content = render::draft(label, &reason, &title, &body);
            post(slack, run, incident, 0, &room.id, content).await?;
            Ok(published(
                incident,
                now,
                what,
                format!("{label} drafted in #{} ({reason})", room.name),
            ))
        }
    }
}
