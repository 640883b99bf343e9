//! The timeline of an incident, stored as data rather than as a platform's text.
//!
//! An event is a kind, an actor and a [`TimelineDetail`]: the sentence in parts that keep
//! apart warroom's own words, the people it names (by user id, never `@U…` or `<@U…>`), and
//! what a person or an outside system typed. Nothing here is markup: no emoji, no mrkdwn, no
//! mention marks. Each medium renders the parts its own way (Slack mrkdwn with real mentions
//! and an emoji for the event's [`Signal`]; Markdown, HTML and plain text with people by name).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::UserId;

/// What kind of thing happened, for filtering and rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    Declared,
    WarRoomOpened,
    RoleAssigned,
    Status,
    Note,
    SeverityChanged,
    StateChanged,
    ChecklistItem,
    Acknowledged,
    Paged,
    Pinned,
    Deploy,
    Health,
    Resolved,
    Published,
    Failure,
}

impl TimelineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TimelineKind::Declared => "declared",
            TimelineKind::WarRoomOpened => "war_room_opened",
            TimelineKind::RoleAssigned => "role_assigned",
            TimelineKind::Status => "status",
            TimelineKind::Note => "note",
            TimelineKind::SeverityChanged => "severity_changed",
            TimelineKind::StateChanged => "state_changed",
            TimelineKind::ChecklistItem => "checklist_item",
            TimelineKind::Acknowledged => "acknowledged",
            TimelineKind::Paged => "paged",
            TimelineKind::Pinned => "pinned",
            TimelineKind::Deploy => "deploy",
            TimelineKind::Health => "health",
            TimelineKind::Resolved => "resolved",
            TimelineKind::Published => "published",
            TimelineKind::Failure => "failure",
        }
    }
}

impl FromStr for TimelineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(s.to_string()))
            .map_err(|_| format!("unknown timeline kind `{s}`"))
    }
}

/// One piece of an event's sentence. Stored as JSON: `{"words": "…"}`, `{"person": "U1"}`,
/// `{"typed": "…"}`, `{"code": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextPart {
    /// warroom's own words, platform-neutral.
    Words(String),
    /// A person, by platform user id: a mention where the medium can mention people, a
    /// display name (or the bare id) where it cannot.
    Person(UserId),
    /// What a person (or an outside system: a health endpoint, a chat message) wrote: shown
    /// as it is, never turned into markup, a mention or a link.
    Typed(String),
    /// A name to show literally (a job kind, a contact): `code` where the medium has it.
    Code(String),
}

/// What an event signals beyond its words; a medium may show it (Slack: an emoji).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// The linked fix runs in production.
    FixDeployed,
    /// A service went back to the version the fix replaced.
    Rollback,
    /// A health check fails.
    Failing,
    /// A health check passes again.
    Recovered,
}

/// What an event says, as data. Build it part by part:
/// `TimelineDetail::new().person("U1").words(" assigned as scribe")`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TimelineDetail {
    pub parts: Vec<TextPart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<Signal>,
}

impl TimelineDetail {
    pub fn new() -> Self {
        TimelineDetail::default()
    }

    /// Appends warroom's own words.
    pub fn words(mut self, words: impl Into<String>) -> Self {
        self.parts.push(TextPart::Words(words.into()));
        self
    }

    /// Appends a person.
    pub fn person(mut self, user: impl Into<UserId>) -> Self {
        self.parts.push(TextPart::Person(user.into()));
        self
    }

    /// Appends what someone typed (marks it may carry are dropped).
    pub fn typed(mut self, text: impl AsRef<str>) -> Self {
        self.parts
            .push(TextPart::Typed(super::inert(text.as_ref())));
        self
    }

    /// Appends a literal name.
    pub fn code(mut self, name: impl Into<String>) -> Self {
        self.parts.push(TextPart::Code(name.into()));
        self
    }

    /// Appends the parts of another detail (its signal is dropped).
    pub fn append(mut self, other: TimelineDetail) -> Self {
        self.parts.extend(other.parts);
        self
    }

    pub fn with_signal(mut self, signal: Signal) -> Self {
        self.signal = Some(signal);
        self
    }

    /// The people the event names, in order.
    pub fn people(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            TextPart::Person(user) => Some(user.as_str()),
            _ => None,
        })
    }
}

impl From<&str> for TimelineDetail {
    /// warroom's own words, naming nobody.
    fn from(words: &str) -> Self {
        TimelineDetail::new().words(words)
    }
}

impl From<String> for TimelineDetail {
    /// warroom's own words, naming nobody.
    fn from(words: String) -> Self {
        TimelineDetail::new().words(words)
    }
}

impl fmt::Display for TimelineDetail {
    /// Plain words: people as their bare user ids, literal names in backticks, no signal.
    /// Media that can do better render the parts themselves.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                TextPart::Words(text) | TextPart::Typed(text) | TextPart::Person(text) => {
                    f.write_str(text)?
                }
                TextPart::Code(name) => write!(f, "`{name}`")?,
            }
        }
        Ok(())
    }
}

/// One entry of an incident's timeline. `actor` is `None` for warroom itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    pub at: DateTime<Utc>,
    pub actor: Option<UserId>,
    pub kind: TimelineKind,
    pub detail: TimelineDetail,
}

impl TimelineEvent {
    pub fn new(
        at: DateTime<Utc>,
        actor: Option<&str>,
        kind: TimelineKind,
        detail: impl Into<TimelineDetail>,
    ) -> Self {
        TimelineEvent {
            at,
            actor: actor.map(str::to_string),
            kind,
            detail: detail.into(),
        }
    }

    /// The event in plain words (see [`TimelineDetail`]'s `Display`).
    pub fn text(&self) -> String {
        self.detail.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_kinds_round_trip() {
        for kind in [
            TimelineKind::Declared,
            TimelineKind::ChecklistItem,
            TimelineKind::WarRoomOpened,
            TimelineKind::Failure,
        ] {
            assert_eq!(kind.as_str().parse::<TimelineKind>(), Ok(kind));
        }
        assert!("nope".parse::<TimelineKind>().is_err());
    }

    #[test]
    fn details_are_stored_as_parts() {
        let detail = TimelineDetail::new()
            .person("U1")
            .words(" pinned ")
            .typed("hi \u{2063}@U2")
            .with_signal(Signal::Failing);
        let json = serde_json::to_string(&detail).unwrap();
        assert_eq!(
            json,
            r#"{"parts":[{"person":"U1"},{"words":" pinned "},{"typed":"hi @U2"}],"signal":"failing"}"#
        );
        assert_eq!(
            serde_json::from_str::<TimelineDetail>(&json).unwrap(),
            detail
        );
        assert_eq!(detail.to_string(), "U1 pinned hi @U2");
        assert_eq!(detail.people().collect::<Vec<_>>(), ["U1"]);
    }
}
