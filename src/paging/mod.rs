//! Escalation and paging: when a step comes due, each of its contacts is paged through every
//! channel they have, one durable job per contact and channel, until someone acknowledges.
//! A step or page that finds the incident acknowledged or resolved does nothing.

pub mod channels;
pub mod inbound;
pub mod smtp_sink;

use crate::app::AppContext;
use crate::config::Contact;
use crate::core::{Effect, Incident, TimelineEvent, TimelineKind};
use crate::jobs::{JobChange, JobError, JobOutcome};

use channels::{DeliveryError, PageMessage};

/// The channels warroom pages a contact through, in this order.
pub fn contact_channels(contact: &Contact) -> Vec<&'static str> {
    let mut out = Vec::new();
    if contact.slack_user.is_some() {
        out.push("slack");
    }
    if contact.pagerduty_routing_key.is_some() {
        out.push("pagerduty");
    }
    if contact.webhook_url.is_some() {
        out.push("webhook");
    }
    if contact.email.is_some() {
        out.push("email");
    }
    if contact.phone.is_some() {
        out.push("sms");
    }
    out
}

/// One PagerDuty incident per warroom incident.
pub fn pagerduty_dedup_key(incident: i64) -> String {
    format!("warroom-INC-{incident}")
}

/// The incident number in a PagerDuty dedup key or title written by warroom.
pub fn incident_from_pagerduty(text: &str) -> Option<i64> {
    let at = text.find("INC-")?;
    let digits: String = text[at + 4..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
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

/// Carries out a paging effect.
pub async fn perform(
    ctx: &AppContext,
    incident: &Incident,
    effect: &Effect,
) -> Result<JobOutcome, JobError> {
    let now = ctx.clock.now();
    match effect {
        Effect::EscalationStep {
            step, plan, page, ..
        } => {
            if !still_paging(incident) {
                return Ok(JobOutcome::none());
            }
            let mut pages = Vec::new();
            let mut described = Vec::new();
            let mut outcome = JobOutcome::none();
            for name in page {
                let channels = ctx
                    .config
                    .contacts
                    .get(name)
                    .map(contact_channels)
                    .unwrap_or_default();
                if channels.is_empty() {
                    outcome = outcome.with(JobChange::Timeline {
                        event: TimelineEvent::new(
                            now,
                            None,
                            TimelineKind::Failure,
                            format!(
                                "Escalation step {} cannot page `{name}`: no such contact, or no channel configured",
                                step + 1
                            ),
                        ),
                        source_key: Some(format!("unpageable:{}:{plan}:{step}:{name}", incident.number)),
                    });
                    continue;
                }
                described.push(format!("{name} ({})", channels.join(", ")));
                for channel in channels {
                    pages.push(Effect::Page {
                        step: *step,
                        plan: *plan,
                        contact: name.clone(),
                        channel: channel.to_string(),
                    });
                }
            }
            if !described.is_empty() {
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
            Ok(outcome.with(JobChange::Enqueue(pages)))
        }
        Effect::Page {
            step,
            plan,
            contact,
            channel,
        } => {
            if !still_paging(incident) {
                return Ok(JobOutcome::none());
            }
            let Some(who) = ctx.config.contacts.get(contact) else {
                return Err(JobError::fatal(format!(
                    "contact `{contact}` is not configured"
                )));
            };
            let message = page_message(incident, *step, contact);
            let detail = match channel.as_str() {
                "slack" => {
                    let user = who.slack_user.as_deref().unwrap_or_default();
                    crate::slack::effects::send_page_dm(ctx, incident, user, *step).await?;
                    format!("Slack DM to {}", crate::core::mention(user))
                }
                "pagerduty" => {
                    let key = secret(&who.pagerduty_routing_key)?;
                    ctx.pagers
                        .pagerduty_trigger(key, &pagerduty_dedup_key(incident.number), &message)
                        .await?;
                    "PagerDuty".to_string()
                }
                "webhook" => {
                    let url = who.webhook_url.as_deref().unwrap_or_default();
                    let Some(secret) = &who.webhook_secret else {
                        return Err(JobError::fatal("the webhook has no webhook_secret"));
                    };
                    // One id per page, kept across retries, so the receiver can drop duplicates.
                    let id = format!("warroom-INC-{}-{plan}-{step}-{contact}", incident.number);
                    let delivery = ctx
                        .pagers
                        .webhook_with_id(url, secret, "page", &message, &id)
                        .await?;
                    format!("webhook (delivery {delivery})")
                }
                "email" => {
                    let to = who.email.as_deref().unwrap_or_default();
                    ctx.pagers.email(to, &message).await?;
                    format!("email to {to}")
                }
                "sms" => {
                    let to = who.phone.as_deref().unwrap_or_default();
                    ctx.pagers.sms(to, &message).await?;
                    format!("SMS to {to}")
                }
                other => return Err(JobError::fatal(format!("unknown paging channel `{other}`"))),
            };
            Ok(JobOutcome::none().with(JobChange::Timeline {
                event: TimelineEvent::new(
                    now,
                    None,
                    TimelineKind::Paged,
                    format!("Paged {contact} by {detail} — escalation step {}", step + 1),
                ),
                source_key: Some(format!(
                    "page:{}:{plan}:{step}:{contact}:{channel}",
                    incident.number
                )),
            }))
        }
        Effect::AcknowledgePagers | Effect::ResolvePagers => {
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
        Effect::EscalationStep { .. }
            | Effect::Page { .. }
            | Effect::AcknowledgePagers
            | Effect::ResolvePagers
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_paged_on_every_channel_they_have() {
        let contact = Contact {
            slack_user: Some("U1".into()),
            webhook_url: Some("https://example.com/hook".into()),
            phone: Some("+15551234567".into()),
            ..Contact::default()
        };
        assert_eq!(contact_channels(&contact), ["slack", "webhook", "sms"]);
        assert!(contact_channels(&Contact::default()).is_empty());
    }

    #[test]
    fn pagerduty_keys_round_trip() {
        assert_eq!(pagerduty_dedup_key(12), "warroom-INC-12");
        assert_eq!(incident_from_pagerduty("warroom-INC-12"), Some(12));
        assert_eq!(incident_from_pagerduty("[P0] INC-7: db down"), Some(7));
        assert_eq!(incident_from_pagerduty("nothing here"), None);
    }
}
