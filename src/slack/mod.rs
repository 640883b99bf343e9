//! The Slack adapter: verifies and translates Slack's requests into commands, and carries out
//! effects with the Web API. No rules live here.

pub mod api;
pub mod channel_name;
pub mod effects;
pub mod limits;
pub mod render;

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;

use crate::commands::{self, CommandError, Handled, IncidentRef, OpenArgs, Request};
use crate::context::AppContext;
use crate::core::{Command, Platform};
use crate::http::AppError;

/// Longest a handler may take before it answers anyway (Slack gives up at 3 s).
const ANSWER_WITHIN: Duration = Duration::from_millis(2500);

/// The Slack adapter's state: the shared context and the verifier of Slack's signatures.
#[derive(Clone)]
pub struct SlackState {
    pub ctx: AppContext,
    /// The Web API (modals are opened at once, not by a job), when `SLACK_BOT_TOKEN` is set.
    pub api: Option<api::SlackApi>,
    pub verifier: Option<SlackEventSignatureVerifier>,
}

/// `/slack/commands`, `/slack/interactions`, `/slack/events`.
pub fn router<S>() -> Router<S>
where
    SlackState: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/slack/commands", post(slash_command))
        .route("/slack/interactions", post(interaction))
        .route("/slack/events", post(event))
}

/// Checks Slack's v0 signature and timestamp on the raw body, before anything else.
fn verify<'a>(
    state: &SlackState,
    headers: &HeaderMap,
    body: &'a [u8],
) -> Result<&'a str, AppError> {
    let Some(verifier) = &state.verifier else {
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

/// Slack's periodic certificate check: `ssl_check=1` and no `command`. It is answered 200 with
/// an empty body before signature verification (Slack's own Bolt does not verify it either),
/// which is safe because it changes nothing; a body that also carries a command is not one.
fn is_ssl_check(body: &[u8]) -> bool {
    let mut ssl_check = false;
    for (key, value) in url::form_urlencoded::parse(body) {
        match key.as_ref() {
            "command" => return false,
            "ssl_check" => ssl_check = value == "1",
            _ => {}
        }
    }
    ssl_check
}

fn ephemeral(text: impl Into<String>) -> Response {
    let text = limits::truncate(&text.into(), limits::TEXT_ADVISED);
    Json(json!({ "response_type": "ephemeral", "text": text })).into_response()
}

async fn slash_command(
    State(state): State<SlackState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    if is_ssl_check(&body) {
        return Ok(StatusCode::OK.into_response());
    }
    let body = verify(&state, &headers, &body)?;
    let cmd: SlashCommand = serde_urlencoded::from_str(body)
        .map_err(|e| AppError::BadRequest(format!("malformed slash command: {e}")))?;
    if cmd.user_id.is_empty() || cmd.channel_id.is_empty() {
        return Err(AppError::BadRequest(
            "malformed slash command: user_id and channel_id are required".into(),
        ));
    }
    let name = if cmd.command.starts_with('/') {
        cmd.command.clone()
    } else {
        state.ctx.config.slack.command.clone()
    };
    let text = unescape(&cmd.text);
    let request = match commands::parse(&text, &parse_mention) {
        Ok(r) => r,
        Err(problem) => return Ok(ephemeral(render::usage_error(&name, &problem))),
    };
    let inbound_key = cmd
        .trigger_id
        .as_ref()
        .filter(|t| !t.is_empty())
        .map(|t| format!("slack:command:{t}"));
    let work = async {
        match request {
            Request::Help => Ok(ephemeral(render::help(&name))),
            Request::List => match commands::active_incidents(&state.ctx).await {
                Ok(list) => Ok(ephemeral(render::incident_list(
                    &list,
                    state.ctx.clock.now(),
                ))),
                Err(e) => Ok(command_failed(&name, e)),
            },
            Request::OpenForm => Ok(open_form(&state, &cmd)),
            Request::ResolveForm => resolve_form(&state, &cmd, &name).await,
            Request::Open { severity, title } => {
                let args = OpenArgs {
                    severity,
                    title,
                    description: String::new(),
                    platform: Platform::Slack,
                    user: cmd.user_id.clone(),
                    channel: cmd.channel_id.clone(),
                    reply_to: cmd.response_url.clone().filter(|u| !u.is_empty()),
                    inbound_key,
                };
                match commands::open_incident(&state.ctx, args).await {
                    Ok(Some(incident)) => Ok(ephemeral(render::opening_ack(&incident))),
                    Ok(None) => Ok(ephemeral("That request was already handled.")),
                    Err(e) => Ok(command_failed(&name, e)),
                }
            }
            Request::Timeline => timeline(&state, &cmd, &name).await,
            Request::Acknowledge { incident } => {
                let target = match incident {
                    Some(n) => IncidentRef::Number(n),
                    None => {
                        let in_war_room = {
                            let mut conn = state.ctx.store.acquire().await.map_err(internal)?;
                            crate::store::incident_number_by_war_room(&mut conn, &cmd.channel_id)
                                .await
                                .map_err(internal)?
                        };
                        match in_war_room {
                            Some(n) => IncidentRef::Number(n),
                            None => match commands::newest_unacknowledged(&state.ctx).await {
                                Ok(Some(n)) => IncidentRef::Number(n),
                                Ok(None) => {
                                    return Ok(ephemeral(
                                        "No incident is waiting for an acknowledgement.",
                                    ))
                                }
                                Err(e) => return Ok(command_failed(&name, e)),
                            },
                        }
                    }
                };
                let result = commands::run_command(
                    &state.ctx,
                    target,
                    Command::Acknowledge,
                    &cmd.user_id,
                    inbound_key,
                )
                .await;
                Ok(handled_reply(&name, result))
            }
            Request::Incident(command) => {
                let result = commands::run_command(
                    &state.ctx,
                    IncidentRef::WarRoom(cmd.channel_id.clone()),
                    command,
                    &cmd.user_id,
                    inbound_key,
                )
                .await;
                Ok(handled_reply(&name, result))
            }
        }
    };
    match tokio::time::timeout(ANSWER_WITHIN, work).await {
        Ok(result) => result,
        Err(_) => Ok(ephemeral(
            ":hourglass: warroom is slow to answer. Check `/incident list` in a moment before trying again.",
        )),
    }
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(anyhow::anyhow!("{e}"))
}

/// The ephemeral answer to a command on an incident.
fn handled_reply(name: &str, result: Result<Handled, CommandError>) -> Response {
    match result {
        Ok(Handled::Done { outcome, .. }) if outcome.reply.is_empty() => ephemeral("Done."),
        Ok(Handled::Done { outcome, .. }) => ephemeral(format!(
            ":white_check_mark: {}",
            render::core_text(&outcome.reply)
        )),
        Ok(Handled::Duplicate) => ephemeral("That request was already handled."),
        Ok(Handled::NoIncident) => ephemeral(render::not_a_war_room(name)),
        Err(e) => command_failed(name, e),
    }
}

fn command_failed(command: &str, e: CommandError) -> Response {
    match e {
        CommandError::Rejected(reason) => ephemeral(format!(
            ":warning: {}\n`{command} help` lists the commands.",
            render::core_text(&reason)
        )),
        CommandError::Store(e) => {
            tracing::error!(error = %e, "a command failed");
            ephemeral(":x: warroom could not save that (internal error). Please try again.")
        }
    }
}

/// `/incident timeline`: the first part in the answer, the rest as follow-up replies, in order
/// (one chained job each): through the `response_url` when it takes them all (5 posts at
/// most), else, or for a retry past its share, through `chat.postEphemeral` to the same person
/// in the war room.
async fn timeline(
    state: &SlackState,
    cmd: &SlashCommand,
    name: &str,
) -> Result<Response, AppError> {
    let found =
        commands::incident_with_timeline(&state.ctx, IncidentRef::WarRoom(cmd.channel_id.clone()))
            .await;
    let (incident, events) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(ephemeral(render::not_a_war_room(name))),
        Err(e) => return Ok(command_failed(name, e)),
    };
    let page = crate::resolution::links(&state.ctx, &incident).incident_page;
    let mut chunks =
        render::timeline(&incident, &events, TIMELINE_CHUNK, page.as_deref()).into_iter();
    let first = chunks.next().unwrap_or_default();
    let rest: Vec<String> = chunks.collect();
    if !rest.is_empty() {
        let fallback = effects::ephemeral_target(&cmd.channel_id, &cmd.user_id);
        let reply_to = cmd
            .response_url
            .clone()
            .filter(|u| !u.is_empty() && rest.len() <= limits::RESPONSE_URL_POSTS)
            .unwrap_or_else(|| fallback.clone());
        effects::enqueue_replies_or(&state.ctx, &reply_to, Some(&fallback), rest)
            .await
            .map_err(internal)?;
    }
    Ok(ephemeral(first))
}

/// Characters per timeline message (Slack shows up to about 4,000 in one).
const TIMELINE_CHUNK: usize = 3500;

/// Bare `/incident open`: the declaration form. `views.open` must happen within 3 s of the
/// trigger, so it is sent right away (a trigger cannot be replayed later anyway).
fn open_form(state: &SlackState, cmd: &SlashCommand) -> Response {
    let (Some(api), Some(trigger)) = (state.api.clone(), cmd.trigger_id.clone()) else {
        return ephemeral(render::usage_error(
            &state.ctx.config.slack.command,
            "`open` needs a severity and a title, e.g. `open P0 checkout is down`",
        ));
    };
    let view = render::open_modal(&cmd.channel_id);
    tokio::spawn(async move {
        if let Err(e) = api.open_view(&trigger, view).await {
            tracing::warn!(error = %e, "could not open the declaration form");
        }
    });
    StatusCode::OK.into_response()
}

/// Bare `/incident resolve` in a war room: the resolution form.
async fn resolve_form(
    state: &SlackState,
    cmd: &SlashCommand,
    name: &str,
) -> Result<Response, AppError> {
    let found =
        commands::incident_with_timeline(&state.ctx, IncidentRef::WarRoom(cmd.channel_id.clone()))
            .await;
    let incident = match found {
        Ok(Some((incident, _))) => incident,
        Ok(None) => return Ok(ephemeral(render::not_a_war_room(name))),
        Err(e) => return Ok(command_failed(name, e)),
    };
    if !incident.status.is_active() {
        return Ok(ephemeral(format!(
            ":warning: {} was already resolved: nothing to do.",
            incident.key()
        )));
    }
    let (Some(api), Some(trigger)) = (state.api.clone(), cmd.trigger_id.clone()) else {
        return Ok(ephemeral(format!(
            ":warning: Describe the resolution: `{name} resolve &lt;summary&gt;`"
        )));
    };
    let view = render::resolve_modal(&incident);
    tokio::spawn(async move {
        if let Err(e) = api.open_view(&trigger, view).await {
            tracing::warn!(error = %e, "could not open the resolution form");
        }
    });
    Ok(StatusCode::OK.into_response())
}

/// Slack escapes `&`, `<` and `>` in text it sends; warroom stores the plain text and escapes
/// again on the way out.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// `<@U123>`, `<@U123|name>` or a bare `U123` id.
pub fn parse_mention(token: &str) -> Option<String> {
    let inner = token
        .strip_prefix("<@")
        .and_then(|t| t.strip_suffix('>'))
        .map(|t| t.split('|').next().unwrap_or(t))
        .unwrap_or(token);
    let valid = inner.len() >= 3
        && (inner.starts_with('U') || inner.starts_with('W'))
        && inner
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    valid.then(|| inner.to_string())
}

#[derive(Deserialize)]
struct InteractionForm {
    payload: String,
}

#[derive(Deserialize)]
struct Interaction {
    #[serde(rename = "type")]
    kind: String,
    user: Option<InteractionUser>,
    #[serde(default)]
    actions: Vec<Action>,
    response_url: Option<String>,
    trigger_id: Option<String>,
    view: Option<serde_json::Value>,
    container: Option<serde_json::Value>,
    channel: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct InteractionUser {
    id: String,
}

#[derive(Deserialize)]
struct Action {
    action_id: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    action_ts: Option<String>,
}

async fn interaction(
    State(state): State<SlackState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let body = verify(&state, &headers, &body)?;
    let form: InteractionForm = serde_urlencoded::from_str(body)
        .map_err(|e| AppError::BadRequest(format!("malformed interaction: {e}")))?;
    let payload: Interaction = serde_json::from_str(&form.payload)
        .map_err(|e| AppError::BadRequest(format!("malformed interaction payload: {e}")))?;
    let Some(user) = payload.user.as_ref().map(|u| u.id.clone()) else {
        return Err(AppError::BadRequest(
            "interaction payload has no user".into(),
        ));
    };
    match payload.kind.as_str() {
        "block_actions" => {
            for action in &payload.actions {
                block_action(&state, &payload, action, &user).await?;
            }
            Ok(StatusCode::OK.into_response())
        }
        "view_submission" => view_submission(&state, &payload, &user).await,
        _ => Ok(StatusCode::OK.into_response()),
    }
}

async fn block_action(
    state: &SlackState,
    payload: &Interaction,
    action: &Action,
    user: &str,
) -> Result<(), AppError> {
    let value = action.value.as_deref().unwrap_or_default();
    let (number, command) = if action.action_id.starts_with(render::ACTION_CHECKLIST) {
        let parsed = value
            .split_once(':')
            .and_then(|(n, p)| Some((n.parse::<i64>().ok()?, p.parse::<i64>().ok()?)));
        let Some((number, position)) = parsed else {
            return Err(AppError::BadRequest(format!(
                "checklist button with value `{value}`"
            )));
        };
        (number, Command::ToggleChecklistItem { position })
    } else if action.action_id == render::ACTION_RESOLVE {
        // Offer the resolution form (the trigger is only valid for 3 s: no durable job).
        let incident = match value.parse::<i64>() {
            Ok(n) => {
                let mut conn = state.ctx.store.acquire().await.map_err(internal)?;
                crate::store::get_incident(&mut conn, n)
                    .await
                    .map_err(internal)?
            }
            Err(_) => {
                return Err(AppError::BadRequest(format!(
                    "resolve button with value `{value}`"
                )))
            }
        };
        if let (Some(incident), Some(api), Some(trigger)) =
            (incident, state.api.clone(), payload.trigger_id.clone())
        {
            if incident.status.is_active() {
                let view = render::resolve_modal(&incident);
                tokio::spawn(async move {
                    if let Err(e) = api.open_view(&trigger, view).await {
                        tracing::warn!(error = %e, "could not open the resolution form");
                    }
                });
            }
        }
        return Ok(());
    } else if action.action_id == render::ACTION_ACKNOWLEDGE {
        let Ok(number) = value.parse::<i64>() else {
            return Err(AppError::BadRequest(format!(
                "acknowledge button with value `{value}`"
            )));
        };
        (number, Command::Acknowledge)
    } else {
        return Ok(());
    };
    let message_ts = payload
        .container
        .as_ref()
        .and_then(|c| c.get("message_ts"))
        .and_then(|t| t.as_str())
        .unwrap_or_default();
    let inbound_key = action
        .action_ts
        .as_ref()
        .map(|ts| format!("slack:action:{user}:{message_ts}:{}:{ts}", action.action_id));
    let result = commands::run_command(
        &state.ctx,
        IncidentRef::Number(number),
        command,
        user,
        inbound_key,
    )
    .await;
    let problem = match result {
        Ok(Handled::Done { .. }) | Ok(Handled::Duplicate) => None,
        Ok(Handled::NoIncident) => Some(format!("INC-{number} does not exist")),
        Err(CommandError::Rejected(reason)) => Some(reason),
        Err(CommandError::Store(e)) => return Err(internal(e)),
    };
    if let (Some(problem), Some(url)) = (problem, payload.response_url.clone()) {
        effects::enqueue_replies(
            &state.ctx,
            &url,
            vec![format!(":warning: {}", render::core_text(&problem))],
        )
        .await
        .map_err(internal)?;
    }
    Ok(())
}

async fn view_submission(
    state: &SlackState,
    payload: &Interaction,
    user: &str,
) -> Result<Response, AppError> {
    let Some(view) = &payload.view else {
        return Err(AppError::BadRequest(
            "view_submission without a view".into(),
        ));
    };
    match view.get("callback_id").and_then(|c| c.as_str()) {
        Some(render::OPEN_MODAL) => {}
        Some(render::RESOLVE_MODAL) => return resolve_submission(state, view, user).await,
        _ => return Ok(StatusCode::OK.into_response()),
    }
    let field = |block: &str| view_field(view, block);
    let mut errors = serde_json::Map::new();
    let title = field("title").unwrap_or_default();
    if let Err(e) = crate::core::clean_title(&title) {
        errors.insert("title".into(), e.to_string().into());
    }
    let severity = field("severity").and_then(|s| s.parse::<crate::core::Severity>().ok());
    if severity.is_none() {
        errors.insert("severity".into(), "choose a severity".into());
    }
    let (Some(severity), true) = (severity, errors.is_empty()) else {
        return Ok(Json(json!({ "response_action": "errors", "errors": errors })).into_response());
    };
    let channel = view
        .get("private_metadata")
        .and_then(|m| m.as_str())
        .filter(|m| !m.is_empty())
        .map(String::from)
        .or_else(|| {
            payload
                .channel
                .as_ref()
                .and_then(|c| c.get("id"))
                .and_then(|c| c.as_str())
                .map(String::from)
        })
        .unwrap_or_default();
    let view_id = view.get("id").and_then(|v| v.as_str()).unwrap_or_default();
    let args = OpenArgs {
        severity,
        title,
        description: field("description").unwrap_or_default(),
        platform: Platform::Slack,
        user: user.to_string(),
        channel: channel.clone(),
        reply_to: (!channel.is_empty()).then(|| effects::ephemeral_target(&channel, user)),
        inbound_key: (!view_id.is_empty()).then(|| format!("slack:view:{view_id}")),
    };
    match commands::open_incident(&state.ctx, args).await {
        Ok(_) => Ok(StatusCode::OK.into_response()),
        Err(CommandError::Rejected(reason)) => Ok(Json(json!({
            "response_action": "errors",
            "errors": { "title": reason }
        }))
        .into_response()),
        Err(CommandError::Store(e)) => Err(internal(e)),
    }
}

/// Reads a modal's input by block id (text, a selected option, or a radio choice).
fn view_field(view: &serde_json::Value, block: &str) -> Option<String> {
    let input = view
        .pointer("/state/values")?
        .get(block)?
        .as_object()?
        .values()
        .next()?;
    input
        .get("value")
        .and_then(|v| v.as_str())
        .or_else(|| {
            input
                .pointer("/selected_option/value")
                .and_then(|v| v.as_str())
        })
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

async fn resolve_submission(
    state: &SlackState,
    view: &serde_json::Value,
    user: &str,
) -> Result<Response, AppError> {
    let number = view
        .get("private_metadata")
        .and_then(|m| m.as_str())
        .and_then(|m| m.parse::<i64>().ok())
        .ok_or_else(|| AppError::BadRequest("resolution form without its incident".into()))?;
    let Some(summary) = view_field(view, "summary") else {
        return Ok(Json(json!({
            "response_action": "errors",
            "errors": { "summary": "a resolution needs a summary" }
        }))
        .into_response());
    };
    let field = |b: &str| view_field(view, b).unwrap_or_default();
    let resolution = crate::core::Resolution {
        summary,
        impact: field("impact"),
        root_cause: field("root_cause"),
        fix: field("fix"),
        pr: field("pr"),
        follow_ups: field("follow_ups")
            .lines()
            .map(|l| {
                l.trim()
                    .trim_start_matches(['-', '*', '•'])
                    .trim()
                    .to_string()
            })
            .filter(|l| !l.is_empty())
            .collect(),
        customer_facing: false,
        resolved_by: String::new(),
    };
    let customer_facing = view_field(view, "customer_facing").map(|v| v == "yes");
    let view_id = view.get("id").and_then(|v| v.as_str()).unwrap_or_default();
    let result = commands::run_command(
        &state.ctx,
        IncidentRef::Number(number),
        Command::Resolve {
            resolution,
            customer_facing,
        },
        user,
        (!view_id.is_empty()).then(|| format!("slack:view:{view_id}")),
    )
    .await;
    match result {
        Ok(_) => Ok(StatusCode::OK.into_response()),
        Err(CommandError::Rejected(reason)) => Ok(Json(json!({
            "response_action": "errors",
            "errors": { "summary": reason }
        }))
        .into_response()),
        Err(CommandError::Store(e)) => Err(internal(e)),
    }
}

async fn event(
    State(state): State<SlackState>,
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
        Some("event_callback") => {
            let Some(event) = envelope.get("event").filter(|e| e.is_object()) else {
                return Err(AppError::BadRequest(
                    "event_callback without an event".into(),
                ));
            };
            let event_id = envelope.get("event_id").and_then(|e| e.as_str());
            reaction_event(&state, event, event_id).await?;
            Ok(StatusCode::OK.into_response())
        }
        Some(_) => Ok(StatusCode::OK.into_response()),
        None => Err(AppError::BadRequest("event has no type".into())),
    }
}

/// `reaction_added` / `reaction_removed` with the timeline emoji in a war room: pin or unpin
/// the message. Anything else is acknowledged and ignored.
async fn reaction_event(
    state: &SlackState,
    event: &serde_json::Value,
    event_id: Option<&str>,
) -> Result<(), AppError> {
    let kind = event
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or_default();
    if kind != "reaction_added" && kind != "reaction_removed" {
        return Ok(());
    }
    let item = event.get("item").filter(|i| i.is_object());
    let str_at = |key: &str| item.and_then(|i| i.get(key)).and_then(|v| v.as_str());
    let (Some(reaction), Some(user), Some(item_type)) = (
        event.get("reaction").and_then(|r| r.as_str()),
        event.get("user").and_then(|u| u.as_str()),
        str_at("type"),
    ) else {
        return Err(AppError::BadRequest(format!(
            "{kind} without reaction, user or item"
        )));
    };
    // Skin tones arrive as `pushpin::skin-tone-2`.
    let reaction = reaction.split("::").next().unwrap_or_default();
    if reaction != state.ctx.config.slack.timeline_emoji || item_type != "message" {
        return Ok(());
    }
    let (Some(channel), Some(ts)) = (str_at("channel"), str_at("ts")) else {
        return Err(AppError::BadRequest(format!(
            "{kind} without item.channel or item.ts"
        )));
    };
    let message = effects::message_ref(channel, ts);
    let command = if kind == "reaction_added" {
        Command::PinMessage { message }
    } else {
        Command::UnpinMessage { message }
    };
    let result = commands::run_command(
        &state.ctx,
        IncidentRef::WarRoom(channel.to_string()),
        command,
        user,
        event_id.map(|id| format!("slack:event:{id}")),
    )
    .await;
    match result {
        Ok(_) | Err(CommandError::Rejected(_)) => Ok(()),
        Err(CommandError::Store(e)) => Err(internal(e)),
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
