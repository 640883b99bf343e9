//! The health watcher: one durable poll job per configured service (`health.<service>`) while
//! any incident is open. Each poll reads the service's version (`.version`, or the configured
//! JSON pointer) and reports transitions — deploys, failures, recoveries — on the timeline of
//! every open incident, never one per poll. The core decides what a deploy means for an
//! incident (its fix, a rollback); this module only fetches, stores and enqueues.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::HealthService;
use crate::context::AppContext;
use crate::core::hotfix::{self, Observation, ServiceChange};
use crate::core::{Effect, Incident, Signal, Status, TimelineDetail, TimelineEvent, TimelineKind};
use crate::jobs::{JobError, JobOutcome};
use crate::store::{self, NewJob, StoreResult};

/// Job kind of a health poll.
pub const POLL_JOB: &str = "health_poll";

#[derive(Debug, Serialize, Deserialize)]
struct PollJob {
    service: String,
}

/// Enqueues a poll of every configured service (at most one pending per service).
pub async fn start_polls(
    conn: &mut sqlx::AnyConnection,
    ctx: &AppContext,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    for name in ctx.config.health.services.keys() {
        enqueue_poll(conn, name, now).await?;
    }
    Ok(())
}

async fn enqueue_poll(
    conn: &mut sqlx::AnyConnection,
    service: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let payload = serde_json::to_string(&PollJob {
        service: service.to_string(),
    })
    .map_err(|e| store::StoreError::Corrupt(e.to_string()))?;
    store::enqueue(
        conn,
        &NewJob {
            kind: POLL_JOB.into(),
            incident: None,
            payload,
            run_at: at,
            blocked_by: None,
            dedup_key: None,
            coalesce_key: Some(format!("health:{service}")),
        },
        at,
    )
    .await?;
    Ok(())
}

/// How long the monitoring window after a fix deploy lasts for a service.
pub fn monitor_for(ctx: &AppContext, service: &str) -> Duration {
    ctx.config
        .health
        .services
        .get(service)
        .and_then(|s| s.monitor_for)
        .unwrap_or(ctx.config.health.monitor_for)
}

/// Reads one health endpoint: healthy with its version, or failing with a reason.
pub async fn fetch(http: &reqwest::Client, service: &HealthService) -> Observation {
    let response = match http.get(&service.url).timeout(service.timeout).send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Observation::Failing(format!(
                "no answer within {}",
                humantime::format_duration(service.timeout)
            ))
        }
        Err(e) if e.is_connect() => return Observation::Failing("unreachable".into()),
        Err(_) => return Observation::Failing("request failed".into()),
    };
    let status = response.status();
    if !status.is_success() {
        return Observation::Failing(format!("HTTP {}", status.as_u16()));
    }
    let body = match response.bytes().await {
        Ok(b) => b,
        Err(_) => return Observation::Failing("the body could not be read".into()),
    };
    let json: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        Ok(_) => return Observation::Failing("unparsable body (not a JSON object)".into()),
        Err(_) => return Observation::Failing("unparsable body (not JSON)".into()),
    };
    let pointer = service.version_pointer.as_deref().unwrap_or("/version");
    match json.pointer(pointer) {
        Some(serde_json::Value::String(v)) => Observation::Healthy(reported_version(v)),
        Some(serde_json::Value::Number(n)) => Observation::Healthy(Some(n.to_string())),
        Some(_) => Observation::Failing(format!("`{pointer}` is not a version string")),
        None if service.version_pointer.is_some() => {
            Observation::Failing(format!("no `{pointer}` in the body"))
        }
        None => Observation::Healthy(None),
    }
}

/// Longest version kept from a health endpoint (characters); a longer one is cut.
const MAX_VERSION_CHARS: usize = 200;

/// A version as a health endpoint reported it, made inert like any text from outside: no
/// mention mark (it would name someone in Slack), no line breaks or control characters, at
/// most [`MAX_VERSION_CHARS`] characters. Nothing left: no version.
fn reported_version(raw: &str) -> Option<String> {
    let text: String = crate::core::inert(raw)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.chars().count() <= MAX_VERSION_CHARS {
        return Some(text.to_string());
    }
    let cut: String = text.chars().take(MAX_VERSION_CHARS - 1).collect();
    Some(format!("{}…", cut.trim_end()))
}

/// Runs one poll of `service`: fetch, fold into the stored state, tell every open incident
/// about each transition, and schedule the next poll. No poll is scheduled once no incident
/// is open.
/// Runs the health polls.
pub struct PollHandler {
    pub ctx: AppContext,
}

#[async_trait::async_trait]
impl crate::jobs::JobHandler for PollHandler {
    fn kinds(&self) -> Vec<&'static str> {
        vec![POLL_JOB]
    }

    async fn run(
        &self,
        job: &crate::store::ClaimedJob,
        _: DateTime<Utc>,
    ) -> Result<JobOutcome, JobError> {
        poll(&self.ctx, &job.payload).await
    }
}

pub async fn poll(ctx: &AppContext, payload: &str) -> Result<JobOutcome, JobError> {
    let job: PollJob = serde_json::from_str(payload)
        .map_err(|e| JobError::fatal(format!("unreadable health poll: {e}")))?;
    let Some(service) = ctx.config.health.services.get(&job.service) else {
        return Ok(JobOutcome::none()); // removed from the configuration
    };
    let active = {
        let mut conn = ctx.store.acquire().await?;
        store::active_incidents(&mut conn).await?
    };
    if active.is_empty() {
        return Ok(JobOutcome::none());
    }
    let observation = fetch(&ctx.http, service).await;
    let now = ctx.clock.now();
    let mut tx = ctx.store.begin().await?;
    let previous = store::service_state(&mut tx, &job.service).await?;
    let (next, changes) = hotfix::observe(&previous, observation);
    store::save_service_state(&mut tx, &job.service, &next, now).await?;
    // The version running when an incident was declared, for incidents declared before this
    // service had reported one.
    if let Some(version) = &next.version {
        for incident in &active {
            if !incident.versions_at_open.contains_key(&job.service) {
                store::set_version_at_open(&mut tx, incident, &job.service, version).await?;
                crate::jobs::enqueue_effects(
                    &mut tx,
                    incident.number,
                    &[Effect::UpdateKickoff],
                    now,
                )
                .await?;
            }
        }
    }
    for change in &changes {
        for incident in &active {
            let (events, effects) = consequences(ctx, incident, &job.service, change, now);
            for (event, key) in events {
                store::insert_timeline(&mut tx, incident.number, &event, key.as_deref()).await?;
            }
            if let ServiceChange::Deployed { from, to } = change {
                if effects.iter().any(
                    |e| matches!(e, Effect::MonitoringWindowEnd { version, .. } if version == to),
                ) {
                    store::mark_fix_deployed(&mut tx, incident.number, from.as_deref(), now)
                        .await?;
                }
            }
            crate::jobs::enqueue_effects(&mut tx, incident.number, &effects, now).await?;
        }
    }
    let interval =
        chrono::Duration::from_std(service.interval).unwrap_or(chrono::Duration::seconds(10));
    enqueue_poll(&mut tx, &job.service, now + interval).await?;
    tx.commit().await.map_err(store::StoreError::from)?;
    ctx.wake.notify_waiters();
    Ok(JobOutcome::none())
}

/// What a service change means for one incident: timeline events and effects.
fn consequences(
    ctx: &AppContext,
    incident: &Incident,
    service: &str,
    change: &ServiceChange,
    now: DateTime<Utc>,
) -> (Vec<(TimelineEvent, Option<String>)>, Vec<Effect>) {
    let mut events = Vec::new();
    let mut effects = Vec::new();
    // The war-room post is Slack text today (emoji included); the timeline keeps the same
    // sentence as data, its emoji as a signal.
    let mut note = |kind, detail: TimelineDetail, effects: &mut Vec<Effect>| {
        let emoji = match detail.signal {
            Some(Signal::FixDeployed) => ":rocket: ",
            Some(Signal::Rollback) => ":rewind: ",
            Some(Signal::Failing) => ":warning: ",
            Some(Signal::Recovered) => ":white_check_mark: ",
            None => "",
        }; // as `slack::render::signal_emoji`: health posts Slack text until it posts neutral messages
        effects.push(Effect::PostToWarRoom {
            text: format!("{emoji}{detail}"),
        });
        events.push((TimelineEvent::new(now, None, kind, detail), None));
    };
    match change {
        ServiceChange::Deployed { from, to } => {
            // Typed text: what a health endpoint reported names nobody.
            let was = |detail: TimelineDetail| match from.as_deref() {
                Some(f) => detail.words(" (was ").typed(f).words(")"),
                None => detail,
            };
            if incident.fix_deployed_at.is_none()
                && !incident.hotfixes.is_empty()
                && hotfix::is_fix(&incident.hotfixes, to, now)
            {
                let window = monitor_for(ctx, service);
                let links = incident
                    .hotfixes
                    .iter()
                    .map(|l| hotfix::display_link(&l.url))
                    .collect::<Vec<_>>()
                    .join(", ");
                note(
                    TimelineKind::Deploy,
                    was(TimelineDetail::new()
                        .words(format!("Fix deployed: {service} runs "))
                        .typed(to))
                    .words(format!(
                        " ({links}). Monitoring for {}.",
                        humantime::format_duration(window)
                    ))
                    .with_signal(Signal::FixDeployed),
                    &mut effects,
                );
                effects.push(Effect::UpdateKickoff);
                effects.push(Effect::SetWarRoomTopic);
                effects.push(Effect::MonitoringWindowEnd {
                    due_at: now
                        + chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX),
                    started_at: now,
                    version: to.clone(),
                });
            } else if incident.fix_deployed_at.is_some()
                && hotfix::is_rollback(incident.fix_from_version.as_deref(), to)
            {
                note(
                    TimelineKind::Deploy,
                    was(TimelineDetail::new()
                        .words(format!("Rollback: {service} went back to "))
                        .typed(to))
                    .words(", the version the fix replaced.")
                    .with_signal(Signal::Rollback),
                    &mut effects,
                );
            } else {
                note(
                    TimelineKind::Deploy,
                    was(TimelineDetail::new()
                        .words("Deployed ")
                        .typed(to)
                        .words(format!(" on {service}"))),
                    &mut effects,
                );
            }
        }
        ServiceChange::Failing { reason } => {
            if incident.status == Status::Monitoring {
                note(
                    TimelineKind::Health,
                    TimelineDetail::new()
                        .words(format!("{service} health check failing ("))
                        .typed(reason)
                        .words(") while the fix is monitored: consider rollback.")
                        .with_signal(Signal::Failing),
                    &mut effects,
                );
                let who = incident
                    .commander()
                    .cloned()
                    .unwrap_or_else(|| incident.declared_by.clone());
                effects.push(Effect::PageUser {
                    user: who,
                    reason: format!(
                        "{service} is failing ({reason}) after the fix for {} was deployed: consider rollback",
                        incident.key()
                    ),
                });
            } else {
                note(
                    TimelineKind::Health,
                    TimelineDetail::new()
                        .words(format!("{service} health check failing ("))
                        .typed(reason)
                        .words(")")
                        .with_signal(Signal::Failing),
                    &mut effects,
                );
            }
        }
        ServiceChange::Recovered => {
            note(
                TimelineKind::Health,
                TimelineDetail::new()
                    .words(format!("{service} healthy again"))
                    .with_signal(Signal::Recovered),
                &mut effects,
            );
        }
    }
    (events, effects)
}

/// How many health failures the incident's timeline shows in a window.
pub async fn failures_between(
    ctx: &AppContext,
    incident: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> StoreResult<usize> {
    let mut conn = ctx.store.acquire().await?;
    Ok(store::timeline(&mut conn, incident)
        .await?
        .iter()
        .filter(|e| {
            e.kind == TimelineKind::Health
                && e.detail.signal == Some(Signal::Failing)
                && e.at >= from
                && e.at <= to
        })
        .count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use axum::Router;

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}")
    }

    fn service(url: String, pointer: Option<&str>) -> HealthService {
        HealthService {
            url,
            interval: Duration::from_secs(10),
            timeout: Duration::from_millis(300),
            version_pointer: pointer.map(String::from),
            monitor_for: None,
        }
    }

    #[test]
    fn reported_versions_are_inert() {
        assert_eq!(reported_version(" v1.2.3\n").as_deref(), Some("v1.2.3"));
        assert_eq!(
            reported_version("v2 \u{2063}@U0BOB\tx").as_deref(),
            Some("v2 @U0BOB x")
        );
        assert_eq!(reported_version("\u{2063}"), None);
        let long = reported_version(&"é".repeat(500)).unwrap_or_default();
        assert_eq!(long.chars().count(), MAX_VERSION_CHARS);
        assert!(long.ends_with('…'));
    }

    #[tokio::test]
    async fn reads_versions_and_classifies_failures() {
        let base = serve(
            Router::new()
                .route(
                    "/plain",
                    get(|| async { axum::Json(serde_json::json!({"version": "v1.2.3"})) }),
                )
                .route(
                    "/nested",
                    get(|| async { axum::Json(serde_json::json!({"build": {"version": 42}})) }),
                )
                .route(
                    "/noversion",
                    get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
                )
                .route(
                    "/array",
                    get(|| async { axum::Json(serde_json::json!(["v1"])) }),
                )
                .route("/text", get(|| async { "OK" }))
                .route(
                    "/down",
                    get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "no") }),
                )
                .route(
                    "/slow",
                    get(|| async {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        "late"
                    }),
                ),
        )
        .await;
        let http = reqwest::Client::new();
        let at = |path: &str, pointer: Option<&str>| service(format!("{base}{path}"), pointer);
        assert_eq!(
            fetch(&http, &at("/plain", None)).await,
            Observation::Healthy(Some("v1.2.3".into()))
        );
        assert_eq!(
            fetch(&http, &at("/nested", Some("/build/version"))).await,
            Observation::Healthy(Some("42".into()))
        );
        assert_eq!(
            fetch(&http, &at("/noversion", None)).await,
            Observation::Healthy(None)
        );
        assert!(matches!(
            fetch(&http, &at("/noversion", Some("/build/version"))).await,
            Observation::Failing(r) if r.contains("/build/version")
        ));
        assert!(
            matches!(fetch(&http, &at("/array", None)).await, Observation::Failing(r) if r.contains("unparsable"))
        );
        assert!(
            matches!(fetch(&http, &at("/text", None)).await, Observation::Failing(r) if r.contains("unparsable"))
        );
        assert_eq!(
            fetch(&http, &at("/down", None)).await,
            Observation::Failing("HTTP 503".into())
        );
        assert!(
            matches!(fetch(&http, &at("/slow", None)).await, Observation::Failing(r) if r.contains("no answer within"))
        );
        assert_eq!(
            fetch(&http, &service("http://127.0.0.1:9/health".into(), None)).await,
            Observation::Failing("unreachable".into())
        );
    }
}
