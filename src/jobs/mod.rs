//! Durable jobs: every outgoing call is a row in the `jobs` table, enqueued in the same
//! transaction as the state change that caused it, and run by workers that claim due rows with
//! a lease, retry with exponential backoff (honouring a platform's `Retry-After`), store
//! attempts and the last error, and release the jobs chained behind them. What a job does is
//! up to the [`JobHandler`] registered for its kind.

mod enqueue;
mod handler;
mod worker;

use std::time::Duration;

pub use enqueue::*;
pub use handler::*;
pub use worker::*;

/// How long a claimed job belongs to its worker before another may take it, unless the worker
/// extends it: a running job's lease is renewed every third of it (a heartbeat), so only a
/// worker that died (or hangs its runtime) loses its jobs.
pub const LEASE: Duration = Duration::from_secs(30);
/// Longest a job may run before it is cut short and retried.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(120);
/// Jobs claimed per round.
pub(crate) const BATCH: i64 = 32;
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

/// Longest wait between two looks at the queue (other replicas may have added jobs).
pub(crate) const IDLE_POLL: Duration = Duration::from_millis(500);
