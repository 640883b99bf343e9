//! Incidents, their checklist, roles and timeline.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::Backend;
use super::{from_ms, ms, StoreError, StoreResult};
use crate::core::{
    Change, ChecklistItem, Done, Incident, Role, Severity, Status, TimelineDetail, TimelineEvent,
    TimelineKind, WarRoom,
};

const INCIDENT_COLUMNS: &str = "number, title, description, severity, status, platform, \
     declared_by, declared_in, declared_at, target_at, war_room_id, war_room_name, kickoff_ref, \
     acknowledged_by, acknowledged_at, resolved_at, resolution, fix_deployed_at, \
     closed_at, fix_from_version, versions_at_open";

/// Takes the next incident number (INC-n). Serialised by the counter row's lock.
pub async fn next_incident_number(conn: &mut AnyConnection) -> StoreResult<i64> {
    let n: i64 = sqlx::query_scalar(
        "UPDATE counters SET value = value + 1 WHERE name = 'incident' RETURNING value",
    )
    .fetch_one(conn)
    .await?;
    Ok(n)
}

/// What a health-checked service last reported.
pub async fn service_state(
    conn: &mut AnyConnection,
    service: &str,
) -> StoreResult<crate::core::hotfix::ServiceState> {
    let row = sqlx::query("SELECT version, failing FROM service_states WHERE service = $1")
        .bind(service)
        .fetch_optional(conn)
        .await?;
    Ok(match row {
        Some(r) => crate::core::hotfix::ServiceState {
            version: r.try_get("version")?,
            failing: r.try_get("failing")?,
        },
        None => Default::default(),
    })
}

/// Saves what a service reported.
pub async fn save_service_state(
    conn: &mut AnyConnection,
    service: &str,
    state: &crate::core::hotfix::ServiceState,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO service_states (service, version, failing, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (service) DO UPDATE SET version = excluded.version, \
         failing = excluded.failing, updated_at = excluded.updated_at",
    )
    .bind(service)
    .bind(state.version.clone())
    .bind(state.failing.clone())
    .bind(ms(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// Every service's last reported version (service → version).
pub async fn service_versions(conn: &mut AnyConnection) -> StoreResult<BTreeMap<String, String>> {
    let rows = sqlx::query("SELECT service, version FROM service_states WHERE version IS NOT NULL")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("service")?, r.try_get("version")?)))
        .collect()
}

/// Records the version a service ran when the incident was declared.
pub async fn set_version_at_open(
    conn: &mut AnyConnection,
    incident: &Incident,
    service: &str,
    version: &str,
) -> StoreResult<()> {
    let mut versions = incident.versions_at_open.clone();
    versions.insert(service.to_string(), version.to_string());
    sqlx::query("UPDATE incidents SET versions_at_open = $1 WHERE number = $2")
        .bind(serde_json::to_string(&versions).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(incident.number)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks the fix deployed: when, over which version; moves the incident to monitoring.
pub async fn mark_fix_deployed(
    conn: &mut AnyConnection,
    incident: i64,
    from_version: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE incidents SET fix_deployed_at = $1, fix_from_version = $2, \
         status = CASE WHEN status IN ('investigating', 'identified') THEN 'monitoring' ELSE status END, \
         updated_at = $1 WHERE number = $3 AND fix_deployed_at IS NULL",
    )
    .bind(ms(now))
    .bind(from_version.map(str::to_string))
    .bind(incident)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores a new incident with its checklist.
pub async fn insert_incident(
    conn: &mut AnyConnection,
    incident: &Incident,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO incidents (number, title, description, severity, status, platform, \
         declared_by, declared_in, declared_at, target_at, updated_at, versions_at_open) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(incident.number)
    .bind(&incident.title)
    .bind(&incident.description)
    .bind(incident.severity.as_str())
    .bind(incident.status.as_str())
    .bind(incident.platform.as_str())
    .bind(&incident.declared_by)
    .bind(&incident.declared_in)
    .bind(ms(incident.declared_at))
    .bind(ms(incident.target_at))
    .bind(ms(now))
    .bind(
        serde_json::to_string(&incident.versions_at_open)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
    )
    .execute(&mut *conn)
    .await?;
    for item in &incident.checklist {
        sqlx::query(
            "INSERT INTO checklist_items (incident, position, text, done_by, done_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(incident.number)
        .bind(item.position)
        .bind(&item.text)
        .bind(item.done.as_ref().map(|d| d.by.clone()))
        .bind(item.done.as_ref().map(|d| ms(d.at)))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The stored form of a timeline detail: JSON (`detail`, what warroom reads) and a plain-text
/// copy (`text`: people as bare ids, no markup) for whoever reads the table with SQL.
fn detail_columns(detail: &TimelineDetail) -> StoreResult<(String, String)> {
    let json = serde_json::to_string(detail)
        .map_err(|e| StoreError::Corrupt(format!("timeline detail: {e}")))?;
    Ok((json, detail.to_string()))
}

/// The detail of a stored row. A row written before timelines were structured (no `detail`)
/// or with a detail this version cannot read falls back to its text, read as a legacy note:
/// reading a timeline never fails on its contents.
fn read_detail(detail: Option<&str>, text: &str) -> TimelineDetail {
    detail
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_else(|| super::legacy_timeline::detail_from_text(text))
}

/// Appends a timeline event. With a `source_key`, the event is stored at most once: false
/// means an event with that key already exists.
pub async fn insert_timeline(
    conn: &mut AnyConnection,
    incident: i64,
    event: &TimelineEvent,
    source_key: Option<&str>,
) -> StoreResult<bool> {
    let (detail, text) = detail_columns(&event.detail)?;
    let done = sqlx::query(
        "INSERT INTO timeline_events (incident, at, actor, kind, text, detail, source_key) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (source_key) DO NOTHING",
    )
    .bind(incident)
    .bind(ms(event.at))
    .bind(event.actor.clone())
    .bind(event.kind.as_str())
    .bind(text)
    .bind(detail)
    .bind(source_key.map(str::to_string))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The incident's whole timeline, oldest first. A row of an unknown kind (written by a later
/// version) reads as a note.
pub async fn timeline(conn: &mut AnyConnection, incident: i64) -> StoreResult<Vec<TimelineEvent>> {
    let rows = sqlx::query(
        "SELECT at, actor, kind, text, detail FROM timeline_events WHERE incident = $1 \
         ORDER BY at, id",
    )
    .bind(incident)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            let text: String = r.try_get("text")?;
            let detail: Option<String> = r.try_get("detail")?;
            Ok(TimelineEvent {
                at: from_ms(r.try_get("at")?)?,
                actor: r.try_get("actor")?,
                kind: kind.parse().unwrap_or(TimelineKind::Note),
                detail: read_detail(detail.as_deref(), &text),
            })
        })
        .collect()
}

/// Gives rows stored before timelines were structured their detail (see
/// [`super::legacy_timeline`]), a batch at a time; run by [`super::Store::migrate`].
/// Returns how many rows were converted.
pub async fn convert_legacy_timeline(conn: &mut AnyConnection) -> StoreResult<u64> {
    const BATCH: i64 = 500;
    let mut converted = 0;
    loop {
        let rows =
            sqlx::query("SELECT id, text FROM timeline_events WHERE detail IS NULL LIMIT $1")
                .bind(BATCH)
                .fetch_all(&mut *conn)
                .await?;
        if rows.is_empty() {
            return Ok(converted);
        }
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            let text: String = row.try_get("text")?;
            let (detail, text) = detail_columns(&super::legacy_timeline::detail_from_text(&text))?;
            sqlx::query("UPDATE timeline_events SET detail = $1, text = $2 WHERE id = $3")
                .bind(detail)
                .bind(text)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            converted += 1;
        }
    }
}

/// When the incident's latest event of `kind` happened.
pub async fn last_timeline_at(
    conn: &mut AnyConnection,
    incident: i64,
    kind: crate::core::TimelineKind,
) -> StoreResult<Option<DateTime<Utc>>> {
    let at: Option<i64> =
        sqlx::query_scalar("SELECT MAX(at) FROM timeline_events WHERE incident = $1 AND kind = $2")
            .bind(incident)
            .bind(kind.as_str())
            .fetch_one(conn)
            .await?;
    at.map(from_ms).transpose()
}

/// Records the war room the platform created.
pub async fn set_war_room(
    conn: &mut AnyConnection,
    incident: i64,
    war_room: &WarRoom,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE incidents SET war_room_id = $1, war_room_name = $2, updated_at = $3 WHERE number = $4",
    )
    .bind(&war_room.id)
    .bind(&war_room.name)
    .bind(ms(now))
    .bind(incident)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records where the kickoff message is (Slack: its `ts`), so it can be updated in place.
pub async fn set_kickoff_ref(
    conn: &mut AnyConnection,
    incident: i64,
    kickoff_ref: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query("UPDATE incidents SET kickoff_ref = $1, updated_at = $2 WHERE number = $3")
        .bind(kickoff_ref)
        .bind(ms(now))
        .bind(incident)
        .execute(conn)
        .await?;
    Ok(())
}

/// One incident with its checklist and roles.
pub async fn get_incident(conn: &mut AnyConnection, number: i64) -> StoreResult<Option<Incident>> {
    let row = sqlx::query(&format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE number = $1"
    ))
    .bind(number)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => Ok(Some(complete(conn, incident_from_row(&row)?).await?)),
        None => Ok(None),
    }
}

/// The incident whose war room is `channel_id`.
pub async fn incident_by_war_room(
    conn: &mut AnyConnection,
    channel_id: &str,
) -> StoreResult<Option<Incident>> {
    let row = sqlx::query(&format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE war_room_id = $1"
    ))
    .bind(channel_id)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => Ok(Some(complete(conn, incident_from_row(&row)?).await?)),
        None => Ok(None),
    }
}

/// Incidents not yet resolved, newest first.
pub async fn active_incidents(conn: &mut AnyConnection) -> StoreResult<Vec<Incident>> {
    let rows = sqlx::query(&format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents \
         WHERE status IN ('investigating', 'identified', 'monitoring') ORDER BY number DESC"
    ))
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push(complete(conn, incident_from_row(row)?).await?);
    }
    Ok(out)
}

/// The most recent incidents, newest first, whatever their status (the dashboard).
pub async fn recent_incidents(conn: &mut AnyConnection, limit: i64) -> StoreResult<Vec<Incident>> {
    let rows = sqlx::query(&format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents ORDER BY number DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push(complete(conn, incident_from_row(row)?).await?);
    }
    Ok(out)
}

/// How many incidents exist.
pub async fn incident_count(conn: &mut AnyConnection) -> StoreResult<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM incidents")
        .fetch_one(conn)
        .await?)
}

async fn complete(conn: &mut AnyConnection, mut incident: Incident) -> StoreResult<Incident> {
    let items = sqlx::query(
        "SELECT position, text, done_by, done_at FROM checklist_items \
         WHERE incident = $1 ORDER BY position",
    )
    .bind(incident.number)
    .fetch_all(&mut *conn)
    .await?;
    incident.checklist = items
        .iter()
        .map(|r| {
            Ok(ChecklistItem {
                position: r.try_get("position")?,
                text: r.try_get("text")?,
                done: done_from(r.try_get("done_by")?, r.try_get("done_at")?)?,
            })
        })
        .collect::<StoreResult<_>>()?;
    let roles = sqlx::query("SELECT role, user_id FROM roles WHERE incident = $1")
        .bind(incident.number)
        .fetch_all(&mut *conn)
        .await?;
    let mut map = BTreeMap::new();
    for r in &roles {
        let role: String = r.try_get("role")?;
        let role: Role = role.parse().map_err(StoreError::Corrupt)?;
        map.insert(role, r.try_get("user_id")?);
    }
    incident.roles = map;
    let links = sqlx::query(
        "SELECT url, version, linked_by, linked_at FROM hotfix_links WHERE incident = $1 ORDER BY id",
    )
    .bind(incident.number)
    .fetch_all(&mut *conn)
    .await?;
    incident.hotfixes = links
        .iter()
        .map(|r| {
            Ok(crate::core::hotfix::HotfixLink {
                url: r.try_get("url")?,
                version: r.try_get("version")?,
                linked_by: r.try_get("linked_by")?,
                linked_at: from_ms(r.try_get("linked_at")?)?,
            })
        })
        .collect::<StoreResult<_>>()?;
    Ok(incident)
}

fn done_from(by: Option<String>, at: Option<i64>) -> StoreResult<Option<Done>> {
    match (by, at) {
        (Some(by), Some(at)) => Ok(Some(Done {
            by,
            at: from_ms(at)?,
        })),
        _ => Ok(None),
    }
}

fn incident_from_row(row: &AnyRow) -> StoreResult<Incident> {
    let severity: String = row.try_get("severity")?;
    let status: String = row.try_get("status")?;
    let platform: String = row.try_get("platform")?;
    let war_room_id: Option<String> = row.try_get("war_room_id")?;
    let war_room_name: Option<String> = row.try_get("war_room_name")?;
    let resolved_at: Option<i64> = row.try_get("resolved_at")?;
    let resolution: Option<String> = row.try_get("resolution")?;
    let fix_deployed_at: Option<i64> = row.try_get("fix_deployed_at")?;
    let closed_at: Option<i64> = row.try_get("closed_at")?;
    let versions_at_open: Option<String> = row.try_get("versions_at_open")?;
    Ok(Incident {
        number: row.try_get("number")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        severity: severity
            .parse::<Severity>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        status: status.parse::<Status>().map_err(StoreError::Corrupt)?,
        platform: platform.parse().map_err(StoreError::Corrupt)?,
        declared_by: row.try_get("declared_by")?,
        declared_in: row.try_get("declared_in")?,
        declared_at: from_ms(row.try_get("declared_at")?)?,
        target_at: from_ms(row.try_get("target_at")?)?,
        war_room: match (war_room_id, war_room_name) {
            (Some(id), Some(name)) => Some(WarRoom { id, name }),
            _ => None,
        },
        kickoff_ref: row.try_get("kickoff_ref")?,
        acknowledged: done_from(
            row.try_get("acknowledged_by")?,
            row.try_get("acknowledged_at")?,
        )?,
        resolved_at: resolved_at.map(from_ms).transpose()?,
        resolution: resolution
            .map(|r| serde_json::from_str(&r).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()?,
        fix_deployed_at: fix_deployed_at.map(from_ms).transpose()?,
        closed_at: closed_at.map(from_ms).transpose()?,
        hotfixes: Vec::new(),
        versions_at_open: versions_at_open
            .map(|v| serde_json::from_str(&v).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()?
            .unwrap_or_default(),
        fix_from_version: row.try_get("fix_from_version")?,
        checklist: Vec::new(),
        roles: BTreeMap::new(),
    })
}

/// Takes the incident's row lock for the rest of the transaction, so commands on one incident
/// are applied one after another (PostgreSQL; SQLite transactions are already serial here).
pub async fn lock_incident(
    conn: &mut AnyConnection,
    backend: Backend,
    number: i64,
) -> StoreResult<()> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT number FROM incidents WHERE number = $1 FOR UPDATE")
            .bind(number)
            .fetch_optional(conn)
            .await?;
    }
    Ok(())
}

/// The number of the incident whose war room is `channel_id`.
pub async fn incident_number_by_war_room(
    conn: &mut AnyConnection,
    channel_id: &str,
) -> StoreResult<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT number FROM incidents WHERE war_room_id = $1")
            .bind(channel_id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Writes one change the core decided on.
pub async fn apply_change(
    conn: &mut AnyConnection,
    incident: i64,
    change: &Change,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    match change {
        Change::Status(status) => {
            let resolved_at = (*status == Status::Resolved).then(|| ms(now));
            let closed_at = (*status == Status::Closed).then(|| ms(now));
            sqlx::query(
                "UPDATE incidents SET status = $1, resolved_at = COALESCE($2, resolved_at), \
                 closed_at = COALESCE($3, closed_at), updated_at = $4 WHERE number = $5",
            )
            .bind(status.as_str())
            .bind(resolved_at)
            .bind(closed_at)
            .bind(ms(now))
            .bind(incident)
            .execute(conn)
            .await?;
        }
        Change::Resolved(resolution) => {
            let json = serde_json::to_string(resolution)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(
                "UPDATE incidents SET status = 'resolved', resolved_at = $1, resolution = $2, \
                 updated_at = $1 WHERE number = $3",
            )
            .bind(ms(now))
            .bind(json)
            .bind(incident)
            .execute(&mut *conn)
            .await?;
            super::note_pages_in_flight(conn, incident, super::PagingStop::Resolved, now).await?;
        }
        Change::Severity {
            severity,
            target_at,
        } => {
            sqlx::query(
                "UPDATE incidents SET severity = $1, target_at = $2, updated_at = $3 WHERE number = $4",
            )
            .bind(severity.as_str())
            .bind(ms(*target_at))
            .bind(ms(now))
            .bind(incident)
            .execute(conn)
            .await?;
        }
        Change::Role { role, user, by } => {
            sqlx::query(
                "INSERT INTO roles (incident, role, user_id, assigned_by, assigned_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (incident, role) DO UPDATE SET \
                 user_id = excluded.user_id, assigned_by = excluded.assigned_by, \
                 assigned_at = excluded.assigned_at",
            )
            .bind(incident)
            .bind(role.as_str())
            .bind(user)
            .bind(by)
            .bind(ms(now))
            .execute(conn)
            .await?;
        }
        Change::Acknowledged(done) => {
            sqlx::query(
                "UPDATE incidents SET acknowledged_by = $1, acknowledged_at = $2, updated_at = $3 \
                 WHERE number = $4 AND acknowledged_at IS NULL",
            )
            .bind(&done.by)
            .bind(ms(done.at))
            .bind(ms(now))
            .bind(incident)
            .execute(&mut *conn)
            .await?;
            // Pages that passed their last check before this commit are still going out.
            super::note_pages_in_flight(conn, incident, super::PagingStop::Acknowledged, now)
                .await?;
        }
        Change::ChecklistItem { position, done } => {
            sqlx::query(
                "UPDATE checklist_items SET done_by = $1, done_at = $2 \
                 WHERE incident = $3 AND position = $4",
            )
            .bind(done.as_ref().map(|d| d.by.clone()))
            .bind(done.as_ref().map(|d| ms(d.at)))
            .bind(incident)
            .bind(position)
            .execute(conn)
            .await?;
        }
        Change::CancelEscalation => {
            super::cancel_pending_jobs(&mut *conn, incident, "escalation_step", now).await?;
            super::cancel_pending_jobs(conn, incident, "page", now).await?;
        }
        Change::HotfixLinked(link) => {
            sqlx::query(
                "INSERT INTO hotfix_links (incident, url, version, linked_by, linked_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(incident)
            .bind(&link.url)
            .bind(link.version.clone())
            .bind(&link.linked_by)
            .bind(ms(link.linked_at))
            .execute(conn)
            .await?;
        }
        Change::RemoveTimeline { source_key } => {
            sqlx::query("DELETE FROM timeline_events WHERE incident = $1 AND source_key = $2")
                .bind(incident)
                .bind(source_key)
                .execute(conn)
                .await?;
        }
    }
    Ok(())
}

/// Replaces the detail of the timeline event with `source_key` (e.g. a pin, once its message
/// is fetched). False if the event is gone (the pin was taken back meanwhile).
pub async fn update_timeline_detail(
    conn: &mut AnyConnection,
    incident: i64,
    source_key: &str,
    detail: &TimelineDetail,
) -> StoreResult<bool> {
    let (detail, text) = detail_columns(detail)?;
    let done = sqlx::query(
        "UPDATE timeline_events SET detail = $1, text = $2 WHERE incident = $3 AND source_key = $4",
    )
    .bind(detail)
    .bind(text)
    .bind(incident)
    .bind(source_key)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
