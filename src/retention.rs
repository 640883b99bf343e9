//! The periodic clean-up: finished jobs older than `retention.jobs` and inbound ids older than
//! `retention.inbound_ids` are deleted, once an hour.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use crate::context::AppContext;
use crate::jobs::{JobError, JobHandler, JobOutcome};
use crate::store::{self, ClaimedJob, NewJob, StoreResult};

/// The job kind of the periodic clean-up of old finished jobs and inbound ids.
pub const JOB: &str = "retention";
/// How often the clean-up runs.
pub const EVERY: Duration = Duration::from_secs(3600);

/// Schedules the clean-up at `at` unless it is pending already (one per database).
pub async fn schedule(conn: &mut AnyConnection, at: DateTime<Utc>) -> StoreResult<()> {
    let job = NewJob {
        kind: JOB.into(),
        incident: None,
        payload: "{}".into(),
        run_at: at,
        blocked_by: None,
        dedup_key: None,
        coalesce_key: Some(JOB.into()),
    };
    store::enqueue(conn, &job, at).await?;
    Ok(())
}

/// Runs the clean-up jobs.
pub struct RetentionHandler {
    pub ctx: AppContext,
}

#[async_trait::async_trait]
impl JobHandler for RetentionHandler {
    fn kinds(&self) -> Vec<&'static str> {
        vec![JOB]
    }

    async fn run(&self, _: &ClaimedJob, now: DateTime<Utc>) -> Result<JobOutcome, JobError> {
        clean_up(&self.ctx, now).await
    }
}

/// Deletes finished jobs older than `retention.jobs` and inbound ids older than
/// `retention.inbound_ids` (by the application's clock), then schedules the next run.
async fn clean_up(ctx: &AppContext, now: DateTime<Utc>) -> Result<JobOutcome, JobError> {
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
    schedule(&mut conn, now + age(EVERY)).await?;
    Ok(JobOutcome::none())
}
