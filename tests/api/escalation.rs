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
        .map(|e| e.text.clone())
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
    let sign = |secret: &str| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        format!("v1={}", hex::encode(mac.finalize().into_bytes()))
    };
    let post = |signature: String| {
        let url = app.url("/webhooks/pagerduty");
        let body = body.clone();
        async move {
            reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .header("x-pagerduty-signature", signature)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
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
        .filter(|e| e.kind == TimelineKind::Failure && e.text.contains("senior"))
        .collect::<Vec<_>>();
    assert_eq!(
        failing.len(),
        1,
        "one note, not one per retry: {failing:#?}"
    );
    assert!(failing[0].text.contains("retrying"), "{}", failing[0].text);
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
