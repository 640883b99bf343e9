//! Wiring: builds the store, the Slack client, the HTTP server and the job workers from
//! configuration, binds the listener, and runs everything until shutdown.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use axum::extract::FromRef;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use secrecy::ExposeSecret;
use slack_morphism::prelude::SlackSigningSecret;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::chat::Platforms;
use crate::clock::Clock;
use crate::config::{Config, Environment};
use crate::context::AppContext;
use crate::core::Platform;
use crate::effects::EffectRouter;
use crate::health::PollHandler;
use crate::http::{self, OpsState};
use crate::jobs::{Handlers, Queue};
use crate::link_token::LinkSigner;
use crate::paging::inbound::PagerDutyWebhookState;
use crate::retention::RetentionHandler;
use crate::slack::api::SlackApi;
use crate::slack::effects::{ReplyHandler, SlackChat};
use crate::slack::SlackState;
use crate::store::{self, Backend, Store};
use crate::web::WebState;

/// Everything `App::build` needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: Config,
    pub env: Environment,
    pub clock: Clock,
    /// Job workers to run in this process (0 for a web-only replica or tests that drive jobs).
    pub workers: usize,
    /// PagerDuty, Twilio and SMTP settings (from the environment).
    pub paging: crate::paging::routes::PagingSettings,
    /// Atlassian Statuspage settings (from the environment).
    pub statuspage: Option<crate::publish::StatuspageSettings>,
}

/// A built application: the listener is bound, migrations are applied.
pub struct App {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    queue: Queue,
    workers: usize,
}

/// The state of the whole router: each adapter's own, reached by axum's `FromRef`.
#[derive(Clone)]
struct AppState {
    ctx: AppContext,
    ops: OpsState,
    slack: SlackState,
    pagerduty: PagerDutyWebhookState,
    web: WebState,
}

impl FromRef<AppState> for OpsState {
    fn from_ref(state: &AppState) -> Self {
        state.ops.clone()
    }
}

impl FromRef<AppState> for SlackState {
    fn from_ref(state: &AppState) -> Self {
        state.slack.clone()
    }
}

impl FromRef<AppState> for PagerDutyWebhookState {
    fn from_ref(state: &AppState) -> Self {
        state.pagerduty.clone()
    }
}

impl FromRef<AppState> for WebState {
    fn from_ref(state: &AppState) -> Self {
        state.web.clone()
    }
}

/// Every adapter's routes, merged, with the shared layers.
fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(http::ops_router())
        .merge(crate::slack::router())
        .merge(crate::paging::inbound::router())
        .merge(crate::web::router(state.web.clone()))
        .with_state(state);
    http::with_layers(routes)
}

fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may be installed already (several apps in one test process).
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

impl App {
    /// Connects to the database, applies migrations, builds clients and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<App> {
        let Settings {
            config,
            env,
            clock,
            workers,
            paging,
            statuspage,
        } = settings;
        let templates = crate::templates::Templates::load(config.templates.dir.as_deref())
            .context("cannot load the message templates")?;
        let web_key: Vec<u8> = match (&env.web_token, &env.slack_signing_secret) {
            (Some(token), _) => token.expose_secret().as_bytes().to_vec(),
            (None, Some(secret)) => secret.expose_secret().as_bytes().to_vec(),
            (None, None) => rand::random::<[u8; 32]>().to_vec(),
        };
        let store = Store::connect(&env.database_url)
            .await
            .with_context(|| format!("cannot open the database ({})", redact(&env.database_url)))?;
        store.migrate().await.context("cannot apply migrations")?;
        if store.backend() == Backend::Sqlite {
            let n = store::requeue_orphaned_jobs(&store, clock.now()).await?;
            if n > 0 {
                tracing::info!(jobs = n, "requeued jobs left running by a previous process");
            }
        }
        let slack = match &env.slack_bot_token {
            Some(token) => Some(
                SlackApi::new(&env.slack_api_url, token)
                    .context("cannot build the Slack client")?,
            ),
            None => None,
        };
        let slack_verifier = env.slack_signing_secret.as_ref().map(|s| {
            SlackEventSignatureVerifier::new(&SlackSigningSecret::new(
                s.expose_secret().to_string(),
            ))
        });
        let ctx = AppContext {
            config: Arc::new(config),
            store,
            clock,
            wake: Arc::new(Notify::new()),
            pagers: crate::paging::routes::Pagers::new(paging),
            templates: Arc::new(templates),
            statuspage: statuspage.map(crate::publish::Statuspage::new),
            public_url: env.public_url.clone(),
            links: LinkSigner::new(web_key),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::limited(3))
                .build()
                .context("cannot build the HTTP client")?,
        };
        let queue = Queue::new(
            ctx.store.clone(),
            ctx.clock.clone(),
            ctx.wake.clone(),
            job_handlers(&ctx, slack.as_ref())?,
        );
        let listener = TcpListener::bind(env.bind)
            .await
            .with_context(|| format!("cannot listen on {}", env.bind))?;
        let addr = listener.local_addr()?;
        Ok(App {
            listener,
            addr,
            state: AppState {
                ops: OpsState {
                    store: ctx.store.clone(),
                    metrics: metrics_handle(),
                },
                slack: SlackState {
                    ctx: ctx.clone(),
                    api: slack.clone(),
                    verifier: slack_verifier,
                },
                pagerduty: PagerDutyWebhookState {
                    ctx: ctx.clone(),
                    secret: env.pagerduty_webhook_secret.clone(),
                },
                web: WebState {
                    ctx: ctx.clone(),
                    web_token: env.web_token.clone(),
                },
                ctx,
            },
            queue,
            workers,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn context(&self) -> AppContext {
        self.state.ctx.clone()
    }

    /// The job queue with every handler registered (tests drive it with `run_once`).
    pub fn queue(&self) -> Queue {
        self.queue.clone()
    }

    /// Serves HTTP and runs the workers until `shutdown` is cancelled; then both stop.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut workers = Vec::new();
        if self.workers > 0 {
            let scheduled = async {
                let ctx = &self.state.ctx;
                let mut conn = ctx.store.acquire().await?;
                crate::retention::schedule(&mut conn, ctx.clock.now()).await
            };
            if let Err(e) = scheduled.await {
                tracing::error!(error = %e, "could not schedule the clean-up of old jobs");
            }
        }
        for _ in 0..self.workers {
            workers.push(self.queue.spawn_worker(shutdown.clone()));
        }
        let store = self.state.ctx.store.clone();
        let router = router(self.state);
        tracing::info!(addr = %self.addr, "warroom listening");
        let stop = shutdown.clone();
        let served = axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
        shutdown.cancel();
        for w in workers {
            let _ = w.await;
        }
        store.close().await;
        served.context("the HTTP server failed")
    }
}

/// Who runs which job: every handler, registered once.
fn job_handlers(ctx: &AppContext, slack: Option<&SlackApi>) -> anyhow::Result<Handlers> {
    let mut platforms = Platforms::default();
    let mut handlers = Handlers::default();
    if let Some(api) = slack {
        let chat = SlackChat {
            ctx: ctx.clone(),
            api: api.clone(),
        };
        platforms.register(Platform::Slack, Arc::new(chat));
        handlers.register(Arc::new(ReplyHandler { api: api.clone() }))?;
    }
    handlers.register(Arc::new(EffectRouter {
        ctx: ctx.clone(),
        platforms,
    }))?;
    handlers.register(Arc::new(PollHandler { ctx: ctx.clone() }))?;
    handlers.register(Arc::new(RetentionHandler { ctx: ctx.clone() }))?;
    Ok(handlers)
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
