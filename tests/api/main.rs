//! The integration suite: the real server, real signed HTTP requests, a Slack emulator over
//! HTTP. Every test runs on SQLite, and again on PostgreSQL when `WARROOM_TEST_POSTGRES_URL` is
//! set (otherwise the `postgres::` variants are reported as ignored).

mod escalation;
mod essential;
mod helpers;
mod hotfix;
mod open;
mod queue;
mod reads;
mod resolution;
mod retention;
mod single_process;
mod upgrade;
mod war_room;
