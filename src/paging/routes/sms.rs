//! The SMS route: short texts through Twilio's REST API.

use secrecy::{ExposeSecret, SecretString};

use super::outbound::check_http_url;
use super::{one_line, truncate_chars, DeliveryError, PageMessage, Pagers};

/// The Twilio REST API base.
pub const DEFAULT_TWILIO_API_URL: &str = "https://api.twilio.com";

/// Twilio SMS bodies are kept to this many characters (two segments).
pub const MAX_SMS_CHARS: usize = 320;

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

impl TwilioSettings {
    /// SMS settings from `get` (which returns trimmed, non-empty values): `None` when none of
    /// the `TWILIO_*` variables is set. See [`super::PagingSettings::from_lookup`].
    pub(super) fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<TwilioSettings>, String> {
        let sid = get("TWILIO_ACCOUNT_SID");
        let token = get("TWILIO_AUTH_TOKEN");
        let from = get("TWILIO_FROM");
        Ok(match (sid, token, from) {
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

impl Pagers {
    /// Whether SMS can be sent (Twilio is configured).
    pub fn sms_configured(&self) -> bool {
        self.settings.twilio.is_some()
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::test_kit::{lookup, page, receiver, reply};
    use super::super::PagingSettings;
    use super::*;
    use axum::http::Method;

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
}
