//! `spawn_app`: the real server on a random port, its own database, a Slack emulator, a
//! manual clock; and helpers to send signed Slack requests and look at what happened.

use std::time::Duration;

use chrono::Utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use warroom::app::{App, Settings};
use warroom::clock::Clock;
use warroom::config::{Config, Environment};
use warroom::context::AppContext;
use warroom::core::{Incident, TimelineEvent};
use warroom::jobs::Queue;
use warroom::paging::routes::PagingSettings;
use warroom::store::{self, JobRecord};
use warroom::testkit::slack_emulator::SlackEmulator;
use warroom::testkit::smtp_sink::SmtpSink;

/// Generates `sqlite::<test>` and `postgres::<test>` for each `async fn <test>(Backend)`; the
/// PostgreSQL ones run when `WARROOM_TEST_POSTGRES_URL` was set at build time (`cfg(warroom_pg)`,
/// see build.rs) and are reported as ignored otherwise. Shared by the API and crash suites.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(warroom_pg), ignore = "PostgreSQL variant skipped: set WARROOM_TEST_POSTGRES_URL at build time to run it")]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

pub const SIGNING_SECRET: &str = "test-signing-secret";
pub const BOT_TOKEN: &str = "xoxb-test";
pub const GENERAL: &str = "C0GENERAL";
pub const ANNOUNCE: &str = "C0ANNOUNCE";
pub const ALICE: &str = "U0ALICE";
pub const PRIMARY: &str = "U0PRIMARY";
/// How long a test waits for something that should happen at once.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Which database engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The configuration every test starts from.
pub const BASE_CONFIG: &str = r#"
[slack]
announce_channel = "C0ANNOUNCE"

[severity.P0]
escalation = [
  { after = "0s", page = ["primary"] },
  { after = "15m", page = ["senior"] },
]

[contacts.primary]
slack_user = "U0PRIMARY"

[contacts.senior]
slack_user = "U0SENIOR"
"#;

/// A database of its own for one test: a SQLite file in a temp dir, or a fresh PostgreSQL schema.
/// Clones share the database (replicas).
#[derive(Clone)]
pub struct TestDb {
    pub url: String,
    _dir: Option<std::sync::Arc<tempfile::TempDir>>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("warroom.db").display());
                TestDb {
                    url,
                    _dir: Some(std::sync::Arc::new(dir)),
                }
            }
            Backend::Postgres => {
                let base = std::env::var("WARROOM_TEST_POSTGRES_URL")
                    .expect("WARROOM_TEST_POSTGRES_URL must be set for the PostgreSQL suite");
                let schema = format!("wr_test_{}", uuid_like());
                let admin = warroom::store::Store::connect(&base)
                    .await
                    .expect("connect to PostgreSQL");
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(admin.pool())
                    .await
                    .expect("create schema");
                admin.close().await;
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
                TestDb { url, _dir: None }
            }
        }
    }
}

fn uuid_like() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..12)
        .map(|_| char::from(b'a' + rng.gen_range(0..26)))
        .collect()
}

/// A running warroom.
pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub slack: SlackEmulator,
    pub ctx: AppContext,
    /// The job queue, to run jobs by hand when the app has no workers.
    pub queue: Queue,
    pub clock: Clock,
    pub db: TestDb,
    pub config_text: String,
    /// Receives warroom's emails.
    pub smtp: std::sync::Arc<SmtpSink>,
    shutdown: CancellationToken,
    _stop_on_drop: tokio_util::sync::DropGuard,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    http: reqwest::Client,
}

/// Options for `spawn_app_with`.
pub struct Spawn {
    pub backend: Backend,
    pub config: String,
    pub workers: usize,
}

impl Spawn {
    pub fn new(backend: Backend) -> Spawn {
        Spawn {
            backend,
            config: BASE_CONFIG.to_string(),
            workers: 1,
        }
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(Spawn::new(backend)).await
}

/// `{emulator}` in a test config stands for the emulator's base URL.
pub async fn spawn_app_with(spawn: Spawn) -> TestApp {
    let slack = SlackEmulator::start(BOT_TOKEN).await.expect("emulator");
    let db = TestDb::new(spawn.backend).await;
    let clock = Clock::manual(Utc::now());
    let smtp = std::sync::Arc::new(SmtpSink::start().await.expect("smtp sink"));
    let config = spawn.config.replace("{emulator}", &slack.base_url());
    start(slack, db, clock, config, spawn.workers, smtp).await
}

/// The secret PagerDuty signs its webhooks with, in tests.
pub const PAGERDUTY_WEBHOOK_SECRET: &str = "pd-webhook-secret";

async fn start(
    slack: SlackEmulator,
    db: TestDb,
    clock: Clock,
    config_text: String,
    workers: usize,
    smtp: std::sync::Arc<SmtpSink>,
) -> TestApp {
    let config = Config::from_toml(&config_text).expect("test config");
    let vars = [
        ("WARROOM_BIND", "127.0.0.1:0".to_string()),
        ("DATABASE_URL", db.url.clone()),
        ("SLACK_API_URL", slack.api_url()),
        ("SLACK_SIGNING_SECRET", SIGNING_SECRET.to_string()),
        ("SLACK_BOT_TOKEN", BOT_TOKEN.to_string()),
        (
            "PAGERDUTY_WEBHOOK_SECRET",
            PAGERDUTY_WEBHOOK_SECRET.to_string(),
        ),
        ("PAGERDUTY_EVENTS_URL", slack.hook_url("pagerduty")),
        ("TWILIO_ACCOUNT_SID", "ACtest".to_string()),
        ("TWILIO_AUTH_TOKEN", "twilio-token".to_string()),
        ("TWILIO_FROM", "+15550000000".to_string()),
        ("TWILIO_API_URL", slack.hook_url("twilio")),
        ("SMTP_HOST", "127.0.0.1".to_string()),
        ("SMTP_PORT", smtp.port().to_string()),
        ("SMTP_TLS", "none".to_string()),
        ("SMTP_FROM", "warroom <warroom@acme.test>".to_string()),
        ("STATUSPAGE_API_KEY", "sp-key".to_string()),
        ("STATUSPAGE_PAGE_ID", "page1".to_string()),
        ("STATUSPAGE_API_URL", slack.hook_url("statuspage")),
        (
            "WARROOM_PUBLIC_URL",
            "https://warroom.acme.test".to_string(),
        ),
    ];
    let lookup = |k: &str| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
    };
    let env = Environment::from_lookup(lookup).expect("test environment");
    let paging = PagingSettings::from_lookup(lookup).expect("test paging settings");
    let statuspage = warroom::publish::StatuspageSettings::from_lookup(lookup)
        .expect("test status page settings");
    let app = App::build(Settings {
        config,
        env,
        clock: clock.clone(),
        workers,
        paging,
        statuspage,
    })
    .await
    .expect("app builds");
    let addr = app.addr();
    let ctx = app.context();
    let queue = app.queue();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestApp {
        addr,
        slack,
        ctx,
        queue,
        clock,
        db,
        config_text,
        smtp,
        _stop_on_drop: shutdown.clone().drop_guard(),
        shutdown,
        server,
        http: reqwest::Client::new(),
    }
}

/// `v0=hex(HMAC-SHA256(secret, "v0:{ts}:{body}"))`, as Slack signs.
pub fn slack_signature(secret: &str, ts: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(b"v0:");
    mac.update(ts.as_bytes());
    mac.update(b":");
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn now_ts() -> String {
    Utc::now().timestamp().to_string()
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The `text` of a JSON answer (an ephemeral reply).
    pub fn text(&self) -> String {
        self.json()["text"].as_str().unwrap_or_default().to_string()
    }
}

/// A slash command form body, as Slack sends it.
pub fn slash_body(
    text: &str,
    channel: &str,
    user: &str,
    response_url: &str,
    trigger: &str,
) -> String {
    serde_urlencoded::to_string([
        ("token", "legacy"),
        ("team_id", "T1"),
        ("team_domain", "acme"),
        ("channel_id", channel),
        ("channel_name", "general"),
        ("user_id", user),
        ("user_name", "alice"),
        ("command", "/incident"),
        ("text", text),
        ("api_app_id", "A1"),
        ("response_url", response_url),
        ("trigger_id", trigger),
    ])
    .expect("form encodes")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs a body signed with `secret` and timestamp `ts`.
    pub async fn post_signed_with(
        &self,
        path: &str,
        body: &str,
        content_type: &str,
        secret: &str,
        ts: &str,
    ) -> Answer {
        let sig = slack_signature(secret, ts, body.as_bytes());
        let r = self
            .http
            .post(self.url(path))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", ts)
            .header("x-slack-signature", sig)
            .body(body.to_string())
            .send()
            .await
            .expect("request sent");
        Answer {
            status: r.status().as_u16(),
            body: r.text().await.unwrap_or_default(),
        }
    }

    pub async fn post_signed(&self, path: &str, body: &str, content_type: &str) -> Answer {
        self.post_signed_with(path, body, content_type, SIGNING_SECRET, &now_ts())
            .await
    }

    pub async fn post_unsigned(&self, path: &str, body: &str, content_type: &str) -> Answer {
        let r = self
            .http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body.to_string())
            .send()
            .await
            .expect("request sent");
        Answer {
            status: r.status().as_u16(),
            body: r.text().await.unwrap_or_default(),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        let r = self
            .http
            .get(self.url(path))
            .send()
            .await
            .expect("request sent");
        Answer {
            status: r.status().as_u16(),
            body: r.text().await.unwrap_or_default(),
        }
    }

    /// Scrapes `/metrics` as Prometheus would and returns its samples; panics unless the
    /// answer is Prometheus' text format (0.0.4): `text/plain`, every line a `# HELP`/`# TYPE`
    /// comment or a `name{label="value",…} value` sample, each `# TYPE` once and before its
    /// samples.
    pub async fn scrape_metrics(&self) -> Vec<Sample> {
        let r = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("request sent");
        assert_eq!(r.status().as_u16(), 200);
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        let body = r.text().await.expect("a text body");
        parse_prometheus_text(&body).unwrap_or_else(|e| panic!("{e}\n{body}"))
    }

    /// `/incident <text>` from `user` in `channel`, with a fresh trigger id; the reply address
    /// is the emulator's `/response/<reply_id>`.
    pub async fn command_as(
        &self,
        text: &str,
        channel: &str,
        user: &str,
        reply_id: &str,
    ) -> Answer {
        let body = slash_body(
            text,
            channel,
            user,
            &self.slack.response_url(reply_id),
            &format!("trig-{}", uuid_like()),
        );
        self.post_signed(
            "/slack/commands",
            &body,
            "application/x-www-form-urlencoded",
        )
        .await
    }

    pub async fn command(&self, text: &str) -> Answer {
        self.command_as(text, GENERAL, ALICE, "r0").await
    }

    /// Waits (polling, with a deadline) until `f` gives something.
    pub async fn eventually<T>(&self, what: &str, f: impl FnMut(&SlackEmulator) -> Option<T>) -> T {
        match self.slack.wait_for(PATIENCE, f).await {
            Some(v) => v,
            None => panic!(
                "timed out waiting for {what}; Slack saw:\n{}",
                self.slack
                    .calls()
                    .iter()
                    .map(|c| format!("  {} {} -> {} {}", c.method, c.params, c.status, c.response))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        }
    }

    /// Moves the clock forward by `step` until `f` gives something (or real time runs out).
    pub async fn advance_until<T>(
        &self,
        what: &str,
        step: Duration,
        mut f: impl FnMut(&SlackEmulator) -> Option<T>,
    ) -> T {
        let deadline = std::time::Instant::now() + PATIENCE * 3;
        loop {
            if let Some(v) = self.slack.wait_for(Duration::from_millis(50), &mut f).await {
                return v;
            }
            if std::time::Instant::now() > deadline {
                panic!("timed out waiting for {what} while advancing the clock");
            }
            self.clock.advance(step);
        }
    }

    pub async fn incident(&self, number: i64) -> Option<Incident> {
        let mut conn = self.ctx.store.acquire().await.expect("db");
        store::get_incident(&mut conn, number).await.expect("query")
    }

    pub async fn incident_count(&self) -> i64 {
        let mut conn = self.ctx.store.acquire().await.expect("db");
        store::incident_count(&mut conn).await.expect("query")
    }

    pub async fn timeline(&self, number: i64) -> Vec<TimelineEvent> {
        let mut conn = self.ctx.store.acquire().await.expect("db");
        store::timeline(&mut conn, number).await.expect("query")
    }

    /// The jobs, without the periodic clean-up job (tests/api/retention.rs looks at it).
    pub async fn jobs(&self) -> Vec<JobRecord> {
        let mut conn = self.ctx.store.acquire().await.expect("db");
        let mut jobs = store::list_jobs(&mut conn).await.expect("query");
        jobs.retain(|j| j.kind != warroom::retention::JOB);
        jobs
    }

    /// Polls the database until `f` holds for the jobs table.
    pub async fn jobs_until(
        &self,
        what: &str,
        mut f: impl FnMut(&[JobRecord]) -> bool,
    ) -> Vec<JobRecord> {
        let deadline = std::time::Instant::now() + PATIENCE;
        // Polls the condition until the deadline (never a fixed wait).
        let mut poll = tokio::time::interval(Duration::from_millis(20));
        loop {
            poll.tick().await;
            let jobs = self.jobs().await;
            if f(&jobs) {
                return jobs;
            }
            if std::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}; jobs: {jobs:#?}");
            }
        }
    }

    /// Stops the server and workers (the database and emulator stay).
    pub async fn stop(
        self,
    ) -> (
        SlackEmulator,
        TestDb,
        Clock,
        String,
        std::sync::Arc<SmtpSink>,
    ) {
        self.shutdown.cancel();
        let _ = self.server.await;
        self.ctx.store.close().await;
        (self.slack, self.db, self.clock, self.config_text, self.smtp)
    }

    /// Stops this app and starts another on the same database, emulator, clock and config.
    pub async fn restart(self, workers: usize) -> TestApp {
        let (slack, db, clock, config, smtp) = self.stop().await;
        start(slack, db, clock, config, workers, smtp).await
    }

    /// Another replica on the same database, emulator, clock and config.
    pub async fn replica(&self, workers: usize) -> TestApp {
        start(
            self.slack.clone(),
            self.db.clone(),
            self.clock.clone(),
            self.config_text.clone(),
            workers,
            self.smtp.clone(),
        )
        .await
    }
}

/// Every string Slack was sent (parameters of every call, and raw uploads), for leak checks.
pub fn everything_sent(slack: &SlackEmulator) -> String {
    slack
        .calls()
        .iter()
        .filter(|c| c.kind != warroom::testkit::slack_emulator::CallKind::Hook)
        .map(|c| {
            format!(
                "{} {} {}",
                c.method,
                c.params,
                String::from_utf8_lossy(&c.body)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// An open incident's war room and kickoff message.
pub struct Opened {
    pub room: String,
    pub name: String,
    pub kickoff_ts: String,
}

impl TestApp {
    /// `/incident open <severity> <title>` and waits for the war room and the kickoff.
    pub async fn open(&self, severity: &str, title: &str) -> Opened {
        let before = self.slack.ok_calls("conversations.create").len();
        let answer = self.command(&format!("open {severity} {title}")).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let (room, name) = self
            .eventually("the war room", |s| {
                let c = s.ok_calls("conversations.create").into_iter().nth(before)?;
                Some((
                    c.response["channel"]["id"].as_str()?.to_string(),
                    c.response["channel"]["name"].as_str()?.to_string(),
                ))
            })
            .await;
        let kickoff_ts = self
            .eventually("the kickoff", |s| {
                s.posts_to(&room)
                    .into_iter()
                    .find(|c| c.params["blocks"].to_string().contains("\"button\""))
                    .and_then(|c| c.response["ts"].as_str().map(String::from))
            })
            .await;
        // The kickoff's ts is stored before later updates can use it.
        let deadline = std::time::Instant::now() + PATIENCE;
        let mut poll = tokio::time::interval(Duration::from_millis(10));
        loop {
            poll.tick().await;
            let mut conn = self.ctx.store.acquire().await.expect("db");
            let stored = store::incident_by_war_room(&mut conn, &room)
                .await
                .expect("query")
                .and_then(|i| i.kickoff_ref);
            if stored.is_some() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "kickoff ts never stored"
            );
        }
        Opened {
            room,
            name,
            kickoff_ts,
        }
    }

    /// `/incident <text>` typed in the war room.
    pub async fn in_room(&self, opened: &Opened, text: &str, user: &str) -> Answer {
        let body = slash_body(
            text,
            &opened.room,
            user,
            &self.slack.response_url("room"),
            &format!("trig-{}", uuid_like()),
        );
        self.post_signed(
            "/slack/commands",
            &body,
            "application/x-www-form-urlencoded",
        )
        .await
    }

    /// Presses a button of the message `ts` in `channel`, as Slack reports it.
    pub async fn press(
        &self,
        channel: &str,
        ts: &str,
        action_id: &str,
        value: &str,
        user: &str,
    ) -> Answer {
        let payload = serde_json::json!({
            "type": "block_actions",
            "user": { "id": user, "username": user.to_lowercase(), "team_id": "T1" },
            "api_app_id": "A1",
            "token": "legacy",
            "container": { "type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false },
            "trigger_id": format!("trig-{}", uuid_like()),
            "team": { "id": "T1", "domain": "acme" },
            "channel": { "id": channel, "name": "war-room" },
            "message": { "type": "message", "ts": ts, "text": "" },
            "response_url": self.slack.response_url("press"),
            "actions": [{
                "action_id": action_id,
                "block_id": "b",
                "type": "button",
                "value": value,
                "action_ts": format!("{}.{}", Utc::now().timestamp(), uuid_like()),
            }]
        });
        self.interaction(&payload).await
    }

    pub async fn interaction(&self, payload: &serde_json::Value) -> Answer {
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).expect("form");
        self.post_signed(
            "/slack/interactions",
            &body,
            "application/x-www-form-urlencoded",
        )
        .await
    }

    /// Sends an Events API callback; `retry` adds Slack's retry headers.
    pub async fn event(
        &self,
        event: serde_json::Value,
        event_id: &str,
        retry: Option<u32>,
    ) -> Answer {
        let body = serde_json::json!({
            "token": "legacy", "team_id": "T1", "api_app_id": "A1",
            "event": event, "type": "event_callback",
            "event_id": event_id, "event_time": Utc::now().timestamp(),
        })
        .to_string();
        let ts = now_ts();
        let mut req = self
            .http
            .post(self.url("/slack/events"))
            .header("content-type", "application/json")
            .header("x-slack-request-timestamp", &ts)
            .header(
                "x-slack-signature",
                slack_signature(SIGNING_SECRET, &ts, body.as_bytes()),
            );
        if let Some(n) = retry {
            req = req
                .header("x-slack-retry-num", n.to_string())
                .header("x-slack-retry-reason", "http_timeout");
        }
        let r = req.body(body).send().await.expect("request sent");
        Answer {
            status: r.status().as_u16(),
            body: r.text().await.unwrap_or_default(),
        }
    }

    /// Waits until no job is running and none is due by the test's clock (everything due so
    /// far was carried out; later steps and reminders wait for their time).
    pub async fn settled(&self) -> Vec<JobRecord> {
        let now = self.clock.now();
        self.jobs_until("the queue to settle", |jobs| {
            jobs.iter()
                .all(|j| j.state != "running" && (j.state != "pending" || j.run_at > now))
        })
        .await
    }
}

/// The channel of the one `chat.postMessage` that reached Slack but whose answer was lost
/// (`succeed_then_fail_next`); fails the test unless exactly one was.
pub fn lost_post_channel(slack: &SlackEmulator) -> String {
    let lost: Vec<_> = slack
        .api_calls("chat.postMessage")
        .into_iter()
        .filter(|c| c.status == 500)
        .collect();
    assert_eq!(lost.len(), 1, "the answer of one post was lost");
    lost[0].param_str("channel").unwrap_or_default().to_string()
}

/// A `reaction_added`/`reaction_removed` event.
pub fn reaction(kind: &str, user: &str, emoji: &str, channel: &str, ts: &str) -> serde_json::Value {
    serde_json::json!({
        "type": kind, "user": user, "reaction": emoji, "item_user": "U0BOB",
        "item": { "type": "message", "channel": channel, "ts": ts },
        "event_ts": format!("{}.000100", Utc::now().timestamp()),
    })
}

/// One sample of a Prometheus scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses Prometheus' text exposition format (0.0.4), strictly enough to catch what a scrape
/// would reject.
pub fn parse_prometheus_text(body: &str) -> Result<Vec<Sample>, String> {
    let mut typed: Vec<String> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut samples = Vec::new();
    for line in body.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.split_whitespace().collect();
            if words.first() == Some(&"TYPE") {
                let [_, name, kind] = words[..] else {
                    return Err(format!("bad TYPE line: {line}"));
                };
                if !is_metric_name(name)
                    || !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind)
                {
                    return Err(format!("bad TYPE line: {line}"));
                }
                let of_family = |s: &String| {
                    s.strip_prefix(name)
                        .is_some_and(|t| ["", "_sum", "_count", "_bucket"].contains(&t))
                };
                if typed.iter().any(|t| t == name) || seen.iter().any(of_family) {
                    return Err(format!("TYPE repeated or after its samples: {line}"));
                }
                typed.push(name.to_string());
            }
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| format!("no value: {line}"))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(format!("bad metric name: {line}"));
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(mut inner) = rest.strip_prefix('{') {
            loop {
                if let Some(after) = inner.strip_prefix('}') {
                    rest = after;
                    break;
                }
                let eq = inner
                    .find('=')
                    .ok_or_else(|| format!("label without value: {line}"))?;
                let label = &inner[..eq];
                if !is_metric_name(label) || label.contains(':') {
                    return Err(format!("bad label name `{label}`: {line}"));
                }
                inner = inner[eq + 1..]
                    .strip_prefix('"')
                    .ok_or_else(|| format!("label value not quoted: {line}"))?;
                let mut value = String::new();
                let mut chars = inner.char_indices();
                let close = loop {
                    match chars.next() {
                        Some((i, '"')) => break i,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c @ ('\\' | '"'))) => value.push(c),
                            _ => return Err(format!("bad escape: {line}")),
                        },
                        Some((_, c)) => value.push(c),
                        None => return Err(format!("open label value: {line}")),
                    }
                };
                labels.push((label.to_string(), value));
                inner = &inner[close + 1..];
                if let Some(after) = inner.strip_prefix(',') {
                    inner = after;
                } else if !inner.starts_with('}') {
                    return Err(format!("bad label list: {line}"));
                }
            }
        }
        let mut fields = rest.split_whitespace();
        let value = fields.next().ok_or_else(|| format!("no value: {line}"))?;
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().map_err(|_| format!("bad value: {line}"))?,
        };
        if let Some(ts) = fields.next() {
            ts.parse::<i64>()
                .map_err(|_| format!("bad timestamp: {line}"))?;
        }
        if fields.next().is_some() || !rest.starts_with(' ') {
            return Err(format!("bad sample: {line}"));
        }
        seen.push(name.to_string());
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(samples)
}
