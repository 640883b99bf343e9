//! An in-process emulator of the Slack Web API.
//!
//! [`SlackEmulator::start`] binds `127.0.0.1` on a random port and serves, in a
//! spawned tokio task, everything the bot talks to while it thinks it is
//! talking to Slack:
//!
//! * `/api/{method}` — the Web API (any HTTP verb), with the subset of methods
//!   the bot uses and a permissive `{"ok": true}` for every other method;
//! * `/response/{id}` — interaction `response_url`s;
//! * `/hook/{name}` — outgoing webhooks (paging contacts);
//! * `/upload/{file_id}` — the upload URLs handed out by
//!   `files.getUploadURLExternal`.
//!
//! Every request is recorded as a [`RecordedCall`], in order of arrival, so
//! that the demo can print what each channel saw and tests can assert on it.
//! Faults (HTTP 500, HTTP 429 with `Retry-After`, `name_taken`) and latency can
//! be injected per method.
//!
//! The behaviour mirrors the `FakeSlack` Python fake used by the contract smoke
//! test, so that both judge the bot by the same yardstick.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State as AxumState};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde_json::{json, Map, Value};
use tokio::sync::watch;

/// User id of the bot user (the emulated app's own user).
pub const BOT_USER_ID: &str = "UBOT";
/// Bot id of the emulated app.
pub const BOT_ID: &str = "B1";
/// App id of the emulated app.
pub const APP_ID: &str = "A0WARROOM";
/// Team (workspace) id of the emulated workspace.
pub const TEAM_ID: &str = "T1";
/// Domain of the emulated workspace (`https://acme.slack.com`).
pub const TEAM_DOMAIN: &str = "acme";
/// Id of the channel named `general`, which exists from the start.
pub const GENERAL_CHANNEL: &str = "C0GENERAL";
/// Id of the channel named `incidents`, which exists from the start.
pub const ANNOUNCE_CHANNEL: &str = "C0ANNOUNCE";

/// Channels (id, name) that exist before any call.
const KNOWN_CHANNELS: [(&str, &str); 2] = [
    (GENERAL_CHANNEL, "general"),
    (ANNOUNCE_CHANNEL, "incidents"),
];

/// Largest request body read; bigger bodies are recorded as unreadable.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Interval between two polls of [`SlackEmulator::wait_for`].
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// `created` timestamp given to every channel.
const CREATED: i64 = 1_700_000_000;
const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";
const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// Block Kit element types that Slack gives an `action_id` when they lack one.
const INTERACTIVE_TYPES: [&str; 21] = [
    "button",
    "static_select",
    "multi_static_select",
    "external_select",
    "multi_external_select",
    "users_select",
    "multi_users_select",
    "conversations_select",
    "multi_conversations_select",
    "channels_select",
    "multi_channels_select",
    "overflow",
    "datepicker",
    "timepicker",
    "datetimepicker",
    "checkboxes",
    "radio_buttons",
    "plain_text_input",
    "email_text_input",
    "url_text_input",
    "number_input",
];

/// Parameters whose string values are JSON documents, parsed when they look like one.
const JSON_PARAMS: [&str; 6] = [
    "blocks",
    "attachments",
    "view",
    "files",
    "metadata",
    "users",
];

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

/// Handle on a running emulator. Cheap to clone; the server stops on
/// [`SlackEmulator::shutdown`] or when the last handle is dropped.
#[derive(Clone)]
pub struct SlackEmulator {
    shared: Arc<Shared>,
    guard: Arc<ShutdownGuard>,
}

impl fmt::Debug for SlackEmulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackEmulator")
            .field("base_url", &self.shared.base)
            .finish_non_exhaustive()
    }
}

/// Stops the server when dropped (that is, when the last handle goes).
struct ShutdownGuard {
    tx: watch::Sender<bool>,
}

impl Drop for ShutdownGuard {
    fn drop(&mut self) {
        self.tx.send_replace(true);
    }
}

/// What the server task and the handles share.
struct Shared {
    token: String,
    base: String,
    state: Mutex<EmuState>,
    /// Calls held on purpose (see [`SlackEmulator::stall_next`]).
    stalls: Stalls,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, EmuState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Clone, Copy, Debug)]
enum FaultKind {
    Fatal,
    RateLimited {
        retry_after_secs: u64,
    },
    NameTaken,
    /// The call is carried out, then answered HTTP 500 (a crash after Slack acted).
    SucceedThenFail,
}

/// The `fault` of a call that was carried out but answered HTTP 500.
const SUCCEEDED_THEN_FAILED: &str = "injected 500 after success";

/// What `conversations.list` says about a channel beyond its name.
#[derive(Debug, Clone)]
struct ChannelMeta {
    creator: String,
    is_archived: bool,
}

#[derive(Debug)]
struct Fault {
    kind: FaultKind,
    /// Calls still to fail; `None`: until cleared.
    left: Option<usize>,
}

#[derive(Debug)]
struct ChannelRecord {
    name: String,
    topic: Option<Value>,
    purpose: Option<Value>,
}

/// Everything the emulator knows, behind one mutex.
struct EmuState {
    calls: Vec<RecordedCall>,
    next_seq: u64,
    n_channel: u64,
    n_ts: u64,
    n_view: u64,
    n_file: u64,
    channel_order: Vec<String>,
    channels: HashMap<String, ChannelRecord>,
    taken_names: HashSet<String>,
    members: HashMap<String, Vec<String>>,
    messages: BTreeMap<(String, String), Value>,
    faults: HashMap<String, Vec<Fault>>,
    uploads: HashMap<String, Bytes>,
    /// `/health/{service}`: status and JSON body answered.
    health: HashMap<String, (u16, Value)>,
    latency: Duration,
    rng: u64,
    /// `response_url`s handed out so far (each gets its own number, as Slack's are unique).
    n_response_urls: u64,
    /// Posts each `response_url` (its full path) accepted.
    response_posts: HashMap<String, usize>,
    /// Creator and archived flag of channels not created by the bot through the API.
    channel_meta: HashMap<String, ChannelMeta>,
}

/// An answer: status, optional `Retry-After`, body.
struct Outcome {
    status: u16,
    retry_after: Option<u64>,
    body: Payload,
}

enum Payload {
    Json(Value),
    Text(String),
}

impl Outcome {
    fn json(status: u16, body: Value) -> Self {
        Outcome {
            status,
            retry_after: None,
            body: Payload::Json(body),
        }
    }

    fn recorded_body(&self) -> Value {
        match &self.body {
            Payload::Json(v) => v.clone(),
            Payload::Text(t) => Value::String(t.clone()),
        }
    }

    fn into_response(self) -> Response {
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

impl SlackEmulator {
    /// Binds `127.0.0.1:0` and serves the emulator in a spawned tokio task.
    /// `bot_token` is the only token the Web API accepts.
    ///
    /// # Errors
    ///
    /// When the listening socket cannot be bound.
    pub async fn start(bot_token: &str) -> std::io::Result<SlackEmulator> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            token: bot_token.to_string(),
            base: format!("http://127.0.0.1:{}", addr.port()),
            state: Mutex::new(EmuState::new()),
            stalls: Stalls::default(),
        });
        let (tx, mut rx) = watch::channel(false);
        let app = Router::new().fallback(handle).with_state(shared.clone());
        tokio::spawn(async move {
            let stop = async move {
                // Err means every handle is gone: stop as well.
                let _ = rx.wait_for(|stopped| *stopped).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::warn!(error = %e, "slack emulator stopped serving");
            }
        });
        Ok(SlackEmulator {
            shared,
            guard: Arc::new(ShutdownGuard { tx }),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        self.shared.base.clone()
    }

    /// `http://127.0.0.1:PORT/api/`, the Web API root to configure clients with.
    pub fn api_url(&self) -> String {
        format!("{}/api/", self.shared.base)
    }

    /// A fresh `response_url` whose POSTs are recorded under `id` (see [`Self::responses`]).
    /// Like Slack's, each one accepts at most 5 posts; calling this again gives a new one.
    pub fn response_url(&self, id: &str) -> String {
        let n = {
            let mut st = self.shared.lock();
            st.n_response_urls += 1;
            st.n_response_urls
        };
        format!("{}/response/{id}/{n}", self.shared.base)
    }

    /// A webhook URL whose POSTs are recorded under `name` (see [`Self::hooks`]).
    pub fn hook_url(&self, name: &str) -> String {
        format!("{}/hook/{name}", self.shared.base)
    }

    /// The bot token the Web API accepts.
    pub fn bot_token(&self) -> &str {
        &self.shared.token
    }

    /// Every request received so far, in order of arrival. A request still
    /// being answered (for instance while injected latency runs) is not listed yet.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.shared.lock().calls.clone()
    }

    /// Web API calls of `method` (e.g. `"chat.postMessage"`), whatever their outcome.
    pub fn api_calls(&self, method: &str) -> Vec<RecordedCall> {
        self.filter_calls(|c| c.kind == CallKind::Api && c.method == method)
    }

    /// Web API calls of `method` answered HTTP 200 with `"ok": true`.
    pub fn ok_calls(&self, method: &str) -> Vec<RecordedCall> {
        self.filter_calls(|c| c.kind == CallKind::Api && c.method == method && c.ok())
    }

    /// How many [`ok_calls`](Self::ok_calls) of `method` there are, without copying them (a
    /// benchmark polls this while the emulator is busy).
    pub fn count_ok_calls(&self, method: &str) -> usize {
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|c| c.kind == CallKind::Api && c.method == method && c.ok())
            .count()
    }

    /// Successful `chat.postMessage` calls to `channel`.
    pub fn posts_to(&self, channel: &str) -> Vec<RecordedCall> {
        self.filter_calls(|c| {
            c.kind == CallKind::Api
                && c.method == "chat.postMessage"
                && c.ok()
                && c.param_str("channel") == Some(channel)
        })
    }

    /// Requests to `/response/{id}`.
    pub fn responses(&self, id: &str) -> Vec<RecordedCall> {
        self.filter_calls(|c| c.kind == CallKind::Response && c.method == id)
    }

    /// Requests to `/hook/{name}`.
    pub fn hooks(&self, name: &str) -> Vec<RecordedCall> {
        self.filter_calls(|c| c.kind == CallKind::Hook && c.method == name)
    }

    /// Channel ids through which `user` can be reached directly: the user id
    /// itself and every channel returned by a successful `conversations.open`
    /// naming that user.
    pub fn dm_channels(&self, user: &str) -> Vec<String> {
        let mut ids = vec![user.to_string()];
        for call in self.ok_calls("conversations.open") {
            let names_user = call
                .params
                .as_object()
                .is_some_and(|p| users_param(p).iter().any(|u| u == user));
            if !names_user {
                continue;
            }
            let id = call.response.pointer("/channel/id").and_then(Value::as_str);
            if let Some(id) = id {
                if !ids.iter().any(|known| known == id) {
                    ids.push(id.to_string());
                }
            }
        }
        ids
    }

    /// Successful `chat.postMessage` calls to any of [`Self::dm_channels`] of `user`.
    pub fn dm_posts(&self, user: &str) -> Vec<RecordedCall> {
        let ids = self.dm_channels(user);
        self.filter_calls(|c| {
            c.kind == CallKind::Api
                && c.method == "chat.postMessage"
                && c.ok()
                && c.param_str("channel")
                    .is_some_and(|ch| ids.iter().any(|id| id == ch))
        })
    }

    /// The body last uploaded to `/upload/{file_id}`.
    pub fn uploaded(&self, file_id: &str) -> Option<Bytes> {
        self.shared.lock().uploads.get(file_id).cloned()
    }

    fn filter_calls(&self, mut keep: impl FnMut(&RecordedCall) -> bool) -> Vec<RecordedCall> {
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|c| keep(c))
            .cloned()
            .collect()
    }

    fn add_fault(&self, method: &str, kind: FaultKind, left: Option<usize>) {
        self.shared
            .lock()
            .faults
            .entry(method.to_string())
            .or_default()
            .push(Fault { kind, left });
    }

    /// `GET /health/{service}` answers `status` with `body` from now on.
    pub fn set_health(&self, service: &str, status: u16, body: Value) {
        self.shared
            .lock()
            .health
            .insert(service.to_string(), (status, body));
    }

    /// The URL of a service's health endpoint.
    pub fn health_url(&self, service: &str) -> String {
        format!("{}/health/{service}", self.shared.base)
    }

    /// How many times a service's health endpoint was polled.
    pub fn health_polls(&self, service: &str) -> usize {
        let path = format!("health/{service}");
        self.filter_calls(|c| c.kind == CallKind::Other && c.method == path)
            .len()
    }

    /// The next `n` calls of `method` answer HTTP 500 `{"ok":false,"error":"fatal_error"}`.
    /// `method` is a Web API method (`chat.postMessage`) or `hook/<name>` for a webhook sink.
    pub fn fail_next(&self, method: &str, n: usize) {
        self.add_fault(method, FaultKind::Fatal, Some(n));
    }

    /// Every call of `method` answers HTTP 500 until [`Self::clear_faults`].
    pub fn fail_until_cleared(&self, method: &str) {
        self.add_fault(method, FaultKind::Fatal, None);
    }

    /// The next `n` calls of `method` answer HTTP 429 with
    /// `Retry-After: retry_after_secs` and `{"ok":false,"error":"ratelimited"}`.
    pub fn ratelimit_next(&self, method: &str, n: usize, retry_after_secs: u64) {
        self.add_fault(method, FaultKind::RateLimited { retry_after_secs }, Some(n));
    }

    /// The next `n` `conversations.create` calls answer `name_taken`, and the
    /// name they asked for becomes taken.
    pub fn name_taken_next(&self, n: usize) {
        self.add_fault("conversations.create", FaultKind::NameTaken, Some(n));
    }

    /// Marks a channel name as taken, so `conversations.create` refuses it.
    pub fn take_name(&self, name: &str) {
        self.shared.lock().taken_names.insert(name.to_string());
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Removes the injected faults of one method.
    pub fn clear_faults_for(&self, method: &str) {
        self.shared.lock().faults.remove(method);
    }

    /// From now on, delays every `/api/` answer by `d` (zero: none). Concurrent
    /// calls wait side by side; the other sinks are not delayed.
    pub fn set_latency(&self, d: Duration) {
        self.shared.lock().latency = d;
    }

    /// Stores a message written by a human, as if it existed in `channel`.
    pub fn register_message(&self, channel: &str, ts: &str, user: &str, text: &str) {
        let msg = json!({"type": "message", "user": user, "text": text, "ts": ts, "team": TEAM_ID});
        self.register_message_value(channel, ts, msg);
    }

    /// Stores any message object under (`channel`, `ts`); use it for thread
    /// replies (`thread_ts`) or messages with blocks.
    pub fn register_message_value(&self, channel: &str, ts: &str, message: Value) {
        self.shared
            .lock()
            .messages
            .insert((channel.to_string(), ts.to_string()), message);
    }

    /// The message stored under (`channel`, `ts`), as last posted or updated.
    pub fn message(&self, channel: &str, ts: &str) -> Option<Value> {
        self.shared
            .lock()
            .messages
            .get(&(channel.to_string(), ts.to_string()))
            .cloned()
    }

    /// The id of the (first) channel named `name`.
    pub fn channel_id_by_name(&self, name: &str) -> Option<String> {
        let st = self.shared.lock();
        st.channel_order
            .iter()
            .find(|id| st.channels.get(*id).is_some_and(|c| c.name == name))
            .cloned()
    }

    /// The name of channel `id`.
    pub fn channel_name(&self, id: &str) -> Option<String> {
        self.shared.lock().channels.get(id).map(|c| c.name.clone())
    }

    /// Members of a channel created or invited to through the API (the bot
    /// first); empty for a channel the emulator has no member list for.
    pub fn members(&self, channel: &str) -> Vec<String> {
        self.shared
            .lock()
            .members
            .get(channel)
            .cloned()
            .unwrap_or_default()
    }

    /// The topic last set with `conversations.setTopic`, if any.
    pub fn topic(&self, channel: &str) -> Option<String> {
        let st = self.shared.lock();
        st.channels
            .get(channel)
            .and_then(|c| c.topic.as_ref())
            .map(text_of)
    }

    /// The purpose last set with `conversations.setPurpose`, if any.
    pub fn purpose(&self, channel: &str) -> Option<String> {
        let st = self.shared.lock();
        st.channels
            .get(channel)
            .and_then(|c| c.purpose.as_ref())
            .map(text_of)
    }

    /// Calls `f` every ~10 ms until it returns `Some`, or `timeout` passes
    /// (then `None`).
    pub async fn wait_for<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&SlackEmulator) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(v) = f(self) {
                return Some(v);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return None;
            }
            tokio::time::sleep((deadline - now).min(POLL_INTERVAL)).await;
        }
    }

    /// Stops accepting connections and lets the ones in flight finish.
    /// Idempotent; dropping the last handle does the same.
    pub fn shutdown(&self) {
        self.guard.tx.send_replace(true);
    }
}

/// The one axum handler. The work runs in its own task so that a call is
/// still recorded when its client gives up (say, during injected latency).
async fn handle(AxumState(shared): AxumState<Arc<Shared>>, req: Request) -> Response {
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
async fn process(shared: Arc<Shared>, req: Request) -> Outcome {
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
    let mut params = parse_params(parts.uri.query().unwrap_or_default(), &body, content_type);
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
fn api(
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

impl EmuState {
    fn new() -> Self {
        let mut channels = HashMap::new();
        let mut channel_order = Vec::new();
        let mut taken_names = HashSet::new();
        for (id, name) in KNOWN_CHANNELS {
            channels.insert(
                id.to_string(),
                ChannelRecord {
                    name: name.to_string(),
                    topic: None,
                    purpose: None,
                },
            );
            channel_order.push(id.to_string());
            taken_names.insert(name.to_string());
        }
        EmuState {
            calls: Vec::new(),
            next_seq: 0,
            n_channel: 0,
            n_ts: 0,
            n_view: 0,
            n_file: 0,
            channel_order,
            channels,
            taken_names,
            members: HashMap::new(),
            messages: BTreeMap::new(),
            faults: HashMap::new(),
            uploads: HashMap::new(),
            health: HashMap::new(),
            latency: Duration::ZERO,
            rng: 0x5EED_0F5A_C4E5_1A7E_u64,
            n_response_urls: 0,
            response_posts: HashMap::new(),
            channel_meta: HashMap::new(),
        }
    }

    /// Consumes one injected fault of `method`, if one is pending.
    fn take_fault(
        &mut self,
        method: &str,
        params: &Map<String, Value>,
        fault: &mut Option<String>,
    ) -> Option<Outcome> {
        let pending = self
            .faults
            .get_mut(method)?
            .iter_mut()
            .find(|f| f.left != Some(0))?;
        if let Some(left) = pending.left.as_mut() {
            *left -= 1;
        }
        match pending.kind {
            FaultKind::Fatal => {
                *fault = Some("injected 500".into());
                Some(Outcome::json(
                    500,
                    json!({"ok": false, "error": "fatal_error"}),
                ))
            }
            FaultKind::RateLimited { retry_after_secs } => {
                *fault = Some("injected 429".into());
                Some(Outcome {
                    status: 429,
                    retry_after: Some(retry_after_secs),
                    body: Payload::Json(json!({"ok": false, "error": "ratelimited"})),
                })
            }
            FaultKind::NameTaken => {
                *fault = Some("injected name_taken".into());
                if let Some(name) = params.get("name").filter(|v| truthy(Some(v))) {
                    self.taken_names.insert(text_of(name));
                }
                Some(Outcome::json(
                    200,
                    json!({"ok": false, "error": "name_taken"}),
                ))
            }
            FaultKind::SucceedThenFail => {
                // No answer yet: the call is carried out, and only a success counts and is
                // answered 500 (see `lose_answer`).
                if let Some(left) = pending.left.as_mut() {
                    *left += 1;
                }
                *fault = Some(SUCCEEDED_THEN_FAILED.into());
                None
            }
        }
    }

    /// A random id of `n` letters and digits (deterministic sequence per emulator).
    fn rand_id(&mut self, n: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..n)
            .map(|_| {
                // splitmix64
                self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = self.rng;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                let idx = usize::try_from(z % ALPHABET.len() as u64).unwrap_or(0);
                char::from(ALPHABET[idx])
            })
            .collect()
    }

    fn next_ts(&mut self) -> String {
        self.n_ts += 1;
        format!("1700000000.{:06}", self.n_ts)
    }

    /// Fills in `block_id` on top-level blocks and `action_id` on interactive
    /// elements that lack them, as Slack does. Non-lists are returned as they are.
    fn normalize_blocks(&mut self, blocks: &Value) -> Value {
        let mut out = maybe_json(blocks);
        if let Value::Array(items) = &mut out {
            for block in items.iter_mut() {
                if let Value::Object(obj) = block {
                    if !obj.contains_key("block_id") {
                        let id = self.rand_id(4);
                        obj.insert("block_id".into(), Value::String(id));
                    }
                    self.fill_action_ids(block);
                }
            }
        }
        out
    }

    fn fill_action_ids(&mut self, node: &mut Value) {
        match node {
            Value::Object(obj) => {
                let interactive = obj
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| INTERACTIVE_TYPES.contains(&t));
                if interactive && !obj.contains_key("action_id") {
                    let id = format!("{}=", self.rand_id(5));
                    obj.insert("action_id".into(), Value::String(id));
                }
                for v in obj.values_mut() {
                    self.fill_action_ids(v);
                }
            }
            Value::Array(items) => {
                for v in items {
                    self.fill_action_ids(v);
                }
            }
            _ => {}
        }
    }

    fn channel_obj(&self, cid: &str) -> Value {
        let (name, topic, purpose) = match self.channels.get(cid) {
            Some(c) => (c.name.clone(), c.topic.clone(), c.purpose.clone()),
            None => (cid.to_lowercase(), None, None),
        };
        let details =
            |v: Option<Value>| json!({"value": v.unwrap_or_else(|| Value::String(String::new()))});
        json!({
            "id": cid,
            "name": name,
            "is_channel": true,
            "is_private": false,
            "is_archived": self.channel_meta.get(cid).is_some_and(|m| m.is_archived),
            "is_member": true,
            "created": CREATED,
            "creator": self.channel_meta.get(cid).map_or(BOT_USER_ID, |m| m.creator.as_str()),
            "name_normalized": name,
            "topic": details(topic),
            "purpose": details(purpose),
        })
    }

    /// The channel record for `cid`, made up (named after its id) if unknown.
    fn channel_entry(&mut self, cid: &str) -> &mut ChannelRecord {
        if !self.channels.contains_key(cid) {
            self.channel_order.push(cid.to_string());
        }
        self.channels
            .entry(cid.to_string())
            .or_insert_with(|| ChannelRecord {
                name: cid.to_lowercase(),
                topic: None,
                purpose: None,
            })
    }

    fn call_method(&mut self, base: &str, method: &str, p: &Map<String, Value>) -> Value {
        match method {
            "auth.test" => json!({
                "ok": true,
                "url": format!("https://{TEAM_DOMAIN}.slack.com/"),
                "team": "Acme",
                "user": "warroom",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": false,
            }),
            "conversations.create" => self.conversations_create(p),
            "conversations.invite" => self.conversations_invite(p),
            "conversations.setTopic" => {
                let cid = text_of(get_or_empty(p, "channel"));
                let topic = get_or_empty(p, "topic").clone();
                if let Err(v) = crate::slack::limits::check_topic(&text_of(&topic)) {
                    return api_error(v.error);
                }
                self.channel_entry(&cid).topic = Some(topic);
                json!({"ok": true, "channel": self.channel_obj(&cid)})
            }
            "conversations.setPurpose" => {
                let cid = text_of(get_or_empty(p, "channel"));
                let purpose = get_or_empty(p, "purpose").clone();
                self.channel_entry(&cid).purpose = Some(purpose.clone());
                json!({"ok": true, "channel": self.channel_obj(&cid), "purpose": purpose})
            }
            "conversations.join" | "conversations.info" => {
                let cid = text_of(get_or_empty(p, "channel"));
                json!({"ok": true, "channel": self.channel_obj(&cid)})
            }
            "conversations.members" => {
                let cid = text_of(get_or_empty(p, "channel"));
                let members = self
                    .members
                    .get(&cid)
                    .cloned()
                    .unwrap_or_else(|| vec![BOT_USER_ID.to_string()]);
                json!({"ok": true, "members": members, "response_metadata": {"next_cursor": ""}})
            }
            "conversations.list" => self.conversations_list(p),
            "conversations.open" => conversations_open(p),
            "conversations.history" => self.conversations_history(p),
            "conversations.replies" => self.conversations_replies(p),
            "chat.postMessage" => self.chat_post_message(p),
            "chat.postEphemeral" => {
                if let Err(e) = check_post(p) {
                    return e;
                }
                if !truthy(p.get("user")) {
                    return api_error("user_not_in_channel");
                }
                json!({"ok": true, "message_ts": self.next_ts()})
            }
            "chat.update" => self.chat_update(p),
            "chat.delete" => json!({
                "ok": true,
                "channel": param_or(p, "channel", Value::Null),
                "ts": param_or(p, "ts", Value::Null),
            }),
            "chat.getPermalink" => {
                let cid = text_of(get_or_empty(p, "channel"));
                let ts = first_truthy(p, &["message_ts", "ts"])
                    .map(text_of)
                    .unwrap_or_default();
                let compact_ts = ts.replace('.', "");
                let permalink =
                    format!("https://{TEAM_DOMAIN}.slack.com/archives/{cid}/p{compact_ts}");
                json!({"ok": true, "channel": cid, "permalink": permalink})
            }
            "chat.scheduleMessage" => {
                self.n_ts += 1;
                let post_at = p
                    .get("post_at")
                    .and_then(number_of)
                    .unwrap_or_else(|| unix_now() + 60);
                json!({
                    "ok": true,
                    "channel": param_or(p, "channel", Value::Null),
                    "scheduled_message_id": format!("Q{}", self.n_ts),
                    "post_at": post_at,
                })
            }
            "users.info" => match p.get("user").filter(|v| truthy(Some(v))) {
                Some(uid) => json!({"ok": true, "user": user_obj(&text_of(uid))}),
                None => api_error("user_not_found"),
            },
            "users.profile.get" => {
                let uid = first_truthy(p, &["user"])
                    .map(text_of)
                    .unwrap_or_else(|| BOT_USER_ID.to_string());
                json!({"ok": true, "profile": user_obj(&uid)["profile"].clone()})
            }
            "team.info" => {
                json!({"ok": true, "team": {"id": TEAM_ID, "name": "Acme", "domain": TEAM_DOMAIN}})
            }
            "bots.info" => json!({
                "ok": true,
                "bot": {"id": BOT_ID, "name": "warroom", "user_id": BOT_USER_ID, "app_id": APP_ID},
            }),
            "views.open" | "views.update" | "views.push" => match p.get("view").map(maybe_json) {
                Some(view) => match crate::slack::limits::check_view(&view) {
                    Ok(()) => self.view(p),
                    Err(v) => api_error(v.error),
                },
                None => self.view(p),
            },
            "views.publish" => self.view(p),
            "files.upload" => {
                let (_, file) = self.new_file(p);
                json!({"ok": true, "file": file})
            }
            "files.getUploadURLExternal" => {
                let (fid, _) = self.new_file(p);
                json!({"ok": true, "upload_url": format!("{base}/upload/{fid}"), "file_id": fid})
            }
            "files.completeUploadExternal" => {
                let files: Vec<Value> = match p.get("files").map(maybe_json) {
                    Some(Value::Array(items)) => items
                        .iter()
                        .filter_map(Value::as_object)
                        .map(|f| {
                            json!({
                                "id": param_or(f, "id", Value::Null),
                                "title": param_or(f, "title", json!("")),
                            })
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                self.share_files(p, &files);
                json!({"ok": true, "files": files})
            }
            "bookmarks.add" => {
                let id = format!("Bk{}", self.rand_id(8));
                json!({
                    "ok": true,
                    "bookmark": {
                        "id": id,
                        "channel_id": param_or(p, "channel_id", Value::Null),
                        "title": param_or(p, "title", Value::Null),
                        "link": param_or(p, "link", Value::Null),
                        "type": param_or(p, "type", json!("link")),
                    },
                })
            }
            _ => json!({"ok": true}),
        }
    }

    /// A post to the `response_url` at `/response/{path}`: at most 5 per URL, within Slack's
    /// limits on a message.
    fn respond(&mut self, path: &str, p: &Map<String, Value>) -> Outcome {
        let posts = self.response_posts.entry(path.to_string()).or_insert(0);
        if *posts >= crate::slack::limits::RESPONSE_URL_POSTS {
            return Outcome::json(404, json!({"ok": false, "error": "used_url"}));
        }
        if let Err(e) = check_limits(p) {
            return Outcome::json(400, e);
        }
        *posts += 1;
        Outcome::json(200, json!({"ok": true}))
    }

    fn conversations_create(&mut self, p: &Map<String, Value>) -> Value {
        let name = match p.get("name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => return api_error("invalid_name_required"),
        };
        if name.chars().count() > 80 {
            return api_error("invalid_name_maxlength");
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return api_error("invalid_name_specials");
        }
        if name.chars().all(|c| c == '_' || c == '-') {
            return api_error("invalid_name_punctuation");
        }
        if self.taken_names.contains(&name) {
            return api_error("name_taken");
        }
        self.taken_names.insert(name.clone());
        self.n_channel += 1;
        let cid = format!("C{}", 1000 + self.n_channel);
        self.channels.insert(
            cid.clone(),
            ChannelRecord {
                name,
                topic: None,
                purpose: None,
            },
        );
        self.channel_order.push(cid.clone());
        self.members
            .insert(cid.clone(), vec![BOT_USER_ID.to_string()]);
        json!({"ok": true, "channel": self.channel_obj(&cid)})
    }

    fn conversations_invite(&mut self, p: &Map<String, Value>) -> Value {
        let users = users_param(p);
        let cid = match p.get("channel").filter(|v| truthy(Some(v))) {
            Some(c) => text_of(c),
            None => return api_error("channel_not_found"),
        };
        if users.is_empty() {
            return api_error("no_user");
        }
        let members = self
            .members
            .entry(cid.clone())
            .or_insert_with(|| vec![BOT_USER_ID.to_string()]);
        for user in users {
            if !members.contains(&user) {
                members.push(user);
            }
        }
        json!({"ok": true, "channel": self.channel_obj(&cid)})
    }

    fn conversations_history(&self, p: &Map<String, Value>) -> Value {
        let cid = p.get("channel").map(text_of);
        let latest = p.get("latest").filter(|v| !v.is_null()).map(ts_key);
        let oldest = p.get("oldest").filter(|v| !v.is_null()).map(ts_key);
        let inclusive = flag_true(p.get("inclusive"));
        let limit = if truthy(p.get("limit")) {
            p.get("limit").and_then(number_of).unwrap_or(100)
        } else {
            100
        };
        let mut msgs: Vec<(i128, Value)> = self
            .messages
            .iter()
            .filter(|((c, ts), m)| {
                if Some(c) != cid.as_ref() {
                    return false;
                }
                match m.get("thread_ts") {
                    None | Some(Value::Null) => true,
                    Some(t) => t.as_str() == Some(ts.as_str()),
                }
            })
            .filter_map(|((_, ts), m)| {
                let k = ts_key(&Value::String(ts.clone()));
                let below_latest = latest.is_none_or(|l| if inclusive { k <= l } else { k < l });
                let above_oldest = oldest.is_none_or(|o| if inclusive { k >= o } else { k > o });
                (below_latest && above_oldest).then(|| (k, m.clone()))
            })
            .collect();
        // Newest first; the sort is stable, like Python's.
        msgs.sort_by_key(|m| std::cmp::Reverse(m.0));
        let has_more = i64::try_from(msgs.len()).unwrap_or(i64::MAX) > limit;
        let keep = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
        let messages: Vec<Value> = msgs.into_iter().take(keep).map(|(_, m)| m).collect();
        let messages = without_metadata_unless_asked(messages, p);
        json!({
            "ok": true,
            "messages": messages,
            "has_more": has_more,
            "response_metadata": {"next_cursor": ""},
        })
    }

    fn conversations_replies(&self, p: &Map<String, Value>) -> Value {
        let cid = p.get("channel").map(text_of).unwrap_or_default();
        let ts = first_truthy(p, &["ts"]).map(text_of).unwrap_or_default();
        let Some(parent) = self.messages.get(&(cid.clone(), ts.clone())) else {
            return api_error("thread_not_found");
        };
        let mut replies: Vec<(i128, Value)> = self
            .messages
            .iter()
            .filter(|((c, t), m)| {
                *c == cid
                    && *t != ts
                    && m.get("thread_ts").and_then(Value::as_str) == Some(ts.as_str())
            })
            .map(|((_, t), m)| (ts_key(&Value::String(t.clone())), m.clone()))
            .collect();
        replies.sort_by_key(|m| m.0);
        let mut messages = vec![parent.clone()];
        messages.extend(replies.into_iter().map(|(_, m)| m));
        json!({
            "ok": true,
            "messages": messages,
            "has_more": false,
            "response_metadata": {"next_cursor": ""},
        })
    }

    fn chat_post_message(&mut self, p: &Map<String, Value>) -> Value {
        let cid = match check_post(p) {
            Ok(cid) => cid,
            Err(e) => return e,
        };
        let ts = self.next_ts();
        let mut msg = Map::new();
        msg.insert("type".into(), json!("message"));
        msg.insert("user".into(), json!(BOT_USER_ID));
        msg.insert("bot_id".into(), json!(BOT_ID));
        msg.insert("app_id".into(), json!(APP_ID));
        msg.insert("team".into(), json!(TEAM_ID));
        msg.insert("text".into(), or_empty(p.get("text")));
        msg.insert("ts".into(), json!(ts));
        if let Some(blocks) = p.get("blocks").filter(|v| truthy(Some(v))) {
            let blocks = self.normalize_blocks(blocks);
            msg.insert("blocks".into(), blocks);
        }
        if let Some(attachments) = p.get("attachments").filter(|v| truthy(Some(v))) {
            msg.insert("attachments".into(), maybe_json(attachments));
        }
        if let Some(thread_ts) = p.get("thread_ts").filter(|v| truthy(Some(v))) {
            msg.insert("thread_ts".into(), Value::String(text_of(thread_ts)));
        }
        if let Some(metadata) = p.get("metadata").filter(|v| truthy(Some(v))) {
            msg.insert("metadata".into(), maybe_json(metadata));
        }
        let msg = Value::Object(msg);
        self.messages.insert((cid.clone(), ts.clone()), msg.clone());
        json!({"ok": true, "channel": cid, "ts": ts, "message": msg})
    }

    fn chat_update(&mut self, p: &Map<String, Value>) -> Value {
        let Some(cid) = p.get("channel").filter(|v| !v.is_null()).map(text_of) else {
            return api_error("message_not_found");
        };
        let ts = first_truthy(p, &["ts"]).map(text_of).unwrap_or_default();
        let key = (cid.clone(), ts.clone());
        if !self.messages.contains_key(&key) {
            return api_error("message_not_found");
        }
        if let Err(e) = check_limits(p) {
            return e;
        }
        let blocks = p.get("blocks").map(|b| self.normalize_blocks(b));
        let Some(Value::Object(msg)) = self.messages.get_mut(&key) else {
            return api_error("message_not_found");
        };
        if p.contains_key("text") {
            msg.insert("text".into(), or_empty(p.get("text")));
        }
        if let Some(blocks) = blocks {
            msg.insert("blocks".into(), blocks);
        }
        if let Some(attachments) = p.get("attachments") {
            msg.insert("attachments".into(), maybe_json(attachments));
        }
        if let Some(metadata) = p.get("metadata").filter(|v| truthy(Some(v))) {
            msg.insert("metadata".into(), maybe_json(metadata));
        }
        let text = msg.get("text").cloned().unwrap_or_else(|| json!(""));
        let message = Value::Object(msg.clone());
        json!({"ok": true, "channel": cid, "ts": ts, "text": text, "message": message})
    }

    fn view(&mut self, p: &Map<String, Value>) -> Value {
        self.n_view += 1;
        let mut view = match p.get("view").map(maybe_json) {
            Some(Value::Object(v)) => v,
            _ => Map::new(),
        };
        let id = first_truthy(p, &["view_id"])
            .cloned()
            .unwrap_or_else(|| Value::String(format!("V{:08}", self.n_view)));
        view.insert("id".into(), id.clone());
        view.insert("team_id".into(), json!(TEAM_ID));
        view.insert("hash".into(), Value::String(self.rand_id(8)));
        view.entry("type").or_insert_with(|| json!("modal"));
        view.entry("state").or_insert_with(|| json!({"values": {}}));
        view.insert("app_id".into(), json!(APP_ID));
        view.insert("bot_id".into(), json!(BOT_ID));
        view.insert("root_view_id".into(), id);
        json!({"ok": true, "view": view})
    }

    /// Files completed with a `channel_id` are shared there as Slack does: a message of the
    /// bot's carrying the `initial_comment` and the files, seen in `conversations.history`.
    fn share_files(&mut self, p: &Map<String, Value>, files: &[Value]) {
        let Some(cid) = p.get("channel_id").filter(|v| truthy(Some(v))).map(text_of) else {
            return;
        };
        let ts = self.next_ts();
        let msg = json!({
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
            "text": or_empty(p.get("initial_comment")),
            "ts": ts,
            "files": files,
        });
        self.messages.insert((cid, ts), msg);
    }

    fn new_file(&mut self, p: &Map<String, Value>) -> (String, Value) {
        self.n_file += 1;
        let fid = format!("F{:08}", self.n_file);
        let file = json!({
            "id": fid,
            "name": first_truthy(p, &["filename"]).cloned().unwrap_or_else(|| json!("file")),
            "title": or_empty(p.get("title")),
            "permalink": format!("https://{TEAM_DOMAIN}.slack.com/files/{BOT_USER_ID}/{fid}"),
        });
        (fid, file)
    }
}

/// `conversations.open`: a DM (`D` + user) for one user, a group DM for several.
fn conversations_open(p: &Map<String, Value>) -> Value {
    if let Some(channel) = p.get("channel").filter(|v| truthy(Some(v))) {
        return json!({"ok": true, "channel": {"id": channel}});
    }
    let users = users_param(p);
    let Some(first) = users.first() else {
        return api_error("users_list_not_supplied");
    };
    let single = users.len() == 1;
    let cid = if single {
        format!("D{first}")
    } else {
        let mut sorted = users.clone();
        sorted.sort();
        let digest = sha1_hex(sorted.join(",").as_bytes());
        format!("G{}", digest[..9].to_ascii_uppercase())
    };
    let mut channel = json!({
        "id": cid,
        "created": CREATED,
        "is_im": single,
        "is_mpim": !single,
        "is_open": true,
    });
    if single {
        channel["user"] = json!(first);
    }
    json!({"ok": true, "channel": channel, "already_open": false})
}

/// The checks `chat.postMessage` and `chat.postEphemeral` share: the channel
/// id, or the error answer.
fn check_post(p: &Map<String, Value>) -> Result<String, Value> {
    let Some(cid) = p.get("channel").filter(|v| truthy(Some(v))) else {
        return Err(api_error("channel_not_found"));
    };
    if !truthy(p.get("text")) && !truthy(p.get("blocks")) && !truthy(p.get("attachments")) {
        return Err(api_error("no_text"));
    }
    check_limits(p)?;
    Ok(text_of(cid))
}

/// Slack's limits on a message (`invalid_blocks`, `msg_too_long`): a message over them is not
/// posted at all.
fn check_limits(p: &Map<String, Value>) -> Result<(), Value> {
    let mut message = Map::new();
    if let Some(text) = p.get("text").filter(|v| !v.is_null()) {
        message.insert("text".into(), text.clone());
    }
    if let Some(blocks) = p.get("blocks").filter(|v| !v.is_null()) {
        message.insert("blocks".into(), maybe_json(blocks));
    }
    crate::slack::limits::check_message(&Value::Object(message))
        .map_err(|v| json!({"ok": false, "error": v.error, "detail": v.to_string()}))
}

fn api_error(error: &str) -> Value {
    json!({"ok": false, "error": error})
}

/// The user object for `uid`, named after the id (`U0ALICE` is `alice`).
fn user_obj(uid: &str) -> Value {
    let name = user_name(uid);
    let real = capitalize(&name);
    json!({
        "id": uid,
        "team_id": TEAM_ID,
        "name": name,
        "real_name": real,
        "is_bot": uid == BOT_USER_ID,
        "deleted": false,
        "tz": "Etc/UTC",
        "profile": {
            "display_name": name,
            "real_name": real,
            "display_name_normalized": name,
            "real_name_normalized": real,
            "email": format!("{name}@acme.test"),
        },
    })
}

/// `U0ALICE` → `alice`, `UBOT` → `bot`.
fn user_name(uid: &str) -> String {
    let base = uid
        .strip_prefix("U0")
        .unwrap_or_else(|| uid.char_indices().nth(1).map_or("", |(i, _)| &uid[i..]));
    if base.is_empty() {
        uid.to_lowercase()
    } else {
        base.to_lowercase()
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

/// The users a call names: `users` (else `user`), as a JSON list or a
/// comma-separated string.
fn users_param(p: &Map<String, Value>) -> Vec<String> {
    let raw = match p.get("users") {
        Some(v) if !v.is_null() => Some(v),
        _ => p.get("user"),
    };
    match raw.map(maybe_json) {
        Some(Value::Array(items)) => items.iter().map(text_of).collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// Python-like truthiness of an optional JSON value.
fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|x| x != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

/// A boolean flag as Slack reads it: `true`, `1`, `"true"`, `"1"`, `"yes"`.
fn flag_true(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() == Some(1.0),
        Some(Value::String(s)) => matches!(s.to_ascii_lowercase().as_str(), "true" | "1" | "yes"),
        _ => false,
    }
}

/// A value as text: strings as they are, null as empty, anything else as JSON.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The value of `key`, or an empty string when absent.
fn get_or_empty<'a>(p: &'a Map<String, Value>, key: &str) -> &'a Value {
    static EMPTY: Value = Value::String(String::new());
    p.get(key).unwrap_or(&EMPTY)
}

/// The value of `key` (even `null`), or `default` when absent.
fn param_or(p: &Map<String, Value>, key: &str, default: Value) -> Value {
    p.get(key).cloned().unwrap_or(default)
}

/// The value itself when truthy, else `""`.
fn or_empty(v: Option<&Value>) -> Value {
    match v {
        Some(v) if truthy(Some(v)) => v.clone(),
        _ => Value::String(String::new()),
    }
}

/// The first of `keys` whose value is truthy.
fn first_truthy<'a>(p: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter()
        .filter_map(|k| p.get(*k))
        .find(|v| truthy(Some(v)))
}

/// An integer from a number or a numeric string (truncated toward zero).
fn number_of(v: &Value) -> Option<i64> {
    let f = match v {
        Value::Number(n) => {
            return n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
        }
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        Value::Bool(b) => return Some(i64::from(*b)),
        _ => return None,
    };
    f.is_finite().then_some(f as i64)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A Slack timestamp as a comparable number (microsecond-exact; 12 decimals
/// kept). Anything unparsable counts as 0.
fn ts_key(v: &Value) -> i128 {
    const SCALE: i128 = 1_000_000_000_000;
    let text = text_of(v);
    let s = text.trim();
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int_part, frac_part) = s.split_once('.').unwrap_or((s, ""));
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !all_digits(int_part)
        || !all_digits(frac_part)
    {
        return 0;
    }
    let Ok(int) = (if int_part.is_empty() {
        Ok(0)
    } else {
        int_part.parse::<i128>()
    }) else {
        return 0;
    };
    let frac = frac_part
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(12)
        .fold(0i128, |acc, b| acc * 10 + i128::from(b - b'0'));
    let Some(total) = int.checked_mul(SCALE).and_then(|x| x.checked_add(frac)) else {
        return 0;
    };
    if negative {
        -total
    } else {
        total
    }
}

/// A string that looks like a JSON list or object is parsed; anything else is
/// returned as it is.
fn maybe_json(v: &Value) -> Value {
    if let Value::String(s) = v {
        if s.starts_with('[') || s.starts_with('{') {
            if let Ok(parsed) = serde_json::from_str::<Value>(s) {
                return parsed;
            }
        }
    }
    v.clone()
}

fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn collapse_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c);
    }
    out
}

/// Merges query-string, JSON, form and multipart parameters the way Slack
/// accepts them (later sources override earlier ones).
fn parse_params(query: &str, body: &[u8], content_type: &str) -> Map<String, Value> {
    let mut params = Map::new();
    if !query.is_empty() {
        merge_form(&mut params, query);
    }
    let ctype = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if !body.is_empty() {
        match ctype.as_str() {
            "application/json" => match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(obj)) => params.extend(obj),
                Ok(_) => {}
                Err(_) => {
                    params.insert(
                        "_unparsed".into(),
                        Value::String(String::from_utf8_lossy(body).into_owned()),
                    );
                }
            },
            "multipart/form-data" => {
                if !parse_multipart(body, content_type, &mut params) {
                    let head = &body[..body.len().min(2000)];
                    params.insert(
                        "_unparsed".into(),
                        Value::String(String::from_utf8_lossy(head).into_owned()),
                    );
                }
            }
            "application/x-www-form-urlencoded" => {
                merge_form(&mut params, &String::from_utf8_lossy(body))
            }
            _ => match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(obj)) => params.extend(obj),
                Ok(_) => {}
                Err(_) => merge_form(&mut params, &String::from_utf8_lossy(body)),
            },
        }
    }
    for key in JSON_PARAMS {
        if let Some(v) = params.get_mut(key) {
            *v = maybe_json(v);
        }
    }
    params
}

/// Merges `a=1&b=2` pairs; a key given several times becomes a list.
fn merge_form(params: &mut Map<String, Value>, encoded: &str) {
    let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(encoded) else {
        params.insert("_unparsed".into(), Value::String(encoded.to_string()));
        return;
    };
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in pairs {
        match grouped.iter_mut().find(|(gk, _)| *gk == k) {
            Some((_, vs)) => vs.push(v),
            None => grouped.push((k, vec![v])),
        }
    }
    for (k, mut vs) in grouped {
        let value = if vs.len() == 1 {
            Value::String(vs.remove(0))
        } else {
            Value::Array(vs.into_iter().map(Value::String).collect())
        };
        params.insert(k, value);
    }
}

/// A minimal `multipart/form-data` reader: each part's `name` and body (as
/// text). Returns false when the body could not be read as multipart.
fn parse_multipart(body: &[u8], content_type: &str, params: &mut Map<String, Value>) -> bool {
    let Some(boundary) = content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    }) else {
        return false;
    };
    if boundary.is_empty() {
        return false;
    }
    let delimiter = format!("--{boundary}");
    let segments = split_bytes(body, delimiter.as_bytes());
    if segments.len() < 2 {
        return false;
    }
    for segment in segments.into_iter().skip(1) {
        if segment.starts_with(b"--") {
            break;
        }
        let segment = strip_newline_prefix(segment);
        let (head, content) = match find_bytes(segment, b"\r\n\r\n") {
            Some(i) => (&segment[..i], &segment[i + 4..]),
            None => match find_bytes(segment, b"\n\n") {
                Some(i) => (&segment[..i], &segment[i + 2..]),
                None => continue,
            },
        };
        let content = content
            .strip_suffix(b"\r\n")
            .or_else(|| content.strip_suffix(b"\n"))
            .unwrap_or(content);
        let head = String::from_utf8_lossy(head);
        let name = head
            .lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-disposition"))
            .and_then(|(_, v)| {
                v.split(';').find_map(|attr| {
                    let (k, v) = attr.trim().split_once('=')?;
                    (k.trim().eq_ignore_ascii_case("name"))
                        .then(|| v.trim().trim_matches('"').to_string())
                })
            });
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            params.insert(
                name,
                Value::String(String::from_utf8_lossy(content).into_owned()),
            );
        }
    }
    true
}

fn strip_newline_prefix(s: &[u8]) -> &[u8] {
    s.strip_prefix(b"\r\n")
        .or_else(|| s.strip_prefix(b"\n"))
        .unwrap_or(s)
}

fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn split_bytes<'a>(mut haystack: &'a [u8], needle: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    while let Some(i) = find_bytes(haystack, needle) {
        out.push(&haystack[..i]);
        haystack = &haystack[i + needle.len()..];
    }
    out.push(haystack);
    out
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

/// SHA-1 as lower-case hex (used for group DM ids, as Slack's fake derives them).
fn sha1_hex(data: &[u8]) -> String {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for chunk in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (slot, word) in w.iter_mut().zip(chunk.chunks_exact(4)) {
            *slot = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (slot, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *slot = slot.wrapping_add(v);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

impl SlackEmulator {
    /// The next `n` calls of `method` that succeed are carried out (the channel is created,
    /// the message stored) but answered HTTP 500 `{"ok":false,"error":"fatal_error"}`: what
    /// the caller sees when it dies, or loses the answer, after Slack acted. Calls answered an
    /// error (`name_taken`) in between go out as they are.
    pub fn succeed_then_fail_next(&self, method: &str, n: usize) {
        self.add_fault(method, FaultKind::SucceedThenFail, Some(n));
    }

    /// A public channel named `name` that `creator` (a person, or another app's user) made
    /// outside the bot; its name is taken. Returns its id.
    pub fn add_channel(&self, name: &str, creator: &str) -> String {
        let mut st = self.shared.lock();
        st.n_channel += 1;
        let cid = format!("C{}", 1000 + st.n_channel);
        st.channels.insert(
            cid.clone(),
            ChannelRecord {
                name: name.to_string(),
                topic: None,
                purpose: None,
            },
        );
        st.channel_order.push(cid.clone());
        st.taken_names.insert(name.to_string());
        st.members.insert(cid.clone(), vec![creator.to_string()]);
        st.channel_meta.insert(
            cid.clone(),
            ChannelMeta {
                creator: creator.to_string(),
                is_archived: false,
            },
        );
        cid
    }

    /// The messages stored in `channel` (thread replies included), oldest first.
    pub fn messages_in(&self, channel: &str) -> Vec<Value> {
        let st = self.shared.lock();
        let mut found: Vec<(i128, Value)> = st
            .messages
            .iter()
            .filter(|((c, _), _)| c == channel)
            .map(|((_, ts), m)| (ts_key(&Value::String(ts.clone())), m.clone()))
            .collect();
        found.sort_by_key(|m| m.0);
        found.into_iter().map(|(_, m)| m).collect()
    }

    /// Archives channel `id` (its name stays taken, as on Slack).
    pub fn archive_channel(&self, id: &str) {
        let mut st = self.shared.lock();
        let creator = st
            .channel_meta
            .get(id)
            .map_or_else(|| BOT_USER_ID.to_string(), |m| m.creator.clone());
        st.channel_meta.insert(
            id.to_string(),
            ChannelMeta {
                creator,
                is_archived: true,
            },
        );
    }
}

impl EmuState {
    /// After a call of `method` that a pending [`FaultKind::SucceedThenFail`] concerns: true
    /// (and one fewer pending) when it `succeeded`, so its answer is replaced by a 500; an
    /// error answer (`name_taken`, say) goes out as it is and leaves the fault pending.
    fn lose_answer(&mut self, method: &str, succeeded: bool, fault: &mut Option<String>) -> bool {
        if fault.as_deref() != Some(SUCCEEDED_THEN_FAILED) {
            return false;
        }
        if !succeeded {
            *fault = None;
            return false;
        }
        let pending = self.faults.get_mut(method).and_then(|fs| {
            fs.iter_mut()
                .find(|f| matches!(f.kind, FaultKind::SucceedThenFail) && f.left != Some(0))
        });
        if let Some(left) = pending.and_then(|f| f.left.as_mut()) {
            *left -= 1;
        }
        true
    }

    /// `conversations.list` as Slack answers it: `types` (default `public_channel`; every
    /// emulated channel is public), `exclude_archived` (default false), pages of `limit`
    /// (default 100, at most 1000) with an opaque `next_cursor` (empty on the last page).
    fn conversations_list(&self, p: &Map<String, Value>) -> Value {
        let types = p
            .get("types")
            .filter(|v| truthy(Some(v)))
            .map_or_else(|| "public_channel".to_string(), text_of);
        let public = types.split(',').any(|t| t.trim() == "public_channel");
        let exclude_archived = flag_true(p.get("exclude_archived"));
        let limit = p
            .get("limit")
            .and_then(number_of)
            .filter(|n| *n > 0)
            .unwrap_or(100)
            .min(1000);
        let limit = usize::try_from(limit).unwrap_or(100);
        let start = match p.get("cursor").filter(|v| truthy(Some(v))).map(text_of) {
            None => 0,
            Some(cursor) => match cursor
                .strip_prefix("dGVhbTpD")
                .and_then(|n| n.parse::<usize>().ok())
            {
                Some(n) => n,
                None => return api_error("invalid_cursor"),
            },
        };
        let all: Vec<Value> = self
            .channel_order
            .iter()
            .filter(|_| public)
            .map(|c| self.channel_obj(c))
            .filter(|c| !(exclude_archived && c["is_archived"] == json!(true)))
            .collect();
        let end = start.saturating_add(limit).min(all.len());
        let channels = all
            .get(start..end)
            .map(<[Value]>::to_vec)
            .unwrap_or_default();
        let next = if end < all.len() {
            format!("dGVhbTpD{end}")
        } else {
            String::new()
        };
        json!({"ok": true, "channels": channels, "response_metadata": {"next_cursor": next}})
    }

    /// A `GET` on a webhook sink: like a REST collection, the objects earlier `POST`s to the
    /// same hook and path created (those answered 2xx, and those carried out then answered 500
    /// by [`SlackEmulator::succeed_then_fail_next`]), newest first, each with its `id`. A body
    /// wrapped in one object (Statuspage's `{"incident": {...}}`) is unwrapped.
    fn hook_collection(&self, name: &str, path: &str) -> Outcome {
        let items: Vec<Value> = self
            .calls
            .iter()
            .rev()
            .filter(|c| {
                c.kind == CallKind::Hook
                    && c.method == name
                    && c.http_method == "POST"
                    && ((200..300).contains(&c.status)
                        || c.fault.as_deref() == Some(SUCCEEDED_THEN_FAILED))
                    && c.params
                        .get("_path")
                        .map_or("", |v| v.as_str().unwrap_or(""))
                        == path
            })
            .map(|c| {
                let mut fields = match &c.params {
                    Value::Object(o) => o.clone(),
                    _ => Map::new(),
                };
                fields.remove("_path");
                let mut item = match fields.values().next() {
                    Some(Value::Object(inner)) if fields.len() == 1 => inner.clone(),
                    _ => fields,
                };
                item.insert(
                    "id".into(),
                    json!(hook_item_id(&http::Method::POST, "", c.seq)),
                );
                Value::Object(item)
            })
            .collect();
        Outcome::json(200, Value::Array(items))
    }
}

/// The `id` a webhook sink answers: `H<seq>` for what a request creates; for a `PATCH` or
/// `PUT` of `<collection>/<id>`, that `id`.
fn hook_item_id(method: &http::Method, sub_path: &str, seq: u64) -> String {
    let updated = (method == http::Method::PATCH || method == http::Method::PUT)
        .then(|| sub_path.rsplit('/').next())
        .flatten()
        .filter(|id| !id.is_empty());
    updated.map_or_else(|| format!("H{seq:06}"), str::to_string)
}

/// Messages as `conversations.history` returns them: their `metadata` only with
/// `include_all_metadata=true`, as on Slack.
fn without_metadata_unless_asked(messages: Vec<Value>, p: &Map<String, Value>) -> Vec<Value> {
    if flag_true(p.get("include_all_metadata")) {
        return messages;
    }
    messages
        .into_iter()
        .map(|mut m| {
            if let Value::Object(obj) = &mut m {
                obj.remove("metadata");
            }
            m
        })
        .collect()
}

/// Where [`SlackEmulator::stall_next`] holds a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StallPoint {
    /// On arrival, before the emulator acts on it: the call is in flight and nothing
    /// happened yet. Released, it is carried out as usual.
    BeforeActing,
    /// After the emulator carried it out and recorded it, before the answer goes back: the
    /// caller cannot know it succeeded ("between a call and its commit").
    BeforeAnswering,
}

/// A predicate on a call's parameters (see [`SlackEmulator::stall_next_where`]).
type ParamFilter = Box<dyn Fn(&Map<String, Value>) -> bool + Send + Sync>;

/// A call still to stall.
struct StallRule {
    target: String,
    point: StallPoint,
    filter: ParamFilter,
}

#[derive(Default)]
struct StallState {
    rules: Vec<StallRule>,
    /// Targets of the calls being held now (one entry per call).
    held: Vec<String>,
}

/// Calls held on purpose until the test releases them.
struct Stalls {
    state: Mutex<StallState>,
    /// Bumped by [`SlackEmulator::release_stalled`]; held calls wait for a change.
    release: watch::Sender<u64>,
}

impl Default for Stalls {
    fn default() -> Self {
        Stalls {
            state: Mutex::new(StallState::default()),
            release: watch::channel(0).0,
        }
    }
}

impl Stalls {
    fn lock(&self) -> MutexGuard<'_, StallState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the first rule matching this call. For [`StallPoint::BeforeActing`] waits here
    /// until released and answers false; for [`StallPoint::BeforeAnswering`] answers true
    /// (the caller holds the answer with [`Stalls::hold_answer`]).
    async fn hold(&self, target: &str, params: &Map<String, Value>, at: StallPoint) -> bool {
        let point = {
            let mut st = self.lock();
            let found = st
                .rules
                .iter()
                .position(|r| r.target == target && (r.filter)(params));
            match found {
                Some(i) => st.rules.remove(i).point,
                None => return false,
            }
        };
        if point != at {
            return true;
        }
        self.hold_answer(target).await;
        false
    }

    /// Waits until the next release.
    async fn hold_answer(&self, target: &str) {
        let mut rx = self.release.subscribe();
        self.lock().held.push(target.to_string());
        // Err: the emulator is gone, nothing to wait for.
        let _ = rx.changed().await;
        let mut st = self.lock();
        if let Some(i) = st.held.iter().position(|t| t == target) {
            st.held.remove(i);
        }
    }
}

/// The name a stall rule gives a request: the Web API method (`chat.postMessage`), or the
/// path for the other sinks (`hook/<name>`, `response/<id>`, `health/<service>`).
fn stall_target(head: &str, rest: &str, trimmed: &str) -> String {
    match head {
        "api" => rest.to_string(),
        "hook" => format!("hook/{}", rest.split('/').next().unwrap_or(rest)),
        _ => trimmed.to_string(),
    }
}

impl SlackEmulator {
    /// Holds the next call to `target` at `point` until [`Self::release_stalled`]. `target`
    /// is a Web API method (`conversations.create`) or a path: `hook/<name>`,
    /// `response/<id>`, `health/<service>`. Lets a test kill the bot while the call is in
    /// flight, or after the call took effect but before the bot heard of it.
    pub fn stall_next(&self, target: &str, point: StallPoint) {
        self.stall_next_where(target, point, |_| true);
    }

    /// [`Self::stall_next`] for the next call whose parameters satisfy `filter` (e.g. a
    /// `chat.postMessage` with buttons, to a given channel).
    pub fn stall_next_where(
        &self,
        target: &str,
        point: StallPoint,
        filter: impl Fn(&Map<String, Value>) -> bool + Send + Sync + 'static,
    ) {
        self.shared.stalls.lock().rules.push(StallRule {
            target: target.to_string(),
            point,
            filter: Box::new(filter),
        });
    }

    /// How many calls to `target` are being held now.
    pub fn stalled(&self, target: &str) -> usize {
        self.shared
            .stalls
            .lock()
            .held
            .iter()
            .filter(|t| *t == target)
            .count()
    }

    /// Waits until a call to `target` is being held; false if none is within `timeout`.
    pub async fn wait_stalled(&self, target: &str, timeout: Duration) -> bool {
        self.wait_for(timeout, |s| (s.stalled(target) > 0).then_some(()))
            .await
            .is_some()
    }

    /// Lets every held call go on, and forgets the stalls not triggered yet.
    pub fn release_stalled(&self) {
        self.shared.stalls.lock().rules.clear();
        self.shared.stalls.release.send_modify(|n| *n += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "xoxb-test";

    async fn post_json(
        emu: &SlackEmulator,
        method: &str,
        token: Option<&str>,
        body: Value,
    ) -> (u16, HeaderMap, Value) {
        let client = reqwest::Client::new();
        let mut req = client
            .post(format!("{}{method}", emu.api_url()))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body: Value = resp.json().await.expect("json body");
        (status, headers, body)
    }

    async fn call(emu: &SlackEmulator, method: &str, body: Value) -> Value {
        post_json(emu, method, Some(TOKEN), body).await.2
    }

    #[tokio::test]
    async fn creates_channels_and_refuses_taken_names() {
        let emu = SlackEmulator::start(TOKEN).await.expect("start");
        let r = call(
            &emu,
            "conversations.create",
            json!({"name": "inc-42-db-down"}),
        )
        .await;
        assert_eq!(r["ok"], json!(true), "{r}");
        assert_eq!(r["channel"]["id"], json!("C1001"));
        assert_eq!(r["channel"]["name"], json!("inc-42-db-down"));
        assert_eq!(
            emu.channel_id_by_name("inc-42-db-down").as_deref(),
            Some("C1001")
        );
        assert_eq!(emu.channel_name("C1001").as_deref(), Some("inc-42-db-down"));
        assert_eq!(emu.members("C1001"), vec![BOT_USER_ID.to_string()]);

        let again = call(
            &emu,
            "conversations.create",
            json!({"name": "inc-42-db-down"}),
        )
        .await;
        assert_eq!(again["error"], json!("name_taken"));
        let known = call(&emu, "conversations.create", json!({"name": "incidents"})).await;
        assert_eq!(known["error"], json!("name_taken"));
        for (name, error) in [
            ("", "invalid_name_required"),
            ("Big", "invalid_name_specials"),
            ("--", "invalid_name_punctuation"),
        ] {
            let r = call(&emu, "conversations.create", json!({"name": name})).await;
            assert_eq!(r["error"], json!(error), "{name}");
        }
        let long = "a".repeat(81);
        let r = call(&emu, "conversations.create", json!({"name": long})).await;
        assert_eq!(r["error"], json!("invalid_name_maxlength"));

        // Invite (comma-separated and list forms), topic.
        let r = call(
            &emu,
            "conversations.invite",
            json!({"channel": "C1001", "users": "U0ALICE, U0BOB"}),
        )
        .await;
        assert_eq!(r["ok"], json!(true));
        call(
            &emu,
            "conversations.invite",
            json!({"channel": "C1001", "users": ["U0BOB", "U0CAROL"]}),
        )
        .await;
        assert_eq!(
            emu.members("C1001"),
            vec!["UBOT", "U0ALICE", "U0BOB", "U0CAROL"]
        );
        call(
            &emu,
            "conversations.setTopic",
            json!({"channel": "C1001", "topic": "P0: db down"}),
        )
        .await;
        assert_eq!(emu.topic("C1001").as_deref(), Some("P0: db down"));

        assert_eq!(emu.ok_calls("conversations.create").len(), 1);
        assert_eq!(emu.api_calls("conversations.create").len(), 7);
        let seqs: Vec<u64> = emu.calls().iter().map(|c| c.seq).collect();
        assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
        emu.shutdown();
    }

    #[tokio::test]
    async fn injected_name_taken_takes_the_name() {
        let emu = SlackEmulator::start(TOKEN).await.expect("start");
        emu.name_taken_next(1);
        let r = call(&emu, "conversations.create", json!({"name": "inc-1"})).await;
        assert_eq!(r["error"], json!("name_taken"));
        let recorded = emu.api_calls("conversations.create");
        assert_eq!(recorded[0].fault.as_deref(), Some("injected name_taken"));
        let r = call(&emu, "conversations.create", json!({"name": "inc-1"})).await;
        assert_eq!(r["error"], json!("name_taken"));
        assert!(emu.api_calls("conversations.create")[1].fault.is_none());
        emu.take_name("inc-2");
        let r = call(&emu, "conversations.create", json!({"name": "inc-2"})).await;
        assert_eq!(r["error"], json!("name_taken"));
        let r = call(&emu, "conversations.create", json!({"name": "inc-3"})).await;
        assert_eq!(r["ok"], json!(true));
    }

    #[tokio::test]
    async fn posts_and_updates_messages() {
        let emu = SlackEmulator::start(TOKEN).await.expect("start");
        let blocks = json!([
            {"type": "section", "text": {"type": "mrkdwn", "text": "*P0* db down"}},
            {"type": "actions", "block_id": "acts", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Ack"}, "value": "ack"},
                {"type": "button", "action_id": "resolve", "text": {"type": "plain_text", "text": "Resolve"}}
            ]}
        ]);
        // Blocks given as a JSON string are parsed, like Slack does.
        let r = call(
            &emu,
            "chat.postMessage",
            json!({"channel": "C0ANNOUNCE", "text": "P0 db down", "blocks": blocks.to_string()}),
        )
        .await;
        assert_eq!(r["ok"], json!(true), "{r}");
        assert_eq!(r["ts"], json!("1700000000.000001"));
        let stored = emu
            .message("C0ANNOUNCE", "1700000000.000001")
            .expect("stored");
        assert!(stored["blocks"][0]["block_id"]
            .as_str()
            .is_some_and(|s| s.len() == 4));
        assert_eq!(stored["blocks"][1]["block_id"], json!("acts"));
        let generated = stored["blocks"][1]["elements"][0]["action_id"]
            .as_str()
            .unwrap_or_default();
        assert!(
            generated.ends_with('=') && generated.len() == 6,
            "{generated}"
        );
        assert_eq!(
            stored["blocks"][1]["elements"][1]["action_id"],
            json!("resolve")
        );
        assert_eq!(emu.posts_to("C0ANNOUNCE").len(), 1);
        assert!(emu.posts_to("C0ANNOUNCE")[0]
            .param("blocks")
            .is_some_and(Value::is_array));

        let r = call(&emu, "chat.postMessage", json!({"channel": "C0ANNOUNCE"})).await;
        assert_eq!(r["error"], json!("no_text"));
        let r = call(&emu, "chat.postMessage", json!({"text": "hi"})).await;
        assert_eq!(r["error"], json!("channel_not_found"));
        assert_eq!(emu.posts_to("C0ANNOUNCE").len(), 1);

        let r = call(
            &emu,
            "chat.update",
            json!({"channel": "C0ANNOUNCE", "ts": "1700000000.000001", "text": "resolved"}),
        )
        .await;
        assert_eq!(r["ok"], json!(true), "{r}");
        assert_eq!(r["text"], json!("resolved"));
        let stored = emu
            .message("C0ANNOUNCE", "1700000000.000001")
            .expect("stored");
        assert_eq!(stored["text"], json!("resolved"));
        assert!(stored["blocks"].is_array(), "blocks kept when not given");
        let r = call(
            &emu,
            "chat.update",
            json!({"channel": "C0ANNOUNCE", "ts": "1.2", "text": "x"}),
        )
        .await;
        assert_eq!(r["error"], json!("message_not_found"));

        let r = call(
            &emu,
            "chat.getPermalink",
            json!({"channel": "C0ANNOUNCE", "message_ts": "1700000000.000001"}),
        )
        .await;
        assert_eq!(
            r["permalink"],
            json!("https://acme.slack.com/archives/C0ANNOUNCE/p1700000000000001")
        );
    }

    #[tokio::test]
    async fn history_and_replies_over_get() {
        let emu = SlackEmulator::start(TOKEN).await.expect("start");
        emu.register_message("C1", "1700000100.000100", "U0ALICE", "first");
        emu.register_message("C1", "1700000200.000200", "U0BOB", "second");
        emu.register_message_value(
            "C1",
            "1700000300.000300",
            json!({"type": "message", "user": "U0BOB", "text": "reply", "ts": "1700000300.000300", "thread_ts": "1700000100.000100"}),
        );
        let client = reqwest::Client::new();
        let url = format!("{}conversations.history?channel=C1&limit=10", emu.api_url());
        let r: Value = client
            .get(url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        let texts: Vec<&str> = r["messages"]
            .as_array()
            .map(|m| m.iter().filter_map(|x| x["text"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(texts, vec!["second", "first"]);

        let url = format!(
            "{}conversations.history?channel=C1&oldest=1700000100.000100",
            emu.api_url()
        );
        let r: Value = client
            .get(url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        assert_eq!(r["messages"].as_array().map(Vec::len), Some(1));

        let url = format!(
            "{}conversations.replies?channel=C1&ts=1700000100.000100",
            emu.api_url()
        );
        let r: Value = client
            .get(url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        let texts: Vec<&str> = r["messages"]
            .as_array()
            .map(|m| m.iter().filter_map(|x| x["text"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(texts, vec!["first", "reply"]);
        let calls = emu.api_calls("conversations.history");
        assert_eq!(calls[0].http_method, "GET");
        assert_eq!(calls[0].param_str("channel"), Some("C1"));
    }

    #[tokio::test]
    async fn rate_limit_answers_429_with_retry_after() {
        let emu = SlackEmulator::start(TOKEN).await.expect("start");
        emu.ratelimit_next("chat.postMessage", 1, 3);
        let body = json!({"channel": "C0GENERAL", "text": "hi"});
        let (status, headers, r) =
            post_json(&emu, "chat.postMessage", Some(TOKEN), body.clone()).await;
        assert_eq!(status, 429);
        assert_eq!(
            headers.get("retry-after").and_then(|v| v.to_str().ok()),
            Some("3")
        );
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some(JSON_CONTENT_TYPE)
        );
        assert_eq!(r, json!({"ok": false, "error": "ratelimited"}));
        let recorded = emu.api_calls("chat.postMessage");
        assert_eq!(recorded[0].fault.as_deref(), Some("injected 429"));
        assert!(!recorded[0].ok());
        let (status, _, r) = post_json(&emu, "chat.postMessage", Some(TOKEN), body).await;
        assert_eq!(status, 200);
        assert_eq!(r["ok"], json!(true));
        assert_eq!(emu.posts_to("C0GENERAL").len(), 1);
    }

    #[tokio::test]
    async fn injected_500s() {
        let emu = SlackEmulator::start(TOKEN).await.expect("start");
        emu.fail_next("auth.test", 2);
        for _ in 0..2 {
            let (status, _, r) = post_json(&emu, "auth.test", Some(TOKEN), json!({})).await;
            assert_eq!(status, 500);
            assert_eq!(r, json!({"ok": false, "error": "fatal_error"}));
        }
        let (status, _, r) = post_json(&emu, "auth.test", Some(TOKEN), json!({})).await;
        assert_eq!((status, r["user_id"].clone()), (200, json!(BOT_USER_ID)));

        emu.fail_until_cleared("team.info");
        for _ in 0..3 {
            let (status, _, _) = post_json(&emu, "team.info", Some(TOKEN), json!({})).await;
            assert_eq!(status, 500);
        }
        emu.clear_faults();
        let (status, _, r) = post_json(&emu, "team.info", Some(TOKEN), json!({})).await;
        assert_eq!((status, r["ok"].clone()), (200, json!(true)));
        assert_eq!(emu.api_calls("team.info").len(), 4);
        assert_eq!(emu.ok_calls("team.info").len(), 1);
    }

    #[tokio::test]
    async fn auth_failures() {
        let emu = SlackEmulator::start(TOKEN).await.expect("start");
        let (status, _, r) = post_json(&emu, "auth.test", None, json!({})).await;
        assert_eq!(
            (status, r),
            (200, json!({"ok": false, "error": "not_authed"}))
        );
        let (status, _, r) = post_json(&emu, "auth.test", Some("xoxb-wrong"), json!({})).await;
        assert_eq!(
            (status, r),
            (200, json!({"ok": false, "error": "invalid_auth"}))
        );
        // The token as a form parameter works too.
        let client = reqwest::Client::new();
        let r: Value = client
            .post(format!("{}chat.postMessage", emu.api_url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={TOKEN}&channel=C0GENERAL&text=hello+there"))
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        assert_eq!(r["ok"], json!(true), "{r}");
        assert_eq!(
            emu.posts_to("C0GENERAL")[0].param_str("text"),
            Some("hello there")
        );
    }

    #[tokio::test]
    async fn other_sinks_and_uploads() {
        let emu = SlackEmulator::start(TOKEN).await.expect("start");
        let client = reqwest::Client::new();
        let resp = client
            .post(emu.response_url("r1"))
            .json(&json!({"replace_original": true, "text": "done"}))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 200);
        let resp = client
            .post(emu.hook_url("senior"))
            .body("{}")
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 200);
        let resp = client
            .get(format!("{}/nowhere", emu.base_url()))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 404);
        assert_eq!(emu.responses("r1").len(), 1);
        assert_eq!(emu.responses("r1")[0].param_str("text"), Some("done"));
        assert_eq!(emu.hooks("senior").len(), 1);

        let r = call(
            &emu,
            "files.getUploadURLExternal",
            json!({"filename": "t.txt", "length": 5}),
        )
        .await;
        let url = r["upload_url"].as_str().unwrap_or_default().to_string();
        assert_eq!(url, format!("{}/upload/F00000001", emu.base_url()));
        let text = client
            .post(url)
            .body("hello")
            .send()
            .await
            .expect("send")
            .text()
            .await
            .expect("text");
        assert_eq!(text, "OK - 5");
        assert_eq!(emu.uploaded("F00000001").as_deref(), Some(&b"hello"[..]));

        let r = call(&emu, "conversations.open", json!({"users": "U0PRIMARY"})).await;
        assert_eq!(r["channel"]["id"], json!("DU0PRIMARY"));
        assert_eq!(
            emu.dm_channels("U0PRIMARY"),
            vec!["U0PRIMARY", "DU0PRIMARY"]
        );
        let r = call(
            &emu,
            "views.open",
            json!({"trigger_id": "1.2.3", "view": {"type": "modal", "blocks": []}}),
        )
        .await;
        assert_eq!(r["view"]["id"], json!("V00000001"));
        let r = call(&emu, "users.info", json!({"user": "U0ALICE"})).await;
        assert_eq!(r["user"]["name"], json!("alice"));
        assert_eq!(r["user"]["real_name"], json!("Alice"));
        let r = call(&emu, "some.unknownMethod", json!({})).await;
        assert_eq!(r, json!({"ok": true}));

        let kinds: Vec<CallKind> = emu.calls().iter().take(3).map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            vec![CallKind::Response, CallKind::Hook, CallKind::Other]
        );
        emu.shutdown();
        emu.shutdown();
        let gone = emu
            .wait_for(Duration::from_secs(2), |e| {
                std::net::TcpStream::connect(e.base_url().trim_start_matches("http://"))
                    .is_err()
                    .then_some(())
            })
            .await;
        assert!(gone.is_some(), "still serving after shutdown");
    }

    #[tokio::test]
    async fn latency_is_concurrent() {
        let emu = SlackEmulator::start(TOKEN).await.expect("start");
        emu.set_latency(Duration::from_millis(200));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..5 {
            let emu = emu.clone();
            tasks.push(tokio::spawn(async move {
                call(
                    &emu,
                    "chat.postMessage",
                    json!({"channel": "C0GENERAL", "text": format!("m{i}")}),
                )
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.expect("join")["ok"], json!(true));
        }
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(800), "{elapsed:?}");
        let found = emu
            .wait_for(Duration::from_millis(100), |e| {
                (e.posts_to("C0GENERAL").len() == 5).then_some(5)
            })
            .await;
        assert_eq!(found, Some(5));

        // A client that gives up during the latency is still recorded.
        let impatient = reqwest::Client::builder()
            .timeout(Duration::from_millis(50))
            .build()
            .expect("client");
        let sent = impatient
            .post(format!("{}auth.test", emu.api_url()))
            .bearer_auth(TOKEN)
            .send()
            .await;
        assert!(sent.is_err(), "answered before the latency passed");
        let recorded = emu
            .wait_for(Duration::from_secs(2), |e| {
                e.ok_calls("auth.test").first().map(|c| c.seq)
            })
            .await;
        assert_eq!(recorded, Some(5));
    }

    #[test]
    fn parses_multipart_and_form_bodies() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"channels\"\r\n\r\nC1001\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nline1\r\nline2\r\n--XyZ--\r\n";
        let p = parse_params("token=t", body, "multipart/form-data; boundary=XyZ");
        assert_eq!(p.get("channels"), Some(&json!("C1001")));
        assert_eq!(p.get("file"), Some(&json!("line1\r\nline2")));
        assert_eq!(p.get("token"), Some(&json!("t")));

        let p = parse_params("", b"--nope", "multipart/form-data");
        assert!(p.contains_key("_unparsed"));
        let p = parse_params("", b"{not json", "application/json");
        assert!(p.contains_key("_unparsed"));
        let p = parse_params("a=1&a=2&users=%5B%22U1%22%5D", b"", "");
        assert_eq!(p.get("a"), Some(&json!(["1", "2"])));
        assert_eq!(p.get("users"), Some(&json!(["U1"])));
    }

    #[test]
    fn helpers() {
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(user_name("U0ALICE"), "alice");
        assert_eq!(user_name("UBOT"), "bot");
        assert_eq!(user_name("U"), "u");
        assert!(ts_key(&json!("1700000000.000002")) > ts_key(&json!("1700000000.000001")));
        assert_eq!(ts_key(&json!("junk")), 0);
        assert_eq!(ts_key(&json!(1700000000)), ts_key(&json!("1700000000.0")));
        assert_eq!(
            collapse_slashes("//api///chat.postMessage"),
            "/api/chat.postMessage"
        );
    }

    #[tokio::test]
    async fn refuses_what_slack_refuses() {
        let emu = SlackEmulator::start(TOKEN).await.expect("start");
        let section = |n: usize| json!([{"type": "section", "text": {"type": "mrkdwn", "text": "x".repeat(n)}}]);
        let post = |blocks: Value| json!({"channel": "C0ANNOUNCE", "text": "t", "blocks": blocks.to_string()});
        let r = call(&emu, "chat.postMessage", post(section(3000))).await;
        assert_eq!(r["ok"], json!(true), "{r}");
        let ts = r["ts"].as_str().expect("ts").to_string();
        let r = call(&emu, "chat.postMessage", post(section(3001))).await;
        assert_eq!(r["error"], json!("invalid_blocks"), "{r}");
        let r = call(
            &emu,
            "chat.update",
            json!({"channel": "C0ANNOUNCE", "ts": ts, "blocks": section(3001)}),
        )
        .await;
        assert_eq!(r["error"], json!("invalid_blocks"), "{r}");
        let r = call(
            &emu,
            "chat.postEphemeral",
            json!({"channel": "C0ANNOUNCE", "user": "U1", "text": "x".repeat(40_001)}),
        )
        .await;
        assert_eq!(r["error"], json!("msg_too_long"), "{r}");
        let r = call(
            &emu,
            "conversations.setTopic",
            json!({"channel": "C0ANNOUNCE", "topic": "t".repeat(251)}),
        )
        .await;
        assert_eq!(r["error"], json!("too_long"), "{r}");
        let r = call(
            &emu,
            "views.open",
            json!({"trigger_id": "t", "view": {"type": "modal", "title": {"type": "plain_text", "text": "t".repeat(25)}, "blocks": []}}),
        )
        .await;
        assert_eq!(r["error"], json!("invalid_blocks"), "{r}");
        assert_eq!(
            emu.posts_to("C0ANNOUNCE").len(),
            1,
            "nothing refused was posted"
        );

        // A response_url takes 5 posts; each response_url handed out is a new one.
        let client = reqwest::Client::new();
        let url = emu.response_url("r");
        let mut statuses = Vec::new();
        for _ in 0..6 {
            let resp = client
                .post(&url)
                .json(&json!({"text": "hi"}))
                .send()
                .await
                .expect("send");
            statuses.push(resp.status().as_u16());
        }
        assert_eq!(statuses, [200, 200, 200, 200, 200, 404]);
        let fresh = emu.response_url("r");
        assert_ne!(fresh, url);
        let resp = client
            .post(&fresh)
            .json(&json!({"text": "hi"}))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 200);
        let resp = client
            .post(emu.response_url("r"))
            .json(&json!({"blocks": section(3001)}))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 400);
        assert_eq!(emu.responses("r").len(), 8);
        assert_eq!(emu.responses("r").iter().filter(|c| c.ok()).count(), 6);
    }

    async fn get(emu: &SlackEmulator, method_and_query: &str) -> Value {
        reqwest::Client::new()
            .get(format!("{}{method_and_query}", emu.api_url()))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json")
    }

    #[tokio::test]
    async fn succeed_then_fail_acts_then_answers_500() {
        let emu = SlackEmulator::start(TOKEN).await.expect("start");
        emu.succeed_then_fail_next("conversations.create", 1);
        emu.succeed_then_fail_next("chat.postMessage", 1);
        emu.take_name("general-2");
        let taken = call(&emu, "conversations.create", json!({"name": "general-2"})).await;
        assert_eq!(taken["error"], json!("name_taken"), "errors pass through");
        let (status, _, r) = post_json(
            &emu,
            "conversations.create",
            Some(TOKEN),
            json!({"name": "inc-1-db"}),
        )
        .await;
        assert_eq!(
            (status, r),
            (500, json!({"ok": false, "error": "fatal_error"}))
        );
        // The channel exists all the same, and its name is taken.
        let id = emu.channel_id_by_name("inc-1-db").expect("channel created");
        let again = call(&emu, "conversations.create", json!({"name": "inc-1-db"})).await;
        assert_eq!(again["error"], json!("name_taken"));
        let recorded = emu.api_calls("conversations.create");
        assert_eq!(recorded[0].fault, None);
        assert_eq!(recorded[1].fault.as_deref(), Some(SUCCEEDED_THEN_FAILED));
        assert!(!recorded[1].ok());

        // Only the next call is concerned: the first post answers 500, the second 200.
        for (text, expected) in [("kickoff", 500), ("second", 200)] {
            let body = json!({"channel": id, "text": text});
            let (status, _, _) = post_json(&emu, "chat.postMessage", Some(TOKEN), body).await;
            assert_eq!(status, expected, "{text}");
        }
        let history = get(&emu, &format!("conversations.history?channel={id}")).await;
        let texts: Vec<String> = history["messages"]
            .as_array()
            .map(|ms| ms.iter().map(|m| text_of(&m["text"])).collect())
            .unwrap_or_default();
        assert_eq!(texts, ["second", "kickoff"]);
    }

    #[tokio::test]
    async fn conversations_list_pages_and_tells_creator_and_archived() {
        let emu = SlackEmulator::start(TOKEN).await.expect("start");
        let human = emu.add_channel("inc-1-db", "U0ALICE");
        let r = call(&emu, "conversations.create", json!({"name": "inc-1-db-2"})).await;
        let own = r["channel"]["id"].as_str().expect("id").to_string();
        emu.archive_channel(&human);
        assert_eq!(
            call(&emu, "conversations.create", json!({"name": "inc-1-db"})).await["error"],
            json!("name_taken")
        );

        // general, incidents, inc-1-db, inc-1-db-2: two pages of 2.
        let first = get(
            &emu,
            "conversations.list?types=public_channel,private_channel&limit=2",
        )
        .await;
        let names = |r: &Value| -> Vec<String> {
            r["channels"]
                .as_array()
                .map(|cs| cs.iter().map(|c| text_of(&c["name"])).collect())
                .unwrap_or_default()
        };
        assert_eq!(names(&first), ["general", "incidents"]);
        let cursor = first["response_metadata"]["next_cursor"]
            .as_str()
            .expect("cursor")
            .to_string();
        assert!(!cursor.is_empty());
        let second = get(&emu, &format!("conversations.list?limit=2&cursor={cursor}")).await;
        assert_eq!(names(&second), ["inc-1-db", "inc-1-db-2"]);
        assert_eq!(second["response_metadata"]["next_cursor"], json!(""));
        assert_eq!(second["channels"][0]["id"], json!(human));
        assert_eq!(second["channels"][0]["creator"], json!("U0ALICE"));
        assert_eq!(second["channels"][0]["is_archived"], json!(true));
        assert_eq!(second["channels"][1]["id"], json!(own));
        assert_eq!(second["channels"][1]["creator"], json!(BOT_USER_ID));
        assert_eq!(second["channels"][1]["is_archived"], json!(false));

        let live = get(&emu, "conversations.list?exclude_archived=true").await;
        assert_eq!(names(&live), ["general", "incidents", "inc-1-db-2"]);
        let private_only = get(&emu, "conversations.list?types=private_channel").await;
        assert_eq!(names(&private_only), Vec::<String>::new());
        let bad = get(&emu, "conversations.list?cursor=nonsense").await;
        assert_eq!(bad["error"], json!("invalid_cursor"));
        let info = get(&emu, &format!("conversations.info?channel={human}")).await;
        assert_eq!(info["channel"]["creator"], json!("U0ALICE"));
    }

    #[tokio::test]
    async fn message_metadata_is_kept_and_returned_when_asked() {
        let emu = SlackEmulator::start(TOKEN).await.expect("start");
        let metadata =
            json!({"event_type": "warroom_kickoff", "event_payload": {"incident": "INC-1"}});
        let r = call(
            &emu,
            "chat.postMessage",
            json!({"channel": "C0GENERAL", "text": "kickoff", "metadata": metadata}),
        )
        .await;
        let ts = r["ts"].as_str().expect("ts").to_string();
        // Form-encoded, metadata is a JSON string.
        let form = reqwest::Client::new()
            .post(format!("{}chat.postMessage", emu.api_url()))
            .bearer_auth(TOKEN)
            .form(&[
                ("channel", "C0GENERAL"),
                ("text", "form"),
                (
                    "metadata",
                    r#"{"event_type":"other","event_payload":{"k":"v"}}"#,
                ),
            ])
            .send()
            .await
            .expect("send");
        assert_eq!(form.status().as_u16(), 200);

        let plain = get(&emu, "conversations.history?channel=C0GENERAL").await;
        assert!(
            plain["messages"]
                .as_array()
                .is_some_and(|ms| ms.iter().all(|m| m.get("metadata").is_none())),
            "{plain}"
        );
        let all = get(
            &emu,
            "conversations.history?channel=C0GENERAL&include_all_metadata=true",
        )
        .await;
        assert_eq!(all["messages"][0]["metadata"]["event_type"], json!("other"));
        assert_eq!(all["messages"][1]["metadata"], metadata);
        assert_eq!(all["messages"][1]["user"], json!(BOT_USER_ID));

        // chat.update keeps the metadata unless it gives new metadata.
        call(
            &emu,
            "chat.update",
            json!({"channel": "C0GENERAL", "ts": ts, "text": "edited"}),
        )
        .await;
        assert_eq!(
            emu.message("C0GENERAL", &ts).expect("kept")["metadata"],
            metadata
        );
    }

    #[tokio::test]
    async fn a_get_on_a_hook_lists_what_its_posts_created() {
        let emu = SlackEmulator::start(TOKEN).await.expect("start");
        let client = reqwest::Client::new();
        let url = format!("{}/pages/p1/incidents", emu.hook_url("statuspage"));
        let list = |url: String| {
            let client = client.clone();
            async move {
                client
                    .get(url)
                    .send()
                    .await
                    .expect("send")
                    .json::<Value>()
                    .await
                    .expect("json")
            }
        };
        assert_eq!(list(format!("{url}?limit=100")).await, json!([]));
        let created: Value = client
            .post(&url)
            .json(&json!({"incident": {"name": "db", "metadata": {"warroom": {"incident": "INC-1"}}}}))
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        emu.fail_next("hook/statuspage", 1);
        let failed = client
            .post(&url)
            .json(&json!({"incident": {"name": "not created"}}))
            .send()
            .await
            .expect("send");
        assert_eq!(failed.status().as_u16(), 500);
        let listed = list(format!("{url}?limit=100")).await;
        assert_eq!(
            listed,
            json!([{"id": created["id"], "name": "db", "metadata": {"warroom": {"incident": "INC-1"}}}])
        );
        // Another path is another collection.
        let other = list(format!("{}/pages/p2/incidents", emu.hook_url("statuspage"))).await;
        assert_eq!(other, json!([]));

        // A create carried out but answered 500 is in the collection; an update names its item.
        emu.succeed_then_fail_next("hook/statuspage", 1);
        let lost = client
            .post(&url)
            .json(&json!({"incident": {"name": "lost answer"}}))
            .send()
            .await
            .expect("send");
        assert_eq!(lost.status().as_u16(), 500);
        let listed = list(url.clone()).await;
        assert_eq!(listed[0]["name"], json!("lost answer"));
        let lost_id = listed[0]["id"].as_str().expect("id").to_string();
        assert_ne!(json!(lost_id), created["id"]);
        let updated: Value = client
            .patch(format!("{url}/{lost_id}"))
            .json(&json!({"incident": {"status": "resolved"}}))
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        assert_eq!(updated["id"], json!(lost_id));
    }

    #[tokio::test]
    async fn a_call_stalled_before_acting_has_no_effect_until_released() {
        let emu = SlackEmulator::start(TOKEN).await.expect("start");
        emu.stall_next_where("conversations.create", StallPoint::BeforeActing, |p| {
            p.get("name").and_then(Value::as_str) == Some("held")
        });
        let other = call(&emu, "conversations.create", json!({"name": "free"})).await;
        assert_eq!(other["ok"], true, "a call the filter rejects is not held");
        let emu2 = emu.clone();
        let held = tokio::spawn(async move {
            call(&emu2, "conversations.create", json!({"name": "held"})).await
        });
        assert!(
            emu.wait_stalled("conversations.create", Duration::from_secs(5))
                .await
        );
        assert_eq!(
            emu.channel_id_by_name("held"),
            None,
            "not carried out while held"
        );
        assert_eq!(emu.ok_calls("conversations.create").len(), 1);
        emu.release_stalled();
        let answer = held.await.expect("join");
        assert_eq!(answer["ok"], true);
        assert!(emu.channel_id_by_name("held").is_some());
        assert_eq!(emu.stalled("conversations.create"), 0);
        let again = call(&emu, "conversations.create", json!({"name": "held2"})).await;
        assert_eq!(again["ok"], true, "a stall holds one call only");
    }

    #[tokio::test]
    async fn a_call_stalled_before_answering_is_recorded_but_unanswered() {
        let emu = SlackEmulator::start(TOKEN).await.expect("start");
        emu.stall_next("hook/oncall", StallPoint::BeforeAnswering);
        let url = emu.hook_url("oncall");
        let held = tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .json(&json!({"x": 1}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
        assert!(
            emu.wait_stalled("hook/oncall", Duration::from_secs(5))
                .await
        );
        assert_eq!(emu.hooks("oncall").len(), 1, "carried out and recorded");
        assert!(!held.is_finished());
        emu.release_stalled();
        assert_eq!(held.await.expect("join").expect("answer"), 200);
    }
}
