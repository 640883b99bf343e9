//! Commands: what a chat adapter asks for, carried out against the core and the store in one
//! transaction, with the resulting effects enqueued as jobs in that same transaction.

use crate::app::AppContext;
use crate::core::{self, CoreError, Incident, Platform, Severity};
use crate::jobs;
use crate::store::{self, StoreError};

/// A sub-command as typed (`/incident <text>` on Slack, a message to the bot on Teams).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Open { severity: Severity, title: String },
    List,
    Help,
}

/// Reads the text after the command name. The error is a short explanation for the user.
pub fn parse(text: &str) -> Result<Request, String> {
    let text = text.trim();
    let (word, rest) = match text.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (text, ""),
    };
    match word.to_ascii_lowercase().as_str() {
        "" | "help" | "?" => Ok(Request::Help),
        "list" | "ls" => Ok(Request::List),
        "open" | "declare" | "new" => {
            let (sev, title) = match rest.split_once(char::is_whitespace) {
                Some((s, t)) => (s, t.trim()),
                None => (rest, ""),
            };
            if sev.is_empty() {
                return Err(
                    "`open` needs a severity and a title, e.g. `open P0 checkout is down`".into(),
                );
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
        &settings.policy(),
        now,
    )?;
    store::insert_incident(&mut tx, &opened.incident, now).await?;
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

/// Incidents still being worked on, newest first.
pub async fn active_incidents(ctx: &AppContext) -> Result<Vec<Incident>, CommandError> {
    let mut conn = ctx.store.acquire().await?;
    Ok(store::active_incidents(&mut conn).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(parse("open").unwrap_err().contains("severity"));
        assert!(parse("open P0").unwrap_err().contains("title"));
        assert!(parse("open P7 x").unwrap_err().contains("P7"));
        assert!(parse("open checkout is down")
            .unwrap_err()
            .contains("checkout"));
        assert!(parse("frobnicate now").unwrap_err().contains("frobnicate"));
    }
}
