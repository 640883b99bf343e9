//! Hotfix tracking: link the fix, watch the deploy, confirm it held.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;
use warroom::core::{Status, TimelineKind};

crate::on_both_backends!(
    a_linked_fix_is_detected_and_its_window_summarised,
    a_rollback_is_called_out,
    flapping_health_is_reported_once_per_transition,
    no_polling_without_open_incidents,
    polling_survives_a_restart,
    hotfix_command_checks_its_input,
    reported_versions_mention_nobody,
);

const HOTFIX_CONFIG: &str = r#"
[slack]
announce_channel = "C0ANNOUNCE"

[severity.P1]
escalation = []

[health]
monitor_for = "30m"

[health.shop]
url = "{emulator}/health/shop"
interval = "10s"
timeout = "2s"
"#;

async fn spawn(backend: Backend) -> TestApp {
    let mut spawn = Spawn::new(backend);
    spawn.config = HOTFIX_CONFIG.to_string();
    let app = spawn_app_with(spawn).await;
    app.slack
        .set_health("shop", 200, json!({ "version": "v1.2.3", "status": "ok" }));
    app
}

/// Moves the clock by `by`, lets due jobs run, and waits for the queue to settle.
async fn tick(app: &TestApp, by: Duration) {
    app.clock.advance(by);
    app.ctx.wake.notify_waiters();
    app.settled().await;
}

fn room_texts(app: &TestApp, room: &str) -> Vec<String> {
    app.slack
        .posts_to(room)
        .iter()
        .map(|c| c.params["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn count(texts: &[String], needle: &str) -> usize {
    texts.iter().filter(|t| t.contains(needle)).count()
}

async fn a_linked_fix_is_detected_and_its_window_summarised(backend: Backend) {
    let app = spawn(backend).await;
    let inc = app.open("P1", "checkout errors").await;
    app.settled().await;
    let kickoff = app.slack.message(&inc.room, &inc.kickoff_ts).unwrap();
    assert!(
        kickoff["blocks"].to_string().contains("shop v1.2.3"),
        "the kickoff shows what ran at declaration: {}",
        kickoff["blocks"]
    );
    let linked = app
        .in_room(
            &inc,
            "hotfix https://github.com/acme/shop/pull/812 1.2.4",
            ALICE,
        )
        .await;
    assert!(linked.text().contains("acme/shop#812"), "{linked:?}");
    tick(&app, Duration::from_secs(10)).await;
    assert_eq!(app.incident(1).await.unwrap().status, Status::Investigating);

    app.slack
        .set_health("shop", 200, json!({ "version": "v1.2.4", "status": "ok" }));
    tick(&app, Duration::from_secs(10)).await;
    let incident = app.incident(1).await.unwrap();
    assert_eq!(
        incident.status,
        Status::Monitoring,
        "fix deployed → monitoring"
    );
    assert!(incident.fix_deployed_at.is_some());
    let texts = room_texts(&app, &inc.room);
    assert_eq!(count(&texts, "Fix deployed"), 1, "{texts:#?}");
    assert!(
        texts
            .iter()
            .any(|t| t.contains("v1.2.4") && t.contains("was v1.2.3")),
        "{texts:#?}"
    );
    let deploys: Vec<_> = app
        .timeline(1)
        .await
        .into_iter()
        .filter(|e| e.kind == TimelineKind::Deploy)
        .collect();
    assert_eq!(deploys.len(), 2, "link + fix deployed: {deploys:#?}");

    // Ten more healthy polls: nothing new is said.
    for _ in 0..10 {
        tick(&app, Duration::from_secs(10)).await;
    }
    assert_eq!(room_texts(&app, &inc.room).len(), texts.len());
    // The window ends.
    tick(&app, Duration::from_secs(30 * 60)).await;
    let summary = app
        .slack
        .posts_to(&inc.room)
        .into_iter()
        .find(|c| c.params["text"].to_string().contains("fix held"))
        .expect("the window summary");
    let text = summary.params["text"].as_str().unwrap();
    assert!(
        text.contains("30m") && text.contains("v1.2.4") && text.contains("0 failed checks"),
        "{text}"
    );
    assert!(
        summary.params["blocks"]
            .to_string()
            .contains("resolve_prompt"),
        "a Resolve button"
    );
    // The resolution announcement knows when the fix was deployed.
    app.in_room(&inc, "resolve raised the pool limit", ALICE)
        .await;
    app.settled().await;
    let announcement = app
        .slack
        .posts_to(ANNOUNCE)
        .into_iter()
        .find(|c| c.params["text"].to_string().contains("Resolved"))
        .unwrap();
    assert!(
        announcement.params["text"]
            .to_string()
            .contains("Fix deployed"),
        "{}",
        announcement.params["text"]
    );
}

async fn a_rollback_is_called_out(backend: Backend) {
    let app = spawn(backend).await;
    let inc = app.open("P1", "search broken").await;
    app.settled().await;
    app.in_room(&inc, "hotfix https://github.com/acme/search/pull/7", ALICE)
        .await;
    app.slack
        .set_health("shop", 200, json!({ "version": "v2.0.0" }));
    tick(&app, Duration::from_secs(10)).await;
    assert_eq!(
        app.incident(1).await.unwrap().status,
        Status::Monitoring,
        "no version: the next deploy is the fix"
    );
    app.slack
        .set_health("shop", 200, json!({ "version": "1.2.3" }));
    tick(&app, Duration::from_secs(10)).await;
    let texts = room_texts(&app, &inc.room);
    assert_eq!(count(&texts, "Rollback"), 1, "{texts:#?}");
    assert!(texts
        .iter()
        .any(|t| t.contains("Rollback") && t.contains("1.2.3")));
}

async fn flapping_health_is_reported_once_per_transition(backend: Backend) {
    let app = spawn(backend).await;
    let inc = app.open("P1", "api flaky").await;
    app.settled().await;
    app.slack
        .set_health("shop", 503, json!({ "status": "down" }));
    for _ in 0..4 {
        tick(&app, Duration::from_secs(10)).await;
    }
    app.slack
        .set_health("shop", 200, json!({ "version": "v1.2.3" }));
    for _ in 0..3 {
        tick(&app, Duration::from_secs(10)).await;
    }
    app.slack.set_health("shop", 200, json!("not an object"));
    tick(&app, Duration::from_secs(10)).await;
    tick(&app, Duration::from_secs(10)).await;
    let texts = room_texts(&app, &inc.room);
    assert_eq!(count(&texts, "health check failing"), 2, "{texts:#?}");
    assert_eq!(count(&texts, "healthy again"), 1, "{texts:#?}");
    assert!(texts.iter().any(|t| t.contains("HTTP 503")));
    let health: Vec<_> = app
        .timeline(1)
        .await
        .into_iter()
        .filter(|e| e.kind == TimelineKind::Health)
        .collect();
    assert_eq!(health.len(), 3, "{health:#?}");
    assert!(app.slack.health_polls("shop") >= 9);

    // Failing while a fix is monitored: "consider rollback" and the commander is paged.
    app.slack
        .set_health("shop", 200, json!({ "version": "v1.2.3" }));
    tick(&app, Duration::from_secs(10)).await;
    app.in_room(&inc, "assign commander <@U0BOB>", ALICE).await;
    app.in_room(&inc, "state monitoring", ALICE).await;
    app.slack.set_health("shop", 500, json!({}));
    tick(&app, Duration::from_secs(10)).await;
    let texts = room_texts(&app, &inc.room);
    assert!(
        texts.iter().any(|t| t.contains("consider rollback")),
        "{texts:#?}"
    );
    assert_eq!(
        app.slack.dm_posts("U0BOB").len(),
        1,
        "the commander is paged"
    );
}

async fn no_polling_without_open_incidents(backend: Backend) {
    let app = spawn(backend).await;
    tick(&app, Duration::from_secs(120)).await;
    assert_eq!(
        app.slack.health_polls("shop"),
        0,
        "nothing open: nothing polled"
    );
    let inc = app.open("P1", "short one").await;
    tick(&app, Duration::from_secs(10)).await;
    assert!(app.slack.health_polls("shop") >= 1);
    app.in_room(&inc, "resolve false alarm", ALICE).await;
    tick(&app, Duration::from_secs(10)).await;
    let after_resolve = app.slack.health_polls("shop");
    for _ in 0..5 {
        tick(&app, Duration::from_secs(10)).await;
    }
    assert_eq!(
        app.slack.health_polls("shop"),
        after_resolve,
        "polling stopped"
    );
    let jobs = app.jobs().await;
    assert!(
        !jobs
            .iter()
            .any(|j| j.kind == "health_poll" && j.state == "pending"),
        "{jobs:#?}"
    );
}

async fn polling_survives_a_restart(backend: Backend) {
    let app = spawn(backend).await;
    let inc = app.open("P1", "db slow").await;
    app.in_room(
        &inc,
        "hotfix https://github.com/acme/db/pull/3 v1.2.4",
        ALICE,
    )
    .await;
    tick(&app, Duration::from_secs(10)).await;
    let app = app.restart(1).await;
    app.slack
        .set_health("shop", 200, json!({ "version": "v1.2.4" }));
    tick(&app, Duration::from_secs(10)).await;
    app.eventually("the fix deployed after the restart", |s| {
        s.posts_to(&inc.room)
            .into_iter()
            .find(|c| c.params["text"].to_string().contains("Fix deployed"))
    })
    .await;
    let pending: Vec<_> = app
        .jobs()
        .await
        .into_iter()
        .filter(|j| j.kind == "health_poll" && j.state == "pending")
        .collect();
    assert_eq!(
        pending.len(),
        1,
        "one poll waiting, never two: {pending:#?}"
    );
}

async fn hotfix_command_checks_its_input(backend: Backend) {
    let app = spawn(backend).await;
    assert!(app
        .command("hotfix https://github.com/acme/shop/pull/1")
        .await
        .text()
        .contains("war room"));
    let inc = app.open("P1", "typo").await;
    let bad = app.in_room(&inc, "hotfix not-a-link", ALICE).await;
    assert!(bad.text().contains("not a link"), "{bad:?}");
    let missing = app.in_room(&inc, "hotfix", ALICE).await;
    assert!(missing.text().contains("needs"), "{missing:?}");
    let too_many = app
        .in_room(&inc, "hotfix https://x.test/a v1 v2", ALICE)
        .await;
    assert!(too_many.text().contains("optionally"), "{too_many:?}");
    let ok = app
        .in_room(
            &inc,
            "hotfix <https://gitlab.example.com/a/b/-/merge_requests/9> 3.1",
            ALICE,
        )
        .await;
    assert!(ok.text().contains("gitlab.example.com"), "{ok:?}");
    app.settled().await;
    let kickoff = app.slack.message(&inc.room, &inc.kickoff_ts).unwrap();
    assert!(
        kickoff["blocks"].to_string().contains("Hotfix"),
        "{}",
        kickoff["blocks"]
    );
    assert_eq!(app.incident(1).await.unwrap().hotfixes.len(), 1);
}

/// A version is what a health endpoint says, not what warroom says: even one carrying
/// warroom's own mention mark (U+2063) names nobody, in the war room or in `/incident timeline`.
async fn reported_versions_mention_nobody(backend: Backend) {
    let app = spawn(backend).await;
    let evil = "v2 \u{2063}@U0BOB <@U0BOB> @U0BOB <!channel>";
    app.slack
        .set_health("shop", 200, json!({ "version": evil }));
    let inc = app.open("P1", "checkout errors").await;
    app.settled().await;
    app.in_room(&inc, "hotfix https://github.com/acme/shop/pull/9", ALICE)
        .await;
    app.slack
        .set_health("shop", 200, json!({ "version": format!("{evil} fix") }));
    tick(&app, Duration::from_secs(10)).await;
    tick(&app, Duration::from_secs(30 * 60)).await;
    let texts = room_texts(&app, &inc.room);
    assert!(
        texts.iter().any(|t| t.contains("Fix deployed")),
        "{texts:#?}"
    );
    assert!(texts.iter().any(|t| t.contains("fix held")), "{texts:#?}");
    let timeline = app.in_room(&inc, "timeline", ALICE).await.text();
    assert!(timeline.contains("Fix held"), "{timeline}");
    let kickoff = app.slack.message(&inc.room, &inc.kickoff_ts).unwrap();
    let everything = texts
        .iter()
        .chain([&timeline, &kickoff.to_string()])
        .cloned()
        .collect::<Vec<_>>();
    for text in &everything {
        assert!(
            !text.contains("<@U0BOB") && !text.contains("<!channel"),
            "a reported version became a mention: {text}"
        );
        assert!(!text.contains('\u{2063}'), "{text}");
    }
    let stored = app.timeline(1).await;
    assert!(
        stored.iter().all(|e| !e.text().contains("\u{2063}@U0BOB")),
        "{stored:#?}"
    );
}
