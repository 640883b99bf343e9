//! The application context: what commands, adapters and job handlers share. It depends only
//! on leaf modules (configuration, store, clock, clients); the composition root (`app`) builds
//! it, and each adapter keeps its own state beside it.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::Config;
use crate::link_token::LinkSigner;
use crate::store::Store;

/// What commands and job handlers work with. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppContext {
    pub config: Arc<Config>,
    pub store: Store,
    pub clock: Clock,
    /// Signalled when jobs are enqueued or finish, so idle workers look again at once.
    pub wake: Arc<Notify>,
    /// Paging routes other than chat (PagerDuty, webhooks, email, SMS).
    pub pagers: crate::paging::routes::Pagers,
    /// The resolution templates (built in, or from `templates.dir`).
    pub templates: Arc<crate::templates::Templates>,
    /// Atlassian Statuspage, when configured.
    pub statuspage: Option<crate::publish::Statuspage>,
    /// This server's public base URL (`WARROOM_PUBLIC_URL`), for links in messages.
    pub public_url: Option<String>,
    /// Signs the links to the web pages.
    pub links: LinkSigner,
    /// For health checks.
    pub http: reqwest::Client,
}

impl AppContext {
    /// The signed link to `path` on this server, when its public URL is known.
    pub fn signed_link(&self, path: &str) -> Option<String> {
        self.public_url
            .as_deref()
            .map(|base| self.links.link(base, path))
    }
}
