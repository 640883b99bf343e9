//! The crash suite: the real `warroom serve` binary as a child process, killed with SIGKILL at
//! chosen points (a job running, a Slack call done but not committed, a page due), restarted on
//! the same database, and judged by what the Slack emulator saw and what the database holds: it
//! starts again, nothing acknowledged is lost, nothing is doubled.
//!
//! Every test runs on SQLite, and again on PostgreSQL when `WARROOM_TEST_POSTGRES_URL` is set
//! at build time (otherwise the `postgres::` variants are reported as ignored):
//! `WARROOM_TEST_POSTGRES_URL=postgres://… cargo test --test crash postgres`.

// The API suite's helpers (test databases, signed slash-command bodies, constants, and the
// `on_both_backends!` macro), shared.
#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

mod burst;
mod harness;
mod paging;
mod startup;
mod war_room;
