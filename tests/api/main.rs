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
mod war_room;

/// Generates `sqlite::<test>` and `postgres::<test>` for each `async fn <test>(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(warroom_pg), ignore = "PostgreSQL suite skipped: set WARROOM_TEST_POSTGRES_URL to run it")]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}
