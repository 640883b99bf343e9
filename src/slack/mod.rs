//! The Slack adapter: verifies and translates Slack's requests into commands, and carries out
//! effects with the Web API. No rules live here.

pub mod api;
pub mod effects;
pub mod render;

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;

use crate::commands::{self, CommandError, OpenArgs, Request};
use crate::core::Platform;
use crate::http::{AppError, AppState};

/// Longest a handler may take before it answers anyway (Slack gives up at 3 s).
const ANSWER_WITHIN: Duration = Duration::from_millis(2500);

/// `/slack/commands`, `/slack/interactions`, `/slack/events`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/slack/commands", post(slash_command))
        .route("/slack/interactions", post(interaction))
        .route("/slack/events", post(event))
}

/// Checks Slack's v0 signature and timestamp on the raw body, before anything else.
fn verify<'a>(state: &AppState, headers: &HeaderMap, body: &'a [u8]) -> Result<&'a str, AppError> {
    let Some(verifier) = &state.slack_verifier else {
        return Err(AppError::Unauthorized(
            "Slack is not configured on this server",
        ));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(signature), Some(timestamp)) = (
        header(SlackEventSignatureVerifier::SLACK_SIGNED_HASH_HEADER),
        header(SlackEventSignatureVerifier::SLACK_SIGNED_TIMESTAMP),
    ) else {
        return Err(AppError::Unauthorized("missing Slack signature headers"));
    };
    let body =
        std::str::from_utf8(body).map_err(|_| AppError::Unauthorized("body is not UTF-8"))?;
    verifier.verify(signature, body, timestamp).map_err(|e| {
        tracing::info!(error = %e.to_string().lines().next().unwrap_or_default(), "rejected a Slack request");
        AppError::Unauthorized("invalid Slack signature or stale timestamp")
    })?;
    Ok(body)
}

/// The fields of a slash-command request that warroom uses.
#[derive(Debug, Deserialize)]
struct SlashCommand {
    command: String,
    #[serde(default)]
    text: String,
    user_id: String,
    channel_id: String,
    #[serde(default)]
    response_url: Option<String>,
    #[serde(default)]
    trigger_id: Option<String>,
}

fn ephemeral(text: impl Into<String>) -> Response {
    Json(json!({ "response_type": "ephemeral", "text": text.into() })).into_response()
}

async fn slash_command(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let body = verify(&state, &headers, &body)?;
    let cmd: SlashCommand = serde_urlencoded::from_str(body)
        .map_err(|e| AppError::BadRequest(format!("malformed slash command: {e}")))?;
    if cmd.user_id.is_empty() || cmd.channel_id.is_empty() {
        return Err(AppError::BadRequest(
            "malformed slash command: user_id and channel_id are required".into(),
        ));
    }
    let name = &state.ctx.config.slack.command;
    let request = match commands::parse(&cmd.text) {
        Ok(r) => r,
        Err(problem) => return Ok(ephemeral(render::usage_error(name, &problem))),
    };
    match request {
        Request::Help => Ok(ephemeral(render::help(name))),
        Request::List => {
            let incidents = commands::active_incidents(&state.ctx).await;
            match incidents {
                Ok(list) => Ok(ephemeral(render::incident_list(
                    &list,
                    state.ctx.clock.now(),
                ))),
                Err(e) => Ok(command_failed(&cmd.command, e)),
            }
        }
        Request::Open { severity, title } => {
            let args = OpenArgs {
                severity,
                title,
                description: String::new(),
                platform: Platform::Slack,
                user: cmd.user_id.clone(),
                channel: cmd.channel_id.clone(),
                reply_to: cmd.response_url.clone().filter(|u| !u.is_empty()),
                inbound_key: cmd
                    .trigger_id
                    .as_ref()
                    .filter(|t| !t.is_empty())
                    .map(|t| format!("slack:command:{t}")),
            };
            match tokio::time::timeout(ANSWER_WITHIN, commands::open_incident(&state.ctx, args)).await {
                Ok(Ok(Some(incident))) => Ok(ephemeral(render::opening_ack(&incident))),
                Ok(Ok(None)) => Ok(ephemeral("That request was already handled.")),
                Ok(Err(e)) => Ok(command_failed(&cmd.command, e)),
                Err(_) => Ok(ephemeral(
                    ":hourglass: warroom is slow to answer. Check `/incident list` in a moment before trying again.",
                )),
            }
        }
    }
}

fn command_failed(command: &str, e: CommandError) -> Response {
    match e {
        CommandError::Rejected(reason) => ephemeral(render::usage_error(command, &reason)),
        CommandError::Store(e) => {
            tracing::error!(error = %e, "a command failed");
            ephemeral(":x: warroom could not save that (internal error). Please try again.")
        }
    }
}

async fn interaction(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let body = verify(&state, &headers, &body)?;
    #[derive(Deserialize)]
    struct Form {
        payload: String,
    }
    let form: Form = serde_urlencoded::from_str(body)
        .map_err(|e| AppError::BadRequest(format!("malformed interaction: {e}")))?;
    let payload: serde_json::Value = serde_json::from_str(&form.payload)
        .map_err(|e| AppError::BadRequest(format!("malformed interaction payload: {e}")))?;
    if payload.get("type").and_then(|t| t.as_str()).is_none() {
        return Err(AppError::BadRequest(
            "interaction payload has no type".into(),
        ));
    }
    Ok(StatusCode::OK.into_response())
}

async fn event(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let body = verify(&state, &headers, &body)?;
    let envelope: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| AppError::BadRequest(format!("malformed event: {e}")))?;
    match envelope.get("type").and_then(|t| t.as_str()) {
        Some("url_verification") => {
            let challenge = envelope
                .get("challenge")
                .and_then(|c| c.as_str())
                .ok_or_else(|| AppError::BadRequest("url_verification without challenge".into()))?;
            Ok(Json(json!({ "challenge": challenge })).into_response())
        }
        Some(_) => Ok(StatusCode::OK.into_response()),
        None => Err(AppError::BadRequest("event has no type".into())),
    }
}

/// Signs a request body the way Slack does (`v0=hex(HMAC-SHA256(secret, "v0:{ts}:{body}"))`).
/// warroom verifies with slack-morphism; this is for the demo and the benchmark, which play
/// the part of Slack.
pub fn sign_request(secret: &str, timestamp: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}
