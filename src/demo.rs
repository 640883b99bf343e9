//! `warroom demo`: a scripted P0 incident run through the real server, store and workers
//! against an in-process Slack emulator, printed as the transcript each channel would show.
//! It needs no credentials and leaves nothing behind (its database lives in a temp dir).

use std::io::Write;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::app::{App, Settings};
use crate::clock::Clock;
use crate::config::{Config, Environment};
use crate::context::AppContext;
use crate::slack::sign_request;
use crate::testkit::slack_emulator::{RecordedCall, SlackEmulator};

const SECRET: &str = "demo-signing-secret";
const TOKEN: &str = "xoxb-demo";
const GENERAL: &str = "C0GENERAL";
const ANNOUNCE: &str = "C0ANNOUNCE";
const ALICE: &str = "U0ALICE";
const PATIENCE: Duration = Duration::from_secs(20);

const DEMO_CONFIG: &str = r#"
[slack]
announce_channel = "C0ANNOUNCE"

[health]
monitor_for = "30m"

[health.shop]
url = "{emulator}/health/shop"
interval = "10s"

[severity.P0]
escalation = [
  { after = "0s", page = ["primary"] },
  { after = "15m", page = ["senior"] },
  { after = "30m", page = ["manager"] },
]

[contacts.primary]
slack_user = "U0PRIMARY"

[contacts.senior]
slack_user = "U0SENIOR"

[contacts.manager]
slack_user = "U0MANAGER"
"#;

/// Runs the demo, writing the transcript to `out`.
pub async fn run(out: &mut impl Write) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("warroom-demo-")
        .tempdir()
        .context("cannot create a temp dir for the demo database")?;
    let slack = SlackEmulator::start(TOKEN)
        .await
        .context("cannot start the Slack emulator")?;
    let clock = Clock::manual(Utc::now());
    let vars = [
        ("WARROOM_BIND", "127.0.0.1:0".to_string()),
        (
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("demo.db").display()),
        ),
        ("SLACK_API_URL", slack.api_url()),
        ("SLACK_SIGNING_SECRET", SECRET.to_string()),
        ("SLACK_BOT_TOKEN", TOKEN.to_string()),
    ];
    let env = Environment::from_lookup(|k| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let config = Config::from_toml(&DEMO_CONFIG.replace("{emulator}", &slack.base_url()))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // The shop's health endpoint reports the version in production.
    slack.set_health(
        "shop",
        200,
        serde_json::json!({ "status": "ok", "version": "v1.2.3" }),
    );
    let app = App::build(Settings {
        config,
        env,
        clock: clock.clone(),
        workers: 1,
        paging: Default::default(),
        statuspage: None,
    })
    .await?;
    let base = format!("http://{}", app.addr());
    let ctx = app.context();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let demo = Demo {
        slack: slack.clone(),
        base,
        http: reqwest::Client::new(),
        ctx,
        started: clock.now(),
        clock,
    };
    let result = demo.script(out).await;
    shutdown.cancel();
    let _ = server.await;
    slack.shutdown();
    result
}

struct Demo {
    slack: SlackEmulator,
    base: String,
    http: reqwest::Client,
    ctx: AppContext,
    clock: Clock,
    started: chrono::DateTime<Utc>,
}

impl Demo {
    async fn script(&self, out: &mut impl Write) -> anyhow::Result<()> {
        writeln!(
            out,
            "warroom demo: a scripted P0 incident through the real server, database and job\n\
             workers, against an in-process Slack emulator. No credentials needed.\n"
        )?;
        let text = "open P0 Checkout is down: card payments fail with 502";
        self.say(out, "@alice in #general", &format!("/incident {text}"))?;
        let reply = self.command(text, GENERAL, ALICE, "open").await?;
        writeln!(
            out,
            "           warroom answers (only @alice sees it): {}\n",
            readable(&reply)
        )?;

        let (room, name) = self
            .wait("the war room", |s| {
                let c = s.ok_calls("conversations.create").into_iter().next()?;
                Some((
                    c.response["channel"]["id"].as_str()?.to_string(),
                    c.response["channel"]["name"].as_str()?.to_string(),
                ))
            })
            .await?;
        self.wait("the kickoff, announcement, reply and first page", |s| {
            (s.posts_to(&room)
                .iter()
                .any(|c| c.params["blocks"].is_array())
                && !s.posts_to(ANNOUNCE).is_empty()
                && !s.responses("open").is_empty()
                && !s.dm_posts("U0PRIMARY").is_empty())
            .then_some(())
        })
        .await?;
        self.settle().await?;
        let kickoff_ts = self
            .slack
            .posts_to(&room)
            .into_iter()
            .find(|c| c.params["blocks"].is_array())
            .and_then(|c| c.response["ts"].as_str().map(String::from))
            .unwrap_or_default();

        writeln!(out, "── What warroom did on Slack, in order ──")?;
        for call in self.slack.calls() {
            writeln!(out, "  {}", describe(&call))?;
        }
        writeln!(out)?;
        writeln!(out, "── #general: the reply to @alice ──")?;
        for r in self.slack.responses("open") {
            writeln!(
                out,
                "  {}",
                readable(r.param_str("text").unwrap_or_default())
            )?;
        }
        writeln!(out)?;
        writeln!(out, "── #{name} (the war room) ──")?;
        writeln!(
            out,
            "  topic:   {}",
            readable(&self.slack.topic(&room).unwrap_or_default())
        )?;
        writeln!(
            out,
            "  members: {}",
            self.slack
                .members(&room)
                .iter()
                .map(|u| handle(u))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
        for post in self.slack.posts_to(&room) {
            print_message(out, &post.params)?;
        }
        writeln!(out)?;
        writeln!(out, "── #incidents (the announce channel) ──")?;
        for post in self.slack.posts_to(ANNOUNCE) {
            print_message(out, &post.params)?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "── Direct message to @primary (escalation step 1, at once) ──"
        )?;
        let page = self.slack.dm_posts("U0PRIMARY");
        for post in &page {
            print_message(out, &post.params)?;
        }
        writeln!(out)?;

        // The war room at work.
        self.clock.advance(Duration::from_secs(3 * 60));
        let seen = self.slack.calls().len();
        if let Some(page) = page.first() {
            let dm = page.param_str("channel").unwrap_or_default().to_string();
            let ts = page.response["ts"].as_str().unwrap_or_default().to_string();
            self.say(out, "@primary in the DM", "presses [Acknowledge]")?;
            self.press(&dm, &ts, "acknowledge", "1", "U0PRIMARY")
                .await?;
        }
        self.clock.advance(Duration::from_secs(60));
        self.say(
            out,
            &format!("@alice in #{name}"),
            "/incident assign commander @alice",
        )?;
        let answer = self
            .command("assign commander <@U0ALICE>", &room, ALICE, "assign")
            .await?;
        writeln!(out, "           warroom answers: {}", readable(&answer))?;
        self.clock.advance(Duration::from_secs(2 * 60));
        let pinned_ts = "1700000100.000100";
        self.slack.register_message(
            &room,
            pinned_ts,
            "U0BOB",
            "error rate 45% on /checkout since 01:58, all card brands",
        );
        self.say(
            out,
            &format!("@bob in #{name}"),
            "error rate 45% on /checkout since 01:58, all card brands",
        )?;
        self.say(out, "@alice", "reacts to bob's message with :pushpin:")?;
        self.pin(&room, pinned_ts, ALICE).await?;
        self.clock.advance(Duration::from_secs(60));
        for (position, what) in [
            (1, "Assess impact and confirm severity"),
            (2, "Incident channel open…"),
        ] {
            self.say(out, "@primary", &format!("presses [Done] on “{what}”"))?;
            self.press(
                &room,
                &kickoff_ts,
                &format!("checklist_toggle:{position}"),
                &format!("1:{position}"),
                "U0PRIMARY",
            )
            .await?;
        }
        self.clock.advance(Duration::from_secs(4 * 60));
        let status = "status Rolled back payment-gateway to v1.2.3; error rate falling, watching";
        self.say(
            out,
            &format!("@alice in #{name}"),
            &format!("/incident {status}"),
        )?;
        let answer = self.command(status, &room, ALICE, "status").await?;
        writeln!(out, "           warroom answers: {}\n", readable(&answer))?;
        self.settle().await?;

        writeln!(out, "── New messages ──")?;
        for call in self.slack.calls().into_iter().skip(seen) {
            if call.method == "chat.postMessage" && call.ok() {
                let channel = call.param_str("channel").unwrap_or_default();
                let place = if channel == room {
                    format!("#{name}")
                } else if channel == ANNOUNCE {
                    "#incidents".to_string()
                } else {
                    channel.to_string()
                };
                writeln!(out, "  in {place}:")?;
                print_message(out, &call.params)?;
            }
        }
        writeln!(out)?;
        writeln!(
            out,
            "── The kickoff message in #{name}, updated in place ({} chat.update calls) ──",
            self.slack.ok_calls("chat.update").len()
        )?;
        if let Some(message) = self.slack.message(&room, &kickoff_ts) {
            print_message(out, &message)?;
        }
        writeln!(out)?;

        // The hotfix: linked, deployed, watched.
        self.clock.advance(Duration::from_secs(60));
        let hotfix = "hotfix https://github.com/acme/shop/pull/812 v1.2.4";
        self.say(
            out,
            &format!("@alice in #{name}"),
            &format!("/incident {hotfix}"),
        )?;
        let answer = self.command(hotfix, &room, ALICE, "hotfix").await?;
        writeln!(out, "           warroom answers: {}", readable(&answer))?;
        self.tick(Duration::from_secs(10)).await?;
        self.clock.advance(Duration::from_secs(3 * 60));
        self.slack.set_health(
            "shop",
            200,
            serde_json::json!({ "status": "ok", "version": "v1.2.4" }),
        );
        self.say(
            out,
            "CI",
            "deploys v1.2.4 to production (shop's /health now says v1.2.4)",
        )?;
        let seen = self.slack.calls().len();
        self.tick(Duration::from_secs(10)).await?;
        self.tick(Duration::from_secs(30 * 60)).await?;
        writeln!(out, "\n── New messages in #{name} ──")?;
        for call in self.slack.calls().into_iter().skip(seen) {
            if call.method == "chat.postMessage"
                && call.ok()
                && call.param_str("channel") == Some(room.as_str())
            {
                print_message(out, &call.params)?;
            }
        }
        writeln!(out)?;
        writeln!(
            out,
            "{}  {} minutes after the declaration: @senior was {}paged (the 15 m step), because @primary acknowledged.\n",
            self.clock_text(),
            (self.clock.now() - self.started).num_minutes(),
            if self.slack.dm_posts("U0SENIOR").is_empty() { "not " } else { "" }
        )?;

        // Resolution, through the form.
        self.clock.advance(Duration::from_secs(2 * 60));
        self.say(
            out,
            &format!("@alice in #{name}"),
            "/incident resolve   (fills in the resolution form)",
        )?;
        let seen = self.slack.calls().len();
        self.submit_resolution().await?;
        self.settle().await?;
        writeln!(out)?;
        for call in self.slack.calls().into_iter().skip(seen) {
            if call.method == "chat.postMessage" && call.ok() {
                let channel = call.param_str("channel").unwrap_or_default();
                let text = call.param_str("text").unwrap_or_default();
                let heading = if channel == ANNOUNCE {
                    "── #incidents: the internal announcement ──".to_string()
                } else if text.contains("Status-page update") {
                    format!("── #{name}: the status-page update (no Statuspage configured: a draft to paste) ──")
                } else if text.contains("Customer email") {
                    format!(
                        "── #{name}: the customer email (no SMTP configured: a draft to send) ──"
                    )
                } else {
                    format!("── #{name} ──")
                };
                writeln!(out, "{heading}")?;
                print_message(out, &call.params)?;
                writeln!(out)?;
            }
            if call.method == "files.completeUploadExternal" && call.ok() {
                let file = call.params["files"][0]["id"].as_str().unwrap_or_default();
                writeln!(
                    out,
                    "── #{name}: the post-incident review (uploaded as a Markdown file) ──"
                )?;
                if let Some(data) = self.slack.uploaded(file) {
                    for line in String::from_utf8_lossy(&data).lines() {
                        writeln!(out, "  │ {line}")?;
                    }
                }
                writeln!(out)?;
            }
        }

        writeln!(out, "── The timeline of INC-1 (`/incident timeline`) ──")?;
        let mut conn = self.ctx.store.acquire().await?;
        for event in crate::store::timeline(&mut conn, 1).await? {
            writeln!(
                out,
                "  {}  {:<16} {}{}",
                event.at.format("%H:%M:%S UTC"),
                event.kind.as_str(),
                event
                    .actor
                    .as_deref()
                    .map(|a| format!("{}: ", handle(a)))
                    .unwrap_or_default(),
                readable(&crate::slack::render::event_text(&event.detail))
            )?;
        }
        writeln!(
            out,
            "\nTry it for real: `warroom manifest --url https://your-host` creates the Slack app; \
             then `warroom serve`."
        )?;
        Ok(())
    }

    fn say(&self, out: &mut impl Write, who: &str, what: &str) -> std::io::Result<()> {
        writeln!(out, "{}  {who}: {what}", self.clock_text())
    }

    /// Waits until every job due now has been carried out.
    async fn settle(&self) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let now = self.clock.now();
            let jobs = {
                let mut conn = self.ctx.store.acquire().await?;
                crate::store::list_jobs(&mut conn).await?
            };
            let busy = jobs
                .iter()
                .any(|j| j.state == "running" || (j.state == "pending" && j.run_at <= now));
            if !busy {
                return Ok(());
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the demo timed out waiting for its jobs"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn post_signed(
        &self,
        path: &str,
        content_type: &str,
        body: String,
    ) -> anyhow::Result<String> {
        let ts = Utc::now().timestamp().to_string();
        let answer = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", &ts)
            .header(
                "x-slack-signature",
                sign_request(SECRET, &ts, body.as_bytes()),
            )
            .body(body)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(answer)
    }

    /// Presses a button, as Slack reports it.
    async fn press(
        &self,
        channel: &str,
        ts: &str,
        action_id: &str,
        value: &str,
        user: &str,
    ) -> anyhow::Result<()> {
        let payload = serde_json::json!({
            "type": "block_actions",
            "user": { "id": user },
            "container": { "type": "message", "message_ts": ts, "channel_id": channel },
            "channel": { "id": channel },
            "response_url": self.slack.response_url("press"),
            "actions": [{ "action_id": action_id, "value": value, "type": "button",
                          "action_ts": format!("{}.{}", Utc::now().timestamp(), action_id.len()) }]
        });
        let body = serde_urlencoded::to_string([("payload", payload.to_string())])?;
        self.post_signed(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            body,
        )
        .await?;
        self.settle().await
    }

    /// Moves the clock and lets due jobs (health polls, windows) run.
    async fn tick(&self, by: Duration) -> anyhow::Result<()> {
        self.clock.advance(by);
        self.ctx.wake.notify_waiters();
        self.settle().await
    }

    /// Submits the resolution form, as Slack reports it.
    async fn submit_resolution(&self) -> anyhow::Result<()> {
        let text = |v: &str| serde_json::json!({ "type": "plain_text_input", "value": v });
        let payload = serde_json::json!({
            "type": "view_submission",
            "user": { "id": ALICE },
            "view": {
                "id": "VDEMO1",
                "callback_id": "resolve_incident",
                "private_metadata": "1",
                "state": { "values": {
                    "summary": { "summary": text("Rolled back payment-gateway to v1.2.3, then shipped v1.2.4-hotfix with the pool limit fixed") },
                    "impact": { "impact": text("About 45% of card payments failed with 502 for 26 minutes; no data was lost") },
                    "root_cause": { "root_cause": text("v1.2.4 lowered the gateway connection pool to 10 connections; under peak load requests queued and timed out") },
                    "fix": { "fix": text("Pool size restored to 100 and made configurable; regression test added") },
                    "pr": { "pr": { "type": "url_text_input", "value": "https://github.com/acme/shop/pull/812" } },
                    "follow_ups": { "follow_ups": text("Alert on gateway pool saturation\nLoad-test gateway releases before rollout") },
                    "customer_facing": { "customer_facing": { "type": "radio_buttons", "selected_option": { "value": "yes" } } }
                } }
            }
        });
        let body = serde_urlencoded::to_string([("payload", payload.to_string())])?;
        self.post_signed(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            body,
        )
        .await?;
        self.settle().await
    }

    /// Reacts with :pushpin: to a message, as the Events API reports it.
    async fn pin(&self, channel: &str, ts: &str, user: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({
            "type": "event_callback",
            "event_id": format!("Ev{ts}"),
            "event": { "type": "reaction_added", "user": user, "reaction": "pushpin",
                       "item": { "type": "message", "channel": channel, "ts": ts } }
        })
        .to_string();
        self.post_signed("/slack/events", "application/json", body)
            .await?;
        self.settle().await
    }

    fn clock_text(&self) -> String {
        self.clock.now().format("%H:%M:%S UTC").to_string()
    }

    async fn wait<T>(
        &self,
        what: &str,
        f: impl FnMut(&SlackEmulator) -> Option<T>,
    ) -> anyhow::Result<T> {
        self.slack
            .wait_for(PATIENCE, f)
            .await
            .with_context(|| format!("the demo timed out waiting for {what}"))
    }

    /// Sends `/incident <text>` signed like Slack, returns the ephemeral answer's text.
    async fn command(
        &self,
        text: &str,
        channel: &str,
        user: &str,
        reply_id: &str,
    ) -> anyhow::Result<String> {
        let body = serde_urlencoded::to_string([
            ("team_id", "T1"),
            ("channel_id", channel),
            ("user_id", user),
            ("command", "/incident"),
            ("text", text),
            ("response_url", &self.slack.response_url(reply_id)),
            ("trigger_id", &format!("demo-{reply_id}")),
        ])?;
        let answer = self
            .post_signed("/slack/commands", "application/x-www-form-urlencoded", body)
            .await?;
        let answer: Value = serde_json::from_str(&answer)?;
        Ok(answer["text"].as_str().unwrap_or_default().to_string())
    }
}

/// `@alice` for `U0ALICE`, as the emulator names users.
fn handle(user: &str) -> String {
    let base = user.strip_prefix("U0").unwrap_or(user);
    if user == "UBOT" {
        "@warroom".into()
    } else {
        format!("@{}", base.to_lowercase())
    }
}

/// mrkdwn as a person would read it: mentions and links resolved, escapes undone.
fn readable(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let inner = &rest[start + 1..start + end];
        let shown = if let Some(user) = inner.strip_prefix('@') {
            handle(user)
        } else if let Some(channel) = inner.strip_prefix('#') {
            match channel.split_once('|') {
                Some((_, name)) => format!("#{name}"),
                None => format!("#{channel}"),
            }
        } else {
            match inner.split_once('|') {
                Some((_, label)) => label.to_string(),
                None => inner.to_string(),
            }
        };
        out.push_str(&shown);
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn describe(call: &RecordedCall) -> String {
    let p = &call.params;
    let mut bits = Vec::new();
    for key in ["channel", "name", "users", "topic", "ts"] {
        if let Some(v) = p.get(key) {
            let v = v
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| v.to_string());
            bits.push(format!("{key}={}", readable(&v)));
        }
    }
    let outcome = if call.ok() {
        "ok".to_string()
    } else {
        format!(
            "{} {}",
            call.status,
            call.response["error"].as_str().unwrap_or("")
        )
    };
    let what = match call.kind {
        crate::testkit::slack_emulator::CallKind::Response => "response_url reply".to_string(),
        _ => call.method.clone(),
    };
    format!("{what:<22} {} -> {outcome}", bits.join(" "))
}

fn print_message(out: &mut impl Write, params: &Value) -> std::io::Result<()> {
    writeln!(out, "  ┌ @warroom")?;
    match params.get("blocks").and_then(Value::as_array) {
        Some(blocks) => {
            for block in blocks {
                for line in block_lines(block) {
                    writeln!(out, "  │ {line}")?;
                }
            }
        }
        None => {
            let text = params
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default();
            for line in readable(text).lines() {
                writeln!(out, "  │ {line}")?;
            }
        }
    }
    writeln!(out, "  └")
}

fn text_of(v: &Value) -> String {
    readable(v.get("text").and_then(Value::as_str).unwrap_or_default())
}

fn button(v: &Value) -> String {
    format!("[{}]", text_of(v.get("text").unwrap_or(&Value::Null)))
}

fn block_lines(block: &Value) -> Vec<String> {
    match block.get("type").and_then(Value::as_str) {
        Some("divider") => vec!["────────────────────────────────".into()],
        Some("section") | Some("header") => {
            let mut lines: Vec<String> = block
                .get("text")
                .map(text_of)
                .unwrap_or_default()
                .lines()
                .map(String::from)
                .collect();
            if let Some(acc) = block.get("accessory").filter(|a| a["type"] == "button") {
                match lines.first_mut() {
                    Some(first) => {
                        let pad = 60usize.saturating_sub(first.chars().count()).max(2);
                        first.push_str(&" ".repeat(pad));
                        first.push_str(&button(acc));
                    }
                    None => lines.push(button(acc)),
                }
            }
            lines
        }
        Some("actions") => vec![block
            .get("elements")
            .and_then(Value::as_array)
            .map(|els| els.iter().map(button).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()],
        Some("context") => vec![block
            .get("elements")
            .and_then(Value::as_array)
            .map(|els| els.iter().map(text_of).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_resolves_mentions_and_escapes() {
        assert_eq!(
            readable("<@U0ALICE> opened <#C1|inc-1-db> &lt;!channel&gt; &amp; <https://x|link>"),
            "@alice opened #inc-1-db <!channel> & link"
        );
    }
}
