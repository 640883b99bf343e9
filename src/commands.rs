//! Commands: what a chat adapter asks for, carried out against the core and the store in one
//! transaction, with the resulting effects enqueued as jobs in that same transaction.

use crate::context::AppContext;
use crate::core::{
    self, Command, CoreError, Effect, Incident, Outcome, Platform, Role, Severity, Status,
    TimelineKind,
};
use crate::jobs;
use crate::store::{self, StoreError};

/// A sub-command as typed (`/incident <text>` on Slack, a message to the bot on Teams).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Open {
        severity: Severity,
        title: String,
    },
    /// `open` with nothing after it: the platform shows a form.
    OpenForm,
    /// `resolve` with nothing after it: the platform shows the resolution form.
    ResolveForm,
    List,
    Help,
    Timeline,
    /// `ack [INC-n]`: in a war room, its incident; elsewhere (a page's DM) the one named, or
    /// the newest incident still paging.
    Acknowledge {
        incident: Option<i64>,
    },
    /// A command on the incident of the war room it is typed in.
    Incident(Command),
}

/// Users in command text: the adapter turns its mention syntax into a user id.
pub type MentionParser<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads the text after the command name. The error is a short explanation for the user.
pub fn parse(text: &str, mention: MentionParser) -> Result<Request, String> {
    let text = text.trim();
    let (word, rest) = match text.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (text, ""),
    };
    match word.to_ascii_lowercase().as_str() {
        "" | "help" | "?" => Ok(Request::Help),
        "list" | "ls" => Ok(Request::List),
        "timeline" => Ok(Request::Timeline),
        "status" | "update" => Ok(Request::Incident(Command::PostStatus {
            text: required(
                rest,
                "`status` needs the update text, e.g. `status rolling back the deploy`",
            )?,
        })),
        "note" => Ok(Request::Incident(Command::AddNote {
            text: required(rest, "`note` needs some text")?,
        })),
        "severity" | "sev" => {
            let level = required(rest, "`severity` needs a level: P0, P1, P2 or P3")?;
            let to = level.parse::<Severity>().map_err(|e| e.to_string())?;
            Ok(Request::Incident(Command::ChangeSeverity { to }))
        }
        "assign" => {
            let mut words = rest.split_whitespace();
            let (Some(role), Some(who), None) = (words.next(), words.next(), words.next()) else {
                return Err(
                    "`assign` needs a role and a person, e.g. `assign commander @alice`".into(),
                );
            };
            let role = role.parse::<Role>()?;
            let user = mention(who).ok_or_else(|| {
                format!(
                    "`{who}` is not a person: mention them, e.g. `assign {} @alice`",
                    role.as_str()
                )
            })?;
            Ok(Request::Incident(Command::AssignRole { role, user }))
        }
        "resolve" | "resolved" => {
            if rest.is_empty() {
                return Ok(Request::ResolveForm);
            }
            Ok(Request::Incident(Command::Resolve {
                resolution: core::Resolution {
                    summary: rest.to_string(),
                    ..Default::default()
                },
                customer_facing: None,
            }))
        }
        "close" => Ok(Request::Incident(Command::Close)),
        "hotfix" | "fix" => {
            let mut words = rest.split_whitespace();
            let Some(url) = words.next() else {
                return Err("`hotfix` needs the fix's URL, e.g. `hotfix https://github.com/acme/shop/pull/812 v1.2.4`".into());
            };
            let version = words.next().map(str::to_string);
            if words.next().is_some() {
                return Err("`hotfix` takes a URL and, optionally, a version".into());
            }
            Ok(Request::Incident(Command::LinkHotfix {
                url: url.to_string(),
                version,
            }))
        }
        "ack" | "acknowledge" => {
            if rest.is_empty() {
                return Ok(Request::Acknowledge { incident: None });
            }
            let digits = rest.trim_start_matches(|c: char| !c.is_ascii_digit());
            match digits.parse::<i64>() {
                Ok(n) if n > 0 => Ok(Request::Acknowledge { incident: Some(n) }),
                _ => Err(format!(
                    "`{rest}` is not an incident: use `ack` or `ack INC-3`"
                )),
            }
        }
        "state" => {
            let to = required(rest, "`state` needs identified or monitoring")?;
            match to.to_ascii_lowercase().as_str() {
                "identified" => Ok(Request::Incident(Command::ChangeState {
                    to: Status::Identified,
                })),
                "monitoring" => Ok(Request::Incident(Command::ChangeState {
                    to: Status::Monitoring,
                })),
                other => Err(format!(
                    "`{other}` is not a state for `state`: use identified or monitoring"
                )),
            }
        }
        "open" | "declare" | "new" => {
            let (sev, title) = match rest.split_once(char::is_whitespace) {
                Some((s, t)) => (s, t.trim()),
                None => (rest, ""),
            };
            if sev.is_empty() {
                return Ok(Request::OpenForm);
            }
            let severity = sev.parse::<Severity>().map_err(|e| e.to_string())?;
            if title.is_empty() {
                return Err(format!(
                    "`open {severity}` needs a title, e.g. `open {severity} checkout is down`"
                ));
            }
            Ok(Request::Open {
                severity,
                title: title.to_string(),
            })
        }
        other => Err(format!("`{other}` is not a warroom command")),
    }
}

fn required(rest: &str, message: &str) -> Result<String, String> {
    if rest.trim().is_empty() {
        Err(message.to_string())
    } else {
        Ok(rest.trim().to_string())
    }
}

/// Why a command did nothing.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The request breaks a rule; the text is for the user.
    #[error("{0}")]
    Rejected(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CoreError> for CommandError {
    fn from(e: CoreError) -> Self {
        CommandError::Rejected(e.to_string())
    }
}

impl From<sqlx::Error> for CommandError {
    fn from(e: sqlx::Error) -> Self {
        CommandError::Store(StoreError::Database(e))
    }
}

/// Everything needed to declare an incident.
#[derive(Debug, Clone)]
pub struct OpenArgs {
    pub severity: Severity,
    pub title: String,
    pub description: String,
    pub platform: Platform,
    pub user: String,
    pub channel: String,
    pub reply_to: Option<String>,
    /// A platform id unique to this request (Slack `trigger_id`): a repeat does nothing.
    pub inbound_key: Option<String>,
}

/// Declares an incident. `Ok(None)` when the same request (by `inbound_key`) was already
/// handled. Commits the incident, its timeline and its jobs together, then wakes the workers.
pub async fn open_incident(
    ctx: &AppContext,
    args: OpenArgs,
) -> Result<Option<Incident>, CommandError> {
    let title = core::clean_title(&args.title)?;
    let now = ctx.clock.now();
    let settings = ctx.config.severity(args.severity);
    let responders = match args.platform {
        Platform::Slack => ctx.config.first_responders_on_slack(args.severity),
        Platform::Teams => Vec::new(),
    };
    let mut tx = ctx.store.begin().await?;
    if let Some(key) = &args.inbound_key {
        if !store::Store::remember_inbound(&mut tx, key, now).await? {
            tx.rollback().await?;
            return Ok(None);
        }
    }
    let number = store::next_incident_number(&mut tx).await?;
    let opened = core::open(
        core::OpenIncident {
            number,
            title,
            description: args.description,
            severity: args.severity,
            platform: args.platform,
            declared_by: args.user,
            declared_in: args.channel,
            responders,
            reply_to: args.reply_to,
        },
        &settings.policy(
            ctx.config.reminders.status_every,
            ctx.config.review.remind_after,
        ),
        now,
    )?;
    let mut incident = opened.incident.clone();
    incident.versions_at_open = store::service_versions(&mut tx).await?;
    store::insert_incident(&mut tx, &incident, now).await?;
    for event in &opened.timeline {
        store::insert_timeline(&mut tx, number, event, None).await?;
    }
    jobs::enqueue_effects(&mut tx, number, &opened.effects, now).await?;
    tx.commit().await?;
    ctx.wake.notify_waiters();
    metrics::counter!("warroom_incidents_opened_total", "severity" => args.severity.as_str())
        .increment(1);
    tracing::info!(incident = %opened.incident.key(), severity = %args.severity, "incident declared");
    Ok(Some(opened.incident))
}

/// Which incident a command is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentRef {
    Number(i64),
    /// The incident whose war room is this channel.
    WarRoom(String),
}

/// What came of a command on an incident.
#[derive(Debug)]
pub enum Handled {
    Done {
        incident: Box<Incident>,
        outcome: Outcome,
    },
    /// The same request (by inbound key) was handled before; nothing changed.
    Duplicate,
    /// The channel is not a war room / the incident does not exist.
    NoIncident,
}

/// Runs `command` by `actor` on an incident in one transaction: the inbound id, the incident's
/// lock, the core's decision, its changes, timeline events and effect jobs, then one commit.
pub async fn run_command(
    ctx: &AppContext,
    target: IncidentRef,
    command: Command,
    actor: &str,
    inbound_key: Option<String>,
) -> Result<Handled, CommandError> {
    let now = ctx.clock.now();
    let mut tx = ctx.store.begin().await?;
    if let Some(key) = &inbound_key {
        if !store::Store::remember_inbound(&mut tx, key, now).await? {
            tx.rollback().await?;
            return Ok(Handled::Duplicate);
        }
    }
    let number = match &target {
        IncidentRef::Number(n) => Some(*n),
        IncidentRef::WarRoom(channel) => {
            store::incident_number_by_war_room(&mut tx, channel).await?
        }
    };
    let Some(number) = number else {
        tx.rollback().await?;
        return Ok(Handled::NoIncident);
    };
    store::lock_incident(&mut tx, ctx.store.backend(), number).await?;
    let Some(incident) = store::get_incident(&mut tx, number).await? else {
        tx.rollback().await?;
        return Ok(Handled::NoIncident);
    };
    let mut outcome = match core::handle(&incident, command, actor, now, &ctx.config.policies()) {
        Ok(outcome) => outcome,
        Err(e) => {
            tx.rollback().await?;
            return Err(e.into());
        }
    };
    for change in &outcome.changes {
        store::apply_change(&mut tx, number, change, now).await?;
    }
    for new in &outcome.timeline {
        let added =
            store::insert_timeline(&mut tx, number, &new.event, new.source_key.as_deref()).await?;
        if !added && new.event.kind == TimelineKind::Pinned {
            // Already pinned (by someone else): nothing more to fetch.
            outcome
                .effects
                .retain(|e| !matches!(e, Effect::FetchPinnedMessage { .. }));
        }
    }
    jobs::enqueue_effects(&mut tx, number, &outcome.effects, now).await?;
    let incident = store::get_incident(&mut tx, number)
        .await?
        .unwrap_or(incident);
    tx.commit().await?;
    ctx.wake.notify_waiters();
    Ok(Handled::Done {
        incident: Box::new(incident),
        outcome,
    })
}

/// An incident and its timeline, for `timeline` and the web pages.
pub async fn incident_with_timeline(
    ctx: &AppContext,
    target: IncidentRef,
) -> Result<Option<(Incident, Vec<core::TimelineEvent>)>, CommandError> {
    let mut conn = ctx.store.acquire().await?;
    let number = match &target {
        IncidentRef::Number(n) => Some(*n),
        IncidentRef::WarRoom(channel) => {
            store::incident_number_by_war_room(&mut conn, channel).await?
        }
    };
    let Some(number) = number else {
        return Ok(None);
    };
    let Some(incident) = store::get_incident(&mut conn, number).await? else {
        return Ok(None);
    };
    let events = store::timeline(&mut conn, number).await?;
    Ok(Some((incident, events)))
}

/// The newest active incident that nobody has acknowledged, for `ack` outside a war room.
pub async fn newest_unacknowledged(ctx: &AppContext) -> Result<Option<i64>, CommandError> {
    let incidents = active_incidents(ctx).await?;
    Ok(incidents
        .iter()
        .find(|i| i.acknowledged.is_none())
        .map(|i| i.number))
}

/// Incidents still being worked on, newest first.
pub async fn active_incidents(ctx: &AppContext) -> Result<Vec<Incident>, CommandError> {
    let mut conn = ctx.store.acquire().await?;
    Ok(store::active_incidents(&mut conn).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slack_mention(s: &str) -> Option<String> {
        s.strip_prefix("<@")
            .and_then(|r| r.strip_suffix('>'))
            .map(|r| r.split('|').next().unwrap_or(r).to_string())
    }

    fn parse(text: &str) -> Result<Request, String> {
        super::parse(text, &slack_mention)
    }

    #[test]
    fn parses_war_room_commands() {
        assert_eq!(
            parse("status rolling back v1.2.4"),
            Ok(Request::Incident(Command::PostStatus {
                text: "rolling back v1.2.4".into()
            }))
        );
        assert_eq!(
            parse("assign commander <@U0BOB|bob>"),
            Ok(Request::Incident(Command::AssignRole {
                role: Role::Commander,
                user: "U0BOB".into()
            }))
        );
        assert_eq!(
            parse("severity p1"),
            Ok(Request::Incident(Command::ChangeSeverity {
                to: Severity::P1
            }))
        );
        assert_eq!(parse("ack"), Ok(Request::Acknowledge { incident: None }));
        assert_eq!(
            parse("ack INC-12"),
            Ok(Request::Acknowledge { incident: Some(12) })
        );
        assert_eq!(
            parse("state Monitoring"),
            Ok(Request::Incident(Command::ChangeState {
                to: Status::Monitoring
            }))
        );
        assert_eq!(parse("timeline"), Ok(Request::Timeline));
        assert_eq!(parse("resolve"), Ok(Request::ResolveForm));
        assert_eq!(parse("close"), Ok(Request::Incident(Command::Close)));
        assert!(matches!(
            parse("resolve rolled back the bad deploy"),
            Ok(Request::Incident(Command::Resolve { resolution, customer_facing: None }))
                if resolution.summary == "rolled back the bad deploy"
        ));
        assert_eq!(parse("open"), Ok(Request::OpenForm));
    }

    #[test]
    fn explains_malformed_war_room_commands() {
        assert!(parse("status").unwrap_err().contains("status"));
        assert!(parse("note   ").is_err());
        assert!(parse("severity P9").unwrap_err().contains("P9"));
        assert!(parse("assign boss <@U1>").unwrap_err().contains("boss"));
        assert!(parse("assign commander bob")
            .unwrap_err()
            .contains("mention"));
        assert!(parse("assign commander").is_err());
        assert!(parse("state resolved").unwrap_err().contains("identified"));
    }

    #[test]
    fn parses_open_and_aliases() {
        assert_eq!(
            parse("open P0 checkout is down"),
            Ok(Request::Open {
                severity: Severity::P0,
                title: "checkout is down".into()
            })
        );
        assert_eq!(
            parse("  DECLARE   sev1   db   slow "),
            Ok(Request::Open {
                severity: Severity::P1,
                title: "db   slow".into()
            })
        );
        assert_eq!(parse("list"), Ok(Request::List));
        assert_eq!(parse(""), Ok(Request::Help));
        assert_eq!(parse("help"), Ok(Request::Help));
    }

    #[test]
    fn explains_malformed_commands() {
        assert!(parse("open P0").unwrap_err().contains("title"));
        assert!(parse("open P7 x").unwrap_err().contains("P7"));
        assert!(parse("open checkout is down")
            .unwrap_err()
            .contains("checkout"));
        assert!(parse("frobnicate now").unwrap_err().contains("frobnicate"));
    }
}
