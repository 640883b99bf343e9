//! Resolution: the announcement, the status page, the customer email and the review.

use std::time::Duration;

use crate::helpers::*;
use warroom::core::{Status, TimelineKind};

crate::on_both_backends!(
    resolve_by_command_publishes_everything,
    resolve_by_modal_with_statuspage_and_email,
    failing_publications_recover_without_blocking_each_other,
    a_retried_status_page_create_opens_one_public_incident,
    resolving_twice_or_elsewhere_is_refused,
    review_reminders_until_closed,
    web_pages_need_loopback_a_link_or_a_token,
    a_retried_customer_email_skips_recipients_already_sent,
    a_review_whose_upload_answer_is_lost_is_shared_once,
);

const RESOLUTION_CONFIG: &str = r#"
[slack]
announce_channel = "C0ANNOUNCE"

[severity.P0]
escalation = [{ after = "0s", page = ["primary"] }, { after = "15m", page = ["primary"] }]

[contacts.primary]
slack_user = "U0PRIMARY"
pagerduty_routing_key = "pd-routing-primary"

[customer_email]
to = ["customers@acme.test", "status@acme.test"]

[review]
remind_after = "72h"
"#;

async fn spawn(backend: Backend) -> TestApp {
    let mut spawn = Spawn::new(backend);
    spawn.config = RESOLUTION_CONFIG.to_string();
    spawn_app_with(spawn).await
}

fn published(events: &[warroom::core::TimelineEvent]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind == TimelineKind::Published)
        .map(|e| e.text())
        .collect()
}

fn resolve_view(number: i64, customer_facing: &str) -> serde_json::Value {
    let text = |v: &str| serde_json::json!({ "type": "plain_text_input", "value": v });
    serde_json::json!({
        "type": "view_submission",
        "user": { "id": ALICE },
        "view": {
            "id": "VRESOLVE1",
            "callback_id": "resolve_incident",
            "private_metadata": number.to_string(),
            "state": { "values": {
                "summary": { "summary": text("Rolled back <!channel> payment-gateway v1.2.4") },
                "impact": { "impact": text("42% of card payments failed for 38 minutes") },
                "root_cause": { "root_cause": text("A connection-pool limit of 10 in v1.2.4") },
                "fix": { "fix": text("Raised the pool limit and added a regression test") },
                "pr": { "pr": { "type": "url_text_input", "value": "https://github.com/acme/shop/pull/812" } },
                "follow_ups": { "follow_ups": text("- Alert on pool saturation\n- Load test gateway releases") },
                "customer_facing": { "customer_facing": { "type": "radio_buttons", "selected_option": { "value": customer_facing } } }
            } }
        }
    })
}

async fn resolve_by_command_publishes_everything(backend: Backend) {
    let app = spawn(backend).await;
    let inc = app.open("P2", "<!channel> reports are late").await;
    app.settled().await;
    let answer = app
        .in_room(&inc, "resolve restarted the <!here> report worker", ALICE)
        .await;
    assert!(answer.text().contains("resolved"), "{answer:?}");
    app.settled().await;
    let incident = app.incident(1).await.unwrap();
    assert_eq!(incident.status, Status::Resolved);
    let resolution = incident.resolution.unwrap();
    assert_eq!(resolution.summary, "restarted the <!here> report worker");
    assert!(
        !resolution.customer_facing,
        "P2 without an answer is internal"
    );
    // The internal announcement in the announce channel.
    let announcement = app
        .slack
        .posts_to(ANNOUNCE)
        .into_iter()
        .find(|c| c.params["text"].to_string().contains("restarted"))
        .expect("announcement posted");
    let text = announcement.params["text"].as_str().unwrap();
    assert!(text.contains("INC-1") && text.contains("P2"), "{text}");
    assert!(text.contains("&lt;!here&gt;"), "escaped: {text}");
    // Status page and email are drafts in the war room (not customer-facing).
    let room_texts: Vec<String> = app
        .slack
        .posts_to(&inc.room)
        .iter()
        .map(|c| c.params["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        room_texts
            .iter()
            .any(|t| t.contains("Status-page update — draft")),
        "{room_texts:#?}"
    );
    assert!(
        room_texts
            .iter()
            .any(|t| t.contains("Customer email — draft")),
        "{room_texts:#?}"
    );
    assert!(app.slack.hooks("statuspage").is_empty());
    assert!(app.smtp.messages().is_empty());
    // The review, uploaded into the war room.
    let complete = app
        .slack
        .ok_calls("files.completeUploadExternal")
        .into_iter()
        .next()
        .expect("review uploaded");
    assert_eq!(complete.params["channel_id"], inc.room.as_str());
    let file_id = complete.params["files"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let review = String::from_utf8(app.slack.uploaded(&file_id).unwrap().to_vec()).unwrap();
    assert!(
        review.contains("INC-1") && review.contains("restarted the &lt;!here&gt; report worker"),
        "{review}"
    );
    assert!(review.contains("Timeline"), "{review}");
    // Paging stopped, PagerDuty resolved, and no raw <!channel>/<!here> reached Slack.
    assert!(app
        .slack
        .hooks("pagerduty")
        .iter()
        .any(|h| h.params["event_action"] == "resolve"));
    let sent = everything_sent(&app.slack);
    let leaks: Vec<&str> = sent
        .lines()
        .filter(|l| l.contains("<!channel>") || l.contains("<!here>"))
        .collect();
    assert!(leaks.is_empty(), "{leaks:#?}");
    let published = published(&app.timeline(1).await);
    assert_eq!(published.len(), 4, "{published:#?}");
    let kickoff = app.slack.message(&inc.room, &inc.kickoff_ts).unwrap();
    assert!(kickoff["blocks"].to_string().contains("Resolved"));
}

async fn resolve_by_modal_with_statuspage_and_email(backend: Backend) {
    let app = spawn(backend).await;
    let inc = app.open("P0", "checkout is down").await;
    app.in_room(&inc, "ack", PRIMARY).await;
    let form = app.in_room(&inc, "resolve", ALICE).await;
    assert_eq!(form.status, 200);
    let opened = app
        .eventually("the resolution form", |s| {
            s.ok_calls("views.open")
                .into_iter()
                .find(|c| c.params["view"]["callback_id"] == "resolve_incident")
        })
        .await;
    assert_eq!(opened.params["view"]["private_metadata"], "1");
    let submitted = app.interaction(&resolve_view(1, "yes")).await;
    assert_eq!(submitted.status, 200, "{submitted:?}");
    app.settled().await;
    let incident = app.incident(1).await.unwrap();
    let r = incident.resolution.clone().unwrap();
    assert!(r.customer_facing);
    assert_eq!(
        r.follow_ups,
        ["Alert on pool saturation", "Load test gateway releases"]
    );
    assert_eq!(r.pr, "https://github.com/acme/shop/pull/812");
    // Statuspage: one resolved incident with the rendered body.
    let sp = app.slack.hooks("statuspage");
    assert_eq!(sp.len(), 1, "{sp:#?}");
    assert_eq!(sp[0].header("authorization"), Some("OAuth sp-key"));
    let body = sp[0].params["incident"]["body"].as_str().unwrap();
    assert_eq!(sp[0].params["incident"]["status"], "resolved");
    assert!(
        body.contains("checkout is down") && body.contains("UTC"),
        "{body}"
    );
    assert!(
        !body.contains("&lt;"),
        "no HTML entities on the status page: {body}"
    );
    // The customer email, to the configured audience: one message per recipient, so no
    // customer sees another's address, each with the headers Gmail insists on.
    let mails = app.smtp.messages();
    assert_eq!(mails.len(), 2, "{mails:?}");
    let mut to: Vec<String> = mails.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    assert_eq!(to, ["customers@acme.test", "status@acme.test"]);
    let mut ids = std::collections::HashSet::new();
    for mail in &mails {
        let headers = mail.data.split("\r\n\r\n").next().unwrap_or_default();
        assert_eq!(
            header(headers, "To"),
            Some(mail.to[0].clone()),
            "only its own recipient in To: {headers}"
        );
        assert!(!headers.contains("Cc:"), "{headers}");
        assert_eq!(header(headers, "MIME-Version").as_deref(), Some("1.0"));
        let id = header(headers, "Message-ID").unwrap_or_default();
        assert!(
            id.starts_with("<warroom-INC-1-customer-email-") && id.ends_with("@acme.test>"),
            "{headers}"
        );
        ids.insert(id);
        assert!(mail.data.contains("Subject:"), "{}", mail.data);
        assert!(mail.data.contains("checkout is down"), "{}", mail.data);
    }
    assert_eq!(ids.len(), 2, "one Message-ID per message");
    // The announcement carries the facts.
    let announcement = app
        .slack
        .posts_to(ANNOUNCE)
        .into_iter()
        .find(|c| {
            c.params["text"].to_string().contains("Root cause")
                || c.params["text"].to_string().contains("root cause")
        })
        .expect("announcement with the root cause");
    let text = announcement.params["text"].as_str().unwrap();
    for fact in [
        "connection-pool limit",
        "Raised the pool limit",
        "pull/812",
        "Alert on pool saturation",
        "&lt;!channel&gt;",
    ] {
        assert!(text.contains(fact), "{fact} in {text}");
    }
    let published = published(&app.timeline(1).await);
    assert!(
        published.iter().any(|p| p.contains("Status page updated")),
        "{published:#?}"
    );
    assert!(
        published
            .iter()
            .any(|p| p.contains("Customer email") && p.contains("2 recipient")),
        "{published:#?}"
    );
    // The review over HTTP (loopback) has the whole story.
    let review = app.get("/incidents/1/review.md").await;
    assert_eq!(review.status, 200);
    for fact in [
        "INC-1",
        "P0",
        "Root cause",
        "connection-pool limit",
        "- [ ] Alert on pool saturation",
        "Acknowledged",
    ] {
        assert!(review.body.contains(fact), "{fact} in {}", review.body);
    }
}

async fn failing_publications_recover_without_blocking_each_other(backend: Backend) {
    let app = spawn(backend).await;
    let inc = app.open("P1", "search is down").await;
    app.slack.fail_next("hook/statuspage", 3);
    app.smtp.fail_next(2);
    let submitted = app.interaction(&resolve_view(1, "yes")).await;
    assert_eq!(submitted.status, 200);
    // The announcement and the review do not wait for the failing ones.
    app.eventually("the announcement", |s| {
        s.posts_to(ANNOUNCE)
            .into_iter()
            .find(|c| c.params["text"].to_string().contains("connection-pool"))
    })
    .await;
    app.eventually("the review", |s| {
        s.ok_calls("files.completeUploadExternal")
            .into_iter()
            .next()
    })
    .await;
    assert!(app.smtp.messages().is_empty());
    app.advance_until(
        "status page and email delivered",
        Duration::from_secs(5),
        |s| {
            (s.hooks("statuspage").iter().any(|h| h.status == 200)
                && !app.smtp.messages().is_empty())
            .then_some(())
        },
    )
    .await;
    app.settled().await;
    // Retries look for an incident an earlier attempt created (GET) before creating one.
    assert_eq!(
        app.slack
            .hooks("statuspage")
            .iter()
            .filter(|h| h.status == 200 && h.http_method == "POST")
            .count(),
        1
    );
    let mut to: Vec<String> = app
        .smtp
        .messages()
        .iter()
        .flat_map(|m| m.to.clone())
        .collect();
    to.sort();
    assert_eq!(to, ["customers@acme.test", "status@acme.test"]);
    let published = published(&app.timeline(1).await);
    assert_eq!(published.len(), 4, "{published:#?}");
    let _ = inc;
}

/// The value of header `name` in a raw header block (unfolded).
fn header(headers: &str, name: &str) -> Option<String> {
    let unfolded = headers.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded.split("\r\n").find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// The customer email is one durable unit per recipient: a retry does not resend to those
/// already sent.
async fn a_retried_customer_email_skips_recipients_already_sent(backend: Backend) {
    let app = spawn(backend).await;
    let inc = app.open("P1", "search is down").await;
    app.in_room(&inc, "ack", PRIMARY).await;
    // A first attempt got the message to customers@ and then failed (or the process died).
    {
        let mut conn = app.ctx.store.acquire().await.unwrap();
        warroom::store::record_mail_sent(
            &mut conn,
            "customer_email:1",
            "customers@acme.test",
            1,
            app.clock.now(),
        )
        .await
        .unwrap();
    }
    let submitted = app.interaction(&resolve_view(1, "yes")).await;
    assert_eq!(submitted.status, 200);
    app.advance_until("the customer email", Duration::from_secs(5), |_| {
        (!app.smtp.messages().is_empty()).then_some(())
    })
    .await;
    app.settled().await;
    let mails = app.smtp.messages();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert_eq!(mails[0].to, ["status@acme.test"]);
    let published = published(&app.timeline(1).await);
    assert!(
        published
            .iter()
            .any(|p| p.contains("Customer email") && p.contains("2 recipient")),
        "{published:#?}"
    );
}

async fn a_retried_status_page_create_opens_one_public_incident(backend: Backend) {
    let app = spawn(backend).await;
    app.open("P1", "search is down").await;
    // Statuspage creates the incident, but warroom never gets the answer.
    app.slack.succeed_then_fail_next("hook/statuspage", 1);
    let submitted = app.interaction(&resolve_view(1, "yes")).await;
    assert_eq!(submitted.status, 200);
    app.advance_until(
        "the status page published again",
        Duration::from_secs(1),
        |s| {
            let hooks = s.hooks("statuspage");
            (hooks.len() > 1 && hooks.iter().any(|h| h.status == 200)).then_some(())
        },
    )
    .await;
    app.settled().await;

    let calls = app.slack.hooks("statuspage");
    let created: Vec<_> = calls.iter().filter(|h| h.http_method == "POST").collect();
    assert_eq!(created.len(), 1, "one public incident: {calls:#?}");
    assert_eq!(created[0].status, 500);
    assert_eq!(
        created[0].params["incident"]["metadata"]["warroom"]["incident"],
        "INC-1"
    );
    // The retry found it and marked that one resolved.
    let id = format!("H{:06}", created[0].seq);
    let updated: Vec<_> = calls.iter().filter(|h| h.http_method == "PATCH").collect();
    assert_eq!(updated.len(), 1, "{calls:#?}");
    assert_eq!(
        updated[0].param_str("_path"),
        Some(format!("pages/page1/incidents/{id}").as_str())
    );
    assert_eq!(updated[0].status, 200);
    let published = published(&app.timeline(1).await);
    assert!(
        published
            .iter()
            .any(|p| p.contains(&format!("Statuspage incident {id} marked resolved"))),
        "{published:#?}"
    );
}

async fn resolving_twice_or_elsewhere_is_refused(backend: Backend) {
    let app = spawn(backend).await;
    let elsewhere = app.command("resolve all good").await;
    assert!(elsewhere.text().contains("war room"), "{elsewhere:?}");
    let inc = app.open("P3", "typo on pricing page").await;
    app.in_room(&inc, "resolve fixed the typo", ALICE).await;
    app.settled().await;
    let jobs_before = app.jobs().await.len();
    let again = app.in_room(&inc, "resolve fixed it again", ALICE).await;
    assert!(again.text().contains("already resolved"), "{again:?}");
    let form_again = app.in_room(&inc, "resolve", ALICE).await;
    assert!(
        form_again.text().contains("already resolved"),
        "{form_again:?}"
    );
    assert_eq!(app.jobs().await.len(), jobs_before, "nothing new queued");
    let resolved = app
        .timeline(1)
        .await
        .into_iter()
        .filter(|e| e.kind == TimelineKind::Resolved)
        .count();
    assert_eq!(resolved, 1);
    let blank = app.in_room(&inc, "close", "U0BOB").await;
    assert!(blank.text().contains("closed"), "{blank:?}");
    assert_eq!(app.incident(1).await.unwrap().status, Status::Closed);
    assert!(app
        .in_room(&inc, "close", ALICE)
        .await
        .text()
        .contains("already closed"));
    let open_one = app.open("P3", "another").await;
    assert!(app
        .in_room(&open_one, "close", ALICE)
        .await
        .text()
        .contains("resolve it before"));
}

async fn review_reminders_until_closed(backend: Backend) {
    let app = spawn(backend).await;
    let inc = app.open("P1", "queue backlog").await;
    app.in_room(&inc, "resolve drained the queue", ALICE).await;
    app.settled().await;
    let reminders = |app: &TestApp| {
        app.slack
            .posts_to(&inc.room)
            .iter()
            .filter(|c| c.params["text"].to_string().contains("review is due"))
            .count()
    };
    app.clock.advance(Duration::from_secs(71 * 3600));
    app.ctx.wake.notify_waiters();
    app.settled().await;
    assert_eq!(reminders(&app), 0);
    app.clock.advance(Duration::from_secs(3600));
    app.ctx.wake.notify_waiters();
    app.settled().await;
    assert_eq!(reminders(&app), 1);
    app.clock.advance(Duration::from_secs(72 * 3600));
    app.ctx.wake.notify_waiters();
    app.settled().await;
    assert_eq!(reminders(&app), 2, "again until closed");
    app.in_room(&inc, "close", ALICE).await;
    app.clock.advance(Duration::from_secs(100 * 3600));
    app.ctx.wake.notify_waiters();
    app.settled().await;
    assert_eq!(reminders(&app), 2, "closed: no more reminders");
}

async fn web_pages_need_loopback_a_link_or_a_token(backend: Backend) {
    let app = spawn(backend).await;
    app.open("P2", "<script>alert(1)</script> cache").await;
    let page = app.get("/incidents").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("INC-1") && page.body.contains("&lt;script&gt;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script>alert"));
    let one = app.get("/incidents/1").await;
    assert_eq!(one.status, 200);
    assert!(one.body.contains("Timeline"));
    assert_eq!(app.get("/incidents/99").await.status, 404);
    // Through a proxy (not loopback any more): a link token or the bearer token is needed.
    let client = reqwest::Client::new();
    let proxied = client
        .get(app.url("/incidents/1/review.md"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status().as_u16(), 401);
    let token = app.ctx.links.token("/incidents/1/review.md");
    let linked = client
        .get(app.url(&format!("/incidents/1/review.md?token={token}")))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(linked.status().as_u16(), 200);
    let wrong = client
        .get(app.url("/incidents/1/review.md?token=00000000000000000000000000000000"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
}

async fn a_review_whose_upload_answer_is_lost_is_shared_once(backend: Backend) {
    let app = spawn(backend).await;
    let inc = app.open("P1", "search is down").await;
    app.settled().await;
    // The review is shared in the war room, but the answer of the upload's completion is lost.
    app.slack
        .succeed_then_fail_next("files.completeUploadExternal", 1);
    let submitted = app.interaction(&resolve_view(1, "no")).await;
    assert_eq!(submitted.status, 200);
    let shared = |s: &warroom::testkit::slack_emulator::SlackEmulator| {
        s.messages_in(&inc.room)
            .into_iter()
            .filter(|m| m["files"][0]["title"] == "INC-1 post-incident review")
            .count()
    };
    app.advance_until("the review retried", Duration::from_millis(500), |s| {
        let looked = s
            .api_calls("conversations.history")
            .iter()
            .any(|c| c.param_str("channel") == Some(inc.room.as_str()));
        (looked || shared(s) > 1).then_some(())
    })
    .await;
    app.settled().await;

    let completions = app.slack.api_calls("files.completeUploadExternal");
    assert_eq!(completions.len(), 1, "uploaded once: {completions:#?}");
    assert_eq!(shared(&app.slack), 1, "one review in the war room");
    let events = published(&app.timeline(1).await);
    let reviews: Vec<_> = events
        .iter()
        .filter(|t| t.starts_with("Post-incident review posted"))
        .collect();
    assert_eq!(reviews.len(), 1, "{events:#?}");
}
