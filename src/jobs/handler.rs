//! What a job handler is: the one trait performers implement, the registry the composition
//! root fills, and the result types a run reports (an outcome to commit, or an error).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::core::{Effect, TimelineDetail, TimelineEvent, WarRoom};
use crate::store::{self, ClaimedJob};

/// Runs the jobs of some kinds. Handlers are registered in the composition root; the worker
/// knows none of them.
#[async_trait::async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// The job kinds this handler runs.
    fn kinds(&self) -> Vec<&'static str>;

    /// Runs one attempt of `job`. What it changes is committed with the job's completion.
    async fn run(&self, job: &ClaimedJob, now: DateTime<Utc>) -> Result<JobOutcome, JobError>;
}

/// Which handler runs which job kind.
#[derive(Clone, Default)]
pub struct Handlers {
    by_kind: HashMap<&'static str, Arc<dyn JobHandler>>,
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kinds: Vec<_> = self.by_kind.keys().collect();
        kinds.sort();
        f.debug_struct("Handlers").field("kinds", &kinds).finish()
    }
}

/// Two handlers claimed the same job kind.
#[derive(Debug, thiserror::Error)]
#[error("two job handlers run `{0}`")]
pub struct DuplicateKind(pub &'static str);

impl Handlers {
    /// Adds `handler` for each of its kinds.
    pub fn register(&mut self, handler: Arc<dyn JobHandler>) -> Result<(), DuplicateKind> {
        for kind in handler.kinds() {
            if self.by_kind.insert(kind, handler.clone()).is_some() {
                return Err(DuplicateKind(kind));
            }
        }
        Ok(())
    }

    /// The handler of `kind`.
    pub fn get(&self, kind: &str) -> Option<&Arc<dyn JobHandler>> {
        self.by_kind.get(kind)
    }
}

/// The attempt of a job that posts: its posts are marked with the job's id, and on a retry
/// (an earlier attempt may have reached the platform: the attempt number is above 1, and the
/// claim that counts an attempt commits before the attempt runs, so a run after a crash counts
/// as a retry too) each post looks for what that attempt posted before posting again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobRun {
    /// The job's id, the same on every attempt.
    pub job: i64,
    /// Whether an earlier attempt may have posted.
    pub retry: bool,
}

impl JobRun {
    pub fn of(job: &ClaimedJob) -> Self {
        JobRun {
            job: job.id,
            retry: job.attempts > 1,
        }
    }
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

impl From<store::StoreError> for JobError {
    fn from(e: store::StoreError) -> Self {
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
    /// New detail for the keyed timeline event (a pinned message, once fetched).
    TimelineText {
        source_key: String,
        detail: TimelineDetail,
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

#[cfg(test)]
mod tests {
    use super::*;

    struct Noop(&'static [&'static str]);

    #[async_trait::async_trait]
    impl JobHandler for Noop {
        fn kinds(&self) -> Vec<&'static str> {
            self.0.to_vec()
        }

        async fn run(&self, _: &ClaimedJob, _: DateTime<Utc>) -> Result<JobOutcome, JobError> {
            Ok(JobOutcome::none())
        }
    }

    #[test]
    fn a_kind_has_one_handler() {
        let mut handlers = Handlers::default();
        handlers.register(Arc::new(Noop(&["a", "b"]))).unwrap();
        assert!(handlers.get("a").is_some() && handlers.get("b").is_some());
        assert!(handlers.get("c").is_none());
        let clash = handlers.register(Arc::new(Noop(&["c", "b"])));
        assert_eq!(clash.map_err(|e| e.0).err(), Some("b"));
    }
}
