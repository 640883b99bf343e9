//! Escalation and paging: when a step comes due, each of its contacts is paged by every
//! route they have, one durable job per contact and route, until someone acknowledges.
//! A step or page that finds the incident acknowledged or resolved does nothing.

pub mod inbound;
pub mod routes;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::chat::{Destination, Message, Platforms, PostKey};
use crate::config::Contact;
use crate::context::AppContext;
use crate::core::{
    Effect, EscalationStep, Incident, Platform, TimelineDetail, TimelineEvent, TimelineKind,
};
use crate::jobs::JobRun;
use crate::jobs::{JobChange, JobError, JobOutcome};
use crate::store;

use routes::{DeliveryError, PageMessage, Pagers};

/// The paging routes of `contact` that can be used now: email needs SMTP and SMS needs Twilio to
/// be configured. Returns the usable ones and the ones left out.
pub fn usable_routes(pagers: &Pagers, contact: &Contact) -> (Vec<&'static str>, Vec<&'static str>) {
    contact
        .paging_routes()
        .into_iter()
        .partition(|route| match *route {
            "email" => pagers.smtp_configured(),
            "sms" => pagers.sms_configured(),
            _ => true,
        })
}

/// How a paging route is named for people: `Slack DM`, `PagerDuty`, `webhook`, `email`, `SMS`.
pub fn route_label(route: &str) -> String {
    match route {
        "slack" => "Slack DM".to_string(),
        "pagerduty" => "PagerDuty".to_string(),
        "sms" => "SMS".to_string(),
        other => other.to_string(),
    }
}

/// One PagerDuty incident per warroom incident.
pub fn pagerduty_dedup_key(incident: i64) -> String {
    format!("warroom-INC-{incident}")
}

/// The incident number of a PagerDuty dedup key written by warroom: exactly
/// `warroom-INC-<n>` (nothing before or after, no leading zeros), else `None`.
pub fn incident_from_dedup_key(key: &str) -> Option<i64> {
    let number: i64 = key.strip_prefix("warroom-INC-")?.parse().ok()?;
    (number > 0 && pagerduty_dedup_key(number) == key).then_some(number)
}

/// How long after the last escalation step warroom waits for an acknowledgement before it
/// says that nobody acknowledged: the gap between the last two steps of the ladder, or
/// [`DEFAULT_UNANSWERED_GRACE`] when the ladder has one step or the gap is zero.
pub fn unanswered_grace(steps: &[EscalationStep]) -> Duration {
    let mut paging = steps.iter().filter(|s| !s.page.is_empty()).rev();
    match (paging.next(), paging.next()) {
        (Some(last), Some(before)) if last.after > before.after => last.after - before.after,
        _ => DEFAULT_UNANSWERED_GRACE,
    }
}

/// The grace after a one-step ladder: 15 minutes.
pub const DEFAULT_UNANSWERED_GRACE: Duration = Duration::from_secs(15 * 60);

/// The index of the ladder's last step that pages someone.
fn last_step(steps: &[EscalationStep]) -> Option<usize> {
    steps.iter().rposition(|s| !s.page.is_empty())
}

impl From<DeliveryError> for JobError {
    fn from(e: DeliveryError) -> Self {
        match e {
            DeliveryError::Retryable { after, reason } => JobError::Retry { after, reason },
            DeliveryError::Fatal(reason) => JobError::Fatal(reason),
        }
    }
}

fn page_message(incident: &Incident, step: usize, contact: &str) -> PageMessage {
    PageMessage {
        incident: incident.number,
        key: incident.key(),
        title: incident.title.clone(),
        severity: incident.severity.as_str().to_string(),
        status: incident.status.as_str().to_string(),
        declared_by: incident.declared_by.clone(),
        declared_at: incident.declared_at,
        war_room: incident.war_room.as_ref().map(|r| format!("#{}", r.name)),
        link: None,
        step,
        contact: contact.to_string(),
    }
}

/// Whether paging still applies to the incident.
fn still_paging(incident: &Incident) -> bool {
    incident.acknowledged.is_none() && incident.status.is_active()
}

/// Makes "nobody can be reached" an event, in the caller's transaction: a timeline line
/// (once, by its source key `unreachable:<incident>:<key>`) and, the first time, the same text
/// in the war room and the announce channel.
async fn record_unreachable(
    conn: &mut sqlx::AnyConnection,
    incident: i64,
    key: &str,
    text: String,
    now: DateTime<Utc>,
) -> Result<(), store::StoreError> {
    let event = TimelineEvent::new(now, None, TimelineKind::Failure, text.clone());
    let source = format!("unreachable:{incident}:{key}");
    if store::insert_timeline(conn, incident, &event, Some(&source)).await? {
        let posts = [
            Effect::PostToWarRoom { text: text.clone() },
            Effect::PostToAnnounceChannel { text },
        ];
        crate::jobs::enqueue_effects(conn, incident, &posts, now).await?;
    }
    Ok(())
}

/// Begins a transaction that holds the incident's lock (as [`store::begin_page`] does) and
/// reads it: the incident comes back only while paging still applies, so an alarm raised in
/// this transaction never follows an acknowledgement that committed first.
async fn lock_while_paging(
    ctx: &AppContext,
    incident: i64,
) -> Result<(sqlx::Transaction<'static, sqlx::Any>, Option<Incident>), store::StoreError> {
    let mut tx = ctx.store.begin().await?;
    store::lock_incident_for_write(&mut tx, ctx.store.backend(), incident).await?;
    let current = store::get_incident(&mut tx, incident)
        .await?
        .filter(still_paging);
    Ok((tx, current))
}

/// Raises a "nobody can be reached" alarm unless the incident was acknowledged or resolved.
async fn raise_unreachable(
    ctx: &AppContext,
    incident: i64,
    key: &str,
    text: String,
) -> Result<(), store::StoreError> {
    let (mut tx, current) = lock_while_paging(ctx, incident).await?;
    if current.is_some() {
        record_unreachable(&mut tx, incident, key, text, ctx.clock.now()).await?;
    }
    tx.commit().await?;
    ctx.wake.notify_waiters();
    Ok(())
}

/// `primary (Slack DM, PagerDuty), senior (webhook: failed)`: who a plan (or step) tried.
fn describe_tried(pages: &[store::PageRecord]) -> String {
    let mut contacts: Vec<(&str, Vec<String>)> = Vec::new();
    for page in pages {
        let route = match page.state {
            store::PageState::Failed => format!("{}: failed", route_label(&page.route)),
            store::PageState::Queued => format!("{}: not sent yet", route_label(&page.route)),
            _ => route_label(&page.route),
        };
        match contacts.iter_mut().find(|(c, _)| *c == page.contact) {
            Some((_, routes)) => {
                if !routes.contains(&route) {
                    routes.push(route)
                }
            }
            None => contacts.push((&page.contact, vec![route])),
        }
    }
    if contacts.is_empty() {
        return "nobody".to_string();
    }
    contacts
        .iter()
        .map(|(c, routes)| format!("{c} ({})", routes.join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// At most `max` characters of a failure reason.
fn short_reason(reason: &str) -> String {
    const MAX: usize = 120;
    if reason.chars().count() <= MAX {
        return reason.to_string();
    }
    let mut out: String = reason.chars().take(MAX - 1).collect();
    out.push('…');
    out
}

/// Runs an escalation step: one page job per contact and usable route. The ladder's last
/// step also schedules the check that nobody acknowledged (an [`Effect::FireEscalationStep`]
/// of the same plan with nobody to page, due after [`unanswered_grace`]); a step that can page
/// nobody is an event at once.
async fn fire_escalation_step(
    ctx: &AppContext,
    incident: &Incident,
    step: usize,
    plan: i64,
    page: &[String],
) -> Result<JobOutcome, JobError> {
    let now = ctx.clock.now();
    if !still_paging(incident) {
        return Ok(JobOutcome::none());
    }
    let ladder = &ctx.config.severity(incident.severity).escalation;
    if page.is_empty() {
        // The check after the last step: nobody acknowledged in time.
        let tried = {
            let mut conn = ctx.store.acquire().await?;
            store::plan_pages(&mut conn, incident.number, plan, None).await?
        };
        let text = format!(
            "{}: nobody acknowledged after the last escalation step (step {}). Tried: {}.",
            incident.key(),
            step,
            describe_tried(&tried)
        );
        raise_unreachable(ctx, incident.number, &format!("{plan}:unanswered"), text).await?;
        return Ok(JobOutcome::none());
    }
    let mut pages = Vec::new();
    let mut deliveries = Vec::new();
    let mut described = Vec::new();
    let mut unusable = Vec::new();
    let mut outcome = JobOutcome::none();
    for name in page {
        let (routes, left_out) = ctx
            .config
            .contacts
            .get(name)
            .map(|c| usable_routes(&ctx.pagers, c))
            .unwrap_or_default();
        if routes.is_empty() {
            let why = if ctx.config.contacts.contains_key(name) {
                if left_out.is_empty() {
                    "no paging route configured".to_string()
                } else {
                    format!(
                        "{} not set up on this server",
                        left_out
                            .iter()
                            .map(|c| route_label(c))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    )
                }
            } else {
                "no such contact".to_string()
            };
            outcome = outcome.with(JobChange::Timeline {
                event: TimelineEvent::new(
                    now,
                    None,
                    TimelineKind::Failure,
                    TimelineDetail::new()
                        .words(format!("Escalation step {} cannot page ", step + 1))
                        .code(name)
                        .words(format!(": {why}")),
                ),
                source_key: Some(format!(
                    "unpageable:{}:{plan}:{step}:{name}",
                    incident.number
                )),
            });
            unusable.push(format!("{name} ({why})"));
            continue;
        }
        described.push(format!("{name} ({})", routes.join(", ")));
        for route in routes {
            deliveries.push(store::PageDelivery::new(
                incident.number,
                plan,
                step,
                name,
                route,
            ));
            pages.push(Effect::Page {
                step,
                plan,
                contact: name.clone(),
                route: route.to_string(),
            });
        }
    }
    if described.is_empty() {
        let text = format!(
            "{}: escalation step {} could not page anyone. Tried: {}.",
            incident.key(),
            step + 1,
            unusable.join(", ")
        );
        raise_unreachable(ctx, incident.number, &format!("{plan}:{step}:nobody"), text).await?;
    } else {
        outcome = outcome.with(JobChange::PagesQueued(deliveries));
        outcome = outcome.with(JobChange::Timeline {
            event: TimelineEvent::new(
                now,
                None,
                TimelineKind::Paged,
                format!(
                    "Escalation step {}: paging {}",
                    step + 1,
                    described.join(", ")
                ),
            ),
            source_key: Some(format!("escalation:{}:{plan}:{step}", incident.number)),
        });
    }
    if last_step(ladder) == Some(step) {
        let due_at = chrono::Duration::from_std(unanswered_grace(ladder))
            .ok()
            .and_then(|grace| now.checked_add_signed(grace))
            .unwrap_or(now + chrono::Duration::minutes(15));
        pages.push(Effect::FireEscalationStep {
            step: step + 1,
            due_at,
            page: Vec::new(),
            plan,
        });
    }
    Ok(outcome.with(JobChange::Enqueue(pages)))
}

/// Sends one page by one route, as attempt `run` of its job; returns how, for the timeline
/// ("Slack DM to" the person, "email to …").
async fn send_page(
    ctx: &AppContext,
    chat: &Platforms,
    incident: &Incident,
    who: &Contact,
    delivery: &store::PageDelivery,
    run: JobRun,
) -> Result<TimelineDetail, JobError> {
    let (step, plan, contact) = (delivery.step, delivery.plan, delivery.contact.as_str());
    let message = page_message(incident, step, contact);
    // One id per page, kept across retries, so the receiver can drop duplicates.
    let id = format!("warroom-INC-{}-{plan}-{step}-{contact}", incident.number);
    Ok(match delivery.route.as_str() {
        "slack" => {
            let user = who.slack_user.as_deref().unwrap_or_default();
            let page = Message::Page { step };
            let to = Destination::User(user);
            chat.get(Platform::Slack)?
                .post(to, incident, &page, PostKey::new(run, 0))
                .await?;
            TimelineDetail::new().words("Slack DM to ").person(user)
        }
        "pagerduty" => {
            let key = secret(&who.pagerduty_routing_key)?;
            ctx.pagers
                .pagerduty_trigger(key, &pagerduty_dedup_key(incident.number), &message)
                .await?;
            "PagerDuty".into()
        }
        "webhook" => {
            let url = who.webhook_url.as_deref().unwrap_or_default();
            let Some(secret) = &who.webhook_secret else {
                return Err(JobError::fatal("the webhook has no webhook_secret"));
            };
            let delivery = ctx
                .pagers
                .webhook_with_id(url, secret, "page", &message, &id)
                .await?;
            format!("webhook (delivery {delivery})").into()
        }
        "email" => {
            let to = who.email.as_deref().unwrap_or_default();
            ctx.pagers
                .email(to, &message, &format!("{id}-email"))
                .await?;
            format!("email to {to}").into()
        }
        "sms" => {
            let to = who.phone.as_deref().unwrap_or_default();
            ctx.pagers.sms(to, &message).await?;
            format!("SMS to {to}").into()
        }
        other => return Err(JobError::fatal(format!("unknown paging route `{other}`"))),
    })
}

/// Failed attempts of a page before it counts as failing (a brief rate limit or a retry that
/// gets through is no alarm); a permanent failure counts at once.
pub const FAILURES_BEFORE_ALARM: i64 = 3;

/// Records that a page's send failed (it is no longer in flight). When every page of its step
/// has now failed (each [`FAILURES_BEFORE_ALARM`] times or for good), that is an event (once
/// per step), committed together with the page's state. (A delivered page is recorded with its
/// job's completion: [`JobChange::PageSent`].)
async fn page_failed(
    ctx: &AppContext,
    incident: &Incident,
    delivery: &store::PageDelivery,
    error: &JobError,
) -> Result<(), crate::store::StoreError> {
    let now = ctx.clock.now();
    let (mut tx, paging) = lock_while_paging(ctx, incident.number).await?;
    let (JobError::Retry { reason, .. } | JobError::Fatal(reason)) = error;
    let state = store::PageState::Failed;
    store::set_page_state(&mut tx, delivery, state, Some(reason), now).await?;
    // A permanent failure will not be retried: it counts as failing for good.
    let fatal = matches!(error, JobError::Fatal(_));
    let n = if fatal { FAILURES_BEFORE_ALARM } else { 1 };
    store::count_page_failures(&mut tx, delivery, n).await?;
    let step =
        store::plan_pages(&mut tx, incident.number, delivery.plan, Some(delivery.step)).await?;
    let failing = |p: &store::PageRecord| {
        p.state == store::PageState::Failed && p.failures >= FAILURES_BEFORE_ALARM
    };
    if paging.is_some() && !step.is_empty() && step.iter().all(failing) {
        let failures = step
            .iter()
            .map(|p| {
                format!(
                    "{} by {}: {}",
                    p.contact,
                    route_label(&p.route),
                    short_reason(p.detail.as_deref().unwrap_or("failed"))
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let text = format!(
            "{}: every page of escalation step {} failed, nobody was reached ({failures}). warroom keeps retrying.",
            incident.key(),
            delivery.step + 1
        );
        let key = format!("{}:{}:failed", delivery.plan, delivery.step);
        record_unreachable(&mut tx, incident.number, &key, text, now).await?;
    }
    tx.commit().await?;
    ctx.wake.notify_waiters();
    Ok(())
}

/// Carries out a paging effect, as attempt `run` of its job.
pub async fn perform(
    ctx: &AppContext,
    chat: &Platforms,
    incident: &Incident,
    effect: &Effect,
    run: JobRun,
) -> Result<JobOutcome, JobError> {
    let now = ctx.clock.now();
    match effect {
        Effect::FireEscalationStep {
            step, plan, page, ..
        } => fire_escalation_step(ctx, incident, *step, *plan, page).await,
        Effect::Page {
            step,
            plan,
            contact,
            route,
        } => {
            if !still_paging(incident) {
                return Ok(JobOutcome::none());
            }
            let Some(who) = ctx.config.contacts.get(contact) else {
                return Err(JobError::fatal(format!(
                    "contact `{contact}` is not configured"
                )));
            };
            let delivery = store::PageDelivery::new(incident.number, *plan, *step, contact, route);
            // The last look before sending, under the incident's lock: an acknowledgement or
            // resolution committed by now stops the page; one committed later sees it in flight.
            let Some(incident) =
                store::begin_page(&ctx.store, &delivery, still_paging, now).await?
            else {
                return Ok(JobOutcome::none());
            };
            let detail = match send_page(ctx, chat, &incident, who, &delivery, run).await {
                Ok(detail) => detail,
                Err(error) => {
                    if let Err(e) = page_failed(ctx, &incident, &delivery, &error).await {
                        // The page stays `sending` until IN_FLIGHT_LIMIT passes; the job's
                        // outcome is still recorded.
                        tracing::error!(incident = incident.number, error = %e, "could not record a page's failure");
                    }
                    return Err(error);
                }
            };
            // Delivered: no longer in flight, recorded with the job's completion.
            Ok(JobOutcome::none()
                .with(JobChange::PageSent {
                    delivery: delivery.clone(),
                    detail: detail.to_string(),
                })
                .with(JobChange::Timeline {
                    event: TimelineEvent::new(
                        now,
                        None,
                        TimelineKind::Paged,
                        TimelineDetail::new()
                            .words(format!("Paged {contact} by "))
                            .append(detail)
                            .words(format!(" — escalation step {}", step + 1)),
                    ),
                    source_key: Some(delivery.key.clone()),
                }))
        }
        Effect::AcknowledgePagers | Effect::ResolvePagers => {
            // A trigger in flight would land after this and reopen the page on PagerDuty:
            // wait for it to finish (no new trigger starts once this was committed).
            let triggers = {
                let mut conn = ctx.store.acquire().await?;
                store::pages_sending(&mut conn, incident.number, now).await?
            }
            .into_iter()
            .filter(|(_, route)| route == "pagerduty")
            .count();
            if triggers > 0 {
                return Err(JobError::Retry {
                    after: Some(TRIGGER_WAIT),
                    reason: format!(
                        "waiting for {triggers} PagerDuty trigger(s) of {} still being sent",
                        incident.key()
                    ),
                });
            }
            let mut keys: Vec<&str> = Vec::new();
            for contact in ctx.config.contacts.values() {
                if let Some(key) = &contact.pagerduty_routing_key {
                    let key = secrecy::ExposeSecret::expose_secret(key);
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
            }
            let dedup = pagerduty_dedup_key(incident.number);
            for key in &keys {
                if matches!(effect, Effect::ResolvePagers) {
                    ctx.pagers.pagerduty_resolve(key, &dedup).await?;
                } else {
                    ctx.pagers.pagerduty_acknowledge(key, &dedup).await?;
                }
            }
            Ok(JobOutcome::none())
        }
        other => Err(JobError::fatal(format!(
            "`{}` is not a paging effect",
            other.name()
        ))),
    }
}

/// How long a PagerDuty acknowledge or resolve waits before it looks again at a trigger in
/// flight.
pub const TRIGGER_WAIT: Duration = Duration::from_secs(5);

fn secret(value: &Option<secrecy::SecretString>) -> Result<&str, JobError> {
    value
        .as_ref()
        .map(secrecy::ExposeSecret::expose_secret)
        .ok_or_else(|| JobError::fatal("the contact has no PagerDuty routing key"))
}

/// Whether an effect belongs to paging (rather than to the chat platform).
pub fn is_paging_effect(effect: &Effect) -> bool {
    matches!(
        effect,
        Effect::FireEscalationStep { .. }
            | Effect::Page { .. }
            | Effect::AcknowledgePagers
            | Effect::ResolvePagers
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_paged_by_every_route_they_have() {
        let contact = Contact {
            slack_user: Some("U1".into()),
            webhook_url: Some("https://example.com/hook".into()),
            phone: Some("+15551234567".into()),
            ..Contact::default()
        };
        assert_eq!(contact.paging_routes(), ["slack", "webhook", "sms"]);
        assert!(Contact::default().paging_routes().is_empty());
    }

    #[test]
    fn the_grace_after_the_last_step_is_the_last_gap_or_15_minutes() {
        let step = |m: u64, page: &[&str]| EscalationStep {
            after: Duration::from_secs(m * 60),
            page: page.iter().map(|p| p.to_string()).collect(),
        };
        let ladder = [step(0, &["a"]), step(15, &["b"]), step(45, &["c"])];
        assert_eq!(unanswered_grace(&ladder), Duration::from_secs(30 * 60));
        assert_eq!(last_step(&ladder), Some(2));
        // Steps that page nobody are not steps.
        let ladder = [step(0, &["a"]), step(10, &["b"]), step(30, &[])];
        assert_eq!(unanswered_grace(&ladder), Duration::from_secs(10 * 60));
        assert_eq!(last_step(&ladder), Some(1));
        assert_eq!(
            unanswered_grace(&[step(0, &["a"])]),
            DEFAULT_UNANSWERED_GRACE
        );
        assert_eq!(
            unanswered_grace(&[step(5, &["a"]), step(5, &["b"])]),
            DEFAULT_UNANSWERED_GRACE
        );
        assert_eq!(last_step(&[]), None);
    }

    #[test]
    fn who_was_tried_is_grouped_by_contact() {
        let page = |contact: &str, route: &str, state| store::PageRecord {
            step: 0,
            contact: contact.into(),
            route: route.into(),
            state,
            detail: None,
            failures: 0,
        };
        let tried = [
            page("primary", "slack", store::PageState::Sent),
            page("primary", "pagerduty", store::PageState::Sent),
            page("senior", "webhook", store::PageState::Failed),
            page("senior", "sms", store::PageState::Queued),
        ];
        assert_eq!(
            describe_tried(&tried),
            "primary (Slack DM, PagerDuty), senior (webhook: failed, SMS: not sent yet)"
        );
        assert_eq!(describe_tried(&[]), "nobody");
    }

    #[test]
    fn pagerduty_keys_round_trip() {
        assert_eq!(pagerduty_dedup_key(12), "warroom-INC-12");
        assert_eq!(incident_from_dedup_key("warroom-INC-12"), Some(12));
        for other in [
            "[P0] INC-7: db down",
            "INC-7",
            "warroom-INC-7x",
            "other-warroom-INC-7",
            "warroom-INC-07",
            "warroom-INC-",
            "warroom-INC--7",
            "warroom-INC-0",
            "nothing here",
        ] {
            assert_eq!(incident_from_dedup_key(other), None, "{other}");
        }
    }
}
