//! The incident and what belongs to it: checklist, roles (the timeline is in `timeline`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Severity;

/// Where an incident lives. An incident stays on the platform where it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Slack,
    Teams,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Slack => "slack",
            Platform::Teams => "teams",
        }
    }
}

impl FromStr for Platform {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "slack" => Ok(Platform::Slack),
            "teams" => Ok(Platform::Teams),
            other => Err(format!("unknown platform `{other}`")),
        }
    }
}

/// Lifecycle: investigating → identified → monitoring → resolved → closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
    Closed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Investigating => "investigating",
            Status::Identified => "identified",
            Status::Monitoring => "monitoring",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    /// Still being worked on (paging, reminders and health watching apply).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Status::Investigating | Status::Identified | Status::Monitoring
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "investigating" => Ok(Status::Investigating),
            "identified" => Ok(Status::Identified),
            "monitoring" => Ok(Status::Monitoring),
            "resolved" => Ok(Status::Resolved),
            "closed" => Ok(Status::Closed),
            other => Err(format!("`{other}` is not a status")),
        }
    }
}

/// The roles a war room can assign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Commander,
    Comms,
    Ops,
    Scribe,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Commander, Role::Comms, Role::Ops, Role::Scribe];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Commander => "commander",
            Role::Comms => "comms",
            Role::Ops => "ops",
            Role::Scribe => "scribe",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Role::Commander => "Incident commander",
            Role::Comms => "Communications",
            Role::Ops => "Operations",
            Role::Scribe => "Scribe",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "commander" | "ic" | "lead" => Ok(Role::Commander),
            "comms" | "communications" => Ok(Role::Comms),
            "ops" | "operations" => Ok(Role::Ops),
            "scribe" => Ok(Role::Scribe),
            other => Err(format!(
                "`{other}` is not a role: use commander, comms, ops or scribe"
            )),
        }
    }
}

/// A platform user id (Slack `U…`, Teams `29:…`); the core treats it as opaque.
pub type UserId = String;

/// The channel an incident is worked in, once the platform has created it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarRoom {
    pub id: String,
    pub name: String,
}

/// One step of a severity's checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistItem {
    pub position: i64,
    pub text: String,
    pub done: Option<Done>,
}

/// Who ticked a checklist item, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    pub by: UserId,
    pub at: DateTime<Utc>,
}

/// An incident, INC-n.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub number: i64,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub status: Status,
    pub platform: Platform,
    pub declared_by: UserId,
    pub declared_in: String,
    pub declared_at: DateTime<Utc>,
    /// The response target (from the severity) as a deadline.
    pub target_at: DateTime<Utc>,
    /// The war-room name the incident asks for; the platform may add a suffix.
    pub war_room: Option<WarRoom>,
    pub kickoff_ref: Option<String>,
    pub acknowledged: Option<Done>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// What the responders wrote when resolving.
    pub resolution: Option<Resolution>,
    /// When the linked fix was seen running in production (hotfix tracking).
    pub fix_deployed_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub checklist: Vec<ChecklistItem>,
    pub roles: BTreeMap<Role, UserId>,
    /// Fixes linked with `hotfix`.
    pub hotfixes: Vec<super::hotfix::HotfixLink>,
    /// Versions the health checks reported when the incident was declared (service → version).
    pub versions_at_open: BTreeMap<String, String>,
    /// The version the fix replaced (a deploy back to it is a rollback).
    pub fix_from_version: Option<String>,
}

/// The facts a resolution records, for the announcement, status page, customer email and review.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Resolution {
    pub summary: String,
    #[serde(default)]
    pub impact: String,
    #[serde(default)]
    pub root_cause: String,
    #[serde(default)]
    pub fix: String,
    /// Link to the fix (pull request), if any.
    #[serde(default)]
    pub pr: String,
    #[serde(default)]
    pub follow_ups: Vec<String>,
    /// Customers noticed: publish to the status page and email them.
    #[serde(default)]
    pub customer_facing: bool,
    pub resolved_by: UserId,
}

impl Incident {
    /// `INC-7`.
    pub fn key(&self) -> String {
        format!("INC-{}", self.number)
    }

    pub fn commander(&self) -> Option<&UserId> {
        self.roles.get(&Role::Commander)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_with_aliases() {
        assert_eq!("IC".parse::<Role>(), Ok(Role::Commander));
        assert_eq!("comms".parse::<Role>(), Ok(Role::Comms));
        assert!("boss".parse::<Role>().is_err());
    }

    #[test]
    fn only_open_states_are_active() {
        assert!(Status::Monitoring.is_active());
        assert!(!Status::Resolved.is_active());
        assert!(!Status::Closed.is_active());
    }
}
