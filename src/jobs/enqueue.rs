//! Turning a core [`Effect`] into a durable job: its payload, its dedup and coalesce keys, and
//! the war-room job it waits for.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use crate::core::Effect;
use crate::store::{self, NewJob, StoreResult};

/// The payload of a job that carries out a core [`Effect`] for an incident.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EffectJob {
    pub incident: i64,
    pub effect: Effect,
}

/// Enqueues an incident's effects; returns how many were added (the others existed already).
/// Effects that need the war room wait for the job that creates it: the one in the batch, or
/// else the incident's unfinished one (the war room does not exist yet).
pub async fn enqueue_effects(
    conn: &mut AnyConnection,
    incident: i64,
    effects: &[Effect],
    now: DateTime<Utc>,
) -> StoreResult<usize> {
    let mut added = 0;
    let mut war_room_job = None;
    if !effects.iter().any(|e| matches!(e, Effect::CreateWarRoom))
        && effects.iter().any(Effect::needs_war_room)
    {
        war_room_job =
            store::unfinished_job(&mut *conn, &format!("create_war_room:{incident}")).await?;
    }
    for effect in effects {
        let payload = serde_json::to_string(&EffectJob {
            incident,
            effect: effect.clone(),
        })
        .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
        let dedup_key = match effect {
            Effect::CreateWarRoom => Some(format!("create_war_room:{incident}")),
            Effect::FireEscalationStep { step, plan, .. } => {
                Some(format!("escalation:{incident}:{plan}:{step}"))
            }
            Effect::Page {
                step,
                plan,
                contact,
                route,
            } => Some(format!("page:{incident}:{plan}:{step}:{contact}:{route}")),
            Effect::StatusReminder { due_at } => Some(format!(
                "status_reminder:{incident}:{}",
                due_at.timestamp_millis()
            )),
            Effect::TargetWarning {
                target_at,
                breached,
                ..
            } => Some(format!(
                "target_warning:{incident}:{}:{breached}",
                target_at.timestamp_millis()
            )),
            Effect::DeliveryStuck { job, .. } => Some(format!("delivery_stuck:{incident}:{job}")),
            _ => None,
        };
        let coalesce_key = match effect {
            Effect::PostKickoff | Effect::UpdateKickoff => Some(format!("kickoff:{incident}")),
            _ => None,
        };
        let job = NewJob {
            kind: effect.name().to_string(),
            incident: Some(incident),
            payload,
            run_at: effect.due_at().unwrap_or(now),
            blocked_by: if effect.needs_war_room() {
                war_room_job
            } else {
                None
            },
            dedup_key,
            coalesce_key,
        };
        let id = store::enqueue(conn, &job, now).await?;
        added += usize::from(id.is_some());
        if matches!(effect, Effect::CreateWarRoom) {
            war_room_job = id;
        }
    }
    Ok(added)
}
