//! The handler of the jobs that carry out a core [`Effect`] (the effect router): it reads the
//! job's incident and hands the effect to whoever performs it — paging, the health watch, or
//! the chat effects ([`chat`]) on the platform the incident lives on.

pub mod chat;

use chrono::{DateTime, Utc};

use crate::chat::Platforms;
use crate::context::AppContext;
use crate::core::Effect;
use crate::jobs::{EffectJob, JobError, JobHandler, JobOutcome, JobRun};
use crate::store::{self, ClaimedJob};

/// Runs every effect job.
pub struct EffectRouter {
    pub ctx: AppContext,
    pub platforms: Platforms,
}

#[async_trait::async_trait]
impl JobHandler for EffectRouter {
    fn kinds(&self) -> Vec<&'static str> {
        Effect::KINDS.to_vec()
    }

    async fn run(&self, job: &ClaimedJob, now: DateTime<Utc>) -> Result<JobOutcome, JobError> {
        let ctx = &self.ctx;
        let payload = EffectJob::decode(&job.payload).map_err(JobError::fatal)?;
        let incident = {
            let mut conn = ctx.store.acquire().await?;
            store::get_incident(&mut conn, payload.incident).await?
        }
        .ok_or_else(|| JobError::fatal(format!("INC-{} does not exist", payload.incident)))?;
        if matches!(payload.effect, Effect::WatchHealth) {
            let mut conn = ctx.store.acquire().await?;
            crate::health::start_polls(&mut conn, ctx, now).await?;
            return Ok(JobOutcome::none());
        }
        let run = JobRun::of(job);
        if crate::paging::is_paging_effect(&payload.effect) {
            return crate::paging::perform(ctx, &self.platforms, &incident, &payload.effect, run)
                .await;
        }
        let platform = self.platforms.of(&incident)?;
        chat::perform(ctx, platform, &incident, &payload.effect, run).await
    }
}
