//! The Slack Web API methods the bot uses (`conversations.*`, `chat.*`, `views.*`, `files.*`,
//! `users.*`, ...), carried out on the emulated workspace with Slack's answers and errors; any
//! other method answers `{"ok": true}`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use sha1::{Digest, Sha1};

use super::params::{
    first_truthy, flag_true, get_or_empty, maybe_json, number_of, or_empty, param_or, text_of,
    truthy, ts_key, users_param,
};
use super::state::{ChannelRecord, EmuState, CREATED};
use super::{APP_ID, BOT_ID, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID};

/// Block Kit element types that Slack gives an `action_id` when they lack one.
const INTERACTIVE_TYPES: [&str; 21] = [
    "button",
    "static_select",
    "multi_static_select",
    "external_select",
    "multi_external_select",
    "users_select",
    "multi_users_select",
    "conversations_select",
    "multi_conversations_select",
    "channels_select",
    "multi_channels_select",
    "overflow",
    "datepicker",
    "timepicker",
    "datetimepicker",
    "checkboxes",
    "radio_buttons",
    "plain_text_input",
    "email_text_input",
    "url_text_input",
    "number_input",
];

impl EmuState {
    /// Fills in `block_id` on top-level blocks and `action_id` on interactive
    /// elements that lack them, as Slack does. Non-lists are returned as they are.
    fn normalize_blocks(&mut self, blocks: &Value) -> Value {
        let mut out = maybe_json(blocks);
        if let Value::Array(items) = &mut out {
            for block in items.iter_mut() {
                if let Value::Object(obj) = block {
                    if !obj.contains_key("block_id") {
                        let id = self.rand_id(4);
                        obj.insert("block_id".into(), Value::String(id));
                    }
                    self.fill_action_ids(block);
                }
            }
        }
        out
    }

    fn fill_action_ids(&mut self, node: &mut Value) {
        match node {
            Value::Object(obj) => {
                let interactive = obj
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| INTERACTIVE_TYPES.contains(&t));
                if interactive && !obj.contains_key("action_id") {
                    let id = format!("{}=", self.rand_id(5));
                    obj.insert("action_id".into(), Value::String(id));
                }
                for v in obj.values_mut() {
                    self.fill_action_ids(v);
                }
            }
            Value::Array(items) => {
                for v in items {
                    self.fill_action_ids(v);
                }
            }
            _ => {}
        }
    }

    pub(super) fn call_method(
        &mut self,
        base: &str,
        method: &str,
        p: &Map<String, Value>,
    ) -> Value {
        match method {
            "auth.test" => json!({
                "ok": true,
                "url": format!("https://{TEAM_DOMAIN}.slack.com/"),
                "team": "Acme",
                "user": "warroom",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": false,
            }),
            "conversations.create" => self.conversations_create(p),
            "conversations.invite" => self.conversations_invite(p),
            "conversations.setTopic" => {
                let cid = text_of(get_or_empty(p, "channel"));
                let topic = get_or_empty(p, "topic").clone();
                if let Err(v) = crate::slack::limits::check_topic(&text_of(&topic)) {
                    return api_error(v.error);
                }
                self.channel_entry(&cid).topic = Some(topic);
                json!({"ok": true, "channel": self.channel_obj(&cid)})
            }
            "conversations.setPurpose" => {
                let cid = text_of(get_or_empty(p, "channel"));
                let purpose = get_or_empty(p, "purpose").clone();
                self.channel_entry(&cid).purpose = Some(purpose.clone());
                json!({"ok": true, "channel": self.channel_obj(&cid), "purpose": purpose})
            }
            "conversations.join" | "conversations.info" => {
                let cid = text_of(get_or_empty(p, "channel"));
                json!({"ok": true, "channel": self.channel_obj(&cid)})
            }
            "conversations.members" => {
                let cid = text_of(get_or_empty(p, "channel"));
                let members = self
                    .members
                    .get(&cid)
                    .cloned()
                    .unwrap_or_else(|| vec![BOT_USER_ID.to_string()]);
                json!({"ok": true, "members": members, "response_metadata": {"next_cursor": ""}})
            }
            "conversations.list" => self.conversations_list(p),
            "conversations.open" => conversations_open(p),
            "conversations.history" => self.conversations_history(p),
            "conversations.replies" => self.conversations_replies(p),
            "chat.postMessage" => self.chat_post_message(p),
            "chat.postEphemeral" => {
                if let Err(e) = check_post(p) {
                    return e;
                }
                if !truthy(p.get("user")) {
                    return api_error("user_not_in_channel");
                }
                json!({"ok": true, "message_ts": self.next_ts()})
            }
            "chat.update" => self.chat_update(p),
            "chat.delete" => json!({
                "ok": true,
                "channel": param_or(p, "channel", Value::Null),
                "ts": param_or(p, "ts", Value::Null),
            }),
            "chat.getPermalink" => {
                let cid = text_of(get_or_empty(p, "channel"));
                let ts = first_truthy(p, &["message_ts", "ts"])
                    .map(text_of)
                    .unwrap_or_default();
                let compact_ts = ts.replace('.', "");
                let permalink =
                    format!("https://{TEAM_DOMAIN}.slack.com/archives/{cid}/p{compact_ts}");
                json!({"ok": true, "channel": cid, "permalink": permalink})
            }
            "chat.scheduleMessage" => {
                self.n_ts += 1;
                let post_at = p
                    .get("post_at")
                    .and_then(number_of)
                    .unwrap_or_else(|| unix_now() + 60);
                json!({
                    "ok": true,
                    "channel": param_or(p, "channel", Value::Null),
                    "scheduled_message_id": format!("Q{}", self.n_ts),
                    "post_at": post_at,
                })
            }
            "users.info" => match p.get("user").filter(|v| truthy(Some(v))) {
                Some(uid) => json!({"ok": true, "user": user_obj(&text_of(uid))}),
                None => api_error("user_not_found"),
            },
            "users.profile.get" => {
                let uid = first_truthy(p, &["user"])
                    .map(text_of)
                    .unwrap_or_else(|| BOT_USER_ID.to_string());
                json!({"ok": true, "profile": user_obj(&uid)["profile"].clone()})
            }
            "team.info" => {
                json!({"ok": true, "team": {"id": TEAM_ID, "name": "Acme", "domain": TEAM_DOMAIN}})
            }
            "bots.info" => json!({
                "ok": true,
                "bot": {"id": BOT_ID, "name": "warroom", "user_id": BOT_USER_ID, "app_id": APP_ID},
            }),
            "views.open" | "views.update" | "views.push" => match p.get("view").map(maybe_json) {
                Some(view) => match crate::slack::limits::check_view(&view) {
                    Ok(()) => self.view(p),
                    Err(v) => api_error(v.error),
                },
                None => self.view(p),
            },
            "views.publish" => self.view(p),
            "files.upload" => {
                let (_, file) = self.new_file(p);
                json!({"ok": true, "file": file})
            }
            "files.getUploadURLExternal" => {
                let (fid, _) = self.new_file(p);
                json!({"ok": true, "upload_url": format!("{base}/upload/{fid}"), "file_id": fid})
            }
            "files.completeUploadExternal" => {
                let files: Vec<Value> = match p.get("files").map(maybe_json) {
                    Some(Value::Array(items)) => items
                        .iter()
                        .filter_map(Value::as_object)
                        .map(|f| {
                            json!({
                                "id": param_or(f, "id", Value::Null),
                                "title": param_or(f, "title", json!("")),
                            })
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                self.share_files(p, &files);
                json!({"ok": true, "files": files})
            }
            "bookmarks.add" => {
                let id = format!("Bk{}", self.rand_id(8));
                json!({
                    "ok": true,
                    "bookmark": {
                        "id": id,
                        "channel_id": param_or(p, "channel_id", Value::Null),
                        "title": param_or(p, "title", Value::Null),
                        "link": param_or(p, "link", Value::Null),
                        "type": param_or(p, "type", json!("link")),
                    },
                })
            }
            _ => json!({"ok": true}),
        }
    }

    fn conversations_create(&mut self, p: &Map<String, Value>) -> Value {
        let name = match p.get("name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => return api_error("invalid_name_required"),
        };
        if name.chars().count() > 80 {
            return api_error("invalid_name_maxlength");
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return api_error("invalid_name_specials");
        }
        if name.chars().all(|c| c == '_' || c == '-') {
            return api_error("invalid_name_punctuation");
        }
        if self.taken_names.contains(&name) {
            return api_error("name_taken");
        }
        self.taken_names.insert(name.clone());
        self.n_channel += 1;
        let cid = format!("C{}", 1000 + self.n_channel);
        self.channels.insert(
            cid.clone(),
            ChannelRecord {
                name,
                topic: None,
                purpose: None,
            },
        );
        self.channel_order.push(cid.clone());
        self.members
            .insert(cid.clone(), vec![BOT_USER_ID.to_string()]);
        json!({"ok": true, "channel": self.channel_obj(&cid)})
    }

    fn conversations_invite(&mut self, p: &Map<String, Value>) -> Value {
        let users = users_param(p);
        let cid = match p.get("channel").filter(|v| truthy(Some(v))) {
            Some(c) => text_of(c),
            None => return api_error("channel_not_found"),
        };
        if users.is_empty() {
            return api_error("no_user");
        }
        let members = self
            .members
            .entry(cid.clone())
            .or_insert_with(|| vec![BOT_USER_ID.to_string()]);
        for user in users {
            if !members.contains(&user) {
                members.push(user);
            }
        }
        json!({"ok": true, "channel": self.channel_obj(&cid)})
    }

    fn conversations_history(&self, p: &Map<String, Value>) -> Value {
        let cid = p.get("channel").map(text_of);
        let latest = p.get("latest").filter(|v| !v.is_null()).map(ts_key);
        let oldest = p.get("oldest").filter(|v| !v.is_null()).map(ts_key);
        let inclusive = flag_true(p.get("inclusive"));
        let limit = if truthy(p.get("limit")) {
            p.get("limit").and_then(number_of).unwrap_or(100)
        } else {
            100
        };
        let mut msgs: Vec<(i128, Value)> = self
            .messages
            .iter()
            .filter(|((c, ts), m)| {
                if Some(c) != cid.as_ref() {
                    return false;
                }
                match m.get("thread_ts") {
                    None | Some(Value::Null) => true,
                    Some(t) => t.as_str() == Some(ts.as_str()),
                }
            })
            .filter_map(|((_, ts), m)| {
                let k = ts_key(&Value::String(ts.clone()));
                let below_latest = latest.is_none_or(|l| if inclusive { k <= l } else { k < l });
                let above_oldest = oldest.is_none_or(|o| if inclusive { k >= o } else { k > o });
                (below_latest && above_oldest).then(|| (k, m.clone()))
            })
            .collect();
        // Newest first; the sort is stable, like Python's.
        msgs.sort_by_key(|m| std::cmp::Reverse(m.0));
        let has_more = i64::try_from(msgs.len()).unwrap_or(i64::MAX) > limit;
        let keep = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
        let messages: Vec<Value> = msgs.into_iter().take(keep).map(|(_, m)| m).collect();
        let messages = without_metadata_unless_asked(messages, p);
        json!({
            "ok": true,
            "messages": messages,
            "has_more": has_more,
            "response_metadata": {"next_cursor": ""},
        })
    }

    fn conversations_replies(&self, p: &Map<String, Value>) -> Value {
        let cid = p.get("channel").map(text_of).unwrap_or_default();
        let ts = first_truthy(p, &["ts"]).map(text_of).unwrap_or_default();
        let Some(parent) = self.messages.get(&(cid.clone(), ts.clone())) else {
            return api_error("thread_not_found");
        };
        let mut replies: Vec<(i128, Value)> = self
            .messages
            .iter()
            .filter(|((c, t), m)| {
                *c == cid
                    && *t != ts
                    && m.get("thread_ts").and_then(Value::as_str) == Some(ts.as_str())
            })
            .map(|((_, t), m)| (ts_key(&Value::String(t.clone())), m.clone()))
            .collect();
        replies.sort_by_key(|m| m.0);
        let mut messages = vec![parent.clone()];
        messages.extend(replies.into_iter().map(|(_, m)| m));
        json!({
            "ok": true,
            "messages": messages,
            "has_more": false,
            "response_metadata": {"next_cursor": ""},
        })
    }

    fn chat_post_message(&mut self, p: &Map<String, Value>) -> Value {
        let cid = match check_post(p) {
            Ok(cid) => cid,
            Err(e) => return e,
        };
        let ts = self.next_ts();
        let mut msg = Map::new();
        msg.insert("type".into(), json!("message"));
        msg.insert("user".into(), json!(BOT_USER_ID));
        msg.insert("bot_id".into(), json!(BOT_ID));
        msg.insert("app_id".into(), json!(APP_ID));
        msg.insert("team".into(), json!(TEAM_ID));
        msg.insert("text".into(), or_empty(p.get("text")));
        msg.insert("ts".into(), json!(ts));
        if let Some(blocks) = p.get("blocks").filter(|v| truthy(Some(v))) {
            let blocks = self.normalize_blocks(blocks);
            msg.insert("blocks".into(), blocks);
        }
        if let Some(attachments) = p.get("attachments").filter(|v| truthy(Some(v))) {
            msg.insert("attachments".into(), maybe_json(attachments));
        }
        if let Some(thread_ts) = p.get("thread_ts").filter(|v| truthy(Some(v))) {
            msg.insert("thread_ts".into(), Value::String(text_of(thread_ts)));
        }
        if let Some(metadata) = p.get("metadata").filter(|v| truthy(Some(v))) {
            msg.insert("metadata".into(), maybe_json(metadata));
        }
        let msg = Value::Object(msg);
        self.messages.insert((cid.clone(), ts.clone()), msg.clone());
        json!({"ok": true, "channel": cid, "ts": ts, "message": msg})
    }

    fn chat_update(&mut self, p: &Map<String, Value>) -> Value {
        let Some(cid) = p.get("channel").filter(|v| !v.is_null()).map(text_of) else {
            return api_error("message_not_found");
        };
        let ts = first_truthy(p, &["ts"]).map(text_of).unwrap_or_default();
        let key = (cid.clone(), ts.clone());
        if !self.messages.contains_key(&key) {
            return api_error("message_not_found");
        }
        if let Err(e) = check_limits(p) {
            return e;
        }
        let blocks = p.get("blocks").map(|b| self.normalize_blocks(b));
        let Some(Value::Object(msg)) = self.messages.get_mut(&key) else {
            return api_error("message_not_found");
        };
        if p.contains_key("text") {
            msg.insert("text".into(), or_empty(p.get("text")));
        }
        if let Some(blocks) = blocks {
            msg.insert("blocks".into(), blocks);
        }
        if let Some(attachments) = p.get("attachments") {
            msg.insert("attachments".into(), maybe_json(attachments));
        }
        if let Some(metadata) = p.get("metadata").filter(|v| truthy(Some(v))) {
            msg.insert("metadata".into(), maybe_json(metadata));
        }
        let text = msg.get("text").cloned().unwrap_or_else(|| json!(""));
        let message = Value::Object(msg.clone());
        json!({"ok": true, "channel": cid, "ts": ts, "text": text, "message": message})
    }

    pub(super) fn view(&mut self, p: &Map<String, Value>) -> Value {
        self.n_view += 1;
        let mut view = match p.get("view").map(maybe_json) {
            Some(Value::Object(v)) => v,
            _ => Map::new(),
        };
        let id = first_truthy(p, &["view_id"])
            .cloned()
            .unwrap_or_else(|| Value::String(format!("V{:08}", self.n_view)));
        view.insert("id".into(), id.clone());
        view.insert("team_id".into(), json!(TEAM_ID));
        view.insert("hash".into(), Value::String(self.rand_id(8)));
        view.entry("type").or_insert_with(|| json!("modal"));
        view.entry("state").or_insert_with(|| json!({"values": {}}));
        view.insert("app_id".into(), json!(APP_ID));
        view.insert("bot_id".into(), json!(BOT_ID));
        view.insert("root_view_id".into(), id);
        json!({"ok": true, "view": view})
    }

    /// Files completed with a `channel_id` are shared there as Slack does: a message of the
    /// bot's carrying the `initial_comment` and the files, seen in `conversations.history`.
    fn share_files(&mut self, p: &Map<String, Value>, files: &[Value]) {
        let Some(cid) = p.get("channel_id").filter(|v| truthy(Some(v))).map(text_of) else {
            return;
        };
        let ts = self.next_ts();
        let msg = json!({
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
            "text": or_empty(p.get("initial_comment")),
            "ts": ts,
            "files": files,
        });
        self.messages.insert((cid, ts), msg);
    }

    fn new_file(&mut self, p: &Map<String, Value>) -> (String, Value) {
        self.n_file += 1;
        let fid = format!("F{:08}", self.n_file);
        let file = json!({
            "id": fid,
            "name": first_truthy(p, &["filename"]).cloned().unwrap_or_else(|| json!("file")),
            "title": or_empty(p.get("title")),
            "permalink": format!("https://{TEAM_DOMAIN}.slack.com/files/{BOT_USER_ID}/{fid}"),
        });
        (fid, file)
    }

    /// `conversations.list` as Slack answers it: `types` (default `public_channel`; every
    /// emulated channel is public), `exclude_archived` (default false), pages of `limit`
    /// (default 100, at most 1000) with an opaque `next_cursor` (empty on the last page).
    fn conversations_list(&self, p: &Map<String, Value>) -> Value {
        let types = p
            .get("types")
            .filter(|v| truthy(Some(v)))
            .map_or_else(|| "public_channel".to_string(), text_of);
        let public = types.split(',').any(|t| t.trim() == "public_channel");
        let exclude_archived = flag_true(p.get("exclude_archived"));
        let limit = p
            .get("limit")
            .and_then(number_of)
            .filter(|n| *n > 0)
            .unwrap_or(100)
            .min(1000);
        let limit = usize::try_from(limit).unwrap_or(100);
        let start = match p.get("cursor").filter(|v| truthy(Some(v))).map(text_of) {
            None => 0,
            Some(cursor) => match cursor
                .strip_prefix("dGVhbTpD")
                .and_then(|n| n.parse::<usize>().ok())
            {
                Some(n) => n,
                None => return api_error("invalid_cursor"),
            },
        };
        let all: Vec<Value> = self
            .channel_order
            .iter()
            .filter(|_| public)
            .map(|c| self.channel_obj(c))
            .filter(|c| !(exclude_archived && c["is_archived"] == json!(true)))
            .collect();
        let end = start.saturating_add(limit).min(all.len());
        let channels = all
            .get(start..end)
            .map(<[Value]>::to_vec)
            .unwrap_or_default();
        let next = if end < all.len() {
            format!("dGVhbTpD{end}")
        } else {
            String::new()
        };
        json!({"ok": true, "channels": channels, "response_metadata": {"next_cursor": next}})
    }
}

/// `conversations.open`: a DM (`D` + user) for one user, a group DM for several.
fn conversations_open(p: &Map<String, Value>) -> Value {
    if let Some(channel) = p.get("channel").filter(|v| truthy(Some(v))) {
        return json!({"ok": true, "channel": {"id": channel}});
    }
    let users = users_param(p);
    let Some(first) = users.first() else {
        return api_error("users_list_not_supplied");
    };
    let single = users.len() == 1;
    let cid = if single {
        format!("D{first}")
    } else {
        let mut sorted = users.clone();
        sorted.sort();
        let digest = sha1_hex(sorted.join(",").as_bytes());
        format!("G{}", digest[..9].to_ascii_uppercase())
    };
    let mut channel = json!({
        "id": cid,
        "created": CREATED,
        "is_im": single,
        "is_mpim": !single,
        "is_open": true,
    });
    if single {
        channel["user"] = json!(first);
    }
    json!({"ok": true, "channel": channel, "already_open": false})
}

/// The checks `chat.postMessage` and `chat.postEphemeral` share: the channel
/// id, or the error answer.
fn check_post(p: &Map<String, Value>) -> Result<String, Value> {
    let Some(cid) = p.get("channel").filter(|v| truthy(Some(v))) else {
        return Err(api_error("channel_not_found"));
    };
    if !truthy(p.get("text")) && !truthy(p.get("blocks")) && !truthy(p.get("attachments")) {
        return Err(api_error("no_text"));
    }
    check_limits(p)?;
    Ok(text_of(cid))
}

/// Slack's limits on a message (`invalid_blocks`, `msg_too_long`): a message over them is not
/// posted at all.
pub(super) fn check_limits(p: &Map<String, Value>) -> Result<(), Value> {
    let mut message = Map::new();
    if let Some(text) = p.get("text").filter(|v| !v.is_null()) {
        message.insert("text".into(), text.clone());
    }
    if let Some(blocks) = p.get("blocks").filter(|v| !v.is_null()) {
        message.insert("blocks".into(), maybe_json(blocks));
    }
    crate::slack::limits::check_message(&Value::Object(message))
        .map_err(|v| json!({"ok": false, "error": v.error, "detail": v.to_string()}))
}

fn api_error(error: &str) -> Value {
    json!({"ok": false, "error": error})
}

/// The user object for `uid`, named after the id (`U0ALICE` is `alice`).
fn user_obj(uid: &str) -> Value {
    let name = user_name(uid);
    let real = capitalize(&name);
    json!({
        "id": uid,
        "team_id": TEAM_ID,
        "name": name,
        "real_name": real,
        "is_bot": uid == BOT_USER_ID,
        "deleted": false,
        "tz": "Etc/UTC",
        "profile": {
            "display_name": name,
            "real_name": real,
            "display_name_normalized": name,
            "real_name_normalized": real,
            "email": format!("{name}@acme.test"),
        },
    })
}

/// `U0ALICE` → `alice`, `UBOT` → `bot`.
pub(super) fn user_name(uid: &str) -> String {
    let base = uid
        .strip_prefix("U0")
        .unwrap_or_else(|| uid.char_indices().nth(1).map_or("", |(i, _)| &uid[i..]));
    if base.is_empty() {
        uid.to_lowercase()
    } else {
        base.to_lowercase()
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// SHA-1 as lower-case hex (used for group DM ids, as Slack's fake derives them).
pub(super) fn sha1_hex(data: &[u8]) -> String {
    hex::encode(Sha1::digest(data))
}

/// Messages as `conversations.history` returns them: their `metadata` only with
/// `include_all_metadata=true`, as on Slack.
fn without_metadata_unless_asked(messages: Vec<Value>, p: &Map<String, Value>) -> Vec<Value> {
    if flag_true(p.get("include_all_metadata")) {
        return messages;
    }
    messages
        .into_iter()
        .map(|mut m| {
            if let Value::Object(obj) = &mut m {
                obj.remove("metadata");
            }
            m
        })
        .collect()
}
