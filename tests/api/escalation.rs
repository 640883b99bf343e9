//! Escalation: pages on durable timers through every channel until someone acknowledges.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::helpers::*;
use warroom::core::TimelineKind;

crate::on_both_backends!(
    the_ladder_pages_every_channel_until_acknowledged,
    an_early_ack_pages_nobody_else,
    pagerduty_acknowledgement_stops_escalation,
    overdue_steps_fire_once_after_a_restart,
    failing_deliveries_are_retried_and_visible,
    raising_severity_replans_the_ladder,
    status_nudges_and_target_warnings,
    ack_racing_a_due_step_is_never_half_done,
    an_ack_while_a_page_is_being_sent_says_so,
    pagerduty_acknowledge_waits_for_a_trigger_in_flight,
    a_resolve_while_a_page_is_being_sent_says_so_once,
    pagerduty_acks_of_other_incidents_change_nothing,
    nobody_acknowledging_after_the_last_step_is_announced,
    a_step_that_can_page_nobody_is_announced,
    a_step_whose_every_page_fails_is_announced,
    a_page_dm_whose_answer_is_lost_reaches_the_contact_once,
);

pub const ESCALATION_CONFIG: &str = r#"
[slack]
announce_channel = "C0ANNOUNCE"

[reminders]
status_every = "10m"

[severity.P0]
escalation = [
  { after = "0s", page = ["primary"] },
  { after = "15m", page = ["senior"] },
  { after = "30m", page = ["manager"] },
  { after = "60m", page = ["commander"] },
]

[severity.P2]
escalation = [{ after = "0s", page = ["primary"] }]

[contacts.primary]
slack_user = "U0PRIMARY"
pagerduty_routing_key = "pd-routing-primary"

[contacts.senior]
slack_user = "U0SENIOR"
webhook_url = "{emulator}/hook/senior"
webhook_secret = "whsec-senior"

[contacts.manager]
email = "manager@acme.test"
phone = "+15550001111"

[contacts.commander]
slack_user = "U0COMMANDER"
"#;

async fn spawn(backend: Backend) -> TestApp {
    let mut spawn = Spawn::new(backend);
    spawn.config = ESCALATION_CONFIG.to_string();
    spawn_app_with(spawn).await
}

fn minutes(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

fn paged_texts(events: &[warroom::core::TimelineEvent]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind == TimelineKind::Paged)
        .map(|e| e.text())
        .collect()
}

/// Moves the clock to `m` minutes after the incident opened (the manual clock starts at open).
async fn at_minute(app: &TestApp, start: chrono::DateTime<chrono::Utc>, m: i64) {
    let target = start + chrono::Duration::minutes(m);
    let now = app.clock.now();
    if target > now {
        app.clock.advance((target - now).to_std().unwrap());
    }
    app.ctx.wake.notify_waiters();
    app.settled().await;
}

fn verify_signature(secret: &str, body: &[u8], header: &str) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    header == format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn the_ladder_pages_every_channel_until_acknowledged(backend: Backend) {
    let app = spawn(backend).await;
    let start = app.clock.now();
    let inc = app.open("P0", "payments down").await;
    app.settled().await;
    // Step 1, at once: primary by Slack DM and PagerDuty.
    assert_eq!(app.slack.dm_posts(PRIMARY).len(), 1);
    let pd = app.slack.hooks("pagerduty");
    assert_eq!(pd.len(), 1);
    assert_eq!(pd[0].params["event_action"], "trigger");
    assert_eq!(pd[0].params["routing_key"], "pd-routing-primary");
    assert_eq!(pd[0].params["dedup_key"], "warroom-INC-1");
    assert!(app.slack.dm_posts("U0SENIOR").is_empty());

    at_minute(&app, start, 14).await;
    assert!(app.slack.dm_posts("U0SENIOR").is_empty(), "not before 15m");
    at_minute(&app, start, 15).await;
    assert_eq!(app.slack.dm_posts("U0SENIOR").len(), 1);
    let hooks = app.slack.hooks("senior");
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    let raw_body = hook.params.clone();
    assert!(raw_body["delivery_id"].is_string(), "{raw_body}");
    assert!(raw_body["sent_at"].is_string(), "{raw_body}");
    assert_eq!(raw_body["event"], "page");
    let signature = hook
        .header("x-warroom-signature")
        .unwrap_or_default()
        .to_string();
    assert!(
        verify_signature("whsec-senior", &hook.body, &signature),
        "{signature}"
    );
    assert!(!verify_signature("another-secret", &hook.body, &signature));

    at_minute(&app, start, 30).await;
    let mails = app.smtp.messages();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].to, ["manager@acme.test"]);
    assert!(mails[0].data.contains("INC-1"), "{}", mails[0].data);
    let sms = app.slack.hooks("twilio");
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0].params["To"], "+15550001111");
    assert!(sms[0].params["Body"].as_str().unwrap().contains("INC-1"));

    let ack = app.in_room(&inc, "ack", "U0SENIOR").await;
    assert!(ack.text().contains("paging stopped"), "{ack:?}");
    app.settled().await;
    let pd = app.slack.hooks("pagerduty");
    assert_eq!(pd.len(), 2, "PagerDuty told about the acknowledgement");
    assert_eq!(pd[1].params["event_action"], "acknowledge");
    assert_eq!(pd[1].params["dedup_key"], "warroom-INC-1");

    at_minute(&app, start, 90).await;
    assert!(
        app.slack.dm_posts("U0COMMANDER").is_empty(),
        "no page after the ack"
    );
    let paged = paged_texts(&app.timeline(1).await);
    for expect in [
        "Paged primary by Slack DM",
        "Paged primary by PagerDuty",
        "Paged senior by webhook",
        "Paged manager by email to manager@acme.test",
        "Paged manager by SMS to +15550001111",
        "Escalation step 3: paging manager (email, sms)",
    ] {
        assert!(
            paged.iter().any(|t| t.contains(expect)),
            "{expect} in {paged:#?}"
        );
    }
    assert!(!paged.iter().any(|t| t.contains("commander")), "{paged:#?}");
}

async fn an_early_ack_pages_nobody_else(backend: Backend) {
    let app = spawn(backend).await;
    let start = app.clock.now();
    let inc = app.open("P0", "login broken").await;
    at_minute(&app, start, 5).await;
    app.in_room(&inc, "ack", PRIMARY).await;
    at_minute(&app, start, 120).await;
    assert_eq!(app.slack.dm_posts(PRIMARY).len(), 1);
    assert!(app.slack.dm_posts("U0SENIOR").is_empty());
    assert!(app.slack.hooks("senior").is_empty());
    assert!(app.smtp.messages().is_empty());
    let jobs = app.jobs().await;
    let steps: Vec<_> = jobs
        .iter()
        .filter(|j| j.kind == "escalation_step")
        .collect();
    assert_eq!(
        steps.iter().filter(|j| j.state == "cancelled").count(),
        3,
        "{jobs:#?}"
    );
}

async fn pagerduty_acknowledgement_stops_escalation(backend: Backend) {
    let app = spawn(backend).await;
    let start = app.clock.now();
    app.open("P0", "queue stuck").await;
    let body = serde_json::json!({
        "event": {
            "id": "01DEMO", "event_type": "incident.acknowledged", "resource_type": "incident",
            "occurred_at": "2026-11-29T10:01:00Z",
            "agent": { "summary": "Pat Primary", "type": "user_reference" },
            "data": { "id": "PGR0VU2", "type": "incident", "incident_key": "warroom-INC-1",
                      "title": "[P0] INC-1: queue stuck", "status": "acknowledged" }
        }
    })
    .to_string();
    let sign = |secret: &str| pagerduty_signature(secret, &body);
    let post = |signature: String| post_pagerduty_signed(&app, body.clone(), signature);
    assert_eq!(post(sign("wrong-secret")).await, 401);
    assert!(app.incident(1).await.unwrap().acknowledged.is_none());
    assert_eq!(
        post(format!("v1=00,{}", sign(PAGERDUTY_WEBHOOK_SECRET))).await,
        200
    );
    assert_eq!(
        post(sign(PAGERDUTY_WEBHOOK_SECRET)).await,
        200,
        "a redelivery is fine"
    );
    let incident = app.incident(1).await.unwrap();
    assert_eq!(incident.acknowledged.unwrap().by, "PagerDuty (Pat Primary)");
    let acks = app
        .timeline(1)
        .await
        .into_iter()
        .filter(|e| e.kind == TimelineKind::Acknowledged)
        .count();
    assert_eq!(acks, 1);
    at_minute(&app, start, 40).await;
    assert!(app.slack.dm_posts("U0SENIOR").is_empty());
}

async fn overdue_steps_fire_once_after_a_restart(backend: Backend) {
    let mut spawn_opts = Spawn::new(backend);
    spawn_opts.config = ESCALATION_CONFIG.to_string();
    spawn_opts.workers = 0;
    let app = spawn_app_with(spawn_opts).await;
    let start = app.clock.now();
    app.command("open P0 disk full").await;
    // The bot is down while the 15m step comes due.
    app.clock.advance(minutes(20));
    assert!(app.slack.calls().is_empty());
    let app = app.restart(1).await;
    app.ctx.wake.notify_waiters();
    app.eventually("the overdue page", |s| {
        s.dm_posts("U0SENIOR").into_iter().next()
    })
    .await;
    app.settled().await;
    at_minute(&app, start, 25).await;
    assert_eq!(app.slack.dm_posts(PRIMARY).len(), 1);
    assert_eq!(app.slack.dm_posts("U0SENIOR").len(), 1);
    assert_eq!(app.slack.hooks("senior").len(), 1);
    // And again: nothing fires twice across another restart.
    let app = app.restart(1).await;
    at_minute(&app, start, 29).await;
    assert_eq!(app.slack.dm_posts("U0SENIOR").len(), 1);
    assert!(app.smtp.messages().is_empty(), "30m step not due yet");
}

async fn failing_deliveries_are_retried_and_visible(backend: Backend) {
    let app = spawn(backend).await;
    let start = app.clock.now();
    app.slack.fail_next("hook/senior", 3);
    app.smtp.fail_next(1);
    app.open("P0", "cdn errors").await;
    at_minute(&app, start, 15).await;
    let failing = app
        .timeline(1)
        .await
        .into_iter()
        .filter(|e| e.kind == TimelineKind::Failure && e.text().contains("senior"))
        .collect::<Vec<_>>();
    assert_eq!(
        failing.len(),
        1,
        "one note, not one per retry: {failing:#?}"
    );
    assert!(
        failing[0].text().contains("retrying"),
        "{}",
        failing[0].text()
    );
    app.advance_until("the webhook delivered", Duration::from_secs(5), |s| {
        s.hooks("senior").into_iter().find(|h| h.status == 200)
    })
    .await;
    assert_eq!(
        app.slack.hooks("senior").len(),
        4,
        "3 failures, then success"
    );
    at_minute(&app, start, 31).await;
    app.advance_until("the email delivered", Duration::from_secs(5), |_| {
        (!app.smtp.messages().is_empty()).then_some(())
    })
    .await;
    app.settled().await;
    assert_eq!(app.smtp.messages().len(), 1);
    let paged = paged_texts(&app.timeline(1).await);
    assert!(
        paged.iter().any(|t| t.contains("Paged senior by webhook")),
        "{paged:#?}"
    );
    assert!(
        paged.iter().any(|t| t.contains("Paged manager by email")),
        "{paged:#?}"
    );
}

async fn raising_severity_replans_the_ladder(backend: Backend) {
    let app = spawn(backend).await;
    let start = app.clock.now();
    let inc = app.open("P2", "search degraded").await;
    app.settled().await;
    assert_eq!(app.slack.dm_posts(PRIMARY).len(), 1);
    at_minute(&app, start, 20).await;
    app.in_room(&inc, "severity P0", ALICE).await;
    app.settled().await;
    // P0's 0m and 15m steps are already past: they fire now; 30m fires at 30m.
    assert_eq!(app.slack.dm_posts(PRIMARY).len(), 2);
    assert_eq!(app.slack.dm_posts("U0SENIOR").len(), 1);
    assert!(app.smtp.messages().is_empty());
    at_minute(&app, start, 30).await;
    assert_eq!(app.smtp.messages().len(), 1);
    // Lowering it again drops what is left.
    app.in_room(&inc, "severity P2", ALICE).await;
    at_minute(&app, start, 70).await;
    assert!(app.slack.dm_posts("U0COMMANDER").is_empty());
}

async fn status_nudges_and_target_warnings(backend: Backend) {
    let app = spawn(backend).await;
    let start = app.clock.now();
    let inc = app.open("P0", "orders lost").await;
    app.in_room(&inc, "ack", PRIMARY).await;
    let nudges = |app: &TestApp| {
        app.slack
            .posts_to(&inc.room)
            .iter()
            .filter(|c| c.params["text"].to_string().contains("No status update"))
            .count()
    };
    at_minute(&app, start, 9).await;
    assert_eq!(nudges(&app), 0);
    at_minute(&app, start, 10).await;
    assert_eq!(nudges(&app), 1);
    at_minute(&app, start, 12).await;
    app.in_room(&inc, "status found the bad deploy", ALICE)
        .await;
    at_minute(&app, start, 20).await;
    assert_eq!(nudges(&app), 1, "a status at 12m resets the clock");
    at_minute(&app, start, 22).await;
    assert_eq!(nudges(&app), 2);

    let warnings = |app: &TestApp, needle: &str| {
        app.slack
            .posts_to(&inc.room)
            .iter()
            .filter(|c| c.params["text"].to_string().contains(needle))
            .count()
    };
    at_minute(&app, start, 89).await;
    assert_eq!(warnings(&app, "75%"), 0);
    at_minute(&app, start, 90).await;
    assert_eq!(warnings(&app, "75%"), 1);
    at_minute(&app, start, 120).await;
    assert_eq!(warnings(&app, "missed"), 1);
    // Minor incidents get no nudges.
    let minor = app.open("P3", "typo on pricing page").await;
    at_minute(&app, start, 200).await;
    assert!(!app
        .slack
        .posts_to(&minor.room)
        .iter()
        .any(|c| c.params["text"].to_string().contains("No status update")));
}

async fn ack_racing_a_due_step_is_never_half_done(backend: Backend) {
    let app = std::sync::Arc::new(spawn(backend).await);
    let start = app.clock.now();
    let mut rooms = Vec::new();
    for i in 0..8 {
        rooms.push(app.open("P0", &format!("race {i}")).await);
    }
    app.settled().await;
    // The 15m step comes due while everyone acknowledges at once.
    app.clock.advance(minutes(15));
    let mut acks = Vec::new();
    for room in &rooms {
        let app = app.clone();
        let room = Opened {
            room: room.room.clone(),
            name: room.name.clone(),
            kickoff_ts: room.kickoff_ts.clone(),
        };
        acks.push(tokio::spawn(async move {
            app.in_room(&room, "ack", PRIMARY).await.status
        }));
    }
    app.ctx.wake.notify_waiters();
    for a in acks {
        assert_eq!(a.await.unwrap(), 200);
    }
    at_minute(&app, start, 16).await;
    for n in 1..=8i64 {
        let recorded = paged_texts(&app.timeline(n).await)
            .iter()
            .any(|t| t.contains("Paged senior by Slack DM"));
        let dm_sent = app
            .slack
            .dm_posts("U0SENIOR")
            .iter()
            .any(|c| c.params["text"].to_string().contains(&format!("INC-{n} ")));
        assert_eq!(recorded, dm_sent, "INC-{n}: sent and recorded, or neither");
    }
}

/// Two replicas on one PostgreSQL database: every step fires exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(warroom_pg),
    ignore = "PostgreSQL suite skipped: set WARROOM_TEST_POSTGRES_URL to run it"
)]
async fn postgres_two_replicas_fire_each_step_once() {
    let a = spawn(Backend::Postgres).await;
    let b = a.replica(1).await;
    let start = a.clock.now();
    for i in 0..10 {
        let app = if i % 2 == 0 { &a } else { &b };
        app.command(&format!("open P0 replica test {i}")).await;
    }
    for minute in [1, 15, 16, 30, 31] {
        let target = start + chrono::Duration::minutes(minute);
        let now = a.clock.now();
        if target > now {
            a.clock.advance((target - now).to_std().unwrap());
        }
        a.ctx.wake.notify_waiters();
        b.ctx.wake.notify_waiters();
        a.settled().await;
    }
    assert_eq!(a.slack.dm_posts(PRIMARY).len(), 10);
    assert_eq!(a.slack.dm_posts("U0SENIOR").len(), 10);
    assert_eq!(a.slack.hooks("senior").len(), 10);
    assert_eq!(a.smtp.messages().len(), 10);
    assert_eq!(a.slack.hooks("twilio").len(), 10);
    assert_eq!(a.slack.ok_calls("conversations.create").len(), 10);
    let ids: std::collections::HashSet<_> = a
        .slack
        .hooks("senior")
        .iter()
        .map(|h| h.params["delivery_id"].to_string())
        .collect();
    assert_eq!(ids.len(), 10, "unique delivery ids");
    drop(b);
}

/// Texts posted in `channel` that contain `needle`.
fn posts_with(app: &TestApp, channel: &str, needle: &str) -> Vec<String> {
    app.slack
        .posts_to(channel)
        .iter()
        .map(|c| c.params["text"].as_str().unwrap_or_default().to_string())
        .filter(|t| t.contains(needle))
        .collect()
}

fn timeline_with(events: &[warroom::core::TimelineEvent], needle: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.text().contains(needle))
        .map(|e| e.text())
        .collect()
}

async fn pages_sending(app: &TestApp, incident: i64) -> Vec<(String, String)> {
    let mut conn = app.ctx.store.acquire().await.unwrap();
    warroom::store::pages_sending(&mut conn, incident, app.clock.now())
        .await
        .unwrap()
}

async fn an_ack_while_a_page_is_being_sent_says_so(backend: Backend) {
    let app = spawn(backend).await;
    let start = app.clock.now();
    let inc = app.open("P0", "payments down").await;
    app.settled().await;
    // Slack answers slowly: the 15m page to senior by Slack DM stays in flight a while.
    app.slack.set_latency(Duration::from_millis(1500));
    app.clock.advance(minutes(15));
    app.ctx.wake.notify_waiters();
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut poll = tokio::time::interval(Duration::from_millis(10));
    loop {
        poll.tick().await;
        let sending = pages_sending(&app, 1).await;
        if sending.contains(&("senior".to_string(), "slack".to_string())) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page to senior never went in flight"
        );
    }
    let ack = app.in_room(&inc, "ack", "U0SENIOR").await;
    assert!(ack.text().contains("paging stopped"), "{ack:?}");
    at_minute(&app, start, 16).await;
    app.slack.set_latency(Duration::ZERO);
    let events = app.timeline(1).await;
    let raced = timeline_with(
        &events,
        "Acknowledged while a page to senior via Slack DM was being sent",
    );
    assert_eq!(raced.len(), 1, "{events:#?}");
    // The page that was in flight went out and is recorded; nothing after the ack.
    assert_eq!(app.slack.dm_posts("U0SENIOR").len(), 1);
    assert!(pages_sending(&app, 1).await.is_empty());
    at_minute(&app, start, 40).await;
    assert!(app.smtp.messages().is_empty(), "no page after the ack");
}

async fn pagerduty_acknowledge_waits_for_a_trigger_in_flight(backend: Backend) {
    let app = spawn(backend).await;
    let inc = app.open("P0", "queue stuck").await;
    app.settled().await;
    let actions = |app: &TestApp| {
        app.slack
            .hooks("pagerduty")
            .iter()
            .map(|h| {
                h.params["event_action"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(actions(&app), ["trigger"]);
    // A trigger to primary passed its last check and is being sent (as a worker would
    // record it just before the HTTP call).
    let delivery = warroom::store::PageDelivery::new(1, 7, 0, "primary", "pagerduty");
    let checked = warroom::store::begin_page(&app.ctx.store, &delivery, |_| true, app.clock.now())
        .await
        .unwrap();
    assert!(checked.is_some());
    app.in_room(&inc, "ack", PRIMARY).await;
    app.settled().await;
    let events = app.timeline(1).await;
    assert_eq!(
        timeline_with(
            &events,
            "Acknowledged while a page to primary via PagerDuty was being sent"
        )
        .len(),
        1,
        "{events:#?}"
    );
    // The acknowledge waits: sent now, it could land before the trigger and be undone by it.
    assert_eq!(actions(&app), ["trigger"]);
    let jobs = app.jobs().await;
    let waiting = jobs
        .iter()
        .find(|j| j.kind == "acknowledge_pagers")
        .expect("the acknowledge job");
    assert_eq!(waiting.state, "pending", "{jobs:#?}");
    assert!(
        waiting
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("still being sent"),
        "{waiting:?}"
    );
    // The trigger finishes; the acknowledge follows.
    {
        let mut conn = app.ctx.store.acquire().await.unwrap();
        warroom::store::set_page_state(
            &mut conn,
            &delivery,
            warroom::store::PageState::Sent,
            None,
            app.clock.now(),
        )
        .await
        .unwrap();
    }
    app.advance_until("the acknowledge", Duration::from_secs(3), |s| {
        s.hooks("pagerduty")
            .into_iter()
            .find(|h| h.params["event_action"] == "acknowledge")
    })
    .await;
    assert_eq!(actions(&app), ["trigger", "acknowledge"]);
}

/// A resolve that commits while a page is in flight says so on the timeline, once per page,
/// as an acknowledgement does; PagerDuty's resolve waits for the trigger.
async fn a_resolve_while_a_page_is_being_sent_says_so_once(backend: Backend) {
    let app = spawn(backend).await;
    let inc = app.open("P0", "queue stuck").await;
    app.settled().await;
    // A trigger to primary passed its last check and is being sent.
    let delivery = warroom::store::PageDelivery::new(1, 7, 0, "primary", "pagerduty");
    let checked = warroom::store::begin_page(&app.ctx.store, &delivery, |_| true, app.clock.now())
        .await
        .unwrap();
    assert!(checked.is_some());
    let answer = app.in_room(&inc, "resolve drained the queue", ALICE).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    app.settled().await;
    let events = app.timeline(1).await;
    let raced = timeline_with(
        &events,
        "Resolved while a page to primary via PagerDuty was being sent",
    );
    assert_eq!(raced.len(), 1, "{events:#?}");
    assert!(
        timeline_with(&events, "Acknowledged while").is_empty(),
        "{events:#?}"
    );
    let jobs = app.jobs().await;
    let waiting = jobs
        .iter()
        .find(|j| j.kind == "resolve_pagers")
        .expect("the resolve job");
    assert_eq!(waiting.state, "pending", "{jobs:#?}");
    // A second resolve changes nothing and says nothing more.
    app.in_room(&inc, "resolve again", ALICE).await;
    let events = app.timeline(1).await;
    assert_eq!(
        timeline_with(&events, "Resolved while a page").len(),
        1,
        "{events:#?}"
    );
}

/// `v1=<hex HMAC-SHA256>`, as PagerDuty signs a webhook delivery.
fn pagerduty_signature(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Posts a PagerDuty webhook delivery with the given `X-PagerDuty-Signature`.
async fn post_pagerduty_signed(app: &TestApp, body: String, signature: String) -> u16 {
    reqwest::Client::new()
        .post(app.url("/webhooks/pagerduty"))
        .header("content-type", "application/json")
        .header("x-pagerduty-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Posts a PagerDuty v3 webhook delivery, signed with the test secret.
async fn post_pagerduty(app: &TestApp, body: &serde_json::Value) -> u16 {
    let body = body.to_string();
    let signature = pagerduty_signature(PAGERDUTY_WEBHOOK_SECRET, &body);
    post_pagerduty_signed(app, body, signature).await
}

/// A PagerDuty v3 `incident.acknowledged` delivery, shaped like PagerDuty's documented
/// example.
fn pagerduty_acknowledged(
    event_id: &str,
    incident_key: Option<&str>,
    title: &str,
) -> serde_json::Value {
    let mut data = serde_json::json!({
        "id": "Q2KB5YZV0H2V1Q",
        "type": "incident",
        "self": "https://api.pagerduty.com/incidents/Q2KB5YZV0H2V1Q",
        "html_url": "https://acme.pagerduty.com/incidents/Q2KB5YZV0H2V1Q",
        "number": 4112,
        "status": "acknowledged",
        "created_at": "2026-11-29T09:58:00Z",
        "title": title,
        "service": {
            "html_url": "https://acme.pagerduty.com/services/PF9KMXH",
            "id": "PF9KMXH",
            "self": "https://api.pagerduty.com/services/PF9KMXH",
            "summary": "Database replicas",
            "type": "service_reference"
        },
        "assignees": [{
            "html_url": "https://acme.pagerduty.com/users/PTUXL6G",
            "id": "PTUXL6G",
            "self": "https://api.pagerduty.com/users/PTUXL6G",
            "summary": "Dana DBA",
            "type": "user_reference"
        }],
        "escalation_policy": {
            "html_url": "https://acme.pagerduty.com/escalation_policies/PUS0KTE",
            "id": "PUS0KTE",
            "self": "https://api.pagerduty.com/escalation_policies/PUS0KTE",
            "summary": "Default",
            "type": "escalation_policy_reference"
        },
        "teams": [],
        "priority": null,
        "urgency": "high",
        "conference_bridge": null,
        "resolve_reason": null
    });
    if let Some(key) = incident_key {
        data["incident_key"] = serde_json::json!(key);
    }
    serde_json::json!({
        "event": {
            "id": event_id,
            "event_type": "incident.acknowledged",
            "resource_type": "incident",
            "occurred_at": "2026-11-29T10:02:11.402Z",
            "agent": {
                "html_url": "https://acme.pagerduty.com/users/PTUXL6G",
                "id": "PTUXL6G",
                "self": "https://api.pagerduty.com/users/PTUXL6G",
                "summary": "Dana DBA",
                "type": "user_reference"
            },
            "client": null,
            "data": data
        }
    })
}

async fn pagerduty_acks_of_other_incidents_change_nothing(backend: Backend) {
    let app = spawn(backend).await;
    app.open("P0", "queue stuck").await;
    app.settled().await;
    for (id, key, title) in [
        // Another service's incident that mentions ours in its title.
        (
            "01EVT0001",
            Some("d3b6ac1a0f8e4e22a2c01b9e6f3a1f7e"),
            "Replica lag on db-7 (see INC-1)",
        ),
        // Warroom's title copied by hand into an incident of another integration.
        ("01EVT0002", None, "[P0] INC-1: queue stuck"),
        // Keys that only look like ours.
        ("01EVT0003", Some("warroom-INC-12"), "[P0] INC-12: other"),
        (
            "01EVT0004",
            Some("warroom-INC-1-replay"),
            "[P0] INC-1: queue stuck",
        ),
        (
            "01EVT0005",
            Some("prod-warroom-INC-1"),
            "[P0] INC-1: queue stuck",
        ),
    ] {
        let status = post_pagerduty(&app, &pagerduty_acknowledged(id, key, title)).await;
        assert_eq!(status, 200, "{id}");
        assert!(
            app.incident(1).await.unwrap().acknowledged.is_none(),
            "{id} acknowledged INC-1"
        );
    }
    // Warroom's own dedup key, exactly, does.
    let ours = pagerduty_acknowledged(
        "01EVT0006",
        Some("warroom-INC-1"),
        "[P0] INC-1: queue stuck",
    );
    assert_eq!(post_pagerduty(&app, &ours).await, 200);
    let acknowledged = app.incident(1).await.unwrap().acknowledged.unwrap();
    assert_eq!(acknowledged.by, "PagerDuty (Dana DBA)");
}

async fn nobody_acknowledging_after_the_last_step_is_announced(backend: Backend) {
    // Two steps, 0m and 15m: the last gap is 15m, so the alarm comes at 30m.
    let app = spawn_app(backend).await;
    let start = app.clock.now();
    let first = app.open("P0", "payments down").await;
    let second = app.open("P0", "login broken").await;
    // The grace runs from when the last step paged.
    at_minute(&app, start, 15).await;
    at_minute(&app, start, 20).await;
    app.in_room(&second, "ack", "U0SENIOR").await;
    let needle = "nobody acknowledged after the last escalation step";
    at_minute(&app, start, 29).await;
    assert!(posts_with(&app, ANNOUNCE, needle).is_empty());
    at_minute(&app, start, 30).await;
    let announced = posts_with(&app, ANNOUNCE, needle);
    assert_eq!(announced.len(), 1, "{announced:#?}");
    let text = &announced[0];
    assert!(text.starts_with("INC-1: nobody acknowledged"), "{text}");
    assert!(
        text.contains("primary (Slack DM)") && text.contains("senior (Slack DM)"),
        "names who was tried: {text}"
    );
    assert_eq!(posts_with(&app, &first.room, needle).len(), 1);
    assert_eq!(timeline_with(&app.timeline(1).await, needle).len(), 1);
    // Once, and not for the acknowledged incident.
    at_minute(&app, start, 120).await;
    assert_eq!(posts_with(&app, ANNOUNCE, needle).len(), 1);
    assert_eq!(posts_with(&app, &first.room, needle).len(), 1);
    assert_eq!(timeline_with(&app.timeline(1).await, needle).len(), 1);
    assert!(posts_with(&app, &second.room, needle).is_empty());
    assert!(timeline_with(&app.timeline(2).await, needle).is_empty());
}

const UNREACHABLE_CONFIG: &str = r#"
[slack]
announce_channel = "C0ANNOUNCE"

[severity.P0]
escalation = [{ after = "0s", page = ["ghost"] }]

[severity.P1]
escalation = [{ after = "0s", page = ["flaky"] }]

[contacts.ghost]
teams_user = "ghost@acme.test"

[contacts.flaky]
webhook_url = "{emulator}/hook/flaky"
webhook_secret = "whsec-flaky"
phone = "+15550002222"
"#;

async fn a_step_that_can_page_nobody_is_announced(backend: Backend) {
    let mut spawn = Spawn::new(backend);
    spawn.config = UNREACHABLE_CONFIG.to_string();
    let app = spawn_app_with(spawn).await;
    let inc = app.open("P0", "payments down").await;
    app.settled().await;
    let needle = "INC-1: escalation step 1 could not page anyone";
    let announced = posts_with(&app, ANNOUNCE, needle);
    assert_eq!(announced.len(), 1, "{announced:#?}");
    assert!(announced[0].contains("ghost"), "{}", announced[0]);
    assert_eq!(posts_with(&app, &inc.room, needle).len(), 1);
    assert_eq!(timeline_with(&app.timeline(1).await, needle).len(), 1);
}

async fn a_step_whose_every_page_fails_is_announced(backend: Backend) {
    let mut spawn = Spawn::new(backend);
    spawn.config = UNREACHABLE_CONFIG.to_string();
    let app = spawn_app_with(spawn).await;
    app.slack.fail_until_cleared("hook/flaky");
    app.slack.fail_until_cleared("hook/twilio");
    let inc = app.open("P1", "search degraded").await;
    app.settled().await;
    let needle = "INC-1: every page of escalation step 1 failed";
    app.advance_until("the alarm", Duration::from_secs(1), |s| {
        s.posts_to(ANNOUNCE)
            .into_iter()
            .find(|c| c.params["text"].to_string().contains(needle))
    })
    .await;
    // Retries go on and fail again: still one alarm.
    for _ in 0..5 {
        app.clock.advance(Duration::from_secs(40));
        app.ctx.wake.notify_waiters();
        app.settled().await;
    }
    assert!(app.slack.hooks("flaky").len() >= 3, "retried");
    let announced = posts_with(&app, ANNOUNCE, needle);
    assert_eq!(announced.len(), 1, "{announced:#?}");
    assert!(
        announced[0].contains("flaky by webhook") && announced[0].contains("flaky by SMS"),
        "{}",
        announced[0]
    );
    assert_eq!(posts_with(&app, &inc.room, needle).len(), 1);
    assert_eq!(timeline_with(&app.timeline(1).await, needle).len(), 1);
    // Once a retry gets through, the page is delivered as usual.
    app.slack.clear_faults();
    app.advance_until("the webhook delivered", Duration::from_secs(30), |s| {
        s.hooks("flaky").into_iter().find(|h| h.status == 200)
    })
    .await;
}

async fn a_page_dm_whose_answer_is_lost_reaches_the_contact_once(backend: Backend) {
    let app = spawn(backend).await;
    let start = app.clock.now();
    app.open("P0", "payments down").await;
    app.settled().await;
    assert_eq!(app.slack.dm_posts(PRIMARY).len(), 1);
    // The status nudge at 10 minutes is posted before the fault.
    at_minute(&app, start, 14).await;
    // Step 2 at 15 minutes DMs senior (and calls a webhook): that DM reaches Slack, but its
    // answer is lost.
    app.slack.succeed_then_fail_next("chat.postMessage", 1);
    at_minute(&app, start, 15).await;
    let dm = lost_post_channel(&app.slack);
    assert!(
        app.slack.dm_channels("U0SENIOR").contains(&dm),
        "the lost answer was senior's page: {dm}"
    );
    app.advance_until("the page retried", Duration::from_millis(500), |s| {
        let retried = s
            .api_calls("conversations.history")
            .iter()
            .any(|c| c.param_str("channel") == Some(dm.as_str()));
        (retried || s.messages_in(&dm).len() > 1).then_some(())
    })
    .await;
    app.settled().await;

    let pages = app.slack.messages_in(&dm);
    assert_eq!(pages.len(), 1, "senior is paged once: {pages:#?}");
    assert_eq!(pages[0]["metadata"]["event_type"], "warroom_post");
    assert_eq!(pages[0]["metadata"]["event_payload"]["incident"], "INC-1");
    // The page counts as sent, once.
    let paged: Vec<_> = paged_texts(&app.timeline(1).await)
        .into_iter()
        .filter(|t| t.contains("Paged senior by Slack DM"))
        .collect();
    assert_eq!(paged.len(), 1, "{paged:?}");
}
