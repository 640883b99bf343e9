//! The emulator's tests: driven over real HTTP as the bot drives it, plus its parameter
//! parsing and helpers.

use std::time::{Duration, Instant};

use http::HeaderMap;
use serde_json::{json, Value};

use super::methods::{sha1_hex, user_name};
use super::outcome::JSON_CONTENT_TYPE;
use super::params::{parse_params, text_of, ts_key};
use super::server::collapse_slashes;
use super::state::SUCCEEDED_THEN_FAILED;
use super::{CallKind, SlackEmulator, StallPoint, BOT_USER_ID};

const TOKEN: &str = "xoxb-test";

async fn post_json(
    emu: &SlackEmulator,
    method: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, HeaderMap, Value) {
    let client = reqwest::Client::new();
    let mut req = client
        .post(format!("{}{method}", emu.api_url()))
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body: Value = resp.json().await.expect("json body");
    (status, headers, body)
}

async fn call(emu: &SlackEmulator, method: &str, body: Value) -> Value {
    post_json(emu, method, Some(TOKEN), body).await.2
}

#[tokio::test]
async fn creates_channels_and_refuses_taken_names() {
    let emu = SlackEmulator::start(TOKEN).await.expect("start");
    let r = call(
        &emu,
        "conversations.create",
        json!({"name": "inc-42-db-down"}),
    )
    .await;
    assert_eq!(r["ok"], json!(true), "{r}");
    assert_eq!(r["channel"]["id"], json!("C1001"));
    assert_eq!(r["channel"]["name"], json!("inc-42-db-down"));
    assert_eq!(
        emu.channel_id_by_name("inc-42-db-down").as_deref(),
        Some("C1001")
    );
    assert_eq!(emu.channel_name("C1001").as_deref(), Some("inc-42-db-down"));
    assert_eq!(emu.members("C1001"), vec![BOT_USER_ID.to_string()]);

    let again = call(
        &emu,
        "conversations.create",
        json!({"name": "inc-42-db-down"}),
    )
    .await;
    assert_eq!(again["error"], json!("name_taken"));
    let known = call(&emu, "conversations.create", json!({"name": "incidents"})).await;
    assert_eq!(known["error"], json!("name_taken"));
    for (name, error) in [
        ("", "invalid_name_required"),
        ("Big", "invalid_name_specials"),
        ("--", "invalid_name_punctuation"),
    ] {
        let r = call(&emu, "conversations.create", json!({"name": name})).await;
        assert_eq!(r["error"], json!(error), "{name}");
    }
    let long = "a".repeat(81);
    let r = call(&emu, "conversations.create", json!({"name": long})).await;
    assert_eq!(r["error"], json!("invalid_name_maxlength"));

    // Invite (comma-separated and list forms), topic.
    let r = call(
        &emu,
        "conversations.invite",
        json!({"channel": "C1001", "users": "U0ALICE, U0BOB"}),
    )
    .await;
    assert_eq!(r["ok"], json!(true));
    call(
        &emu,
        "conversations.invite",
        json!({"channel": "C1001", "users": ["U0BOB", "U0CAROL"]}),
    )
    .await;
    assert_eq!(
        emu.members("C1001"),
        vec!["UBOT", "U0ALICE", "U0BOB", "U0CAROL"]
    );
    call(
        &emu,
        "conversations.setTopic",
        json!({"channel": "C1001", "topic": "P0: db down"}),
    )
    .await;
    assert_eq!(emu.topic("C1001").as_deref(), Some("P0: db down"));

    assert_eq!(emu.ok_calls("conversations.create").len(), 1);
    assert_eq!(emu.api_calls("conversations.create").len(), 7);
    let seqs: Vec<u64> = emu.calls().iter().map(|c| c.seq).collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    emu.shutdown();
}

#[tokio::test]
async fn injected_name_taken_takes_the_name() {
    let emu = SlackEmulator::start(TOKEN).await.expect("start");
    emu.name_taken_next(1);
    let r = call(&emu, "conversations.create", json!({"name": "inc-1"})).await;
    assert_eq!(r["error"], json!("name_taken"));
    let recorded = emu.api_calls("conversations.create");
    assert_eq!(recorded[0].fault.as_deref(), Some("injected name_taken"));
    let r = call(&emu, "conversations.create", json!({"name": "inc-1"})).await;
    assert_eq!(r["error"], json!("name_taken"));
    assert!(emu.api_calls("conversations.create")[1].fault.is_none());
    emu.take_name("inc-2");
    let r = call(&emu, "conversations.create", json!({"name": "inc-2"})).await;
    assert_eq!(r["error"], json!("name_taken"));
    let r = call(&emu, "conversations.create", json!({"name": "inc-3"})).await;
    assert_eq!(r["ok"], json!(true));
}

#[tokio::test]
async fn posts_and_updates_messages() {
    let emu = SlackEmulator::start(TOKEN).await.expect("start");
    let blocks = json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": "*P0* db down"}},
        {"type": "actions", "block_id": "acts", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Ack"}, "value": "ack"},
            {"type": "button", "action_id": "resolve", "text": {"type": "plain_text", "text": "Resolve"}}
        ]}
    ]);
    // Blocks given as a JSON string are parsed, like Slack does.
    let r = call(
        &emu,
        "chat.postMessage",
        json!({"channel": "C0ANNOUNCE", "text": "P0 db down", "blocks": blocks.to_string()}),
    )
    .await;
    assert_eq!(r["ok"], json!(true), "{r}");
    assert_eq!(r["ts"], json!("1700000000.000001"));
    let stored = emu
        .message("C0ANNOUNCE", "1700000000.000001")
        .expect("stored");
    assert!(stored["blocks"][0]["block_id"]
        .as_str()
        .is_some_and(|s| s.len() == 4));
    assert_eq!(stored["blocks"][1]["block_id"], json!("acts"));
    let generated = stored["blocks"][1]["elements"][0]["action_id"]
        .as_str()
        .unwrap_or_default();
    assert!(
        generated.ends_with('=') && generated.len() == 6,
        "{generated}"
    );
    assert_eq!(
        stored["blocks"][1]["elements"][1]["action_id"],
        json!("resolve")
    );
    assert_eq!(emu.posts_to("C0ANNOUNCE").len(), 1);
    assert!(emu.posts_to("C0ANNOUNCE")[0]
        .param("blocks")
        .is_some_and(Value::is_array));

    let r = call(&emu, "chat.postMessage", json!({"channel": "C0ANNOUNCE"})).await;
    assert_eq!(r["error"], json!("no_text"));
    let r = call(&emu, "chat.postMessage", json!({"text": "hi"})).await;
    assert_eq!(r["error"], json!("channel_not_found"));
    assert_eq!(emu.posts_to("C0ANNOUNCE").len(), 1);

    let r = call(
        &emu,
        "chat.update",
        json!({"channel": "C0ANNOUNCE", "ts": "1700000000.000001", "text": "resolved"}),
    )
    .await;
    assert_eq!(r["ok"], json!(true), "{r}");
    assert_eq!(r["text"], json!("resolved"));
    let stored = emu
        .message("C0ANNOUNCE", "1700000000.000001")
        .expect("stored");
    assert_eq!(stored["text"], json!("resolved"));
    assert!(stored["blocks"].is_array(), "blocks kept when not given");
    let r = call(
        &emu,
        "chat.update",
        json!({"channel": "C0ANNOUNCE", "ts": "1.2", "text": "x"}),
    )
    .await;
    assert_eq!(r["error"], json!("message_not_found"));

    let r = call(
        &emu,
        "chat.getPermalink",
        json!({"channel": "C0ANNOUNCE", "message_ts": "1700000000.000001"}),
    )
    .await;
    assert_eq!(
        r["permalink"],
        json!("https://acme.slack.com/archives/C0ANNOUNCE/p1700000000000001")
    );
}

#[tokio::test]
async fn history_and_replies_over_get() {
    let emu = SlackEmulator::start(TOKEN).await.expect("start");
    emu.register_message("C1", "1700000100.000100", "U0ALICE", "first");
    emu.register_message("C1", "1700000200.000200", "U0BOB", "second");
    emu.register_message_value(
        "C1",
        "1700000300.000300",
        json!({"type": "message", "user": "U0BOB", "text": "reply", "ts": "1700000300.000300", "thread_ts": "1700000100.000100"}),
    );
    let client = reqwest::Client::new();
    let url = format!("{}conversations.history?channel=C1&limit=10", emu.api_url());
    let r: Value = client
        .get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let texts: Vec<&str> = r["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|x| x["text"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(texts, vec!["second", "first"]);

    let url = format!(
        "{}conversations.history?channel=C1&oldest=1700000100.000100",
        emu.api_url()
    );
    let r: Value = client
        .get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(r["messages"].as_array().map(Vec::len), Some(1));

    let url = format!(
        "{}conversations.replies?channel=C1&ts=1700000100.000100",
        emu.api_url()
    );
    let r: Value = client
        .get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let texts: Vec<&str> = r["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|x| x["text"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(texts, vec!["first", "reply"]);
    let calls = emu.api_calls("conversations.history");
    assert_eq!(calls[0].http_method, "GET");
    assert_eq!(calls[0].param_str("channel"), Some("C1"));
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let emu = SlackEmulator::start(TOKEN).await.expect("start");
    emu.ratelimit_next("chat.postMessage", 1, 3);
    let body = json!({"channel": "C0GENERAL", "text": "hi"});
    let (status, headers, r) = post_json(&emu, "chat.postMessage", Some(TOKEN), body.clone()).await;
    assert_eq!(status, 429);
    assert_eq!(
        headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("3")
    );
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some(JSON_CONTENT_TYPE)
    );
    assert_eq!(r, json!({"ok": false, "error": "ratelimited"}));
    let recorded = emu.api_calls("chat.postMessage");
    assert_eq!(recorded[0].fault.as_deref(), Some("injected 429"));
    assert!(!recorded[0].ok());
    let (status, _, r) = post_json(&emu, "chat.postMessage", Some(TOKEN), body).await;
    assert_eq!(status, 200);
    assert_eq!(r["ok"], json!(true));
    assert_eq!(emu.posts_to("C0GENERAL").len(), 1);
}

#[tokio::test]
async fn injected_500s() {
    let emu = SlackEmulator::start(TOKEN).await.expect("start");
    emu.fail_next("auth.test", 2);
    for _ in 0..2 {
        let (status, _, r) = post_json(&emu, "auth.test", Some(TOKEN), json!({})).await;
        assert_eq!(status, 500);
        assert_eq!(r, json!({"ok": false, "error": "fatal_error"}));
    }
    let (status, _, r) = post_json(&emu, "auth.test", Some(TOKEN), json!({})).await;
    assert_eq!((status, r["user_id"].clone()), (200, json!(BOT_USER_ID)));

    emu.fail_until_cleared("team.info");
    for _ in 0..3 {
        let (status, _, _) = post_json(&emu, "team.info", Some(TOKEN), json!({})).await;
        assert_eq!(status, 500);
    }
    emu.clear_faults();
    let (status, _, r) = post_json(&emu, "team.info", Some(TOKEN), json!({})).await;
    assert_eq!((status, r["ok"].clone()), (200, json!(true)));
    assert_eq!(emu.api_calls("team.info").len(), 4);
    assert_eq!(emu.ok_calls("team.info").len(), 1);
}

#[tokio::test]
async fn auth_failures() {
    let emu = SlackEmulator::start(TOKEN).await.expect("start");
    let (status, _, r) = post_json(&emu, "auth.test", None, json!({})).await;
    assert_eq!(
        (status, r),
        (200, json!({"ok": false, "error": "not_authed"}))
    );
    let (status, _, r) = post_json(&emu, "auth.test", Some("xoxb-wrong"), json!({})).await;
    assert_eq!(
        (status, r),
        (200, json!({"ok": false, "error": "invalid_auth"}))
    );
    // The token as a form parameter works too.
    let client = reqwest::Client::new();
    let r: Value = client
        .post(format!("{}chat.postMessage", emu.api_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}&channel=C0GENERAL&text=hello+there"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(r["ok"], json!(true), "{r}");
    assert_eq!(
        emu.posts_to("C0GENERAL")[0].param_str("text"),
        Some("hello there")
    );
}

#[tokio::test]
async fn other_sinks_and_uploads() {
    let emu = SlackEmulator::start(TOKEN).await.expect("start");
    let client = reqwest::Client::new();
    let resp = client
        .post(emu.response_url("r1"))
        .json(&json!({"replace_original": true, "text": "done"}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    let resp = client
        .post(emu.hook_url("senior"))
        .body("{}")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    let resp = client
        .get(format!("{}/nowhere", emu.base_url()))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(emu.responses("r1").len(), 1);
    assert_eq!(emu.responses("r1")[0].param_str("text"), Some("done"));
    assert_eq!(emu.hooks("senior").len(), 1);

    let r = call(
        &emu,
        "files.getUploadURLExternal",
        json!({"filename": "t.txt", "length": 5}),
    )
    .await;
    let url = r["upload_url"].as_str().unwrap_or_default().to_string();
    assert_eq!(url, format!("{}/upload/F00000001", emu.base_url()));
    let text = client
        .post(url)
        .body("hello")
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert_eq!(text, "OK - 5");
    assert_eq!(emu.uploaded("F00000001").as_deref(), Some(&b"hello"[..]));

    let r = call(&emu, "conversations.open", json!({"users": "U0PRIMARY"})).await;
    assert_eq!(r["channel"]["id"], json!("DU0PRIMARY"));
    assert_eq!(
        emu.dm_channels("U0PRIMARY"),
        vec!["U0PRIMARY", "DU0PRIMARY"]
    );
    let r = call(
        &emu,
        "views.open",
        json!({"trigger_id": "1.2.3", "view": {"type": "modal", "blocks": []}}),
    )
    .await;
    assert_eq!(r["view"]["id"], json!("V00000001"));
    let r = call(&emu, "users.info", json!({"user": "U0ALICE"})).await;
    assert_eq!(r["user"]["name"], json!("alice"));
    assert_eq!(r["user"]["real_name"], json!("Alice"));
    let r = call(&emu, "some.unknownMethod", json!({})).await;
    assert_eq!(r, json!({"ok": true}));

    let kinds: Vec<CallKind> = emu.calls().iter().take(3).map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        vec![CallKind::Response, CallKind::Hook, CallKind::Other]
    );
    emu.shutdown();
    emu.shutdown();
    let gone = emu
        .wait_for(Duration::from_secs(2), |e| {
            std::net::TcpStream::connect(e.base_url().trim_start_matches("http://"))
                .is_err()
                .then_some(())
        })
        .await;
    assert!(gone.is_some(), "still serving after shutdown");
}

#[tokio::test]
async fn latency_is_concurrent() {
    let emu = SlackEmulator::start(TOKEN).await.expect("start");
    emu.set_latency(Duration::from_millis(200));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..5 {
        let emu = emu.clone();
        tasks.push(tokio::spawn(async move {
            call(
                &emu,
                "chat.postMessage",
                json!({"channel": "C0GENERAL", "text": format!("m{i}")}),
            )
            .await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("join")["ok"], json!(true));
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(800), "{elapsed:?}");
    let found = emu
        .wait_for(Duration::from_millis(100), |e| {
            (e.posts_to("C0GENERAL").len() == 5).then_some(5)
        })
        .await;
    assert_eq!(found, Some(5));

    // A client that gives up during the latency is still recorded.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(50))
        .build()
        .expect("client");
    let sent = impatient
        .post(format!("{}auth.test", emu.api_url()))
        .bearer_auth(TOKEN)
        .send()
        .await;
    assert!(sent.is_err(), "answered before the latency passed");
    let recorded = emu
        .wait_for(Duration::from_secs(2), |e| {
            e.ok_calls("auth.test").first().map(|c| c.seq)
        })
        .await;
    assert_eq!(recorded, Some(5));
}

#[tokio::test]
async fn parses_multipart_and_form_bodies() {
    let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"channels\"\r\n\r\nC1001\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nline1\r\nline2\r\n--XyZ--\r\n";
    let p = parse_params("token=t", body, "multipart/form-data; boundary=XyZ").await;
    assert_eq!(p.get("channels"), Some(&json!("C1001")));
    assert_eq!(p.get("file"), Some(&json!("line1\r\nline2")));
    assert_eq!(p.get("token"), Some(&json!("t")));

    let p = parse_params("", b"--nope", "multipart/form-data").await;
    assert!(p.contains_key("_unparsed"));
    let p = parse_params("", b"{not json", "application/json").await;
    assert!(p.contains_key("_unparsed"));
    let p = parse_params("a=1&a=2&users=%5B%22U1%22%5D", b"", "").await;
    assert_eq!(p.get("a"), Some(&json!(["1", "2"])));
    assert_eq!(p.get("users"), Some(&json!(["U1"])));
}

#[test]
fn helpers() {
    assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    assert_eq!(user_name("U0ALICE"), "alice");
    assert_eq!(user_name("UBOT"), "bot");
    assert_eq!(user_name("U"), "u");
    assert!(ts_key(&json!("1700000000.000002")) > ts_key(&json!("1700000000.000001")));
    assert_eq!(ts_key(&json!("junk")), 0);
    assert_eq!(ts_key(&json!(1700000000)), ts_key(&json!("1700000000.0")));
    assert_eq!(
        collapse_slashes("//api///chat.postMessage"),
        "/api/chat.postMessage"
    );
}

#[tokio::test]
async fn refuses_what_slack_refuses() {
    let emu = SlackEmulator::start(TOKEN).await.expect("start");
    let section =
        |n: usize| json!([{"type": "section", "text": {"type": "mrkdwn", "text": "x".repeat(n)}}]);
    let post =
        |blocks: Value| json!({"channel": "C0ANNOUNCE", "text": "t", "blocks": blocks.to_string()});
    let r = call(&emu, "chat.postMessage", post(section(3000))).await;
    assert_eq!(r["ok"], json!(true), "{r}");
    let ts = r["ts"].as_str().expect("ts").to_string();
    let r = call(&emu, "chat.postMessage", post(section(3001))).await;
    assert_eq!(r["error"], json!("invalid_blocks"), "{r}");
    let r = call(
        &emu,
        "chat.update",
        json!({"channel": "C0ANNOUNCE", "ts": ts, "blocks": section(3001)}),
    )
    .await;
    assert_eq!(r["error"], json!("invalid_blocks"), "{r}");
    let r = call(
        &emu,
        "chat.postEphemeral",
        json!({"channel": "C0ANNOUNCE", "user": "U1", "text": "x".repeat(40_001)}),
    )
    .await;
    assert_eq!(r["error"], json!("msg_too_long"), "{r}");
    let r = call(
        &emu,
        "conversations.setTopic",
        json!({"channel": "C0ANNOUNCE", "topic": "t".repeat(251)}),
    )
    .await;
    assert_eq!(r["error"], json!("too_long"), "{r}");
    let r = call(
        &emu,
        "views.open",
        json!({"trigger_id": "t", "view": {"type": "modal", "title": {"type": "plain_text", "text": "t".repeat(25)}, "blocks": []}}),
    )
    .await;
    assert_eq!(r["error"], json!("invalid_blocks"), "{r}");
    assert_eq!(
        emu.posts_to("C0ANNOUNCE").len(),
        1,
        "nothing refused was posted"
    );

    // A response_url takes 5 posts; each response_url handed out is a new one.
    let client = reqwest::Client::new();
    let url = emu.response_url("r");
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let resp = client
            .post(&url)
            .json(&json!({"text": "hi"}))
            .send()
            .await
            .expect("send");
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 404]);
    let fresh = emu.response_url("r");
    assert_ne!(fresh, url);
    let resp = client
        .post(&fresh)
        .json(&json!({"text": "hi"}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    let resp = client
        .post(emu.response_url("r"))
        .json(&json!({"blocks": section(3001)}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(emu.responses("r").len(), 8);
    assert_eq!(emu.responses("r").iter().filter(|c| c.ok()).count(), 6);
}

async fn get(emu: &SlackEmulator, method_and_query: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}{method_and_query}", emu.api_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn succeed_then_fail_acts_then_answers_500() {
    let emu = SlackEmulator::start(TOKEN).await.expect("start");
    emu.succeed_then_fail_next("conversations.create", 1);
    emu.succeed_then_fail_next("chat.postMessage", 1);
    emu.take_name("general-2");
    let taken = call(&emu, "conversations.create", json!({"name": "general-2"})).await;
    assert_eq!(taken["error"], json!("name_taken"), "errors pass through");
    let (status, _, r) = post_json(
        &emu,
        "conversations.create",
        Some(TOKEN),
        json!({"name": "inc-1-db"}),
    )
    .await;
    assert_eq!(
        (status, r),
        (500, json!({"ok": false, "error": "fatal_error"}))
    );
    // The channel exists all the same, and its name is taken.
    let id = emu.channel_id_by_name("inc-1-db").expect("channel created");
    let again = call(&emu, "conversations.create", json!({"name": "inc-1-db"})).await;
    assert_eq!(again["error"], json!("name_taken"));
    let recorded = emu.api_calls("conversations.create");
    assert_eq!(recorded[0].fault, None);
    assert_eq!(recorded[1].fault.as_deref(), Some(SUCCEEDED_THEN_FAILED));
    assert!(!recorded[1].ok());

    // Only the next call is concerned: the first post answers 500, the second 200.
    for (text, expected) in [("kickoff", 500), ("second", 200)] {
        let body = json!({"channel": id, "text": text});
        let (status, _, _) = post_json(&emu, "chat.postMessage", Some(TOKEN), body).await;
        assert_eq!(status, expected, "{text}");
    }
    let history = get(&emu, &format!("conversations.history?channel={id}")).await;
    let texts: Vec<String> = history["messages"]
        .as_array()
        .map(|ms| ms.iter().map(|m| text_of(&m["text"])).collect())
        .unwrap_or_default();
    assert_eq!(texts, ["second", "kickoff"]);
}

#[tokio::test]
async fn conversations_list_pages_and_tells_creator_and_archived() {
    let emu = SlackEmulator::start(TOKEN).await.expect("start");
    let human = emu.add_channel("inc-1-db", "U0ALICE");
    let r = call(&emu, "conversations.create", json!({"name": "inc-1-db-2"})).await;
    let own = r["channel"]["id"].as_str().expect("id").to_string();
    emu.archive_channel(&human);
    assert_eq!(
        call(&emu, "conversations.create", json!({"name": "inc-1-db"})).await["error"],
        json!("name_taken")
    );

    // general, incidents, inc-1-db, inc-1-db-2: two pages of 2.
    let first = get(
        &emu,
        "conversations.list?types=public_channel,private_channel&limit=2",
    )
    .await;
    let names = |r: &Value| -> Vec<String> {
        r["channels"]
            .as_array()
            .map(|cs| cs.iter().map(|c| text_of(&c["name"])).collect())
            .unwrap_or_default()
    };
    assert_eq!(names(&first), ["general", "incidents"]);
    let cursor = first["response_metadata"]["next_cursor"]
        .as_str()
        .expect("cursor")
        .to_string();
    assert!(!cursor.is_empty());
    let second = get(&emu, &format!("conversations.list?limit=2&cursor={cursor}")).await;
    assert_eq!(names(&second), ["inc-1-db", "inc-1-db-2"]);
    assert_eq!(second["response_metadata"]["next_cursor"], json!(""));
    assert_eq!(second["channels"][0]["id"], json!(human));
    assert_eq!(second["channels"][0]["creator"], json!("U0ALICE"));
    assert_eq!(second["channels"][0]["is_archived"], json!(true));
    assert_eq!(second["channels"][1]["id"], json!(own));
    assert_eq!(second["channels"][1]["creator"], json!(BOT_USER_ID));
    assert_eq!(second["channels"][1]["is_archived"], json!(false));

    let live = get(&emu, "conversations.list?exclude_archived=true").await;
    assert_eq!(names(&live), ["general", "incidents", "inc-1-db-2"]);
    let private_only = get(&emu, "conversations.list?types=private_channel").await;
    assert_eq!(names(&private_only), Vec::<String>::new());
    let bad = get(&emu, "conversations.list?cursor=nonsense").await;
    assert_eq!(bad["error"], json!("invalid_cursor"));
    let info = get(&emu, &format!("conversations.info?channel={human}")).await;
    assert_eq!(info["channel"]["creator"], json!("U0ALICE"));
}

#[tokio::test]
async fn message_metadata_is_kept_and_returned_when_asked() {
    let emu = SlackEmulator::start(TOKEN).await.expect("start");
    let metadata = json!({"event_type": "warroom_kickoff", "event_payload": {"incident": "INC-1"}});
    let r = call(
        &emu,
        "chat.postMessage",
        json!({"channel": "C0GENERAL", "text": "kickoff", "metadata": metadata}),
    )
    .await;
    let ts = r["ts"].as_str().expect("ts").to_string();
    // Form-encoded, metadata is a JSON string.
    let form = reqwest::Client::new()
        .post(format!("{}chat.postMessage", emu.api_url()))
        .bearer_auth(TOKEN)
        .form(&[
            ("channel", "C0GENERAL"),
            ("text", "form"),
            (
                "metadata",
                r#"{"event_type":"other","event_payload":{"k":"v"}}"#,
            ),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(form.status().as_u16(), 200);

    let plain = get(&emu, "conversations.history?channel=C0GENERAL").await;
    assert!(
        plain["messages"]
            .as_array()
            .is_some_and(|ms| ms.iter().all(|m| m.get("metadata").is_none())),
        "{plain}"
    );
    let all = get(
        &emu,
        "conversations.history?channel=C0GENERAL&include_all_metadata=true",
    )
    .await;
    assert_eq!(all["messages"][0]["metadata"]["event_type"], json!("other"));
    assert_eq!(all["messages"][1]["metadata"], metadata);
    assert_eq!(all["messages"][1]["user"], json!(BOT_USER_ID));

    // chat.update keeps the metadata unless it gives new metadata.
    call(
        &emu,
        "chat.update",
        json!({"channel": "C0GENERAL", "ts": ts, "text": "edited"}),
    )
    .await;
    assert_eq!(
        emu.message("C0GENERAL", &ts).expect("kept")["metadata"],
        metadata
    );
}

#[tokio::test]
async fn a_get_on_a_hook_lists_what_its_posts_created() {
    let emu = SlackEmulator::start(TOKEN).await.expect("start");
    let client = reqwest::Client::new();
    let url = format!("{}/pages/p1/incidents", emu.hook_url("statuspage"));
    let list = |url: String| {
        let client = client.clone();
        async move {
            client
                .get(url)
                .send()
                .await
                .expect("send")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    assert_eq!(list(format!("{url}?limit=100")).await, json!([]));
    let created: Value = client
        .post(&url)
        .json(&json!({"incident": {"name": "db", "metadata": {"warroom": {"incident": "INC-1"}}}}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    emu.fail_next("hook/statuspage", 1);
    let failed = client
        .post(&url)
        .json(&json!({"incident": {"name": "not created"}}))
        .send()
        .await
        .expect("send");
    assert_eq!(failed.status().as_u16(), 500);
    let listed = list(format!("{url}?limit=100")).await;
    assert_eq!(
        listed,
        json!([{"id": created["id"], "name": "db", "metadata": {"warroom": {"incident": "INC-1"}}}])
    );
    // Another path is another collection.
    let other = list(format!("{}/pages/p2/incidents", emu.hook_url("statuspage"))).await;
    assert_eq!(other, json!([]));

    // A create carried out but answered 500 is in the collection; an update names its item.
    emu.succeed_then_fail_next("hook/statuspage", 1);
    let lost = client
        .post(&url)
        .json(&json!({"incident": {"name": "lost answer"}}))
        .send()
        .await
        .expect("send");
    assert_eq!(lost.status().as_u16(), 500);
    let listed = list(url.clone()).await;
    assert_eq!(listed[0]["name"], json!("lost answer"));
    let lost_id = listed[0]["id"].as_str().expect("id").to_string();
    assert_ne!(json!(lost_id), created["id"]);
    let updated: Value = client
        .patch(format!("{url}/{lost_id}"))
        .json(&json!({"incident": {"status": "resolved"}}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(updated["id"], json!(lost_id));
}

#[tokio::test]
async fn a_call_stalled_before_acting_has_no_effect_until_released() {
    let emu = SlackEmulator::start(TOKEN).await.expect("start");
    emu.stall_next_where("conversations.create", StallPoint::BeforeActing, |p| {
        p.get("name").and_then(Value::as_str) == Some("held")
    });
    let other = call(&emu, "conversations.create", json!({"name": "free"})).await;
    assert_eq!(other["ok"], true, "a call the filter rejects is not held");
    let emu2 = emu.clone();
    let held =
        tokio::spawn(
            async move { call(&emu2, "conversations.create", json!({"name": "held"})).await },
        );
    assert!(
        emu.wait_stalled("conversations.create", Duration::from_secs(5))
            .await
    );
    assert_eq!(
        emu.channel_id_by_name("held"),
        None,
        "not carried out while held"
    );
    assert_eq!(emu.ok_calls("conversations.create").len(), 1);
    emu.release_stalled();
    let answer = held.await.expect("join");
    assert_eq!(answer["ok"], true);
    assert!(emu.channel_id_by_name("held").is_some());
    assert_eq!(emu.stalled("conversations.create"), 0);
    let again = call(&emu, "conversations.create", json!({"name": "held2"})).await;
    assert_eq!(again["ok"], true, "a stall holds one call only");
}

#[tokio::test]
async fn a_call_stalled_before_answering_is_recorded_but_unanswered() {
    let emu = SlackEmulator::start(TOKEN).await.expect("start");
    emu.stall_next("hook/oncall", StallPoint::BeforeAnswering);
    let url = emu.hook_url("oncall");
    let held = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .json(&json!({"x": 1}))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    assert!(
        emu.wait_stalled("hook/oncall", Duration::from_secs(5))
            .await
    );
    assert_eq!(emu.hooks("oncall").len(), 1, "carried out and recorded");
    assert!(!held.is_finished());
    emu.release_stalled();
    assert_eq!(held.await.expect("join").expect("answer"), 200);
}
