//! Essential effects (war room, invites, kickoff, pages) never give up while the incident is
//! open, say so loudly once they have failed for 15 minutes, and later effects wait for the
//! war room instead of failing.

use std::time::Duration;

use warroom::core::Effect;
use warroom::jobs::{self, MAX_ATTEMPTS};

use crate::helpers::{spawn_app, Backend, ALICE, ANNOUNCE};

crate::on_both_backends!(a_failing_war_room_is_retried_past_the_cap_and_reported_once);

async fn a_failing_war_room_is_retried_past_the_cap_and_reported_once(backend: Backend) {
    let app = spawn_app(backend).await;
    app.slack.fail_until_cleared("conversations.create");
    let start = app.clock.now();
    let answer = app.command("open P0 Checkout is down").await;
    assert_eq!(answer.status, 200, "{answer:?}");

    // An effect enqueued later, while the war room does not exist yet, waits for it.
    let mut conn = app.ctx.store.acquire().await.unwrap();
    jobs::enqueue_effects(
        &mut conn,
        1,
        &[Effect::PostToWarRoom {
            text: "Rolled back the deploy".into(),
        }],
        app.clock.now(),
    )
    .await
    .unwrap();
    drop(conn);
    let listed = app.jobs().await;
    let create = listed
        .iter()
        .find(|j| j.kind == "create_war_room")
        .expect("create job");
    let later = listed
        .iter()
        .find(|j| j.kind == "post_to_war_room")
        .expect("later job");
    assert_eq!(later.blocked_by, Some(create.id));

    let is_alarm =
        |text: &str| text.contains("INC-1") && text.contains("failed to create the war room");
    app.advance_until("the stuck alarm", Duration::from_secs(60), |s| {
        s.posts_to(ANNOUNCE)
            .into_iter()
            .find(|c| is_alarm(c.params["text"].as_str().unwrap_or_default()))
    })
    .await;
    assert!(
        app.clock.now() - start >= chrono::Duration::minutes(15),
        "reported after {:?}",
        app.clock.now() - start
    );
    app.eventually("the declarer's DM", |s| {
        s.dm_channels(ALICE).into_iter().find(|dm| {
            s.posts_to(dm)
                .iter()
                .any(|c| is_alarm(c.params["text"].as_str().unwrap_or_default()))
        })
    })
    .await;
    let metrics = app.get("/metrics").await;
    assert!(
        metrics
            .body
            .contains("warroom_jobs_stuck_total{kind=\"create_war_room\"}"),
        "{}",
        metrics.body
    );

    // Far past MAX_ATTEMPTS it still tries, and said so only once.
    let cap = MAX_ATTEMPTS as usize;
    app.advance_until("attempts past the cap", Duration::from_secs(60), |s| {
        let tries = s
            .calls()
            .iter()
            .filter(|c| c.method == "conversations.create")
            .count();
        (tries > cap + 3).then_some(())
    })
    .await;
    let listed = app.jobs().await;
    let create = listed.iter().find(|j| j.kind == "create_war_room").unwrap();
    assert!(
        create.state == "pending" || create.state == "running",
        "{create:?}"
    );
    let alarms = app
        .slack
        .posts_to(ANNOUNCE)
        .into_iter()
        .filter(|c| is_alarm(c.params["text"].as_str().unwrap_or_default()))
        .count();
    assert_eq!(alarms, 1);

    // Slack recovers: the war room opens and the waiting effect lands in it.
    app.slack.clear_faults();
    let room = app
        .advance_until("the war room", Duration::from_secs(30), |s| {
            s.ok_calls("conversations.create")
                .first()
                .and_then(|c| c.response["channel"]["id"].as_str().map(String::from))
        })
        .await;
    app.advance_until("the later post", Duration::from_secs(1), |s| {
        s.posts_to(&room)
            .into_iter()
            .find(|c| c.params.to_string().contains("Rolled back the deploy"))
    })
    .await;
}
