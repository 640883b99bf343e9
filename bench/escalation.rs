//! Escalation timer benchmark (SPEC §9: "escalation timers fire within 1 s of due (p99) with
//! 10,000 pending timers").
//!
//! ```text
//! cargo bench --bench escalation
//! cargo bench --bench escalation -- --steps 10000 --incidents 100 --spread 30 --lead 5
//! ```
//!
//! Set-up: the real application (SQLite in a temp dir, system clock, one job worker) against
//! the in-process Slack emulator, with one contact (`bench`, a Slack user). `--incidents`
//! incidents are stored directly (no war rooms, so only escalation runs), then `--steps`
//! escalation steps are enqueued in one transaction, spread evenly over `--spread` seconds
//! starting `--lead` seconds from now, exactly as `/incident open` enqueues them. Every step
//! that comes due enqueues its page, which the worker delivers as a Slack DM.
//!
//! Measured:
//! - how late each step fired: its job's completion time minus its due time (ms, from the job
//!   table);
//! - how late each page arrived at the emulator: the DM's arrival minus the step's due time;
//! - page throughput: DMs per second while pages were being delivered.
//!
//! Run without `--bench` (as `cargo test --benches` does) it makes a short smoke run.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chrono::Utc;
use tokio_util::sync::CancellationToken;

use warroom::app::{App, Settings};
use warroom::clock::Clock;
use warroom::config::{Config, Environment};
use warroom::core::{self, Effect, OpenIncident, Platform, Severity};
use warroom::store::{self, NewJob};
use warroom::testkit::slack_emulator::SlackEmulator;

struct Args {
    steps: usize,
    incidents: usize,
    spread: f64,
    lead: f64,
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().collect();
    let bench = argv.iter().any(|a| a == "--bench");
    let mut a = if bench {
        Args {
            steps: 10_000,
            incidents: 100,
            spread: 30.0,
            lead: 5.0,
        }
    } else {
        Args {
            steps: 200,
            incidents: 10,
            spread: 1.0,
            lead: 1.0,
        }
    };
    let mut it = argv.iter().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse::<f64>().ok());
        match flag.as_str() {
            "--steps" => a.steps = value().map(|v| v as usize).unwrap_or(a.steps),
            "--incidents" => a.incidents = value().map(|v| v as usize).unwrap_or(a.incidents),
            "--spread" => a.spread = value().unwrap_or(a.spread),
            "--lead" => a.lead = value().unwrap_or(a.lead),
            _ => {}
        }
    }
    a.incidents = a.incidents.clamp(1, a.steps.max(1));
    a
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(name: &str, mut values: Vec<f64>) -> String {
    values.sort_by(|a, b| a.total_cmp(b));
    format!(
        "{name:<22} n={:<6} p50 {:>7.1} ms  p90 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
        values.len(),
        percentile(&values, 50.0),
        percentile(&values, 90.0),
        percentile(&values, 99.0),
        values.last().copied().unwrap_or(f64::NAN),
    )
}

fn main() -> anyhow::Result<()> {
    let a = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(a))
}

async fn run(a: Args) -> anyhow::Result<()> {
    let slack = SlackEmulator::start("xoxb-bench").await?;
    let dir = tempfile::tempdir()?;
    let db_url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let vars = [
        ("WARROOM_BIND", "127.0.0.1:0".to_string()),
        ("DATABASE_URL", db_url),
        ("SLACK_API_URL", slack.api_url()),
        ("SLACK_SIGNING_SECRET", "bench".to_string()),
        ("SLACK_BOT_TOKEN", "xoxb-bench".to_string()),
    ];
    let env =
        Environment::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let config = Config::from_toml(
        "[severity.P3]\nescalation = []\n[contacts.bench]\nslack_user = \"U0BENCH\"\n",
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let app = App::build(Settings {
        config,
        env,
        clock: Clock::System,
        workers: 1,
        paging: Default::default(),
        statuspage: None,
    })
    .await?;
    let ctx = app.context();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));

    // Incidents (P3: no escalation, no reminders of their own) and the steps, in one go.
    let now = Utc::now();
    let first_due = now + chrono::Duration::milliseconds((a.lead * 1000.0) as i64);
    let mut due_of: HashMap<(i64, usize), chrono::DateTime<Utc>> = HashMap::new();
    {
        let mut tx = ctx.store.begin().await?;
        let policy = ctx
            .config
            .severity(Severity::P3)
            .policy(Duration::from_secs(3600), Duration::from_secs(3600));
        for n in 1..=a.incidents as i64 {
            let number = store::next_incident_number(&mut tx).await?;
            let opened = core::open(
                OpenIncident {
                    number,
                    title: format!("escalation bench {n}"),
                    description: String::new(),
                    severity: Severity::P3,
                    platform: Platform::Slack,
                    declared_by: "U0BENCH".into(),
                    declared_in: "C0GENERAL".into(),
                    responders: vec![],
                    reply_to: None,
                },
                &policy,
                now,
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            store::insert_incident(&mut tx, &opened.incident, now).await?;
        }
        let per_incident = a.steps.div_ceil(a.incidents);
        for i in 0..a.steps {
            let incident = (i % a.incidents) as i64 + 1;
            let step = i / a.incidents;
            let offset = a.spread * i as f64 / a.steps.max(1) as f64;
            let due_at = first_due + chrono::Duration::milliseconds((offset * 1000.0) as i64);
            due_of.insert((incident, step), due_at);
            let effect = Effect::FireEscalationStep {
                step,
                due_at,
                page: vec!["bench".into()],
                plan: 0,
            };
            let payload =
                serde_json::to_string(&warroom::jobs::EffectJob::new(incident, effect.clone()))?;
            store::enqueue(
                &mut tx,
                &NewJob {
                    kind: effect.name().into(),
                    incident: Some(incident),
                    payload,
                    run_at: due_at,
                    blocked_by: None,
                    dedup_key: Some(format!("escalation:{incident}:0:{step}")),
                    coalesce_key: None,
                },
                now,
            )
            .await?;
        }
        tx.commit().await?;
        println!(
            "warroom escalation benchmark (SQLite, Slack emulator at 0 ms latency, {} cores)\n\
             {} pending steps on {} incidents ({} each), due over {:.0} s starting in {:.0} s",
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            a.steps,
            a.incidents,
            per_incident,
            a.spread,
            a.lead
        );
    }
    ctx.wake.notify_waiters();

    // Wait for every page.
    let deadline = Instant::now() + Duration::from_secs_f64(a.lead + a.spread + 120.0);
    loop {
        let delivered = slack.count_ok_calls("chat.postMessage");
        if delivered >= a.steps {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {delivered} of {} pages arrived", a.steps);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Step lateness from the job table; page lateness from the emulator.
    let jobs = {
        let mut conn = ctx.store.acquire().await?;
        sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT incident, run_at, updated_at FROM jobs WHERE kind = 'escalation_step' AND state = 'done'",
        )
        .fetch_all(&mut *conn)
        .await
        .context("reading the job table")?
    };
    let step_late: Vec<f64> = jobs
        .iter()
        .map(|(_, run_at, done_at)| (done_at - run_at).max(0) as f64)
        .collect();
    let wall_now = Utc::now();
    let inst_now = Instant::now();
    let mut page_late = Vec::new();
    let posts = slack.ok_calls("chat.postMessage");
    for post in &posts {
        let text = post.params["text"].as_str().unwrap_or_default();
        let incident = text
            .split("INC-")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|d| d.parse::<i64>().ok());
        let step = text
            .rsplit("escalation step ")
            .next()
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|d| d.parse::<usize>().ok())
            .map(|s| s - 1);
        if let (Some(incident), Some(step)) = (incident, step) {
            if let Some(due) = due_of.get(&(incident, step)) {
                let arrived = wall_now - chrono::Duration::from_std(inst_now - post.at)?;
                page_late.push((arrived - *due).num_microseconds().unwrap_or(0) as f64 / 1000.0);
            }
        }
    }
    let first = posts.iter().map(|p| p.at).min();
    let last = posts.iter().map(|p| p.at).max();
    let throughput = match (first, last) {
        (Some(f), Some(l)) if l > f => posts.len() as f64 / (l - f).as_secs_f64(),
        _ => f64::NAN,
    };
    println!("{}", summary("step fired late by", step_late));
    println!("{}", summary("page arrived late by", page_late));
    println!(
        "page throughput        {:.0} pages/s ({} pages)   [target: p99 step lateness < 1000 ms]",
        throughput,
        posts.len()
    );
    shutdown.cancel();
    let _ = server.await;
    Ok(())
}
