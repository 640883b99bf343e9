//! Reads never block acknowledgements: with SQLite the web pages read through read-only
//! connections of their own, beside the single writer.

use std::time::Duration;

use crate::helpers::{spawn_app_with, Backend, Spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reads_and_writes_do_not_wait_for_each_other() {
    let app = spawn_app_with(Spawn {
        workers: 0,
        ..Spawn::new(Backend::Sqlite)
    })
    .await;
    let answer = app.command("open P1 Search is slow").await;
    assert_eq!(answer.status, 200, "{answer:?}");

    // A write in progress (the writer's one connection is taken): pages still answer.
    let mut tx = app.ctx.store.begin().await.unwrap();
    sqlx::query("UPDATE incidents SET title = 'in flight' WHERE number = 1")
        .execute(&mut *tx)
        .await
        .unwrap();
    for path in ["/incidents", "/incidents/1"] {
        let page = tokio::time::timeout(Duration::from_secs(5), app.get(path))
            .await
            .unwrap_or_else(|_| panic!("{path} waited for the writer"));
        assert_eq!(page.status, 200, "{path}: {page:?}");
        assert!(
            page.body.contains("Search is slow"),
            "{path}: uncommitted data shown"
        );
    }
    tx.rollback().await.unwrap();

    // Every reader busy (slow pages): a Slack command is still acknowledged.
    let mut readers = Vec::new();
    for _ in 0..4 {
        readers.push(app.ctx.store.acquire_read().await.unwrap());
    }
    let answer = tokio::time::timeout(Duration::from_secs(5), app.command("open P2 Mail is late"))
        .await
        .expect("the command waited for the readers");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(app.incident_count().await, 2);

    // The readers cannot write.
    let written = sqlx::query("UPDATE incidents SET title = 'nope'")
        .execute(&mut *readers[0])
        .await;
    assert!(written.is_err(), "a read connection wrote");
}
