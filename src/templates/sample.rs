//! The sample data templates are rendered with by `warroom check-config`, `warroom preview`
//! and the tests: a resolved P0 with a full timeline, and a P2 just declared.

use chrono::{DateTime, TimeZone, Utc};

use crate::core::{
    Done, Incident, OpenIncident, Platform, Resolution, Role, Severity, SeverityPolicy, Status,
    TimelineDetail, TimelineEvent, TimelineKind, WarRoom,
};

use super::context::{Links, TemplateContext};

impl TemplateContext {
    /// A realistic resolved P0 incident with a full timeline (used by check-config and tests).
    pub fn sample() -> TemplateContext {
        let (incident, timeline, now) = resolved_p0();
        TemplateContext::build(&incident, &timeline, links(), now)
    }

    /// A P2 just declared: no roles, acknowledgement, resolution, checklist ticks or links.
    pub(super) fn sample_sparse() -> TemplateContext {
        let (incident, timeline, now) = just_declared();
        TemplateContext::build(&incident, &timeline, Links::default(), now)
    }
}

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, h, m, s)
        .single()
        .unwrap_or_default()
}

fn open(number: i64, title: &str, severity: Severity, now: DateTime<Utc>) -> Incident {
    let hours = match severity {
        Severity::P0 => 2,
        Severity::P1 => 4,
        Severity::P2 => 24,
        Severity::P3 => 48,
    };
    let policy = SeverityPolicy {
        target: std::time::Duration::from_secs(hours * 3600),
        checklist: crate::config::default_checklist(severity),
        escalation: Vec::new(),
        status_every: None,
        review_after: None,
    };
    let request = OpenIncident {
        number,
        title: title.into(),
        description: String::new(),
        severity,
        platform: Platform::Slack,
        declared_by: "U02ALICE".into(),
        declared_in: "C01ALERTS".into(),
        responders: Vec::new(),
        reply_to: None,
    };
    match crate::core::open(request, &policy, now) {
        Ok(opened) => opened.incident,
        Err(e) => unreachable!("the sample incident is valid: {e}"),
    }
}

fn links() -> Links {
    Links {
        war_room: Some("#inc-7-checkout-api-returning-502s".into()),
        review: Some("https://warroom.example.com/incidents/7/review.md".into()),
        incident_page: Some("https://warroom.example.com/incidents/7".into()),
    }
}

fn resolved_p0() -> (Incident, Vec<TimelineEvent>, DateTime<Utc>) {
    let mut inc = open(
        7,
        "Checkout API returning 502s",
        Severity::P0,
        at(14, 2, 11),
    );
    inc.description =
        "Error rate on /api/checkout jumped to 38% right after the 14:00 deploy.".into();
    inc.war_room = Some(WarRoom {
        id: "C07INC7".into(),
        name: "inc-7-checkout-api-returning-502s".into(),
    });
    inc.status = Status::Resolved;
    inc.acknowledged = Some(Done {
        by: "U03BOB".into(),
        at: at(14, 5, 2),
    });
    for (role, user) in [
        (Role::Commander, "U03BOB"),
        (Role::Comms, "U04CAROL"),
        (Role::Ops, "U05DAVE"),
        (Role::Scribe, "U02ALICE"),
    ] {
        inc.roles.insert(role, user.into());
    }
    let ticks = [
        ("U03BOB", at(14, 9, 40)),
        ("U03BOB", at(14, 6, 15)),
        ("U05DAVE", at(14, 21, 3)),
        ("U05DAVE", at(14, 39, 50)),
        ("U03BOB", at(14, 44, 12)),
        ("U05DAVE", at(14, 52, 30)),
        ("U05DAVE", at(15, 1, 20)),
        ("U05DAVE", at(15, 10, 5)),
        ("U04CAROL", at(15, 12, 0)),
    ];
    for (item, (by, when)) in inc.checklist.iter_mut().zip(ticks) {
        item.done = Some(Done {
            by: by.into(),
            at: when,
        });
    }
    inc.fix_deployed_at = Some(at(15, 1, 20));
    inc.resolved_at = Some(at(15, 14, 40));
    inc.resolution = Some(Resolution {
        summary: "Rolled back checkout-api to v2.13.4, then shipped v2.14.1 with the \
                  connection pool restored; error rate is back to baseline."
            .into(),
        impact: "About 38% of checkout attempts failed with HTTP 502 for 72 minutes; \
                 roughly 1,900 orders could not be placed. No data was lost."
            .into(),
        root_cause: "checkout-api v2.14.0 lowered the database connection pool from 50 \
                     to 5 in a configuration refactor; under normal afternoon load the \
                     pool was exhausted and requests timed out at the gateway."
            .into(),
        fix: "Rolled back to v2.13.4 at 14:41, then deployed v2.14.1 (pool size 50, \
              plus a startup check that refuses pool sizes under 20) at 15:01."
            .into(),
        pr: "https://github.com/example/checkout-api/pull/1234".into(),
        follow_ups: vec![
            "Alert when database pool usage stays above 80% for 5 minutes".into(),
            "Add connection-pool saturation to the checkout load test".into(),
            "Require a canary stage for checkout-api deploys".into(),
        ],
        customer_facing: true,
        resolved_by: "U03BOB".into(),
    });
    let ev = |t, actor: Option<&str>, kind, detail: TimelineDetail| {
        TimelineEvent::new(t, actor, kind, detail)
    };
    let bob = Some("U03BOB");
    let dave = Some("U05DAVE");
    let timeline = vec![
        ev(
            at(14, 2, 11),
            Some("U02ALICE"),
            TimelineKind::Declared,
            TimelineDetail::new()
                .words("P0 declared INC-7: ")
                .typed("Checkout API returning 502s"),
        ),
        ev(
            at(14, 2, 14),
            None,
            TimelineKind::WarRoomOpened,
            "War room #inc-7-checkout-api-returning-502s opened".into(),
        ),
        ev(
            at(14, 2, 15),
            None,
            TimelineKind::Paged,
            "Paged primary on-call (PagerDuty)".into(),
        ),
        ev(
            at(14, 5, 2),
            bob,
            TimelineKind::Acknowledged,
            "Acknowledged: paging stopped".into(),
        ),
        ev(
            at(14, 5, 30),
            bob,
            TimelineKind::RoleAssigned,
            TimelineDetail::new()
                .person("U03BOB")
                .words(" assigned as incident commander"),
        ),
        ev(
            at(14, 5, 41),
            bob,
            TimelineKind::RoleAssigned,
            TimelineDetail::new()
                .person("U04CAROL")
                .words(" assigned as communications"),
        ),
        ev(
            at(14, 5, 55),
            bob,
            TimelineKind::RoleAssigned,
            TimelineDetail::new()
                .person("U05DAVE")
                .words(" assigned as operations"),
        ),
        ev(
            at(14, 9, 40),
            bob,
            TimelineKind::Status,
            TimelineDetail::new().typed(
                "38% of checkouts failing with 502 since the 14:00 deploy of checkout-api v2.14.0",
            ),
        ),
        ev(
            at(14, 21, 3),
            dave,
            TimelineKind::Note,
            TimelineDetail::new()
                .typed("DB pool exhausted: 5/5 connections busy, requests queueing"),
        ),
        ev(
            at(14, 23, 0),
            bob,
            TimelineKind::StateChanged,
            "Status investigating → identified".into(),
        ),
        ev(
            at(14, 41, 8),
            dave,
            TimelineKind::Deploy,
            TimelineDetail::new().typed("Rolled back checkout-api to v2.13.4"),
        ),
        ev(
            at(15, 1, 20),
            None,
            TimelineKind::Deploy,
            "Fix PR #1234 (checkout-api v2.14.1) running in production".into(),
        ),
        ev(
            at(15, 2, 0),
            bob,
            TimelineKind::StateChanged,
            "Status identified → monitoring".into(),
        ),
        ev(
            at(15, 10, 5),
            None,
            TimelineKind::Health,
            "Checkout error rate 0.2% (baseline 0.3%) for 10 minutes".into(),
        ),
        ev(
            at(15, 14, 40),
            bob,
            TimelineKind::Resolved,
            TimelineDetail::new().words("Resolved: ").typed(
                "Rolled back checkout-api to v2.13.4, then shipped v2.14.1 with the \
                     connection pool restored; error rate is back to baseline.",
            ),
        ),
    ];
    (inc, timeline, at(15, 15, 0))
}

fn just_declared() -> (Incident, Vec<TimelineEvent>, DateTime<Utc>) {
    let inc = open(8, "Search results slow", Severity::P2, at(16, 0, 0));
    let timeline = vec![TimelineEvent::new(
        at(16, 0, 0),
        Some("U02ALICE"),
        TimelineKind::Declared,
        TimelineDetail::new()
            .words("P2 declared INC-8: ")
            .typed("Search results slow"),
    )];
    (inc, timeline, at(16, 10, 0))
}

/// The incident the unit tests render: a P1 with `<!channel>` in its title and summary.
#[cfg(test)]
pub(super) mod fixtures {
    use std::time::Duration;

    use chrono::{DateTime, TimeZone, Utc};

    use crate::core::{
        Done, Incident, OpenIncident, Platform, Resolution, Role, Severity, SeverityPolicy,
        TimelineEvent, TimelineKind,
    };
    use crate::templates::context::{Links, TemplateContext};

    pub const CHANNEL: &str = "<!channel>";

    pub fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, h, m, s).unwrap()
    }

    /// A P1 with `<!channel>` in its title and summary, resolved after the 4 h target.
    pub fn incident(missed: bool) -> (Incident, Vec<TimelineEvent>) {
        let policy = SeverityPolicy {
            target: Duration::from_secs(4 * 3600),
            checklist: vec!["Assess impact".into(), "Deploy fix".into()],
            escalation: vec![],
            status_every: None,
            review_after: None,
        };
        let opened = crate::core::open(
            OpenIncident {
                number: 42,
                title: format!("Payments {CHANNEL} & refunds failing"),
                description: "Card payments declined".into(),
                severity: Severity::P1,
                platform: Platform::Slack,
                declared_by: "U0DECL".into(),
                declared_in: "C1".into(),
                responders: vec![],
                reply_to: None,
            },
            &policy,
            at(9, 0, 0),
        )
        .unwrap();
        let mut inc = opened.incident;
        let resolved = if missed {
            at(13, 30, 0)
        } else {
            at(10, 12, 30)
        };
        inc.status = crate::core::Status::Resolved;
        inc.acknowledged = Some(Done {
            by: "U0ACK".into(),
            at: at(9, 3, 10),
        });
        inc.roles.insert(Role::Commander, "U0CMDR".into());
        inc.checklist[0].done = Some(Done {
            by: "U0CMDR".into(),
            at: at(9, 10, 0),
        });
        inc.fix_deployed_at = Some(at(10, 0, 0));
        inc.resolved_at = Some(resolved);
        inc.resolution = Some(Resolution {
            summary: format!("Rolled back {CHANNEL} the gateway config"),
            impact: "All card payments declined".into(),
            root_cause: "Expired TLS certificate on the payment gateway".into(),
            fix: "Renewed the certificate".into(),
            pr: "https://github.com/example/payments/pull/77".into(),
            follow_ups: vec![
                "Alert 30 days before certificates expire".into(),
                "Automate certificate renewal".into(),
            ],
            customer_facing: true,
            resolved_by: "U0CMDR".into(),
        });
        let mut timeline = opened.timeline;
        timeline.push(TimelineEvent::new(
            at(9, 3, 10),
            Some("U0ACK"),
            TimelineKind::Acknowledged,
            "Acknowledged: paging stopped",
        ));
        timeline.push(TimelineEvent::new(
            at(9, 20, 0),
            Some("U0CMDR"),
            TimelineKind::Note,
            "@U0OPS found the expired certificate",
        ));
        timeline.push(TimelineEvent::new(
            at(10, 0, 0),
            None,
            TimelineKind::Deploy,
            "Fix running in production",
        ));
        timeline.push(TimelineEvent::new(
            resolved,
            Some("U0CMDR"),
            TimelineKind::Resolved,
            "Resolved",
        ));
        (inc, timeline)
    }

    pub fn context(missed: bool) -> TemplateContext {
        let (inc, timeline) = incident(missed);
        TemplateContext::build(
            &inc,
            &timeline,
            Links {
                war_room: Some("#inc-42-payments".into()),
                review: Some("https://warroom.example.com/incidents/42/review.md".into()),
                incident_page: None,
            },
            at(13, 45, 0),
        )
    }
}
