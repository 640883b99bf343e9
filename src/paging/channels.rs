//! The outgoing paging channels other than chat: PagerDuty Events API v2, signed generic
//! webhooks, email over SMTP and SMS through Twilio. [`Pagers`] keeps one client per channel
//! (a shared `reqwest::Client`, a lazily built SMTP transport) behind one interface, and
//! reduces every outcome to what a durable job needs: done, retry (maybe after a given time),
//! or give up ([`DeliveryError`]).
//!
//! Error reasons end up in logs and on the incident timeline, so they never carry secrets:
//! no routing keys, tokens, passwords, nor webhook URLs' query strings or user info.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use lettre::message::header::{ContentType, MIME_VERSION_1_0};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::Sha256;

/// The PagerDuty Events API v2 endpoint.
pub const DEFAULT_PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// The Twilio REST API base.
pub const DEFAULT_TWILIO_API_URL: &str = "https://api.twilio.com";
/// The header carrying a generic webhook's signature.
pub const SIGNATURE_HEADER: &str = "X-Warroom-Signature";
/// How long one HTTP call to a paging provider may take.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one SMTP command may take.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `Retry-After` honoured; a page delayed longer than this is worth little anyway.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// Twilio SMS bodies are kept to this many characters (two segments).
pub const MAX_SMS_CHARS: usize = 320;
/// PagerDuty's limit for `payload.summary`.
const MAX_PAGERDUTY_SUMMARY: usize = 1024;
/// How much of an error response body is read, and how much of it is quoted.
const MAX_ERROR_BODY_READ: usize = 4096;
const MAX_ERROR_EXCERPT: usize = 200;

/// What a page says, independent of the channel.
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

/// Twilio credentials and sender for SMS pages.
#[derive(Debug, Clone)]
pub struct TwilioSettings {
    pub account_sid: String,
    /// Debug-prints as `[REDACTED]`.
    pub auth_token: SecretString,
    /// The sending number, E.164 (`+15551234567`).
    pub from: String,
    /// REST API base, default [`DEFAULT_TWILIO_API_URL`].
    pub api_url: String,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmtpTls {
    /// Plain text (local relays, tests).
    None,
    /// Plain connection upgraded with STARTTLS, which is required (default; port 587).
    #[default]
    StartTls,
    /// TLS from the first byte ("SMTPS"; port 465).
    Tls,
}

/// SMTP server and sender for email pages.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    /// Debug-prints as `[REDACTED]`.
    pub password: Option<SecretString>,
    /// The `From` mailbox, e.g. `warroom <warroom@example.com>`.
    pub from: String,
    pub tls: SmtpTls,
}

/// Settings of the paging channels, from the environment (secrets never come from files).
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

        let twilio = {
            let sid = get("TWILIO_ACCOUNT_SID");
            let token = get("TWILIO_AUTH_TOKEN");
            let from = get("TWILIO_FROM");
            match (sid, token, from) {
                (None, None, None) => None,
                (Some(account_sid), Some(token), Some(from)) => {
                    if !is_e164(&from) {
                        return Err(format!(
                            "TWILIO_FROM must be a phone number in E.164 form such as +15551234567, got `{from}`"
                        ));
                    }
                    let api_url = match get("TWILIO_API_URL") {
                        Some(url) => {
                            check_http_url("TWILIO_API_URL", &url)?;
                            url
                        }
                        None => DEFAULT_TWILIO_API_URL.to_string(),
                    };
                    Some(TwilioSettings {
                        account_sid,
                        auth_token: SecretString::from(token),
                        from,
                        api_url,
                    })
                }
                (sid, token, from) => {
                    let missing: Vec<&str> = [
                        ("TWILIO_ACCOUNT_SID", sid.is_none()),
                        ("TWILIO_AUTH_TOKEN", token.is_none()),
                        ("TWILIO_FROM", from.is_none()),
                    ]
                    .into_iter()
                    .filter_map(|(name, missing)| missing.then_some(name))
                    .collect();
                    return Err(format!(
                        "{} not set: SMS paging needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM together (or none of them)",
                        join_names(&missing)
                    ));
                }
            }
        };

        let smtp = {
            let host = get("SMTP_HOST");
            let from = get("SMTP_FROM");
            let others = ["SMTP_PORT", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_TLS"];
            match (host, from) {
                (None, None) => {
                    if let Some(other) = others.iter().find(|name| get(name).is_some()) {
                        return Err(format!(
                            "{other} is set but SMTP_HOST and SMTP_FROM are not: email paging needs both"
                        ));
                    }
                    None
                }
                (Some(_), None) => {
                    return Err(
                        "SMTP_FROM is not set: email paging needs SMTP_HOST and SMTP_FROM together"
                            .to_string(),
                    )
                }
                (None, Some(_)) => {
                    return Err(
                        "SMTP_HOST is not set: email paging needs SMTP_HOST and SMTP_FROM together"
                            .to_string(),
                    )
                }
                (Some(host), Some(from)) => {
                    if from.parse::<Mailbox>().is_err() {
                        return Err(format!(
                            "SMTP_FROM must be a mailbox such as `warroom <warroom@example.com>`, got `{from}`"
                        ));
                    }
                    let tls = match get("SMTP_TLS").map(|v| v.to_ascii_lowercase()).as_deref() {
                        None | Some("starttls") => SmtpTls::StartTls,
                        Some("none") => SmtpTls::None,
                        Some("tls") => SmtpTls::Tls,
                        Some(other) => {
                            return Err(format!(
                                "SMTP_TLS must be `none`, `starttls` or `tls`, got `{other}`"
                            ))
                        }
                    };
                    let port = match get("SMTP_PORT") {
                        None if tls == SmtpTls::Tls => 465,
                        None => 587,
                        Some(p) => match p.parse::<u16>() {
                            Ok(port) if port > 0 => port,
                            _ => {
                                return Err(format!(
                                    "SMTP_PORT must be a port number (1-65535), got `{p}`"
                                ))
                            }
                        },
                    };
                    let (username, password) = match (get("SMTP_USERNAME"), get("SMTP_PASSWORD")) {
                        (Some(u), Some(p)) => (Some(u), Some(SecretString::from(p))),
                        (None, None) => (None, None),
                        (Some(_), None) => return Err(
                            "SMTP_PASSWORD is not set but SMTP_USERNAME is: set both or neither"
                                .to_string(),
                        ),
                        (None, Some(_)) => return Err(
                            "SMTP_USERNAME is not set but SMTP_PASSWORD is: set both or neither"
                                .to_string(),
                        ),
                    };
                    Some(SmtpSettings {
                        host,
                        port,
                        username,
                        password,
                        from,
                        tls,
                    })
                }
            }
        };

        Ok(PagingSettings {
            pagerduty_events_url,
            twilio,
            smtp,
        })
    }
}

fn join_names(names: &[&str]) -> String {
    match names {
        [one] => format!("{one} is"),
        [init @ .., last] => format!("{} and {last} are", init.join(", ")),
        [] => "nothing is".to_string(),
    }
}

pub(crate) fn check_http_url(name: &str, value: &str) -> Result<(), String> {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(()),
        _ => Err(format!(
            "{name} must be an http(s) URL, got `{}`",
            redacted_url_str(value)
        )),
    }
}

/// `+` and 8 to 15 digits.
fn is_e164(number: &str) -> bool {
    number
        .strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// `+1 (555) 123-4567` → `+15551234567`: spaces, dashes, dots and parentheses removed.
fn normalize_phone(number: &str) -> String {
    number
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect()
}

type SmtpTransport = AsyncSmtpTransport<Tokio1Executor>;

/// The outgoing paging clients. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Pagers {
    http: reqwest::Client,
    settings: Arc<PagingSettings>,
    /// Built on the first email; a build error (bad host for TLS) is kept and reported.
    smtp: Arc<OnceLock<Result<SmtpTransport, String>>>,
}

/// The HTTP client of outgoing deliveries (paging, Statuspage): a 10 s timeout, and no
/// redirects — a redirect would turn a POST into a GET or send a signed body elsewhere.
pub(crate) fn outbound_http_client(purpose: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(HTTP_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("warroom/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, purpose, "cannot build an HTTP client; using defaults");
            reqwest::Client::new()
        })
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

    /// PagerDuty Events API v2 `trigger`: opens (or updates) the PagerDuty incident for
    /// `dedup_key`. Severity `P0`/`P1` → `critical`, `P2` → `error`, `P3` → `warning`, others
    /// `info`.
    pub async fn pagerduty_trigger(
        &self,
        routing_key: &str,
        dedup_key: &str,
        page: &PageMessage,
    ) -> Result<(), DeliveryError> {
        let summary = truncate_chars(
            &format!(
                "[{}] {}: {}",
                page.severity,
                page.key,
                one_line(&page.title)
            ),
            MAX_PAGERDUTY_SUMMARY,
        );
        let mut event = json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": dedup_key,
            "client": "warroom",
            "payload": {
                "summary": summary,
                "source": "warroom",
                "severity": pagerduty_severity(&page.severity),
                "timestamp": page.declared_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                "class": "incident",
                "custom_details": page,
            },
        });
        if let Some(link) = &page.link {
            event["links"] = json!([{ "href": link, "text": format!("{} war room", page.key) }]);
            event["client_url"] = json!(link);
        }
        self.pagerduty_event(routing_key, &event).await
    }

    /// PagerDuty Events API v2 `acknowledge` for `dedup_key`.
    pub async fn pagerduty_acknowledge(
        &self,
        routing_key: &str,
        dedup_key: &str,
    ) -> Result<(), DeliveryError> {
        self.pagerduty_simple(routing_key, dedup_key, "acknowledge")
            .await
    }

    /// PagerDuty Events API v2 `resolve` for `dedup_key`.
    pub async fn pagerduty_resolve(
        &self,
        routing_key: &str,
        dedup_key: &str,
    ) -> Result<(), DeliveryError> {
        self.pagerduty_simple(routing_key, dedup_key, "resolve")
            .await
    }

    async fn pagerduty_simple(
        &self,
        routing_key: &str,
        dedup_key: &str,
        action: &str,
    ) -> Result<(), DeliveryError> {
        let event = json!({
            "routing_key": routing_key,
            "event_action": action,
            "dedup_key": dedup_key,
        });
        self.pagerduty_event(routing_key, &event).await
    }

    async fn pagerduty_event(
        &self,
        routing_key: &str,
        event: &serde_json::Value,
    ) -> Result<(), DeliveryError> {
        if routing_key.trim().is_empty() {
            return Err(DeliveryError::Fatal(
                "the PagerDuty routing key is empty".to_string(),
            ));
        }
        let request = self
            .http
            .post(&self.settings.pagerduty_events_url)
            .json(event);
        self.deliver("PagerDuty", request).await
    }

    /// Generic webhook: POSTs a JSON body `{"delivery_id", "sent_at", "event", "incident":
    /// {"number", "key", "title", "severity", "status", "declared_by", "declared_at",
    /// "war_room", "link"}, "step", "contact"}` signed with `X-Warroom-Signature:
    /// sha256=<hex HMAC-SHA256 of the exact body bytes with secret>`. `delivery_id` is a
    /// random 128-bit hex string, unique per call (a retried job sends a new one); `sent_at`
    /// is RFC 3339 UTC. Any 2xx is success. Returns the delivery id.
    pub async fn webhook(
        &self,
        url: &str,
        secret: &SecretString,
        event: &str,
        page: &PageMessage,
    ) -> Result<String, DeliveryError> {
        self.webhook_with_id(url, secret, event, page, &new_delivery_id())
            .await
    }

    /// [`Pagers::webhook`] with a caller-chosen `delivery_id`, e.g. one derived from the job,
    /// so that a retry after a lost response carries the same id and the receiver can drop
    /// the duplicate. Returns the delivery id.
    pub async fn webhook_with_id(
        &self,
        url: &str,
        secret: &SecretString,
        event: &str,
        page: &PageMessage,
        delivery_id: &str,
    ) -> Result<String, DeliveryError> {
        let parsed = match url::Url::parse(url.trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => u,
            _ => {
                return Err(DeliveryError::Fatal(format!(
                    "the webhook URL `{}` is not an http(s) URL",
                    redacted_url_str(url)
                )))
            }
        };
        if secret.expose_secret().is_empty() {
            return Err(DeliveryError::Fatal(
                "the webhook secret is empty".to_string(),
            ));
        }
        let body = json!({
            "delivery_id": delivery_id,
            "sent_at": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            "event": event,
            "incident": {
                "number": page.incident,
                "key": page.key,
                "title": page.title,
                "severity": page.severity,
                "status": page.status,
                "declared_by": page.declared_by,
                "declared_at": page.declared_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                "war_room": page.war_room,
                "link": page.link,
            },
            "step": page.step,
            "contact": page.contact,
        });
        let bytes = serde_json::to_vec(&body)
            .map_err(|e| DeliveryError::Fatal(format!("cannot encode the webhook body: {e}")))?;
        let signature = sign_webhook(secret.expose_secret().as_bytes(), &bytes);
        let service = format!("webhook {}", redacted_url(&parsed));
        let request = self
            .http
            .post(parsed)
            .header(CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(bytes);
        self.deliver(&service, request).await?;
        Ok(delivery_id.to_string())
    }

    /// Email over SMTP: subject `[P0] INC-7 paged: db down`, a plain-text body with the page
    /// facts and link, sent with [`Pagers::send_mail`]. `id` names the page (the same on every
    /// retry) and becomes its `Message-ID`. Transient SMTP replies (4xx) and connection
    /// failures are retryable, permanent ones (5xx) are not. Fatal when SMTP is not configured.
    pub async fn email(&self, to: &str, page: &PageMessage, id: &str) -> Result<(), DeliveryError> {
        self.send_mail(to, &email_subject(page), &email_body(page), id)
            .await
    }

    /// Whether email can be sent (`SMTP_HOST` and `SMTP_FROM` are set).
    pub fn smtp_configured(&self) -> bool {
        self.settings.smtp.is_some()
    }

    /// Whether SMS can be sent (Twilio is configured).
    pub fn sms_configured(&self) -> bool {
        self.settings.twilio.is_some()
    }

    /// One plain-text UTF-8 email (`text/plain; charset=utf-8`, `MIME-Version: 1.0`) to one
    /// recipient, alone in `To:` and in the envelope, through the shared SMTP transport.
    /// `id` (a stable name for this email, the same on every retry, so that a receiver can
    /// drop a duplicate) becomes `Message-ID: <id@domain of SMTP_FROM>`; characters not
    /// allowed there become `-`. Control characters in `subject` (newlines included) become
    /// spaces. Transient SMTP replies (4xx) and connection failures are retryable, permanent
    /// ones (5xx) are not.
    ///
    /// # Errors
    ///
    /// [`DeliveryError::Fatal`] when SMTP is not configured or `to` is not a valid mailbox;
    /// otherwise as classified from the SMTP exchange.
    pub async fn send_mail(
        &self,
        to: &str,
        subject: &str,
        body: &str,
        id: &str,
    ) -> Result<(), DeliveryError> {
        let Some(smtp) = &self.settings.smtp else {
            return Err(DeliveryError::Fatal(
                "email is not configured: set SMTP_HOST and SMTP_FROM".to_string(),
            ));
        };
        let from: Mailbox = smtp
            .from
            .parse()
            .map_err(|e| DeliveryError::Fatal(format!("SMTP_FROM is not a valid mailbox: {e}")))?;
        let mailbox = parse_recipient(to)?;
        let message_id = message_id(id, from.email.domain());
        let message = Message::builder()
            .from(from)
            .to(mailbox)
            .message_id(Some(message_id))
            .header(MIME_VERSION_1_0)
            .subject(one_line(subject))
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string())
            .map_err(|e| DeliveryError::Fatal(format!("cannot build the email: {e}")))?;
        let transport = self
            .smtp
            .get_or_init(|| build_smtp_transport(smtp))
            .as_ref()
            .map_err(|e| DeliveryError::Fatal(e.clone()))?;
        match transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) => Err(classify_smtp_error(&smtp.host, &e)),
        }
    }

    /// SMS through Twilio: POST `{api_url}/2010-04-01/Accounts/{sid}/Messages.json` with form
    /// fields `To`, `From`, `Body` (at most 320 characters: `[P0] INC-7: db down — paged (step
    /// 2). Ack: /incident ack INC-7`), HTTP basic auth `sid:token`. Any 2xx (Twilio: 201) is
    /// success. Fatal when Twilio is not configured or `to` is not a phone number.
    pub async fn sms(&self, to: &str, page: &PageMessage) -> Result<(), DeliveryError> {
        let Some(twilio) = &self.settings.twilio else {
            return Err(DeliveryError::Fatal(
                "SMS paging is not configured: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM"
                    .to_string(),
            ));
        };
        let number = normalize_phone(to);
        if !is_e164(&number) {
            return Err(DeliveryError::Fatal(format!(
                "`{to}` is not a phone number in E.164 form such as +15551234567"
            )));
        }
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            twilio.api_url.trim_end_matches('/'),
            twilio.account_sid
        );
        let body = sms_body(page);
        let form = [
            ("To", number.as_str()),
            ("From", twilio.from.as_str()),
            ("Body", body.as_str()),
        ];
        let request = self
            .http
            .post(url)
            .basic_auth(&twilio.account_sid, Some(twilio.auth_token.expose_secret()))
            .form(&form);
        self.deliver("Twilio", request).await
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

/// Sends `request` and classifies the outcome like every paging channel: a 2xx response is
/// returned (its body unread); network failures, timeouts, 408, 429 and 5xx are retryable
/// (honouring `Retry-After`); other statuses are fatal. `service` names the far side in error
/// reasons, which quote the status and the start of the response body but never the URL.
pub(crate) async fn send_classified(
    service: &str,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, DeliveryError> {
    let response = request
        .send()
        .await
        .map_err(|e| transport_error(service, e))?;
    check_response(service, response).await
}

/// `"sha256=<hex HMAC-SHA256(body, secret)>"`, the value of `X-Warroom-Signature`.
pub fn sign_webhook(secret: &[u8], body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret).expect("HMAC-SHA256 takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks one recipient address (`a@b.c` or `Name <a@b.c>`).
///
/// # Errors
///
/// [`DeliveryError::Fatal`] naming the address when it is not a valid mailbox.
pub fn parse_recipient(address: &str) -> Result<Mailbox, DeliveryError> {
    address
        .trim()
        .parse()
        .map_err(|e| DeliveryError::Fatal(format!("`{address}` is not a valid email address: {e}")))
}

/// `<id@domain>` (RFC 5322 §3.6.4): characters of `id` other than letters, digits and
/// `-_+=` become `-`.
fn message_id(id: &str, domain: &str) -> String {
    let local: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '=') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let local = if local.is_empty() { "warroom" } else { &local };
    format!("<{local}@{domain}>")
}

fn new_delivery_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// PagerDuty's `payload.severity` for a warroom severity.
fn pagerduty_severity(severity: &str) -> &'static str {
    match severity.trim().to_ascii_uppercase().as_str() {
        "P0" | "P1" => "critical",
        "P2" => "error",
        "P3" => "warning",
        _ => "info",
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

fn email_subject(page: &PageMessage) -> String {
    format!(
        "[{}] {} paged: {}",
        page.severity,
        page.key,
        one_line(&page.title)
    )
}

fn email_body(page: &PageMessage) -> String {
    let mut body = format!(
        "You are paged for {key}: {title}\n\n\
         Severity:    {severity}\n\
         Status:      {status}\n\
         Declared by: {declared_by}\n\
         Declared at: {declared_at}\n",
        key = page.key,
        title = one_line(&page.title),
        severity = page.severity,
        status = page.status,
        declared_by = page.declared_by,
        declared_at = page.declared_at.format("%Y-%m-%d %H:%M UTC"),
    );
    if let Some(room) = &page.war_room {
        body.push_str(&format!("War room:    {room}\n"));
    }
    if let Some(link) = &page.link {
        body.push_str(&format!("Link:        {link}\n"));
    }
    body.push_str(&format!(
        "\nYou are paged as `{}` (escalation step {}).\n\
         Until someone acknowledges, the next step pages more people.\n\
         Acknowledge in chat: /incident ack {}\n",
        page.contact,
        page.step + 1,
        page.key
    ));
    body
}

fn sms_body(page: &PageMessage) -> String {
    let head = format!("[{}] {}: ", page.severity, page.key);
    let tail = format!(
        " — paged (step {}). Ack: /incident ack {}",
        page.step + 1,
        page.key
    );
    let room = MAX_SMS_CHARS.saturating_sub(head.chars().count() + tail.chars().count());
    let text = format!(
        "{head}{}{tail}",
        truncate_chars(&one_line(&page.title), room)
    );
    truncate_chars(&text, MAX_SMS_CHARS)
}

fn build_smtp_transport(smtp: &SmtpSettings) -> Result<SmtpTransport, String> {
    let builder = match smtp.tls {
        SmtpTls::None => SmtpTransport::builder_dangerous(smtp.host.as_str()),
        SmtpTls::StartTls => SmtpTransport::starttls_relay(&smtp.host)
            .map_err(|e| format!("cannot set up STARTTLS for SMTP_HOST `{}`: {e}", smtp.host))?,
        SmtpTls::Tls => SmtpTransport::relay(&smtp.host)
            .map_err(|e| format!("cannot set up TLS for SMTP_HOST `{}`: {e}", smtp.host))?,
    };
    let mut builder = builder.port(smtp.port).timeout(Some(SMTP_TIMEOUT));
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.expose_secret().to_string(),
        ));
    }
    Ok(builder.build())
}

fn classify_smtp_error(host: &str, e: &lettre::transport::smtp::Error) -> DeliveryError {
    let detail = error_chain(e);
    if e.is_permanent() {
        DeliveryError::Fatal(format!(
            "the SMTP server {host} refused the email: {detail}"
        ))
    } else if e.is_client() {
        // e.g. STARTTLS required but not offered, no usable AUTH mechanism.
        DeliveryError::Fatal(format!("cannot send email through {host}: {detail}"))
    } else if e.is_transient() {
        DeliveryError::retry(format!(
            "the SMTP server {host} deferred the email: {detail}"
        ))
    } else {
        // Connection, network, timeout, TLS, garbled reply.
        DeliveryError::retry(format!("cannot reach the SMTP server {host}: {detail}"))
    }
}

/// An error and its sources, `a: b: c`, without repeats.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    one_line(&parts.join(": "))
}

/// A reqwest failure before any response: retryable unless the request itself is wrong.
fn transport_error(service: &str, e: reqwest::Error) -> DeliveryError {
    // The URL may hold a token (webhooks): keep it out of the reason.
    let e = e.without_url();
    let detail = error_chain(&e);
    if e.is_builder() {
        return DeliveryError::Fatal(format!("cannot build the {service} request: {detail}"));
    }
    let what = if e.is_timeout() {
        format!("timed out (limit {}s)", HTTP_TIMEOUT.as_secs())
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    DeliveryError::retry(format!("{service}: {what}: {detail}"))
}

/// Any 2xx is success; 408, 429 and 5xx are retryable (honouring `Retry-After`); the rest
/// (other 4xx, 3xx since redirects are not followed) is fatal.
async fn check_response(
    service: &str,
    response: reqwest::Response,
) -> Result<reqwest::Response, DeliveryError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let after = retry_after(response.headers(), Utc::now());
    let excerpt = body_excerpt(response).await;
    let mut reason = format!("{service} answered {status}");
    if status.is_redirection() {
        reason.push_str(" (redirects are not followed: configure the final URL)");
    }
    if !excerpt.is_empty() {
        reason.push_str(": ");
        reason.push_str(&excerpt);
    }
    if status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        Err(DeliveryError::Retryable { after, reason })
    } else {
        Err(DeliveryError::Fatal(reason))
    }
}

/// `Retry-After` as seconds (or an HTTP date), at most [`MAX_RETRY_AFTER`].
fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = DateTime::parse_from_rfc2822(value).ok()?;
            (at.with_timezone(&Utc) - now).to_std().unwrap_or_default()
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The start of an error response's body on one line, read without pulling in a huge body.
async fn body_excerpt(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY_READ {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(MAX_ERROR_BODY_READ);
    let text = String::from_utf8_lossy(&body);
    let squeezed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate_chars(&squeezed, MAX_ERROR_EXCERPT)
}

/// `scheme://host[:port]`: user info, path and query left out, since webhook URLs often carry
/// their secret in one of them.
fn redacted_url(url: &url::Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown
}

/// What may be shown of a configured URL in an error message.
fn redacted_url_str(value: &str) -> String {
    match url::Url::parse(value) {
        Ok(u) if u.has_host() => redacted_url(&u),
        // Not a URL: show it only when it cannot hold credentials or a query string.
        _ if value.contains(['@', '?', '#', ':']) => "(not shown)".to_string(),
        _ => truncate_chars(value, 100),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, VecDeque};
    use std::sync::Mutex;

    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap as AxumHeaders, HeaderName, HeaderValue, Method, Uri};
    use axum::response::{IntoResponse, Response};
    use axum::Router;

    use crate::testkit::smtp_sink::SmtpSink;

    /// A request a test receiver got.
    #[derive(Debug, Clone)]
    struct Seen {
        method: Method,
        path: String,
        headers: AxumHeaders,
        body: Bytes,
    }

    impl Seen {
        fn json(&self) -> serde_json::Value {
            serde_json::from_slice(&self.body).expect("a JSON body")
        }

        fn header(&self, name: &str) -> String {
            self.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        }
    }

    #[derive(Debug, Clone)]
    struct Reply {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    }

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    /// Records every request and answers from a script, then with `fallback`.
    struct Receiver {
        seen: Mutex<Vec<Seen>>,
        script: Mutex<VecDeque<Reply>>,
        fallback: Reply,
    }

    impl Receiver {
        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    async fn record(
        State(rx): State<Arc<Receiver>>,
        method: Method,
        uri: Uri,
        headers: AxumHeaders,
        body: Bytes,
    ) -> Response {
        rx.seen.lock().unwrap().push(Seen {
            method,
            path: uri.path().to_string(),
            headers,
            body,
        });
        let reply = rx
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| rx.fallback.clone());
        let mut headers = AxumHeaders::new();
        for (name, value) in reply.headers {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(&value).unwrap(),
            );
        }
        (
            axum::http::StatusCode::from_u16(reply.status).unwrap(),
            headers,
            reply.body,
        )
            .into_response()
    }

    /// Starts a receiver on 127.0.0.1:0; returns `http://127.0.0.1:PORT` and the receiver.
    async fn receiver(fallback: Reply, script: Vec<Reply>) -> (String, Arc<Receiver>) {
        let rx = Arc::new(Receiver {
            seen: Mutex::new(Vec::new()),
            script: Mutex::new(script.into()),
            fallback,
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(record).with_state(rx.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}"), rx)
    }

    /// A port nothing listens on.
    async fn closed_port() -> u16 {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        listener.local_addr().unwrap().port()
    }

    fn page() -> PageMessage {
        PageMessage {
            incident: 7,
            key: "INC-7".into(),
            title: "db down".into(),
            severity: "P0".into(),
            status: "investigating".into(),
            declared_by: "U123".into(),
            declared_at: DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            war_room: Some("#inc-7-db-down".into()),
            link: Some("https://slack.example.com/archives/C7".into()),
            step: 1,
            contact: "senior".into(),
        }
    }

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| vars.get(k).cloned()
    }

    fn pagerduty_pagers(base: &str) -> Pagers {
        Pagers::new(PagingSettings {
            pagerduty_events_url: format!("{base}/v2/enqueue"),
            ..PagingSettings::default()
        })
    }

    const PD_OK: &str =
        r#"{"status":"success","message":"Event processed","dedup_key":"warroom-INC-7"}"#;

    #[tokio::test]
    async fn pagerduty_trigger_sends_an_events_v2_trigger() {
        let (base, rx) = receiver(reply(202, PD_OK), vec![]).await;
        let pagers = pagerduty_pagers(&base);
        pagers
            .pagerduty_trigger("R0UTING", "warroom-INC-7", &page())
            .await
            .unwrap();

        let seen = rx.seen();
        assert_eq!(seen.len(), 1);
        let req = &seen[0];
        assert_eq!(req.method, Method::POST);
        assert_eq!(req.path, "/v2/enqueue");
        assert!(req.header("content-type").starts_with("application/json"));
        let event = req.json();
        assert_eq!(event["routing_key"], "R0UTING");
        assert_eq!(event["event_action"], "trigger");
        assert_eq!(event["dedup_key"], "warroom-INC-7");
        assert_eq!(event["payload"]["summary"], "[P0] INC-7: db down");
        assert_eq!(event["payload"]["source"], "warroom");
        assert_eq!(event["payload"]["severity"], "critical");
        let details = &event["payload"]["custom_details"];
        assert_eq!(details["key"], "INC-7");
        assert_eq!(details["incident"], 7);
        assert_eq!(details["status"], "investigating");
        assert_eq!(details["war_room"], "#inc-7-db-down");
        assert_eq!(details["contact"], "senior");
        assert_eq!(details["step"], 1);
        assert_eq!(
            event["links"][0]["href"],
            "https://slack.example.com/archives/C7"
        );
        assert!(event["links"][0]["text"]
            .as_str()
            .unwrap()
            .contains("INC-7"));

        // No link, no links.
        let mut unlinked = page();
        unlinked.link = None;
        unlinked.severity = "P3".into();
        pagers
            .pagerduty_trigger("R0UTING", "warroom-INC-7", &unlinked)
            .await
            .unwrap();
        let event = rx.seen()[1].json();
        assert!(event.get("links").is_none());
        assert_eq!(event["payload"]["severity"], "warning");
    }

    #[tokio::test]
    async fn pagerduty_acknowledge_and_resolve() {
        let (base, rx) = receiver(reply(202, PD_OK), vec![]).await;
        let pagers = pagerduty_pagers(&base);
        pagers
            .pagerduty_acknowledge("R0UTING", "warroom-INC-7")
            .await
            .unwrap();
        pagers
            .pagerduty_resolve("R0UTING", "warroom-INC-7")
            .await
            .unwrap();
        let seen = rx.seen();
        let actions: Vec<_> = seen
            .iter()
            .map(|s| s.json()["event_action"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(actions, ["acknowledge", "resolve"]);
        for s in &seen {
            let event = s.json();
            assert_eq!(event["dedup_key"], "warroom-INC-7");
            assert_eq!(event["routing_key"], "R0UTING");
            assert!(event.get("payload").is_none());
        }
    }

    #[tokio::test]
    async fn pagerduty_5xx_is_retryable_then_succeeds() {
        let (base, rx) = receiver(reply(202, PD_OK), vec![reply(500, "oops")]).await;
        let pagers = pagerduty_pagers(&base);
        let first = pagers
            .pagerduty_trigger("R0UTING", "warroom-INC-7", &page())
            .await;
        match first {
            Err(DeliveryError::Retryable { after, reason }) => {
                assert_eq!(after, None);
                assert!(reason.contains("500"), "{reason}");
                assert!(reason.contains("oops"), "{reason}");
            }
            other => panic!("expected Retryable, got {other:?}"),
        }
        pagers
            .pagerduty_trigger("R0UTING", "warroom-INC-7", &page())
            .await
            .unwrap();
        assert_eq!(rx.seen().len(), 2);
    }

    #[tokio::test]
    async fn pagerduty_400_is_fatal_with_status_and_excerpt() {
        let body = r#"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect (should be 32 characters)"]}"#;
        let (base, _rx) = receiver(reply(400, body), vec![]).await;
        let err = pagerduty_pagers(&base)
            .pagerduty_trigger("R0UTING", "warroom-INC-7", &page())
            .await
            .unwrap_err();
        let DeliveryError::Fatal(reason) = &err else {
            panic!("expected Fatal, got {err:?}");
        };
        assert!(reason.contains("PagerDuty"), "{reason}");
        assert!(reason.contains("400"), "{reason}");
        assert!(reason.contains("Event object is invalid"), "{reason}");
        assert!(!reason.contains("R0UTING"), "{reason}");
        assert!(!err.is_retryable());
    }

    #[tokio::test]
    async fn http_429_honours_retry_after_and_408_is_retryable() {
        let limited = Reply {
            status: 429,
            headers: vec![("retry-after", "3".into())],
            body: String::new(),
        };
        let (base, _rx) = receiver(reply(202, PD_OK), vec![limited, reply(408, "")]).await;
        let pagers = pagerduty_pagers(&base);
        let err = pagers
            .pagerduty_acknowledge("R0UTING", "warroom-INC-7")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DeliveryError::Retryable { after: Some(d), .. } if *d == Duration::from_secs(3)),
            "{err:?}"
        );
        let err = pagers
            .pagerduty_acknowledge("R0UTING", "warroom-INC-7")
            .await
            .unwrap_err();
        assert!(
            matches!(err, DeliveryError::Retryable { after: None, .. }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn redirects_are_not_followed_and_are_fatal() {
        let moved = Reply {
            status: 301,
            headers: vec![("location", "http://127.0.0.1:1/elsewhere".into())],
            body: String::new(),
        };
        let (base, rx) = receiver(moved, vec![]).await;
        let err = pagerduty_pagers(&base)
            .pagerduty_resolve("R0UTING", "warroom-INC-7")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DeliveryError::Fatal(r) if r.contains("301")),
            "{err:?}"
        );
        assert_eq!(rx.seen().len(), 1);
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_retryable() {
        let port = closed_port().await;
        let pagers = pagerduty_pagers(&format!("http://127.0.0.1:{port}"));
        let err = pagers
            .pagerduty_trigger("R0UTING", "warroom-INC-7", &page())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DeliveryError::Retryable { after: None, reason } if reason.contains("cannot connect")),
            "{err:?}"
        );
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers, now), None);
        headers.insert(RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(120)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:30 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(30)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:00:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, "99999999".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(MAX_RETRY_AFTER));
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn pagerduty_severities() {
        assert_eq!(pagerduty_severity("P0"), "critical");
        assert_eq!(pagerduty_severity("p1"), "critical");
        assert_eq!(pagerduty_severity("P2"), "error");
        assert_eq!(pagerduty_severity("P3"), "warning");
        assert_eq!(pagerduty_severity("P4"), "info");
    }

    fn twilio_pagers(base: &str) -> Pagers {
        let settings = PagingSettings::from_lookup(lookup(&[
            ("TWILIO_ACCOUNT_SID", "AC123"),
            ("TWILIO_AUTH_TOKEN", "s3cret-token"),
            ("TWILIO_FROM", "+15550001111"),
            ("TWILIO_API_URL", base),
        ]))
        .unwrap();
        Pagers::new(settings)
    }

    #[tokio::test]
    async fn sms_posts_a_twilio_message_form_with_basic_auth() {
        let (base, rx) = receiver(reply(201, r#"{"sid":"SM1","status":"queued"}"#), vec![]).await;
        twilio_pagers(&base)
            .sms("+1 (555) 222-3333", &page())
            .await
            .unwrap();
        let seen = rx.seen();
        assert_eq!(seen.len(), 1);
        let req = &seen[0];
        assert_eq!(req.method, Method::POST);
        assert_eq!(req.path, "/2010-04-01/Accounts/AC123/Messages.json");
        assert_eq!(
            req.header("content-type"),
            "application/x-www-form-urlencoded"
        );
        // base64("AC123:s3cret-token")
        assert_eq!(
            req.header("authorization"),
            "Basic QUMxMjM6czNjcmV0LXRva2Vu"
        );
        let form: HashMap<String, String> = serde_urlencoded::from_bytes(&req.body).unwrap();
        assert_eq!(form["To"], "+15552223333");
        assert_eq!(form["From"], "+15550001111");
        assert_eq!(
            form["Body"],
            "[P0] INC-7: db down — paged (step 2). Ack: /incident ack INC-7"
        );
        assert_eq!(form.len(), 3);
    }

    #[tokio::test]
    async fn sms_errors() {
        let (base, _rx) = receiver(
            reply(
                400,
                r#"{"code":21211,"message":"Invalid 'To' Phone Number"}"#,
            ),
            vec![],
        )
        .await;
        let pagers = twilio_pagers(&base);
        let err = pagers.sms("+15552223333", &page()).await.unwrap_err();
        assert!(
            matches!(&err, DeliveryError::Fatal(r) if r.contains("400") && r.contains("21211")),
            "{err:?}"
        );
        assert!(!err.to_string().contains("s3cret"));
        let err = pagers.sms("call me maybe", &page()).await.unwrap_err();
        assert!(matches!(err, DeliveryError::Fatal(_)), "{err:?}");
        let err = Pagers::new(PagingSettings::default())
            .sms("+15552223333", &page())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DeliveryError::Fatal(r) if r.contains("TWILIO_ACCOUNT_SID")),
            "{err:?}"
        );
    }

    #[test]
    fn sms_bodies_stay_within_320_characters() {
        let mut long = page();
        long.title = "é".repeat(1000);
        let body = sms_body(&long);
        assert_eq!(body.chars().count(), MAX_SMS_CHARS);
        assert!(body.starts_with("[P0] INC-7: éé"));
        assert!(body.ends_with("… — paged (step 2). Ack: /incident ack INC-7"));
        let mut multiline = page();
        multiline.title = "db\r\ndown".into();
        assert!(sms_body(&multiline).starts_with("[P0] INC-7: db  down —"));
    }

    #[tokio::test]
    async fn webhook_bodies_are_signed_and_unique() {
        let (base, rx) = receiver(reply(204, ""), vec![]).await;
        let pagers = Pagers::new(PagingSettings::default());
        let secret = SecretString::from("whsec-123");
        let url = format!("{base}/hooks/warroom");
        let first = pagers
            .webhook(&url, &secret, "page", &page())
            .await
            .unwrap();
        let second = pagers
            .webhook(&url, &secret, "page", &page())
            .await
            .unwrap();
        assert_ne!(first, second);
        assert_eq!(first.len(), 32);
        assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));

        let seen = rx.seen();
        assert_eq!(seen.len(), 2);
        let mut ids = Vec::new();
        for req in &seen {
            assert_eq!(req.path, "/hooks/warroom");
            assert_eq!(req.header("content-type"), "application/json");
            // Verify independently of sign_webhook, over the raw bytes received.
            let sig = req.header("x-warroom-signature");
            let hex_sig = sig.strip_prefix("sha256=").expect("sha256= prefix");
            let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec-123").unwrap();
            mac.update(&req.body);
            mac.verify_slice(&hex::decode(hex_sig).unwrap())
                .expect("signature matches the body");

            let body = req.json();
            assert_eq!(body["event"], "page");
            assert_eq!(body["incident"]["key"], "INC-7");
            assert_eq!(body["incident"]["number"], 7);
            assert_eq!(body["incident"]["severity"], "P0");
            assert_eq!(body["incident"]["title"], "db down");
            assert_eq!(body["incident"]["war_room"], "#inc-7-db-down");
            assert_eq!(body["step"], 1);
            assert_eq!(body["contact"], "senior");
            let sent_at = body["sent_at"].as_str().unwrap();
            let sent_at = DateTime::parse_from_rfc3339(sent_at).expect("RFC 3339 sent_at");
            assert!(
                (Utc::now() - sent_at.with_timezone(&Utc))
                    .num_seconds()
                    .abs()
                    < 60
            );
            ids.push(body["delivery_id"].as_str().unwrap().to_string());
        }
        assert_eq!(ids, [first, second]);

        let id = pagers
            .webhook_with_id(&url, &secret, "page", &page(), "job-42-step-1")
            .await
            .unwrap();
        assert_eq!(id, "job-42-step-1");
        assert_eq!(rx.seen()[2].json()["delivery_id"], "job-42-step-1");
    }

    #[tokio::test]
    async fn webhook_failures_are_classified_without_leaking_the_url_token() {
        let (base, _rx) = receiver(reply(410, "gone"), vec![reply(503, "busy")]).await;
        let pagers = Pagers::new(PagingSettings::default());
        let secret = SecretString::from("whsec-123");
        let url = format!("{base}/hook?token=TOPSECRET");
        let err = pagers
            .webhook(&url, &secret, "page", &page())
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
        let err = pagers
            .webhook(&url, &secret, "page", &page())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DeliveryError::Fatal(r) if r.contains("410")),
            "{err:?}"
        );
        assert!(!err.to_string().contains("TOPSECRET"), "{err}");

        let port = closed_port().await;
        let url = format!("http://127.0.0.1:{port}/hook?token=TOPSECRET");
        let err = pagers
            .webhook(&url, &secret, "page", &page())
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
        assert!(!err.to_string().contains("TOPSECRET"), "{err}");

        for bad in ["ftp://x/?token=TOPSECRET", "http://u:TOPSECRET@[::1"] {
            let err = pagers
                .webhook(bad, &secret, "page", &page())
                .await
                .unwrap_err();
            assert!(matches!(err, DeliveryError::Fatal(_)), "{err:?}");
            assert!(!err.to_string().contains("TOPSECRET"), "{err}");
        }
        // Nor a secret in the path (many services put theirs there).
        let url = format!("{base}/services/TOPSECRET");
        let err = pagers
            .webhook(&url, &secret, "page", &page())
            .await
            .unwrap_err();
        assert!(!err.to_string().contains("TOPSECRET"), "{err}");
        let err = pagers
            .webhook(
                &format!("{base}/hook"),
                &SecretString::from(""),
                "page",
                &page(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, DeliveryError::Fatal(_)), "{err:?}");
    }

    #[test]
    fn sign_webhook_is_hmac_sha256_hex() {
        assert_eq!(
            sign_webhook(b"key", b"The quick brown fox jumps over the lazy dog"),
            "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    fn smtp_pagers(port: u16) -> Pagers {
        let settings = PagingSettings::from_lookup(lookup(&[
            ("SMTP_HOST", "127.0.0.1"),
            ("SMTP_PORT", &port.to_string()),
            ("SMTP_FROM", "warroom <warroom@example.com>"),
            ("SMTP_TLS", "none"),
        ]))
        .unwrap();
        Pagers::new(settings)
    }

    #[tokio::test]
    async fn email_goes_through_smtp() {
        let sink = SmtpSink::start().await.unwrap();
        let pagers = smtp_pagers(sink.port());
        pagers
            .email("oncall@example.com", &page(), "warroom-INC-7-page")
            .await
            .unwrap();
        let mails = sink.messages();
        assert_eq!(mails.len(), 1);
        let mail = &mails[0];
        assert_eq!(mail.from, "warroom@example.com");
        assert_eq!(mail.to, ["oncall@example.com"]);
        assert!(
            mail.data.contains("Subject: [P0] INC-7 paged: db down\r\n"),
            "{}",
            mail.data
        );
        assert!(
            mail.data.contains("To: oncall@example.com"),
            "{}",
            mail.data
        );
        assert!(
            mail.data.contains("From: warroom <warroom@example.com>"),
            "{}",
            mail.data
        );
        assert!(mail.data.contains("Severity:    P0"), "{}", mail.data);
        assert!(
            mail.data.contains("https://slack.example.com/archives/C7"),
            "{}",
            mail.data
        );
        assert!(mail.data.contains("/incident ack INC-7"), "{}", mail.data);
        // What Gmail requires (RFC 5322 §3.6.4, RFC 2045 §4): a Message-ID, stable for the
        // page, and a MIME version.
        assert!(
            mail.data
                .contains("Message-ID: <warroom-INC-7-page@example.com>\r\n"),
            "{}",
            mail.data
        );
        assert!(mail.data.contains("MIME-Version: 1.0\r\n"), "{}", mail.data);

        // The transport is shared by clones and reused.
        pagers
            .clone()
            .email("second@example.com", &page(), "warroom-INC-7-page-2")
            .await
            .unwrap();
        assert_eq!(sink.messages().len(), 2);
    }

    #[tokio::test]
    async fn email_transient_failures_are_retryable() {
        let sink = SmtpSink::start().await.unwrap();
        let pagers = smtp_pagers(sink.port());
        sink.fail_next(1);
        let err = pagers
            .email("oncall@example.com", &page(), "warroom-INC-7-page")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DeliveryError::Retryable { reason, .. } if reason.contains("451")),
            "{err:?}"
        );
        assert!(sink.messages().is_empty());
        pagers
            .email("oncall@example.com", &page(), "warroom-INC-7-page")
            .await
            .unwrap();
        assert_eq!(sink.messages().len(), 1);

        let port = closed_port().await;
        let err = smtp_pagers(port)
            .email("oncall@example.com", &page(), "warroom-INC-7-page")
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
    }

    #[tokio::test]
    async fn email_configuration_problems_are_fatal() {
        let err = Pagers::new(PagingSettings::default())
            .email("oncall@example.com", &page(), "warroom-INC-7-page")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DeliveryError::Fatal(r) if r.contains("SMTP_HOST")),
            "{err:?}"
        );
        let sink = SmtpSink::start().await.unwrap();
        let err = smtp_pagers(sink.port())
            .email("not an address", &page(), "warroom-INC-7-page")
            .await
            .unwrap_err();
        assert!(matches!(err, DeliveryError::Fatal(_)), "{err:?}");
        assert!(sink.messages().is_empty());
    }

    /// The body of a raw message, undoing `quoted-printable` (what lettre picks for mostly
    /// ASCII UTF-8 text), as UTF-8.
    fn decoded_body(data: &str) -> String {
        let (headers, body) = data.split_once("\r\n\r\n").expect("headers and a body");
        let headers = headers.to_ascii_lowercase();
        if !headers.contains("content-transfer-encoding: quoted-printable") {
            assert!(
                headers.contains("content-transfer-encoding: 7bit")
                    || headers.contains("content-transfer-encoding: 8bit"),
                "unexpected encoding: {headers}"
            );
            return body.to_string();
        }
        let mut out = Vec::new();
        let bytes = body.replace("=\r\n", "").into_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).expect("a =XX escape"));
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).expect("a UTF-8 body")
    }

    /// The value of header `name` in a raw message (first match, unfolded).
    fn header_value(data: &str, name: &str) -> Option<String> {
        let (headers, _) = data.split_once("\r\n\r\n")?;
        let unfolded = headers.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.split("\r\n").find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    #[tokio::test]
    async fn send_mail_sends_one_utf8_message_to_one_recipient() {
        let sink = SmtpSink::start().await.unwrap();
        let pagers = smtp_pagers(sink.port());
        assert!(pagers.smtp_configured());
        assert!(!Pagers::new(PagingSettings::default()).smtp_configured());
        let body = "Résumé de l'incident INC-7 — la base est revenue ✅\nDurée : 42 min\n";
        pagers
            .send_mail(
                " Ana Lopes <ana@example.com> ",
                "Postmortem: INC-7\ndb down",
                body,
                "warroom-INC-7-customer email/1",
            )
            .await
            .unwrap();
        let mails = sink.messages();
        assert_eq!(mails.len(), 1);
        let mail = &mails[0];
        assert_eq!(mail.from, "warroom@example.com");
        assert_eq!(mail.to, ["ana@example.com"]);
        assert_eq!(
            header_value(&mail.data, "Subject").as_deref(),
            Some("Postmortem: INC-7 db down")
        );
        assert_eq!(
            header_value(&mail.data, "Message-ID").as_deref(),
            Some("<warroom-INC-7-customer-email-1@example.com>"),
            "{}",
            mail.data
        );
        assert_eq!(
            header_value(&mail.data, "MIME-Version").as_deref(),
            Some("1.0")
        );
        assert!(header_value(&mail.data, "Date").is_some(), "{}", mail.data);
        assert!(
            mail.data
                .to_ascii_lowercase()
                .contains("content-type: text/plain; charset=utf-8"),
            "{}",
            mail.data
        );
        // The SMTP framing adds a line break at the end.
        assert_eq!(
            decoded_body(&mail.data).replace("\r\n", "\n").trim_end(),
            body.trim_end(),
            "{}",
            mail.data
        );
    }

    #[test]
    fn message_ids_are_well_formed() {
        assert_eq!(
            message_id("warroom-INC-7-1-0-senior", "acme.test"),
            "<warroom-INC-7-1-0-senior@acme.test>"
        );
        assert_eq!(message_id("a b<c>@d..e", "x.org"), "<a-b-c--d--e@x.org>");
        assert_eq!(message_id("", "x.org"), "<warroom@x.org>");
    }

    #[tokio::test]
    async fn send_mail_refuses_what_it_cannot_send() {
        let sink = SmtpSink::start().await.unwrap();
        let pagers = smtp_pagers(sink.port());
        let err = pagers
            .send_mail("not an address", "s", "b", "id")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DeliveryError::Fatal(r) if r.contains("not an address")),
            "{err:?}"
        );
        assert!(sink.messages().is_empty());
        let err = Pagers::new(PagingSettings::default())
            .send_mail("ok@example.com", "s", "b", "id")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DeliveryError::Fatal(r) if r.contains("SMTP_HOST")),
            "{err:?}"
        );
        sink.fail_next(1);
        let err = pagers
            .send_mail("ok@example.com", "s", "b", "id")
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
    }

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

    #[test]
    fn email_texts() {
        let mut p = page();
        p.title = "db\ndown".into();
        assert_eq!(email_subject(&p), "[P0] INC-7 paged: db down");
        let body = email_body(&page());
        assert!(body.contains("War room:    #inc-7-db-down"));
        assert!(body.contains("Declared at: 2024-05-01 12:00 UTC"));
        assert!(body.contains("escalation step 2"));
    }
}
