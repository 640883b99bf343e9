//! The durable queue on its own: claims are exclusive, leases expire, writes are fenced,
//! chained jobs wait for their parent and fail with it.

use std::collections::HashSet;

use chrono::{Duration, Utc};
use warroom::store::{self, NewJob, Store};

use crate::helpers::{Backend, TestDb};

crate::on_both_backends!(
    concurrent_claims_never_share_a_job,
    an_expired_lease_is_reclaimed_and_the_old_worker_is_fenced_out,
    chained_jobs_wait_for_their_parent_and_fail_with_it,
    dedup_keys_allow_one_job,
);

async fn store(backend: Backend) -> (Store, TestDb) {
    let db = TestDb::new(backend).await;
    let store = Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    (store, db)
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
