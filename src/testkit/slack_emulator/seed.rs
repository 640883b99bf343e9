//! Arranging the emulated workspace for a test: health answers, taken names, messages written
//! by people, channels made or archived outside the bot.

use serde_json::{json, Value};

use super::state::{ChannelMeta, ChannelRecord};
use super::{SlackEmulator, BOT_USER_ID, TEAM_ID};

impl SlackEmulator {
    /// `GET /health/{service}` answers `status` with `body` from now on.
    pub fn set_health(&self, service: &str, status: u16, body: Value) {
        self.shared
            .lock()
            .health
            .insert(service.to_string(), (status, body));
    }

    /// Marks a channel name as taken, so `conversations.create` refuses it.
    pub fn take_name(&self, name: &str) {
        self.shared.lock().taken_names.insert(name.to_string());
    }

    /// Stores a message written by a human, as if it existed in `channel`.
    pub fn register_message(&self, channel: &str, ts: &str, user: &str, text: &str) {
        let msg = json!({"type": "message", "user": user, "text": text, "ts": ts, "team": TEAM_ID});
        self.register_message_value(channel, ts, msg);
    }

    /// Stores any message object under (`channel`, `ts`); use it for thread
    /// replies (`thread_ts`) or messages with blocks.
    pub fn register_message_value(&self, channel: &str, ts: &str, message: Value) {
        self.shared
            .lock()
            .messages
            .insert((channel.to_string(), ts.to_string()), message);
    }

    /// A public channel named `name` that `creator` (a person, or another app's user) made
    /// outside the bot; its name is taken. Returns its id.
    pub fn add_channel(&self, name: &str, creator: &str) -> String {
        let mut st = self.shared.lock();
        st.n_channel += 1;
        let cid = format!("C{}", 1000 + st.n_channel);
        st.channels.insert(
            cid.clone(),
            ChannelRecord {
                name: name.to_string(),
                topic: None,
                purpose: None,
            },
        );
        st.channel_order.push(cid.clone());
        st.taken_names.insert(name.to_string());
        st.members.insert(cid.clone(), vec![creator.to_string()]);
        st.channel_meta.insert(
            cid.clone(),
            ChannelMeta {
                creator: creator.to_string(),
                is_archived: false,
            },
        );
        cid
    }

    /// Archives channel `id` (its name stays taken, as on Slack).
    pub fn archive_channel(&self, id: &str) {
        let mut st = self.shared.lock();
        let creator = st
            .channel_meta
            .get(id)
            .map_or_else(|| BOT_USER_ID.to_string(), |m| m.creator.clone());
        st.channel_meta.insert(
            id.to_string(),
            ChannelMeta {
                creator,
                is_archived: true,
            },
        );
    }
}
