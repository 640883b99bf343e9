//! The generic webhook route: a JSON body signed with HMAC-SHA256 (`X-Warroom-Signature`).

use chrono::{SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use reqwest::header::CONTENT_TYPE;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::Sha256;

use super::outbound::{redacted_url, redacted_url_str};
use super::{DeliveryError, PageMessage, Pagers};

/// The header carrying a generic webhook's signature.
pub const SIGNATURE_HEADER: &str = "X-Warroom-Signature";

impl Pagers {
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
}

/// `"sha256=<hex HMAC-SHA256(body, secret)>"`, the value of `X-Warroom-Signature`.
pub fn sign_webhook(secret: &[u8], body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret).expect("HMAC-SHA256 takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn new_delivery_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::super::test_kit::{closed_port, page, receiver, reply};
    use super::super::PagingSettings;
    use super::*;
    use chrono::DateTime;

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
}
