//! Resolution communications, platform-neutral: the template context of an incident, the
//! status-page update and the customer email. Each is published where configured, or handed
//! back as a draft for the chat adapter to post in the war room.

use sha2::Digest;

use crate::context::AppContext;
use crate::core::Incident;
use crate::jobs::JobError;
use crate::store;
use crate::templates::{Links, Template, TemplateContext};

/// What became of a communication.
#[derive(Debug, Clone, PartialEq)]
pub enum Publication {
    /// Sent; the text is for the timeline.
    Published(String),
    /// Not sent: post `body` in the war room for a human to paste, saying why.
    Draft {
        reason: String,
        title: String,
        body: String,
    },
}

/// The links an incident's communications carry.
pub fn links(ctx: &AppContext, incident: &Incident) -> Links {
    let page = |path: String| ctx.signed_link(&path);
    Links {
        war_room: incident.war_room.as_ref().map(|r| format!("#{}", r.name)),
        review: page(format!("/incidents/{}/review.md", incident.number)),
        incident_page: page(format!("/incidents/{}", incident.number)),
    }
}

/// The template context of an incident as it is now.
pub async fn context(ctx: &AppContext, incident: &Incident) -> Result<TemplateContext, JobError> {
    let timeline = {
        let mut conn = ctx.store.acquire().await?;
        store::timeline(&mut conn, incident.number).await?
    };
    Ok(TemplateContext::build(
        incident,
        &timeline,
        links(ctx, incident),
        ctx.clock.now(),
    ))
}

/// Renders one template for an incident.
pub async fn render(
    ctx: &AppContext,
    incident: &Incident,
    template: Template,
) -> Result<String, JobError> {
    let context = context(ctx, incident).await?;
    ctx.templates
        .render(template, &context)
        .map_err(|e| JobError::fatal(e.to_string()))
}

fn customer_facing(incident: &Incident) -> bool {
    incident
        .resolution
        .as_ref()
        .map(|r| r.customer_facing)
        .unwrap_or(false)
}

/// Publishes the status-page update on Atlassian Statuspage, or returns it as a draft.
/// `retry`: an earlier attempt may have created the Statuspage incident (see
/// [`crate::publish::Statuspage::publish_resolved_once`]).
pub async fn status_page(
    ctx: &AppContext,
    incident: &Incident,
    retry: bool,
) -> Result<Publication, JobError> {
    let rendered = render(ctx, incident, Template::StatusPage).await?;
    // The template's first line is the incident's name on the status page.
    let (title, body) = match rendered.split_once('\n') {
        Some((first, rest)) if !first.trim().is_empty() => {
            (first.trim().to_string(), rest.trim().to_string())
        }
        _ => (format!("Resolved — {}", incident.title), rendered.clone()),
    };
    let reason = match (&ctx.statuspage, customer_facing(incident)) {
        (Some(statuspage), true) => {
            let id = statuspage
                .publish_resolved_once(&incident.key(), &title, &body, retry)
                .await?;
            return Ok(Publication::Published(format!(
                "Status page updated: Statuspage incident {id} marked resolved"
            )));
        }
        (Some(_), false) => "not customer-facing, so not published",
        (None, _) => "no status page is configured (STATUSPAGE_API_KEY, STATUSPAGE_PAGE_ID)",
    };
    Ok(Publication::Draft {
        reason: reason.into(),
        title,
        body,
    })
}

/// Emails customers, or returns the email as a draft.
pub async fn customer_email(
    ctx: &AppContext,
    incident: &Incident,
) -> Result<Publication, JobError> {
    let rendered = render(ctx, incident, Template::CustomerEmail).await?;
    let (subject, body) = split_subject(&rendered, incident);
    let to = &ctx.config.customer_email.to;
    let reason = if !customer_facing(incident) {
        "not customer-facing, so not sent"
    } else if to.is_empty() {
        "no audience is configured (customer_email.to)"
    } else if !ctx.pagers.smtp_configured() {
        "SMTP is not configured (SMTP_HOST, SMTP_FROM)"
    } else {
        let sent = send_to_each(ctx, incident, to, &subject, &body).await?;
        return Ok(Publication::Published(format!(
            "Customer email “{subject}” sent to {} recipient(s), one message each{}",
            to.len(),
            if sent < to.len() {
                format!(" ({} sent before a retry)", to.len() - sent)
            } else {
                String::new()
            }
        )));
    };
    Ok(Publication::Draft {
        reason: reason.into(),
        title: subject,
        body,
    })
}

/// Sends the customer email as one message per recipient, so that customers never see each
/// other's addresses. Each recipient is its own durable unit: once the SMTP server accepted a
/// message, the recipient is recorded, and a retry (after a failure for a later recipient)
/// skips them. A crash between the server's acceptance and that record resends to that one
/// recipient, with the same `Message-ID`, so mail systems can drop the duplicate. Returns how
/// many messages this call sent.
async fn send_to_each(
    ctx: &AppContext,
    incident: &Incident,
    to: &[String],
    subject: &str,
    body: &str,
) -> Result<usize, JobError> {
    // A bad address is a configuration error: refuse before anyone gets the email.
    let recipients = to
        .iter()
        .map(|address| {
            crate::paging::routes::email::parse_recipient(address)
                .map(|mailbox| (address.trim(), mailbox.email.to_string().to_lowercase()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mail_key = format!("customer_email:{}", incident.number);
    let mut sent = 0;
    for (address, recipient) in recipients {
        let done = {
            let mut conn = ctx.store.acquire().await?;
            store::mail_sent(&mut conn, &mail_key, &recipient).await?
        };
        if done {
            continue;
        }
        let digest = sha2::Sha256::digest(recipient.as_bytes());
        let id = format!(
            "warroom-INC-{}-customer-email-{}",
            incident.number,
            &hex::encode(digest)[..16]
        );
        ctx.pagers.send_mail(address, subject, body, &id).await?;
        let mut conn = ctx.store.acquire().await?;
        store::record_mail_sent(
            &mut conn,
            &mail_key,
            &recipient,
            incident.number,
            ctx.clock.now(),
        )
        .await?;
        sent += 1;
    }
    Ok(sent)
}

/// A rendered email starts with `Subject: …` and a blank line.
fn split_subject(rendered: &str, incident: &Incident) -> (String, String) {
    let trimmed = rendered.trim_start();
    if let Some(rest) = trimmed.strip_prefix("Subject:") {
        let (subject, body) = rest.split_once('\n').unwrap_or((rest, ""));
        return (
            subject.trim().to_string(),
            body.trim_start_matches('\n').trim_end().to_string() + "\n",
        );
    }
    (
        format!("Resolved: {}", incident.title),
        rendered.trim().to_string() + "\n",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_is_split_off() {
        let inc = sample_incident();
        let (s, b) = split_subject("Subject: Resolved: checkout\n\nHello,\nbye\n", &inc);
        assert_eq!(s, "Resolved: checkout");
        assert_eq!(b, "Hello,\nbye\n");
        let (s, b) = split_subject("Hello", &inc);
        assert_eq!(s, "Resolved: db down");
        assert_eq!(b, "Hello\n");
    }

    fn sample_incident() -> Incident {
        crate::core::open(
            crate::core::OpenIncident {
                number: 1,
                title: "db down".into(),
                description: String::new(),
                severity: crate::core::Severity::P1,
                platform: crate::core::Platform::Slack,
                declared_by: "U1".into(),
                declared_in: "C1".into(),
                responders: vec![],
                reply_to: None,
            },
            &crate::config::Config::default()
                .severity(crate::core::Severity::P1)
                .policy(
                    std::time::Duration::from_secs(60),
                    std::time::Duration::from_secs(60),
                ),
            chrono::Utc::now(),
        )
        .map(|o| o.incident)
        .unwrap_or_else(|e| panic!("{e}"))
    }
}
