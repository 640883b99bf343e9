//! The platform-neutral message model: what warroom says, never how. Each chat platform renders
//! a [`Message`] its own way (Block Kit on Slack), with the incident it is about.

use chrono::{DateTime, Duration, Utc};

use crate::core::UserId;

/// A message about one incident.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// The war room's kickoff: summary, roles, the checklist with its buttons, Acknowledge.
    Kickoff,
    /// The announcement that the incident was declared (announce channel).
    Declared,
    /// The answer to the person who declared, with the war-room link.
    Opened,
    /// A status update posted in the war room.
    StatusUpdate { text: String, by: UserId },
    /// A status update repeated in the announce channel.
    StatusAnnouncement { text: String, by: UserId },
    /// A nudge: no status update for `quiet`.
    StatusNudge { quiet: Duration },
    /// The response target is near (`breached` false) or missed.
    TargetWarning { breached: bool },
    /// An essential delivery (`kind`) has been failing since `since`.
    DeliveryStuck {
        kind: String,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        error: String,
    },
    /// A page of escalation step `step` (0-based), sent to a person by direct message.
    Page { step: usize },
    /// A person paged directly, with why (the commander, to decide on a rollback).
    DirectPage { reason: String },
    /// The end of a monitoring window: how the fix held.
    MonitoringSummary {
        version: String,
        window: std::time::Duration,
        failures: usize,
    },
    /// A communication that was not sent, for a human to paste: `label` says which, `reason`
    /// why it was not sent.
    Draft {
        label: String,
        reason: String,
        title: String,
        body: String,
    },
    /// A rendered document (the internal announcement), in the platform's own markup.
    Document(String),
    /// The review is due and the incident not closed.
    ReviewReminder,
    /// warroom's own words, plain text (hotfix tracking, paging alarms).
    Text(String),
}

/// A file shared in the war room: the post-incident review.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub filename: String,
    /// The file's title, by which a retry finds it shared already.
    pub title: String,
    /// Markdown.
    pub body: String,
    /// The comment shared with it.
    pub comment: String,
}
