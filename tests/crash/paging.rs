//! Kills around escalation: a page in flight, a step due while the process is down, an
//! acknowledgement just answered. Each page reaches its contact once; no acknowledgement is lost.

use chrono::Utc;

use crate::harness::*;
use crate::helpers::*;
use serde_json::Value;
use warroom::testkit::slack_emulator::StallPoint;

crate::on_both_backends!(
    a_page_in_flight_at_the_kill_reaches_its_contact_once,
    a_step_due_while_down_pages_once_after_the_restart,
    an_acknowledgement_answered_before_the_kill_holds,
    a_slack_dm_page_in_flight_at_the_kill_reaches_its_contact_once,
);

/// Two steps: the primary at once, the senior a few seconds later; both by signed webhook
/// (each delivery carries a `delivery_id` a receiver uses to drop duplicates).
const PAGING_CONFIG: &str = r#"
[slack]
announce_channel = "C0ANNOUNCE"

[severity.P0]
escalation = [
  { after = "0s", page = ["primary"] },
  { after = "3s", page = ["senior"] },
]

[contacts.primary]
slack_user = "U0PRIMARY"
webhook_url = "{emulator}/hook/primary"
webhook_secret = "primary-secret"

[contacts.senior]
slack_user = "U0SENIOR"
webhook_url = "{emulator}/hook/senior"
webhook_secret = "senior-secret"
"#;

const STEP_JOB: &str = "escalation_step";

/// When the second escalation step of the only incident is due.
async fn second_step_due(app: &Crashable) -> chrono::DateTime<Utc> {
    let jobs = app
        .jobs_until("the second escalation step", |jobs| {
            jobs.iter().filter(|j| j.kind == STEP_JOB).count() >= 2
        })
        .await;
    jobs.iter()
        .filter(|j| j.kind == STEP_JOB)
        .map(|j| j.run_at)
        .max()
        .unwrap_or_else(Utc::now)
}

/// Waits until there are page jobs and none is waiting or running.
async fn pages_finished(app: &Crashable) {
    app.jobs_until("the pages to be finished", |jobs| {
        let pages: Vec<_> = jobs.iter().filter(|j| j.kind == "page").collect();
        !pages.is_empty()
            && pages
                .iter()
                .all(|j| j.state != "pending" && j.state != "running")
    })
    .await;
}

/// Waits until every escalation step has had its time and none is waiting or running.
async fn steps_over(app: &Crashable) {
    app.jobs_until("the escalation steps to be over", |jobs| {
        let now = Utc::now();
        jobs.iter()
            .filter(|j| j.kind == STEP_JOB)
            .all(|j| j.run_at <= now && j.state != "pending" && j.state != "running")
    })
    .await;
}

/// The webhook reached the receiver, but the process died before recording it: the retry
/// carries the same delivery id, so the receiver drops it and the contact is paged once.
async fn a_page_in_flight_at_the_kill_reaches_its_contact_once(backend: Backend) {
    let mut app = Crashable::start(backend, PAGING_CONFIG).await;
    app.slack
        .stall_next("hook/primary", StallPoint::BeforeAnswering);
    app.open("P0", "api down").await;
    app.stalled("hook/primary").await;

    app.kill().await;
    app.slack.release_stalled();
    app.restart_ok().await;

    pages_finished(&app).await;
    assert_eq!(
        deliveries(&app.slack, "primary", "page").len(),
        1,
        "the primary is paged once (a receiver drops a repeated delivery id): {}",
        describe(&app.slack.hooks("primary"))
    );
    let failed: Vec<_> = app
        .jobs()
        .await
        .into_iter()
        .filter(|j| j.state == "failed")
        .collect();
    assert!(failed.is_empty(), "gave up: {failed:#?}");
}

/// The page DM reached Slack, but the process died before recording it: the retry finds it in
/// the DM's history by its metadata and does not post it again.
async fn a_slack_dm_page_in_flight_at_the_kill_reaches_its_contact_once(backend: Backend) {
    let mut app = Crashable::start(backend, PAGING_CONFIG).await;
    let primary_dm = format!("D{PRIMARY}");
    let stalled_dm = primary_dm.clone();
    app.slack
        .stall_next_where("chat.postMessage", StallPoint::BeforeAnswering, move |p| {
            p.get("channel").and_then(Value::as_str) == Some(stalled_dm.as_str())
        });
    app.open("P0", "api down").await;
    app.stalled("chat.postMessage").await;
    assert_eq!(
        app.slack.messages_in(&primary_dm).len(),
        1,
        "Slack has the page"
    );

    app.kill().await;
    app.slack.release_stalled();
    app.restart_ok().await;

    pages_finished(&app).await;
    let pages = app.slack.messages_in(&primary_dm);
    assert_eq!(
        pages.len(),
        1,
        "the primary is paged once by DM: {pages:#?}"
    );
    assert!(
        app.slack
            .api_calls("conversations.history")
            .iter()
            .any(|c| c.param_str("channel") == Some(primary_dm.as_str())),
        "the retry looked in the DM"
    );
}

/// Spec §4: a step that is due while the bot is down fires when it comes back, once.
async fn a_step_due_while_down_pages_once_after_the_restart(backend: Backend) {
    let mut app = Crashable::start(backend, PAGING_CONFIG).await;
    app.open("P0", "login broken").await;
    app.saw("the primary's page", |c| {
        c.kind == warroom::testkit::slack_emulator::CallKind::Hook && c.method == "primary"
    })
    .await;
    let due = second_step_due(&app).await;
    app.settled().await;

    app.kill().await;
    // The process stays down until the second step is due.
    poll_until("the second step to fall due", PATIENCE, || async {
        (Utc::now() > due).then_some(())
    })
    .await;
    assert!(app.slack.hooks("senior").is_empty(), "not paged while down");
    app.restart_ok().await;

    app.saw("the senior's page", |c| {
        c.kind == warroom::testkit::slack_emulator::CallKind::Hook && c.method == "senior"
    })
    .await;
    steps_over(&app).await;
    app.settled().await;
    assert_eq!(
        app.slack.hooks("senior").len(),
        1,
        "the senior is paged once"
    );
    assert_eq!(
        app.slack.hooks("primary").len(),
        1,
        "the primary is not paged again"
    );
    assert_eq!(deliveries(&app.slack, "senior", "page").len(), 1);
}

/// `/incident ack` answered 200, then the kill: the acknowledgement is there after the
/// restart and the next step never pages.
async fn an_acknowledgement_answered_before_the_kill_holds(backend: Backend) {
    let mut app = Crashable::start(backend, PAGING_CONFIG).await;
    app.open("P0", "cache stampede").await;
    app.opened(1).await;
    app.saw("the primary's page", |c| {
        c.kind == warroom::testkit::slack_emulator::CallKind::Hook && c.method == "primary"
    })
    .await;
    let due = second_step_due(&app).await;
    let acked = app.command_as("ack 1", GENERAL, PRIMARY).await;
    assert_eq!(acked.status, 200, "{acked:?}");
    app.kill().await;

    app.restart_ok().await;
    let incident = app.incident(1).await.expect("INC-1");
    assert!(
        incident
            .acknowledged
            .as_ref()
            .is_some_and(|a| a.by == PRIMARY),
        "the acknowledgement survived the kill: {:?}",
        incident.acknowledged
    );
    poll_until("the second step's time", PATIENCE, || async {
        (Utc::now() > due).then_some(())
    })
    .await;
    steps_over(&app).await;
    app.settled().await;
    assert!(
        app.slack.hooks("senior").is_empty(),
        "no page after the acknowledgement: {}",
        describe(&app.slack.hooks("senior"))
    );
    assert_eq!(deliveries(&app.slack, "primary", "page").len(), 1);
}
