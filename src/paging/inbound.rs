//! `POST /webhooks/pagerduty`: PagerDuty v3 webhooks, so an acknowledgement on a phone stops
//! warroom's escalation too. Signed with `X-PagerDuty-Signature: v1=<hex HMAC-SHA256>` (one or
//! more, comma-separated, for secret rotation); the secret is `PAGERDUTY_WEBHOOK_SECRET`.

use axum::body::Bytes;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde::Deserialize;
use sha2::Sha256;

use super::incident_from_dedup_key;
use crate::commands::{self, CommandError, IncidentRef};
use crate::context::AppContext;
use crate::core::Command;
use crate::http::AppError;

/// The PagerDuty webhook's state: the shared context and the webhook's signing secret.
#[derive(Clone)]
pub struct PagerDutyWebhookState {
    pub ctx: AppContext,
    /// `PAGERDUTY_WEBHOOK_SECRET`; without it the webhook answers 401.
    pub secret: Option<secrecy::SecretString>,
}

pub fn router<S>() -> Router<S>
where
    PagerDutyWebhookState: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new().route("/webhooks/pagerduty", post(pagerduty))
}

/// True when one of the `v1=` signatures in `header` is the HMAC of `body` with `secret`.
pub fn signature_matches(secret: &[u8], body: &[u8], header: &str) -> bool {
    header
        .split(',')
        .filter_map(|s| s.trim().strip_prefix("v1="))
        .filter_map(|hex_sig| hex::decode(hex_sig).ok())
        .any(|sig| {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
                return false;
            };
            mac.update(body);
            // `verify_slice` compares in constant time.
            mac.verify_slice(&sig).is_ok()
        })
}

#[derive(Deserialize)]
struct Delivery {
    event: Event,
}

#[derive(Deserialize)]
struct Event {
    id: String,
    event_type: String,
    #[serde(default)]
    agent: Option<serde_json::Value>,
    #[serde(default)]
    data: serde_json::Value,
}

async fn pagerduty(
    State(state): State<PagerDutyWebhookState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let Some(secret) = &state.secret else {
        return Err(AppError::Unauthorized(
            "PagerDuty webhooks are not configured (PAGERDUTY_WEBHOOK_SECRET)",
        ));
    };
    let header = headers
        .get("x-pagerduty-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !signature_matches(secret.expose_secret().as_bytes(), &body, header) {
        return Err(AppError::Unauthorized("invalid PagerDuty signature"));
    }
    let delivery: Delivery = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("malformed PagerDuty webhook: {e}")))?;
    let event = delivery.event;
    if event.event_type != "incident.acknowledged" {
        return Ok(StatusCode::OK.into_response());
    }
    // Only warroom's own PagerDuty incidents: the dedup key warroom triggered with, exactly.
    // A title that mentions `INC-7` proves nothing (anyone can write one).
    let number = event
        .data
        .get("incident_key")
        .and_then(|k| k.as_str())
        .and_then(incident_from_dedup_key);
    let Some(number) = number else {
        return Ok(StatusCode::OK.into_response());
    };
    let who = event
        .agent
        .as_ref()
        .and_then(|a| a.get("summary"))
        .and_then(|s| s.as_str())
        .unwrap_or("someone");
    let actor = format!("PagerDuty ({who})");
    let result = commands::run_command(
        &state.ctx,
        IncidentRef::Number(number),
        Command::Acknowledge,
        &actor,
        Some(format!("pagerduty:event:{}", event.id)),
    )
    .await;
    match result {
        Ok(_) | Err(CommandError::Rejected(_)) => Ok(StatusCode::OK.into_response()),
        Err(CommandError::Store(e)) => Err(AppError::Internal(anyhow::anyhow!("{e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_any_matching_v1_signature() {
        let body = br#"{"event":{}}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(body);
        let good = hex::encode(mac.finalize().into_bytes());
        assert!(signature_matches(
            b"secret",
            body,
            &format!("v1=deadbeef,v1={good}")
        ));
        assert!(!signature_matches(b"other", body, &format!("v1={good}")));
        assert!(!signature_matches(
            b"secret",
            b"tampered",
            &format!("v1={good}")
        ));
        assert!(!signature_matches(b"secret", body, ""));
        assert!(!signature_matches(b"secret", body, &format!("v2={good}")));
    }
}
