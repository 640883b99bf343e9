//! What the emulator received: one [`RecordedCall`] per request, in order of arrival, and the
//! one-line description the demo and failure messages print.

use std::time::Instant;

use bytes::Bytes;
use serde_json::Value;

use super::params::text_of;

/// Which sink of the emulator a request reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// `/api/{method}`: a Web API call.
    Api,
    /// `/response/{id}`: a POST to a `response_url`.
    Response,
    /// `/hook/{name}`: an outgoing webhook.
    Hook,
    /// Anything else, including `/upload/{file_id}` and unknown paths.
    Other,
}

/// One request the emulator received, with the answer it gave.
#[derive(Clone, Debug)]
pub struct RecordedCall {
    /// Which sink the request reached.
    pub kind: CallKind,
    /// For [`CallKind::Api`] the Web API method (`chat.postMessage`); for
    /// [`CallKind::Response`] and [`CallKind::Hook`] the id after the prefix;
    /// for [`CallKind::Other`] the whole path without its leading slash
    /// (`upload/F00000001`).
    pub method: String,
    /// The HTTP verb (`POST`, `GET`, ...).
    pub http_method: String,
    /// Query-string, JSON, form and multipart parameters merged into one
    /// object. `blocks`, `attachments`, `view`, `users`, `files` and
    /// `metadata` given as JSON strings are parsed. A body that could not be
    /// parsed leaves its text under `_unparsed`.
    pub params: Value,
    /// Request headers, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The raw request body (to check signatures over the exact bytes).
    pub body: Bytes,
    /// HTTP status of the answer.
    pub status: u16,
    /// Body of the answer (a JSON string for plain-text answers).
    pub response: Value,
    /// The injected fault that produced the answer, if any: `"injected 500"`,
    /// `"injected 429"` or `"injected name_taken"`.
    pub fault: Option<String>,
    /// When the request arrived.
    pub at: Instant,
    /// Order of arrival: 0, 1, 2, ...
    pub seq: u64,
}

impl RecordedCall {
    /// True when the answer was HTTP 200 with `"ok": true`.
    pub fn ok(&self) -> bool {
        self.status == 200 && self.response.get("ok") == Some(&Value::Bool(true))
    }

    /// A parameter, if present.
    pub fn param(&self, key: &str) -> Option<&Value> {
        self.params.get(key)
    }

    /// A parameter, if present and a string.
    pub fn param_str(&self, key: &str) -> Option<&str> {
        self.params.get(key).and_then(Value::as_str)
    }

    /// The value of a request header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `error` of the answer, if it has one.
    pub fn error(&self) -> Option<&str> {
        self.response.get("error").and_then(Value::as_str)
    }

    /// One line describing the call, for transcripts and failure messages,
    /// with its time relative to `t0`.
    pub fn describe(&self, t0: Instant) -> String {
        let mut bits = Vec::new();
        for key in ["channel", "name", "users", "user", "ts"] {
            if let Some(v) = self.params.get(key) {
                bits.push(format!("{key}={}", short(v, 40)));
            }
        }
        if let Some(text @ Value::String(_)) = self.params.get("text") {
            bits.push(format!("text={}", short(text, 60)));
        }
        let outcome = if self.ok() {
            "ok".to_string()
        } else {
            self.error().unwrap_or_default().to_string()
        };
        let kind = match self.kind {
            CallKind::Api => "api",
            CallKind::Response => "response",
            CallKind::Hook => "hook",
            CallKind::Other => "other",
        };
        let fault = self
            .fault
            .as_ref()
            .map(|f| format!(" [{f}]"))
            .unwrap_or_default();
        format!(
            "+{:7.3}s {kind} {} {} -> {} {outcome}{fault}",
            self.at.saturating_duration_since(t0).as_secs_f64(),
            self.method,
            bits.join(" "),
            self.status,
        )
    }
}

/// A short, whitespace-collapsed rendering of a value for [`RecordedCall::describe`].
fn short(v: &Value, n: usize) -> String {
    let text = match v {
        Value::Array(items) => items.iter().map(text_of).collect::<Vec<_>>().join(","),
        other => text_of(other),
    };
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let count = collapsed.chars().count();
    let cut = if count <= n {
        collapsed
    } else {
        let mut s: String = collapsed.chars().take(n.saturating_sub(3)).collect();
        s.push_str("...");
        s
    };
    format!("{cut:?}")
}
