//! The war room: commands, buttons, reactions, the modal, the timeline.

use std::time::Duration;

use crate::helpers::*;
use warroom::core::{Change, Signal, Status, TimelineKind};
use warroom::testkit::slack_emulator::{CallKind, SlackEmulator, StallPoint};

crate::on_both_backends!(
    war_room_commands_are_recorded_and_posted,
    war_room_commands_elsewhere_say_so,
    illegal_transitions_change_nothing,
    ack_stops_escalation,
    checklist_button_ticks_and_unticks_in_place,
    acknowledge_button_stops_paging,
    concurrent_checklist_presses_lose_nothing,
    open_modal_declares_an_incident,
    pushpin_reactions_keep_messages_in_the_timeline,
    malformed_interactions_and_events_are_refused,
    long_timelines_are_split,
    long_declarations_still_get_a_kickoff,
    long_resolution_summaries_fit_the_kickoff,
    very_long_timelines_arrive_whole,
    cut_texts_link_to_the_incident_page,
    a_retried_timeline_reply_resumes_where_it_stopped,
    user_text_never_becomes_a_mention,
    timelines_stored_as_slack_text_are_converted,
    long_resolutions_are_announced,
    retried_kickoff_is_posted_once,
    status_updates_whose_answer_is_lost_are_posted_once,
);

fn kinds(events: &[warroom::core::TimelineEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

async fn war_room_commands_are_recorded_and_posted(backend: Backend) {
    let app = spawn_app(backend).await;
    let inc = app.open("P0", "checkout is down").await;
    assert_eq!(inc.name, "inc-1-checkout-is-down");

    let answer = app
        .in_room(&inc, "status rolling back <b>v1.2.4</b> & watching", ALICE)
        .await;
    assert!(answer.text().contains("Status update posted"), "{answer:?}");
    let posted = app
        .eventually("the status in the war room", |s| {
            s.posts_to(&inc.room)
                .into_iter()
                .find(|c| c.params["text"].to_string().contains("Status update"))
        })
        .await;
    let text = posted.params["text"].as_str().unwrap();
    assert!(
        text.contains("rolling back &lt;b&gt;v1.2.4&lt;/b&gt; &amp; watching"),
        "{text}"
    );
    assert!(text.contains("<@U0ALICE>"), "{text}");
    app.eventually("the P0 status in the announce channel", |s| {
        s.posts_to(ANNOUNCE)
            .into_iter()
            .find(|c| c.params["text"].to_string().contains("rolling back"))
    })
    .await;

    app.in_room(&inc, "note the CDN looks fine", "U0BOB").await;
    let sev = app.in_room(&inc, "severity P1", ALICE).await;
    assert!(sev.text().contains("now P1"), "{sev:?}");
    app.eventually("the topic with P1", |s| {
        s.topic(&inc.room).filter(|t| t.contains("P1"))
    })
    .await;
    let assign = app
        .in_room(&inc, "assign commander <@U0BOB|bob>", ALICE)
        .await;
    assert!(assign.text().contains("<@U0BOB>"), "{assign:?}");
    app.eventually("bob invited", |s| {
        s.ok_calls("conversations.invite")
            .into_iter()
            .find(|c| c.params["users"].to_string().contains("U0BOB"))
    })
    .await;
    let state = app.in_room(&inc, "state identified", ALICE).await;
    assert!(state.text().contains("identified"), "{state:?}");
    app.settled().await;
    let kickoff = app
        .slack
        .message(&inc.room, &inc.kickoff_ts)
        .expect("kickoff");
    let blocks = kickoff["blocks"].to_string();
    assert!(blocks.contains("<@U0BOB>"), "commander shown: {blocks}");
    assert!(
        blocks.contains("identified") && blocks.contains("P1"),
        "{blocks}"
    );

    let incident = app.incident(1).await.unwrap();
    assert_eq!(incident.status, Status::Identified);
    assert_eq!(incident.severity.as_str(), "P1");
    assert_eq!(incident.commander().map(String::as_str), Some("U0BOB"));
    assert_eq!(
        incident.target_at - incident.declared_at,
        chrono::Duration::hours(4),
        "P1 target"
    );
    let events = app.timeline(1).await;
    for kind in [
        "status",
        "note",
        "severity_changed",
        "role_assigned",
        "state_changed",
    ] {
        assert!(
            kinds(&events).contains(&kind),
            "{kind} in {:?}",
            kinds(&events)
        );
    }
    let note = events
        .iter()
        .find(|e| e.kind == TimelineKind::Note)
        .unwrap();
    assert_eq!(note.actor.as_deref(), Some("U0BOB"));

    let timeline = app.in_room(&inc, "timeline", "U0CAROL").await.text();
    for expect in [
        "Timeline of INC-1",
        "UTC",
        "the CDN looks fine",
        "<@U0BOB>",
        "Severity raised",
        "Status investigating → identified",
    ] {
        let expect = expect.replace("raised", "lowered");
        assert!(timeline.contains(&expect), "{expect} in {timeline}");
    }
    assert!(!everything_sent(&app.slack).contains("<b>"));
}

async fn war_room_commands_elsewhere_say_so(backend: Backend) {
    let app = spawn_app(backend).await;
    for text in [
        "status all good",
        "note x",
        "severity P1",
        "state identified",
        "timeline",
        "assign ops <@U0BOB>",
    ] {
        let answer = app.command(text).await;
        assert_eq!(answer.status, 200);
        assert!(answer.text().contains("war room"), "{text}: {answer:?}");
    }
    assert!(app.command("ack").await.text().contains("No incident"));
    assert_eq!(app.incident_count().await, 0);
    assert!(app.jobs().await.is_empty());
}

async fn illegal_transitions_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let inc = app.open("P2", "reports late").await;
    assert!(app
        .in_room(&inc, "state monitoring", ALICE)
        .await
        .text()
        .contains("now monitoring"));
    let again = app.in_room(&inc, "state monitoring", ALICE).await.text();
    assert!(again.contains("already monitoring"), "{again}");
    assert!(app
        .in_room(&inc, "severity P2", ALICE)
        .await
        .text()
        .contains("already P2"));
    assert!(app
        .in_room(&inc, "ack", ALICE)
        .await
        .text()
        .contains("acknowledged"));
    let twice = app.in_room(&inc, "ack", "U0BOB").await.text();
    assert!(
        twice.contains("already acknowledged by <@U0ALICE>"),
        "{twice}"
    );

    // Resolved (resolution itself comes with its own command): nothing moves it back.
    {
        let mut conn = app.ctx.store.acquire().await.unwrap();
        warroom::store::apply_change(
            &mut conn,
            1,
            &Change::Status(Status::Resolved),
            app.clock.now(),
        )
        .await
        .unwrap();
    }
    let events_before = app.timeline(1).await.len();
    app.settled().await;
    let jobs_before = app.jobs().await.len();
    for text in [
        "state monitoring",
        "state identified",
        "severity P0",
        "status still broken",
    ] {
        let answer = app.in_room(&inc, text, ALICE).await.text();
        assert!(answer.contains("resolved"), "{text}: {answer}");
    }
    assert_eq!(app.timeline(1).await.len(), events_before);
    assert_eq!(app.jobs().await.len(), jobs_before);
    assert_eq!(app.incident(1).await.unwrap().status, Status::Resolved);
}

async fn ack_stops_escalation(backend: Backend) {
    let app = spawn_app(backend).await;
    let inc = app.open("P0", "api errors").await;
    app.eventually("the first page", |s| s.dm_posts(PRIMARY).into_iter().next())
        .await;
    let ack = app.in_room(&inc, "ack", PRIMARY).await;
    assert!(ack.text().contains("paging stopped"), "{ack:?}");
    let jobs = app.settled().await;
    let step = jobs
        .iter()
        .find(|j| j.kind == "escalation_step" && j.state != "done")
        .unwrap();
    assert_eq!(step.state, "cancelled");
    app.clock.advance(Duration::from_secs(20 * 60));
    app.ctx.wake.notify_waiters();
    // Nothing is due any more: the queue stays settled and the senior is never paged.
    app.settled().await;
    assert!(app.slack.dm_posts("U0SENIOR").is_empty());
    let kickoff = app.slack.message(&inc.room, &inc.kickoff_ts).unwrap();
    assert!(kickoff["blocks"]
        .to_string()
        .contains("Acknowledged by <@U0PRIMARY>"));
    assert!(kinds(&app.timeline(1).await).contains(&"acknowledged"));
}

async fn checklist_button_ticks_and_unticks_in_place(backend: Backend) {
    let app = spawn_app(backend).await;
    let inc = app.open("P1", "search slow").await;
    let answer = app
        .press(
            &inc.room,
            &inc.kickoff_ts,
            "checklist_toggle:1",
            "1:1",
            "U0BOB",
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    app.settled().await;
    let updates = app.slack.ok_calls("chat.update");
    assert!(!updates.is_empty(), "kickoff updated in place");
    assert!(updates
        .iter()
        .all(|u| u.param_str("ts") == Some(inc.kickoff_ts.as_str())));
    let blocks = app.slack.message(&inc.room, &inc.kickoff_ts).unwrap()["blocks"].to_string();
    assert!(
        blocks.contains(":white_check_mark: ~Assess impact and confirm severity~"),
        "{blocks}"
    );
    assert!(blocks.contains("done by <@U0BOB>"), "{blocks}");
    assert!(blocks.contains("(1/10 done)"), "{blocks}");
    let item = &app.incident(1).await.unwrap().checklist[0];
    assert_eq!(item.done.as_ref().map(|d| d.by.as_str()), Some("U0BOB"));

    app.press(
        &inc.room,
        &inc.kickoff_ts,
        "checklist_toggle:1",
        "1:1",
        ALICE,
    )
    .await;
    app.settled().await;
    let blocks = app.slack.message(&inc.room, &inc.kickoff_ts).unwrap()["blocks"].to_string();
    assert!(blocks.contains("(0/10 done)"), "{blocks}");
    assert!(app.incident(1).await.unwrap().checklist[0].done.is_none());
    let ticks: Vec<_> = app
        .timeline(1)
        .await
        .into_iter()
        .filter(|e| e.kind == TimelineKind::ChecklistItem)
        .collect();
    assert_eq!(ticks.len(), 2);
    assert_eq!(ticks[0].actor.as_deref(), Some("U0BOB"));
    assert!(ticks[1].text().contains("unticked"));
}

async fn acknowledge_button_stops_paging(backend: Backend) {
    let app = spawn_app(backend).await;
    let inc = app.open("P0", "db failover").await;
    // The page's DM carries the same button.
    let page = app
        .eventually("the page", |s| s.dm_posts(PRIMARY).into_iter().next())
        .await;
    let page_ts = page.response["ts"].as_str().unwrap().to_string();
    let dm = page.param_str("channel").unwrap().to_string();
    assert_eq!(
        app.press(&dm, &page_ts, "acknowledge", "1", PRIMARY)
            .await
            .status,
        200
    );
    app.settled().await;
    let incident = app.incident(1).await.unwrap();
    assert_eq!(
        incident.acknowledged.map(|a| a.by),
        Some(PRIMARY.to_string())
    );
    let blocks = app.slack.message(&inc.room, &inc.kickoff_ts).unwrap()["blocks"].to_string();
    assert!(blocks.contains("Acknowledged by <@U0PRIMARY>"), "{blocks}");
    // A second press is refused politely, through the response URL.
    app.press(&inc.room, &inc.kickoff_ts, "acknowledge", "1", ALICE)
        .await;
    let reply = app
        .eventually("the refusal", |s| s.responses("press").into_iter().next())
        .await;
    assert!(reply.params["text"]
        .to_string()
        .contains("already acknowledged"));
}

async fn concurrent_checklist_presses_lose_nothing(backend: Backend) {
    let app = std::sync::Arc::new(spawn_app(backend).await);
    let inc = app.open("P0", "everything is on fire").await;
    let mut presses = Vec::new();
    for i in 0..50usize {
        let app = app.clone();
        let (room, ts) = (inc.room.clone(), inc.kickoff_ts.clone());
        let position = i % 10 + 1;
        let user = format!("U0USER{}", i % 7);
        // Items 1-10 are pressed 5 times each, except that item 1..=3 get one more below.
        presses.push(tokio::spawn(async move {
            app.press(
                &room,
                &ts,
                &format!("checklist_toggle:{position}"),
                &format!("1:{position}"),
                &user,
            )
            .await
            .status
        }));
    }
    for i in 0..3 {
        let app = app.clone();
        let (room, ts) = (inc.room.clone(), inc.kickoff_ts.clone());
        presses.push(tokio::spawn(async move {
            let pos = i + 1;
            app.press(
                &room,
                &ts,
                &format!("checklist_toggle:{pos}"),
                &format!("1:{pos}"),
                ALICE,
            )
            .await
            .status
        }));
    }
    for p in presses {
        assert_eq!(p.await.unwrap(), 200);
    }
    app.settled().await;
    let incident = app.incident(1).await.unwrap();
    let done: Vec<bool> = incident
        .checklist
        .iter()
        .map(|i| i.done.is_some())
        .collect();
    // 5 presses (odd) leave an item ticked; 6 presses leave it unticked.
    let expected: Vec<bool> = (1..=10).map(|p| p > 3).collect();
    assert_eq!(done, expected);
    let ticks = app
        .timeline(1)
        .await
        .into_iter()
        .filter(|e| e.kind == TimelineKind::ChecklistItem)
        .count();
    assert_eq!(ticks, 53, "every press is on the timeline");
    // The message Slack shows now agrees with the database, item by item.
    let shown = app.slack.message(&inc.room, &inc.kickoff_ts).unwrap();
    let blocks = shown["blocks"].as_array().unwrap();
    for item in &incident.checklist {
        let block = blocks
            .iter()
            .find(|b| b["block_id"] == format!("checklist-{}", item.position))
            .unwrap();
        let text = block["text"]["text"].as_str().unwrap();
        assert_eq!(
            text.starts_with(":white_check_mark:"),
            item.done.is_some(),
            "{text}"
        );
    }
    assert!(shown["blocks"].to_string().contains("(7/10 done)"));
}

async fn open_modal_declares_an_incident(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = app.command("open").await;
    assert_eq!(answer.status, 200);
    let opened = app
        .eventually("views.open", |s| {
            s.ok_calls("views.open").into_iter().next()
        })
        .await;
    let view = &opened.params["view"];
    assert_eq!(view["callback_id"], "open_incident");
    assert_eq!(view["private_metadata"], GENERAL);

    let submission = |title: &str, severity: Option<&str>| {
        let severity = match severity {
            Some(s) => {
                serde_json::json!({ "type": "static_select", "selected_option": { "value": s } })
            }
            None => serde_json::json!({ "type": "static_select", "selected_option": null }),
        };
        serde_json::json!({
            "type": "view_submission",
            "user": { "id": ALICE },
            "view": {
                "id": format!("V{}", title.len()),
                "callback_id": "open_incident",
                "private_metadata": GENERAL,
                "state": { "values": {
                    "title": { "title": { "type": "plain_text_input", "value": title } },
                    "severity": { "severity": severity },
                    "description": { "description": { "type": "plain_text_input", "value": "502s since 14:02" } }
                } }
            }
        })
    };
    let bad = app.interaction(&submission("   ", None)).await;
    assert_eq!(bad.status, 200);
    assert_eq!(bad.json()["response_action"], "errors");
    assert!(
        bad.json()["errors"]["title"].is_string() && bad.json()["errors"]["severity"].is_string()
    );
    assert_eq!(app.incident_count().await, 0);

    let good = app
        .interaction(&submission("Payments failing", Some("P1")))
        .await;
    assert_eq!(good.status, 200, "{good:?}");
    assert!(
        good.body.is_empty() || good.json()["response_action"].is_null(),
        "{good:?}"
    );
    let incident = app.incident(1).await.expect("declared from the modal");
    assert_eq!(incident.title, "Payments failing");
    assert_eq!(incident.description, "502s since 14:02");
    assert_eq!(incident.severity.as_str(), "P1");
    let ephemeral = app
        .eventually("the link, ephemeral", |s| {
            s.ok_calls("chat.postEphemeral").into_iter().next()
        })
        .await;
    assert_eq!(ephemeral.param_str("user"), Some(ALICE));
    assert_eq!(ephemeral.param_str("channel"), Some(GENERAL));
    assert!(ephemeral.params["text"].to_string().contains("INC-1"));
}

async fn pushpin_reactions_keep_messages_in_the_timeline(backend: Backend) {
    let app = spawn_app(backend).await;
    let inc = app.open("P1", "checkout errors").await;
    let ts = "1700000100.000100";
    app.slack.register_message(
        &inc.room,
        ts,
        "U0BOB",
        "error rate 45% on /checkout <!here>",
    );
    let added = reaction("reaction_added", ALICE, "pushpin", &inc.room, ts);
    assert_eq!(app.event(added.clone(), "Ev1", None).await.status, 200);
    // Slack retries the same event: nothing is added twice.
    assert_eq!(app.event(added.clone(), "Ev1", Some(1)).await.status, 200);
    assert_eq!(app.event(added, "Ev1", Some(2)).await.status, 200);
    // Someone else pins the same message: still one entry.
    app.event(
        reaction("reaction_added", "U0CAROL", "pushpin", &inc.room, ts),
        "Ev2",
        None,
    )
    .await;
    app.settled().await;
    let pins: Vec<_> = app
        .timeline(1)
        .await
        .into_iter()
        .filter(|e| e.kind == TimelineKind::Pinned)
        .collect();
    assert_eq!(pins.len(), 1, "{pins:?}");
    assert_eq!(pins[0].actor.as_deref(), Some(ALICE));
    assert!(
        pins[0].detail.people().any(|p| p == "U0BOB"),
        "{:?}",
        pins[0].detail
    );
    assert!(
        pins[0].text().contains("error rate 45% on /checkout"),
        "{}",
        pins[0].text()
    );
    assert!(
        pins[0].text().contains("https://acme.slack.com/archives/"),
        "{}",
        pins[0].text()
    );
    assert_eq!(
        app.slack.ok_calls("conversations.history").len(),
        1,
        "fetched once"
    );
    let timeline = app.in_room(&inc, "timeline", ALICE).await.text();
    assert!(
        timeline.contains("error rate 45%") && !timeline.contains("<!here>"),
        "{timeline}"
    );

    // Ignored: other emoji, other channels, other event types.
    let before = app.timeline(1).await.len();
    app.event(
        reaction("reaction_added", ALICE, "eyes", &inc.room, ts),
        "Ev3",
        None,
    )
    .await;
    app.event(
        reaction("reaction_added", ALICE, "pushpin", GENERAL, ts),
        "Ev4",
        None,
    )
    .await;
    let other = serde_json::json!({ "type": "app_mention", "user": ALICE, "text": "hi", "channel": GENERAL });
    assert_eq!(app.event(other, "Ev5", None).await.status, 200);
    assert_eq!(app.timeline(1).await.len(), before);

    // Removing the reaction removes the entry.
    app.event(
        reaction("reaction_removed", ALICE, "pushpin", &inc.room, ts),
        "Ev6",
        None,
    )
    .await;
    assert!(!kinds(&app.timeline(1).await).contains(&"pinned"));

    let challenge = app
        .post_signed(
            "/slack/events",
            r#"{"type":"url_verification","challenge":"abc123"}"#,
            "application/json",
        )
        .await;
    assert_eq!(challenge.json()["challenge"], "abc123");
}

async fn malformed_interactions_and_events_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let inc = app.open("P2", "cache misses").await;
    app.settled().await;
    let events_before = app.timeline(1).await.len();
    let jobs_before = app.jobs().await.len();
    let form = "application/x-www-form-urlencoded";
    for body in [
        "",
        "nopayload=1",
        "payload=%7B%22type%22%3A%22block_actions%22%7D",
        "payload=[1,2",
    ] {
        let answer = app.post_signed("/slack/interactions", body, form).await;
        assert_eq!(answer.status, 400, "{body}: {answer:?}");
    }
    let bad_value = app
        .press(
            &inc.room,
            &inc.kickoff_ts,
            "checklist_toggle:1",
            "x:y",
            ALICE,
        )
        .await;
    assert_eq!(bad_value.status, 400);
    let no_item = app
        .press(
            &inc.room,
            &inc.kickoff_ts,
            "checklist_toggle:99",
            "1:99",
            ALICE,
        )
        .await;
    assert_eq!(
        no_item.status, 200,
        "a stale button is answered, and refused politely"
    );
    let unknown = serde_json::json!({ "type": "shortcut", "user": { "id": ALICE } });
    assert_eq!(app.interaction(&unknown).await.status, 200);
    for body in [
        "",
        "[]",
        r#"{"type":"event_callback"}"#,
        r#"{"type":"event_callback","event":{"type":"reaction_added"}}"#,
    ] {
        let answer = app
            .post_signed("/slack/events", body, "application/json")
            .await;
        assert_eq!(answer.status, 400, "{body}: {answer:?}");
    }
    assert_eq!(app.timeline(1).await.len(), events_before);
    let jobs = app.jobs().await;
    assert!(
        jobs.len() <= jobs_before + 1
            && jobs
                .iter()
                .skip(jobs_before)
                .all(|j| j.kind == "slack_reply"),
        "only the polite refusal was queued: {jobs:#?}"
    );
}

async fn long_timelines_are_split(backend: Backend) {
    let app = spawn_app(backend).await;
    let inc = app.open("P3", "deadline blocker").await;
    for i in 0..40 {
        let note = format!("note {i}: {}", "details ".repeat(20));
        app.in_room(&inc, &format!("note {note}"), ALICE).await;
    }
    let first = app.in_room(&inc, "timeline", ALICE).await.text();
    assert!(
        first.len() <= 4000 && first.contains("Timeline of INC-1"),
        "{}",
        first.len()
    );
    app.settled().await;
    let rest: Vec<String> = app
        .slack
        .responses("room")
        .iter()
        .map(|r| r.params["text"].as_str().unwrap_or_default().to_string())
        .filter(|t| t.contains("note "))
        .collect();
    assert!(!rest.is_empty(), "the rest follows");
    let all = format!("{first}\n{}", rest.join("\n"));
    for i in 0..40 {
        assert!(all.contains(&format!("note {i}:")), "note {i} missing");
    }
    assert!(rest.iter().all(|t| t.len() <= 4000));
}

/// Every call that carries a message or a topic was accepted: the emulator refuses what Slack
/// refuses (`invalid_blocks`, `msg_too_long`, `too_long`, a used-up `response_url`).
fn nothing_refused(slack: &SlackEmulator) {
    const SENDS: [&str; 5] = [
        "chat.postMessage",
        "chat.update",
        "chat.postEphemeral",
        "conversations.setTopic",
        "views.open",
    ];
    let refused: Vec<String> = slack
        .calls()
        .iter()
        .filter(|c| {
            c.kind == CallKind::Response
                || (c.kind == CallKind::Api && SENDS.contains(&c.method.as_str()))
        })
        .filter(|c| !c.ok())
        .map(|c| format!("{} {} {}", c.method, c.status, c.response))
        .collect();
    assert!(refused.is_empty(), "Slack refused: {refused:#?}");
}

/// `text` was cut to fit, and ends with an ellipsis and a link to incident `n`'s web page (with
/// the token that opens it), within the limit.
fn ends_with_page_link(app: &TestApp, text: &str, n: i64) {
    let path = format!("/incidents/{n}");
    let link = format!(
        "… <https://warroom.acme.test{path}?token={}|",
        app.ctx.links.token(&path)
    );
    let at = text
        .rfind(&link)
        .unwrap_or_else(|| panic!("no ellipsis and page link at the end of: …{}", tail(text)));
    let label = &text[at + link.len()..];
    assert!(
        label.len() > 1
            && label.ends_with('>')
            && !label[..label.len() - 1].contains(['<', '>', '|', '\n']),
        "the link ends the text: …{}",
        tail(text)
    );
    well_formed(text);
}

fn tail(text: &str) -> String {
    let n = text.chars().count();
    text.chars().skip(n.saturating_sub(200)).collect()
}

/// `text` mrkdwn cut by warroom must not end inside an escape or a link.
fn well_formed(text: &str) {
    for (i, _) in text.match_indices('<') {
        let rest = &text[i + 1..];
        let close = rest.find('>').unwrap_or(usize::MAX);
        let next = rest.find('<').unwrap_or(usize::MAX);
        assert!(close < next, "an unclosed <… at {i} in {text}");
    }
    for (i, _) in text.match_indices('&') {
        let rest = &text[i..];
        assert!(
            ["&amp;", "&lt;", "&gt;"]
                .iter()
                .any(|e| rest.starts_with(e)),
            "a broken escape at {i}: {}",
            &rest[..rest.len().min(12)]
        );
    }
}

async fn long_declarations_still_get_a_kickoff(backend: Backend) {
    let app = spawn_app(backend).await;
    // The form allows 3,000 characters; escaping makes them longer still.
    let description: String = "502s & <timeouts> from the edge; "
        .repeat(100)
        .chars()
        .take(3000)
        .collect();
    let title: String = "checkout & payments <down> "
        .repeat(8)
        .chars()
        .take(200)
        .collect();
    let submission = serde_json::json!({
        "type": "view_submission",
        "user": { "id": ALICE },
        "view": {
            "id": "VLONG",
            "callback_id": "open_incident",
            "private_metadata": GENERAL,
            "state": { "values": {
                "title": { "title": { "type": "plain_text_input", "value": title } },
                "severity": { "severity": { "type": "static_select", "selected_option": { "value": "P1" } } },
                "description": { "description": { "type": "plain_text_input", "value": description } }
            } }
        }
    });
    assert_eq!(app.interaction(&submission).await.status, 200);
    let kickoff = app
        .eventually("the kickoff with its buttons", |s| {
            s.ok_calls("chat.postMessage").into_iter().find(|c| {
                let blocks = c.params["blocks"].to_string();
                blocks.contains("\"acknowledge\"") && blocks.contains("checklist-1")
            })
        })
        .await;
    app.settled().await;
    nothing_refused(&app.slack);
    let blocks = kickoff.params["blocks"].as_array().expect("blocks");
    let texts: Vec<&str> = blocks
        .iter()
        .filter_map(|b| b["text"]["text"].as_str())
        .collect();
    let quoted = texts
        .iter()
        .find(|t| t.contains("502s &amp; &lt;timeouts&gt;"))
        .unwrap_or_else(|| panic!("the description is quoted: {texts:#?}"));
    assert!(quoted.contains('…'), "cut with an ellipsis");
    ends_with_page_link(&app, quoted, 1);
    texts.iter().for_each(|t| well_formed(t));
    let topic = app
        .slack
        .topic(kickoff.params["channel"].as_str().unwrap_or_default());
    assert!(topic.is_some(), "the topic was set");
}

async fn long_resolution_summaries_fit_the_kickoff(backend: Backend) {
    let app = spawn_app(backend).await;
    let inc = app.open("P2", "search is slow").await;
    let summary: String = "restarted the <indexer> & cleared the cache; "
        .repeat(80)
        .chars()
        .take(2990)
        .collect();
    let answer = app
        .in_room(&inc, &format!("resolve {summary}"), ALICE)
        .await;
    assert!(answer.text().contains("resolved"), "{answer:?}");
    let updated = app
        .eventually("the kickoff says resolved", |s| {
            s.ok_calls("chat.update")
                .into_iter()
                .find(|c| c.params["blocks"].to_string().contains("*Resolved* by"))
        })
        .await;
    app.settled().await;
    nothing_refused(&app.slack);
    let resolved = updated.params["blocks"]
        .as_array()
        .expect("blocks")
        .iter()
        .filter_map(|b| b["text"]["text"].as_str())
        .find(|t| t.contains("*Resolved* by"))
        .expect("the resolved line")
        .to_string();
    assert!(
        resolved.contains("<@U0ALICE>") && resolved.contains('…'),
        "{resolved}"
    );
    ends_with_page_link(&app, &resolved, 1);
    well_formed(&resolved);
}

async fn very_long_timelines_arrive_whole(backend: Backend) {
    let app = spawn_app(backend).await;
    let inc = app.open("P3", "deadline blocker").await;
    for i in 0..45 {
        let note = format!("note {i}: {}", "a & b <c> ".repeat(100));
        app.in_room(&inc, &format!("note {note}"), ALICE).await;
    }
    let first = app.in_room(&inc, "timeline", ALICE).await.text();
    assert!(first.contains("Timeline of INC-1"), "{first}");
    let found = |s: &SlackEmulator| -> Vec<String> {
        let replies = s.responses("room").into_iter().filter(|c| c.ok());
        let ephemerals = s.ok_calls("chat.postEphemeral").into_iter();
        replies
            .chain(ephemerals)
            .map(|c| c.params["text"].as_str().unwrap_or_default().to_string())
            .filter(|t| t.contains("note "))
            .collect()
    };
    let rest = app
        .eventually("the whole timeline", |s| {
            let rest = found(s);
            rest.iter().any(|t| t.contains("note 44:")).then_some(rest)
        })
        .await;
    app.settled().await;
    nothing_refused(&app.slack);
    assert!(
        rest.len() >= 6,
        "more than one response_url takes: {}",
        rest.len()
    );
    let all = format!("{first}\n{}", found(&app.slack).join("\n"));
    for i in 0..45 {
        assert_eq!(
            all.matches(&format!("note {i}:")).count(),
            1,
            "note {i} arrives once"
        );
    }
    for text in std::iter::once(&first).chain(&rest) {
        assert!(text.chars().count() <= 4000, "{}", text.chars().count());
        well_formed(text);
    }
}

/// `/incident timeline` follow-ups to a `response_url`: the process loses the second post's
/// answer (Slack took it) and the job is run again. It goes on after what was delivered — the
/// first part is never posted again — and never posts more than Slack's 5 to one
/// `response_url`; the whole timeline still arrives.
async fn a_retried_timeline_reply_resumes_where_it_stopped(backend: Backend) {
    let app = spawn_app(backend).await;
    let inc = app.open("P3", "deadline blocker").await;
    for i in 0..6 {
        let note = format!("note {i}: {}", "a & b <c> ".repeat(100));
        app.in_room(&inc, &format!("note {note}"), ALICE).await;
    }
    app.settled().await;
    let url = app.slack.response_url("tl");
    let target = url
        .strip_prefix(&format!("{}/", app.slack.base_url()))
        .expect("a response_url of the emulator")
        .to_string();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = seen.clone();
    app.slack
        .stall_next_where(&target, StallPoint::BeforeAnswering, move |_| {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1
        });
    let body = slash_body("timeline", &inc.room, ALICE, &url, "trig-tl");
    let first = app
        .post_signed(
            "/slack/commands",
            &body,
            "application/x-www-form-urlencoded",
        )
        .await
        .text();
    assert!(first.contains("Timeline of INC-1"), "{first}");
    assert!(
        app.slack.wait_stalled(&target, PATIENCE).await,
        "the second follow-up is in flight"
    );
    // The worker that sent it is gone (its lease ran out): the job is run again.
    let deadline = std::time::Instant::now() + PATIENCE;
    // Polls until the deadline (never a fixed wait).
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    loop {
        poll.tick().await;
        let mut conn = app.ctx.store.acquire().await.expect("db");
        sqlx::query("UPDATE jobs SET lease_until = 0 WHERE state = 'running'")
            .execute(&mut *conn)
            .await
            .expect("expire the lease");
        drop(conn);
        app.ctx.wake.notify_waiters();
        let jobs = app.jobs().await;
        if jobs
            .iter()
            .any(|j| j.kind == "slack_reply" && j.attempts >= 2)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not retried: {jobs:#?}"
        );
    }
    let texts = |s: &SlackEmulator| -> Vec<String> {
        let replies = s.responses("tl").into_iter().filter(|c| c.ok());
        let ephemerals = s.ok_calls("chat.postEphemeral").into_iter();
        replies
            .chain(ephemerals)
            .map(|c| c.params["text"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    app.eventually("the whole timeline", |s| {
        let all = format!("{first}\n{}", texts(s).join("\n"));
        (0..6)
            .all(|i| all.contains(&format!("note {i}:")))
            .then_some(())
    })
    .await;
    app.slack.release_stalled();
    app.settled().await;
    nothing_refused(&app.slack);
    let posts = app.slack.responses("tl");
    assert!(
        posts.len() >= 3,
        "the follow-ups went to the response_url: {}",
        posts.len()
    );
    assert!(
        posts.len() <= 5,
        "{} posts to one response_url",
        posts.len()
    );
    let delivered = texts(&app.slack);
    let first_part = &posts[0].params["text"];
    assert_eq!(
        delivered
            .iter()
            .filter(|t| Some(t.as_str()) == first_part.as_str())
            .count(),
        1,
        "the part delivered before the retry is not sent again"
    );
}

/// A status update, its announcement and a timeline line cut to fit end with a link to the
/// incident's page, where the whole text is.
async fn cut_texts_link_to_the_incident_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let inc = app.open("P1", "payments down").await;
    let long: String = "retrying & <queue> "
        .repeat(200)
        .chars()
        .take(3000)
        .collect();
    app.in_room(&inc, &format!("status {long}"), ALICE).await;
    app.in_room(&inc, &format!("note {long}"), ALICE).await;
    app.settled().await;
    let in_room = app
        .slack
        .posts_to(&inc.room)
        .into_iter()
        .find(|c| c.params["text"].to_string().contains("Status update"))
        .expect("the status update");
    ends_with_page_link(&app, in_room.param_str("text").unwrap_or_default(), 1);
    let announced = app
        .slack
        .posts_to(ANNOUNCE)
        .into_iter()
        .find(|c| c.params["text"].to_string().contains("update:"))
        .expect("the status announcement");
    let announced = announced.param_str("text").unwrap_or_default();
    let (update, footer) = announced.rsplit_once('\n').unwrap_or_default();
    assert!(footer.contains("war room <#"), "the footer stays: {footer}");
    ends_with_page_link(&app, update, 1);
    let first = app.in_room(&inc, "timeline", ALICE).await.text();
    let all = app
        .eventually("the timeline", |s| {
            let rest: Vec<String> = s
                .responses("room")
                .into_iter()
                .chain(s.ok_calls("chat.postEphemeral"))
                .filter_map(|c| c.param_str("text").map(str::to_string))
                .filter(|t| t.contains("Timeline") || t.contains("retrying"))
                .collect();
            let all = format!("{first}\n{}", rest.join("\n"));
            (all.matches("retrying &amp;").count() >= 2).then_some(all)
        })
        .await;
    let cut: Vec<&str> = all
        .lines()
        .filter(|l| l.contains("retrying &amp;") && l.chars().count() > 3000)
        .collect();
    assert!(!cut.is_empty(), "long timeline lines: {all}");
    for line in cut {
        ends_with_page_link(&app, line, 1);
    }
    nothing_refused(&app.slack);
}

async fn user_text_never_becomes_a_mention(backend: Backend) {
    let app = spawn_app(backend).await;
    let inc = app.open("P1", "db <@U0EVE> down @U0EVE").await;
    app.in_room(&inc, "status paging @U0EVE and <@U0EVE|eve> now", ALICE)
        .await;
    app.in_room(&inc, "note asked @U0EVE & <@U0EVE>", ALICE)
        .await;
    app.in_room(&inc, "assign commander <@U0BOB|bob>", ALICE)
        .await;
    let ts = "1700000200.000100";
    app.slack
        .register_message(&inc.room, ts, "U0BOB", "cc @U0EVE <@U0EVE> please");
    app.event(
        reaction("reaction_added", ALICE, "pushpin", &inc.room, ts),
        "EvMention",
        None,
    )
    .await;
    app.settled().await;
    let timeline = app.in_room(&inc, "timeline", ALICE).await.text();
    assert!(
        timeline.contains("cc @U0EVE"),
        "the pinned text is in: {timeline}"
    );
    // warroom's own names are mentions: the declarer, the actor, the new commander.
    assert!(timeline.contains("<@U0ALICE>"), "{timeline}");
    assert!(
        timeline.contains("<@U0BOB> assigned as incident commander"),
        "{timeline}"
    );
    // What people typed never is.
    assert!(!timeline.contains("<@U0EVE"), "{timeline}");
    assert!(
        !everything_sent(&app.slack).contains("<@U0EVE"),
        "a typed id became a mention somewhere"
    );
}

/// Rows stored before timelines were structured (Slack text: emoji, U+2063 mention marks)
/// read back as data, are converted when the store migrates, and look the same in Slack; a
/// detail this version cannot read, or an unknown kind, never breaks the timeline.
async fn timelines_stored_as_slack_text_are_converted(backend: Backend) {
    let app = spawn_app(backend).await;
    let inc = app.open("P2", "db slow").await;
    app.settled().await;
    let at = app.clock.now().timestamp_millis();
    for (kind, text, detail) in [
        (
            "health",
            ":warning: shop health check failing (HTTP 503)",
            None,
        ),
        ("role_assigned", "\u{2063}@U0BOB assigned as scribe", None),
        ("note", "kept as it was", Some("{not json")),
        ("from_a_later_version", "something new", None),
    ] {
        sqlx::query(
            "INSERT INTO timeline_events (incident, at, actor, kind, text, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(1_i64)
        .bind(at)
        .bind(None::<String>)
        .bind(kind)
        .bind(text)
        .bind(detail)
        .execute(&mut *app.ctx.store.acquire().await.unwrap())
        .await
        .unwrap();
    }
    let read = |events: Vec<warroom::core::TimelineEvent>| {
        events
            .into_iter()
            .skip_while(|e| !e.text().contains("health check failing"))
            .collect::<Vec<_>>()
    };
    let legacy = read(app.timeline(1).await);
    app.ctx.store.migrate().await.unwrap();
    let converted = read(app.timeline(1).await);
    assert_eq!(legacy, converted);
    assert_eq!(converted.len(), 4, "{converted:#?}");
    assert_eq!(converted[0].detail.signal, Some(Signal::Failing));
    assert_eq!(converted[0].text(), "shop health check failing (HTTP 503)");
    assert_eq!(converted[1].detail.people().collect::<Vec<_>>(), ["U0BOB"]);
    assert_eq!(converted[2].text(), "kept as it was");
    assert_eq!(converted[3].kind, TimelineKind::Note);
    let unconverted: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM timeline_events WHERE detail IS NULL")
            .fetch_one(&mut *app.ctx.store.acquire().await.unwrap())
            .await
            .unwrap();
    assert_eq!(unconverted, 0);
    let texts: Vec<String> = sqlx::query_scalar("SELECT text FROM timeline_events")
        .fetch_all(&mut *app.ctx.store.acquire().await.unwrap())
        .await
        .unwrap();
    assert!(
        texts
            .iter()
            .all(|t| !t.contains('\u{2063}') && !t.starts_with(':')),
        "{texts:#?}"
    );
    let timeline = app.in_room(&inc, "timeline", ALICE).await.text();
    for line in [
        "· :warning: shop health check failing (HTTP 503)",
        "· <@U0BOB> assigned as scribe",
        "· kept as it was",
    ] {
        assert!(timeline.contains(line), "{line} in {timeline}");
    }
    let page = app.get("/incidents/1").await;
    assert!(
        page.body.contains("U0BOB assigned as scribe"),
        "{}",
        page.body
    );
    assert!(!page.body.contains('\u{2063}'), "{}", page.body);
}

/// A resolution form filled to Slack's 3,000 characters per field, in text that escaping makes
/// longer (`&` becomes `&amp;`): the internal announcement quoting it still gets through.
async fn long_resolutions_are_announced(backend: Backend) {
    let app = spawn_app(backend).await;
    let _inc = app.open("P2", "R&D builds fail").await;
    let field: String = "R&D<>".repeat(600);
    let text = |v: &str| serde_json::json!({ "type": "plain_text_input", "value": v });
    let lines: String = (0..300)
        .map(|i| format!("- fix #{i} & <retest>\n"))
        .collect();
    let submission = serde_json::json!({
        "type": "view_submission",
        "user": { "id": ALICE },
        "view": {
            "id": "VRESOLVELONG",
            "callback_id": "resolve_incident",
            "private_metadata": "1",
            "state": { "values": {
                "summary": { "summary": text(&field) },
                "impact": { "impact": text(&field) },
                "root_cause": { "root_cause": text(&field) },
                "fix": { "fix": text(&field) },
                "follow_ups": { "follow_ups": text(&lines) },
                "customer_facing": { "customer_facing": { "type": "radio_buttons", "selected_option": { "value": "no" } } }
            } }
        }
    });
    assert_eq!(app.interaction(&submission).await.status, 200);
    let announced = app
        .eventually("the internal announcement", |s| {
            s.posts_to(ANNOUNCE)
                .into_iter()
                .find(|c| c.params["text"].to_string().contains("R&amp;D&lt;&gt;"))
        })
        .await;
    app.settled().await;
    nothing_refused(&app.slack);
    let text = announced.params["text"].as_str().unwrap_or_default();
    assert!(text.chars().count() <= 40_000, "{}", text.chars().count());
    well_formed(text);
}

async fn retried_kickoff_is_posted_once(backend: Backend) {
    let mut spawn = Spawn::new(backend);
    // Without an announce channel, a P3's only chat.postMessage is the kickoff (a P3 pages
    // nobody).
    spawn.config = BASE_CONFIG.replace(r#"announce_channel = "C0ANNOUNCE""#, "");
    let app = spawn_app_with(spawn).await;
    app.slack.succeed_then_fail_next("chat.postMessage", 1);
    app.command("open P3 search is slow").await;
    let room = app
        .eventually("the war room", |s| {
            s.channel_id_by_name("inc-1-search-is-slow")
        })
        .await;
    app.advance_until("the kickoff retried", Duration::from_millis(500), |s| {
        let updated = s
            .ok_calls("chat.update")
            .iter()
            .any(|c| c.param_str("channel") == Some(room.as_str()));
        (updated || !s.posts_to(&room).is_empty()).then_some(())
    })
    .await;
    app.settled().await;

    assert_eq!(
        lost_post_channel(&app.slack),
        room,
        "the kickoff's answer was lost"
    );
    let messages = app.slack.messages_in(&room);
    assert_eq!(messages.len(), 1, "one kickoff: {messages:#?}");
    let kickoff = &messages[0];
    assert_eq!(kickoff["metadata"]["event_type"], "warroom_kickoff");
    assert_eq!(kickoff["metadata"]["event_payload"]["incident"], "INC-1");
    let stored = app.incident(1).await.expect("INC-1").kickoff_ref;
    assert_eq!(stored.as_deref(), kickoff["ts"].as_str());
    // Found in the war room's history, metadata included.
    let looked = app.slack.api_calls("conversations.history");
    assert!(!looked.is_empty());
    assert!(looked
        .iter()
        .all(|c| c.param_str("channel") == Some(room.as_str())
            && c.param_str("include_all_metadata") == Some("true")));

    // A first attempt posts without looking.
    let before = looked.len();
    let second = app.open("P3", "reports are late").await;
    app.settled().await;
    assert_eq!(app.slack.api_calls("conversations.history").len(), before);
    let metadata = app
        .slack
        .message(&second.room, &second.kickoff_ts)
        .expect("second kickoff")["metadata"]
        .clone();
    assert_eq!(metadata["event_payload"]["incident"], "INC-2");
}

/// The messages in `channel` whose text contains `needle`.
fn messages_saying(slack: &SlackEmulator, channel: &str, needle: &str) -> Vec<serde_json::Value> {
    slack
        .messages_in(channel)
        .into_iter()
        .filter(|m| m["text"].as_str().unwrap_or_default().contains(needle))
        .collect()
}

async fn status_updates_whose_answer_is_lost_are_posted_once(backend: Backend) {
    let app = spawn_app(backend).await;
    // A P1: its status update goes to the war room and, announced, to the announce channel;
    // it pages nobody.
    let inc = app.open("P1", "checkout is slow").await;
    app.settled().await;
    let history_before = app.slack.api_calls("conversations.history").len();
    // Whichever of the two posts comes first reaches Slack, but its answer is lost.
    app.slack.succeed_then_fail_next("chat.postMessage", 1);
    let answer = app.in_room(&inc, "status rolled back v1.2.4", ALICE).await;
    assert!(answer.text().contains("Status update posted"), "{answer:?}");
    app.advance_until("the lost post retried", Duration::from_millis(500), |s| {
        let posted = |c: &str| messages_saying(s, c, "rolled back v1.2.4").len();
        let (in_room, announced) = (posted(&inc.room), posted(ANNOUNCE));
        let looked = s.api_calls("conversations.history").len() > history_before;
        (in_room > 0 && announced > 0 && (looked || in_room + announced > 2)).then_some(())
    })
    .await;
    app.settled().await;

    let lost_in = lost_post_channel(&app.slack);
    assert!(lost_in == inc.room || lost_in == ANNOUNCE, "{lost_in}");
    for channel in [inc.room.as_str(), ANNOUNCE] {
        let posted = messages_saying(&app.slack, channel, "rolled back v1.2.4");
        assert_eq!(posted.len(), 1, "once in {channel}: {posted:#?}");
        // Each post names its incident and its job, the same on every attempt.
        let metadata = &posted[0]["metadata"];
        assert_eq!(metadata["event_type"], "warroom_post", "{metadata}");
        assert_eq!(metadata["event_payload"]["incident"], "INC-1", "{metadata}");
        assert!(metadata["event_payload"]["post"].is_string(), "{metadata}");
    }
    // Only the retry looked, in the channel whose answer was lost.
    let looked = app.slack.api_calls("conversations.history");
    let looked = &looked[history_before..];
    assert!(!looked.is_empty());
    assert!(looked
        .iter()
        .all(|c| c.param_str("channel") == Some(lost_in.as_str())
            && c.param_str("include_all_metadata") == Some("true")));
}
