//! `/incident open` end to end, and everything that can go wrong on the way.

use std::time::Duration;

use crate::helpers::*;
use warroom::testkit::slack_emulator::SlackEmulator;

crate::on_both_backends!(
    open_happy_path,
    unsigned_stale_and_tampered_requests_are_rejected,
    malformed_commands_get_usage_and_change_nothing,
    channel_name_collision_gets_a_suffix,
    retried_war_room_creation_adopts_its_channel,
    retried_war_room_creation_adopts_only_its_own_channel,
    rate_limited_slack_delivers_each_message_once,
    failing_slack_recovers_and_everything_is_delivered,
    pending_jobs_complete_after_a_restart,
    repeated_trigger_opens_one_incident,
    list_and_help,
    health_and_readiness,
    ssl_check_gets_an_empty_200,
);

/// The war-room id of the n-th created channel.
fn war_room(slack: &SlackEmulator, n: usize) -> Option<(String, String)> {
    let created = slack.ok_calls("conversations.create");
    let c = created.get(n)?;
    Some((
        c.response["channel"]["id"].as_str()?.to_string(),
        c.response["channel"]["name"].as_str()?.to_string(),
    ))
}

fn has_buttons(call: &warroom::testkit::slack_emulator::RecordedCall) -> bool {
    call.params["blocks"].to_string().contains("\"button\"")
}

async fn open_happy_path(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = app
        .command_as("open P0 <!channel> checkout is down", GENERAL, ALICE, "r1")
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.text().contains("INC-1"), "{answer:?}");

    let (room, name) = app.eventually("the war room", |s| war_room(s, 0)).await;
    assert_eq!(name, "inc-1-channel-checkout-is-down");
    let kickoff = app
        .eventually("the kickoff", |s| {
            s.posts_to(&room).into_iter().find(has_buttons)
        })
        .await;
    let blocks = kickoff.params["blocks"].to_string();
    assert!(blocks.contains("INC-1"), "{blocks}");
    assert!(blocks.contains("Assess impact"), "{blocks}");
    assert!(blocks.contains("Acknowledge"), "{blocks}");
    assert!(blocks.contains("resolve within 2h"), "{blocks}");
    // One button per checklist item, plus Acknowledge.
    assert_eq!(blocks.matches("\"button\"").count(), 11, "{blocks}");

    let invited = app
        .eventually("the invitation", |s| {
            s.ok_calls("conversations.invite").into_iter().next()
        })
        .await;
    let users = invited.params["users"].to_string();
    assert!(users.contains(ALICE) && users.contains(PRIMARY), "{users}");
    app.eventually("the topic", |s| {
        s.topic(&room).filter(|t| t.contains("INC-1"))
    })
    .await;
    let announcement = app
        .eventually("the announcement", |s| {
            s.posts_to(ANNOUNCE).into_iter().next()
        })
        .await;
    assert!(announcement.params["text"]
        .as_str()
        .unwrap_or_default()
        .contains(&room));
    let reply = app
        .eventually("the reply with the link", |s| {
            s.responses("r1").into_iter().next()
        })
        .await;
    assert!(
        reply.params.to_string().contains(&room),
        "{:?}",
        reply.params
    );
    // The first escalation step (0s) pages the primary by DM.
    app.eventually("the page", |s| s.dm_posts(PRIMARY).into_iter().next())
        .await;

    // Nobody was notified by the title.
    assert!(!everything_sent(&app.slack).contains("<!channel>"));
    assert!(!answer.body.contains("<!channel>"));

    let jobs = app.settled().await;
    let incident = app.incident(1).await.expect("INC-1 stored");
    assert_eq!(incident.title, "<!channel> checkout is down");
    assert_eq!(incident.war_room.as_ref().map(|r| r.id.clone()), Some(room));
    assert_eq!(
        incident.kickoff_ref,
        kickoff.response["ts"].as_str().map(String::from)
    );
    assert_eq!(incident.checklist.len(), 10);
    let kinds: Vec<_> = app
        .timeline(1)
        .await
        .iter()
        .map(|e| e.kind.as_str())
        .collect();
    assert!(kinds.starts_with(&["declared"]), "{kinds:?}");
    assert!(
        kinds.contains(&"war_room_opened") && kinds.contains(&"paged"),
        "{kinds:?}"
    );

    let mut pending: Vec<_> = jobs
        .iter()
        .filter(|j| j.state == "pending")
        .map(|j| j.kind.as_str())
        .collect();
    pending.sort();
    // The 15m step, the status nudge and the two target warnings wait for their time.
    assert_eq!(
        pending,
        [
            "escalation_step",
            "status_reminder",
            "target_warning",
            "target_warning"
        ],
        "{jobs:#?}"
    );
    assert!(
        jobs.iter()
            .all(|j| j.state == "done" || j.state == "pending"),
        "{jobs:#?}"
    );
}

async fn unsigned_stale_and_tampered_requests_are_rejected(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = slash_body(
        "open P0 must not open",
        GENERAL,
        ALICE,
        &app.slack.response_url("x"),
        "t1",
    );
    let form = "application/x-www-form-urlencoded";
    assert_eq!(
        app.post_unsigned("/slack/commands", &body, form)
            .await
            .status,
        401
    );
    let wrong = app
        .post_signed_with("/slack/commands", &body, form, "not-the-secret", &now_ts())
        .await;
    assert_eq!(wrong.status, 401);
    let stale_ts = (chrono::Utc::now().timestamp() - 600).to_string();
    let stale = app
        .post_signed_with("/slack/commands", &body, form, SIGNING_SECRET, &stale_ts)
        .await;
    assert_eq!(stale.status, 401);
    // Signed, then changed.
    let ts = now_ts();
    let sig = slack_signature(SIGNING_SECRET, &ts, body.as_bytes());
    let tampered = reqwest::Client::new()
        .post(app.url("/slack/commands"))
        .header("content-type", form)
        .header("x-slack-request-timestamp", &ts)
        .header("x-slack-signature", sig)
        .body(body.replace("must", "shall"))
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status().as_u16(), 401);
    for path in ["/slack/events", "/slack/interactions"] {
        assert_eq!(
            app.post_unsigned(path, "{}", "application/json")
                .await
                .status,
            401
        );
    }
    // The control: the same request, signed, is accepted.
    assert_eq!(app.command("help").await.status, 200);
    assert_eq!(app.incident_count().await, 0);
    assert!(app.jobs().await.is_empty());
    assert!(app.slack.api_calls("conversations.create").is_empty());
}

async fn malformed_commands_get_usage_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    for (text, expect) in [
        ("open P0", "title"),
        ("open P7 db down", "P7"),
        ("open checkout is down", "checkout"),
        ("frobnicate", "frobnicate"),
        ("open P1 ", "title"),
    ] {
        let answer = app.command(text).await;
        assert_eq!(answer.status, 200, "{text}: {answer:?}");
        assert!(answer.text().contains(expect), "{text}: {answer:?}");
        assert!(answer.text().contains("Usage"), "{text}: {answer:?}");
    }
    let long_title = format!("open P2 {}", "x".repeat(201));
    assert!(app.command(&long_title).await.text().contains("too long"));

    // Not a slash command at all: 400 with a reason.
    let bad = app
        .post_signed(
            "/slack/commands",
            "text=open%20P0%20x",
            "application/x-www-form-urlencoded",
        )
        .await;
    assert_eq!(bad.status, 400, "{bad:?}");
    assert!(bad.body.contains("malformed"), "{bad:?}");
    let bad_json = app
        .post_signed(
            "/slack/interactions",
            "payload=%7Bnot%20json",
            "application/x-www-form-urlencoded",
        )
        .await;
    assert_eq!(bad_json.status, 400);
    let bad_event = app
        .post_signed("/slack/events", "{nope", "application/json")
        .await;
    assert_eq!(bad_event.status, 400);

    // Too big: refused before it is read.
    let huge = format!("text={}", "a".repeat(1024 * 1024 + 10));
    let too_big = app
        .post_signed(
            "/slack/commands",
            &huge,
            "application/x-www-form-urlencoded",
        )
        .await;
    assert_eq!(too_big.status, 413);

    assert_eq!(app.incident_count().await, 0);
    assert!(app.jobs().await.is_empty());
    assert!(app.slack.api_calls("conversations.create").is_empty());
}

async fn channel_name_collision_gets_a_suffix(backend: Backend) {
    let app = spawn_app(backend).await;
    app.slack.take_name("inc-1-db-down");
    app.slack.name_taken_next(2); // -2 is taken meanwhile too
    app.command("open P2 DB down").await;
    let (room, name) = app.eventually("the war room", |s| war_room(s, 0)).await;
    assert_eq!(name, "inc-1-db-down-3");
    let tried: Vec<String> = app
        .slack
        .api_calls("conversations.create")
        .iter()
        .filter_map(|c| c.param_str("name").map(String::from))
        .collect();
    assert_eq!(
        tried,
        ["inc-1-db-down", "inc-1-db-down-2", "inc-1-db-down-3"]
    );
    app.eventually("the kickoff", |s| {
        s.posts_to(&room).into_iter().find(has_buttons)
    })
    .await;
    let stored = app.incident(1).await.unwrap();
    assert_eq!(stored.war_room.unwrap().name, "inc-1-db-down-3");
}

/// Opens `title` with the answer to the `conversations.create` that succeeds lost (a crash
/// after Slack created the channel), lets the queue settle, checks that INC-1's war room is
/// the channel named `name` (the one created) and returns its id.
async fn open_with_lost_create(app: &TestApp, title: &str, name: &str) -> String {
    app.slack.succeed_then_fail_next("conversations.create", 1);
    app.command(&format!("open P2 {title}")).await;
    let room = app
        .eventually("the channel created", |s| s.channel_id_by_name(name))
        .await;
    // The kickoff, in whichever channel (pages go to DMs, `D…`).
    app.advance_until("the kickoff", Duration::from_millis(500), |s| {
        s.ok_calls("chat.postMessage").into_iter().find(|c| {
            has_buttons(c) && c.param_str("channel").is_some_and(|ch| ch.starts_with('C'))
        })
    })
    .await;
    app.settled().await;
    let stored = app
        .incident(1)
        .await
        .expect("INC-1")
        .war_room
        .expect("room");
    assert_eq!(
        (stored.id.as_str(), stored.name.as_str()),
        (room.as_str(), name)
    );
    room
}

async fn retried_war_room_creation_adopts_its_channel(backend: Backend) {
    let app = spawn_app(backend).await;
    // More channels than one page of conversations.list: the room is on the second page.
    for i in 0..205 {
        app.slack.add_channel(&format!("team-{i}"), ALICE);
    }
    let room = open_with_lost_create(&app, "DB down", "inc-1-db-down").await;

    assert_eq!(app.slack.channel_id_by_name("inc-1-db-down-2"), None);
    let created: Vec<_> = app
        .slack
        .api_calls("conversations.create")
        .iter()
        .map(|c| (c.status, c.error().unwrap_or_default().to_string()))
        .collect();
    assert_eq!(
        created,
        [(500, "fatal_error".into()), (200, "name_taken".into())]
    );
    // Found by listing public and private channels page by page; the bot is who created it.
    let listed = app.slack.api_calls("conversations.list");
    assert_eq!(listed.len(), 2, "two pages");
    assert!(listed[0]
        .param_str("types")
        .is_some_and(|t| t.contains("private_channel")));
    assert!(listed[1].param_str("cursor").is_some_and(|c| !c.is_empty()));
    assert_eq!(app.slack.ok_calls("auth.test").len(), 1);
    // Invitations, topic and kickoff went to the adopted channel, and it is opened once.
    let invites = app.slack.ok_calls("conversations.invite");
    assert!(!invites.is_empty());
    assert!(invites
        .iter()
        .all(|c| c.param_str("channel") == Some(room.as_str())));
    assert!(app.slack.topic(&room).is_some_and(|t| t.contains("INC-1")));
    assert_eq!(app.slack.posts_to(&room).len(), 1);
    let opened = app
        .timeline(1)
        .await
        .iter()
        .filter(|e| e.text().contains("War room #"))
        .count();
    assert_eq!(opened, 1);
}

async fn retried_war_room_creation_adopts_only_its_own_channel(backend: Backend) {
    let app = spawn_app(backend).await;
    // A person's channel with the plain name, and the bot's archived room of an earlier
    // incident 1 (a database started afresh) with the next one: neither is adopted.
    let human = app.slack.add_channel("inc-1-db-down", ALICE);
    let old = app.slack.add_channel(
        "inc-1-db-down-2",
        warroom::testkit::slack_emulator::BOT_USER_ID,
    );
    app.slack.archive_channel(&old);
    let room = open_with_lost_create(&app, "DB down", "inc-1-db-down-3").await;

    assert_eq!(app.slack.channel_id_by_name("inc-1-db-down-4"), None);
    assert_eq!(app.slack.posts_to(&room).len(), 1, "the kickoff");
    for other in [&human, &old] {
        assert!(app.slack.posts_to(other).is_empty());
        assert!(app
            .slack
            .api_calls("conversations.invite")
            .iter()
            .all(|c| c.param_str("channel") != Some(other.as_str())));
    }
    assert_eq!(app.slack.members(&human), [ALICE]);
}

async fn rate_limited_slack_delivers_each_message_once(backend: Backend) {
    let app = spawn_app(backend).await;
    app.slack.ratelimit_next("chat.postMessage", 3, 2);
    app.slack.ratelimit_next("conversations.create", 1, 1);
    app.command("open P1 payments slow").await;
    let (room, _) = app
        .advance_until("the war room", Duration::from_millis(500), |s| {
            war_room(s, 0)
        })
        .await;
    app.advance_until(
        "the kickoff and the announcement",
        Duration::from_millis(500),
        |s| (!s.posts_to(&room).is_empty() && !s.posts_to(ANNOUNCE).is_empty()).then_some(()),
    )
    .await;
    let jobs = app.settled().await;
    assert_eq!(app.slack.posts_to(&room).len(), 1, "kickoff posted once");
    assert_eq!(app.slack.posts_to(ANNOUNCE).len(), 1, "announced once");
    assert_eq!(app.slack.ok_calls("conversations.create").len(), 1);
    let limited = app
        .slack
        .api_calls("chat.postMessage")
        .iter()
        .filter(|c| c.status == 429)
        .count();
    assert_eq!(limited, 3);
    // Retry-After was honoured: the retried jobs carry the error and more than one attempt.
    assert!(jobs.iter().any(|j| j.attempts > 1));
}

async fn failing_slack_recovers_and_everything_is_delivered(backend: Backend) {
    let app = spawn_app(backend).await;
    app.slack.fail_until_cleared("conversations.create");
    app.slack.fail_next("chat.postMessage", 2);
    app.command("open P0 search down").await;
    app.advance_until("three failed attempts", Duration::from_secs(1), |s| {
        (s.api_calls("conversations.create").len() >= 3).then_some(())
    })
    .await;
    let jobs = app
        .jobs_until("the failure recorded", |jobs| {
            jobs.iter()
                .any(|j| j.kind == "create_war_room" && j.attempts >= 3 && j.last_error.is_some())
        })
        .await;
    let create = jobs.iter().find(|j| j.kind == "create_war_room").unwrap();
    assert!(
        create
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("500"),
        "{create:?}"
    );
    assert!(
        app.slack.posts_to(ANNOUNCE).is_empty(),
        "nothing that needs the room ran"
    );

    app.slack.clear_faults();
    let (room, _) = app
        .advance_until("the war room", Duration::from_secs(5), |s| war_room(s, 0))
        .await;
    app.advance_until("everything delivered", Duration::from_secs(5), |s| {
        (s.posts_to(&room).iter().any(has_buttons)
            && !s.posts_to(ANNOUNCE).is_empty()
            && !s.responses("r0").is_empty())
        .then_some(())
    })
    .await;
    assert_eq!(app.slack.ok_calls("conversations.create").len(), 1);
    assert_eq!(app.slack.posts_to(&room).len(), 1);
    assert_eq!(app.slack.posts_to(ANNOUNCE).len(), 1);
}

async fn pending_jobs_complete_after_a_restart(backend: Backend) {
    let mut spawn = Spawn::new(backend);
    spawn.workers = 0;
    let app = spawn_app_with(spawn).await;
    assert_eq!(app.command("open P1 queue backlog").await.status, 200);
    let jobs = app.jobs().await;
    assert!(
        jobs.len() >= 5 && jobs.iter().all(|j| j.state == "pending"),
        "{jobs:#?}"
    );
    assert!(app.slack.calls().is_empty(), "no worker, nothing sent");

    let app = app.restart(1).await;
    let (room, _) = app.eventually("the war room", |s| war_room(s, 0)).await;
    app.eventually("the kickoff", |s| {
        s.posts_to(&room).into_iter().find(has_buttons)
    })
    .await;
    app.eventually("the announcement", |s| {
        s.posts_to(ANNOUNCE).into_iter().next()
    })
    .await;
    let jobs = app.settled().await;
    assert!(jobs.iter().all(|j| j.state != "failed"), "{jobs:#?}");
}

async fn repeated_trigger_opens_one_incident(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = slash_body(
        "open P0 api down",
        GENERAL,
        ALICE,
        &app.slack.response_url("r9"),
        "same-trigger",
    );
    let form = "application/x-www-form-urlencoded";
    let first = app.post_signed("/slack/commands", &body, form).await;
    let second = app.post_signed("/slack/commands", &body, form).await;
    assert_eq!((first.status, second.status), (200, 200));
    assert!(first.text().contains("INC-1"));
    assert!(second.text().contains("already handled"), "{second:?}");
    assert_eq!(app.incident_count().await, 1);
    // A different trigger is a different request.
    app.command("open P0 api down").await;
    assert_eq!(app.incident_count().await, 2);
}

async fn list_and_help(backend: Backend) {
    let app = spawn_app(backend).await;
    assert!(app
        .command("list")
        .await
        .text()
        .contains("No open incidents"));
    app.command("open P2 reports are late").await;
    app.command("open P0 login fails").await;
    app.eventually("both war rooms", |s| war_room(s, 1)).await;
    app.clock.advance(Duration::from_secs(125 * 60));
    let list = app.command("list").await.text();
    assert!(list.contains("INC-1") && list.contains("INC-2"), "{list}");
    assert!(list.contains("P2") && list.contains("P0"), "{list}");
    assert!(list.contains("2h 5m"), "age shown: {list}");
    assert!(
        list.contains("investigating") && list.contains("no commander"),
        "{list}"
    );
    assert!(
        list.contains("past target"),
        "P0 target of 2h is missed: {list}"
    );
    assert!(
        list.find("INC-2") < list.find("INC-1"),
        "newest first: {list}"
    );
    let help = app.command("help").await.text();
    for word in ["open", "list", "status", "resolve", "P0"] {
        assert!(help.contains(word), "{word} in {help}");
    }
}

async fn health_and_readiness(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/healthz").await.status, 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200, "{ready:?}");
    app.command("help").await;
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.body.contains("warroom_http_request_seconds"),
        "{}",
        metrics.body
    );
    assert_eq!(app.get("/nope").await.status, 404);
}

/// Slack's periodic `ssl_check=1&token=…` POST (no `command`, and unsigned in the wild: Bolt
/// skips signature verification for it) gets 200 with an empty body and changes nothing.
async fn ssl_check_gets_an_empty_200(backend: Backend) {
    let app = spawn_app(backend).await;
    let form = "application/x-www-form-urlencoded";
    let body = "ssl_check=1&token=legacy-verification-token";
    for answer in [
        app.post_unsigned("/slack/commands", body, form).await,
        app.post_signed("/slack/commands", body, form).await,
    ] {
        assert_eq!(answer.status, 200, "{answer:?}");
        assert!(answer.body.is_empty(), "{answer:?}");
    }
    // Not a way around the signature: a command riding along is verified as usual.
    let smuggled = format!(
        "ssl_check=1&{}",
        slash_body(
            "open P0 smuggled",
            GENERAL,
            ALICE,
            &app.slack.response_url("x"),
            "t1"
        )
    );
    assert_eq!(
        app.post_unsigned("/slack/commands", &smuggled, form)
            .await
            .status,
        401
    );
    let other = app
        .post_unsigned("/slack/commands", "ssl_check=0&token=x", form)
        .await;
    assert_eq!(other.status, 401);
    assert_eq!(app.incident_count().await, 0);
    assert!(app.jobs().await.is_empty());
    assert!(app.slack.calls().is_empty(), "{:?}", app.slack.calls());
}
