//! The read-only web pages: `GET /incidents` (dashboard), `/incidents/{n}` (incident and
//! timeline), `/incidents/{n}/review.md` (the post-incident review document).
//!
//! Loopback clients see them as they are (unless a proxy forwarded the request). Anyone else
//! needs a link the bot posted — its `token` query parameter is an HMAC of the path — or
//! `Authorization: Bearer $WARROOM_WEB_TOKEN`. Anything else gets 401.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRef, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use secrecy::ExposeSecret;

use crate::context::AppContext;
use crate::http::AppError;
use crate::link_token::secrets_equal;
use crate::templates::{Medium, Template};

/// The web pages' state: the shared context and the bearer token that opens them.
#[derive(Clone)]
pub struct WebState {
    pub ctx: AppContext,
    /// `WARROOM_WEB_TOKEN`: bearer token for the web pages.
    pub web_token: Option<secrecy::SecretString>,
}

pub fn router<S>(state: WebState) -> Router<S>
where
    WebState: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/incidents", get(dashboard))
        .route("/incidents/{number}", get(incident_page))
        .route("/incidents/{number}/review.md", get(review))
        .route_layer(middleware::from_fn_with_state(state, require_access))
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

async fn require_access(State(state): State<WebState>, request: Request, next: Next) -> Response {
    let headers: &HeaderMap = request.headers();
    let query: TokenQuery = Query::try_from_uri(request.uri())
        .map(|Query(q)| q)
        .unwrap_or(TokenQuery { token: None });
    let connect = request.extensions().get::<ConnectInfo<SocketAddr>>();
    let forwarded = headers.contains_key("x-forwarded-for") || headers.contains_key("forwarded");
    let loopback = connect.map(|c| c.0.ip().is_loopback()).unwrap_or(false) && !forwarded;
    let path = request.uri().path().to_string();
    let token_ok = query
        .token
        .as_deref()
        .is_some_and(|t| state.ctx.links.verify(&path, t));
    let bearer_ok = match (&state.web_token, headers.get(header::AUTHORIZATION)) {
        (Some(secret), Some(value)) => value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| secrets_equal(t.trim().as_bytes(), secret.expose_secret().as_bytes())),
        _ => false,
    };
    if loopback || token_ok || bearer_ok {
        next.run(request).await
    } else {
        AppError::Unauthorized("a link posted by warroom or a bearer token is needed")
            .into_response()
    }
}

/// Escapes text for HTML.
pub fn html(text: &str) -> String {
    crate::timeline::escape_html(text)
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font:15px system-ui,sans-serif;margin:2em;max-width:60em}}\
         table{{border-collapse:collapse}}td,th{{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}}\
         .muted{{color:#666}}</style></head><body>{body}</body></html>",
        html(title)
    ))
}

async fn dashboard(State(state): State<WebState>) -> Result<Response, AppError> {
    let mut conn = state.ctx.store.acquire_read().await.map_err(internal)?;
    let incidents = crate::store::recent_incidents(&mut conn, 200)
        .await
        .map_err(internal)?;
    let now = state.ctx.clock.now();
    let mut rows = String::new();
    for i in &incidents {
        let age = crate::core::human_duration((now - i.declared_at).to_std().unwrap_or_default());
        rows.push_str(&format!(
            "<tr><td><a href=\"/incidents/{n}\">{key}</a></td><td>{sev}</td><td>{title}</td>\
             <td>{status}</td><td>{declared}</td><td>{age}</td><td>{commander}</td></tr>",
            n = i.number,
            key = i.key(),
            sev = i.severity,
            title = html(&i.title),
            status = i.status,
            declared = i.declared_at.format("%Y-%m-%d %H:%M UTC"),
            age = html(&age),
            commander = html(i.commander().map(String::as_str).unwrap_or("—")),
        ));
    }
    let body = format!(
        "<h1>Incidents</h1><table><tr><th>Incident</th><th>Severity</th><th>Title</th>\
         <th>Status</th><th>Declared</th><th>Age</th><th>Commander</th></tr>{rows}</table>"
    );
    Ok(page("warroom — incidents", &body).into_response())
}

fn parse_number(raw: &str) -> Result<i64, AppError> {
    raw.trim_start_matches("INC-")
        .parse::<i64>()
        .map_err(|_| AppError::BadRequest(format!("`{raw}` is not an incident number")))
}

async fn incident_page(
    State(state): State<WebState>,
    Path(number): Path<String>,
) -> Result<Response, AppError> {
    let number = parse_number(&number)?;
    let found = {
        let mut conn = state.ctx.store.acquire_read().await.map_err(internal)?;
        match crate::store::get_incident(&mut conn, number)
            .await
            .map_err(internal)?
        {
            Some(incident) => {
                let events = crate::store::timeline(&mut conn, number)
                    .await
                    .map_err(internal)?;
                Some((incident, events))
            }
            None => None,
        }
    };
    let Some((incident, events)) = found else {
        return Ok((StatusCode::NOT_FOUND, "no such incident").into_response());
    };
    let mut body = format!(
        "<h1>{} · {} · {}</h1><p>Status <b>{}</b> · declared by {} at {} · target {}</p>",
        incident.key(),
        incident.severity,
        html(&incident.title),
        incident.status,
        html(&incident.declared_by),
        incident.declared_at.format("%Y-%m-%d %H:%M UTC"),
        incident.target_at.format("%Y-%m-%d %H:%M UTC"),
    );
    if let Some(r) = &incident.resolution {
        body.push_str(&format!("<p><b>Resolution:</b> {}</p>", html(&r.summary)));
    }
    body.push_str("<h2>Timeline (UTC)</h2><table>");
    for e in &events {
        body.push_str(&format!(
            "<tr><td class=\"muted\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.at.format("%Y-%m-%d %H:%M:%S"),
            html(
                &e.actor
                    .as_deref()
                    .map(|a| crate::timeline::person(a, &crate::timeline::IdsOnly))
                    .unwrap_or_else(|| "warroom".into())
            ),
            e.kind.as_str(),
            crate::timeline::html(&e.detail, &crate::timeline::IdsOnly)
        ));
    }
    body.push_str("</table>");
    body.push_str(&format!(
        "<p><a href=\"/incidents/{}/review.md\">Post-incident review (Markdown)</a></p>",
        incident.number
    ));
    Ok(page(&incident.key(), &body).into_response())
}

async fn review(
    State(state): State<WebState>,
    Path(number): Path<String>,
) -> Result<Response, AppError> {
    let number = parse_number(&number)?;
    let incident = {
        let mut conn = state.ctx.store.acquire_read().await.map_err(internal)?;
        crate::store::get_incident(&mut conn, number)
            .await
            .map_err(internal)?
    };
    let Some(incident) = incident else {
        return Ok((StatusCode::NOT_FOUND, "no such incident").into_response());
    };
    // Served as text/markdown.
    let text = crate::resolution::render(
        &state.ctx,
        &incident,
        Template::PostIncidentReview,
        Medium::Markdown,
    )
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("{e:?}")))?;
    Ok((
        [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
        text,
    )
        .into_response())
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(anyhow::anyhow!("{e}"))
}
