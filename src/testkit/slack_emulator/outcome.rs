//! An answer of the emulator: HTTP status, optional `Retry-After`, and a JSON or plain-text
//! body, as recorded and as sent.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;

pub(super) const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// An answer: status, optional `Retry-After`, body.
pub(super) struct Outcome {
    pub(super) status: u16,
    pub(super) retry_after: Option<u64>,
    pub(super) body: Payload,
}

pub(super) enum Payload {
    Json(Value),
    Text(String),
}

impl Outcome {
    pub(super) fn json(status: u16, body: Value) -> Self {
        Outcome {
            status,
            retry_after: None,
            body: Payload::Json(body),
        }
    }

    pub(super) fn recorded_body(&self) -> Value {
        match &self.body {
            Payload::Json(v) => v.clone(),
            Payload::Text(t) => Value::String(t.clone()),
        }
    }

    pub(super) fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut headers = HeaderMap::new();
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        let (content_type, body) = match self.body {
            Payload::Json(v) => (
                JSON_CONTENT_TYPE,
                serde_json::to_vec(&v).unwrap_or_default(),
            ),
            Payload::Text(t) => (TEXT_CONTENT_TYPE, t.into_bytes()),
        };
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        (status, headers, body).into_response()
    }
}
