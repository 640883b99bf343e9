//! Injected faults and latency: HTTP 500, HTTP 429 with `Retry-After`, `name_taken`, and a
//! call carried out but answered 500 (a lost answer).

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::outcome::{Outcome, Payload};
use super::params::{text_of, truthy};
use super::state::{EmuState, Fault, FaultKind, SUCCEEDED_THEN_FAILED};
use super::SlackEmulator;

impl SlackEmulator {
    fn add_fault(&self, method: &str, kind: FaultKind, left: Option<usize>) {
        self.shared
            .lock()
            .faults
            .entry(method.to_string())
            .or_default()
            .push(Fault { kind, left });
    }

    /// The next `n` calls of `method` answer HTTP 500 `{"ok":false,"error":"fatal_error"}`.
    /// `method` is a Web API method (`chat.postMessage`) or `hook/<name>` for a webhook sink.
    pub fn fail_next(&self, method: &str, n: usize) {
        self.add_fault(method, FaultKind::Fatal, Some(n));
    }

    /// Every call of `method` answers HTTP 500 until [`Self::clear_faults`].
    pub fn fail_until_cleared(&self, method: &str) {
        self.add_fault(method, FaultKind::Fatal, None);
    }

    /// The next `n` calls of `method` answer HTTP 429 with
    /// `Retry-After: retry_after_secs` and `{"ok":false,"error":"ratelimited"}`.
    pub fn ratelimit_next(&self, method: &str, n: usize, retry_after_secs: u64) {
        self.add_fault(method, FaultKind::RateLimited { retry_after_secs }, Some(n));
    }

    /// The next `n` `conversations.create` calls answer `name_taken`, and the
    /// name they asked for becomes taken.
    pub fn name_taken_next(&self, n: usize) {
        self.add_fault("conversations.create", FaultKind::NameTaken, Some(n));
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Removes the injected faults of one method.
    pub fn clear_faults_for(&self, method: &str) {
        self.shared.lock().faults.remove(method);
    }

    /// From now on, delays every `/api/` answer by `d` (zero: none). Concurrent
    /// calls wait side by side; the other sinks are not delayed.
    pub fn set_latency(&self, d: Duration) {
        self.shared.lock().latency = d;
    }

    /// The next `n` calls of `method` that succeed are carried out (the channel is created,
    /// the message stored) but answered HTTP 500 `{"ok":false,"error":"fatal_error"}`: what
    /// the caller sees when it dies, or loses the answer, after Slack acted. Calls answered an
    /// error (`name_taken`) in between go out as they are.
    pub fn succeed_then_fail_next(&self, method: &str, n: usize) {
        self.add_fault(method, FaultKind::SucceedThenFail, Some(n));
    }
}

impl EmuState {
    /// Consumes one injected fault of `method`, if one is pending.
    pub(super) fn take_fault(
        &mut self,
        method: &str,
        params: &Map<String, Value>,
        fault: &mut Option<String>,
    ) -> Option<Outcome> {
        let pending = self
            .faults
            .get_mut(method)?
            .iter_mut()
            .find(|f| f.left != Some(0))?;
        if let Some(left) = pending.left.as_mut() {
            *left -= 1;
        }
        match pending.kind {
            FaultKind::Fatal => {
                *fault = Some("injected 500".into());
                Some(Outcome::json(
                    500,
                    json!({"ok": false, "error": "fatal_error"}),
                ))
            }
            FaultKind::RateLimited { retry_after_secs } => {
                *fault = Some("injected 429".into());
                Some(Outcome {
                    status: 429,
                    retry_after: Some(retry_after_secs),
                    body: Payload::Json(json!({"ok": false, "error": "ratelimited"})),
                })
            }
            FaultKind::NameTaken => {
                *fault = Some("injected name_taken".into());
                if let Some(name) = params.get("name").filter(|v| truthy(Some(v))) {
                    self.taken_names.insert(text_of(name));
                }
                Some(Outcome::json(
                    200,
                    json!({"ok": false, "error": "name_taken"}),
                ))
            }
            FaultKind::SucceedThenFail => {
                // No answer yet: the call is carried out, and only a success counts and is
                // answered 500 (see `lose_answer`).
                if let Some(left) = pending.left.as_mut() {
                    *left += 1;
                }
                *fault = Some(SUCCEEDED_THEN_FAILED.into());
                None
            }
        }
    }

    /// After a call of `method` that a pending [`FaultKind::SucceedThenFail`] concerns: true
    /// (and one fewer pending) when it `succeeded`, so its answer is replaced by a 500; an
    /// error answer (`name_taken`, say) goes out as it is and leaves the fault pending.
    pub(super) fn lose_answer(
        &mut self,
        method: &str,
        succeeded: bool,
        fault: &mut Option<String>,
    ) -> bool {
        if fault.as_deref() != Some(SUCCEEDED_THEN_FAILED) {
            return false;
        }
        if !succeeded {
            *fault = None;
            return false;
        }
        let pending = self.faults.get_mut(method).and_then(|fs| {
            fs.iter_mut()
                .find(|f| matches!(f.kind, FaultKind::SucceedThenFail) && f.left != Some(0))
        });
        if let Some(left) = pending.and_then(|f| f.left.as_mut()) {
            *left -= 1;
        }
        true
    }
}
