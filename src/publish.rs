//! Publishing resolved incidents to a public status page: Atlassian Statuspage, through its
//! REST API v1 (`https://api.statuspage.io/v1`).
//!
//! Outcomes are classified like the paging routes ([`DeliveryError`]): network failures,
//! timeouts, 408, 429 and 5xx can be retried, other answers cannot. Error reasons end up in
//! logs and on the incident timeline, so they never carry the API key.

use reqwest::header::{HeaderValue, AUTHORIZATION};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::paging::routes::outbound::{check_http_url, outbound_http_client, send_classified};
use crate::paging::routes::DeliveryError;

/// The Statuspage REST API base.
pub const DEFAULT_STATUSPAGE_API_URL: &str = "https://api.statuspage.io/v1";
/// The most of a successful response read to find the incident id.
const MAX_RESPONSE_BODY: usize = 1024 * 1024;
/// How error reasons name the far side.
const SERVICE: &str = "Statuspage";
/// The top-level `metadata` key of the incidents warroom creates:
/// `"metadata": {"warroom": {"incident": "INC-7"}}`. Customers never see it.
pub const METADATA_KEY: &str = "warroom";
/// Incidents read when looking for one an earlier attempt created (the newest; Statuspage's
/// largest page).
const LOOKUP_LIMIT: &str = "100";

/// Where and as whom incidents are published.
#[derive(Debug, Clone)]
pub struct StatuspageSettings {
    /// REST API base, default [`DEFAULT_STATUSPAGE_API_URL`].
    pub api_url: String,
    pub page_id: String,
    /// Debug-prints as `[REDACTED]`.
    pub api_key: SecretString,
}

impl StatuspageSettings {
    /// Reads the settings through `get` (normally `|k| std::env::var(k).ok()`); empty values
    /// count as unset. `None` when Statuspage is not configured.
    ///
    /// - `STATUSPAGE_API_KEY`, `STATUSPAGE_PAGE_ID`: both or neither.
    /// - `STATUSPAGE_API_URL`: REST API base, default `https://api.statuspage.io/v1`; only
    ///   with the other two.
    ///
    /// # Errors
    ///
    /// A message naming the offending variable; it never contains the API key.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<StatuspageSettings>, String> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let api_url = get("STATUSPAGE_API_URL");
        match (get("STATUSPAGE_API_KEY"), get("STATUSPAGE_PAGE_ID")) {
            (None, None) => match api_url {
                Some(_) => Err(
                    "STATUSPAGE_API_URL is set but STATUSPAGE_API_KEY and STATUSPAGE_PAGE_ID are not: publishing to Statuspage needs both"
                        .to_string(),
                ),
                None => Ok(None),
            },
            (Some(_), None) => Err(
                "STATUSPAGE_PAGE_ID is not set but STATUSPAGE_API_KEY is: set both or neither"
                    .to_string(),
            ),
            (None, Some(_)) => Err(
                "STATUSPAGE_API_KEY is not set but STATUSPAGE_PAGE_ID is: set both or neither"
                    .to_string(),
            ),
            (Some(api_key), Some(page_id)) => {
                if HeaderValue::from_str(&format!("OAuth {api_key}")).is_err() {
                    return Err(
                        "STATUSPAGE_API_KEY holds characters not allowed in an HTTP header"
                            .to_string(),
                    );
                }
                let api_url = match api_url {
                    Some(url) => {
                        check_http_url("STATUSPAGE_API_URL", &url)?;
                        url
                    }
                    None => DEFAULT_STATUSPAGE_API_URL.to_string(),
                };
                Ok(Some(StatuspageSettings {
                    api_url,
                    page_id,
                    api_key: SecretString::from(api_key),
                }))
            }
        }
    }
}

/// A Statuspage client. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Statuspage {
    http: reqwest::Client,
    settings: StatuspageSettings,
}

impl std::fmt::Debug for Statuspage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The settings redact the API key.
        f.debug_struct("Statuspage")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Statuspage {
    pub fn new(settings: StatuspageSettings) -> Statuspage {
        let http = outbound_http_client("statuspage");
        Statuspage { http, settings }
    }

    pub fn settings(&self) -> &StatuspageSettings {
        &self.settings
    }

    /// Creates (or, when `existing_id` is `Some`, updates) a Statuspage incident with status
    /// `resolved`: `POST {api_url}/pages/{page_id}/incidents` (or `PATCH
    /// {api_url}/pages/{page_id}/incidents/{id}`) with the JSON body `{"incident": {"name",
    /// "status": "resolved", "body", "deliver_notifications": true}}` and the header
    /// `Authorization: OAuth <api_key>`. Any 2xx is success. Returns the Statuspage incident
    /// id from the response (`"id"`); an update whose response has none returns `existing_id`.
    ///
    /// # Errors
    ///
    /// [`DeliveryError::Retryable`] for network failures, timeouts, 408, 429 and 5xx;
    /// [`DeliveryError::Fatal`] for other answers, an empty `existing_id`, and a creation whose
    /// response cannot be read or has no id (the incident may exist: retrying could publish
    /// it twice).
    pub async fn publish_resolved(
        &self,
        existing_id: Option<&str>,
        name: &str,
        body: &str,
    ) -> Result<String, DeliveryError> {
        self.publish(existing_id, name, body, None)
            .await
            .map_err(|e| self.redact(e))
    }

    /// Publishes warroom incident `key` (`INC-7`) as resolved, at most once: the created
    /// incident carries `key` in its metadata ([`METADATA_KEY`]), and on a `retry` (an earlier
    /// attempt may have created it and lost the answer: a timeout, a 5xx, a crash) the page's
    /// newest incidents are searched for it first, and the one found is updated instead of
    /// creating a second public incident. Returns the Statuspage incident id.
    ///
    /// # Errors
    ///
    /// As [`Self::publish_resolved`]; a lookup whose answer cannot be read is retryable
    /// (creating without knowing could publish twice).
    pub async fn publish_resolved_once(
        &self,
        key: &str,
        name: &str,
        body: &str,
        retry: bool,
    ) -> Result<String, DeliveryError> {
        let published = async {
            let existing = if retry {
                self.find_created(key).await?
            } else {
                None
            };
            self.publish(existing.as_deref(), name, body, Some(key))
                .await
        };
        published.await.map_err(|e| self.redact(e))
    }

    /// The id of the newest incident on the page whose metadata names warroom incident `key`:
    /// `GET {api_url}/pages/{page_id}/incidents?limit=100` (newest first).
    async fn find_created(&self, key: &str) -> Result<Option<String>, DeliveryError> {
        let mut url = self.incidents_url(None)?;
        url.query_pairs_mut().append_pair("limit", LOOKUP_LIMIT);
        let request = self.http.get(url).header(AUTHORIZATION, self.auth()?);
        let response = send_classified(SERVICE, request).await?;
        let (bytes, read_error) = read_limited(response, MAX_RESPONSE_BODY).await;
        let unreadable = |why: String| {
            DeliveryError::retry(format!(
                "{SERVICE}: cannot read the list of incidents ({why}), so cannot tell whether an earlier attempt published"
            ))
        };
        if let Some(e) = read_error {
            return Err(unreadable(e));
        }
        let incidents = match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(serde_json::Value::Array(items)) => items,
            Ok(_) => return Err(unreadable("not a JSON array".to_string())),
            Err(e) => return Err(unreadable(e.to_string())),
        };
        Ok(incidents
            .iter()
            .find(|i| i["metadata"][METADATA_KEY]["incident"].as_str() == Some(key))
            .and_then(|i| i["id"].as_str())
            .filter(|id| !id.trim().is_empty())
            .map(str::to_string))
    }

    /// `Authorization: OAuth <api_key>`, marked sensitive.
    fn auth(&self) -> Result<HeaderValue, DeliveryError> {
        let mut auth =
            HeaderValue::from_str(&format!("OAuth {}", self.settings.api_key.expose_secret()))
                .map_err(|_| {
                    DeliveryError::Fatal(
                        "STATUSPAGE_API_KEY holds characters not allowed in an HTTP header"
                            .to_string(),
                    )
                })?;
        auth.set_sensitive(true);
        Ok(auth)
    }

    /// Creates or updates; `key` (when given) marks the incident as warroom's `key`.
    async fn publish(
        &self,
        existing_id: Option<&str>,
        name: &str,
        body: &str,
        key: Option<&str>,
    ) -> Result<String, DeliveryError> {
        let existing_id = existing_id.map(str::trim);
        if existing_id == Some("") {
            return Err(DeliveryError::Fatal(
                "the Statuspage incident id is empty".to_string(),
            ));
        }
        let url = self.incidents_url(existing_id)?;
        let auth = self.auth()?;
        let mut payload = json!({
            "incident": {
                "name": name,
                "status": "resolved",
                "body": body,
                "deliver_notifications": true,
            }
        });
        if let Some(key) = key {
            payload["incident"]["metadata"] = json!({ METADATA_KEY: { "incident": key } });
        }
        let request = match existing_id {
            Some(_) => self.http.patch(url),
            None => self.http.post(url),
        }
        .header(AUTHORIZATION, auth)
        .json(&payload);
        let response = send_classified(SERVICE, request).await?;
        let status = response.status();

        let (bytes, read_error) = read_limited(response, MAX_RESPONSE_BODY).await;
        let id = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| match &v["id"] {
                serde_json::Value::String(id) if !id.trim().is_empty() => Some(id.clone()),
                _ => None,
            });
        match (id, existing_id) {
            (Some(id), _) => Ok(id),
            // An update is idempotent and names its incident already.
            (None, Some(existing)) if read_error.is_none() => Ok(existing.to_string()),
            (None, Some(_)) => Err(DeliveryError::retry(format!(
                "{SERVICE}: cannot read the answer to the update: {}",
                read_error.unwrap_or_default()
            ))),
            (None, None) => Err(DeliveryError::Fatal(match read_error {
                Some(e) => format!(
                    "{SERVICE} answered {status} but the answer could not be read ({e}); the incident may have been created: check the status page"
                ),
                None => format!(
                    "{SERVICE} answered {status} without an incident id; the incident may have been created: check the status page"
                ),
            })),
        }
    }

    /// `{api_url}/pages/{page_id}/incidents[/{id}]`, each segment percent-encoded.
    fn incidents_url(&self, id: Option<&str>) -> Result<url::Url, DeliveryError> {
        let bad_url =
            || DeliveryError::Fatal("STATUSPAGE_API_URL is not a usable http(s) URL".to_string());
        let mut url = url::Url::parse(self.settings.api_url.trim()).map_err(|_| bad_url())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad_url());
        }
        url.set_query(None);
        url.set_fragment(None);
        {
            let mut segments = url.path_segments_mut().map_err(|_| bad_url())?;
            segments
                .pop_if_empty()
                .extend(["pages", self.settings.page_id.trim(), "incidents"]);
            if let Some(id) = id {
                segments.push(id);
            }
        }
        Ok(url)
    }

    /// The error with any occurrence of the API key (echoed by the far side, say) masked.
    fn redact(&self, error: DeliveryError) -> DeliveryError {
        let key = self.settings.api_key.expose_secret();
        let mask = |reason: String| {
            if key.is_empty() {
                reason
            } else {
                reason.replace(key, "[REDACTED]")
            }
        };
        match error {
            DeliveryError::Retryable { after, reason } => DeliveryError::Retryable {
                after,
                reason: mask(reason),
            },
            DeliveryError::Fatal(reason) => DeliveryError::Fatal(mask(reason)),
        }
    }
}

/// At most `limit` bytes of the body, and the error that cut the reading short, if any.
async fn read_limited(mut response: reqwest::Response, limit: usize) -> (Vec<u8>, Option<String>) {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => return (body, None),
            Err(e) => return (body, Some(e.without_url().to_string())),
        }
    }
    (body, Some(format!("longer than {limit} bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, VecDeque};
    use std::sync::{Arc, Mutex};

    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, Method, Uri};
    use axum::response::{IntoResponse, Response};
    use axum::Router;

    const KEY: &str = "sp-KEY-123";

    #[derive(Debug, Clone)]
    struct Seen {
        method: Method,
        path: String,
        query: String,
        headers: HeaderMap,
        body: Bytes,
    }

    impl Seen {
        fn header(&self, name: &str) -> String {
            self.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        }

        fn json(&self) -> serde_json::Value {
            serde_json::from_slice(&self.body).expect("a JSON body")
        }
    }

    /// Records every request and answers from a script, then `201 {"id": "abc"}`.
    #[derive(Default)]
    struct Receiver {
        seen: Mutex<Vec<Seen>>,
        script: Mutex<VecDeque<(u16, String)>>,
    }

    impl Receiver {
        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    async fn record(
        State(rx): State<Arc<Receiver>>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        rx.seen.lock().unwrap().push(Seen {
            method,
            path: uri.path().to_string(),
            query: uri.query().unwrap_or_default().to_string(),
            headers,
            body,
        });
        let (status, body) = rx
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| (201, r#"{"id":"abc","status":"resolved"}"#.to_string()));
        (
            axum::http::StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/json")],
            body,
        )
            .into_response()
    }

    /// Starts a receiver on 127.0.0.1:0; returns a client for `http://127.0.0.1:PORT/v1`,
    /// page `pg1`, and the receiver.
    async fn receiver(script: Vec<(u16, &str)>) -> (Statuspage, Arc<Receiver>) {
        let rx = Arc::new(Receiver::default());
        rx.script
            .lock()
            .unwrap()
            .extend(script.into_iter().map(|(s, b)| (s, b.to_string())));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(record).with_state(rx.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let client = Statuspage::new(StatuspageSettings {
            api_url: format!("http://{addr}/v1/"),
            page_id: "pg1".to_string(),
            api_key: SecretString::from(KEY),
        });
        (client, rx)
    }

    fn assert_incident_json(seen: &Seen, name: &str, body: &str) {
        assert!(seen.header("content-type").starts_with("application/json"));
        assert_eq!(
            seen.json(),
            json!({"incident": {
                "name": name,
                "status": "resolved",
                "body": body,
                "deliver_notifications": true,
            }})
        );
    }

    #[tokio::test]
    async fn creates_a_resolved_incident() {
        let (client, rx) = receiver(vec![]).await;
        let id = client
            .publish_resolved(None, "INC-7: db down", "Fixed — the primary failed over.")
            .await
            .unwrap();
        assert_eq!(id, "abc");
        let seen = rx.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].method, Method::POST);
        assert_eq!(seen[0].path, "/v1/pages/pg1/incidents");
        assert_eq!(seen[0].header("authorization"), format!("OAuth {KEY}"));
        assert_incident_json(
            &seen[0],
            "INC-7: db down",
            "Fixed — the primary failed over.",
        );
    }

    #[tokio::test]
    async fn updates_an_existing_incident() {
        let (client, rx) = receiver(vec![(200, r#"{"id":"xyz9"}"#), (200, "{}")]).await;
        let id = client
            .publish_resolved(Some("xyz9"), "INC-7: db down", "Update")
            .await
            .unwrap();
        assert_eq!(id, "xyz9");
        // No id in the answer: the update keeps the one it was given.
        let id = client
            .publish_resolved(Some("xyz9"), "INC-7", "Again")
            .await
            .unwrap();
        assert_eq!(id, "xyz9");
        let seen = rx.seen();
        assert_eq!(seen.len(), 2);
        for s in &seen {
            assert_eq!(s.method, Method::PATCH);
            assert_eq!(s.path, "/v1/pages/pg1/incidents/xyz9");
            assert_eq!(s.header("authorization"), format!("OAuth {KEY}"));
        }
        assert_incident_json(&seen[0], "INC-7: db down", "Update");

        // Ids are path segments, never path syntax.
        client
            .publish_resolved(Some("../x?y"), "n", "b")
            .await
            .unwrap();
        assert_eq!(rx.seen()[2].path, "/v1/pages/pg1/incidents/..%2Fx%3Fy");
        let err = client
            .publish_resolved(Some(" "), "n", "b")
            .await
            .unwrap_err();
        assert!(matches!(err, DeliveryError::Fatal(_)), "{err:?}");
    }

    #[tokio::test]
    async fn server_errors_are_retryable() {
        let (client, rx) = receiver(vec![(500, r#"{"error":"oops"}"#)]).await;
        let err = client
            .publish_resolved(None, "INC-7", "b")
            .await
            .unwrap_err();
        match &err {
            DeliveryError::Retryable { reason, .. } => {
                assert!(reason.contains("Statuspage"), "{reason}");
                assert!(reason.contains("500"), "{reason}");
                assert!(reason.contains("oops"), "{reason}");
            }
            other => panic!("expected Retryable, got {other:?}"),
        }
        assert_eq!(
            client.publish_resolved(None, "INC-7", "b").await.unwrap(),
            "abc"
        );
        assert_eq!(rx.seen().len(), 2);
    }

    #[tokio::test]
    async fn client_errors_are_fatal_and_never_show_the_key() {
        let echo = format!(r#"{{"error":"bad key OAuth {KEY}"}}"#);
        let (client, _rx) = receiver(vec![(401, &echo), (201, r#"{"name":"no id"}"#)]).await;
        let err = client
            .publish_resolved(None, "INC-7", "b")
            .await
            .unwrap_err();
        let DeliveryError::Fatal(reason) = &err else {
            panic!("expected Fatal, got {err:?}");
        };
        assert!(reason.contains("401"), "{reason}");
        assert!(!reason.contains(KEY), "{reason}");
        assert!(!format!("{err:?} {client:?}").contains(KEY));

        // Created, maybe, but no id to keep: retrying could publish it twice.
        let err = client
            .publish_resolved(None, "INC-7", "b")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DeliveryError::Fatal(r) if r.contains("without an incident id")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_retried_create_updates_the_incident_it_created() {
        // The create reaches Statuspage, but its answer is a 502 (a timeout is the same).
        let listing = r#"[
            {"id": "new1", "name": "someone else's", "metadata": {}},
            {"id": "x70", "metadata": {"warroom": {"incident": "INC-70"}}},
            {"id": "abc", "metadata": {"warroom": {"incident": "INC-7"}}}
        ]"#;
        let (client, rx) = receiver(vec![(502, "bad gateway"), (200, listing)]).await;
        let err = client
            .publish_resolved_once("INC-7", "INC-7: db down", "Fixed", false)
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
        let id = client
            .publish_resolved_once("INC-7", "INC-7: db down", "Fixed", true)
            .await
            .unwrap();
        assert_eq!(id, "abc");

        let seen = rx.seen();
        let calls: Vec<(Method, &str)> = seen
            .iter()
            .map(|s| (s.method.clone(), s.path.as_str()))
            .collect();
        assert_eq!(
            calls,
            [
                (Method::POST, "/v1/pages/pg1/incidents"),
                (Method::GET, "/v1/pages/pg1/incidents"),
                (Method::PATCH, "/v1/pages/pg1/incidents/abc"),
            ]
        );
        assert_eq!(seen[1].query, "limit=100");
        for s in &seen {
            assert_eq!(s.header("authorization"), format!("OAuth {KEY}"));
        }
        for s in [&seen[0], &seen[2]] {
            assert_eq!(
                s.json()["incident"]["metadata"],
                json!({"warroom": {"incident": "INC-7"}})
            );
            assert_eq!(s.json()["incident"]["name"], "INC-7: db down");
        }
    }

    #[tokio::test]
    async fn a_retry_creates_when_no_earlier_attempt_did() {
        let (client, rx) = receiver(vec![
            (
                200,
                r#"[{"id": "x70", "metadata": {"warroom": {"incident": "INC-70"}}}]"#,
            ),
            (201, r#"{"id": "abc"}"#),
            (200, "<html>maintenance</html>"),
            (503, "down"),
        ])
        .await;
        // Nothing of INC-7 on the page: created.
        let id = client
            .publish_resolved_once("INC-7", "n", "b", true)
            .await
            .unwrap();
        assert_eq!(id, "abc");
        let methods: Vec<Method> = rx.seen().iter().map(|s| s.method.clone()).collect();
        assert_eq!(methods, [Method::GET, Method::POST]);
        // A list that cannot be read, or cannot be had: no create, try again later.
        for _ in 0..2 {
            let err = client
                .publish_resolved_once("INC-7", "n", "b", true)
                .await
                .unwrap_err();
            assert!(err.is_retryable(), "{err:?}");
            assert!(!err.to_string().contains(KEY));
        }
        assert_eq!(rx.seen().len(), 4);
        assert!(rx.seen()[2..].iter().all(|s| s.method == Method::GET));
    }

    #[tokio::test]
    async fn an_unreachable_api_is_retryable() {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = Statuspage::new(StatuspageSettings {
            api_url: format!("http://127.0.0.1:{port}/v1"),
            page_id: "pg1".to_string(),
            api_key: SecretString::from(KEY),
        });
        let err = client.publish_resolved(None, "n", "b").await.unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
        assert!(!err.to_string().contains(KEY));
    }

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| vars.get(k).cloned()
    }

    #[test]
    fn from_lookup_reads_both_or_neither() {
        assert!(StatuspageSettings::from_lookup(|_| None).unwrap().is_none());
        // Empty values count as unset.
        let none = lookup(&[("STATUSPAGE_API_KEY", " "), ("STATUSPAGE_PAGE_ID", "")]);
        assert!(StatuspageSettings::from_lookup(none).unwrap().is_none());

        let s = StatuspageSettings::from_lookup(lookup(&[
            ("STATUSPAGE_API_KEY", KEY),
            ("STATUSPAGE_PAGE_ID", "pg1"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(s.api_url, DEFAULT_STATUSPAGE_API_URL);
        assert_eq!(s.page_id, "pg1");
        assert_eq!(s.api_key.expose_secret(), KEY);
        assert!(!format!("{s:?}").contains(KEY));

        let s = StatuspageSettings::from_lookup(lookup(&[
            ("STATUSPAGE_API_KEY", KEY),
            ("STATUSPAGE_PAGE_ID", "pg1"),
            ("STATUSPAGE_API_URL", "http://localhost:8080/v1"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(s.api_url, "http://localhost:8080/v1");
    }

    #[test]
    fn from_lookup_errors_name_the_variable() {
        let err = |vars: &[(&str, &str)]| {
            let e = StatuspageSettings::from_lookup(lookup(vars)).unwrap_err();
            assert!(!e.contains(KEY), "{e}");
            e
        };
        let e = err(&[("STATUSPAGE_API_KEY", KEY)]);
        assert!(e.starts_with("STATUSPAGE_PAGE_ID is not set"), "{e}");
        let e = err(&[("STATUSPAGE_PAGE_ID", "pg1")]);
        assert!(e.starts_with("STATUSPAGE_API_KEY is not set"), "{e}");
        let e = err(&[("STATUSPAGE_API_URL", "http://localhost/v1")]);
        assert!(e.starts_with("STATUSPAGE_API_URL is set"), "{e}");
        let e = err(&[
            ("STATUSPAGE_API_KEY", KEY),
            ("STATUSPAGE_PAGE_ID", "pg1"),
            ("STATUSPAGE_API_URL", "api.statuspage.io"),
        ]);
        assert!(e.contains("STATUSPAGE_API_URL"), "{e}");
        let e = err(&[
            ("STATUSPAGE_API_KEY", "bad\u{7f}key"),
            ("STATUSPAGE_PAGE_ID", "pg1"),
        ]);
        assert!(
            e.contains("STATUSPAGE_API_KEY") && !e.contains("bad"),
            "{e}"
        );
    }
}
