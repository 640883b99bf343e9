//! The PagerDuty route: Events API v2 `trigger`, `acknowledge` and `resolve`.

use chrono::SecondsFormat;
use serde_json::json;

use super::{one_line, truncate_chars, DeliveryError, PageMessage, Pagers};

/// The PagerDuty Events API v2 endpoint.
pub const DEFAULT_PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// PagerDuty's limit for `payload.summary`.
const MAX_PAGERDUTY_SUMMARY: usize = 1024;

impl Pagers {
    /// PagerDuty Events API v2 `trigger`: opens (or updates) the PagerDuty incident for
    /// `dedup_key`. Severity `P0`/`P1` → `critical`, `P2` → `error`, `P3` → `warning`, others
    /// `info`.
    pub async fn pagerduty_trigger(
        &self,
        routing_key: &str,
        dedup_key: &str,
        page: &PageMessage,
    ) -> Result<(), DeliveryError> {
        let summary = truncate_chars(
            &format!(
                "[{}] {}: {}",
                page.severity,
                page.key,
                one_line(&page.title)
            ),
            MAX_PAGERDUTY_SUMMARY,
        );
        let mut event = json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": dedup_key,
            "client": "warroom",
            "payload": {
                "summary": summary,
                "source": "warroom",
                "severity": pagerduty_severity(&page.severity),
                "timestamp": page.declared_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                "class": "incident",
                "custom_details": page,
            },
        });
        if let Some(link) = &page.link {
            event["links"] = json!([{ "href": link, "text": format!("{} war room", page.key) }]);
            event["client_url"] = json!(link);
        }
        self.pagerduty_event(routing_key, &event).await
    }

    /// PagerDuty Events API v2 `acknowledge` for `dedup_key`.
    pub async fn pagerduty_acknowledge(
        &self,
        routing_key: &str,
        dedup_key: &str,
    ) -> Result<(), DeliveryError> {
        self.pagerduty_simple(routing_key, dedup_key, "acknowledge")
            .await
    }

    /// PagerDuty Events API v2 `resolve` for `dedup_key`.
    pub async fn pagerduty_resolve(
        &self,
        routing_key: &str,
        dedup_key: &str,
    ) -> Result<(), DeliveryError> {
        self.pagerduty_simple(routing_key, dedup_key, "resolve")
            .await
    }

    async fn pagerduty_simple(
        &self,
        routing_key: &str,
        dedup_key: &str,
        action: &str,
    ) -> Result<(), DeliveryError> {
        let event = json!({
            "routing_key": routing_key,
            "event_action": action,
            "dedup_key": dedup_key,
        });
        self.pagerduty_event(routing_key, &event).await
    }

    async fn pagerduty_event(
        &self,
        routing_key: &str,
        event: &serde_json::Value,
    ) -> Result<(), DeliveryError> {
        if routing_key.trim().is_empty() {
            return Err(DeliveryError::Fatal(
                "the PagerDuty routing key is empty".to_string(),
            ));
        }
        let request = self
            .http
            .post(&self.settings.pagerduty_events_url)
            .json(event);
        self.deliver("PagerDuty", request).await
    }
}

/// PagerDuty's `payload.severity` for a warroom severity.
fn pagerduty_severity(severity: &str) -> &'static str {
    match severity.trim().to_ascii_uppercase().as_str() {
        "P0" | "P1" => "critical",
        "P2" => "error",
        "P3" => "warning",
        _ => "info",
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_kit::{page, pagerduty_pagers, receiver, reply, PD_OK};
    use super::*;
    use axum::http::Method;

    #[tokio::test]
    async fn pagerduty_trigger_sends_an_events_v2_trigger() {
        let (base, rx) = receiver(reply(202, PD_OK), vec![]).await;
        let pagers = pagerduty_pagers(&base);
        pagers
            .pagerduty_trigger("R0UTING", "warroom-INC-7", &page())
            .await
            .unwrap();

        let seen = rx.seen();
        assert_eq!(seen.len(), 1);
        let req = &seen[0];
        assert_eq!(req.method, Method::POST);
        assert_eq!(req.path, "/v2/enqueue");
        assert!(req.header("content-type").starts_with("application/json"));
        let event = req.json();
        assert_eq!(event["routing_key"], "R0UTING");
        assert_eq!(event["event_action"], "trigger");
        assert_eq!(event["dedup_key"], "warroom-INC-7");
        assert_eq!(event["payload"]["summary"], "[P0] INC-7: db down");
        assert_eq!(event["payload"]["source"], "warroom");
        assert_eq!(event["payload"]["severity"], "critical");
        let details = &event["payload"]["custom_details"];
        assert_eq!(details["key"], "INC-7");
        assert_eq!(details["incident"], 7);
        assert_eq!(details["status"], "investigating");
        assert_eq!(details["war_room"], "#inc-7-db-down");
        assert_eq!(details["contact"], "senior");
        assert_eq!(details["step"], 1);
        assert_eq!(
            event["links"][0]["href"],
            "https://slack.example.com/archives/C7"
        );
        assert!(event["links"][0]["text"]
            .as_str()
            .unwrap()
            .contains("INC-7"));

        // No link, no links.
        let mut unlinked = page();
        unlinked.link = None;
        unlinked.severity = "P3".into();
        pagers
            .pagerduty_trigger("R0UTING", "warroom-INC-7", &unlinked)
            .await
            .unwrap();
        let event = rx.seen()[1].json();
        assert!(event.get("links").is_none());
        assert_eq!(event["payload"]["severity"], "warning");
    }

    #[tokio::test]
    async fn pagerduty_acknowledge_and_resolve() {
        let (base, rx) = receiver(reply(202, PD_OK), vec![]).await;
        let pagers = pagerduty_pagers(&base);
        pagers
            .pagerduty_acknowledge("R0UTING", "warroom-INC-7")
            .await
            .unwrap();
        pagers
            .pagerduty_resolve("R0UTING", "warroom-INC-7")
            .await
            .unwrap();
        let seen = rx.seen();
        let actions: Vec<_> = seen
            .iter()
            .map(|s| s.json()["event_action"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(actions, ["acknowledge", "resolve"]);
        for s in &seen {
            let event = s.json();
            assert_eq!(event["dedup_key"], "warroom-INC-7");
            assert_eq!(event["routing_key"], "R0UTING");
            assert!(event.get("payload").is_none());
        }
    }

    #[tokio::test]
    async fn pagerduty_5xx_is_retryable_then_succeeds() {
        let (base, rx) = receiver(reply(202, PD_OK), vec![reply(500, "oops")]).await;
        let pagers = pagerduty_pagers(&base);
        let first = pagers
            .pagerduty_trigger("R0UTING", "warroom-INC-7", &page())
            .await;
        match first {
            Err(DeliveryError::Retryable { after, reason }) => {
                assert_eq!(after, None);
                assert!(reason.contains("500"), "{reason}");
                assert!(reason.contains("oops"), "{reason}");
            }
            other => panic!("expected Retryable, got {other:?}"),
        }
        pagers
            .pagerduty_trigger("R0UTING", "warroom-INC-7", &page())
            .await
            .unwrap();
        assert_eq!(rx.seen().len(), 2);
    }

    #[tokio::test]
    async fn pagerduty_400_is_fatal_with_status_and_excerpt() {
        let body = r#"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect (should be 32 characters)"]}"#;
        let (base, _rx) = receiver(reply(400, body), vec![]).await;
        let err = pagerduty_pagers(&base)
            .pagerduty_trigger("R0UTING", "warroom-INC-7", &page())
            .await
            .unwrap_err();
        let DeliveryError::Fatal(reason) = &err else {
            panic!("expected Fatal, got {err:?}");
        };
        assert!(reason.contains("PagerDuty"), "{reason}");
        assert!(reason.contains("400"), "{reason}");
        assert!(reason.contains("Event object is invalid"), "{reason}");
        assert!(!reason.contains("R0UTING"), "{reason}");
        assert!(!err.is_retryable());
    }

    #[test]
    fn pagerduty_severities() {
        assert_eq!(pagerduty_severity("P0"), "critical");
        assert_eq!(pagerduty_severity("p1"), "critical");
        assert_eq!(pagerduty_severity("P2"), "error");
        assert_eq!(pagerduty_severity("P3"), "warning");
        assert_eq!(pagerduty_severity("P4"), "info");
    }
}
