//! A kill while a coalescing job runs and another with its key waits: the next start succeeds
//! and the waiting work is done.

use serde_json::json;

use crate::harness::*;
use crate::helpers::*;
use warroom::testkit::slack_emulator::StallPoint;

crate::on_both_backends!(
    a_kill_during_a_slow_health_poll_with_another_pending_restarts,
    a_kill_during_a_kickoff_update_with_another_pending_restarts,
);

/// A service whose health endpoint is slow: a poll may be in flight for seconds.
const HEALTH_CONFIG: &str = r#"
[slack]
announce_channel = "C0ANNOUNCE"

[severity.P1]
escalation = []

[health.shop]
url = "{emulator}/health/shop"
interval = "1s"
timeout = "20s"
"#;

fn polls_of(jobs: &[warroom::store::JobRecord], state: &str) -> usize {
    jobs.iter()
        .filter(|j| j.kind == warroom::health::POLL_JOB && j.state == state)
        .count()
}

/// Defect 1: on SQLite the start-up requeue of the running poll collided with the pending one
/// (`UNIQUE constraint failed: jobs.coalesce_key`) and every later start failed.
async fn a_kill_during_a_slow_health_poll_with_another_pending_restarts(backend: Backend) {
    let mut app = Crashable::start(backend, HEALTH_CONFIG).await;
    app.slack
        .set_health("shop", 200, json!({ "version": "v1", "status": "ok" }));
    app.slack
        .stall_next("health/shop", StallPoint::BeforeActing);

    app.open("P1", "checkout down").await;
    app.stalled("health/shop").await;
    // A second incident asks for a poll while the first is still running: it waits, pending.
    app.open("P1", "payments down").await;
    app.jobs_until("a poll running and another pending", |jobs| {
        polls_of(jobs, "running") == 1 && polls_of(jobs, "pending") == 1
    })
    .await;
    app.opened(2).await;
    let polls_before = app.slack.health_polls("shop");

    app.kill().await;
    app.slack.release_stalled();
    app.restart_ok().await;

    // The waiting poll runs, and polling goes on.
    let more = app
        .slack
        .wait_for(PATIENCE, |s| {
            (s.health_polls("shop") > polls_before + 1).then_some(())
        })
        .await;
    assert!(
        more.is_some(),
        "no health poll after the restart; log:\n{}",
        app.log(2)
    );
    app.jobs_until("no poll left running from before the kill", |jobs| {
        polls_of(jobs, "pending") + polls_of(jobs, "running") <= 1
            && jobs.iter().all(|j| j.state != "failed")
    })
    .await;
    // Nothing else was lost: both incidents are intact with one war room and one kickoff each.
    for number in [1, 2] {
        let incident = app.opened(number).await;
        let room = incident.war_room.map(|r| r.id).unwrap_or_default();
        assert_eq!(rooms_created_for(&app.slack, number), vec![room.clone()]);
        assert_eq!(kickoffs_in(&app.slack, &room).len(), 1, "INC-{number}");
    }
}

fn updates_of(jobs: &[warroom::store::JobRecord], state: &str) -> usize {
    jobs.iter()
        .filter(|j| j.kind == "update_kickoff" && j.state == state)
        .count()
}

/// Defect 1 through the kickoff: an update in flight, the next one waiting behind it.
async fn a_kill_during_a_kickoff_update_with_another_pending_restarts(backend: Backend) {
    let mut app = Crashable::start(backend, BASE_CONFIG).await;
    app.open("P0", "search down").await;
    let incident = app.opened(1).await;
    let room = incident.war_room.map(|r| r.id).unwrap_or_default();
    let kickoff_ts = incident.kickoff_ref.unwrap_or_default();
    let in_room = room.clone();
    app.slack
        .stall_next_where("chat.update", StallPoint::BeforeActing, move |p| {
            p.get("channel").and_then(serde_json::Value::as_str) == Some(in_room.as_str())
        });

    let assigned = app
        .command_as("assign commander <@U0BOB|bob>", &room, ALICE)
        .await;
    assert_eq!(assigned.status, 200, "{assigned:?}");
    app.stalled("chat.update").await;
    let identified = app.command_as("state identified", &room, ALICE).await;
    assert_eq!(identified.status, 200, "{identified:?}");
    app.jobs_until("an update running and another pending", |jobs| {
        updates_of(jobs, "running") == 1 && updates_of(jobs, "pending") == 1
    })
    .await;

    app.kill().await;
    app.slack.release_stalled();
    app.restart_ok().await;

    // The waiting update is carried out: the kickoff shows the latest state.
    app.slack
        .wait_for(PATIENCE, |s| {
            let shown = s.message(&room, &kickoff_ts)?.to_string();
            (shown.contains("U0BOB") && shown.to_lowercase().contains("identified")).then_some(())
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "the kickoff never showed the last change: {:?}",
                app.slack.message(&room, &kickoff_ts)
            )
        });
    app.settled().await;
    assert!(app.jobs().await.iter().all(|j| j.state != "failed"));
    assert_eq!(kickoffs_in(&app.slack, &room).len(), 1);
}
