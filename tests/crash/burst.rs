//! A kill in the middle of a burst of declarations: every declaration answered 200 survives
//! with exactly one war room and one kickoff.

use std::time::Duration;

use crate::harness::*;
use crate::helpers::*;
use warroom::testkit::slack_emulator::StallPoint;

crate::on_both_backends!(a_kill_during_a_burst_of_declarations_loses_and_doubles_nothing,);

/// Declarations in the burst.
const BURST: usize = 8;

async fn a_kill_during_a_burst_of_declarations_loses_and_doubles_nothing(backend: Backend) {
    let mut app = Crashable::start(backend, BASE_CONFIG).await;
    // Slow Slack calls keep war rooms and kickoffs in flight when the kill lands, and one war
    // room is created on Slack's side but not yet known to warroom.
    app.slack.set_latency(Duration::from_millis(40));
    app.slack
        .stall_next("conversations.create", StallPoint::BeforeAnswering);
    let sends: Vec<_> = (0..BURST)
        .map(|i| {
            let slash = app.slash();
            tokio::spawn(async move {
                let title = format!("burst {i}");
                let answer = slash
                    .command_as(&format!("open P2 {title}"), GENERAL, ALICE)
                    .await;
                (title, answer)
            })
        })
        .collect();
    // The kill lands once half the burst is declared, with the rest still arriving.
    poll_until("half the burst declared", PATIENCE, || async {
        (app.incidents().await.len() >= BURST / 2).then_some(())
    })
    .await;
    app.stalled("conversations.create").await;
    app.kill().await;
    app.slack.release_stalled();
    let mut answered = Vec::new();
    for send in sends {
        let (title, answer) = send.await.expect("request task");
        if answer.status == 200 {
            answered.push(title);
        }
    }
    assert!(answered.len() >= BURST / 2, "answered: {answered:?}");
    app.slack.set_latency(Duration::ZERO);

    app.restart_ok().await;
    let incidents = app.incidents().await;
    for title in &answered {
        let found: Vec<_> = incidents.iter().filter(|i| &i.title == title).collect();
        assert_eq!(found.len(), 1, "`{title}` answered 200 is stored once");
    }
    for incident in &incidents {
        let number = incident.number;
        let incident = app.opened(number).await;
        let room = incident.war_room.map(|r| r.id).unwrap_or_default();
        app.settled().await;
        assert_eq!(
            rooms_created_for(&app.slack, number),
            vec![room.clone()],
            "INC-{number} has one war room"
        );
        assert_eq!(
            kickoffs_in(&app.slack, &room).len(),
            1,
            "INC-{number} has one kickoff: {}",
            describe(&kickoffs_in(&app.slack, &room))
        );
    }
}
