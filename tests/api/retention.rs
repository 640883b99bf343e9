//! Retention: a periodic durable job deletes finished jobs older than `retention.jobs` and
//! inbound ids older than `retention.inbound_ids`, never a pending or running job nor one
//! that another job waits for.

use std::time::Duration;

use warroom::retention::{self, JOB as RETENTION_JOB};
use warroom::store::{self, NewJob, Store};

use crate::helpers::{spawn_app_with, Backend, Spawn};

crate::on_both_backends!(old_finished_jobs_and_inbound_ids_are_deleted_by_the_periodic_job);

const DAY: Duration = Duration::from_secs(24 * 3600);

async fn old_finished_jobs_and_inbound_ids_are_deleted_by_the_periodic_job(backend: Backend) {
    let app = spawn_app_with(Spawn {
        workers: 0,
        ..Spawn::new(backend)
    })
    .await;
    let t0 = app.clock.now();
    let mut conn = app.ctx.store.acquire().await.unwrap();
    let mut add = async |kind: &str, state: &str, blocked_by: Option<i64>, age: Duration| {
        let job = NewJob {
            kind: kind.into(),
            incident: None,
            payload: "{}".into(),
            run_at: t0 + chrono::Duration::days(365),
            blocked_by,
            dedup_key: None,
            coalesce_key: None,
        };
        let id = store::enqueue(&mut conn, &job, t0).await.unwrap().unwrap();
        let at = t0 + chrono::Duration::from_std(age).unwrap();
        sqlx::query("UPDATE jobs SET state = $1, updated_at = $2 WHERE id = $3")
            .bind(state)
            .bind(at.timestamp_millis())
            .bind(id)
            .execute(&mut *conn)
            .await
            .unwrap();
        id
    };
    add("old_done", "done", None, Duration::ZERO).await;
    add("old_failed", "failed", None, Duration::ZERO).await;
    add("old_cancelled", "cancelled", None, Duration::ZERO).await;
    add("old_pending", "pending", None, Duration::ZERO).await;
    add("old_running", "running", None, Duration::ZERO).await;
    let parent = add("old_parent", "cancelled", None, Duration::ZERO).await;
    add("waiting_child", "pending", Some(parent), Duration::ZERO).await;
    let chain_parent = add("old_chain_parent", "done", None, Duration::ZERO).await;
    add(
        "old_chain_child",
        "failed",
        Some(chain_parent),
        Duration::ZERO,
    )
    .await;
    add("recent_done", "done", None, DAY * 20).await;
    Store::remember_inbound(&mut conn, "event:old", t0)
        .await
        .unwrap();
    Store::remember_inbound(&mut conn, "event:recent", t0 + chrono::Duration::days(25))
        .await
        .unwrap();
    retention::schedule(&mut conn, t0).await.unwrap();
    drop(conn);

    // 31 days later, with the default retention (30d jobs, 7d inbound ids).
    app.clock.advance(DAY * 31);
    app.queue.run_once().await.unwrap();

    let mut conn = app.ctx.store.acquire().await.unwrap();
    let all = store::list_jobs(&mut conn).await.unwrap();
    let kinds: Vec<&str> = all
        .iter()
        .filter(|j| j.kind != RETENTION_JOB)
        .map(|j| j.kind.as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "old_pending",
            "old_running",
            "old_parent",
            "waiting_child",
            "recent_done"
        ]
    );
    // The clean-up ran and comes back in an hour.
    let retention: Vec<_> = all.iter().filter(|j| j.kind == RETENTION_JOB).collect();
    assert_eq!(retention.len(), 2, "{retention:?}");
    assert_eq!(retention[0].state, "done");
    assert_eq!(retention[1].state, "pending");
    assert_eq!(
        retention[1].run_at,
        app.clock.now() + chrono::Duration::hours(1)
    );
    let inbound: Vec<String> = sqlx::query_scalar("SELECT key FROM inbound_ids ORDER BY key")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert_eq!(inbound, ["event:recent"]);
}
