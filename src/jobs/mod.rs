//! Durable jobs: every outgoing call is a row in the `jobs` table, enqueued in the same
//! transaction as the state change that caused it, and run by workers that claim due rows with
//! a lease, retry with exponential backoff (honouring Slack's `Retry-After`), store attempts and
//! the last error, and release the jobs chained behind them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::context::AppContext;
use crate::core::{Effect, Platform, Status, TimelineEvent, TimelineKind, WarRoom};
use crate::store::{self, ClaimedJob, NewJob, StoreResult};

/// How long a claimed job belongs to its worker before another may take it, unless the worker
/// extends it: a running job's lease is renewed every third of it (a heartbeat), so only a
/// worker that died (or hangs its runtime) loses its jobs.
pub const LEASE: Duration = Duration::from_secs(30);
/// Longest a job may run before it is cut short and retried.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(120);
/// Jobs claimed per round.
const BATCH: i64 = 32;
/// How long an essential job may fail before warroom says so loudly (once per job).
pub const STUCK_AFTER: Duration = Duration::from_secs(15 * 60);
/// Retryable failures before a job is given up (see [`ESSENTIAL`] for the exceptions).
pub const MAX_ATTEMPTS: i64 = 40;
/// Job kinds that are never given up while their incident is open: without them nobody is
/// brought into the response. `update_kickoff` is one because it carries the kickoff when it
/// supersedes a `post_kickoff` that was running (it posts the kickoff when none is known).
pub const ESSENTIAL: &[&str] = &[
    "create_war_room",
    "invite_to_war_room",
    "post_kickoff",
    "update_kickoff",
    "page",
];

fn attempt_cap() -> store::AttemptCap<'static> {
    store::AttemptCap {
        max_attempts: MAX_ATTEMPTS,
        essential: ESSENTIAL,
    }
}

fn chrono_lease(lease: Duration) -> chrono::Duration {
    chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(30))
}
/// Longest wait between two looks at the queue (other replicas may have added jobs).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// The payload of a job that carries out a core [`Effect`] for an incident.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EffectJob {
    pub incident: i64,
    pub effect: Effect,
}

/// Why a job did not complete.
#[derive(Debug, Clone, PartialEq)]
pub enum JobError {
    /// Try again: after `after` if the far side said so (Retry-After), else after a backoff.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// Trying again cannot help.
    Fatal(String),
}

impl JobError {
    pub fn retry(reason: impl Into<String>) -> Self {
        JobError::Retry {
            after: None,
            reason: reason.into(),
        }
    }

    pub fn fatal(reason: impl Into<String>) -> Self {
        JobError::Fatal(reason.into())
    }
}

impl From<crate::store::StoreError> for JobError {
    fn from(e: crate::store::StoreError) -> Self {
        JobError::retry(e.to_string())
    }
}

/// A state change that a job's success brings, committed together with its completion.
#[derive(Debug, Clone, PartialEq)]
pub enum JobChange {
    WarRoom(WarRoom),
    KickoffRef(String),
    Timeline {
        event: TimelineEvent,
        source_key: Option<String>,
    },
    /// New text for the keyed timeline event (a pinned message, once fetched).
    TimelineText {
        source_key: String,
        text: String,
    },
    /// Effects that follow (pages of an escalation step, the next reminder).
    Enqueue(Vec<Effect>),
    /// An escalation step's pages, recorded as queued with the step's completion.
    PagesQueued(Vec<store::PageDelivery>),
    /// A page was delivered: it is no longer in flight (committed with the job's completion,
    /// so a delivered page costs no transaction of its own).
    PageSent {
        delivery: store::PageDelivery,
        detail: String,
    },
}

/// What a successful job leaves behind.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct JobOutcome {
    pub changes: Vec<JobChange>,
}

impl JobOutcome {
    pub fn none() -> Self {
        JobOutcome::default()
    }

    pub fn with(mut self, change: JobChange) -> Self {
        self.changes.push(change);
        self
    }
}

/// Enqueues an incident's effects; returns how many were added (the others existed already).
/// Effects that need the war room wait for the job that creates it: the one in the batch, or
/// else the incident's unfinished one (the war room does not exist yet).
pub async fn enqueue_effects(
    conn: &mut AnyConnection,
    incident: i64,
    effects: &[Effect],
    now: DateTime<Utc>,
) -> StoreResult<usize> {
    let mut added = 0;
    let mut war_room_job = None;
    if !effects.iter().any(|e| matches!(e, Effect::CreateWarRoom))
        && effects.iter().any(Effect::needs_war_room)
    {
        war_room_job =
            store::unfinished_job(&mut *conn, &format!("create_war_room:{incident}")).await?;
    }
    for effect in effects {
        let payload = serde_json::to_string(&EffectJob {
            incident,
            effect: effect.clone(),
        })
        .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
        let dedup_key = match effect {
            Effect::CreateWarRoom => Some(format!("create_war_room:{incident}")),
            Effect::EscalationStep { step, plan, .. } => {
                Some(format!("escalation:{incident}:{plan}:{step}"))
            }
            Effect::Page {
                step,
                plan,
                contact,
                channel,
            } => Some(format!("page:{incident}:{plan}:{step}:{contact}:{channel}")),
            Effect::StatusReminder { due_at } => Some(format!(
                "status_reminder:{incident}:{}",
                due_at.timestamp_millis()
            )),
            Effect::TargetWarning {
                target_at,
                breached,
                ..
            } => Some(format!(
                "target_warning:{incident}:{}:{breached}",
                target_at.timestamp_millis()
            )),
            Effect::DeliveryStuck { job, .. } => Some(format!("delivery_stuck:{incident}:{job}")),
            _ => None,
        };
        let coalesce_key = match effect {
            Effect::PostKickoff | Effect::UpdateKickoff => Some(format!("kickoff:{incident}")),
            _ => None,
        };
        let job = NewJob {
            kind: effect.name().to_string(),
            incident: Some(incident),
            payload,
            run_at: effect.due_at().unwrap_or(now),
            blocked_by: if effect.needs_war_room() {
                war_room_job
            } else {
                None
            },
            dedup_key,
            coalesce_key,
        };
        let id = store::enqueue(conn, &job, now).await?;
        added += usize::from(id.is_some());
        if matches!(effect, Effect::CreateWarRoom) {
            war_room_job = id;
        }
    }
    Ok(added)
}

/// The job kind of the periodic clean-up of old finished jobs and inbound ids.
pub const RETENTION_JOB: &str = "retention";
/// How often the clean-up runs.
pub const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Schedules the clean-up at `at` unless it is pending already (one per database).
pub async fn schedule_retention(conn: &mut AnyConnection, at: DateTime<Utc>) -> StoreResult<()> {
    let job = NewJob {
        kind: RETENTION_JOB.into(),
        incident: None,
        payload: "{}".into(),
        run_at: at,
        blocked_by: None,
        dedup_key: None,
        coalesce_key: Some(RETENTION_JOB.into()),
    };
    store::enqueue(conn, &job, at).await?;
    Ok(())
}

/// Deletes finished jobs older than `retention.jobs` and inbound ids older than
/// `retention.inbound_ids` (by the application's clock), then schedules the next run.
async fn retention(ctx: &AppContext) -> Result<JobOutcome, JobError> {
    let now = ctx.clock.now();
    let age = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    let retention = &ctx.config.retention;
    let (jobs, inbound) = store::delete_old_records(
        &ctx.store,
        now.checked_sub_signed(age(retention.jobs))
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
        now.checked_sub_signed(age(retention.inbound_ids))
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
    )
    .await?;
    tracing::info!(
        jobs,
        inbound_ids = inbound,
        "deleted old finished jobs and inbound ids"
    );
    let mut conn = ctx.store.acquire().await?;
    schedule_retention(&mut conn, now + age(RETENTION_EVERY)).await?;
    Ok(JobOutcome::none())
}

/// Exponential backoff from 500 ms, doubling, capped at 30 s, with ±20 % jitter.
pub fn backoff(attempt: i64) -> Duration {
    let exp = attempt.clamp(1, 16) as u32 - 1;
    let base = Duration::from_millis(500).saturating_mul(2u32.saturating_pow(exp));
    let capped = base.min(Duration::from_secs(30));
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    capped.mul_f64(jitter)
}

/// Claims the jobs due now and runs them concurrently; returns how many were claimed.
pub async fn run_due_jobs(ctx: &AppContext) -> StoreResult<usize> {
    let jobs = claim(ctx, BATCH).await?;
    let n = jobs.len();
    let mut set = JoinSet::new();
    for job in jobs {
        let ctx = ctx.clone();
        set.spawn(async move { run_one(&ctx, job).await });
    }
    while let Some(result) = set.join_next().await {
        if let Err(e) = result {
            tracing::error!(error = %e, "a job task panicked");
        }
    }
    Ok(n)
}

/// Claims up to `limit` due jobs for this worker (which must run them: [`run_due_jobs`] and
/// the worker do); jobs that used up their attempts without ever finishing (they killed their
/// worker) are failed instead, and said so on their incident's timeline.
pub async fn claim(ctx: &AppContext, limit: i64) -> StoreResult<Vec<ClaimedJob>> {
    let now = ctx.clock.now();
    let (jobs, exhausted) =
        store::claim_jobs(&ctx.store, now, chrono_lease(LEASE), limit, attempt_cap()).await?;
    for job in exhausted {
        tracing::error!(job = job.id, kind = %job.kind, attempts = job.attempts, "job failed for good: no attempts left");
        metrics::counter!("warroom_jobs_total", "kind" => job.kind.clone(), "outcome" => "failed")
            .increment(1);
        if let Some(incident) = job.incident {
            let event = TimelineEvent::new(
                now,
                None,
                TimelineKind::Failure,
                format!(
                    "warroom gave up on `{}` after {} attempt(s)",
                    job.kind, job.attempts
                ),
            );
            // The claimed jobs are this worker's now: a failed note must not lose them.
            let noted = async {
                let mut conn = ctx.store.acquire().await?;
                store::insert_timeline(&mut conn, incident, &event, None).await
            };
            if let Err(e) = noted.await {
                tracing::error!(job = job.id, error = %e, "could not record a job given up");
            }
        }
    }
    // A job that keeps killing its worker (or hanging past its lease) never records a
    // failure: it is reported when it is claimed again.
    for job in &jobs {
        if let Some(since) = job.failing_since {
            let reason = "an attempt never finished: the worker running it stopped (a crash, a \
                          kill, or a hang past its lease)";
            report_if_stuck(ctx, job, since, reason, now).await;
        }
    }
    Ok(jobs)
}

/// Runs one claimed job and records its outcome.
async fn run_one(ctx: &AppContext, job: ClaimedJob) {
    run_claimed_with(ctx, job, LEASE, |ctx, job| async move {
        execute(&ctx, &job).await
    })
    .await
}

/// Runs a claimed job with `exec` and records its outcome: the job's lease (`lease` long) is
/// extended while `exec` runs, `exec` is cut short after [`JOB_TIMEOUT`], and a panic inside it
/// is the attempt's failure (retried like any other). [`run_due_jobs`] and the worker use it
/// with the job's real work; tests with work of their own.
pub async fn run_claimed_with<F, Fut>(ctx: &AppContext, job: ClaimedJob, lease: Duration, exec: F)
where
    F: FnOnce(AppContext, ClaimedJob) -> Fut,
    Fut: std::future::Future<Output = Result<JobOutcome, JobError>> + Send + 'static,
{
    let started = std::time::Instant::now();
    let mut task = tokio::spawn(exec(ctx.clone(), job.clone()));
    let timeout = tokio::time::sleep(JOB_TIMEOUT);
    tokio::pin!(timeout);
    let mut heartbeat = tokio::time::interval((lease / 3).max(Duration::from_millis(10)));
    heartbeat.tick().await;
    let result = loop {
        tokio::select! {
            joined = &mut task => break match joined {
                Ok(r) => r,
                Err(e) if e.is_panic() => {
                    let reason = panic_message(e.into_panic());
                    tracing::error!(job = job.id, kind = %job.kind, %reason, "a job panicked");
                    Err(JobError::retry(format!("the job panicked: {reason}")))
                }
                Err(e) => Err(JobError::retry(format!("the job was cancelled: {e}"))),
            },
            _ = &mut timeout => {
                task.abort();
                break Err(JobError::retry(format!("did not finish within {JOB_TIMEOUT:?}")));
            }
            _ = heartbeat.tick() => {
                match store::extend_lease(&ctx.store, &job, chrono_lease(lease)).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(job = job.id, "lost a running job's lease"),
                    Err(e) => tracing::warn!(job = job.id, error = %e, "could not extend a job's lease"),
                }
            }
        }
    };
    record_outcome(ctx, &job, result, started).await;
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => s.to_string(),
            Err(_) => "(no message)".into(),
        },
    }
}

async fn record_outcome(
    ctx: &AppContext,
    job: &ClaimedJob,
    result: Result<JobOutcome, JobError>,
    started: std::time::Instant,
) {
    metrics::histogram!("warroom_job_seconds", "kind" => job.kind.clone())
        .record(started.elapsed().as_secs_f64());
    let now = ctx.clock.now();
    let outcome = match result {
        Ok(outcome) => {
            finish(ctx, job, outcome, now).await.map(
                |held| {
                    if held {
                        "done"
                    } else {
                        "lost_lease"
                    }
                },
            )
        }
        Err(JobError::Retry { after, reason })
            if job.attempts < MAX_ATTEMPTS || essential_and_open(ctx, job).await =>
        {
            let wait = after.unwrap_or_else(|| backoff(job.attempts));
            let run_at = now + chrono::Duration::from_std(wait).unwrap_or_default();
            tracing::warn!(job = job.id, kind = %job.kind, attempt = job.attempts, ?wait, %reason, "job will be retried");
            // Keyed by the job, so said once; not only on attempt 1, which may have been lost.
            if job.kind == "page" {
                note_failing_delivery(ctx, job, &reason, now).await;
            }
            let retried = store::retry_job(&ctx.store, job, run_at, &reason, now).await;
            if matches!(retried, Ok(true)) && ESSENTIAL.contains(&job.kind.as_str()) {
                match store::job_failing_since(&ctx.store, job.id).await {
                    Ok(Some(since)) => report_if_stuck(ctx, job, since, &reason, now).await,
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(job = job.id, error = %e, "could not read since when a job fails")
                    }
                }
            }
            retried.map(|_| "retry")
        }
        Err(JobError::Retry { reason, .. }) | Err(JobError::Fatal(reason)) => {
            tracing::error!(job = job.id, kind = %job.kind, attempt = job.attempts, %reason, "job failed for good");
            give_up(ctx, job, &reason, now).await.map(|_| "failed")
        }
    };
    match outcome {
        Ok(label) => {
            metrics::counter!("warroom_jobs_total", "kind" => job.kind.clone(), "outcome" => label)
                .increment(1);
        }
        Err(e) => tracing::error!(job = job.id, error = %e, "could not record a job's outcome"),
    }
    ctx.wake.notify_waiters();
}

/// An essential job (see [`ESSENTIAL`]) whose incident is still open (not resolved or closed).
async fn essential_and_open(ctx: &AppContext, job: &ClaimedJob) -> bool {
    let (true, Some(number)) = (ESSENTIAL.contains(&job.kind.as_str()), job.incident) else {
        return false;
    };
    let incident = async {
        let mut conn = ctx.store.acquire().await?;
        store::get_incident(&mut conn, number).await
    };
    match incident.await {
        Ok(Some(incident)) => !matches!(incident.status, Status::Resolved | Status::Closed),
        Ok(None) => false,
        // Unsure: keep trying rather than give up on a page.
        Err(e) => {
            tracing::warn!(job = job.id, error = %e, "could not read a job's incident");
            true
        }
    }
}

/// An essential job (see [`ESSENTIAL`]) of an open incident that has been failing since
/// `since` for [`STUCK_AFTER`] or more is reported once: an error in the log,
/// `warroom_jobs_stuck_total{kind}`, and a message in the announce channel and to the declarer.
/// Called after a retried failure, and when a job whose last attempt was lost is claimed again.
async fn report_if_stuck(
    ctx: &AppContext,
    job: &ClaimedJob,
    since: DateTime<Utc>,
    reason: &str,
    now: DateTime<Utc>,
) {
    let stuck_after = chrono::Duration::from_std(STUCK_AFTER).unwrap_or(chrono::Duration::MAX);
    let Some(incident) = job.incident else {
        return;
    };
    if now - since < stuck_after || !essential_and_open(ctx, job).await {
        return;
    }
    let effect = Effect::DeliveryStuck {
        job: job.id,
        kind: job.kind.clone(),
        since,
        error: reason.to_string(),
    };
    let reported = async {
        let mut conn = ctx.store.acquire().await?;
        enqueue_effects(&mut conn, incident, &[effect], now).await
    };
    match reported.await {
        Ok(0) => {}
        Ok(_) => {
            tracing::error!(job = job.id, kind = %job.kind, incident, attempts = job.attempts, %since, %reason, "an essential job has been failing for 15 minutes or more; still retrying");
            metrics::counter!("warroom_jobs_stuck_total", "kind" => job.kind.clone()).increment(1);
            ctx.wake.notify_waiters();
        }
        Err(e) => tracing::error!(job = job.id, error = %e, "could not report a stuck job"),
    }
}

async fn finish(
    ctx: &AppContext,
    job: &ClaimedJob,
    outcome: JobOutcome,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let mut tx = ctx.store.begin().await?;
    if !store::complete_job(&mut tx, job, now).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    if let Some(incident) = job.incident {
        for change in outcome.changes {
            match change {
                JobChange::WarRoom(room) => {
                    store::set_war_room(&mut tx, incident, &room, now).await?
                }
                JobChange::KickoffRef(r) => {
                    store::set_kickoff_ref(&mut tx, incident, &r, now).await?
                }
                JobChange::Timeline { event, source_key } => {
                    store::insert_timeline(&mut tx, incident, &event, source_key.as_deref())
                        .await?;
                }
                JobChange::TimelineText { source_key, text } => {
                    store::update_timeline_text(&mut tx, incident, &source_key, &text).await?;
                }
                JobChange::Enqueue(effects) => {
                    enqueue_effects(&mut tx, incident, &effects, now).await?;
                }
                JobChange::PagesQueued(deliveries) => {
                    store::queue_pages(&mut tx, &deliveries, now).await?;
                }
                JobChange::PageSent { delivery, detail } => {
                    store::set_page_state(
                        &mut tx,
                        &delivery,
                        store::PageState::Sent,
                        Some(&detail),
                        now,
                    )
                    .await?;
                }
            }
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// A page that fails is visible on the timeline at once, once per page (its retries continue).
async fn note_failing_delivery(
    ctx: &AppContext,
    job: &ClaimedJob,
    reason: &str,
    now: DateTime<Utc>,
) {
    let (
        Some(incident),
        Ok(EffectJob {
            effect:
                Effect::Page {
                    step,
                    contact,
                    channel,
                    ..
                },
            ..
        }),
    ) = (
        job.incident,
        serde_json::from_str::<EffectJob>(&job.payload),
    )
    else {
        return;
    };
    let event = TimelineEvent::new(
        now,
        None,
        TimelineKind::Failure,
        format!(
            "Paging {contact} by {channel} (escalation step {}) failed: {reason}; retrying",
            step + 1
        ),
    );
    let key = format!("delivery_failing:{}", job.id);
    let recorded = async {
        let mut conn = ctx.store.acquire().await?;
        store::insert_timeline(&mut conn, incident, &event, Some(&key)).await
    };
    if let Err(e) = recorded.await {
        tracing::error!(error = %e, "could not record a failing delivery");
    }
}

async fn give_up(
    ctx: &AppContext,
    job: &ClaimedJob,
    reason: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    if !store::fail_job(&ctx.store, job, reason, now).await? {
        return Ok(());
    }
    if let Some(incident) = job.incident {
        let mut conn = ctx.store.acquire().await?;
        let event = TimelineEvent::new(
            now,
            None,
            TimelineKind::Failure,
            format!(
                "warroom gave up on `{}` after {} attempt(s): {reason}",
                job.kind, job.attempts
            ),
        );
        store::insert_timeline(&mut conn, incident, &event, None).await?;
    }
    Ok(())
}

async fn execute(ctx: &AppContext, job: &ClaimedJob) -> Result<JobOutcome, JobError> {
    if job.kind == crate::slack::effects::REPLY_JOB {
        return crate::slack::effects::send_replies(ctx, &job.payload, job.attempts).await;
    }
    if job.kind == RETENTION_JOB {
        return retention(ctx).await;
    }
    if job.kind == crate::health::POLL_JOB {
        return crate::health::poll(ctx, &job.payload).await;
    }
    let payload: EffectJob = serde_json::from_str(&job.payload)
        .map_err(|e| JobError::fatal(format!("unreadable job payload: {e}")))?;
    let incident = {
        let mut conn = ctx.store.acquire().await?;
        store::get_incident(&mut conn, payload.incident).await?
    }
    .ok_or_else(|| JobError::fatal(format!("INC-{} does not exist", payload.incident)))?;
    if matches!(payload.effect, Effect::WatchHealth) {
        let mut conn = ctx.store.acquire().await?;
        crate::health::start_polls(&mut conn, ctx, ctx.clock.now()).await?;
        return Ok(JobOutcome::none());
    }
    let run = crate::slack::effects::JobRun {
        job: job.id,
        retry: job.attempts > 1,
    };
    if crate::paging::is_paging_effect(&payload.effect) {
        return crate::paging::perform(ctx, &incident, &payload.effect, run).await;
    }
    match incident.platform {
        Platform::Slack => {
            crate::slack::effects::perform(ctx, &incident, &payload.effect, run).await
        }
        Platform::Teams => Err(JobError::fatal("Microsoft Teams is not supported yet")),
    }
}

/// The worker loop: keeps up to `CONCURRENCY` jobs running, claims more as soon as there is
/// room, and otherwise sleeps until the next job is due, a job is enqueued or finishes, the
/// clock moves, or `IDLE_POLL` passes. On `shutdown` it stops claiming and lets running jobs
/// finish (a job cut short is retried after its lease expires).
pub async fn run_worker(ctx: AppContext, shutdown: CancellationToken) {
    const CONCURRENCY: usize = 32;
    tracing::info!("job worker started");
    let scheduled = async {
        let mut conn = ctx.store.acquire().await?;
        schedule_retention(&mut conn, ctx.clock.now()).await
    };
    if let Err(e) = scheduled.await {
        tracing::error!(error = %e, "could not schedule the clean-up of old jobs");
    }
    let mut running = JoinSet::new();
    while !shutdown.is_cancelled() {
        while let Some(done) = running.try_join_next() {
            if let Err(e) = done {
                tracing::error!(error = %e, "a job task panicked");
            }
        }
        // Register interest before looking, so a job enqueued meanwhile is not missed.
        let woken = ctx.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let free = CONCURRENCY.saturating_sub(running.len());
        if free > 0 {
            match claim(&ctx, free as i64).await {
                Ok(jobs) if !jobs.is_empty() => {
                    for job in jobs {
                        let ctx = ctx.clone();
                        running.spawn(async move { run_one(&ctx, job).await });
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "could not claim jobs"),
            }
        }
        let wait = if free == 0 {
            IDLE_POLL
        } else {
            match store::next_wakeup(&ctx.store).await {
                Ok(Some(next)) => (next - ctx.clock.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .clamp(Duration::from_millis(5), IDLE_POLL),
                Ok(None) => IDLE_POLL,
                Err(e) => {
                    tracing::error!(error = %e, "could not read the queue");
                    IDLE_POLL
                }
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = &mut woken => {}
            _ = ctx.clock.moved() => {}
            _ = tokio::time::sleep(wait) => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
    let drain = async { while running.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        tracing::warn!("jobs still running at shutdown; they will be retried after their lease");
    }
    tracing::info!("job worker stopped");
}

/// Spawns the worker on the runtime.
pub fn spawn_worker(ctx: AppContext, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run_worker(ctx, shutdown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        for attempt in 1..40 {
            let d = backoff(attempt);
            let nominal = (500u64 << (attempt.clamp(1, 16) - 1)).min(30_000);
            assert!(d.as_millis() as u64 >= nominal * 8 / 10, "{attempt}: {d:?}");
            assert!(
                d.as_millis() as u64 <= nominal * 12 / 10 + 1,
                "{attempt}: {d:?}"
            );
        }
        assert!(backoff(3) > backoff(1));
    }
}
