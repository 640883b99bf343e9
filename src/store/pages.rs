//! Page deliveries and per-recipient emails (migration 0006).
//!
//! Just before a page is sent, [`begin_page`] checks the incident in a short write
//! transaction that holds the incident row's lock (PostgreSQL `SELECT … FOR UPDATE`; SQLite
//! has one writer, and the transaction writes first so that it is that writer) and, when
//! paging still applies, records the page as `sending`. An acknowledgement or resolution
//! takes the same lock, so it either commits first (and the page is not sent) or sees the page
//! in flight (and says so on the timeline). No transaction is held while the page is sent.

use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};

use super::{get_incident, insert_timeline, ms, Backend, Store, StoreResult};
use crate::core::{Incident, TimelineEvent, TimelineKind};

/// One page: one contact, one paging route, one escalation step of one plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageDelivery {
    /// `page:{incident}:{plan}:{step}:{contact}:{route}`, as the page job's dedup key.
    pub key: String,
    pub incident: i64,
    pub plan: i64,
    pub step: usize,
    pub contact: String,
    /// The paging route (`slack`, `pagerduty`, `webhook`, `email`, `sms`), stored in the
    /// `channel` column.
    pub route: String,
}

impl PageDelivery {
    pub fn new(incident: i64, plan: i64, step: usize, contact: &str, route: &str) -> Self {
        PageDelivery {
            key: format!("page:{incident}:{plan}:{step}:{contact}:{route}"),
            incident,
            plan,
            step,
            contact: contact.to_string(),
            route: route.to_string(),
        }
    }
}

/// Where a page delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageState {
    Queued,
    Sending,
    Sent,
    Failed,
    Stopped,
}

impl PageState {
    pub fn as_str(self) -> &'static str {
        match self {
            PageState::Queued => "queued",
            PageState::Sending => "sending",
            PageState::Sent => "sent",
            PageState::Failed => "failed",
            PageState::Stopped => "stopped",
        }
    }

    fn parse(s: &str) -> StoreResult<PageState> {
        Ok(match s {
            "queued" => PageState::Queued,
            "sending" => PageState::Sending,
            "sent" => PageState::Sent,
            "failed" => PageState::Failed,
            "stopped" => PageState::Stopped,
            other => {
                return Err(super::StoreError::Corrupt(format!(
                    "page delivery state `{other}`"
                )))
            }
        })
    }
}

/// A stored page delivery and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRecord {
    pub step: usize,
    pub contact: String,
    /// The paging route, stored in the `channel` column.
    pub route: String,
    pub state: PageState,
    pub detail: Option<String>,
    /// Failed attempts so far.
    pub failures: i64,
}

/// Takes the incident row's lock for the rest of the transaction, as a writer: PostgreSQL
/// `SELECT … FOR UPDATE`; on SQLite a no-op write, so the transaction holds the write lock
/// before it reads.
pub async fn lock_incident_for_write(
    conn: &mut AnyConnection,
    backend: Backend,
    number: i64,
) -> StoreResult<()> {
    let sql = match backend {
        Backend::Postgres => "SELECT number FROM incidents WHERE number = $1 FOR UPDATE",
        Backend::Sqlite => "UPDATE incidents SET updated_at = updated_at WHERE number = $1",
    };
    sqlx::query(sql).bind(number).execute(conn).await?;
    Ok(())
}

/// Records where a page stands, e.g. after the send (success or failure): no longer in
/// flight.
pub async fn set_page_state(
    conn: &mut AnyConnection,
    page: &PageDelivery,
    state: PageState,
    detail: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    upsert_page(conn, page, state, detail, now, true).await
}

/// Counts `n` more failed attempts of a page.
pub async fn count_page_failures(
    conn: &mut AnyConnection,
    page: &PageDelivery,
    n: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE page_deliveries SET failures = failures + $1 WHERE page_key = $2")
        .bind(n)
        .bind(&page.key)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the pages an escalation step enqueues, as `queued` (rows already there are kept).
pub async fn queue_pages(
    conn: &mut AnyConnection,
    pages: &[PageDelivery],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    for page in pages {
        upsert_page(&mut *conn, page, PageState::Queued, None, now, false).await?;
    }
    Ok(())
}

/// Inserts the page's row; an existing row is updated when `replace`, else kept.
async fn upsert_page(
    conn: &mut AnyConnection,
    page: &PageDelivery,
    state: PageState,
    detail: Option<&str>,
    now: DateTime<Utc>,
    replace: bool,
) -> StoreResult<()> {
    let on_conflict = if replace {
        "DO UPDATE SET state = $7, detail = $8, updated_at = $9"
    } else {
        "DO NOTHING"
    };
    sqlx::query(&format!(
        "INSERT INTO page_deliveries \
           (page_key, incident, plan, step, contact, channel, state, detail, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (page_key) {on_conflict}"
    ))
    .bind(&page.key)
    .bind(page.incident)
    .bind(page.plan)
    .bind(page.step as i64)
    .bind(&page.contact)
    .bind(&page.route)
    .bind(state.as_str())
    .bind(detail.map(str::to_string))
    .bind(ms(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// Just before sending a page: in one short transaction holding the incident's lock, reads
/// the incident and, if `still_paging` holds for it, records the page as `sending` and
/// returns the incident as it is now; otherwise records it as `stopped` and returns `None`.
pub async fn begin_page(
    store: &Store,
    page: &PageDelivery,
    still_paging: impl Fn(&Incident) -> bool,
    now: DateTime<Utc>,
) -> StoreResult<Option<Incident>> {
    let mut tx = store.begin().await?;
    lock_incident_for_write(&mut tx, store.backend(), page.incident).await?;
    let incident = get_incident(&mut tx, page.incident)
        .await?
        .filter(|i| still_paging(i));
    let state = if incident.is_some() {
        PageState::Sending
    } else {
        PageState::Stopped
    };
    set_page_state(&mut tx, page, state, None, now).await?;
    tx.commit().await?;
    Ok(incident)
}

/// A page's send is bounded by its route's timeouts (10 s for webhooks, PagerDuty and SMTP;
/// the Slack client's own), so a page still `sending` after this long was interrupted by a
/// crash (its job runs again and checks again).
pub const IN_FLIGHT_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The incident's pages in flight at `now`, `(contact, route)`.
pub async fn pages_sending(
    conn: &mut AnyConnection,
    incident: i64,
    now: DateTime<Utc>,
) -> StoreResult<Vec<(String, String)>> {
    let limit = chrono::Duration::from_std(IN_FLIGHT_LIMIT).unwrap_or_default();
    let rows = sqlx::query(
        "SELECT contact, channel FROM page_deliveries \
         WHERE incident = $1 AND state = 'sending' AND updated_at >= $2 ORDER BY page_key",
    )
    .bind(incident)
    .bind(ms(now - limit))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("contact")?, r.try_get("channel")?)))
        .collect()
}

/// The page deliveries of one plan of an incident (of one step when `step` is given), in
/// step order.
pub async fn plan_pages(
    conn: &mut AnyConnection,
    incident: i64,
    plan: i64,
    step: Option<usize>,
) -> StoreResult<Vec<PageRecord>> {
    let rows = sqlx::query(
        "SELECT step, contact, channel, state, detail, failures FROM page_deliveries \
         WHERE incident = $1 AND plan = $2 AND ($3 < 0 OR step = $3) ORDER BY step, page_key",
    )
    .bind(incident)
    .bind(plan)
    .bind(step.map(|s| s as i64).unwrap_or(-1))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let state: String = r.try_get("state")?;
            Ok(PageRecord {
                step: usize::try_from(r.try_get::<i64, _>("step")?).unwrap_or_default(),
                contact: r.try_get("contact")?,
                route: r.try_get("channel")?,
                state: PageState::parse(&state)?,
                detail: r.try_get("detail")?,
                failures: r.try_get("failures")?,
            })
        })
        .collect()
}

/// What stopped paging while a page was in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagingStop {
    Acknowledged,
    Resolved,
}

/// Called in the transaction that records an acknowledgement or a resolution: one timeline
/// line per page that was in flight when it committed (once per page and `stop`).
pub async fn note_pages_in_flight(
    conn: &mut AnyConnection,
    incident: i64,
    stop: PagingStop,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let (what, key) = match stop {
        PagingStop::Acknowledged => ("Acknowledged", "ack_in_flight"),
        PagingStop::Resolved => ("Resolved", "resolve_in_flight"),
    };
    for (contact, route) in pages_sending(conn, incident, now).await? {
        let event = TimelineEvent::new(
            now,
            None,
            TimelineKind::Paged,
            format!(
                "{what} while a page to {contact} via {} was being sent",
                crate::paging::route_label(&route)
            ),
        );
        let key = format!("{key}:{incident}:{contact}:{route}");
        insert_timeline(conn, incident, &event, Some(&key)).await?;
    }
    Ok(())
}

/// Whether the email `mail_key` was already sent to `recipient`.
pub async fn mail_sent(
    conn: &mut AnyConnection,
    mail_key: &str,
    recipient: &str,
) -> StoreResult<bool> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT sent_at FROM mail_deliveries WHERE mail_key = $1 AND recipient = $2",
    )
    .bind(mail_key)
    .bind(recipient)
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// Records that the email `mail_key` went to `recipient`.
pub async fn record_mail_sent(
    conn: &mut AnyConnection,
    mail_key: &str,
    recipient: &str,
    incident: i64,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO mail_deliveries (mail_key, recipient, incident, sent_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (mail_key, recipient) DO NOTHING",
    )
    .bind(mail_key)
    .bind(recipient)
    .bind(incident)
    .bind(ms(now))
    .execute(conn)
    .await?;
    Ok(())
}
