//! The outgoing paging routes other than chat: PagerDuty Events API v2, signed generic
//! webhooks, email over SMTP and SMS through Twilio. [`Pagers`] keeps one client per route
//! (a shared `reqwest::Client`, a lazily built SMTP transport) behind one interface, and
//! reduces every outcome to what a durable job needs: done, retry (maybe after a given time),
//! or give up ([`DeliveryError`]).
//!
//! Error reasons end up in logs and on the incident timeline, so they never carry secrets:
//! no routing keys, tokens, passwords, nor webhook URLs' query strings or user info.
//!
//! One module per route ([`pagerduty`], [`webhook`], [`email`], [`sms`]) adds its methods to
//! [`Pagers`]; [`outbound`] holds what the HTTP routes share (the client, the classification
//! of responses, redaction of URLs in error reasons).

pub mod email;
pub mod outbound;
pub mod pagerduty;
pub mod sms;
#[cfg(test)]
mod test_kit;
pub mod webhook;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use email::{SmtpSettings, SmtpTransport};
use outbound::{check_http_url, outbound_http_client, send_classified};
use pagerduty::DEFAULT_PAGERDUTY_EVENTS_URL;
use sms::TwilioSettings;

/// What a page says, independent of the route.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PageMessage {
    /// The incident number, e.g. `7`.
    pub incident: i64,
    /// The incident key, e.g. `INC-7`.
    pub key: String,
    pub title: String,
    /// e.g. `P0`.
    pub severity: String,
    /// e.g. `investigating`.
    pub status: String,
    /// Chat platform user id of whoever declared the incident.
    pub declared_by: String,
    pub declared_at: DateTime<Utc>,
    /// e.g. `#inc-7-db-down`.
    pub war_room: Option<String>,
    /// A URL to the war room or incident page, if known.
    pub link: Option<String>,
    /// The escalation step, 0-based (texts for people show it 1-based).
    pub step: usize,
    /// The contact's name in the configuration, e.g. `senior`.
    pub contact: String,
}

/// Why a page was not delivered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeliveryError {
    /// Network failure, timeout, HTTP 408/429/5xx, transient SMTP reply: try again, after
    /// `after` when the far side said so (`Retry-After`).
    #[error("{reason}")]
    Retryable {
        after: Option<Duration>,
        reason: String,
    },
    /// Other HTTP 4xx, permanent SMTP reply, missing or bad configuration: trying again
    /// cannot help.
    #[error("{0}")]
    Fatal(String),
}

impl DeliveryError {
    pub(crate) fn retry(reason: impl Into<String>) -> Self {
        DeliveryError::Retryable {
            after: None,
            reason: reason.into(),
        }
    }

    /// Whether trying again later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, DeliveryError::Retryable { .. })
    }
}

/// Settings of the paging routes, from the environment (secrets never come from files).
#[derive(Debug, Clone)]
pub struct PagingSettings {
    /// Default [`DEFAULT_PAGERDUTY_EVENTS_URL`].
    pub pagerduty_events_url: String,
    /// SMS through Twilio, when configured.
    pub twilio: Option<TwilioSettings>,
    /// Email through SMTP, when configured.
    pub smtp: Option<SmtpSettings>,
}

impl Default for PagingSettings {
    /// The PagerDuty endpoint, no SMS, no email.
    fn default() -> Self {
        PagingSettings {
            pagerduty_events_url: DEFAULT_PAGERDUTY_EVENTS_URL.to_string(),
            twilio: None,
            smtp: None,
        }
    }
}

impl PagingSettings {
    /// Reads the settings through `get` (normally `|k| std::env::var(k).ok()`). Empty values
    /// count as unset.
    ///
    /// - `PAGERDUTY_EVENTS_URL`: Events API v2 endpoint, default
    ///   `https://events.pagerduty.com/v2/enqueue`.
    /// - `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`, `TWILIO_FROM` (E.164 number): SMS is enabled
    ///   when all three are set; setting only some of them is an error. `TWILIO_API_URL`: REST
    ///   API base, default `https://api.twilio.com`.
    /// - `SMTP_HOST`, `SMTP_FROM` (a mailbox, `warroom <warroom@example.com>`): email is enabled
    ///   when both are set; setting only one of them, or any other `SMTP_*` variable without
    ///   them, is an error. `SMTP_TLS` = `none` | `starttls` | `tls` (default `starttls`).
    ///   `SMTP_PORT`: default 587, or 465 with `SMTP_TLS=tls`. `SMTP_USERNAME` and
    ///   `SMTP_PASSWORD`: both or neither.
    ///
    /// # Errors
    ///
    /// A message naming the offending variable; it never contains a secret's value.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<PagingSettings, String> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };

        let pagerduty_events_url = match get("PAGERDUTY_EVENTS_URL") {
            Some(url) => {
                check_http_url("PAGERDUTY_EVENTS_URL", &url)?;
                url
            }
            None => DEFAULT_PAGERDUTY_EVENTS_URL.to_string(),
        };

        let twilio = TwilioSettings::from_lookup(get)?;
        let smtp = SmtpSettings::from_lookup(get)?;

        Ok(PagingSettings {
            pagerduty_events_url,
            twilio,
            smtp,
        })
    }
}

/// The outgoing paging clients. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Pagers {
    http: reqwest::Client,
    settings: Arc<PagingSettings>,
    /// Built on the first email; a build error (bad host for TLS) is kept and reported.
    smtp: Arc<OnceLock<Result<SmtpTransport, String>>>,
}

impl std::fmt::Debug for Pagers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The settings redact their secrets.
        f.debug_struct("Pagers")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Pagers {
    pub fn new(settings: PagingSettings) -> Pagers {
        let http = outbound_http_client("paging");
        Pagers {
            http,
            settings: Arc::new(settings),
            smtp: Arc::new(OnceLock::new()),
        }
    }

    pub fn settings(&self) -> &PagingSettings {
        &self.settings
    }

    /// Sends `request` and classifies the outcome.
    async fn deliver(
        &self,
        service: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(), DeliveryError> {
        send_classified(service, request).await.map(drop)
    }
}

/// Control characters (newlines included) replaced by spaces, for subjects and summaries.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// At most `max` characters, the last one `…` when cut.
fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::email::SmtpTls;
    use super::sms::DEFAULT_TWILIO_API_URL;
    use super::test_kit::lookup;
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn from_lookup_defaults() {
        let s = PagingSettings::from_lookup(|_| None).unwrap();
        assert_eq!(s.pagerduty_events_url, DEFAULT_PAGERDUTY_EVENTS_URL);
        assert!(s.twilio.is_none());
        assert!(s.smtp.is_none());
        assert_eq!(
            PagingSettings::default().pagerduty_events_url,
            DEFAULT_PAGERDUTY_EVENTS_URL
        );

        let s = PagingSettings::from_lookup(lookup(&[
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_AUTH_TOKEN", "tok"),
            ("TWILIO_FROM", "+15550001111"),
            ("SMTP_HOST", "smtp.example.com"),
            ("SMTP_FROM", "warroom@example.com"),
            ("PAGERDUTY_EVENTS_URL", "http://localhost:9/v2/enqueue"),
        ]))
        .unwrap();
        assert_eq!(s.pagerduty_events_url, "http://localhost:9/v2/enqueue");
        let twilio = s.twilio.unwrap();
        assert_eq!(twilio.api_url, DEFAULT_TWILIO_API_URL);
        assert_eq!(twilio.auth_token.expose_secret(), "tok");
        let smtp = s.smtp.unwrap();
        assert_eq!((smtp.port, smtp.tls), (587, SmtpTls::StartTls));
        assert!(smtp.username.is_none() && smtp.password.is_none());

        let smtp = PagingSettings::from_lookup(lookup(&[
            ("SMTP_HOST", "smtp.example.com"),
            ("SMTP_FROM", "warroom@example.com"),
            ("SMTP_TLS", "TLS"),
            ("SMTP_USERNAME", "bot"),
            ("SMTP_PASSWORD", "pw"),
        ]))
        .unwrap()
        .smtp
        .unwrap();
        assert_eq!((smtp.port, smtp.tls), (465, SmtpTls::Tls));
        assert_eq!(smtp.username.as_deref(), Some("bot"));
        let smtp = PagingSettings::from_lookup(lookup(&[
            ("SMTP_HOST", "smtp.example.com"),
            ("SMTP_FROM", "warroom@example.com"),
            ("SMTP_TLS", "none"),
            ("SMTP_PORT", "2525"),
        ]))
        .unwrap()
        .smtp
        .unwrap();
        assert_eq!((smtp.port, smtp.tls), (2525, SmtpTls::None));
        // Empty values count as unset.
        let s = PagingSettings::from_lookup(lookup(&[("TWILIO_FROM", ""), ("SMTP_HOST", " ")]))
            .unwrap();
        assert!(s.twilio.is_none() && s.smtp.is_none());
    }

    #[test]
    fn from_lookup_errors_name_the_variable() {
        let err = |vars: &[(&str, &str)]| PagingSettings::from_lookup(lookup(vars)).unwrap_err();
        let e = err(&[("TWILIO_ACCOUNT_SID", "AC1"), ("TWILIO_AUTH_TOKEN", "tok")]);
        assert!(e.starts_with("TWILIO_FROM is not set"), "{e}");
        assert!(!e.contains("tok "), "{e}");
        let e = err(&[("TWILIO_FROM", "+15550001111")]);
        assert!(
            e.starts_with("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set"),
            "{e}"
        );
        let e = err(&[
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_AUTH_TOKEN", "tok"),
            ("TWILIO_FROM", "5550001111"),
        ]);
        assert!(e.contains("TWILIO_FROM"), "{e}");
        let e = err(&[("SMTP_HOST", "smtp.example.com")]);
        assert!(e.contains("SMTP_FROM"), "{e}");
        let e = err(&[("SMTP_PASSWORD", "pw")]);
        assert!(e.contains("SMTP_PASSWORD") && !e.contains("pw "), "{e}");
        let smtp = [("SMTP_HOST", "h"), ("SMTP_FROM", "a@example.com")];
        let e = err(&[smtp[0], smtp[1], ("SMTP_PORT", "99999")]);
        assert!(e.contains("SMTP_PORT"), "{e}");
        let e = err(&[smtp[0], smtp[1], ("SMTP_TLS", "ssl")]);
        assert!(e.contains("SMTP_TLS"), "{e}");
        let e = err(&[smtp[0], smtp[1], ("SMTP_USERNAME", "bot")]);
        assert!(e.contains("SMTP_PASSWORD"), "{e}");
        let e = err(&[smtp[0], ("SMTP_FROM", "not a mailbox")]);
        assert!(e.contains("SMTP_FROM"), "{e}");
        let e = err(&[("PAGERDUTY_EVENTS_URL", "events.pagerduty.com")]);
        assert!(e.contains("PAGERDUTY_EVENTS_URL"), "{e}");
        let e = err(&[
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_AUTH_TOKEN", "tok"),
            ("TWILIO_FROM", "+15550001111"),
            ("TWILIO_API_URL", "nope"),
        ]);
        assert!(e.contains("TWILIO_API_URL"), "{e}");
    }

    #[test]
    fn debug_output_has_no_secrets() {
        let settings = PagingSettings::from_lookup(lookup(&[
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_AUTH_TOKEN", "TWILIO-SECRET"),
            ("TWILIO_FROM", "+15550001111"),
            ("SMTP_HOST", "smtp.example.com"),
            ("SMTP_FROM", "warroom@example.com"),
            ("SMTP_USERNAME", "bot"),
            ("SMTP_PASSWORD", "SMTP-SECRET"),
        ]))
        .unwrap();
        let shown = format!("{settings:?} {:?}", Pagers::new(settings.clone()));
        assert!(!shown.contains("TWILIO-SECRET"), "{shown}");
        assert!(!shown.contains("SMTP-SECRET"), "{shown}");
    }
}
