//! An in-process emulator of the Slack Web API.
//!
//! [`SlackEmulator::start`] binds `127.0.0.1` on a random port and serves, in a
//! spawned tokio task, everything the bot talks to while it thinks it is
//! talking to Slack:
//!
//! * `/api/{method}` — the Web API (any HTTP verb), with the subset of methods
//!   the bot uses and a permissive `{"ok": true}` for every other method;
//! * `/response/{id}` — interaction `response_url`s;
//! * `/hook/{name}` — outgoing webhooks (paging contacts);
//! * `/upload/{file_id}` — the upload URLs handed out by
//!   `files.getUploadURLExternal`.
//!
//! Every request is recorded as a [`RecordedCall`], in order of arrival, so
//! that the demo can print what each channel saw and tests can assert on it.
//! Faults (HTTP 500, HTTP 429 with `Retry-After`, `name_taken`) and latency can
//! be injected per method.
//!
//! The behaviour mirrors the `FakeSlack` Python fake used by the contract smoke
//! test, so that both judge the bot by the same yardstick.
//!
//! One file, one job: `server` reads, records and routes requests and `outcome` is its answer; `params` merges their
//! parameters; `methods` carries out the Web API methods on the workspace held in `state`;
//! `sinks` answers `response_url`s and webhooks; `faults` and `stalls` inject failures and
//! hold calls; `queries` and `seed` are what tests and the demo use to look and to arrange.

mod faults;
mod methods;
mod outcome;
mod params;
mod queries;
mod recorded;
mod seed;
mod server;
mod sinks;
mod stalls;
mod state;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use tokio::sync::watch;

pub use recorded::{CallKind, RecordedCall};
pub use stalls::StallPoint;

use server::handle;
use stalls::Stalls;
use state::EmuState;

/// User id of the bot user (the emulated app's own user).
pub const BOT_USER_ID: &str = "UBOT";

/// Bot id of the emulated app.
pub const BOT_ID: &str = "B1";

/// App id of the emulated app.
pub const APP_ID: &str = "A0WARROOM";

/// Team (workspace) id of the emulated workspace.
pub const TEAM_ID: &str = "T1";

/// Domain of the emulated workspace (`https://acme.slack.com`).
pub const TEAM_DOMAIN: &str = "acme";

/// Id of the channel named `general`, which exists from the start.
pub const GENERAL_CHANNEL: &str = "C0GENERAL";

/// Id of the channel named `incidents`, which exists from the start.
pub const ANNOUNCE_CHANNEL: &str = "C0ANNOUNCE";

/// Interval between two polls of [`SlackEmulator::wait_for`].
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Handle on a running emulator. Cheap to clone; the server stops on
/// [`SlackEmulator::shutdown`] or when the last handle is dropped.
#[derive(Clone)]
pub struct SlackEmulator {
    shared: Arc<Shared>,
    guard: Arc<ShutdownGuard>,
}

impl fmt::Debug for SlackEmulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackEmulator")
            .field("base_url", &self.shared.base)
            .finish_non_exhaustive()
    }
}

/// Stops the server when dropped (that is, when the last handle goes).
struct ShutdownGuard {
    tx: watch::Sender<bool>,
}

impl Drop for ShutdownGuard {
    fn drop(&mut self) {
        self.tx.send_replace(true);
    }
}

/// What the server task and the handles share.
struct Shared {
    token: String,
    base: String,
    state: Mutex<EmuState>,
    /// Calls held on purpose (see [`SlackEmulator::stall_next`]).
    stalls: Stalls,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, EmuState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SlackEmulator {
    /// Binds `127.0.0.1:0` and serves the emulator in a spawned tokio task.
    /// `bot_token` is the only token the Web API accepts.
    ///
    /// # Errors
    ///
    /// When the listening socket cannot be bound.
    pub async fn start(bot_token: &str) -> std::io::Result<SlackEmulator> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            token: bot_token.to_string(),
            base: format!("http://127.0.0.1:{}", addr.port()),
            state: Mutex::new(EmuState::new()),
            stalls: Stalls::default(),
        });
        let (tx, mut rx) = watch::channel(false);
        let app = Router::new().fallback(handle).with_state(shared.clone());
        tokio::spawn(async move {
            let stop = async move {
                // Err means every handle is gone: stop as well.
                let _ = rx.wait_for(|stopped| *stopped).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::warn!(error = %e, "slack emulator stopped serving");
            }
        });
        Ok(SlackEmulator {
            shared,
            guard: Arc::new(ShutdownGuard { tx }),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        self.shared.base.clone()
    }

    /// `http://127.0.0.1:PORT/api/`, the Web API root to configure clients with.
    pub fn api_url(&self) -> String {
        format!("{}/api/", self.shared.base)
    }

    /// A fresh `response_url` whose POSTs are recorded under `id` (see [`Self::responses`]).
    /// Like Slack's, each one accepts at most 5 posts; calling this again gives a new one.
    pub fn response_url(&self, id: &str) -> String {
        let n = {
            let mut st = self.shared.lock();
            st.n_response_urls += 1;
            st.n_response_urls
        };
        format!("{}/response/{id}/{n}", self.shared.base)
    }

    /// A webhook URL whose POSTs are recorded under `name` (see [`Self::hooks`]).
    pub fn hook_url(&self, name: &str) -> String {
        format!("{}/hook/{name}", self.shared.base)
    }

    /// The bot token the Web API accepts.
    pub fn bot_token(&self) -> &str {
        &self.shared.token
    }

    /// The URL of a service's health endpoint.
    pub fn health_url(&self, service: &str) -> String {
        format!("{}/health/{service}", self.shared.base)
    }

    /// Calls `f` every ~10 ms until it returns `Some`, or `timeout` passes
    /// (then `None`).
    pub async fn wait_for<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&SlackEmulator) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(v) = f(self) {
                return Some(v);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return None;
            }
            tokio::time::sleep((deadline - now).min(POLL_INTERVAL)).await;
        }
    }

    /// Stops accepting connections and lets the ones in flight finish.
    /// Idempotent; dropping the last handle does the same.
    pub fn shutdown(&self) {
        self.guard.tx.send_replace(true);
    }
}
