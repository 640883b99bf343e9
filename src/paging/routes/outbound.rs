//! What the HTTP routes (and other outgoing deliveries such as Statuspage) share: the client
//! (timeouts, no redirects), sending with the outcome classified as done, retryable (honouring
//! `Retry-After`) or fatal, bounded reading of error bodies, and URLs redacted for error
//! reasons.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

use super::{one_line, truncate_chars, DeliveryError};

/// How long one HTTP call to a paging provider may take.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest `Retry-After` honoured; a page delayed longer than this is worth little anyway.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How much of an error response body is read, and how much of it is quoted.
const MAX_ERROR_BODY_READ: usize = 4096;
const MAX_ERROR_EXCERPT: usize = 200;

/// The HTTP client of outgoing deliveries (paging, Statuspage): a 10 s timeout, and no
/// redirects — a redirect would turn a POST into a GET or send a signed body elsewhere.
pub(crate) fn outbound_http_client(purpose: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(HTTP_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("warroom/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, purpose, "cannot build an HTTP client; using defaults");
            reqwest::Client::new()
        })
}

/// Sends `request` and classifies the outcome like every paging route: a 2xx response is
/// returned (its body unread); network failures, timeouts, 408, 429 and 5xx are retryable
/// (honouring `Retry-After`); other statuses are fatal. `service` names the far side in error
/// reasons, which quote the status and the start of the response body but never the URL.
pub(crate) async fn send_classified(
    service: &str,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, DeliveryError> {
    let response = request
        .send()
        .await
        .map_err(|e| transport_error(service, e))?;
    check_response(service, response).await
}

/// Checks a configured URL (the variable `name`): http(s) with a host. The error shows the
/// value redacted.
pub(crate) fn check_http_url(name: &str, value: &str) -> Result<(), String> {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(()),
        _ => Err(format!(
            "{name} must be an http(s) URL, got `{}`",
            redacted_url_str(value)
        )),
    }
}

/// An error and its sources, `a: b: c`, without repeats.
pub(super) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    one_line(&parts.join(": "))
}

/// A reqwest failure before any response: retryable unless the request itself is wrong.
fn transport_error(service: &str, e: reqwest::Error) -> DeliveryError {
    // The URL may hold a token (webhooks): keep it out of the reason.
    let e = e.without_url();
    let detail = error_chain(&e);
    if e.is_builder() {
        return DeliveryError::Fatal(format!("cannot build the {service} request: {detail}"));
    }
    let what = if e.is_timeout() {
        format!("timed out (limit {}s)", HTTP_TIMEOUT.as_secs())
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    DeliveryError::retry(format!("{service}: {what}: {detail}"))
}

/// Any 2xx is success; 408, 429 and 5xx are retryable (honouring `Retry-After`); the rest
/// (other 4xx, 3xx since redirects are not followed) is fatal.
async fn check_response(
    service: &str,
    response: reqwest::Response,
) -> Result<reqwest::Response, DeliveryError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let after = retry_after(response.headers(), Utc::now());
    let excerpt = body_excerpt(response).await;
    let mut reason = format!("{service} answered {status}");
    if status.is_redirection() {
        reason.push_str(" (redirects are not followed: configure the final URL)");
    }
    if !excerpt.is_empty() {
        reason.push_str(": ");
        reason.push_str(&excerpt);
    }
    if status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        Err(DeliveryError::Retryable { after, reason })
    } else {
        Err(DeliveryError::Fatal(reason))
    }
}

/// `Retry-After` as seconds (or an HTTP date), at most [`MAX_RETRY_AFTER`].
fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = DateTime::parse_from_rfc2822(value).ok()?;
            (at.with_timezone(&Utc) - now).to_std().unwrap_or_default()
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The start of an error response's body on one line, read without pulling in a huge body.
async fn body_excerpt(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY_READ {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(MAX_ERROR_BODY_READ);
    let text = String::from_utf8_lossy(&body);
    let squeezed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate_chars(&squeezed, MAX_ERROR_EXCERPT)
}

/// `scheme://host[:port]`: user info, path and query left out, since webhook URLs often carry
/// their secret in one of them.
pub(super) fn redacted_url(url: &url::Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown
}

/// What may be shown of a configured URL in an error message.
pub(super) fn redacted_url_str(value: &str) -> String {
    match url::Url::parse(value) {
        Ok(u) if u.has_host() => redacted_url(&u),
        // Not a URL: show it only when it cannot hold credentials or a query string.
        _ if value.contains(['@', '?', '#', ':']) => "(not shown)".to_string(),
        _ => truncate_chars(value, 100),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_kit::{
        closed_port, page, pagerduty_pagers, receiver, reply, Reply, PD_OK,
    };
    use super::*;

    #[tokio::test]
    async fn http_429_honours_retry_after_and_408_is_retryable() {
        let limited = Reply {
            status: 429,
            headers: vec![("retry-after", "3".into())],
            body: String::new(),
        };
        let (base, _rx) = receiver(reply(202, PD_OK), vec![limited, reply(408, "")]).await;
        let pagers = pagerduty_pagers(&base);
        let err = pagers
            .pagerduty_acknowledge("R0UTING", "warroom-INC-7")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DeliveryError::Retryable { after: Some(d), .. } if *d == Duration::from_secs(3)),
            "{err:?}"
        );
        let err = pagers
            .pagerduty_acknowledge("R0UTING", "warroom-INC-7")
            .await
            .unwrap_err();
        assert!(
            matches!(err, DeliveryError::Retryable { after: None, .. }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn redirects_are_not_followed_and_are_fatal() {
        let moved = Reply {
            status: 301,
            headers: vec![("location", "http://127.0.0.1:1/elsewhere".into())],
            body: String::new(),
        };
        let (base, rx) = receiver(moved, vec![]).await;
        let err = pagerduty_pagers(&base)
            .pagerduty_resolve("R0UTING", "warroom-INC-7")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DeliveryError::Fatal(r) if r.contains("301")),
            "{err:?}"
        );
        assert_eq!(rx.seen().len(), 1);
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_retryable() {
        let port = closed_port().await;
        let pagers = pagerduty_pagers(&format!("http://127.0.0.1:{port}"));
        let err = pagers
            .pagerduty_trigger("R0UTING", "warroom-INC-7", &page())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DeliveryError::Retryable { after: None, reason } if reason.contains("cannot connect")),
            "{err:?}"
        );
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers, now), None);
        headers.insert(RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(120)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:30 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(30)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:00:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, "99999999".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(MAX_RETRY_AFTER));
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers, now), None);
    }
}
