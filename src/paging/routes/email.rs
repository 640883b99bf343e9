//! The email route: plain-text pages over SMTP through one shared, lazily built transport
//! (also used for customer emails, [`Pagers::send_mail`]).

use std::time::Duration;

use lettre::message::header::{ContentType, MIME_VERSION_1_0};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use super::outbound::error_chain;
use super::{one_line, DeliveryError, PageMessage, Pagers};

/// How long one SMTP command may take.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

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

impl SmtpSettings {
    /// Email settings from `get` (which returns trimmed, non-empty values): `None` when
    /// neither `SMTP_HOST` nor `SMTP_FROM` is set. See [`super::PagingSettings::from_lookup`].
    pub(super) fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<SmtpSettings>, String> {
        let host = get("SMTP_HOST");
        let from = get("SMTP_FROM");
        let others = ["SMTP_PORT", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_TLS"];
        Ok(match (host, from) {
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
                let (username, password) =
                    match (get("SMTP_USERNAME"), get("SMTP_PASSWORD")) {
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
        })
    }
}

pub(super) type SmtpTransport = AsyncSmtpTransport<Tokio1Executor>;

impl Pagers {
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

#[cfg(test)]
mod tests {
    use super::super::test_kit::{closed_port, lookup, page};
    use super::super::PagingSettings;
    use super::*;
    use crate::testkit::smtp_sink::SmtpSink;

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
