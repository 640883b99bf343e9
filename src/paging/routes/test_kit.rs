//! What the routes' unit tests share: an HTTP receiver that records requests and answers
//! from a script, a closed port, a sample page and environment lookups.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap as AxumHeaders, HeaderName, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{DateTime, Utc};

use super::{PageMessage, Pagers, PagingSettings};

/// A request a test receiver got.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) headers: AxumHeaders,
    pub(super) body: Bytes,
}

impl Seen {
    pub(super) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub(super) fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }
}

#[derive(Debug, Clone)]
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) body: String,
}

pub(super) fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.to_string(),
    }
}

/// Records every request and answers from a script, then with `fallback`.
pub(super) struct Receiver {
    seen: Mutex<Vec<Seen>>,
    script: Mutex<VecDeque<Reply>>,
    fallback: Reply,
}

impl Receiver {
    pub(super) fn seen(&self) -> Vec<Seen> {
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
pub(super) async fn receiver(fallback: Reply, script: Vec<Reply>) -> (String, Arc<Receiver>) {
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
pub(super) async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    listener.local_addr().unwrap().port()
}

pub(super) fn page() -> PageMessage {
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

pub(super) fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| vars.get(k).cloned()
}

pub(super) fn pagerduty_pagers(base: &str) -> Pagers {
    Pagers::new(PagingSettings {
        pagerduty_events_url: format!("{base}/v2/enqueue"),
        ..PagingSettings::default()
    })
}

pub(super) const PD_OK: &str =
    r#"{"status":"success","message":"Event processed","dedup_key":"warroom-INC-7"}"#;
