//! Turning a core [`Effect`] into a durable job: its payload, its dedup and coalesce keys, and
//! the war-room job it waits for.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use crate::core::Effect;
use crate::store::{self, NewJob, StoreResult};

/// The payload format of effect jobs this release writes. A release reads every earlier
/// format (pending jobs survive an upgrade): a change to [`Effect`] that old payloads cannot
/// be read as (a renamed variant or field without a serde alias, a new field without a
/// default) needs a new version and a conversion in [`EffectJob::decode`].
/// Version 1 is the format before versions were written: no `v` field.
pub const EFFECT_JOB_VERSION: u32 = 1;

/// The payload of a job that carries out a core [`Effect`] for an incident.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EffectJob {
    /// The payload format ([`EFFECT_JOB_VERSION`] when written by this release).
    #[serde(default = "first_version")]
    pub v: u32,
    pub incident: i64,
    pub effect: Effect,
}

fn first_version() -> u32 {
    1
}

impl EffectJob {
    pub fn new(incident: i64, effect: Effect) -> Self {
        EffectJob {
            v: EFFECT_JOB_VERSION,
            incident,
            effect,
        }
    }

    /// Reads a stored payload of any version this release knows; a payload written by a
    /// newer release (a rollback after an upgrade) is refused by name.
    pub fn decode(payload: &str) -> Result<EffectJob, String> {
        let job: EffectJob =
            serde_json::from_str(payload).map_err(|e| format!("unreadable job payload: {e}"))?;
        if job.v > EFFECT_JOB_VERSION {
            return Err(format!(
                "job payload version {} was written by a newer release (this one reads up to {EFFECT_JOB_VERSION})",
                job.v
            ));
        }
        Ok(job)
    }
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
        let payload = serde_json::to_string(&EffectJob::new(incident, effect.clone()))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Payloads as the release before versioned payloads wrote them (pending jobs at upgrade).
    const BEFORE_VERSIONS: &[&str] = &[
        r#"{"incident":3,"effect":{"effect":"create_war_room"}}"#,
        r#"{"incident":3,"effect":{"effect":"invite_to_war_room","users":["U1","U2"]}}"#,
        r#"{"incident":3,"effect":{"effect":"post_status_update","text":"db back","by":"U1"}}"#,
        r#"{"incident":3,"effect":{"effect":"status_reminder","due_at":"2026-12-01T10:00:00Z"}}"#,
        r#"{"incident":3,"effect":{"effect":"post_to_war_room","text":"deployed v2"}}"#,
        r#"{"incident":3,"effect":{"effect":"delivery_stuck","job":9,"kind":"page","since":"2026-12-01T10:00:00Z","error":"timeout"}}"#,
    ];

    #[test]
    fn payloads_written_before_versions_still_read() {
        for payload in BEFORE_VERSIONS {
            let job = EffectJob::decode(payload).unwrap_or_else(|e| panic!("{payload}: {e}"));
            assert_eq!((job.v, job.incident), (1, 3));
        }
    }

    #[test]
    fn payloads_round_trip_with_their_version() {
        let job = EffectJob::new(4, Effect::PostKickoff);
        let payload = serde_json::to_string(&job).unwrap();
        assert!(payload.contains(r#""v":1"#), "{payload}");
        let read = EffectJob::decode(&payload).unwrap();
        assert_eq!(
            (read.v, read.incident, read.effect),
            (1, 4, Effect::PostKickoff)
        );
    }

    #[test]
    fn payloads_of_a_newer_release_are_refused_by_name() {
        let payload = r#"{"v":99,"incident":1,"effect":{"effect":"post_kickoff"}}"#;
        let err = EffectJob::decode(payload).unwrap_err();
        assert!(err.contains("newer release"), "{err}");
    }
}
