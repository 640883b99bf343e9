//! Essential effects (war room, invites, kickoff, pages) never give up while the incident is
//! open, say so loudly once they have failed for 15 minutes, and later effects wait for the
//! war room instead of failing.

use std::time::Duration;

use warroom::core::Effect;
use warroom::jobs::{self, MAX_ATTEMPTS};

use crate::helpers::{
    parse_prometheus_text, spawn_app, spawn_app_with, Backend, Spawn, TestApp, ALICE, ANNOUNCE,
};

crate::on_both_backends!(
    a_failing_war_room_is_retried_past_the_cap_and_reported_once,
    a_war_room_whose_attempts_never_finish_is_reported_at_claim_once,
    a_job_reclaimed_after_a_crash_runs_as_a_retry,
    a_kickoff_carried_by_its_update_never_gives_up,
    a_page_failing_after_a_lost_attempt_is_on_the_timeline,
);

async fn a_failing_war_room_is_retried_past_the_cap_and_reported_once(backend: Backend) {
    let app = spawn_app(backend).await;
    app.slack.fail_until_cleared("conversations.create");
    let start = app.clock.now();
    let answer = app.command("open P0 Checkout is down").await;
    assert_eq!(answer.status, 200, "{answer:?}");

    // An effect enqueued later, while the war room does not exist yet, waits for it.
    let mut conn = app.ctx.store.acquire().await.unwrap();
    jobs::enqueue_effects(
        &mut conn,
        1,
        &[Effect::PostToWarRoom {
            text: "Rolled back the deploy".into(),
        }],
        app.clock.now(),
    )
    .await
    .unwrap();
    drop(conn);
    let listed = app.jobs().await;
    let create = listed
        .iter()
        .find(|j| j.kind == "create_war_room")
        .expect("create job");
    let later = listed
        .iter()
        .find(|j| j.kind == "post_to_war_room")
        .expect("later job");
    assert_eq!(later.blocked_by, Some(create.id));

    let is_alarm =
        |text: &str| text.contains("INC-1") && text.contains("failed to create the war room");
    app.advance_until("the stuck alarm", Duration::from_secs(60), |s| {
        s.posts_to(ANNOUNCE)
            .into_iter()
            .find(|c| is_alarm(c.params["text"].as_str().unwrap_or_default()))
    })
    .await;
    assert!(
        app.clock.now() - start >= chrono::Duration::minutes(15),
        "reported after {:?}",
        app.clock.now() - start
    );
    app.eventually("the declarer's DM", |s| {
        s.dm_channels(ALICE).into_iter().find(|dm| {
            s.posts_to(dm)
                .iter()
                .any(|c| is_alarm(c.params["text"].as_str().unwrap_or_default()))
        })
    })
    .await;
    assert_stuck_counted(&app, "create_war_room").await;

    // Far past MAX_ATTEMPTS it still tries, and said so only once.
    let cap = MAX_ATTEMPTS as usize;
    app.advance_until("attempts past the cap", Duration::from_secs(60), |s| {
        let tries = s
            .calls()
            .iter()
            .filter(|c| c.method == "conversations.create")
            .count();
        (tries > cap + 3).then_some(())
    })
    .await;
    let listed = app.jobs().await;
    let create = listed.iter().find(|j| j.kind == "create_war_room").unwrap();
    assert!(
        create.state == "pending" || create.state == "running",
        "{create:?}"
    );
    let alarms = app
        .slack
        .posts_to(ANNOUNCE)
        .into_iter()
        .filter(|c| is_alarm(c.params["text"].as_str().unwrap_or_default()))
        .count();
    assert_eq!(alarms, 1);

    // Slack recovers: the war room opens and the waiting effect lands in it.
    app.slack.clear_faults();
    let room = app
        .advance_until("the war room", Duration::from_secs(30), |s| {
            s.ok_calls("conversations.create")
                .first()
                .and_then(|c| c.response["channel"]["id"].as_str().map(String::from))
        })
        .await;
    app.advance_until("the later post", Duration::from_secs(1), |s| {
        s.posts_to(&room)
            .into_iter()
            .find(|c| c.params.to_string().contains("Rolled back the deploy"))
    })
    .await;
}

/// Runs due jobs (no worker runs in these apps) until none is left due.
async fn run_jobs(app: &TestApp) {
    for _ in 0..50 {
        if app.queue.run_once().await.expect("run jobs") == 0 {
            return;
        }
    }
    panic!("jobs kept coming: {:#?}", app.jobs().await);
}

/// Makes the last attempt of job `id` look lost with its worker: running, its lease expired
/// (`lease_until` is Unix milliseconds by the database's clock).
async fn lose_attempt(app: &TestApp, id: i64) {
    let mut conn = app.ctx.store.acquire().await.unwrap();
    sqlx::query("UPDATE jobs SET state = 'running', lease_until = 0 WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .unwrap();
}

/// The war room's job kills its worker (or hangs past its lease) every time, so it never
/// records a failure: once it has been unfinished for 15 minutes since it was due, claiming
/// it again raises the alarm, once.
async fn a_war_room_whose_attempts_never_finish_is_reported_at_claim_once(backend: Backend) {
    let app = spawn_app_with(Spawn {
        workers: 0,
        ..Spawn::new(backend)
    })
    .await;
    let answer = app.command("open P0 Checkout is down").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let stuck = |jobs: &[warroom::store::JobRecord]| {
        jobs.iter().filter(|j| j.kind == "delivery_stuck").count()
    };
    // Each attempt dies with its worker right after its claim: nothing is ever recorded.
    let claimed = jobs::claim(&app.queue, 10).await.unwrap();
    assert!(
        claimed.iter().any(|j| j.kind == "create_war_room"),
        "{claimed:?}"
    );
    for round in 1..=3 {
        assert_eq!(stuck(&app.jobs().await), 0, "round {round}");
        lose_attempt(&app, job_of(&app, "create_war_room").await.id).await;
        app.clock.advance(Duration::from_secs(5 * 60));
        let claimed = jobs::claim(&app.queue, 10).await.unwrap();
        assert!(
            claimed.iter().any(|j| j.kind == "create_war_room"),
            "{claimed:?}"
        );
    }
    let listed = app.jobs().await;
    assert_eq!(stuck(&listed), 1, "{listed:#?}");
    assert_stuck_counted(&app, "create_war_room").await;
    // The alarm goes out (the war room's job still holds its lease meanwhile).
    run_jobs(&app).await;
    let alarms = |app: &TestApp| {
        app.slack
            .posts_to(ANNOUNCE)
            .into_iter()
            .filter_map(|c| c.params["text"].as_str().map(String::from))
            .filter(|t| t.contains("INC-1") && t.contains("failed to create the war room"))
            .collect::<Vec<_>>()
    };
    let alarm = alarms(&app);
    assert_eq!(alarm.len(), 1, "{alarm:?}");
    assert!(
        alarm[0].contains("for 15m"),
        "since it was due: {}",
        alarm[0]
    );
    // Lost again and claimed again: no second alarm.
    lose_attempt(&app, job_of(&app, "create_war_room").await.id).await;
    app.clock.advance(Duration::from_secs(60));
    jobs::claim(&app.queue, 10).await.unwrap();
    assert_eq!(stuck(&app.jobs().await), 1);
    run_jobs(&app).await;
    assert_eq!(alarms(&app).len(), 1);
}

/// A kickoff posted by an attempt whose process died before its commit: the attempt that
/// claims it again (after the start-up requeue on SQLite, an expired lease on PostgreSQL)
/// runs as a retry, finds the lost attempt's post and adopts it.
async fn a_job_reclaimed_after_a_crash_runs_as_a_retry(backend: Backend) {
    let app = spawn_app_with(Spawn {
        workers: 0,
        ..Spawn::new(backend)
    })
    .await;
    app.command("open P3 search is slow").await;
    run_jobs(&app).await;
    let room = app
        .incident(1)
        .await
        .and_then(|i| i.war_room)
        .expect("the war room")
        .id;
    let kickoff = app.slack.messages_in(&room);
    assert_eq!(kickoff.len(), 1, "{kickoff:#?}");
    let history = app.slack.api_calls("conversations.history").len();
    // The kickoff went out, then the process died before its commit.
    let mut conn = app.ctx.store.acquire().await.unwrap();
    sqlx::query("UPDATE incidents SET kickoff_ref = NULL WHERE number = 1")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    lose_attempt(&app, job_of(&app, "post_kickoff").await.id).await;
    let app = app.restart(0).await;
    run_jobs(&app).await;
    let job = app
        .jobs()
        .await
        .into_iter()
        .find(|j| j.kind == "post_kickoff")
        .expect("the kickoff job");
    assert_eq!((job.state.as_str(), job.attempts), ("done", 2), "{job:?}");
    assert!(
        app.slack.api_calls("conversations.history").len() > history,
        "the retry looked for the lost attempt's post"
    );
    assert_eq!(app.slack.messages_in(&room).len(), 1, "one kickoff");
    assert_eq!(
        app.incident(1).await.and_then(|i| i.kickoff_ref).as_deref(),
        kickoff[0]["ts"].as_str()
    );
}

/// The kickoff's post was running when an update of it was enqueued (an ack, say), so the
/// update superseded it and now carries the kickoff (it posts one when none is known): it is
/// as essential as the post, and never given up while the incident is open.
async fn a_kickoff_carried_by_its_update_never_gives_up(backend: Backend) {
    let app = spawn_app_with(Spawn {
        workers: 0,
        ..Spawn::new(backend)
    })
    .await;
    app.slack.fail_until_cleared("chat.postMessage");
    app.command("open P3 search is slow").await;
    run_jobs(&app).await;
    assert_eq!(job_of(&app, "post_kickoff").await.state, "pending");
    // The post is being tried (running, its lease held) when the update is enqueued.
    let mut conn = app.ctx.store.acquire().await.unwrap();
    sqlx::query(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = $1 \
         WHERE kind = 'post_kickoff'",
    )
    .bind(i64::MAX / 2)
    .execute(&mut *conn)
    .await
    .unwrap();
    let added = jobs::enqueue_effects(&mut conn, 1, &[Effect::UpdateKickoff], app.clock.now())
        .await
        .unwrap();
    assert_eq!(added, 1);
    drop(conn);
    // That attempt is lost; the update supersedes it and fails on, past the attempt cap.
    lose_attempt(&app, job_of(&app, "post_kickoff").await.id).await;
    app.clock.advance(Duration::from_secs(60));
    run_jobs(&app).await;
    assert_eq!(job_of(&app, "post_kickoff").await.state, "cancelled");
    let mut conn = app.ctx.store.acquire().await.unwrap();
    sqlx::query("UPDATE jobs SET attempts = $1 WHERE kind = 'update_kickoff'")
        .bind(MAX_ATTEMPTS)
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    app.clock.advance(Duration::from_secs(60));
    run_jobs(&app).await;
    let update = job_of(&app, "update_kickoff").await;
    assert_eq!(
        (update.state.as_str(), update.attempts),
        ("pending", MAX_ATTEMPTS + 1),
        "{update:?}"
    );
    // Slack recovers: the update posts the kickoff.
    app.slack.clear_faults();
    app.clock.advance(Duration::from_secs(60));
    run_jobs(&app).await;
    assert_eq!(job_of(&app, "update_kickoff").await.state, "done");
    assert!(app.incident(1).await.and_then(|i| i.kickoff_ref).is_some());
}

/// A page's first attempt died with its worker; its next one fails: the failure is on the
/// timeline at once all the same (once per page, not once per retry).
async fn a_page_failing_after_a_lost_attempt_is_on_the_timeline(backend: Backend) {
    let app = spawn_app_with(Spawn {
        workers: 0,
        config: crate::escalation::ESCALATION_CONFIG.to_string(),
        ..Spawn::new(backend)
    })
    .await;
    app.slack.fail_next("hook/senior", 5);
    app.command("open P0 cdn errors").await;
    run_jobs(&app).await;
    // Step 2 (15m) pages senior; the attempts of its pages are lost with their worker.
    app.clock.advance(Duration::from_secs(15 * 60));
    app.queue.run_once().await.unwrap();
    let claimed = jobs::claim(&app.queue, 10).await.unwrap();
    assert!(
        claimed
            .iter()
            .any(|j| j.kind == "page" && j.payload.contains("webhook")),
        "the webhook page to senior: {claimed:#?}"
    );
    for job in &claimed {
        lose_attempt(&app, job.id).await;
    }
    for _ in 0..3 {
        app.clock.advance(Duration::from_secs(60));
        run_jobs(&app).await;
    }
    let events = app.timeline(1).await;
    let failing = events
        .iter()
        .filter(|e| e.text().contains("Paging senior by webhook"))
        .count();
    assert_eq!(failing, 1, "{events:#?}");
    assert!(app.slack.hooks("senior").len() >= 3);
}

/// The job of `kind` (the first, if several).
async fn job_of(app: &TestApp, kind: &str) -> warroom::store::JobRecord {
    app.jobs()
        .await
        .into_iter()
        .find(|j| j.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} job"))
}

/// `/metrics`, in Prometheus' text format, counts the stuck job of `kind` (the counter is
/// process-wide: other tests may have added to it) beside the queue's other series.
async fn assert_stuck_counted(app: &TestApp, kind: &str) {
    let samples = app.scrape_metrics().await;
    assert!(
        samples.iter().any(|s| s.name == "warroom_jobs_stuck_total"
            && s.label("kind") == Some(kind)
            && s.value >= 1.0),
        "{samples:#?}"
    );
    assert!(
        samples
            .iter()
            .any(|s| s.name == "warroom_jobs_total" && s.label("outcome").is_some()),
        "{samples:#?}"
    );
}

#[test]
fn the_prometheus_text_check_rejects_what_a_scrape_would() {
    let good =
        "# HELP a_total A.\n# TYPE a_total counter\na_total{kind=\"x \\\"y\\\"\",b=\"\"} 3\n\
                # TYPE t summary\nt{quantile=\"0.5\"} NaN\nt_sum 1.5\nt_count 2 1700000000000\n";
    let samples = parse_prometheus_text(good).expect("valid");
    assert_eq!(samples.len(), 4);
    assert_eq!(samples[0].label("kind"), Some("x \"y\""));
    for bad in [
        "a_total{kind=x} 1",
        "a_total{kind=\"x\"} one",
        "a_total{kind=\"x\"}1",
        "a-total 1",
        "a_total{kind=\"x\" 1",
        "a_total 1\n# TYPE a_total counter",
        "# TYPE a_total counter\n# TYPE a_total counter",
        "# TYPE a_total countr",
    ] {
        assert!(parse_prometheus_text(bad).is_err(), "{bad}");
    }
}
