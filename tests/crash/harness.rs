//! A child-process harness: the real `warroom serve` binary on a free port, its own database
//! (kept across restarts), a Slack emulator in the test process, a config file; start, SIGKILL,
//! restart, signed Slack requests, and reads of the database between and during runs.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;
use tokio::process::{Child, Command};

use warroom::core::Incident;
use warroom::store::{self, JobRecord, Store};
use warroom::testkit::slack_emulator::{RecordedCall, SlackEmulator};

use crate::helpers::{
    now_ts, slash_body, Answer, Backend, TestDb, ALICE, BOT_TOKEN, GENERAL, PATIENCE,
    SIGNING_SECRET,
};

/// How long a start may take (migrations included) before the test calls it a failure.
const START_PATIENCE: Duration = Duration::from_secs(20);
/// Interval between two polls of a condition.
const POLL: Duration = Duration::from_millis(20);

/// Polls `f` until it gives something, or panics naming `what` once `patience` has passed.
pub async fn poll_until<T, F, Fut>(what: &str, patience: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + patience;
    let mut tick = tokio::time::interval(POLL);
    loop {
        tick.tick().await;
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
    }
}

/// One `warroom serve` process and everything that outlives it.
pub struct Crashable {
    pub backend: Backend,
    pub slack: SlackEmulator,
    pub db: TestDb,
    /// Holds the config file and the logs of every run.
    dir: tempfile::TempDir,
    config_path: PathBuf,
    child: Option<Child>,
    addr: String,
    /// Runs so far (names the log files).
    runs: usize,
    http: reqwest::Client,
}

impl Crashable {
    /// Starts an emulator, makes a database and writes `config` (`{emulator}` stands for the
    /// emulator's base URL), then starts warroom and waits until it is ready.
    pub async fn start(backend: Backend, config: &str) -> Crashable {
        let slack = SlackEmulator::start(BOT_TOKEN).await.expect("emulator");
        let db = TestDb::new(backend).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("warroom.toml");
        std::fs::write(
            &config_path,
            config.replace("{emulator}", &slack.base_url()),
        )
        .expect("config written");
        let mut app = Crashable {
            backend,
            slack,
            db,
            dir,
            config_path,
            child: None,
            addr: String::new(),
            runs: 0,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("HTTP client"),
        };
        if let Err(e) = app.boot().await {
            panic!("warroom did not start: {e}");
        }
        app
    }

    /// Starts `warroom serve` on a free port and waits (polling `/readyz`) until it is ready.
    /// Err with the process's log when it exits or does not get ready in time.
    pub async fn boot(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "warroom is running already");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        self.addr = format!("127.0.0.1:{port}");
        self.runs += 1;
        let log = std::fs::File::create(self.log_path(self.runs)).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_warroom"))
            .arg("serve")
            .env("WARROOM_BIND", &self.addr)
            .env("DATABASE_URL", &self.db.url)
            .env("WARROOM_CONFIG", &self.config_path)
            .env("SLACK_API_URL", self.slack.api_url())
            .env("SLACK_SIGNING_SECRET", SIGNING_SECRET)
            .env("SLACK_BOT_TOKEN", BOT_TOKEN)
            .env("WARROOM_PUBLIC_URL", "https://warroom.acme.test")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("warroom starts");
        let deadline = Instant::now() + START_PATIENCE;
        let mut tick = tokio::time::interval(POLL);
        loop {
            tick.tick().await;
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("it exited ({status}):\n{}", self.log(self.runs)));
            }
            let ready = self.http.get(self.url("/readyz")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill().await;
                return Err(format!(
                    "not ready after {START_PATIENCE:?}:\n{}",
                    self.log(self.runs)
                ));
            }
        }
    }

    /// SIGKILL (`Child::kill` on Unix), and waits until the process is gone.
    pub async fn kill(&mut self) {
        let mut child = self.child.take().expect("warroom is running");
        child.kill().await.expect("SIGKILL delivered");
    }

    /// Starts warroom again on the same database, emulator and config. On PostgreSQL, where
    /// another replica may still hold a job, a job left `running` is claimed again only once its
    /// lease has expired: the leases are expired first, as if the lease time had passed.
    pub async fn restart(&mut self) -> Result<(), String> {
        if self.backend == Backend::Postgres {
            self.expire_leases().await;
        }
        self.boot().await
    }

    /// Moves the lease of every `running` job into the past (only with warroom stopped).
    /// `lease_until` is Unix milliseconds by the database's clock (claims compare it with the
    /// database's now), so 1 ms after the epoch has expired whatever the clocks say.
    async fn expire_leases(&self) {
        let store = self.store().await;
        sqlx::query("UPDATE jobs SET lease_until = $1 WHERE state = 'running'")
            .bind(1_i64)
            .execute(store.pool())
            .await
            .expect("leases expired");
        store.close().await;
    }

    /// Restarts and panics (with the log) if warroom does not start.
    pub async fn restart_ok(&mut self) {
        if let Err(e) = self.restart().await {
            panic!("warroom did not start again after the kill: {e}");
        }
    }

    /// What warroom wrote to stderr during run `n` (1-based).
    pub fn log(&self, n: usize) -> String {
        std::fs::read_to_string(self.log_path(n)).unwrap_or_default()
    }

    fn log_path(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("run-{n}.log"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A handle that sends slash commands to this run of warroom (cheap to clone, owns
    /// nothing of the harness, so tasks can hold it while the test kills the process).
    pub fn slash(&self) -> Slash {
        Slash {
            http: self.http.clone(),
            url: self.url("/slack/commands"),
            response_url: self.slack.response_url("crash"),
        }
    }

    /// `/incident <text>` typed by `user` in `channel` (see [`Slash::command_as`]).
    pub async fn command_as(&self, text: &str, channel: &str, user: &str) -> Answer {
        self.slash().command_as(text, channel, user).await
    }

    /// `/incident open <severity> <title>` from Alice in #general; asserts the 200.
    pub async fn open(&self, severity: &str, title: &str) {
        let answer = self
            .command_as(&format!("open {severity} {title}"), GENERAL, ALICE)
            .await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }

    /// A short-lived connection to the test's database (warroom may be running or not).
    async fn store(&self) -> Store {
        Store::connect(&self.db.url).await.expect("database")
    }

    pub async fn jobs(&self) -> Vec<JobRecord> {
        let store = self.store().await;
        let jobs = {
            let mut conn = store.acquire().await.expect("db");
            store::list_jobs(&mut conn).await.expect("jobs")
        };
        store.close().await;
        jobs
    }

    pub async fn incident(&self, number: i64) -> Option<Incident> {
        let store = self.store().await;
        let found = {
            let mut conn = store.acquire().await.expect("db");
            store::get_incident(&mut conn, number)
                .await
                .expect("incident")
        };
        store.close().await;
        found
    }

    /// Every incident, oldest first.
    pub async fn incidents(&self) -> Vec<Incident> {
        let store = self.store().await;
        let mut all = {
            let mut conn = store.acquire().await.expect("db");
            store::recent_incidents(&mut conn, 1000)
                .await
                .expect("incidents")
        };
        store.close().await;
        all.reverse();
        all
    }

    /// Polls the database until `f` holds for the jobs table.
    pub async fn jobs_until(
        &self,
        what: &str,
        mut f: impl FnMut(&[JobRecord]) -> bool,
    ) -> Vec<JobRecord> {
        let deadline = Instant::now() + PATIENCE;
        let mut tick = tokio::time::interval(POLL);
        loop {
            tick.tick().await;
            let jobs = self.jobs().await;
            if f(&jobs) {
                return jobs;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; jobs: {jobs:#?}\nlog:\n{}",
                    self.log(self.runs)
                );
            }
        }
    }

    /// Waits until no job is running and none is due: everything due so far was carried out
    /// (or gave up), later steps and reminders wait for their time.
    pub async fn settled(&self) -> Vec<JobRecord> {
        self.jobs_until("the queue to settle", |jobs| {
            let now = Utc::now();
            jobs.iter()
                .all(|j| j.state != "running" && (j.state != "pending" || j.run_at > now))
        })
        .await
    }

    /// Polls the database until incident `number` satisfies `f`.
    pub async fn incident_until(
        &self,
        number: i64,
        what: &str,
        f: impl Fn(&Incident) -> bool,
    ) -> Incident {
        poll_until(what, PATIENCE, || async {
            self.incident(number).await.filter(|i| f(i))
        })
        .await
    }

    /// Waits until incident `number` has its war room and its kickoff stored.
    pub async fn opened(&self, number: i64) -> Incident {
        self.incident_until(number, "the war room and the kickoff", |i| {
            i.war_room.is_some() && i.kickoff_ref.is_some()
        })
        .await
    }

    /// Waits until a call to `target` is held by the emulator.
    pub async fn stalled(&self, target: &str) {
        assert!(
            self.slack.wait_stalled(target, PATIENCE).await,
            "no call to {target} arrived; Slack saw:\n{}",
            describe(&self.slack.calls())
        );
    }

    /// Waits until the emulator saw a call `f` accepts.
    pub async fn saw(&self, what: &str, f: impl Fn(&RecordedCall) -> bool) -> RecordedCall {
        match self
            .slack
            .wait_for(PATIENCE, |s| s.calls().into_iter().find(|c| f(c)))
            .await
        {
            Some(c) => c,
            None => panic!(
                "timed out waiting for {what}; Slack saw:\n{}",
                describe(&self.slack.calls())
            ),
        }
    }
}

/// Sends signed slash commands to one run of warroom.
#[derive(Clone)]
pub struct Slash {
    http: reqwest::Client,
    url: String,
    response_url: String,
}

impl Slash {
    /// `/incident <text>` typed by `user` in `channel`, signed as Slack signs. A request the
    /// process could not answer (it was killed) gives status 0.
    pub async fn command_as(&self, text: &str, channel: &str, user: &str) -> Answer {
        let trigger = format!("trig-{}-{}", Utc::now().timestamp_micros(), rand_suffix());
        let body = slash_body(text, channel, user, &self.response_url, &trigger);
        let ts = now_ts();
        let signature = warroom::slack::sign_request(SIGNING_SECRET, &ts, body.as_bytes());
        let sent = self
            .http
            .post(&self.url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts)
            .header("x-slack-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) => Answer {
                status: r.status().as_u16(),
                body: r.text().await.unwrap_or_default(),
            },
            Err(e) => Answer {
                status: 0,
                body: e.to_string(),
            },
        }
    }
}

/// Channels created for incident `number` (`inc-<number>-…`), by id, from successful
/// `conversations.create` calls.
pub fn rooms_created_for(slack: &SlackEmulator, number: i64) -> Vec<String> {
    let prefix = format!("inc-{number}-");
    slack
        .ok_calls("conversations.create")
        .iter()
        .filter(|c| {
            c.response["channel"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .filter_map(|c| c.response["channel"]["id"].as_str().map(String::from))
        .collect()
}

/// Successful posts with buttons (kickoffs) to `room`.
pub fn kickoffs_in(slack: &SlackEmulator, room: &str) -> Vec<RecordedCall> {
    slack
        .posts_to(room)
        .into_iter()
        .filter(|c| is_kickoff(&c.params))
        .collect()
}

/// A message with buttons: the kickoff (summary, checklist, Acknowledge).
pub fn is_kickoff(params: &Value) -> bool {
    params["blocks"].to_string().contains("\"button\"")
}

/// A war-room channel the emulator created (`C1001`…), not #general, #incidents or a DM.
pub fn is_created_channel(channel: Option<&Value>) -> bool {
    channel
        .and_then(Value::as_str)
        .is_some_and(|c| c.starts_with('C') && c[1..].chars().all(|ch| ch.is_ascii_digit()))
}

/// Users invited to `room` by successful `conversations.invite` calls.
pub fn invited_to(slack: &SlackEmulator, room: &str) -> Vec<String> {
    slack
        .ok_calls("conversations.invite")
        .iter()
        .filter(|c| c.param_str("channel") == Some(room))
        .flat_map(|c| match &c.params["users"] {
            Value::Array(users) => users
                .iter()
                .filter_map(|u| u.as_str().map(String::from))
                .collect::<Vec<_>>(),
            users => users
                .as_str()
                .unwrap_or_default()
                .split(',')
                .map(|u| u.trim().to_string())
                .collect(),
        })
        .collect()
}

/// Distinct `delivery_id`s of the `event` webhooks posted to `/hook/<name>` (a receiver drops
/// a repeated id, so this is what the contact was paged).
pub fn deliveries(slack: &SlackEmulator, name: &str, event: &str) -> Vec<String> {
    let mut ids: Vec<String> = slack
        .hooks(name)
        .iter()
        .filter(|c| c.params["event"] == event)
        .filter_map(|c| c.params["delivery_id"].as_str().map(String::from))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

pub fn describe(calls: &[RecordedCall]) -> String {
    calls
        .iter()
        .map(|c| format!("  {} {} -> {} {}", c.method, c.params, c.status, c.response))
        .collect::<Vec<_>>()
        .join("\n")
}

fn rand_suffix() -> u32 {
    rand::random()
}
