//! What tests and the demo ask the emulator afterwards: the calls it saw, filtered, and the
//! state they left (messages, channels, members, topics).

use bytes::Bytes;
use serde_json::Value;

use super::params::{text_of, ts_key, users_param};
use super::recorded::{CallKind, RecordedCall};
use super::SlackEmulator;

impl SlackEmulator {
    /// Every request received so far, in order of arrival. A request still
    /// being answered (for instance while injected latency runs) is not listed yet.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.shared.lock().calls.clone()
    }

    /// Web API calls of `method` (e.g. `"chat.postMessage"`), whatever their outcome.
    pub fn api_calls(&self, method: &str) -> Vec<RecordedCall> {
        self.filter_calls(|c| c.kind == CallKind::Api && c.method == method)
    }

    /// Web API calls of `method` answered HTTP 200 with `"ok": true`.
    pub fn ok_calls(&self, method: &str) -> Vec<RecordedCall> {
        self.filter_calls(|c| c.kind == CallKind::Api && c.method == method && c.ok())
    }

    /// How many [`ok_calls`](Self::ok_calls) of `method` there are, without copying them (a
    /// benchmark polls this while the emulator is busy).
    pub fn count_ok_calls(&self, method: &str) -> usize {
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|c| c.kind == CallKind::Api && c.method == method && c.ok())
            .count()
    }

    /// Successful `chat.postMessage` calls to `channel`.
    pub fn posts_to(&self, channel: &str) -> Vec<RecordedCall> {
        self.filter_calls(|c| {
            c.kind == CallKind::Api
                && c.method == "chat.postMessage"
                && c.ok()
                && c.param_str("channel") == Some(channel)
        })
    }

    /// Requests to `/response/{id}`.
    pub fn responses(&self, id: &str) -> Vec<RecordedCall> {
        self.filter_calls(|c| c.kind == CallKind::Response && c.method == id)
    }

    /// Requests to `/hook/{name}`.
    pub fn hooks(&self, name: &str) -> Vec<RecordedCall> {
        self.filter_calls(|c| c.kind == CallKind::Hook && c.method == name)
    }

    /// Channel ids through which `user` can be reached directly: the user id
    /// itself and every channel returned by a successful `conversations.open`
    /// naming that user.
    pub fn dm_channels(&self, user: &str) -> Vec<String> {
        let mut ids = vec![user.to_string()];
        for call in self.ok_calls("conversations.open") {
            let names_user = call
                .params
                .as_object()
                .is_some_and(|p| users_param(p).iter().any(|u| u == user));
            if !names_user {
                continue;
            }
            let id = call.response.pointer("/channel/id").and_then(Value::as_str);
            if let Some(id) = id {
                if !ids.iter().any(|known| known == id) {
                    ids.push(id.to_string());
                }
            }
        }
        ids
    }

    /// Successful `chat.postMessage` calls to any of [`Self::dm_channels`] of `user`.
    pub fn dm_posts(&self, user: &str) -> Vec<RecordedCall> {
        let ids = self.dm_channels(user);
        self.filter_calls(|c| {
            c.kind == CallKind::Api
                && c.method == "chat.postMessage"
                && c.ok()
                && c.param_str("channel")
                    .is_some_and(|ch| ids.iter().any(|id| id == ch))
        })
    }

    /// The body last uploaded to `/upload/{file_id}`.
    pub fn uploaded(&self, file_id: &str) -> Option<Bytes> {
        self.shared.lock().uploads.get(file_id).cloned()
    }

    fn filter_calls(&self, mut keep: impl FnMut(&RecordedCall) -> bool) -> Vec<RecordedCall> {
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|c| keep(c))
            .cloned()
            .collect()
    }

    /// How many times a service's health endpoint was polled.
    pub fn health_polls(&self, service: &str) -> usize {
        let path = format!("health/{service}");
        self.filter_calls(|c| c.kind == CallKind::Other && c.method == path)
            .len()
    }

    /// The message stored under (`channel`, `ts`), as last posted or updated.
    pub fn message(&self, channel: &str, ts: &str) -> Option<Value> {
        self.shared
            .lock()
            .messages
            .get(&(channel.to_string(), ts.to_string()))
            .cloned()
    }

    /// The id of the (first) channel named `name`.
    pub fn channel_id_by_name(&self, name: &str) -> Option<String> {
        let st = self.shared.lock();
        st.channel_order
            .iter()
            .find(|id| st.channels.get(*id).is_some_and(|c| c.name == name))
            .cloned()
    }

    /// The name of channel `id`.
    pub fn channel_name(&self, id: &str) -> Option<String> {
        self.shared.lock().channels.get(id).map(|c| c.name.clone())
    }

    /// Members of a channel created or invited to through the API (the bot
    /// first); empty for a channel the emulator has no member list for.
    pub fn members(&self, channel: &str) -> Vec<String> {
        self.shared
            .lock()
            .members
            .get(channel)
            .cloned()
            .unwrap_or_default()
    }

    /// The topic last set with `conversations.setTopic`, if any.
    pub fn topic(&self, channel: &str) -> Option<String> {
        let st = self.shared.lock();
        st.channels
            .get(channel)
            .and_then(|c| c.topic.as_ref())
            .map(text_of)
    }

    /// The purpose last set with `conversations.setPurpose`, if any.
    pub fn purpose(&self, channel: &str) -> Option<String> {
        let st = self.shared.lock();
        st.channels
            .get(channel)
            .and_then(|c| c.purpose.as_ref())
            .map(text_of)
    }

    /// The messages stored in `channel` (thread replies included), oldest first.
    pub fn messages_in(&self, channel: &str) -> Vec<Value> {
        let st = self.shared.lock();
        let mut found: Vec<(i128, Value)> = st
            .messages
            .iter()
            .filter(|((c, _), _)| c == channel)
            .map(|((_, ts), m)| (ts_key(&Value::String(ts.clone())), m.clone()))
            .collect();
        found.sort_by_key(|m| m.0);
        found.into_iter().map(|(_, m)| m).collect()
    }
}
