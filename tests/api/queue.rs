//! The durable queue on its own: claims are exclusive, leases expire, writes are fenced,
//! chained jobs wait for their parent and fail with it.

use std::collections::HashSet;

use chrono::{Duration, Utc};
use warroom::store::{self, NewJob, Store};

use crate::helpers::{spawn_app_with, Backend, Spawn, TestDb};

crate::on_both_backends!(
    concurrent_claims_never_share_a_job,
    an_expired_lease_is_reclaimed_and_the_old_worker_is_fenced_out,
    chained_jobs_wait_for_their_parent_and_fail_with_it,
    dedup_keys_allow_one_job,
    start_up_requeue_cancels_a_running_job_superseded_by_a_pending_one,
    a_retry_superseded_by_a_pending_job_is_cancelled_not_a_constraint_error,
);

async fn store(backend: Backend) -> (Store, TestDb) {
    let db = TestDb::new(backend).await;
    let store = Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    (store, db)
}

fn coalescing(kind: &str, key: &str) -> NewJob {
    NewJob {
        coalesce_key: Some(key.into()),
        ..job(kind, None, None)
    }
}

fn job(kind: &str, blocked_by: Option<i64>, dedup_key: Option<&str>) -> NewJob {
    NewJob {
        kind: kind.into(),
        incident: None,
        payload: "{}".into(),
        run_at: Utc::now() - Duration::seconds(1),
        blocked_by,
        dedup_key: dedup_key.map(String::from),
        coalesce_key: None,
    }
}

async fn concurrent_claims_never_share_a_job(backend: Backend) {
    let (store, _db) = store(backend).await;
    let now = Utc::now();
    {
        let mut tx = store.begin().await.unwrap();
        for _ in 0..300 {
            store::enqueue(&mut tx, &job("test", None, None), now)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed =
                    store::claim_jobs(&store, Utc::now(), Utc::now(), Duration::seconds(60), 7)
                        .await
                        .unwrap();
                if claimed.is_empty() {
                    break;
                }
                mine.extend(claimed.into_iter().map(|j| j.id));
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for t in tasks {
        for id in t.await.unwrap() {
            total += 1;
            assert!(seen.insert(id), "job {id} claimed twice");
        }
    }
    assert_eq!(total, 300);
}

async fn an_expired_lease_is_reclaimed_and_the_old_worker_is_fenced_out(backend: Backend) {
    let (store, _db) = store(backend).await;
    let now = Utc::now();
    let mut conn = store.acquire().await.unwrap();
    store::enqueue(&mut conn, &job("test", None, None), now)
        .await
        .unwrap();
    drop(conn);
    let first = store::claim_jobs(&store, now, now, Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert!(store::claim_jobs(
        &store,
        now + Duration::seconds(59),
        now + Duration::seconds(59),
        Duration::seconds(60),
        10
    )
    .await
    .unwrap()
    .is_empty());
    let later = now + Duration::seconds(61);
    let second = store::claim_jobs(&store, later, later, Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attempts, 2);
    let mut conn = store.acquire().await.unwrap();
    assert!(
        !store::complete_job(&mut conn, &first[0], later)
            .await
            .unwrap(),
        "stale worker fenced"
    );
    assert!(store::complete_job(&mut conn, &second[0], later)
        .await
        .unwrap());
    let jobs = store::list_jobs(&mut conn).await.unwrap();
    assert_eq!((jobs[0].state.as_str(), jobs[0].attempts), ("done", 2));
}

async fn chained_jobs_wait_for_their_parent_and_fail_with_it(backend: Backend) {
    let (store, _db) = store(backend).await;
    let now = Utc::now();
    let mut conn = store.acquire().await.unwrap();
    let parent = store::enqueue(&mut conn, &job("parent", None, None), now)
        .await
        .unwrap();
    store::enqueue(&mut conn, &job("child", parent, None), now)
        .await
        .unwrap();
    let other = store::enqueue(&mut conn, &job("parent2", None, None), now)
        .await
        .unwrap();
    store::enqueue(&mut conn, &job("child2", other, None), now)
        .await
        .unwrap();
    drop(conn);

    let claimed = store::claim_jobs(&store, now, now, Duration::seconds(60), 10)
        .await
        .unwrap();
    let kinds: Vec<_> = claimed.iter().map(|j| j.kind.as_str()).collect();
    assert_eq!(kinds, ["parent", "parent2"], "children wait");

    let mut conn = store.acquire().await.unwrap();
    assert!(store::complete_job(&mut conn, &claimed[0], now)
        .await
        .unwrap());
    drop(conn);
    assert!(store::fail_job(&store, &claimed[1], "boom", now)
        .await
        .unwrap());
    let next = store::claim_jobs(&store, now, now, Duration::seconds(60), 10)
        .await
        .unwrap();
    let kinds: Vec<_> = next.iter().map(|j| j.kind.as_str()).collect();
    assert_eq!(kinds, ["child"]);
    let mut conn = store.acquire().await.unwrap();
    let jobs = store::list_jobs(&mut conn).await.unwrap();
    let child2 = jobs.iter().find(|j| j.kind == "child2").unwrap();
    assert_eq!(child2.state, "failed");
    assert!(child2.last_error.as_deref().unwrap().contains("failed"));
}

async fn dedup_keys_allow_one_job(backend: Backend) {
    let (store, _db) = store(backend).await;
    let now = Utc::now();
    let mut conn = store.acquire().await.unwrap();
    let a = store::enqueue(&mut conn, &job("step", None, Some("escalation:1:0")), now)
        .await
        .unwrap();
    let b = store::enqueue(&mut conn, &job("step", None, Some("escalation:1:0")), now)
        .await
        .unwrap();
    assert!(a.is_some());
    assert_eq!(b, None);
    assert_eq!(store::list_jobs(&mut conn).await.unwrap().len(), 1);
}

/// A process died while `kickoff:1` was running and an update of it was pending (and, after
/// an expired lease, two attempts of the key were running): start-up must still succeed.
async fn start_up_requeue_cancels_a_running_job_superseded_by_a_pending_one(backend: Backend) {
    let (store, _db) = store(backend).await;
    let now = Utc::now();
    let mut conn = store.acquire().await.unwrap();
    store::enqueue(&mut conn, &coalescing("update_kickoff", "kickoff:1"), now)
        .await
        .unwrap()
        .expect("enqueued");
    drop(conn);
    let running = store::claim_jobs(&store, now, now, Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(running.len(), 1);
    let mut conn = store.acquire().await.unwrap();
    let pending = store::enqueue(&mut conn, &coalescing("update_kickoff", "kickoff:1"), now)
        .await
        .unwrap()
        .expect("a pending job beside the running one");
    // Another key with two running attempts and nothing pending: one is requeued.
    store::enqueue(&mut conn, &coalescing("update_kickoff", "kickoff:2"), now)
        .await
        .unwrap();
    drop(conn);
    let two = store::claim_jobs(&store, now, now, Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(
        two.len(),
        1,
        "kickoff:1's pending job waits for the running one"
    );
    let mut conn = store.acquire().await.unwrap();
    store::enqueue(&mut conn, &coalescing("update_kickoff", "kickoff:2"), now)
        .await
        .unwrap()
        .expect("second kickoff:2 job");
    sqlx::query("UPDATE jobs SET state = 'running' WHERE coalesce_key = 'kickoff:2'")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);

    let requeued = store::requeue_orphaned_jobs(&store, now)
        .await
        .expect("start-up never fails on a coalesce key");
    assert_eq!(requeued, 1);
    let mut conn = store.acquire().await.unwrap();
    let jobs = store::list_jobs(&mut conn).await.unwrap();
    let states: Vec<_> = jobs.iter().map(|j| (j.id, j.state.as_str())).collect();
    assert_eq!(
        states,
        [
            (running[0].id, "cancelled"),
            (pending, "pending"),
            (two[0].id, "cancelled"),
            (jobs[3].id, "pending"),
        ]
    );
    assert!(jobs[0]
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("superseded"));
}

/// Two attempts of one coalesce key ran at once (an expired lease was re-claimed); when both
/// are retried, the second finds the first pending and is cancelled, never a UNIQUE error.
async fn a_retry_superseded_by_a_pending_job_is_cancelled_not_a_constraint_error(backend: Backend) {
    let (store, _db) = store(backend).await;
    let now = Utc::now();
    let mut conn = store.acquire().await.unwrap();
    store::enqueue(&mut conn, &coalescing("health_poll", "health:api"), now)
        .await
        .unwrap();
    drop(conn);
    let first = store::claim_jobs(&store, now, now, Duration::seconds(60), 10)
        .await
        .unwrap();
    let mut conn = store.acquire().await.unwrap();
    store::enqueue(&mut conn, &coalescing("health_poll", "health:api"), now)
        .await
        .unwrap();
    sqlx::query("UPDATE jobs SET lease_until = 0 WHERE state = 'running'")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let second = store::claim_jobs(&store, now, now, Duration::seconds(60), 10)
        .await
        .unwrap();
    // The expired attempt is superseded by the pending job: cancelled, not re-claimed.
    assert_eq!(second.len(), 1);
    assert_ne!(second[0].id, first[0].id);
    let mut conn = store.acquire().await.unwrap();
    let jobs = store::list_jobs(&mut conn).await.unwrap();
    assert_eq!(jobs[0].state, "cancelled");
    drop(conn);
    // Both attempts now retry; a new job is pending meanwhile for the second.
    let mut conn = store.acquire().await.unwrap();
    sqlx::query("UPDATE jobs SET state = 'running', lease_until = 0 WHERE id = $1")
        .bind(first[0].id)
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let later = now + Duration::seconds(5);
    assert!(store::retry_job(&store, &second[0], later, "timeout", now)
        .await
        .expect("first retry"));
    assert!(store::retry_job(&store, &first[0], later, "timeout", now)
        .await
        .expect("a superseded retry is no error"));
    let mut conn = store.acquire().await.unwrap();
    let jobs = store::list_jobs(&mut conn).await.unwrap();
    let states: Vec<_> = jobs.iter().map(|j| j.state.as_str()).collect();
    assert_eq!(states, ["cancelled", "pending"]);
}

/// The start-up of a SQLite server after a crash that left `kickoff:1` running beside a pending
/// update of it (App::build runs the requeue): it starts, and the pending update survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarts_after_a_crash_left_a_superseded_running_job() {
    let app = spawn_app_with(Spawn {
        workers: 0,
        ..Spawn::new(Backend::Sqlite)
    })
    .await;
    let now = app.clock.now();
    let mut conn = app.ctx.store.acquire().await.unwrap();
    store::enqueue(&mut conn, &coalescing("health_poll", "health:api"), now)
        .await
        .unwrap();
    sqlx::query("UPDATE jobs SET state = 'running', attempts = 1, lease_until = $1")
        .bind(now.timestamp_millis() + 60_000)
        .execute(&mut *conn)
        .await
        .unwrap();
    store::enqueue(&mut conn, &coalescing("health_poll", "health:api"), now)
        .await
        .unwrap()
        .expect("pending beside running");
    drop(conn);
    let app = app.restart(0).await;
    let jobs = app.jobs().await;
    let states: Vec<_> = jobs.iter().map(|j| j.state.as_str()).collect();
    assert_eq!(states, ["cancelled", "pending"]);
}
