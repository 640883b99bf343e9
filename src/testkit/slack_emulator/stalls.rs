//! Calls held on purpose until the test releases them, before the emulator acts on them or
//! after it did but before it answers, so that a test can kill the bot at that moment.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::watch;

use super::SlackEmulator;

/// Where [`SlackEmulator::stall_next`] holds a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StallPoint {
    /// On arrival, before the emulator acts on it: the call is in flight and nothing
    /// happened yet. Released, it is carried out as usual.
    BeforeActing,
    /// After the emulator carried it out and recorded it, before the answer goes back: the
    /// caller cannot know it succeeded ("between a call and its commit").
    BeforeAnswering,
}

/// A predicate on a call's parameters (see [`SlackEmulator::stall_next_where`]).
type ParamFilter = Box<dyn Fn(&Map<String, Value>) -> bool + Send + Sync>;

/// A call still to stall.
struct StallRule {
    target: String,
    point: StallPoint,
    filter: ParamFilter,
}

#[derive(Default)]
struct StallState {
    rules: Vec<StallRule>,
    /// Targets of the calls being held now (one entry per call).
    held: Vec<String>,
}

/// Calls held on purpose until the test releases them.
pub(super) struct Stalls {
    state: Mutex<StallState>,
    /// Bumped by [`SlackEmulator::release_stalled`]; held calls wait for a change.
    release: watch::Sender<u64>,
}

impl Default for Stalls {
    fn default() -> Self {
        Stalls {
            state: Mutex::new(StallState::default()),
            release: watch::channel(0).0,
        }
    }
}

impl Stalls {
    fn lock(&self) -> MutexGuard<'_, StallState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the first rule matching this call. For [`StallPoint::BeforeActing`] waits here
    /// until released and answers false; for [`StallPoint::BeforeAnswering`] answers true
    /// (the caller holds the answer with [`Stalls::hold_answer`]).
    pub(super) async fn hold(
        &self,
        target: &str,
        params: &Map<String, Value>,
        at: StallPoint,
    ) -> bool {
        let point = {
            let mut st = self.lock();
            let found = st
                .rules
                .iter()
                .position(|r| r.target == target && (r.filter)(params));
            match found {
                Some(i) => st.rules.remove(i).point,
                None => return false,
            }
        };
        if point != at {
            return true;
        }
        self.hold_answer(target).await;
        false
    }

    /// Waits until the next release.
    pub(super) async fn hold_answer(&self, target: &str) {
        let mut rx = self.release.subscribe();
        self.lock().held.push(target.to_string());
        // Err: the emulator is gone, nothing to wait for.
        let _ = rx.changed().await;
        let mut st = self.lock();
        if let Some(i) = st.held.iter().position(|t| t == target) {
            st.held.remove(i);
        }
    }
}

/// The name a stall rule gives a request: the Web API method (`chat.postMessage`), or the
/// path for the other sinks (`hook/<name>`, `response/<id>`, `health/<service>`).
pub(super) fn stall_target(head: &str, rest: &str, trimmed: &str) -> String {
    match head {
        "api" => rest.to_string(),
        "hook" => format!("hook/{}", rest.split('/').next().unwrap_or(rest)),
        _ => trimmed.to_string(),
    }
}

impl SlackEmulator {
    /// Holds the next call to `target` at `point` until [`Self::release_stalled`]. `target`
    /// is a Web API method (`conversations.create`) or a path: `hook/<name>`,
    /// `response/<id>`, `health/<service>`. Lets a test kill the bot while the call is in
    /// flight, or after the call took effect but before the bot heard of it.
    pub fn stall_next(&self, target: &str, point: StallPoint) {
        self.stall_next_where(target, point, |_| true);
    }

    /// [`Self::stall_next`] for the next call whose parameters satisfy `filter` (e.g. a
    /// `chat.postMessage` with buttons, to a given channel).
    pub fn stall_next_where(
        &self,
        target: &str,
        point: StallPoint,
        filter: impl Fn(&Map<String, Value>) -> bool + Send + Sync + 'static,
    ) {
        self.shared.stalls.lock().rules.push(StallRule {
            target: target.to_string(),
            point,
            filter: Box::new(filter),
        });
    }

    /// How many calls to `target` are being held now.
    pub fn stalled(&self, target: &str) -> usize {
        self.shared
            .stalls
            .lock()
            .held
            .iter()
            .filter(|t| *t == target)
            .count()
    }

    /// Waits until a call to `target` is being held; false if none is within `timeout`.
    pub async fn wait_stalled(&self, target: &str, timeout: Duration) -> bool {
        self.wait_for(timeout, |s| (s.stalled(target) > 0).then_some(()))
            .await
            .is_some()
    }

    /// Lets every held call go on, and forgets the stalls not triggered yet.
    pub fn release_stalled(&self) {
        self.shared.stalls.lock().rules.clear();
        self.shared.stalls.release.send_modify(|n| *n += 1);
    }
}
