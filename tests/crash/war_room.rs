//! Kills between a Slack call that took effect and the commit that records it: the war room
//! and the kickoff still exist exactly once after the restart.

use serde_json::Value;

use crate::harness::*;
use crate::helpers::*;
use warroom::testkit::slack_emulator::StallPoint;

crate::on_both_backends!(
    a_kill_after_the_war_room_was_created_keeps_one_war_room,
    a_kill_after_the_kickoff_was_posted_keeps_one_kickoff,
);

/// Defect 2: the retry got `name_taken` for the bot's own channel and opened `<name>-2`.
async fn a_kill_after_the_war_room_was_created_keeps_one_war_room(backend: Backend) {
    let mut app = Crashable::start(backend, BASE_CONFIG).await;
    app.slack
        .stall_next_where("conversations.create", StallPoint::BeforeAnswering, |p| {
            p.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.starts_with("inc-1-"))
        });
    app.open("P0", "database on fire").await;
    app.stalled("conversations.create").await;
    let created = rooms_created_for(&app.slack, 1);
    assert_eq!(created.len(), 1, "Slack created the channel");
    let room = created[0].clone();
    assert!(
        app.incident(1).await.is_some_and(|i| i.war_room.is_none()),
        "warroom has not recorded it yet"
    );

    app.kill().await;
    app.slack.release_stalled();
    app.restart_ok().await;

    let incident = app.opened(1).await;
    app.settled().await;
    assert_eq!(
        rooms_created_for(&app.slack, 1),
        vec![room.clone()],
        "one war room for INC-1; Slack saw:\n{}",
        describe(&app.slack.api_calls("conversations.create"))
    );
    assert_eq!(
        incident.war_room.as_ref().map(|r| r.id.as_str()),
        Some(room.as_str()),
        "INC-1 adopted the channel Slack created before the kill"
    );
    let invited = invited_to(&app.slack, &room);
    for user in [ALICE, PRIMARY] {
        assert!(
            invited.iter().any(|u| u == user),
            "{user} invited to {room}: {invited:?}"
        );
    }
    assert_eq!(kickoffs_in(&app.slack, &room).len(), 1, "one kickoff");
    let stray: Vec<_> = app
        .slack
        .ok_calls("chat.postMessage")
        .into_iter()
        .filter(|c| is_created_channel(c.param("channel")) && c.param_str("channel") != Some(&room))
        .collect();
    assert!(stray.is_empty(), "posts elsewhere: {}", describe(&stray));
}

/// Defect 3: the kickoff, posted but not recorded when the process died, was posted again.
async fn a_kill_after_the_kickoff_was_posted_keeps_one_kickoff(backend: Backend) {
    let mut app = Crashable::start(backend, BASE_CONFIG).await;
    app.slack
        .stall_next_where("chat.postMessage", StallPoint::BeforeAnswering, |p| {
            is_created_channel(p.get("channel")) && is_kickoff(&Value::Object(p.clone()))
        });
    app.open("P0", "queue backlog").await;
    app.stalled("chat.postMessage").await;
    let incident = app.incident(1).await.expect("INC-1 stored");
    let room = incident
        .war_room
        .expect("war room recorded before the kickoff")
        .id;
    assert_eq!(
        kickoffs_in(&app.slack, &room).len(),
        1,
        "Slack has the kickoff"
    );
    assert!(
        incident.kickoff_ref.is_none(),
        "warroom has not recorded it"
    );

    app.kill().await;
    app.slack.release_stalled();
    app.restart_ok().await;

    let incident = app.opened(1).await;
    app.settled().await;
    let kickoffs = kickoffs_in(&app.slack, &room);
    assert_eq!(
        kickoffs.len(),
        1,
        "one kickoff in the war room: {}",
        describe(&kickoffs)
    );
    let ts = kickoffs[0].response["ts"].as_str().unwrap_or("no ts");
    assert!(
        incident
            .kickoff_ref
            .as_deref()
            .is_some_and(|r| r.contains(ts)),
        "the stored kickoff {:?} is the one in the room, {ts} (later updates edit it)",
        incident.kickoff_ref
    );
    assert_eq!(rooms_created_for(&app.slack, 1), vec![room]);
}
