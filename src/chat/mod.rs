//! The chat-platform port: everything carrying out an incident's effects needs from a chat
//! platform (create the war room, invite, set its topic, post and update messages, direct
//! messages, replies, read a message back, share a document), in platform-neutral terms. Each
//! platform adapter (`slack`, later `teams`) implements [`ChatPlatform`]; the composition root
//! registers them in [`Platforms`], and the effect handlers pick one by `incident.platform`.

pub mod message;

use std::collections::HashMap;
use std::sync::Arc;

pub use message::{Document, Message};

use crate::core::{Incident, Platform, UserId, WarRoom};
use crate::jobs::{JobError, JobRun};

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination<'a> {
    /// The incident's war room.
    WarRoom(&'a WarRoom),
    /// The announce channel (see [`ChatPlatform::announce_channel`]).
    Announce(&'a str),
    /// A person, by direct message.
    User(&'a str),
}

/// Which post of which job a message is: the `index`th post of attempt `run`. A retry (an
/// earlier attempt may have posted) looks for the post before posting it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostKey {
    pub run: JobRun,
    pub index: u32,
}

impl PostKey {
    pub fn new(run: JobRun, index: u32) -> Self {
        PostKey { run, index }
    }
}

/// A message read back from the platform (a pinned message for the timeline).
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedMessage {
    /// Who wrote it, when a person did.
    pub author: Option<UserId>,
    /// `None` when the message can no longer be read (deleted, or out of the bot's reach).
    pub text: Option<String>,
    /// A link that opens it, when the platform gives one.
    pub link: Option<String>,
}

/// What the effects of an incident need from the chat platform it lives on.
#[async_trait::async_trait]
pub trait ChatPlatform: Send + Sync + 'static {
    /// The platform's name for people ("Slack").
    fn display_name(&self) -> &'static str;

    /// Where announcements go, when configured for this platform.
    fn announce_channel(&self) -> Option<String>;

    /// Creates the incident's war room (the platform picks its name), or adopts the one an
    /// earlier attempt created.
    async fn create_war_room(&self, incident: &Incident) -> Result<WarRoom, JobError>;

    /// Brings `users` into the war room; returns those who could not be brought in, with why.
    async fn invite(
        &self,
        room: &WarRoom,
        users: &[UserId],
    ) -> Result<Vec<(UserId, String)>, JobError>;

    /// Puts severity, status and title where the war room shows them.
    async fn set_topic(&self, room: &WarRoom, incident: &Incident) -> Result<(), JobError>;

    /// Posts `message` (at most once per [`PostKey`]); returns the platform's message reference.
    async fn post(
        &self,
        to: Destination<'_>,
        incident: &Incident,
        message: &Message,
        key: PostKey,
    ) -> Result<String, JobError>;

    /// Posts the kickoff in the war room; when `look_first`, a kickoff an earlier attempt
    /// posted is found, brought up to date and adopted instead. Returns its reference.
    async fn post_kickoff(
        &self,
        room: &WarRoom,
        incident: &Incident,
        look_first: bool,
    ) -> Result<String, JobError>;

    /// Re-renders the kickoff `kickoff` in place.
    async fn update_kickoff(
        &self,
        room: &WarRoom,
        kickoff: &str,
        incident: &Incident,
    ) -> Result<(), JobError>;

    /// Answers a request at the reply address the adapter gave (`Effect::ReplyToRequester`).
    async fn reply(
        &self,
        reply_to: &str,
        incident: &Incident,
        message: &Message,
    ) -> Result<(), JobError>;

    /// Reads a message back by the reference the adapter wrote.
    async fn fetch_message(&self, message: &str) -> Result<FetchedMessage, JobError>;

    /// Shares `document` in the war room (at most once per [`PostKey`]).
    async fn share_document(
        &self,
        room: &WarRoom,
        document: &Document,
        key: PostKey,
    ) -> Result<(), JobError>;
}

/// The chat platforms this server talks to, by [`Platform`].
#[derive(Clone, Default)]
pub struct Platforms {
    by_platform: HashMap<Platform, Arc<dyn ChatPlatform>>,
}

impl Platforms {
    pub fn register(&mut self, platform: Platform, chat: Arc<dyn ChatPlatform>) {
        self.by_platform.insert(platform, chat);
    }

    /// The platform `incident` lives on.
    pub fn of(&self, incident: &Incident) -> Result<&dyn ChatPlatform, JobError> {
        self.get(incident.platform)
    }

    /// `platform`, when this server talks to it.
    pub fn get(&self, platform: Platform) -> Result<&dyn ChatPlatform, JobError> {
        self.by_platform
            .get(&platform)
            .map(|p| p.as_ref())
            .ok_or_else(|| match platform {
                Platform::Slack => {
                    JobError::fatal("Slack is not configured (SLACK_BOT_TOKEN is not set)")
                }
                Platform::Teams => JobError::fatal("Microsoft Teams is not supported yet"),
            })
    }
}
