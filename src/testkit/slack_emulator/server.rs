//! The HTTP side: one fallback handler that reads and records every request, routes it by
//! path to a sink (`/api/`, `/response/`, `/hook/`, `/health/`, `/upload/`), checks the Web
//! API's token, and turns the answer into a response.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State as AxumState};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::outcome::{Outcome, Payload};
use super::params::{parse_params, truthy};
use super::recorded::{CallKind, RecordedCall};
use super::sinks::hook_item_id;
use super::stalls::{stall_target, StallPoint};
use super::Shared;

/// Largest request body read; bigger bodies are recorded as unreadable.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The one axum handler. The work runs in its own task so that a call is
/// still recorded when its client gives up (say, during injected latency).
pub(super) async fn handle(AxumState(shared): AxumState<Arc<Shared>>, req: Request) -> Response {
    match tokio::spawn(process(shared, req)).await {
        Ok(outcome) => outcome.into_response(),
        Err(e) => Outcome::json(
            500,
            json!({"ok": false, "error": format!("emulator_bug: {e}")}),
        )
        .into_response(),
    }
}

/// Records the request and works out the answer.
pub(super) async fn process(shared: Arc<Shared>, req: Request) -> Outcome {
    let at = Instant::now();
    let seq = {
        let mut st = shared.lock();
        let seq = st.next_seq;
        st.next_seq += 1;
        seq
    };
    let (parts, body) = req.into_parts();
    let (body, body_error) = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => (b, None),
        Err(e) => (Bytes::new(), Some(e.to_string())),
    };
    let path = collapse_slashes(parts.uri.path());
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let content_type = header_value(&headers, "content-type").unwrap_or_default();
    let mut params = parse_params(parts.uri.query().unwrap_or_default(), &body, content_type).await;
    if let Some(e) = body_error {
        params.insert(
            "_unparsed".into(),
            Value::String(format!("unreadable body: {e}")),
        );
    }

    let trimmed = path.trim_matches('/');
    let (head, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let stall_target = stall_target(head, rest, trimmed);
    let held_after = shared
        .stalls
        .hold(&stall_target, &params, StallPoint::BeforeActing)
        .await;
    let mut fault = None;
    let (kind, method, outcome) = match head {
        "api" => {
            let delay = shared.lock().latency;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let auth = header_value(&headers, "authorization");
            let outcome = api(&shared, rest, &params, auth, &mut fault);
            (CallKind::Api, rest.to_string(), outcome)
        }
        "response" => {
            let id = rest.split_once('/').map_or(rest, |(id, _)| id);
            let outcome = shared.lock().respond(rest, &params);
            (CallKind::Response, id.to_string(), outcome)
        }
        "hook" => {
            // `/hook/<name>/<anything>`: recorded under <name>; faults injected for
            // `hook/<name>` (see `fail_next`) apply here too.
            let (name, sub_path) = rest.split_once('/').unwrap_or((rest, ""));
            if !sub_path.is_empty() {
                params.insert("_path".into(), Value::String(sub_path.to_string()));
            }
            let injected = shared
                .lock()
                .take_fault(&format!("hook/{name}"), &params, &mut fault);
            // Answers like a typical API that creates something: 200 with an id.
            let outcome = injected.unwrap_or_else(|| {
                if parts.method == http::Method::GET {
                    return shared.lock().hook_collection(name, sub_path);
                }
                let id = hook_item_id(&parts.method, sub_path, seq);
                Outcome::json(200, json!({"ok": true, "id": id}))
            });
            let succeeded = (200..300).contains(&outcome.status);
            let lost = shared
                .lock()
                .lose_answer(&format!("hook/{name}"), succeeded, &mut fault);
            let outcome = if lost {
                Outcome::json(500, json!({"ok": false, "error": "fatal_error"}))
            } else {
                outcome
            };
            (CallKind::Hook, name.to_string(), outcome)
        }
        "health" => {
            // A service's health endpoint (hotfix tracking): answers what `set_health` says.
            let answer = shared.lock().health.get(rest).cloned();
            let outcome = match answer {
                Some((status, body)) => Outcome::json(status, body),
                None => Outcome::json(404, json!({"status": "unknown service"})),
            };
            (CallKind::Other, trimmed.to_string(), outcome)
        }
        "upload" => {
            let len = body.len();
            shared.lock().uploads.insert(rest.to_string(), body.clone());
            let outcome = Outcome {
                status: 200,
                retry_after: None,
                body: Payload::Text(format!("OK - {len}")),
            };
            (CallKind::Other, trimmed.to_string(), outcome)
        }
        _ => (
            CallKind::Other,
            trimmed.to_string(),
            Outcome::json(404, json!({"ok": false, "error": "unknown_path"})),
        ),
    };

    let call = RecordedCall {
        kind,
        method,
        http_method: parts.method.as_str().to_string(),
        params: Value::Object(params),
        headers,
        body: body.clone(),
        status: outcome.status,
        response: outcome.recorded_body(),
        fault,
        at,
        seq,
    };
    {
        let mut st = shared.lock();
        let pos = st.calls.partition_point(|c| c.seq < seq);
        st.calls.insert(pos, call);
    }
    if held_after {
        shared.stalls.hold_answer(&stall_target).await;
    }
    outcome
}

/// A Web API call: faults first, then auth, then the method itself.
pub(super) fn api(
    shared: &Shared,
    method: &str,
    params: &Map<String, Value>,
    authorization: Option<&str>,
    fault: &mut Option<String>,
) -> Outcome {
    let mut st = shared.lock();
    if let Some(outcome) = st.take_fault(method, params, fault) {
        return outcome;
    }
    let bearer = authorization.and_then(|a| {
        a.get(..7)
            .filter(|p| p.eq_ignore_ascii_case("bearer "))
            .map(|_| Value::String(a[7..].trim().to_string()))
    });
    let token = bearer.or_else(|| params.get("token").cloned());
    if !truthy(token.as_ref()) {
        return Outcome::json(200, json!({"ok": false, "error": "not_authed"}));
    }
    if token.as_ref().and_then(Value::as_str) != Some(shared.token.as_str()) {
        return Outcome::json(200, json!({"ok": false, "error": "invalid_auth"}));
    }
    let answer = st.call_method(&shared.base, method, params);
    if st.lose_answer(method, answer.get("ok") == Some(&Value::Bool(true)), fault) {
        return Outcome::json(500, json!({"ok": false, "error": "fatal_error"}));
    }
    Outcome::json(200, answer)
}

fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub(super) fn collapse_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c);
    }
    out
}
