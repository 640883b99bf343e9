//! Configuration: an optional `warroom.toml`, every value overridable from the environment.
//!
//! The file is read into a TOML table, environment overrides (`WARROOM_<SECTION>__<KEY>`, e.g.
//! `WARROOM_SLACK__ANNOUNCE_CHANNEL=C123` or `WARROOM_SEVERITY__P0__TARGET=1h`) are merged in,
//! and the result is checked key by key. Every problem is reported with its dotted key and the
//! file it came from; nothing falls back to a default silently.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use toml::{Table, Value};

use crate::core::{EscalationStep, Severity, SeverityPolicy};

/// The environment variable naming the config file.
pub const CONFIG_ENV: &str = "WARROOM_CONFIG";
const OVERRIDE_PREFIX: &str = "WARROOM_";

/// The whole configuration, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from, if any.
    pub source: Option<PathBuf>,
    pub slack: SlackSettings,
    pub teams: TeamsSettings,
    pub severities: BTreeMap<Severity, SeveritySettings>,
    pub contacts: BTreeMap<String, Contact>,
    pub reminders: Reminders,
    pub templates: Templates,
    pub health: HealthSettings,
    pub review: ReviewSettings,
    pub customer_email: CustomerEmail,
    pub retention: Retention,
}

/// How long finished records are kept before the periodic clean-up deletes them.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Finished jobs (done, cancelled, failed), counted from when they finished.
    pub jobs: Duration,
    /// Inbound ids (Slack event ids, trigger ids) used to drop redeliveries.
    pub inbound_ids: Duration,
}

#[derive(Debug, Clone)]
pub struct ReviewSettings {
    /// Remind P0/P1 war rooms about the review this long after resolution, until closed.
    pub remind_after: Duration,
}

/// Who receives the customer email on resolution of a customer-facing incident.
#[derive(Debug, Clone, Default)]
pub struct CustomerEmail {
    pub to: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SlackSettings {
    /// Channel id (or `#name`) where declarations and updates are announced.
    pub announce_channel: Option<String>,
    /// Reaction that copies a message into the timeline.
    pub timeline_emoji: String,
    /// The slash command, `/incident` unless configured.
    pub command: String,
}

#[derive(Debug, Clone)]
pub struct TeamsSettings {
    pub incident_channel: Option<String>,
    pub announce_channel: Option<String>,
    pub timeline_reaction: String,
}

#[derive(Debug, Clone)]
pub struct SeveritySettings {
    pub target: Duration,
    pub checklist: Vec<String>,
    pub escalation: Vec<EscalationStep>,
    /// True when the escalation is the built-in default rather than written in the file.
    pub default_escalation: bool,
}

impl SeveritySettings {
    pub fn policy(&self, status_every: Duration, review_after: Duration) -> SeverityPolicy {
        SeverityPolicy {
            target: self.target,
            checklist: self.checklist.clone(),
            escalation: self.escalation.clone(),
            status_every: Some(status_every),
            review_after: Some(review_after),
        }
    }
}

/// Someone warroom can page, by any of their paging routes.
#[derive(Debug, Clone, Default)]
pub struct Contact {
    pub slack_user: Option<String>,
    pub teams_user: Option<String>,
    pub pagerduty_routing_key: Option<SecretString>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<SecretString>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

impl Contact {
    /// The paging routes warroom pages a contact by, in this order.
    pub fn paging_routes(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.slack_user.is_some() {
            out.push("slack");
        }
        if self.pagerduty_routing_key.is_some() {
            out.push("pagerduty");
        }
        if self.webhook_url.is_some() {
            out.push("webhook");
        }
        if self.email.is_some() {
            out.push("email");
        }
        if self.phone.is_some() {
            out.push("sms");
        }
        out
    }
}

#[derive(Debug, Clone)]
pub struct Reminders {
    pub status_every: Duration,
}

#[derive(Debug, Clone)]
pub struct Templates {
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct HealthSettings {
    pub monitor_for: Duration,
    pub services: BTreeMap<String, HealthService>,
}

#[derive(Debug, Clone)]
pub struct HealthService {
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub version_pointer: Option<String>,
    pub monitor_for: Option<Duration>,
}

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key (`severity.P0.target`), or the environment variable it came from.
    pub key: String,
    pub message: String,
}

/// Everything wrong with the configuration, for one file.
#[derive(Debug, Clone)]
pub struct ConfigError {
    pub file: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{} has {n} problem{}:",
            self.file,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {}: {}", p.key, p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// A non-fatal remark from `check-config`.
pub type Warning = String;

/// Process settings that come only from the environment (SPEC §7).
#[derive(Debug, Clone)]
pub struct Environment {
    pub bind: SocketAddr,
    pub database_url: String,
    pub slack_api_url: String,
    pub slack_signing_secret: Option<SecretString>,
    pub slack_bot_token: Option<SecretString>,
    pub slack_app_token: Option<SecretString>,
    pub web_token: Option<SecretString>,
    pub pagerduty_webhook_secret: Option<SecretString>,
    /// `WARROOM_PUBLIC_URL`: where users reach this server (links in messages).
    pub public_url: Option<String>,
}

impl Environment {
    pub const DEFAULT_BIND: &'static str = "0.0.0.0:3000";
    pub const DEFAULT_DATABASE_URL: &'static str = "sqlite://warroom.db";
    pub const DEFAULT_SLACK_API_URL: &'static str = "https://slack.com/api/";

    /// Reads the environment through `get` (tests pass a map; `main` passes `std::env::var`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Environment, ConfigError> {
        let mut problems = Vec::new();
        let non_empty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let bind_raw = non_empty("WARROOM_BIND").unwrap_or_else(|| Self::DEFAULT_BIND.into());
        let bind = match bind_raw.parse::<SocketAddr>() {
            Ok(addr) => addr,
            Err(e) => {
                problems.push(Problem {
                    key: "WARROOM_BIND".into(),
                    message: format!("`{bind_raw}` is not host:port ({e})"),
                });
                ([0, 0, 0, 0], 3000).into()
            }
        };
        let database_url =
            non_empty("DATABASE_URL").unwrap_or_else(|| Self::DEFAULT_DATABASE_URL.into());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            problems.push(Problem {
                key: "DATABASE_URL".into(),
                message: "must start with sqlite:// or postgres://".into(),
            });
        }
        let mut slack_api_url =
            non_empty("SLACK_API_URL").unwrap_or_else(|| Self::DEFAULT_SLACK_API_URL.into());
        if url::Url::parse(&slack_api_url).is_err() {
            problems.push(Problem {
                key: "SLACK_API_URL".into(),
                message: format!("`{slack_api_url}` is not a URL"),
            });
        }
        if !slack_api_url.ends_with('/') {
            slack_api_url.push('/');
        }
        let secret = |k: &str| non_empty(k).map(SecretString::from);
        let public_url = non_empty("WARROOM_PUBLIC_URL");
        if let Some(u) = &public_url {
            if url::Url::parse(u).is_err() {
                problems.push(Problem {
                    key: "WARROOM_PUBLIC_URL".into(),
                    message: format!("`{u}` is not a URL"),
                });
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError {
                file: "the environment".into(),
                problems,
            });
        }
        Ok(Environment {
            bind,
            database_url,
            slack_api_url,
            slack_signing_secret: secret("SLACK_SIGNING_SECRET"),
            slack_bot_token: secret("SLACK_BOT_TOKEN"),
            slack_app_token: secret("SLACK_APP_TOKEN"),
            web_token: secret("WARROOM_WEB_TOKEN"),
            pagerduty_webhook_secret: secret("PAGERDUTY_WEBHOOK_SECRET"),
            public_url,
        })
    }
}

/// The built-in checklist, from the emergency hotfix runbook.
pub fn default_checklist(severity: Severity) -> Vec<String> {
    let mut items = vec![
        "Assess impact and confirm severity",
        "Incident channel open, commander and comms assigned",
        "Hotfix branch created from production",
        "Minimal fix with a regression test",
        "Expedited code review",
        "Verified on staging",
        "Deployed to production",
        "Post-deploy verification (errors back to normal)",
        "Stakeholders updated",
        "Post-incident review scheduled",
    ];
    if !severity.is_major() {
        items.retain(|i| !i.starts_with("Incident channel") && !i.starts_with("Post-incident"));
    }
    items.into_iter().map(String::from).collect()
}

/// The built-in response target for a severity.
pub fn default_target(severity: Severity) -> Duration {
    let hours = match severity {
        Severity::P0 => 2,
        Severity::P1 => 4,
        Severity::P2 => 24,
        Severity::P3 => 48,
    };
    Duration::from_secs(hours * 3600)
}

/// The built-in escalation ladder for a severity (SPEC §1).
pub fn default_escalation(severity: Severity) -> Vec<EscalationStep> {
    let steps: &[(u64, &str)] = match severity {
        Severity::P0 => &[
            (0, "primary"),
            (15, "senior"),
            (30, "manager"),
            (60, "commander"),
        ],
        Severity::P1 => &[(0, "primary"), (30, "senior"), (60, "manager")],
        Severity::P2 => &[(0, "primary")],
        Severity::P3 => &[],
    };
    steps
        .iter()
        .map(|(minutes, who)| EscalationStep {
            after: Duration::from_secs(minutes * 60),
            page: vec![(*who).to_string()],
        })
        .collect()
}

impl Default for Config {
    fn default() -> Self {
        match Config::from_table(None, Table::new(), &BTreeSet::new()) {
            Ok(config) => config,
            // The empty table is always valid; this arm only keeps the type checker honest.
            Err(e) => panic!("built-in defaults are invalid: {e}"),
        }
    }
}

impl Config {
    /// Finds and loads the configuration: `path` if given, else `$WARROOM_CONFIG`, else
    /// `./warroom.toml` if it exists, else the defaults. `env` supplies overrides.
    pub fn load(
        path: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<(Config, Vec<Warning>), ConfigError> {
        let from_env = env
            .iter()
            .find(|(k, v)| k == CONFIG_ENV && !v.trim().is_empty())
            .map(|(_, v)| PathBuf::from(v));
        let chosen = path.map(Path::to_path_buf).or(from_env).or_else(|| {
            let local = PathBuf::from("warroom.toml");
            local.exists().then_some(local)
        });
        let (mut table, file_name) = match &chosen {
            Some(p) => {
                let name = p.display().to_string();
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError {
                    file: name.clone(),
                    problems: vec![Problem {
                        key: "(file)".into(),
                        message: format!("cannot read it: {e}"),
                    }],
                })?;
                let table = text.parse::<Table>().map_err(|e| ConfigError {
                    file: name.clone(),
                    problems: vec![Problem {
                        key: "(syntax)".into(),
                        message: e.to_string().trim().replace('\n', " "),
                    }],
                })?;
                (table, name)
            }
            None => (Table::new(), "the built-in defaults".to_string()),
        };
        let overridden = apply_env_overrides(&mut table, env).map_err(|problems| ConfigError {
            file: file_name.clone(),
            problems,
        })?;
        let config = Config::from_table(chosen.clone(), table, &overridden).map_err(|mut e| {
            e.file = file_name.clone();
            e
        })?;
        let warnings = config.warnings();
        Ok((config, warnings))
    }

    /// Parses from TOML text (used by tests and `check-config`).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let table = text.parse::<Table>().map_err(|e| ConfigError {
            file: "(inline)".into(),
            problems: vec![Problem {
                key: "(syntax)".into(),
                message: e.to_string(),
            }],
        })?;
        Config::from_table(None, table, &BTreeSet::new())
    }

    fn from_table(
        source: Option<PathBuf>,
        table: Table,
        overridden: &BTreeSet<String>,
    ) -> Result<Config, ConfigError> {
        let mut w = Walker {
            problems: Vec::new(),
            overridden,
        };
        w.only_keys(
            "",
            &table,
            &[
                "slack",
                "teams",
                "severity",
                "contacts",
                "reminders",
                "templates",
                "health",
                "review",
                "customer_email",
                "retention",
            ],
        );

        let slack_t = w.table("slack", table.get("slack"));
        w.only_keys(
            "slack",
            &slack_t,
            &["announce_channel", "timeline_emoji", "command"],
        );
        let mut slack = SlackSettings {
            announce_channel: w
                .opt_string("slack.announce_channel", slack_t.get("announce_channel")),
            timeline_emoji: w
                .opt_string("slack.timeline_emoji", slack_t.get("timeline_emoji"))
                .map(|e| e.trim_matches(':').to_string())
                .unwrap_or_else(|| "pushpin".into()),
            command: w
                .opt_string("slack.command", slack_t.get("command"))
                .unwrap_or_else(|| "/incident".into()),
        };
        if !slack.command.starts_with('/') {
            slack.command.insert(0, '/');
        }

        let teams_t = w.table("teams", table.get("teams"));
        w.only_keys(
            "teams",
            &teams_t,
            &["incident_channel", "announce_channel", "timeline_reaction"],
        );
        let teams = TeamsSettings {
            incident_channel: w
                .opt_string("teams.incident_channel", teams_t.get("incident_channel")),
            announce_channel: w
                .opt_string("teams.announce_channel", teams_t.get("announce_channel")),
            timeline_reaction: w
                .opt_string("teams.timeline_reaction", teams_t.get("timeline_reaction"))
                .unwrap_or_else(|| "like".into()),
        };

        let contacts_t = w.table("contacts", table.get("contacts"));
        let mut contacts = BTreeMap::new();
        for (name, value) in &contacts_t {
            let key = format!("contacts.{name}");
            let t = w.table(&key, Some(value));
            w.only_keys(
                &key,
                &t,
                &[
                    "slack_user",
                    "teams_user",
                    "pagerduty_routing_key",
                    "webhook_url",
                    "webhook_secret",
                    "email",
                    "phone",
                ],
            );
            let field = |w: &mut Walker, f: &str| w.opt_string(&format!("{key}.{f}"), t.get(f));
            let contact = Contact {
                slack_user: field(&mut w, "slack_user"),
                teams_user: field(&mut w, "teams_user"),
                pagerduty_routing_key: field(&mut w, "pagerduty_routing_key")
                    .map(SecretString::from),
                webhook_url: field(&mut w, "webhook_url"),
                webhook_secret: field(&mut w, "webhook_secret").map(SecretString::from),
                email: field(&mut w, "email"),
                phone: field(&mut w, "phone"),
            };
            if let Some(url) = &contact.webhook_url {
                w.check_url(&format!("{key}.webhook_url"), url);
                if contact.webhook_secret.is_none() {
                    w.problem(
                        &format!("{key}.webhook_secret"),
                        "a webhook_url needs a webhook_secret to sign its deliveries",
                    );
                }
            }
            if let Some(email) = &contact.email {
                if !email.contains('@') {
                    w.problem(
                        &format!("{key}.email"),
                        &format!("`{email}` is not an email address"),
                    );
                }
            }
            if let Some(phone) = &contact.phone {
                let digits = phone.trim_start_matches('+');
                if !phone.starts_with('+')
                    || digits.is_empty()
                    || !digits.chars().all(|c| c.is_ascii_digit())
                {
                    w.problem(
                        &format!("{key}.phone"),
                        &format!("`{phone}` is not an E.164 number such as +15551234567"),
                    );
                }
            }
            contacts.insert(name.clone(), contact);
        }

        let sev_t = w.table("severity", table.get("severity"));
        for level in sev_t.keys() {
            if level
                .parse::<Severity>()
                .map(|s| s.as_str() != level)
                .unwrap_or(true)
            {
                w.problem(
                    &format!("severity.{level}"),
                    "unknown severity: use P0, P1, P2 or P3",
                );
            }
        }
        let mut severities = BTreeMap::new();
        for sev in Severity::ALL {
            let key = format!("severity.{sev}");
            let t = w.table(&key, sev_t.get(sev.as_str()));
            w.only_keys(&key, &t, &["target", "checklist", "escalation"]);
            let target = w
                .opt_duration(&format!("{key}.target"), t.get("target"))
                .unwrap_or_else(|| default_target(sev));
            if target.is_zero() {
                w.problem(
                    &format!("{key}.target"),
                    "a response target must be more than 0s",
                );
            }
            let checklist = match t.get("checklist") {
                Some(v) => w.string_list(&format!("{key}.checklist"), v),
                None => default_checklist(sev),
            };
            if checklist.len() > 20 {
                w.problem(
                    &format!("{key}.checklist"),
                    "at most 20 items fit on the kickoff message",
                );
            }
            for (i, item) in checklist.iter().enumerate() {
                if item.trim().is_empty() || item.chars().count() > 150 {
                    w.problem(
                        &format!("{key}.checklist[{i}]"),
                        "a checklist item has 1 to 150 characters",
                    );
                }
            }
            let (escalation, default_escalation) = match t.get("escalation") {
                Some(v) => (
                    w.escalation(&format!("{key}.escalation"), v, &contacts),
                    false,
                ),
                None => (self::default_escalation(sev), true),
            };
            severities.insert(
                sev,
                SeveritySettings {
                    target,
                    checklist,
                    escalation,
                    default_escalation,
                },
            );
        }

        let rem_t = w.table("reminders", table.get("reminders"));
        w.only_keys("reminders", &rem_t, &["status_every"]);
        let reminders = Reminders {
            status_every: w
                .opt_duration("reminders.status_every", rem_t.get("status_every"))
                .unwrap_or(Duration::from_secs(30 * 60)),
        };
        if reminders.status_every.is_zero() {
            w.problem("reminders.status_every", "must be more than 0s");
        }

        let tpl_t = w.table("templates", table.get("templates"));
        w.only_keys("templates", &tpl_t, &["dir"]);
        let templates = Templates {
            dir: w
                .opt_string("templates.dir", tpl_t.get("dir"))
                .map(PathBuf::from),
        };

        let health_t = w.table("health", table.get("health"));
        let monitor_for = w
            .opt_duration("health.monitor_for", health_t.get("monitor_for"))
            .unwrap_or(Duration::from_secs(30 * 60));
        let mut services = BTreeMap::new();
        for (name, value) in &health_t {
            if name == "monitor_for" {
                continue;
            }
            let key = format!("health.{name}");
            if !value.is_table() {
                w.problem(
                    &key,
                    "unknown key: health holds monitor_for and one table per service",
                );
                continue;
            }
            let t = w.table(&key, Some(value));
            w.only_keys(
                &key,
                &t,
                &[
                    "url",
                    "interval",
                    "timeout",
                    "version_pointer",
                    "monitor_for",
                ],
            );
            let url = match w.opt_string(&format!("{key}.url"), t.get("url")) {
                Some(url) => {
                    w.check_url(&format!("{key}.url"), &url);
                    url
                }
                None => {
                    w.problem(&format!("{key}.url"), "a health check needs a url");
                    String::new()
                }
            };
            let interval = w
                .opt_duration(&format!("{key}.interval"), t.get("interval"))
                .unwrap_or(Duration::from_secs(10));
            if interval.is_zero() {
                w.problem(&format!("{key}.interval"), "must be more than 0s");
            }
            let timeout = w
                .opt_duration(&format!("{key}.timeout"), t.get("timeout"))
                .unwrap_or(Duration::from_secs(5));
            let version_pointer =
                w.opt_string(&format!("{key}.version_pointer"), t.get("version_pointer"));
            if let Some(p) = &version_pointer {
                if !p.is_empty() && !p.starts_with('/') {
                    w.problem(
                        &format!("{key}.version_pointer"),
                        "a JSON pointer starts with / (e.g. /build/version)",
                    );
                }
            }
            let monitor_for = w.opt_duration(&format!("{key}.monitor_for"), t.get("monitor_for"));
            services.insert(
                name.clone(),
                HealthService {
                    url,
                    interval,
                    timeout,
                    version_pointer,
                    monitor_for,
                },
            );
        }
        let health = HealthSettings {
            monitor_for,
            services,
        };

        let review_t = w.table("review", table.get("review"));
        w.only_keys("review", &review_t, &["remind_after"]);
        let review = ReviewSettings {
            remind_after: w
                .opt_duration("review.remind_after", review_t.get("remind_after"))
                .unwrap_or(Duration::from_secs(72 * 3600)),
        };
        if review.remind_after.is_zero() {
            w.problem("review.remind_after", "must be more than 0s");
        }
        let mail_t = w.table("customer_email", table.get("customer_email"));
        w.only_keys("customer_email", &mail_t, &["to"]);
        let customer_email = CustomerEmail {
            to: match mail_t.get("to") {
                Some(Value::String(one)) => vec![one.trim().to_string()],
                Some(v) => w.string_list("customer_email.to", v),
                None => Vec::new(),
            },
        };
        for (i, addr) in customer_email.to.iter().enumerate() {
            if !addr.contains('@') {
                w.problem(
                    &format!("customer_email.to[{i}]"),
                    &format!("`{addr}` is not an email address"),
                );
            }
        }

        let ret_t = w.table("retention", table.get("retention"));
        w.only_keys("retention", &ret_t, &["jobs", "inbound_ids"]);
        let retention = Retention {
            jobs: w
                .opt_duration("retention.jobs", ret_t.get("jobs"))
                .unwrap_or(Duration::from_secs(30 * 24 * 3600)),
            inbound_ids: w
                .opt_duration("retention.inbound_ids", ret_t.get("inbound_ids"))
                .unwrap_or(Duration::from_secs(7 * 24 * 3600)),
        };
        if retention.jobs.is_zero() {
            w.problem("retention.jobs", "must be more than 0s");
        }
        if retention.inbound_ids.is_zero() {
            w.problem("retention.inbound_ids", "must be more than 0s");
        }

        if !w.problems.is_empty() {
            return Err(ConfigError {
                file: source
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "the configuration".into()),
                problems: w.problems,
            });
        }
        Ok(Config {
            source,
            slack,
            teams,
            severities,
            contacts,
            reminders,
            templates,
            health,
            review,
            customer_email,
            retention,
        })
    }

    /// The settings of one severity (every severity always has some).
    pub fn severity(&self, severity: Severity) -> &SeveritySettings {
        match self.severities.get(&severity) {
            Some(s) => s,
            None => unreachable!("from_table fills in every severity"),
        }
    }

    /// Every severity's policy, for the core.
    pub fn policies(&self) -> crate::core::Policies {
        self.severities
            .iter()
            .map(|(sev, s)| {
                (
                    *sev,
                    s.policy(self.reminders.status_every, self.review.remind_after),
                )
            })
            .collect()
    }

    /// Slack users to invite into a new war room besides the declarer: the contacts paged
    /// at once (escalation steps due at 0s) who have a Slack user.
    pub fn first_responders_on_slack(&self, severity: Severity) -> Vec<String> {
        let mut users = Vec::new();
        for step in &self.severity(severity).escalation {
            if !step.after.is_zero() {
                continue;
            }
            for name in &step.page {
                if let Some(user) = self.contacts.get(name).and_then(|c| c.slack_user.clone()) {
                    if !users.contains(&user) {
                        users.push(user);
                    }
                }
            }
        }
        users
    }

    /// Remarks that do not stop warroom but that an operator should see.
    pub fn warnings(&self) -> Vec<Warning> {
        let mut out = Vec::new();
        if self.slack.announce_channel.is_none() {
            out.push(
                "slack.announce_channel is not set: declarations are not announced anywhere"
                    .to_string(),
            );
        }
        for (sev, s) in &self.severities {
            if !s.default_escalation {
                continue;
            }
            for step in &s.escalation {
                for name in &step.page {
                    if !self.contacts.contains_key(name) {
                        out.push(format!(
                            "severity.{sev}.escalation (built-in) pages `{name}` after {}, but contacts.{name} is not configured: that step pages nobody",
                            humantime::format_duration(step.after)
                        ));
                    }
                }
            }
        }
        for (name, contact) in &self.contacts {
            if contact.paging_routes().is_empty() {
                out.push(format!(
                    "contacts.{name} has no paging channel (slack_user, pagerduty_routing_key, webhook_url, email or phone): paging {name} reaches nobody"
                ));
            }
        }
        out
    }
}

/// Merges `WARROOM_A__B__C=value` variables into the table; returns the dotted keys set.
fn apply_env_overrides(
    table: &mut Table,
    env: &[(String, String)],
) -> Result<BTreeSet<String>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut set = BTreeSet::new();
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix(OVERRIDE_PREFIX) else {
            continue;
        };
        if !rest.contains("__") {
            continue;
        }
        let mut path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        if path.iter().any(String::is_empty) {
            problems.push(Problem {
                key: name.clone(),
                message: "empty key segment (use single words joined by __)".into(),
            });
            continue;
        }
        if path[0] == "severity" && path.len() > 1 {
            path[1] = path[1].to_ascii_uppercase();
        }
        let value = format!("v = {raw}")
            .parse::<Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| Value::String(raw.clone()));
        match insert_path(table, &path, value) {
            Ok(()) => {
                set.insert(path.join("."));
            }
            Err(message) => problems.push(Problem {
                key: name.clone(),
                message,
            }),
        }
    }
    if problems.is_empty() {
        Ok(set)
    } else {
        Err(problems)
    }
}

fn insert_path(table: &mut Table, path: &[String], value: Value) -> Result<(), String> {
    match path {
        [] => Ok(()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => match table
            .entry(first.clone())
            .or_insert_with(|| Value::Table(Table::new()))
        {
            Value::Table(t) => insert_path(t, rest, value),
            _ => Err(format!("`{first}` is not a table in the configuration")),
        },
    }
}

struct Walker<'a> {
    problems: Vec<Problem>,
    overridden: &'a BTreeSet<String>,
}

impl Walker<'_> {
    fn problem(&mut self, key: &str, message: &str) {
        let message = if self.overridden.contains(key) {
            format!(
                "{message} (set by WARROOM_{})",
                key.replace('.', "__").to_ascii_uppercase()
            )
        } else {
            message.to_string()
        };
        self.problems.push(Problem {
            key: key.to_string(),
            message,
        });
    }

    fn table(&mut self, key: &str, value: Option<&Value>) -> Table {
        match value {
            None => Table::new(),
            Some(Value::Table(t)) => t.clone(),
            Some(other) => {
                self.problem(
                    key,
                    &format!("expected a table, found {}", other.type_str()),
                );
                Table::new()
            }
        }
    }

    fn only_keys(&mut self, prefix: &str, table: &Table, allowed: &[&str]) {
        for key in table.keys() {
            if !allowed.contains(&key.as_str()) {
                let full = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                self.problem(
                    &full,
                    &format!("unknown key (known here: {})", allowed.join(", ")),
                );
            }
        }
    }

    fn opt_string(&mut self, key: &str, value: Option<&Value>) -> Option<String> {
        match value {
            None => None,
            Some(Value::String(s)) if s.trim().is_empty() => {
                self.problem(key, "must not be empty");
                None
            }
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(other) => {
                self.problem(
                    key,
                    &format!("expected a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn opt_duration(&mut self, key: &str, value: Option<&Value>) -> Option<Duration> {
        let s = self.opt_string(key, value)?;
        match humantime::parse_duration(&s) {
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(
                    key,
                    &format!("`{s}` is not a duration such as 30s, 15m or 1h30m ({e})"),
                );
                None
            }
        }
    }

    fn string_list(&mut self, key: &str, value: &Value) -> Vec<String> {
        let Value::Array(items) = value else {
            self.problem(
                key,
                &format!("expected a list of strings, found {}", value.type_str()),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => out.push(s.trim().to_string()),
                other => self.problem(
                    &format!("{key}[{i}]"),
                    &format!("expected a string, found {}", other.type_str()),
                ),
            }
        }
        out
    }

    fn check_url(&mut self, key: &str, raw: &str) {
        match url::Url::parse(raw) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
            Ok(u) => self.problem(key, &format!("`{}` URLs are not supported", u.scheme())),
            Err(e) => self.problem(key, &format!("`{raw}` is not a URL ({e})")),
        }
    }

    fn escalation(
        &mut self,
        key: &str,
        value: &Value,
        contacts: &BTreeMap<String, Contact>,
    ) -> Vec<EscalationStep> {
        let Value::Array(items) = value else {
            self.problem(
                key,
                &format!(
                    "expected a list of {{ after = \"15m\", page = [\"contact\"] }}, found {}",
                    value.type_str()
                ),
            );
            return Vec::new();
        };
        let mut steps = Vec::new();
        let mut previous = Duration::ZERO;
        for (i, item) in items.iter().enumerate() {
            let step_key = format!("{key}[{i}]");
            let t = self.table(&step_key, Some(item));
            self.only_keys(&step_key, &t, &["after", "page"]);
            let after = match t.get("after") {
                Some(v) => self.opt_duration(&format!("{step_key}.after"), Some(v)),
                None => {
                    self.problem(
                        &format!("{step_key}.after"),
                        "a step needs `after` (e.g. \"15m\")",
                    );
                    None
                }
            };
            let page = match t.get("page") {
                Some(Value::String(s)) => vec![s.clone()],
                Some(v) => self.string_list(&format!("{step_key}.page"), v),
                None => {
                    self.problem(
                        &format!("{step_key}.page"),
                        "a step needs `page` (contact names)",
                    );
                    Vec::new()
                }
            };
            for name in &page {
                if !contacts.contains_key(name) {
                    self.problem(
                        &format!("{step_key}.page"),
                        &format!("unknown contact `{name}` (define contacts.{name})"),
                    );
                }
            }
            if let Some(after) = after {
                if after < previous {
                    self.problem(
                        &format!("{step_key}.after"),
                        "steps must be in order of `after`",
                    );
                }
                previous = after;
                steps.push(EscalationStep { after, page });
            }
        }
        steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_follow_the_runbook() {
        let c = Config::default();
        assert_eq!(c.severity(Severity::P0).target, Duration::from_secs(7200));
        assert_eq!(
            c.severity(Severity::P3).target,
            Duration::from_secs(48 * 3600)
        );
        assert_eq!(c.severity(Severity::P0).checklist.len(), 10);
        let afters: Vec<u64> = c
            .severity(Severity::P0)
            .escalation
            .iter()
            .map(|s| s.after.as_secs() / 60)
            .collect();
        assert_eq!(afters, [0, 15, 30, 60]);
        assert!(c.severity(Severity::P3).escalation.is_empty());
        assert_eq!(c.slack.timeline_emoji, "pushpin");
        assert_eq!(c.slack.command, "/incident");
        assert_eq!(c.reminders.status_every, Duration::from_secs(1800));
        assert_eq!(c.health.monitor_for, Duration::from_secs(1800));
    }

    #[test]
    fn reads_the_spec_keys() {
        let c = Config::from_toml(
            r#"
[slack]
announce_channel = "C0ANNOUNCE"
timeline_emoji = ":pushpin:"

[severity.P0]
target = "1h30m"
escalation = [
  { after = "0s", page = ["primary"] },
  { after = "4s", page = ["senior"] },
]

[contacts.primary]
slack_user = "U0PRIMARY"

[contacts.senior]
slack_user = "U0SENIOR"
webhook_url = "http://127.0.0.1:9/hook/senior"
webhook_secret = "whsec"

[health.shop]
url = "http://127.0.0.1:9/health/shop"
interval = "1s"
monitor_for = "3s"

[reminders]
status_every = "1h"
"#,
        )
        .unwrap();
        assert_eq!(c.slack.announce_channel.as_deref(), Some("C0ANNOUNCE"));
        assert_eq!(c.slack.timeline_emoji, "pushpin");
        let p0 = c.severity(Severity::P0);
        assert_eq!(p0.target, Duration::from_secs(5400));
        assert_eq!(p0.escalation[1].after, Duration::from_secs(4));
        assert!(!p0.default_escalation);
        // P1 keeps its defaults.
        assert_eq!(
            c.severity(Severity::P1).target,
            Duration::from_secs(4 * 3600)
        );
        assert_eq!(c.health.services["shop"].interval, Duration::from_secs(1));
        assert_eq!(c.first_responders_on_slack(Severity::P0), ["U0PRIMARY"]);
    }

    #[test]
    fn retention_has_defaults_and_checked_durations() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.retention.jobs, Duration::from_secs(30 * 24 * 3600));
        assert_eq!(c.retention.inbound_ids, Duration::from_secs(7 * 24 * 3600));
        let c = Config::from_toml("[retention]\njobs = \"90d\"\ninbound_ids = \"2d\"\n").unwrap();
        assert_eq!(c.retention.jobs, Duration::from_secs(90 * 24 * 3600));
        assert_eq!(c.retention.inbound_ids, Duration::from_secs(2 * 24 * 3600));
        let err = Config::from_toml(
            "[retention]\njobs = \"forever\"\ninbound_ids = \"0s\"\nevents = \"1d\"\n",
        )
        .unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        for want in [
            "retention.jobs",
            "retention.inbound_ids",
            "retention.events",
        ] {
            assert!(keys.contains(&want), "missing {want} in {keys:?}");
        }
    }

    #[test]
    fn reports_every_problem_with_its_key() {
        let err = Config::from_toml(
            r#"
colour = "blue"
[slack]
announce_chanel = "C1"
[severity.P0]
target = "2 fortnights"
escalation = [{ after = "5m", page = ["ghost"] }]
[severity.P9]
target = "1h"
[reminders]
status_every = 30
"#,
        )
        .unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        for want in [
            "colour",
            "slack.announce_chanel",
            "severity.P0.target",
            "severity.P0.escalation[0].page",
            "severity.P9",
            "reminders.status_every",
        ] {
            assert!(keys.contains(&want), "missing {want} in {keys:?}");
        }
        let text = err.to_string();
        assert!(text.contains("unknown contact `ghost`"), "{text}");
    }

    #[test]
    fn environment_overrides_any_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warroom.toml");
        std::fs::write(&path, "[slack]\nannounce_channel = \"C1\"\n").unwrap();
        let (c, _) = Config::load(
            Some(&path),
            &env(&[
                ("WARROOM_SLACK__ANNOUNCE_CHANNEL", "C2"),
                ("WARROOM_SEVERITY__P1__TARGET", "3h"),
                ("WARROOM_SEVERITY__P2__CHECKLIST", r#"["one", "two"]"#),
                ("WARROOM_BIND", "127.0.0.1:1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.slack.announce_channel.as_deref(), Some("C2"));
        assert_eq!(
            c.severity(Severity::P1).target,
            Duration::from_secs(3 * 3600)
        );
        assert_eq!(c.severity(Severity::P2).checklist, ["one", "two"]);

        let err = Config::load(Some(&path), &env(&[("WARROOM_SLACK__NOPE", "x")])).unwrap_err();
        assert_eq!(err.problems[0].key, "slack.nope");
        assert!(err.to_string().contains("warroom.toml"));
        let err = Config::load(
            Some(&path),
            &env(&[("WARROOM_SEVERITY__P0__TARGET", "soon")]),
        )
        .unwrap_err();
        assert!(err.problems[0]
            .message
            .contains("WARROOM_SEVERITY__P0__TARGET"));
    }

    #[test]
    fn missing_file_is_an_error_not_a_default() {
        let err = Config::load(Some(Path::new("/nonexistent/warroom.toml")), &[]).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/warroom.toml"));
    }

    #[test]
    fn environment_settings() {
        let vars = [
            ("WARROOM_BIND", "127.0.0.1:4000"),
            ("SLACK_API_URL", "http://127.0.0.1:9/api"),
        ];
        let e = Environment::from_lookup(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
        .unwrap();
        assert_eq!(e.bind.port(), 4000);
        assert_eq!(e.slack_api_url, "http://127.0.0.1:9/api/");
        assert_eq!(e.database_url, "sqlite://warroom.db");
        let bad = Environment::from_lookup(|k| (k == "WARROOM_BIND").then(|| "nope".to_string()));
        assert_eq!(bad.unwrap_err().problems[0].key, "WARROOM_BIND");
    }

    #[test]
    fn warns_about_contacts_without_a_channel() {
        let config = Config::from_toml(
            r#"
[severity.P0]
escalation = [{ after = "0s", page = ["ghost", "primary"] }]

[contacts.ghost]
teams_user = "someone"

[contacts.primary]
slack_user = "U1"
"#,
        )
        .unwrap();
        let warnings = config.warnings();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("contacts.ghost has no paging channel")),
            "{warnings:#?}"
        );
        assert!(
            !warnings.iter().any(|w| w.contains("contacts.primary")),
            "{warnings:#?}"
        );
    }

    #[test]
    fn warns_about_default_ladders_without_contacts() {
        let warnings = Config::default().warnings();
        assert!(warnings.iter().any(|w| w.contains("contacts.primary")));
        assert!(warnings.iter().any(|w| w.contains("announce_channel")));
    }
}
