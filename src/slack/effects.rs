//! Slack behind the chat-platform port ([`SlackChat`]): the war room is a channel, messages
//! are Block Kit rendered from the neutral [`Message`], and every post a job makes carries
//! message metadata so that a retry finds it instead of posting twice. Also the chained
//! replies of `/incident timeline` (a Slack `response_url` takes 5 posts).

use crate::chat::{ChatPlatform, Destination, Document, FetchedMessage, Message, PostKey};
use crate::context::AppContext;
use crate::core::{Incident, UserId, WarRoom};

use super::channel_name::ChannelName;
use crate::jobs::{JobError, JobOutcome, JobRun};
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

/// Slack as a chat platform: its Web API and the shared context (for the announce channel and
/// the incident page's links).
pub struct SlackChat {
    pub ctx: AppContext,
    pub api: SlackApi,
}

impl SlackChat {
    /// Where a text cut to fit Slack's limits can be read whole.
    fn page(&self, incident: &Incident) -> Option<String> {
        crate::resolution::links(&self.ctx, incident).incident_page
    }

    /// `message` in Block Kit.
    fn render(&self, incident: &Incident, message: &Message) -> SlackMessageContent {
        let page = self.page(incident);
        let page = page.as_deref();
        match message {
            Message::Kickoff => render::kickoff(incident, page),
            Message::Declared => render::announcement(incident, page),
            Message::Opened => render::opened_reply(incident),
            Message::StatusUpdate { text, by } => render::status_update(incident, text, by, page),
            Message::StatusAnnouncement { text, by } => {
                render::status_announcement(incident, text, by, page)
            }
            Message::StatusNudge { quiet } => render::status_nudge(incident, *quiet),
            Message::TargetWarning { breached } => render::target_warning(incident, *breached),
            Message::DeliveryStuck {
                kind,
                since,
                now,
                error,
            } => render::delivery_stuck(incident, kind, *since, *now, error),
            Message::Page { step } => render::page_dm(incident, *step),
            Message::DirectPage { reason } => render::direct_page(incident, reason),
            Message::MonitoringSummary {
                version,
                window,
                failures,
            } => render::monitoring_summary(incident, version, *window, *failures),
            Message::Draft {
                label,
                reason,
                title,
                body,
            } => render::draft(label, reason, title, body),
            Message::Document(text) => render::document(text, page),
            Message::ReviewReminder => render::review_reminder(incident),
            Message::Text(text) => render::war_room_text(text),
        }
    }
}

#[async_trait::async_trait]
impl ChatPlatform for SlackChat {
    fn display_name(&self) -> &'static str {
        "Slack"
    }

    fn announce_channel(&self) -> Option<String> {
        self.ctx.config.slack.announce_channel.clone()
    }

    async fn create_war_room(&self, incident: &Incident) -> Result<WarRoom, JobError> {
        let slack = &self.api;
        for attempt in 0..NAME_ATTEMPTS {
            let name = ChannelName::with_suffix(incident.number, &incident.title, attempt);
            match slack.create_channel(name.as_str()).await {
                Ok((id, name)) => return Ok(WarRoom { id, name }),
                Err(SlackCallError::Api(code)) if code == "name_taken" => {
                    if let Some(id) = own_war_room(slack, incident, &name).await? {
                        // An earlier attempt created it and died before saying so.
                        tracing::info!(name = %name, channel = %id, "adopting the war room an earlier attempt created");
                        return Ok(WarRoom {
                            id,
                            name: name.to_string(),
                        });
                    }
                    tracing::info!(name = %name, "war-room name taken, trying the next suffix");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(JobError::fatal(format!(
            "{NAME_ATTEMPTS} war-room names starting {} are taken",
            ChannelName::for_incident(incident.number, &incident.title)
        )))
    }

    async fn invite(
        &self,
        room: &WarRoom,
        users: &[UserId],
    ) -> Result<Vec<(UserId, String)>, JobError> {
        let slack = &self.api;
        match slack.invite(&room.id, users).await {
            Ok(()) => Ok(Vec::new()),
            Err(e) if e.is_retryable() || users.len() < 2 => Err(e.into()),
            Err(_) => {
                // One bad user fails the whole call: invite one by one, note who failed.
                let mut failed = Vec::new();
                for user in users {
                    match slack.invite(&room.id, std::slice::from_ref(user)).await {
                        Ok(()) => {}
                        Err(e) if e.is_retryable() => return Err(e.into()),
                        Err(e) => failed.push((user.clone(), e.to_string())),
                    }
                }
                Ok(failed)
            }
        }
    }

    async fn set_topic(&self, room: &WarRoom, incident: &Incident) -> Result<(), JobError> {
        self.api
            .set_topic(&room.id, &render::topic(incident))
            .await?;
        Ok(())
    }

    async fn post(
        &self,
        to: Destination<'_>,
        incident: &Incident,
        message: &Message,
        key: PostKey,
    ) -> Result<String, JobError> {
        let content = self.render(incident, message);
        let dm;
        let channel = match to {
            Destination::WarRoom(room) => room.id.as_str(),
            Destination::Announce(channel) => channel,
            Destination::User(user) => {
                dm = self.api.open_dm(user).await?;
                dm.as_str()
            }
        };
        let ts = post(&self.api, key.run, incident, key.index, channel, content).await?;
        Ok(message_ref(channel, &ts))
    }

    async fn post_kickoff(
        &self,
        room: &WarRoom,
        incident: &Incident,
        look_first: bool,
    ) -> Result<String, JobError> {
        let page = self.page(incident);
        post_kickoff(&self.api, &room.id, incident, page.as_deref(), look_first).await
    }

    async fn update_kickoff(
        &self,
        room: &WarRoom,
        kickoff: &str,
        incident: &Incident,
    ) -> Result<(), JobError> {
        let page = self.page(incident);
        self.api
            .update(
                &room.id,
                kickoff,
                kickoff_content(incident, page.as_deref()),
            )
            .await?;
        Ok(())
    }

    async fn reply(
        &self,
        reply_to: &str,
        incident: &Incident,
        message: &Message,
    ) -> Result<(), JobError> {
        reply(&self.api, reply_to, self.render(incident, message)).await?;
        Ok(())
    }

    async fn fetch_message(&self, message: &str) -> Result<FetchedMessage, JobError> {
        let Some((channel, ts)) = parse_message_ref(message) else {
            return Err(JobError::fatal(format!("`{message}` is not channel:ts")));
        };
        let fetched = self.api.message(channel, ts).await?;
        let link = match self.api.permalink(channel, ts).await {
            Ok(link) => Some(link),
            Err(e) if e.is_retryable() => return Err(e.into()),
            Err(_) => None,
        };
        Ok(match fetched {
            Some(m) => FetchedMessage {
                author: m.user,
                text: Some(m.text),
                link,
            },
            None => FetchedMessage {
                author: None,
                text: None,
                link,
            },
        })
    }

    async fn share_document(
        &self,
        room: &WarRoom,
        document: &Document,
        key: PostKey,
    ) -> Result<(), JobError> {
        let slack = &self.api;
        // The copy shared in Slack has `&`, `<` and `>` as entities: Markdown renders them the
        // same, and no Slack control sequence (`<!channel>`) survives in user text.
        let text = render::escape(&document.body);
        let comment = format!(":memo: {}", document.comment);
        // A file upload carries no metadata: a retry finds the document by its title.
        let shared = if key.run.retry {
            earlier(
                slack.find_shared_file(&room.id, &document.title).await,
                &room.id,
            )?
        } else {
            None
        };
        if shared.is_none() {
            slack
                .upload_text_file(
                    &room.id,
                    &document.filename,
                    &document.title,
                    &text,
                    &comment,
                )
                .await?;
        }
        Ok(())
    }
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

/// Runs the chained replies of `/incident timeline`.
pub struct ReplyHandler {
    pub api: SlackApi,
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
        send_replies(&self.api, &job.payload, job.attempts).await
    }
}

/// Runs a reply job; `attempt` counts its runs, this one included. Every run may have posted
/// (a run counts before it starts), so a reply to a `response_url` posts there at most its
/// share of the 5 times, then through its fallback, or gives up.
async fn send_replies(
    slack: &SlackApi,
    payload: &str,
    attempt: i64,
) -> Result<JobOutcome, JobError> {
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
