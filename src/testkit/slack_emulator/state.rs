//! The emulated workspace: channels, members, messages, uploads and counters, all behind the
//! one mutex of [`EmuState`], with the channel objects Slack returns and the faults still
//! pending (their effects are in `faults`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};

use super::recorded::RecordedCall;
use super::{ANNOUNCE_CHANNEL, BOT_USER_ID, GENERAL_CHANNEL};

#[derive(Clone, Copy, Debug)]
pub(super) enum FaultKind {
    Fatal,
    RateLimited {
        retry_after_secs: u64,
    },
    NameTaken,
    /// The call is carried out, then answered HTTP 500 (a crash after Slack acted).
    SucceedThenFail,
}

/// The `fault` of a call that was carried out but answered HTTP 500.
pub(super) const SUCCEEDED_THEN_FAILED: &str = "injected 500 after success";

#[derive(Debug)]
pub(super) struct Fault {
    pub(super) kind: FaultKind,
    /// Calls still to fail; `None`: until cleared.
    pub(super) left: Option<usize>,
}

/// Channels (id, name) that exist before any call.
const KNOWN_CHANNELS: [(&str, &str); 2] = [
    (GENERAL_CHANNEL, "general"),
    (ANNOUNCE_CHANNEL, "incidents"),
];

/// `created` timestamp given to every channel.
pub(super) const CREATED: i64 = 1_700_000_000;

/// What `conversations.list` says about a channel beyond its name.
#[derive(Debug, Clone)]
pub(super) struct ChannelMeta {
    pub(super) creator: String,
    pub(super) is_archived: bool,
}

#[derive(Debug)]
pub(super) struct ChannelRecord {
    pub(super) name: String,
    pub(super) topic: Option<Value>,
    pub(super) purpose: Option<Value>,
}

/// Everything the emulator knows, behind one mutex.
pub(super) struct EmuState {
    pub(super) calls: Vec<RecordedCall>,
    pub(super) next_seq: u64,
    pub(super) n_channel: u64,
    pub(super) n_ts: u64,
    pub(super) n_view: u64,
    pub(super) n_file: u64,
    pub(super) channel_order: Vec<String>,
    pub(super) channels: HashMap<String, ChannelRecord>,
    pub(super) taken_names: HashSet<String>,
    pub(super) members: HashMap<String, Vec<String>>,
    pub(super) messages: BTreeMap<(String, String), Value>,
    pub(super) faults: HashMap<String, Vec<Fault>>,
    pub(super) uploads: HashMap<String, Bytes>,
    /// `/health/{service}`: status and JSON body answered.
    pub(super) health: HashMap<String, (u16, Value)>,
    pub(super) latency: Duration,
    pub(super) rng: u64,
    /// `response_url`s handed out so far (each gets its own number, as Slack's are unique).
    pub(super) n_response_urls: u64,
    /// Posts each `response_url` (its full path) accepted.
    pub(super) response_posts: HashMap<String, usize>,
    /// Creator and archived flag of channels not created by the bot through the API.
    pub(super) channel_meta: HashMap<String, ChannelMeta>,
}

impl EmuState {
    pub(super) fn new() -> Self {
        let mut channels = HashMap::new();
        let mut channel_order = Vec::new();
        let mut taken_names = HashSet::new();
        for (id, name) in KNOWN_CHANNELS {
            channels.insert(
                id.to_string(),
                ChannelRecord {
                    name: name.to_string(),
                    topic: None,
                    purpose: None,
                },
            );
            channel_order.push(id.to_string());
            taken_names.insert(name.to_string());
        }
        EmuState {
            calls: Vec::new(),
            next_seq: 0,
            n_channel: 0,
            n_ts: 0,
            n_view: 0,
            n_file: 0,
            channel_order,
            channels,
            taken_names,
            members: HashMap::new(),
            messages: BTreeMap::new(),
            faults: HashMap::new(),
            uploads: HashMap::new(),
            health: HashMap::new(),
            latency: Duration::ZERO,
            rng: 0x5EED_0F5A_C4E5_1A7E_u64,
            n_response_urls: 0,
            response_posts: HashMap::new(),
            channel_meta: HashMap::new(),
        }
    }

    /// A random id of `n` letters and digits (deterministic sequence per emulator).
    pub(super) fn rand_id(&mut self, n: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..n)
            .map(|_| {
                // splitmix64
                self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = self.rng;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                let idx = usize::try_from(z % ALPHABET.len() as u64).unwrap_or(0);
                char::from(ALPHABET[idx])
            })
            .collect()
    }

    pub(super) fn next_ts(&mut self) -> String {
        self.n_ts += 1;
        format!("1700000000.{:06}", self.n_ts)
    }

    pub(super) fn channel_obj(&self, cid: &str) -> Value {
        let (name, topic, purpose) = match self.channels.get(cid) {
            Some(c) => (c.name.clone(), c.topic.clone(), c.purpose.clone()),
            None => (cid.to_lowercase(), None, None),
        };
        let details =
            |v: Option<Value>| json!({"value": v.unwrap_or_else(|| Value::String(String::new()))});
        json!({
            "id": cid,
            "name": name,
            "is_channel": true,
            "is_private": false,
            "is_archived": self.channel_meta.get(cid).is_some_and(|m| m.is_archived),
            "is_member": true,
            "created": CREATED,
            "creator": self.channel_meta.get(cid).map_or(BOT_USER_ID, |m| m.creator.as_str()),
            "name_normalized": name,
            "topic": details(topic),
            "purpose": details(purpose),
        })
    }

    /// The channel record for `cid`, made up (named after its id) if unknown.
    pub(super) fn channel_entry(&mut self, cid: &str) -> &mut ChannelRecord {
        if !self.channels.contains_key(cid) {
            self.channel_order.push(cid.to_string());
        }
        self.channels
            .entry(cid.to_string())
            .or_insert_with(|| ChannelRecord {
                name: cid.to_lowercase(),
                topic: None,
                purpose: None,
            })
    }
}
