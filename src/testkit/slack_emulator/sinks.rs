//! What the sinks other than the Web API answer: `response_url`s (at most 5 posts each, within
//! Slack's message limits) and webhooks (an id per created object; a `GET` lists them).

use serde_json::{json, Map, Value};

use super::methods::check_limits;
use super::outcome::Outcome;
use super::recorded::CallKind;
use super::state::{EmuState, SUCCEEDED_THEN_FAILED};

impl EmuState {
    /// A post to the `response_url` at `/response/{path}`: at most 5 per URL, within Slack's
    /// limits on a message.
    pub(super) fn respond(&mut self, path: &str, p: &Map<String, Value>) -> Outcome {
        let posts = self.response_posts.entry(path.to_string()).or_insert(0);
        if *posts >= crate::slack::limits::RESPONSE_URL_POSTS {
            return Outcome::json(404, json!({"ok": false, "error": "used_url"}));
        }
        if let Err(e) = check_limits(p) {
            return Outcome::json(400, e);
        }
        *posts += 1;
        Outcome::json(200, json!({"ok": true}))
    }

    /// A `GET` on a webhook sink: like a REST collection, the objects earlier `POST`s to the
    /// same hook and path created (those answered 2xx, and those carried out then answered 500
    /// by [`SlackEmulator::succeed_then_fail_next`]), newest first, each with its `id`. A body
    /// wrapped in one object (Statuspage's `{"incident": {...}}`) is unwrapped.
    pub(super) fn hook_collection(&self, name: &str, path: &str) -> Outcome {
        let items: Vec<Value> = self
            .calls
            .iter()
            .rev()
            .filter(|c| {
                c.kind == CallKind::Hook
                    && c.method == name
                    && c.http_method == "POST"
                    && ((200..300).contains(&c.status)
                        || c.fault.as_deref() == Some(SUCCEEDED_THEN_FAILED))
                    && c.params
                        .get("_path")
                        .map_or("", |v| v.as_str().unwrap_or(""))
                        == path
            })
            .map(|c| {
                let mut fields = match &c.params {
                    Value::Object(o) => o.clone(),
                    _ => Map::new(),
                };
                fields.remove("_path");
                let mut item = match fields.values().next() {
                    Some(Value::Object(inner)) if fields.len() == 1 => inner.clone(),
                    _ => fields,
                };
                item.insert(
                    "id".into(),
                    json!(hook_item_id(&http::Method::POST, "", c.seq)),
                );
                Value::Object(item)
            })
            .collect();
        Outcome::json(200, Value::Array(items))
    }
}

/// The `id` a webhook sink answers: `H<seq>` for what a request creates; for a `PATCH` or
/// `PUT` of `<collection>/<id>`, that `id`.
pub(super) fn hook_item_id(method: &http::Method, sub_path: &str, seq: u64) -> String {
    let updated = (method == http::Method::PATCH || method == http::Method::PUT)
        .then(|| sub_path.rsplit('/').next())
        .flatten()
        .filter(|id| !id.is_empty());
    updated.map_or_else(|| format!("H{seq:06}"), str::to_string)
}
