//! Load benchmark for the two latency quality bars of SPEC §9, against the real application.
//!
//! Run it with
//!
//! ```text
//! cargo bench --bench load
//! cargo bench --bench load -- --rate 200 --seconds 10 --opens 50
//! ```
//!
//! Run without `--bench` (as `cargo test --benches` does) and without figures, it makes a
//! short smoke run that only checks the harness works.
//!
//! Set `RUST_LOG` (for instance `RUST_LOG=warroom=info`) to see the application's logs on
//! stderr; without it no tracing subscriber is installed, so logging costs nothing.
//!
//! # Set-up
//!
//! One process holds everything:
//!
//! * the in-process Slack Web API emulator ([`SlackEmulator`], answering at once),
//! * the real application ([`App::build`]) with a fresh SQLite database in a temporary
//!   directory, the system clock, one job worker, and a configuration whose severities page
//!   nobody (`escalation = []`), so that what is measured is the open → war room → kickoff path,
//!
//! both on a multi-threaded tokio runtime with one worker thread per core, and
//!
//! * the load generator, on a single-threaded runtime of its own (a separate OS thread), so that
//!   the client's timers are not queued behind the server's tasks. It talks to the application
//!   over loopback TCP with a pooled `reqwest` client, exactly as Slack would: form-encoded
//!   slash commands signed with the v0 scheme (`X-Slack-Signature`, `X-Slack-Request-Timestamp`).
//!
//! # Phase A: acknowledgement latency
//!
//! "p99 under 50 ms at 200 requests/s on a 2-core machine with SQLite". Open-loop: request `i`
//! is sent at `start + i / rate` whatever became of the earlier ones. One request in five is
//! `/incident open P2 load test <i>` (a database transaction that enqueues the incident's
//! durable jobs: war room, invite, topic, kickoff, announcement, reply, and reminders for
//! later; the worker runs the due ones meanwhile against the emulator); the others are
//! `/incident help`. Latency runs from just before the request is written to the end of the
//! response body. Any answer other than HTTP 200, or a transport failure, is an error; a 200
//! whose text says warroom could not save the command or was too slow is counted as
//! "degraded". How late the generator sent (scheduling lag) is reported too, so a saturated
//! client cannot hide as a fast server.
//!
//! After phase A the benchmark waits until no job is running or due (jobs scheduled minutes or
//! hours ahead, such as status reminders, do not count), and reports how long the backlog took
//! and how many jobs failed.
//!
//! # Phase B: open → kickoff latency
//!
//! "`/incident open` → war room created and kickoff posted, against a zero-latency Slack
//! emulator: p50 under 100 ms". Sequentially (no job is due between two opens), it sends
//! `/incident open P1 kickoff latency <i>` and takes, from the emulator's record of calls, the
//! arrival time of the ok `conversations.create` that made the new war room and of the first ok
//! `chat.postMessage` to that channel with a button in its blocks (the kickoff). The latency is
//! `kickoff.at - sent_at`, so how often the benchmark polls the emulator does not matter.
//!
//! # Outcome
//!
//! A report on stdout. Missing a target is a measurement, not a failure: the process exits
//! non-zero only when the harness itself cannot do its job (the app does not start, a request
//! is rejected during warm-up, a kickoff never comes, the queue never drains).

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use warroom::app::{App, Settings};
use warroom::clock::Clock;
use warroom::config::{Config, Environment};
use warroom::context::AppContext;
use warroom::paging::routes::PagingSettings;
use warroom::store;
use warroom::testkit::slack_emulator::{SlackEmulator, GENERAL_CHANNEL, TEAM_DOMAIN, TEAM_ID};

const SIGNING_SECRET: &str = "bench-signing-secret";
const BOT_TOKEN: &str = "xoxb-bench";
/// The user who types every command.
const USER: &str = "U0BENCH";

/// SPEC §9 targets, printed next to the figures.
const ACK_P99_TARGET: Duration = Duration::from_millis(50);
const KICKOFF_P50_TARGET: Duration = Duration::from_millis(100);

/// Sequential `help` requests sent before measuring (connection set-up, first-use costs).
const WARM_UP_REQUESTS: usize = 20;
/// Longest wait for one kickoff in phase B.
const KICKOFF_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the job queue to empty after phase A.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest wait for the queue to empty between two opens of phase B.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Configuration: announcements on, nobody paged, so an open is exactly war room + kickoff.
const CONFIG: &str = r#"
[slack]
announce_channel = "C0ANNOUNCE"

[severity.P0]
escalation = []

[severity.P1]
escalation = []

[severity.P2]
escalation = []

[severity.P3]
escalation = []
"#;

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("load: {e}");
            eprintln!("usage: cargo bench --bench load -- [--rate N] [--seconds N] [--opens N]");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("load benchmark failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Command-line settings.
#[derive(Debug, Clone, PartialEq)]
struct Args {
    /// Phase A request rate, per second.
    rate: f64,
    /// Phase A duration, in seconds.
    seconds: f64,
    /// Phase B: how many sequential opens.
    opens: usize,
    /// A short check of the harness (`cargo test`), not a measurement.
    smoke: bool,
}

impl Args {
    /// The SPEC §9 measurement: 200 req/s for 10 s, then 50 sequential opens.
    const FULL: Args = Args {
        rate: 200.0,
        seconds: 10.0,
        opens: 50,
        smoke: false,
    };
    /// What `cargo test` runs: enough to exercise every step of the harness.
    const SMOKE: Args = Args {
        rate: 20.0,
        seconds: 1.0,
        opens: 2,
        smoke: true,
    };

    /// Reads `--rate N`, `--seconds N`, `--opens N` (or `--name=N`), ignoring anything else,
    /// such as the `--bench` that cargo passes.
    ///
    /// `cargo bench` passes `--bench`; `cargo test --benches` (or `--all-targets`) runs the
    /// binary without it. Then, unless figures are given explicitly, a short smoke run
    /// ([`Args::SMOKE`]) checks that the harness works without holding up the test suite.
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut out = Args::FULL;
        let mut bench_mode = false;
        let mut explicit = false;
        while let Some(arg) = args.next() {
            if arg == "--bench" {
                bench_mode = true;
                continue;
            }
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (arg.clone(), None),
            };
            if !matches!(name.as_str(), "--rate" | "--seconds" | "--opens") {
                continue;
            }
            let value = match inline.or_else(|| args.next()) {
                Some(v) => v,
                None => return Err(format!("{name} needs a value")),
            };
            explicit = true;
            let bad = |what: &str| format!("{name}: `{value}` is not {what}");
            match name.as_str() {
                "--rate" => {
                    out.rate = value.parse().map_err(|_| bad("a number"))?;
                    if !(out.rate.is_finite() && out.rate > 0.0) {
                        return Err(bad("a positive rate"));
                    }
                }
                "--seconds" => {
                    out.seconds = value.parse().map_err(|_| bad("a number"))?;
                    if !(out.seconds.is_finite() && out.seconds > 0.0) {
                        return Err(bad("a positive duration"));
                    }
                }
                _ => out.opens = value.parse().map_err(|_| bad("a whole number"))?,
            }
        }
        if !bench_mode && !explicit {
            out = Args::SMOKE;
        }
        Ok(out)
    }

    fn requests(&self) -> usize {
        ((self.rate * self.seconds).round() as usize).max(1)
    }
}

/// Sets up both runtimes and the application, runs both phases, stops everything.
fn run(args: &Args) -> anyhow::Result<String> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name("warroom-server")
        .enable_all()
        .build()
        .context("cannot build the server runtime")?;
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build the client runtime")?;

    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let database_url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let shutdown = CancellationToken::new();
    let (target, server) = server_rt.block_on(start(&database_url, shutdown.clone()))?;

    let outcome = client_rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        let bench = Bench {
            url: format!("http://{}/slack/commands", target.addr),
            client,
            emulator: target.emulator.clone(),
            ctx: target.ctx.clone(),
            server: server_rt.handle().clone(),
        };
        bench.warm_up().await?;
        let a = bench.phase_a(args).await?;
        let b = bench.phase_b(args.opens).await?;
        Ok::<_, anyhow::Error>((a, b))
    });

    shutdown.cancel();
    let stopped =
        server_rt.block_on(async { tokio::time::timeout(Duration::from_secs(15), server).await });
    let (a, b) = outcome?;
    match stopped {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => return Err(e.context("the application stopped with an error")),
        Ok(Err(e)) => bail!("the application task panicked: {e}"),
        Err(_) => bail!("the application did not stop within 15 s of shutdown"),
    }
    drop(target);
    Ok(report(cores, args, &a, &b))
}

/// The running application and its Slack.
struct Target {
    emulator: SlackEmulator,
    ctx: AppContext,
    addr: std::net::SocketAddr,
}

/// Starts the emulator and the application (on the current, server runtime).
async fn start(
    database_url: &str,
    shutdown: CancellationToken,
) -> anyhow::Result<(Target, tokio::task::JoinHandle<anyhow::Result<()>>)> {
    let emulator = SlackEmulator::start(BOT_TOKEN)
        .await
        .context("cannot start the Slack emulator")?;
    let config = Config::from_toml(CONFIG).context("the benchmark configuration is invalid")?;
    let vars = [
        ("WARROOM_BIND", "127.0.0.1:0".to_string()),
        ("DATABASE_URL", database_url.to_string()),
        ("SLACK_API_URL", emulator.api_url()),
        ("SLACK_SIGNING_SECRET", SIGNING_SECRET.to_string()),
        ("SLACK_BOT_TOKEN", BOT_TOKEN.to_string()),
    ];
    let lookup = |k: &str| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
    };
    let env = Environment::from_lookup(lookup).context("the benchmark environment is invalid")?;
    // No PagerDuty, Twilio or SMTP: nobody is paged in this benchmark.
    let paging = PagingSettings::from_lookup(lookup)
        .map_err(|e| anyhow::anyhow!("the benchmark paging settings are invalid: {e}"))?;
    let app = App::build(Settings {
        config,
        env,
        clock: Clock::System,
        workers: 1,
        paging,
        statuspage: None,
    })
    .await
    .context("the application does not start")?;
    let target = Target {
        emulator,
        ctx: app.context(),
        addr: app.addr(),
    };
    let server = tokio::spawn(app.run_until_stopped(shutdown));
    Ok((target, server))
}

/// What the load generator needs.
struct Bench {
    url: String,
    client: reqwest::Client,
    emulator: SlackEmulator,
    ctx: AppContext,
    /// The server runtime, where database look-ups of the harness run.
    server: Handle,
}

/// How one slash command went.
#[derive(Debug)]
enum Answer {
    /// HTTP 200 with a usable reply.
    Ok,
    /// HTTP 200, but warroom said it could not save the command or was too slow.
    Degraded(String),
    /// Any other status, or no answer at all.
    Error(String),
}

/// One phase A request.
#[derive(Debug)]
struct Sample {
    open: bool,
    latency: Duration,
    /// How long after its scheduled time the request was sent.
    lag: Duration,
    /// When the response was complete.
    done: Instant,
    answer: Answer,
}

/// Phase A figures.
struct PhaseA {
    requests: usize,
    opens: usize,
    all: Vec<Duration>,
    open_only: Vec<Duration>,
    help_only: Vec<Duration>,
    errors: usize,
    degraded: usize,
    first_problem: Option<String>,
    achieved_rate: f64,
    max_lag: Duration,
    drained_in: Duration,
    incidents: i64,
    failed_jobs: i64,
}

/// Phase B figures.
struct PhaseB {
    opens: usize,
    ack: Vec<Duration>,
    war_room: Vec<Duration>,
    kickoff: Vec<Duration>,
}

impl Bench {
    /// A slash command form body, as Slack sends it.
    fn slash_body(&self, text: &str, id: &str) -> String {
        serde_urlencoded::to_string([
            ("token", "bench-verification-token"),
            ("team_id", TEAM_ID),
            ("team_domain", TEAM_DOMAIN),
            ("channel_id", GENERAL_CHANNEL),
            ("channel_name", "general"),
            ("user_id", USER),
            ("user_name", "bench"),
            ("command", "/incident"),
            ("text", text),
            ("api_app_id", warroom::testkit::slack_emulator::APP_ID),
            (
                "response_url",
                &self.emulator.response_url(&format!("r{id}")),
            ),
            ("trigger_id", &format!("trigger.{id}")),
        ])
        .expect("a list of string pairs always form-encodes")
    }

    /// Signs and sends one slash command; returns the latency and what came back.
    fn slash_command(
        &self,
        text: &str,
        id: &str,
    ) -> impl std::future::Future<Output = (Duration, Instant, Answer)> + Send + 'static {
        let body = self.slash_body(text, id);
        let request = self.client.post(&self.url);
        async move {
            let ts = unix_now().to_string();
            let request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-slack-request-timestamp", &ts)
                .header(
                    "x-slack-signature",
                    slack_signature(SIGNING_SECRET, &ts, &body),
                )
                .body(body);
            let sent = Instant::now();
            let answer = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    match response.text().await {
                        Ok(text) if status.is_success() => classify(&text),
                        Ok(text) => Answer::Error(format!("HTTP {status}: {}", first_line(&text))),
                        Err(e) => Answer::Error(format!("HTTP {status}, body unreadable: {e}")),
                    }
                }
                Err(e) => Answer::Error(format!("no answer: {e}")),
            };
            let done = Instant::now();
            (done - sent, done, answer)
        }
    }

    /// A few sequential `help` commands: the harness is wired right (signature accepted) and
    /// the connection pool is warm. Any non-200 here is a harness failure.
    async fn warm_up(&self) -> anyhow::Result<()> {
        for i in 0..WARM_UP_REQUESTS {
            let (_, _, answer) = self.slash_command("help", &format!("w{i}")).await;
            match answer {
                Answer::Ok => {}
                Answer::Degraded(m) | Answer::Error(m) => {
                    bail!("warm-up request {i} (`/incident help`) was not answered properly: {m}")
                }
            }
        }
        Ok(())
    }

    async fn phase_a(&self, args: &Args) -> anyhow::Result<PhaseA> {
        let total = args.requests();
        let period = Duration::from_secs_f64(1.0 / args.rate);
        let start = tokio::time::Instant::now() + Duration::from_millis(20);
        let mut tasks = Vec::with_capacity(total);
        let mut first_sent = None;
        let mut last_sent = None;
        for i in 0..total {
            let due = start + period.mul_f64(i as f64);
            tokio::time::sleep_until(due).await;
            let now = tokio::time::Instant::now();
            first_sent.get_or_insert(now);
            last_sent = Some(now);
            let open = i % 5 == 0;
            let text = if open {
                format!("open P2 load test {i}")
            } else {
                "help".to_string()
            };
            let request = self.slash_command(&text, &format!("a{i}"));
            let lag = now.saturating_duration_since(due);
            tasks.push(tokio::spawn(async move {
                let (latency, done, answer) = request.await;
                Sample {
                    open,
                    latency,
                    lag,
                    done,
                    answer,
                }
            }));
        }
        let mut samples = Vec::with_capacity(total);
        for task in tasks {
            samples.push(task.await.context("a request task panicked")?);
        }
        let window = match (first_sent, last_sent) {
            (Some(first), Some(last)) => last - first,
            _ => Duration::ZERO,
        };
        let achieved_rate = if total > 1 && !window.is_zero() {
            (total - 1) as f64 / window.as_secs_f64()
        } else {
            total as f64
        };
        let last_done = samples.iter().map(|s| s.done).max();

        let drained_in = self
            .wait_until_idle(DRAIN_TIMEOUT)
            .await
            .context("after phase A")?;
        // Count from the end of the last answer rather than from now.
        let drained_in = last_done.map_or(drained_in, |t| t.elapsed());
        let ctx = self.ctx.clone();
        let (incidents, failed_jobs) = self
            .server
            .spawn(async move {
                let mut conn = ctx.store.acquire().await?;
                let incidents = store::incident_count(&mut conn).await?;
                let failed = store::count_jobs(&mut conn, "failed").await?;
                Ok::<_, store::StoreError>((incidents, failed))
            })
            .await
            .context("the database look-up task panicked")?
            .context("cannot count incidents and failed jobs")?;

        let mut errors = 0;
        let mut degraded = 0;
        let mut first_problem = None;
        for s in &samples {
            match &s.answer {
                Answer::Ok => {}
                Answer::Degraded(m) => {
                    degraded += 1;
                    first_problem.get_or_insert_with(|| m.clone());
                }
                Answer::Error(m) => {
                    errors += 1;
                    first_problem.get_or_insert_with(|| m.clone());
                }
            }
        }
        let pick = |keep: &dyn Fn(&Sample) -> bool| -> Vec<Duration> {
            samples
                .iter()
                .filter(|s| keep(s))
                .map(|s| s.latency)
                .collect()
        };
        Ok(PhaseA {
            requests: total,
            opens: samples.iter().filter(|s| s.open).count(),
            all: sorted(pick(&|_| true)),
            open_only: sorted(pick(&|s| s.open)),
            help_only: sorted(pick(&|s| !s.open)),
            errors,
            degraded,
            first_problem,
            achieved_rate,
            max_lag: samples.iter().map(|s| s.lag).max().unwrap_or_default(),
            drained_in,
            incidents,
            failed_jobs,
        })
    }

    async fn phase_b(&self, opens: usize) -> anyhow::Result<PhaseB> {
        let mut out = PhaseB {
            opens,
            ack: Vec::with_capacity(opens),
            war_room: Vec::with_capacity(opens),
            kickoff: Vec::with_capacity(opens),
        };
        for i in 0..opens {
            let rooms_before = self.emulator.count_ok_calls("conversations.create");
            let request =
                self.slash_command(&format!("open P1 kickoff latency {i}"), &format!("b{i}"));
            let sent_at = Instant::now();
            let (ack, _, answer) = request.await;
            if let Answer::Degraded(m) | Answer::Error(m) = answer {
                bail!("phase B open {i} was not acknowledged properly: {m}");
            }
            let seen = self
                .emulator
                .wait_for(KICKOFF_TIMEOUT, |emu| {
                    let rooms = emu.ok_calls("conversations.create");
                    let created = rooms.get(rooms_before)?;
                    let channel = created.response.get("channel")?.get("id")?.as_str()?;
                    let kickoff = emu
                        .posts_to(channel)
                        .into_iter()
                        .find(|c| c.param("blocks").is_some_and(has_button))?;
                    Some((created.at, kickoff.at))
                })
                .await;
            let Some((created_at, kickoff_at)) = seen else {
                bail!(
                    "phase B open {i}: no war room with a kickoff within {KICKOFF_TIMEOUT:?} \
                     ({} war rooms created in all)",
                    self.emulator.count_ok_calls("conversations.create")
                );
            };
            out.ack.push(ack);
            out.war_room
                .push(created_at.saturating_duration_since(sent_at));
            out.kickoff
                .push(kickoff_at.saturating_duration_since(sent_at));
            // Let the announcement and the reply finish so the next open starts with nothing
            // running or due, as "sequential" means.
            self.wait_until_idle(SETTLE_TIMEOUT)
                .await
                .with_context(|| format!("after phase B open {i}"))?;
        }
        out.ack = sorted(out.ack);
        out.war_room = sorted(out.war_room);
        out.kickoff = sorted(out.kickoff);
        Ok(out)
    }

    /// Waits until no job is running or due (pending with `run_at` passed, including jobs
    /// waiting for a blocker); returns how long that took. Jobs scheduled for later (status
    /// reminders, target warnings: minutes or hours away) do not count.
    async fn wait_until_idle(&self, timeout: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        loop {
            let ctx = self.ctx.clone();
            let depth = self
                .server
                .spawn(async move {
                    let now = ctx.clock.now();
                    let mut conn = ctx.store.acquire().await?;
                    let jobs = store::list_jobs(&mut conn).await?;
                    Ok::<_, store::StoreError>(
                        jobs.iter()
                            .filter(|j| {
                                j.state == "running" || (j.state == "pending" && j.run_at <= now)
                            })
                            .count(),
                    )
                })
                .await
                .context("the database look-up task panicked")?
                .context("cannot read the job queue")?;
            if depth == 0 {
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                bail!("{depth} jobs are still running or due after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// What a 200 answer to a slash command means.
fn classify(body: &str) -> Answer {
    let text = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("text").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default();
    if text.starts_with(":x:") || text.starts_with(":hourglass:") {
        Answer::Degraded(format!("HTTP 200 but: {}", first_line(&text)))
    } else {
        Answer::Ok
    }
}

/// `v0=hex(HMAC-SHA256(secret, "v0:{ts}:{body}"))`, as Slack signs.
fn slack_signature(secret: &str, ts: &str, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(b"v0:");
    mac.update(ts.as_bytes());
    mac.update(b":");
    mac.update(body.as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// True if a Block Kit value holds a button anywhere.
fn has_button(blocks: &Value) -> bool {
    match blocks {
        Value::Object(map) => {
            map.get("type").and_then(Value::as_str) == Some("button")
                || map.values().any(has_button)
        }
        Value::Array(items) => items.iter().any(has_button),
        _ => false,
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

fn sorted(mut v: Vec<Duration>) -> Vec<Duration> {
    v.sort_unstable();
    v
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// `p50 …  p90 …  p99 …  max …`
fn spread(sorted: &[Duration]) -> String {
    format!(
        "p50 {}  p90 {}  p99 {}  max {}",
        ms(percentile(sorted, 50.0)),
        ms(percentile(sorted, 90.0)),
        ms(percentile(sorted, 99.0)),
        ms(sorted.last().copied().unwrap_or_default()),
    )
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

fn report(cores: usize, args: &Args, a: &PhaseA, b: &PhaseB) -> String {
    let mut r = String::new();
    if args.smoke {
        let _ = writeln!(
            r,
            "(smoke run of the harness, not a measurement: use `cargo bench --bench load`)"
        );
    }
    let ack_p99 = percentile(&a.all, 99.0);
    let kickoff_p50 = percentile(&b.kickoff, 50.0);
    // Writing to a String cannot fail.
    let _ = writeln!(
        r,
        "warroom load benchmark (SQLite, Slack emulator at 0 ms latency, {cores} core{}, 1 job worker)",
        if cores == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        r,
        "ack latency   {} req/s x {} s = {} requests ({} open): {}  errors {}  degraded {}   [target p99 < {}: {}]",
        args.rate,
        args.seconds,
        a.requests,
        a.opens,
        spread(&a.all),
        a.errors,
        a.degraded,
        ms(ACK_P99_TARGET),
        verdict(ack_p99 < ACK_P99_TARGET && a.errors == 0),
    );
    let _ = writeln!(r, "  open only    {}", spread(&a.open_only));
    let _ = writeln!(r, "  help only    {}", spread(&a.help_only));
    let _ = writeln!(
        r,
        "  achieved {:.1} req/s, generator lag max {}; job backlog drained {:.2} s after the last answer; \
         {} incidents in the database, {} failed jobs",
        a.achieved_rate,
        ms(a.max_lag),
        a.drained_in.as_secs_f64(),
        a.incidents,
        a.failed_jobs,
    );
    if let Some(problem) = &a.first_problem {
        let _ = writeln!(r, "  first problem: {problem}");
    }
    let _ = writeln!(
        r,
        "open→kickoff  {} sequential opens: {}   [target p50 < {}: {}]",
        b.opens,
        spread(&b.kickoff),
        ms(KICKOFF_P50_TARGET),
        verdict(!b.kickoff.is_empty() && kickoff_p50 < KICKOFF_P50_TARGET),
    );
    let _ = writeln!(r, "  ack          {}", spread(&b.ack));
    let _ = writeln!(r, "  war room     {}", spread(&b.war_room));
    r
}
