//! The durable job queue's SQL: enqueue, claim with a lease, complete, retry, fail.
//!
//! A job is claimed by one conditional `UPDATE … RETURNING` that moves it to `running`, adds
//! one to `attempts` and sets `lease_until`; on PostgreSQL the candidate rows are taken with
//! `FOR UPDATE SKIP LOCKED` so replicas never claim the same job. Every later write is fenced
//! by `attempts`: a worker whose lease expired and whose job was claimed again cannot overwrite
//! the new attempt's outcome. Leases are reckoned by the database's clock and extended by a
//! heartbeat while the job runs; due times (`run_at`) by the application's clock.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{from_ms, ms, Backend, Store, StoreError, StoreResult};

/// A job to add to the queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub incident: Option<i64>,
    pub payload: String,
    pub run_at: DateTime<Utc>,
    pub blocked_by: Option<i64>,
    /// At most one job ever exists with this key (e.g. one escalation step per incident).
    pub dedup_key: Option<String>,
    /// At most one pending job with this key, and none runs while another with it runs.
    pub coalesce_key: Option<String>,
}

/// A job claimed by this worker.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: i64,
    pub kind: String,
    pub incident: Option<i64>,
    pub payload: String,
    pub attempts: i64,
    pub run_at: DateTime<Utc>,
    /// Since when the job has been unfinished past an attempt that failed or was lost (its
    /// worker died, or hung past its lease): `None` on a first attempt.
    pub failing_since: Option<DateTime<Utc>>,
}

/// A job as stored, for tests, `demo` and diagnostics.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: i64,
    pub kind: String,
    pub incident: Option<i64>,
    pub state: String,
    pub attempts: i64,
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub blocked_by: Option<i64>,
}

/// Adds a job; `None` if a job with the same `dedup_key`, or a pending job with the same
/// `coalesce_key`, exists already.
///
/// A pending job that absorbs this one stays locked until the caller's transaction commits,
/// so no worker claims it (and renders the state it stands for) before the change that
/// enqueued it is visible. Without the lock, PostgreSQL could hand the job to a worker
/// between this insert and the commit, and the change would never be rendered.
pub async fn enqueue(
    conn: &mut AnyConnection,
    job: &NewJob,
    now: DateTime<Utc>,
) -> StoreResult<Option<i64>> {
    let Some(coalesce_key) = &job.coalesce_key else {
        return insert_job(conn, job, now).await;
    };
    // Either this transaction inserts the pending job, or it locks the one that is pending;
    // between the two a worker may claim the pending job, hence the (short) loop.
    for _ in 0..8 {
        if let Some(id) = insert_job(&mut *conn, job, now).await? {
            return Ok(Some(id));
        }
        let absorbed: Option<i64> = sqlx::query_scalar(
            "UPDATE jobs SET updated_at = $1 WHERE coalesce_key = $2 AND state = 'pending' \
             RETURNING id",
        )
        .bind(ms(now))
        .bind(coalesce_key)
        .fetch_optional(&mut *conn)
        .await?;
        if absorbed.is_some() {
            return Ok(None);
        }
    }
    Err(StoreError::Corrupt(format!(
        "no pending job for {coalesce_key} could be inserted or locked"
    )))
}

async fn insert_job(
    conn: &mut AnyConnection,
    job: &NewJob,
    now: DateTime<Utc>,
) -> StoreResult<Option<i64>> {
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO jobs (kind, incident, payload, state, run_at, blocked_by, dedup_key, \
         coalesce_key, created_at, updated_at) \
         VALUES ($1, $2, $3, 'pending', $4, $5, $6, $8, $7, $7) \
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(&job.kind)
    .bind(job.incident)
    .bind(&job.payload)
    .bind(ms(job.run_at))
    .bind(job.blocked_by)
    .bind(job.dedup_key.clone())
    .bind(ms(now))
    .bind(job.coalesce_key.clone())
    .fetch_optional(conn)
    .await?;
    Ok(id)
}

/// Unix milliseconds by the database's clock, as an SQL expression. Leases follow it, so that
/// replicas with skewed clocks (and a test clock that moves) agree on when a lease expires.
fn db_now_ms(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
        Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    }
}

/// Which jobs are never given up while their incident is open, as an SQL condition on `jobs`.
fn essential_and_open(essential: &[&str]) -> String {
    if essential.is_empty() {
        return "FALSE".into();
    }
    let kinds = essential
        .iter()
        .map(|k| format!("'{}'", k.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "(jobs.kind IN ({kinds}) AND EXISTS (SELECT 1 FROM incidents i \
          WHERE i.number = jobs.incident AND i.status NOT IN ('resolved', 'closed')))"
    )
}

/// How the queue treats attempts: jobs with `max_attempts` attempts are failed rather than
/// claimed again (a job that kills its worker), except the `essential` kinds while their
/// incident is open.
#[derive(Debug, Clone, Copy)]
pub struct AttemptCap<'a> {
    pub max_attempts: i64,
    pub essential: &'a [&'a str],
}

/// A job failed at claim time because it used up its attempts.
#[derive(Debug, Clone)]
pub struct ExhaustedJob {
    pub id: i64,
    pub kind: String,
    pub incident: Option<i64>,
    pub attempts: i64,
}

/// Claims up to `limit` jobs due by `due_by` (pending and due, or running with an expired
/// lease). Due times follow the application's clock (a test may move it); leases follow the
/// database's clock (`lease` from now), so a moved test clock or a skewed replica never steals
/// a job from the worker running it. Jobs that used up their attempts (`cap`) are failed, with
/// the jobs waiting for them, instead of being claimed; they are returned in `.1`.
///
/// A job claimed again without a recorded failure lost its last attempt (its worker died, or
/// hung past its lease): it has been failing since it was due (`run_at`, which only a
/// recorded retry moves), and `failing_since` says so from now on.
pub async fn claim_jobs(
    store: &Store,
    due_by: DateTime<Utc>,
    lease: chrono::Duration,
    limit: i64,
    cap: AttemptCap<'_>,
) -> StoreResult<(Vec<ClaimedJob>, Vec<ExhaustedJob>)> {
    let db_now = db_now_ms(store.backend());
    let exhausted = if store.housekeeping.due() {
        let exhausted = housekeeping(store, due_by, cap).await?;
        store.housekeeping.done();
        exhausted
    } else {
        Vec::new()
    };
    let lock = match store.backend() {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    // The claim itself never takes a job that used up its attempts, nor an expired attempt
    // that a pending job of its coalesce key supersedes, so skipping the housekeeping under a
    // burst changes what is bookkept when, never what runs.
    let sql = format!(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, \
         lease_until = {db_now} + $1, updated_at = $2, \
         failing_since = CASE WHEN attempts > 0 THEN COALESCE(failing_since, run_at) \
           ELSE failing_since END \
         WHERE id IN (SELECT id FROM jobs j WHERE (blocked_by IS NULL OR EXISTS ( \
             SELECT 1 FROM jobs b WHERE b.id = j.blocked_by AND b.state = 'done')) AND \
           ((state = 'pending' AND run_at <= $2) OR (state = 'running' AND lease_until <= {db_now} \
             AND (coalesce_key IS NULL OR NOT EXISTS (SELECT 1 FROM jobs p \
                  WHERE p.coalesce_key = j.coalesce_key AND p.state = 'pending')))) \
           AND (attempts < $4 OR {essential}) \
           AND (coalesce_key IS NULL OR NOT EXISTS (SELECT 1 FROM jobs r \
                WHERE r.coalesce_key = j.coalesce_key AND r.id <> j.id \
                AND r.state = 'running' AND r.lease_until > {db_now})) \
           ORDER BY run_at, id LIMIT $3 {lock}) \
         RETURNING id, kind, incident, payload, attempts, run_at, failing_since",
        essential = essential_and_open(cap.essential).replace("jobs.", "j.")
    );
    let rows = sqlx::query(&sql)
        .bind(lease.num_milliseconds())
        .bind(ms(due_by))
        .bind(limit)
        .bind(cap.max_attempts)
        .fetch_all(store.pool())
        .await?;
    let mut jobs = rows
        .iter()
        .map(claimed_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    jobs.sort_by_key(|j| (j.run_at, j.id));
    store.housekeeping.claimed(jobs.len() as i64 >= limit);
    Ok((jobs, exhausted))
}

/// Paces the queue's housekeeping: before every claim while the queue keeps up, at most once
/// a second while every claim fills its batch (a burst), where two more writes per claim
/// would slow the very jobs that are late.
#[derive(Debug, Default)]
pub struct Housekeeping {
    /// Milliseconds since `START` of the last run; 0 = never.
    last_ms: std::sync::atomic::AtomicU64,
    /// The last claim took as many jobs as it asked for.
    saturated: std::sync::atomic::AtomicBool,
}

static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

impl Housekeeping {
    const EVERY_MS: u64 = 1000;

    fn now_ms() -> u64 {
        let start = START.get_or_init(std::time::Instant::now);
        start.elapsed().as_millis() as u64 + 1
    }

    fn due(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let last = self.last_ms.load(Relaxed);
        !self.saturated.load(Relaxed) || last == 0 || Self::now_ms() - last >= Self::EVERY_MS
    }

    fn done(&self) {
        self.last_ms
            .store(Self::now_ms(), std::sync::atomic::Ordering::Relaxed);
    }

    fn claimed(&self, full: bool) {
        self.saturated
            .store(full, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Cancels expired attempts superseded by a pending job of their coalesce key, and fails the
/// claimable jobs that used up their attempts (with the jobs that waited for them).
async fn housekeeping(
    store: &Store,
    due_by: DateTime<Utc>,
    cap: AttemptCap<'_>,
) -> StoreResult<Vec<ExhaustedJob>> {
    let db_now = db_now_ms(store.backend());
    // An attempt whose lease expired while a newer job with its coalesce key waits is
    // superseded: cancel it rather than run it again beside the newer one.
    sqlx::query(&format!(
        "UPDATE jobs SET state = 'cancelled', lease_until = NULL, updated_at = $1, \
         last_error = 'superseded by a newer job after its lease expired' \
         WHERE state = 'running' AND lease_until <= {db_now} AND coalesce_key IS NOT NULL \
         AND EXISTS (SELECT 1 FROM jobs p WHERE p.coalesce_key = jobs.coalesce_key \
                     AND p.state = 'pending')"
    ))
    .bind(ms(due_by))
    .execute(store.pool())
    .await?;
    fail_exhausted_jobs(store, due_by, cap).await
}

/// Fails the claimable jobs (pending and due, or running with an expired lease) that used up
/// their attempts, and every job that waited for them.
async fn fail_exhausted_jobs(
    store: &Store,
    now: DateTime<Utc>,
    cap: AttemptCap<'_>,
) -> StoreResult<Vec<ExhaustedJob>> {
    let db_now = db_now_ms(store.backend());
    // SQLite, without statistics, would rather scan every due job than the few with many
    // attempts: name the index.
    let table = match store.backend() {
        Backend::Sqlite => "jobs INDEXED BY jobs_attempts",
        Backend::Postgres => "jobs",
    };
    let mut tx = store.begin().await?;
    let rows = sqlx::query(&format!(
        "UPDATE {table} SET state = 'failed', lease_until = NULL, updated_at = $1, \
         last_error = 'gave up after ' || CAST(attempts AS TEXT) || \
           ' attempts; last error: ' || COALESCE(last_error, 'none (its worker died)') \
         WHERE attempts >= $2 AND blocked_by IS NULL \
         AND ((state = 'pending' AND run_at <= $1) OR (state = 'running' AND lease_until <= {db_now})) \
         AND NOT {essential} \
         RETURNING id, kind, incident, attempts",
        essential = essential_and_open(cap.essential)
    ))
    .bind(ms(now))
    .bind(cap.max_attempts)
    .fetch_all(&mut *tx)
    .await?;
    let mut exhausted = Vec::new();
    for r in &rows {
        let job = ExhaustedJob {
            id: r.try_get("id")?,
            kind: r.try_get("kind")?,
            incident: r.try_get("incident")?,
            attempts: r.try_get("attempts")?,
        };
        fail_dependents(&mut tx, job.id, now).await?;
        exhausted.push(job);
    }
    tx.commit().await?;
    Ok(exhausted)
}

/// Extends a running job's lease to `lease` from now by the database's clock (a heartbeat).
/// False if this attempt no longer holds the job.
pub async fn extend_lease(
    store: &Store,
    job: &ClaimedJob,
    lease: chrono::Duration,
) -> StoreResult<bool> {
    let done = sqlx::query(&format!(
        "UPDATE jobs SET lease_until = {} + $1 WHERE id = $2 AND attempts = $3 AND state = 'running'",
        db_now_ms(store.backend())
    ))
    .bind(lease.num_milliseconds())
    .bind(job.id)
    .bind(job.attempts)
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

fn claimed_from_row(r: &AnyRow) -> StoreResult<ClaimedJob> {
    Ok(ClaimedJob {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        incident: r.try_get("incident")?,
        payload: r.try_get("payload")?,
        attempts: r.try_get("attempts")?,
        run_at: from_ms(r.try_get("run_at")?)?,
        failing_since: r
            .try_get::<Option<i64>, _>("failing_since")?
            .map(from_ms)
            .transpose()?,
    })
}

/// Marks a claimed job done and releases the jobs that waited for it. False if this worker
/// no longer holds the job (its lease expired and another attempt took it).
pub async fn complete_job(
    conn: &mut AnyConnection,
    job: &ClaimedJob,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'done', lease_until = NULL, last_error = NULL, updated_at = $1 \
         WHERE id = $2 AND attempts = $3 AND state = 'running'",
    )
    .bind(ms(now))
    .bind(job.id)
    .bind(job.attempts)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE jobs SET blocked_by = NULL, run_at = CASE WHEN run_at < $1 THEN $1 ELSE run_at END, \
         updated_at = $1 WHERE blocked_by = $2",
    )
    .bind(ms(now))
    .bind(job.id)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// Puts a claimed job back to wait until `run_at`, keeping the error. A coalescing job that a
/// newer pending job has superseded is cancelled instead (the newer one renders the latest state).
/// A pending job with its key committed by another transaction meanwhile (PostgreSQL) makes the
/// move fail on the pending-key index; the job is then found superseded on the next try.
pub async fn retry_job(
    store: &Store,
    job: &ClaimedJob,
    run_at: DateTime<Utc>,
    error: &str,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let mut tries = 0;
    loop {
        tries += 1;
        match try_retry_job(store, job, run_at, error, now).await {
            Err(StoreError::Database(e)) if tries < 3 && is_unique_violation(&e) => continue,
            other => return other,
        }
    }
}

async fn try_retry_job(
    store: &Store,
    job: &ClaimedJob,
    run_at: DateTime<Utc>,
    error: &str,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let mut tx = store.begin().await?;
    let superseded = sqlx::query(
        "UPDATE jobs SET state = 'cancelled', lease_until = NULL, last_error = $1, updated_at = $2 \
         WHERE id = $3 AND attempts = $4 AND state = 'running' AND coalesce_key IS NOT NULL \
         AND EXISTS (SELECT 1 FROM jobs p WHERE p.coalesce_key = jobs.coalesce_key \
                     AND p.state = 'pending')",
    )
    .bind(format!("superseded by a newer job after: {error}"))
    .bind(ms(now))
    .bind(job.id)
    .bind(job.attempts)
    .execute(&mut *tx)
    .await?;
    if superseded.rows_affected() == 1 {
        tx.commit().await?;
        return Ok(true);
    }
    let done = sqlx::query(
        "UPDATE jobs SET state = 'pending', run_at = $1, lease_until = NULL, last_error = $2, \
         updated_at = $3, failing_since = COALESCE(failing_since, $3) \
         WHERE id = $4 AND attempts = $5 AND state = 'running'",
    )
    .bind(ms(run_at))
    .bind(error)
    .bind(ms(now))
    .bind(job.id)
    .bind(job.attempts)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// A violation of a UNIQUE constraint or index.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// Gives up on a claimed job, and on every job that waited for it.
pub async fn fail_job(
    store: &Store,
    job: &ClaimedJob,
    error: &str,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let mut tx = store.begin().await?;
    let done = sqlx::query(
        "UPDATE jobs SET state = 'failed', lease_until = NULL, last_error = $1, updated_at = $2 \
         WHERE id = $3 AND attempts = $4 AND state = 'running'",
    )
    .bind(error)
    .bind(ms(now))
    .bind(job.id)
    .bind(job.attempts)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    fail_dependents(&mut tx, job.id, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// Fails every pending job that waited, directly or not, for the failed job `id`.
async fn fail_dependents(conn: &mut AnyConnection, id: i64, now: DateTime<Utc>) -> StoreResult<()> {
    let mut failed = vec![id];
    while let Some(id) = failed.pop() {
        let dependents: Vec<i64> = sqlx::query_scalar(
            "UPDATE jobs SET state = 'failed', last_error = $1, updated_at = $2 \
             WHERE blocked_by = $3 AND state = 'pending' RETURNING id",
        )
        .bind(format!("job {id} it waited for failed"))
        .bind(ms(now))
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        failed.extend(dependents);
    }
    Ok(())
}

/// Cancels an incident's pending jobs of one kind (e.g. escalation steps after an ack).
pub async fn cancel_pending_jobs(
    conn: &mut AnyConnection,
    incident: i64,
    kind: &str,
    now: DateTime<Utc>,
) -> StoreResult<u64> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'cancelled', updated_at = $1 \
         WHERE incident = $2 AND kind = $3 AND state = 'pending'",
    )
    .bind(ms(now))
    .bind(incident)
    .bind(kind)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// When the next pending job becomes due, if any. (Expired leases are found by the worker's
/// regular look at the queue.)
pub async fn next_wakeup(store: &Store) -> StoreResult<Option<DateTime<Utc>>> {
    let next: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(run_at) FROM jobs WHERE state = 'pending' AND blocked_by IS NULL",
    )
    .fetch_one(&store.read)
    .await?;
    next.map(from_ms).transpose()
}

/// Moves `running` jobs back to `pending`. Only for SQLite at start-up, where one process
/// owns the database and a `running` row can only be left over from a crash. At most one job
/// per coalesce key may be pending: a running job superseded by a pending one with its key (or
/// by a newer running one) is cancelled, since the newest job renders the latest state. This
/// never fails on the pending-key index, so start-up always succeeds.
pub async fn requeue_orphaned_jobs(store: &Store, now: DateTime<Utc>) -> StoreResult<u64> {
    let mut tx = store.begin().await?;
    sqlx::query(
        "UPDATE jobs SET state = 'cancelled', lease_until = NULL, updated_at = $1, \
         last_error = 'superseded by a newer job (left running by a previous process)' \
         WHERE state = 'running' AND coalesce_key IS NOT NULL AND EXISTS ( \
           SELECT 1 FROM jobs o WHERE o.coalesce_key = jobs.coalesce_key AND o.id <> jobs.id \
           AND (o.state = 'pending' OR (o.state = 'running' AND o.id > jobs.id)))",
    )
    .bind(ms(now))
    .execute(&mut *tx)
    .await?;
    let done = sqlx::query(
        "UPDATE jobs SET state = 'pending', lease_until = NULL, updated_at = $1 \
         WHERE state = 'running'",
    )
    .bind(ms(now))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

/// Since when a job has been failing (its first retried failure), if it has.
pub async fn job_failing_since(store: &Store, id: i64) -> StoreResult<Option<DateTime<Utc>>> {
    let since: Option<i64> = sqlx::query_scalar("SELECT failing_since FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await?
        .flatten();
    since.map(from_ms).transpose()
}

/// The job with this dedup key while it is pending or running.
pub async fn unfinished_job(conn: &mut AnyConnection, dedup_key: &str) -> StoreResult<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM jobs WHERE dedup_key = $1 AND state IN ('pending', 'running')",
    )
    .bind(dedup_key)
    .fetch_optional(conn)
    .await?)
}

/// Deletes finished jobs (done, cancelled, failed) last changed before `jobs_before`, except
/// those another job names in `blocked_by`, and inbound ids received before `inbound_before`.
/// Returns how many of each were deleted.
pub async fn delete_old_records(
    store: &Store,
    jobs_before: DateTime<Utc>,
    inbound_before: DateTime<Utc>,
) -> StoreResult<(u64, u64)> {
    let mut jobs = 0;
    // A chain is deleted from its end: each round frees the jobs the last one referenced.
    for _ in 0..8 {
        let done = sqlx::query(
            "DELETE FROM jobs WHERE state IN ('done', 'cancelled', 'failed') AND updated_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM jobs w WHERE w.blocked_by = jobs.id)",
        )
        .bind(ms(jobs_before))
        .execute(store.pool())
        .await?;
        jobs += done.rows_affected();
        if done.rows_affected() == 0 {
            break;
        }
    }
    let inbound = sqlx::query("DELETE FROM inbound_ids WHERE received_at < $1")
        .bind(ms(inbound_before))
        .execute(store.pool())
        .await?
        .rows_affected();
    Ok((jobs, inbound))
}

/// Every job, oldest first (tests, demo, diagnostics).
pub async fn list_jobs(conn: &mut AnyConnection) -> StoreResult<Vec<JobRecord>> {
    let rows = sqlx::query(
        "SELECT id, kind, incident, state, attempts, run_at, last_error, blocked_by FROM jobs \
         ORDER BY id",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(JobRecord {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                incident: r.try_get("incident")?,
                state: r.try_get("state")?,
                attempts: r.try_get("attempts")?,
                run_at: from_ms(r.try_get("run_at")?)?,
                last_error: r.try_get("last_error")?,
                blocked_by: r.try_get("blocked_by")?,
            })
        })
        .collect()
}

/// How many jobs are in each state (for metrics and readiness of tests).
pub async fn count_jobs(conn: &mut AnyConnection, state: &str) -> StoreResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state = $1")
            .bind(state)
            .fetch_one(conn)
            .await?,
    )
}
