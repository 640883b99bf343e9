//! The queue's worker side: claiming due jobs with a lease, running each with its registered
//! handler under a heartbeat and a timeout, recording the outcome (commit, retry with backoff,
//! give up), and the worker loop. It knows no performer: see [`super::Handlers`].

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{
    enqueue_effects, EffectJob, Handlers, JobChange, JobError, JobOutcome, BATCH, ESSENTIAL,
    IDLE_POLL, JOB_TIMEOUT, LEASE, MAX_ATTEMPTS, STUCK_AFTER,
};
use crate::clock::Clock;
use crate::core::{Effect, Status, TimelineDetail, TimelineEvent, TimelineKind};
use crate::store::{self, ClaimedJob, Store, StoreResult};

fn attempt_cap() -> store::AttemptCap<'static> {
    store::AttemptCap {
        max_attempts: MAX_ATTEMPTS,
        essential: ESSENTIAL,
    }
}

fn chrono_lease(lease: Duration) -> chrono::Duration {
    chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(30))
}

/// The queue's worker side: the store it claims from, the clock it runs by, the signal that
/// wakes idle workers, and the handlers that run the jobs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Queue {
    pub store: Store,
    pub clock: Clock,
    /// Signalled when jobs are enqueued or finish, so idle workers look again at once.
    pub wake: Arc<Notify>,
    handlers: Arc<Handlers>,
}

impl Queue {
    pub fn new(store: Store, clock: Clock, wake: Arc<Notify>, handlers: Handlers) -> Self {
        Queue {
            store,
            clock,
            wake,
            handlers: Arc::new(handlers),
        }
    }

    /// Claims the jobs due now and runs them (concurrently) to their outcome; returns how many
    /// were claimed. Tests drive the queue with it, instead of a worker.
    pub async fn run_once(&self) -> StoreResult<usize> {
        run_due_jobs(self).await
    }

    /// Runs due jobs until none is due (at most `rounds` rounds, so a job that keeps making
    /// due jobs cannot loop forever); returns how many ran.
    pub async fn drain(&self, rounds: usize) -> StoreResult<usize> {
        let mut ran = 0;
        for _ in 0..rounds {
            match self.run_once().await? {
                0 => break,
                n => ran += n,
            }
        }
        Ok(ran)
    }

    /// Spawns a worker on the runtime (see [`run_worker`]).
    pub fn spawn_worker(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(run_worker(self.clone(), shutdown))
    }
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
async fn run_due_jobs(queue: &Queue) -> StoreResult<usize> {
    let jobs = claim(queue, BATCH).await?;
    let n = jobs.len();
    let mut set = JoinSet::new();
    for job in jobs {
        let queue = queue.clone();
        set.spawn(async move { run_one(&queue, job).await });
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
pub async fn claim(queue: &Queue, limit: i64) -> StoreResult<Vec<ClaimedJob>> {
    let now = queue.clock.now();
    let (jobs, exhausted) =
        store::claim_jobs(&queue.store, now, chrono_lease(LEASE), limit, attempt_cap()).await?;
    for job in exhausted {
        tracing::error!(job = job.id, kind = %job.kind, attempts = job.attempts, "job failed for good: no attempts left");
        metrics::counter!("warroom_jobs_total", "kind" => job.kind.clone(), "outcome" => "failed")
            .increment(1);
        if let Some(incident) = job.incident {
            let event = TimelineEvent::new(
                now,
                None,
                TimelineKind::Failure,
                TimelineDetail::new()
                    .words("warroom gave up on ")
                    .code(&job.kind)
                    .words(format!(" after {} attempt(s)", job.attempts)),
            );
            // The claimed jobs are this worker's now: a failed note must not lose them.
            let noted = async {
                let mut conn = queue.store.acquire().await?;
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
            report_if_stuck(queue, job, since, reason, now).await;
        }
    }
    Ok(jobs)
}

/// Runs one claimed job and records its outcome.
async fn run_one(queue: &Queue, job: ClaimedJob) {
    run_claimed_with(queue, job, LEASE, |queue, job| async move {
        execute(&queue, &job).await
    })
    .await
}

/// Runs a claimed job with `exec` and records its outcome: the job's lease (`lease` long) is
/// extended while `exec` runs, `exec` is cut short after [`JOB_TIMEOUT`], and a panic inside it
/// is the attempt's failure (retried like any other). [`run_due_jobs`] and the worker use it
/// with the job's real work; tests with work of their own.
pub async fn run_claimed_with<F, Fut>(queue: &Queue, job: ClaimedJob, lease: Duration, exec: F)
where
    F: FnOnce(Queue, ClaimedJob) -> Fut,
    Fut: std::future::Future<Output = Result<JobOutcome, JobError>> + Send + 'static,
{
    let started = std::time::Instant::now();
    let mut task = tokio::spawn(exec(queue.clone(), job.clone()));
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
                match store::extend_lease(&queue.store, &job, chrono_lease(lease)).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(job = job.id, "lost a running job's lease"),
                    Err(e) => tracing::warn!(job = job.id, error = %e, "could not extend a job's lease"),
                }
            }
        }
    };
    record_outcome(queue, &job, result, started).await;
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
    queue: &Queue,
    job: &ClaimedJob,
    result: Result<JobOutcome, JobError>,
    started: std::time::Instant,
) {
    metrics::histogram!("warroom_job_seconds", "kind" => job.kind.clone())
        .record(started.elapsed().as_secs_f64());
    let now = queue.clock.now();
    let outcome = match result {
        Ok(outcome) => {
            finish(queue, job, outcome, now).await.map(
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
            if job.attempts < MAX_ATTEMPTS || essential_and_open(queue, job).await =>
        {
            let wait = after.unwrap_or_else(|| backoff(job.attempts));
            let run_at = now + chrono::Duration::from_std(wait).unwrap_or_default();
            tracing::warn!(job = job.id, kind = %job.kind, attempt = job.attempts, ?wait, %reason, "job will be retried");
            // Keyed by the job, so said once; not only on attempt 1, which may have been lost.
            if job.kind == "page" {
                note_failing_delivery(queue, job, &reason, now).await;
            }
            let retried = store::retry_job(&queue.store, job, run_at, &reason, now).await;
            if matches!(retried, Ok(true)) && ESSENTIAL.contains(&job.kind.as_str()) {
                match store::job_failing_since(&queue.store, job.id).await {
                    Ok(Some(since)) => report_if_stuck(queue, job, since, &reason, now).await,
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
            give_up(queue, job, &reason, now).await.map(|_| "failed")
        }
    };
    match outcome {
        Ok(label) => {
            metrics::counter!("warroom_jobs_total", "kind" => job.kind.clone(), "outcome" => label)
                .increment(1);
        }
        Err(e) => tracing::error!(job = job.id, error = %e, "could not record a job's outcome"),
    }
    queue.wake.notify_waiters();
}

/// An essential job (see [`ESSENTIAL`]) whose incident is still open (not resolved or closed).
async fn essential_and_open(queue: &Queue, job: &ClaimedJob) -> bool {
    let (true, Some(number)) = (ESSENTIAL.contains(&job.kind.as_str()), job.incident) else {
        return false;
    };
    let incident = async {
        let mut conn = queue.store.acquire().await?;
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
    queue: &Queue,
    job: &ClaimedJob,
    since: DateTime<Utc>,
    reason: &str,
    now: DateTime<Utc>,
) {
    let stuck_after = chrono::Duration::from_std(STUCK_AFTER).unwrap_or(chrono::Duration::MAX);
    let Some(incident) = job.incident else {
        return;
    };
    if now - since < stuck_after || !essential_and_open(queue, job).await {
        return;
    }
    let effect = Effect::DeliveryStuck {
        job: job.id,
        kind: job.kind.clone(),
        since,
        error: reason.to_string(),
    };
    let reported = async {
        let mut conn = queue.store.acquire().await?;
        enqueue_effects(&mut conn, incident, &[effect], now).await
    };
    match reported.await {
        Ok(0) => {}
        Ok(_) => {
            tracing::error!(job = job.id, kind = %job.kind, incident, attempts = job.attempts, %since, %reason, "an essential job has been failing for 15 minutes or more; still retrying");
            metrics::counter!("warroom_jobs_stuck_total", "kind" => job.kind.clone()).increment(1);
            queue.wake.notify_waiters();
        }
        Err(e) => tracing::error!(job = job.id, error = %e, "could not report a stuck job"),
    }
}

async fn finish(
    queue: &Queue,
    job: &ClaimedJob,
    outcome: JobOutcome,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let mut tx = queue.store.begin().await?;
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
                JobChange::TimelineText { source_key, detail } => {
                    store::update_timeline_detail(&mut tx, incident, &source_key, &detail).await?;
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
async fn note_failing_delivery(queue: &Queue, job: &ClaimedJob, reason: &str, now: DateTime<Utc>) {
    let (
        Some(incident),
        Ok(EffectJob {
            effect:
                Effect::Page {
                    step,
                    contact,
                    route,
                    ..
                },
            ..
        }),
    ) = (job.incident, EffectJob::decode(&job.payload))
    else {
        return;
    };
    let event = TimelineEvent::new(
        now,
        None,
        TimelineKind::Failure,
        format!(
            "Paging {contact} by {route} (escalation step {}) failed: {reason}; retrying",
            step + 1
        ),
    );
    let key = format!("delivery_failing:{}", job.id);
    let recorded = async {
        let mut conn = queue.store.acquire().await?;
        store::insert_timeline(&mut conn, incident, &event, Some(&key)).await
    };
    if let Err(e) = recorded.await {
        tracing::error!(error = %e, "could not record a failing delivery");
    }
}

async fn give_up(
    queue: &Queue,
    job: &ClaimedJob,
    reason: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    if !store::fail_job(&queue.store, job, reason, now).await? {
        return Ok(());
    }
    if let Some(incident) = job.incident {
        let mut conn = queue.store.acquire().await?;
        let event = TimelineEvent::new(
            now,
            None,
            TimelineKind::Failure,
            TimelineDetail::new()
                .words("warroom gave up on ")
                .code(&job.kind)
                .words(format!(" after {} attempt(s): {reason}", job.attempts)),
        );
        store::insert_timeline(&mut conn, incident, &event, None).await?;
    }
    Ok(())
}

async fn execute(queue: &Queue, job: &ClaimedJob) -> Result<JobOutcome, JobError> {
    let Some(handler) = queue.handlers.get(&job.kind) else {
        return Err(JobError::fatal(format!(
            "no handler runs `{}` jobs",
            job.kind
        )));
    };
    handler.run(job, queue.clock.now()).await
}

/// The worker loop: keeps up to `CONCURRENCY` jobs running, claims more as soon as there is
/// room, and otherwise sleeps until the next job is due, a job is enqueued or finishes, the
/// clock moves, or `IDLE_POLL` passes. On `shutdown` it stops claiming and lets running jobs
/// finish (a job cut short is retried after its lease expires).
pub async fn run_worker(queue: Queue, shutdown: CancellationToken) {
    const CONCURRENCY: usize = 32;
    tracing::info!("job worker started");
    let mut running = JoinSet::new();
    while !shutdown.is_cancelled() {
        while let Some(done) = running.try_join_next() {
            if let Err(e) = done {
                tracing::error!(error = %e, "a job task panicked");
            }
        }
        // Register interest before looking, so a job enqueued meanwhile is not missed.
        let woken = queue.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let free = CONCURRENCY.saturating_sub(running.len());
        if free > 0 {
            match claim(&queue, free as i64).await {
                Ok(jobs) if !jobs.is_empty() => {
                    for job in jobs {
                        let queue = queue.clone();
                        running.spawn(async move { run_one(&queue, job).await });
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
            match store::next_wakeup(&queue.store).await {
                Ok(Some(next)) => (next - queue.clock.now())
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
            _ = queue.clock.moved() => {}
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
