//! The durable queue on its own: claims are exclusive, leases expire, writes are fenced,
//! chained jobs wait for their parent and fail with it.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use warroom::jobs::{run_claimed_with, JobOutcome, ESSENTIAL, MAX_ATTEMPTS};
use warroom::store::{self, ClaimedJob, NewJob, Store};

use crate::helpers::{spawn_app_with, Backend, Spawn, TestApp, TestDb, PATIENCE};

crate::on_both_backends!(
    concurrent_claims_never_share_a_job,
    an_expired_lease_is_reclaimed_and_the_old_worker_is_fenced_out,
    chained_jobs_wait_for_their_parent_and_fail_with_it,
    dedup_keys_allow_one_job,
    start_up_requeue_cancels_a_running_job_superseded_by_a_pending_one,
    a_retry_superseded_by_a_pending_job_is_cancelled_not_a_constraint_error,
    a_running_job_extends_its_lease_so_no_one_else_claims_it,
    a_panic_inside_a_job_is_recorded_as_its_failure,
    a_job_that_never_finishes_is_failed_at_claim_after_its_attempts,
);

async fn store(backend: Backend) -> (Store, TestDb) {
    let db = TestDb::new(backend).await;
    let store = Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    (store, db)
}

const CAP: store::AttemptCap<'static> = store::AttemptCap {
    max_attempts: MAX_ATTEMPTS,
    essential: ESSENTIAL,
};

async fn claim_n(store: &Store, due_by: DateTime<Utc>, lease: Duration, n: i64) -> Vec<ClaimedJob> {
    store::claim_jobs(store, due_by, lease, n, CAP)
        .await
        .expect("claim")
        .0
}

async fn claim(store: &Store, due_by: DateTime<Utc>, lease: Duration) -> Vec<ClaimedJob> {
    claim_n(store, due_by, lease, 10).await
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
                let claimed = claim_n(&store, Utc::now(), Duration::seconds(60), 7).await;
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
    let first = claim(&store, now, Duration::milliseconds(300)).await;
    assert_eq!(first.len(), 1);
    // Leases follow the database's clock: moving the application's clock steals nothing.
    assert!(
        claim(&store, now + Duration::hours(1), Duration::seconds(60))
            .await
            .is_empty()
    );
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut poll = tokio::time::interval(std::time::Duration::from_millis(20));
    let second = loop {
        poll.tick().await;
        let got = claim(&store, now, Duration::seconds(60)).await;
        if !got.is_empty() {
            break got;
        }
        assert!(std::time::Instant::now() < deadline, "lease never expired");
    };
    assert_eq!(second[0].attempts, 2);
    let later = now + Duration::seconds(1);
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

    let claimed = claim(&store, now, Duration::seconds(60)).await;
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
    let next = claim(&store, now, Duration::seconds(60)).await;
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
    let running = claim(&store, now, Duration::seconds(60)).await;
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
    let two = claim(&store, now, Duration::seconds(60)).await;
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
    let first = claim(&store, now, Duration::seconds(60)).await;
    let mut conn = store.acquire().await.unwrap();
    store::enqueue(&mut conn, &coalescing("health_poll", "health:api"), now)
        .await
        .unwrap();
    sqlx::query("UPDATE jobs SET lease_until = 0 WHERE state = 'running'")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let second = claim(&store, now, Duration::seconds(60)).await;
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

/// On PostgreSQL a worker may claim between a command's enqueue and its commit. A kickoff
/// update absorbed by a pending one must not be claimed (and render the old checklist) until
/// the command that absorbed it commits. (SQLite's one writer serialises the two already.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(warroom_pg),
    ignore = "PostgreSQL only: set WARROOM_TEST_POSTGRES_URL at build time to run it"
)]
async fn an_absorbed_update_is_not_claimed_before_its_command_commits() {
    let (store, _db) = store(Backend::Postgres).await;
    let now = Utc::now();
    let update = coalescing("update_kickoff", "kickoff:1");
    let mut conn = store.acquire().await.unwrap();
    let pending = store::enqueue(&mut conn, &update, now).await.unwrap();
    assert!(pending.is_some());
    drop(conn);

    let mut command = store.begin().await.unwrap();
    let absorbed = store::enqueue(&mut command, &update, now).await.unwrap();
    assert_eq!(absorbed, None, "one pending update per kickoff");
    assert!(
        claim(&store, now, Duration::seconds(30)).await.is_empty(),
        "claimed while the command that it stands for is not committed"
    );
    command.commit().await.unwrap();
    let claimed = claim(&store, now, Duration::seconds(30)).await;
    assert_eq!(
        claimed.iter().map(|j| j.id).collect::<Vec<_>>(),
        [pending.unwrap()]
    );
}

async fn queue_app(backend: Backend) -> TestApp {
    spawn_app_with(Spawn {
        workers: 0,
        ..Spawn::new(backend)
    })
    .await
}

/// A slow job (a sick health endpoint) runs far longer than its lease: the heartbeat keeps the
/// lease, so no other worker claims it meanwhile.
async fn a_running_job_extends_its_lease_so_no_one_else_claims_it(backend: Backend) {
    let app = queue_app(backend).await;
    let store = app.ctx.store.clone();
    let now = app.clock.now();
    let mut conn = store.acquire().await.unwrap();
    store::enqueue(&mut conn, &job("slow", None, None), now)
        .await
        .unwrap();
    drop(conn);
    let lease = std::time::Duration::from_millis(300);
    let claimed = claim(&store, now, Duration::milliseconds(300)).await;
    assert_eq!(claimed.len(), 1);
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let released = release.clone();
    let queue = app.queue.clone();
    let job = claimed[0].clone();
    let running = tokio::spawn(async move {
        run_claimed_with(&queue, job, lease, move |_, _| async move {
            released.notified().await;
            Ok(JobOutcome::none())
        })
        .await
    });
    // Four leases long, nobody else may take it.
    let until = std::time::Instant::now() + lease * 4;
    let mut poll = tokio::time::interval(std::time::Duration::from_millis(25));
    while std::time::Instant::now() < until {
        poll.tick().await;
        let stolen = claim(&store, now, Duration::seconds(60)).await;
        assert!(
            stolen.is_empty(),
            "a running job was claimed again: {stolen:?}"
        );
    }
    release.notify_one();
    running.await.unwrap();
    let jobs = app.jobs().await;
    assert_eq!((jobs[0].state.as_str(), jobs[0].attempts), ("done", 1));
}

/// A job that panics is not lost: the attempt is recorded as failed and retried.
async fn a_panic_inside_a_job_is_recorded_as_its_failure(backend: Backend) {
    let app = queue_app(backend).await;
    let now = app.clock.now();
    let mut conn = app.ctx.store.acquire().await.unwrap();
    store::enqueue(&mut conn, &job("boom", None, None), now)
        .await
        .unwrap();
    drop(conn);
    let claimed = claim(&app.ctx.store, now, Duration::seconds(60)).await;
    assert_eq!(claimed.len(), 1);
    run_claimed_with(
        &app.queue,
        claimed[0].clone(),
        std::time::Duration::from_secs(30),
        |_, _| async move {
            if claimed.len() == 1 {
                panic!("index out of range in the renderer");
            }
            Ok(JobOutcome::none())
        },
    )
    .await;
    let jobs = app.jobs().await;
    assert_eq!(jobs[0].state, "pending", "{jobs:?}");
    assert_eq!(jobs[0].attempts, 1);
    let error = jobs[0].last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains("panicked") && error.contains("index out of range"),
        "{error}"
    );
}

/// A job whose attempts all died with their worker (a kill, an abort) is failed when it would
/// be claimed once more, with the jobs waiting for it; an essential job of an open incident
/// (the war room) is not, until the incident is resolved.
async fn a_job_that_never_finishes_is_failed_at_claim_after_its_attempts(backend: Backend) {
    let app = queue_app(backend).await;
    let answer = app.command("open P0 Checkout is down").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let now = app.clock.now();
    let mut conn = app.ctx.store.acquire().await.unwrap();
    let crasher = store::enqueue(
        &mut conn,
        &NewJob {
            incident: Some(1),
            ..job("crasher", None, None)
        },
        now,
    )
    .await
    .unwrap();
    store::enqueue(&mut conn, &job("after_crasher", crasher, None), now)
        .await
        .unwrap();
    // Every job so far has used its attempts and its last attempt's worker died.
    sqlx::query("UPDATE jobs SET state = 'running', attempts = $1, lease_until = 0 WHERE blocked_by IS NULL")
        .bind(MAX_ATTEMPTS)
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    app.queue.run_once().await.unwrap();
    let jobs = app.jobs().await;
    let state = |kind: &str| {
        jobs.iter()
            .find(|j| j.kind == kind)
            .map(|j| j.state.clone())
            .unwrap_or_default()
    };
    assert_eq!(state("crasher"), "failed");
    assert_eq!(state("after_crasher"), "failed");
    assert_eq!(state("create_war_room"), "done", "essential: tried again");
    assert!(app
        .timeline(1)
        .await
        .iter()
        .any(|e| e.text().contains("gave up on `crasher`")));

    // Resolved: a page is no longer worth a crash loop.
    let mut conn = app.ctx.store.acquire().await.unwrap();
    store::enqueue(
        &mut conn,
        &NewJob {
            incident: Some(1),
            ..job("page", None, None)
        },
        now,
    )
    .await
    .unwrap();
    sqlx::query(
        "UPDATE jobs SET state = 'running', attempts = $1, lease_until = 0 WHERE kind = 'page'",
    )
    .bind(MAX_ATTEMPTS)
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query("UPDATE incidents SET status = 'resolved'")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let (claimed, exhausted) =
        store::claim_jobs(&app.ctx.store, now, Duration::seconds(60), 50, CAP)
            .await
            .unwrap();
    assert!(claimed.iter().all(|j| j.kind != "page"), "{claimed:?}");
    assert!(exhausted.iter().any(|j| j.kind == "page"), "{exhausted:?}");
}
