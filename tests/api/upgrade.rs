//! An upgrade never strands work: jobs a previous release left pending run on this one.

use warroom::store::{self, NewJob};

use crate::helpers::{spawn_app, Backend};

crate::on_both_backends!(a_job_pending_from_the_previous_release_still_runs);

/// The payload of a `post_to_war_room` job exactly as the release before versioned payloads
/// wrote it (no `v` field).
const PREVIOUS_RELEASE_PAYLOAD: &str = r#"{"incident":1,"effect":{"effect":"post_to_war_room","text":"Deployed v2.4.1 to production"}}"#;

async fn a_job_pending_from_the_previous_release_still_runs(backend: Backend) {
    let app = spawn_app(backend).await;
    let inc = app.open("P1", "checkout is down").await;
    let now = app.clock.now();
    let job = NewJob {
        kind: "post_to_war_room".into(),
        incident: Some(1),
        payload: PREVIOUS_RELEASE_PAYLOAD.into(),
        run_at: now,
        blocked_by: None,
        dedup_key: None,
        coalesce_key: None,
    };
    {
        let mut conn = app.ctx.store.acquire().await.unwrap();
        store::enqueue(&mut conn, &job, now).await.unwrap();
    }
    app.ctx.wake.notify_waiters();
    app.eventually("the old job's post", |s| {
        s.posts_to(&inc.room).into_iter().find(|c| {
            c.params
                .to_string()
                .contains("Deployed v2.4.1 to production")
        })
    })
    .await;
    let jobs = app.settled().await;
    let old: Vec<_> = jobs
        .iter()
        .filter(|j| j.kind == "post_to_war_room")
        .collect();
    assert_eq!(old.len(), 1, "{jobs:?}");
    assert_eq!(old[0].state, "done", "{old:?}");
}
