//! Resolution communications as Handlebars templates (SPEC §5).
//!
//! Four templates — the internal announcement (Slack mrkdwn), the status-page note (plain
//! text), the customer email (plain text, `Subject:` first) and the post-incident review
//! (Markdown) — are compiled in from `message-templates/*.hbs`; an operator can override any
//! of them with `<templates.dir>/<name>.hbs`. Every template receives the same
//! [`TemplateContext`], documented in `message-templates/README.md`.
//!
//! Rendering is strict (an unknown variable is an error, also in `{{#if}}`/`{{#unless}}`), and
//! output is escaped for its medium: Slack mrkdwn escapes `&`, `<` and `>` (so user text can
//! never become `<!channel>` or a link), Markdown and plain text are not escaped at all (never
//! HTML entities). `warroom check-config` renders every template with sample data
//! ([`Templates::check`]) so mistakes show up at start-up, not at resolution time.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, JsonRender, JsonTruthy, Output,
    RenderContext, RenderError, RenderErrorReason, Renderable,
};
use serde::Serialize;
use serde_json::Value as Json;

use crate::core::{Incident, Role, Status, TimelineEvent, TimelineKind};

/// One of the resolution communications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    InternalAnnouncement,
    StatusPage,
    CustomerEmail,
    PostIncidentReview,
}

impl Template {
    pub const ALL: [Template; 4] = [
        Template::InternalAnnouncement,
        Template::StatusPage,
        Template::CustomerEmail,
        Template::PostIncidentReview,
    ];

    /// The template's name, also its file name without `.hbs`.
    pub fn name(self) -> &'static str {
        match self {
            Template::InternalAnnouncement => "internal-announcement",
            Template::StatusPage => "status-page",
            Template::CustomerEmail => "customer-email",
            Template::PostIncidentReview => "post-incident-review",
        }
    }

    /// A template by name, with or without `.hbs`.
    pub fn parse(name: &str) -> Option<Template> {
        let name = name.trim();
        let name = name.strip_suffix(".hbs").unwrap_or(name);
        Template::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Where the rendered text goes, which decides how values are escaped.
    pub fn medium(self) -> Medium {
        match self {
            Template::InternalAnnouncement => Medium::SlackMrkdwn,
            Template::StatusPage | Template::CustomerEmail => Medium::PlainText,
            Template::PostIncidentReview => Medium::Markdown,
        }
    }

    /// The template shipped with warroom.
    pub fn builtin(self) -> &'static str {
        match self {
            Template::InternalAnnouncement => {
                include_str!("../message-templates/internal-announcement.hbs")
            }
            Template::StatusPage => include_str!("../message-templates/status-page.hbs"),
            Template::CustomerEmail => include_str!("../message-templates/customer-email.hbs"),
            Template::PostIncidentReview => {
                include_str!("../message-templates/post-incident-review.hbs")
            }
        }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind of text a template produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    /// Slack mrkdwn: values have `&`, `<` and `>` escaped.
    SlackMrkdwn,
    /// Markdown: values as they are.
    Markdown,
    /// Plain text (status page, email): values as they are.
    PlainText,
}

impl Medium {
    const ALL: [Medium; 3] = [Medium::SlackMrkdwn, Medium::Markdown, Medium::PlainText];

    fn index(self) -> usize {
        match self {
            Medium::SlackMrkdwn => 0,
            Medium::Markdown => 1,
            Medium::PlainText => 2,
        }
    }
}

/// What went wrong loading or rendering a template. Each names the template and, when it came
/// from a file, the file.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// `templates.dir` cannot be read.
    #[error("cannot read the templates directory {}: {source}", .path.display())]
    Dir { path: PathBuf, source: io::Error },
    /// An override file exists but cannot be read.
    #[error("template `{template}`: cannot read {}: {source}", .path.display())]
    Read {
        template: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// The template does not parse.
    #[error("template `{template}` ({}){}: {}", origin(.path), position(.line, .column), .source.reason())]
    Syntax {
        template: &'static str,
        /// The override file, `None` for the built-in template.
        path: Option<PathBuf>,
        line: Option<usize>,
        column: Option<usize>,
        source: Box<handlebars::TemplateError>,
    },
    /// The template parses but fails to render (strict mode: an unknown variable or helper).
    #[error("template `{template}` ({}){}: {}", origin(.path), position(.line, .column), render_reason(.source))]
    Render {
        template: &'static str,
        path: Option<PathBuf>,
        line: Option<usize>,
        column: Option<usize>,
        source: Box<RenderError>,
    },
    /// The template renders, but not into something usable (e.g. an email without a subject).
    #[error("template `{template}` ({}): {message}", origin(.path))]
    Invalid {
        template: &'static str,
        path: Option<PathBuf>,
        message: String,
    },
}

impl TemplateError {
    /// The template the error is about (`None` for an unreadable directory).
    pub fn template(&self) -> Option<Template> {
        match self {
            TemplateError::Dir { .. } => None,
            TemplateError::Read { template, .. }
            | TemplateError::Syntax { template, .. }
            | TemplateError::Render { template, .. }
            | TemplateError::Invalid { template, .. } => Template::parse(template),
        }
    }
}

fn origin(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None => "built-in".to_string(),
    }
}

fn position(line: &Option<usize>, column: &Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(", line {l}, column {c}"),
        (Some(l), None) => format!(", line {l}"),
        _ => String::new(),
    }
}

fn render_reason(e: &RenderError) -> String {
    match e.reason() {
        RenderErrorReason::MissingVariable(Some(path)) => {
            format!("unknown variable `{path}` (see message-templates/README.md for the context)")
        }
        RenderErrorReason::MissingVariable(None) => "unknown variable".to_string(),
        RenderErrorReason::HelperNotFound(name) => format!("unknown helper `{name}`"),
        other => other.to_string(),
    }
}

/// The loaded templates: one Handlebars registry per medium, strict, with its escaping.
pub struct Templates {
    registries: [Handlebars<'static>; 3],
    paths: [Option<PathBuf>; 4],
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl Templates {
    /// The built-in templates (compiled in with include_str! from message-templates/*.hbs),
    /// each overridden by `<dir>/<name>.hbs` when `dir` is given and that file exists.
    /// Errors: unreadable directory or file, template syntax error (with template name, path
    /// and line).
    pub fn load(dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut templates = Templates {
            registries: Medium::ALL.map(registry),
            paths: Default::default(),
        };
        if let Some(dir) = dir {
            warn_about_strays(dir)?;
        }
        for (i, template) in Template::ALL.into_iter().enumerate() {
            let name = template.name();
            let mut path = None;
            let mut source = template.builtin().to_string();
            if let Some(dir) = dir {
                let file = dir.join(format!("{name}.hbs"));
                match std::fs::metadata(&file) {
                    Ok(meta) if meta.is_file() => {
                        source =
                            std::fs::read_to_string(&file).map_err(|e| TemplateError::Read {
                                template: name,
                                path: file.clone(),
                                source: e,
                            })?;
                        path = Some(file);
                    }
                    Ok(_) => {
                        return Err(TemplateError::Read {
                            template: name,
                            path: file,
                            source: io::Error::other("not a file"),
                        })
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(TemplateError::Read {
                            template: name,
                            path: file,
                            source: e,
                        })
                    }
                }
            }
            templates.registries[template.medium().index()]
                .register_template_string(name, source)
                .map_err(|e| TemplateError::Syntax {
                    template: name,
                    path: path.clone(),
                    line: e.pos().map(|(l, _)| l),
                    column: e.pos().map(|(_, c)| c),
                    source: Box::new(e),
                })?;
            templates.paths[i] = path;
        }
        Ok(templates)
    }

    /// The override file a template was loaded from, `None` for the built-in one.
    pub fn source(&self, template: Template) -> Option<&Path> {
        self.paths[index(template)].as_deref()
    }

    /// Renders a template. Trailing whitespace is trimmed and runs of blank lines are
    /// collapsed to one, so optional sections never leave holes.
    pub fn render(
        &self,
        template: Template,
        context: &TemplateContext,
    ) -> Result<String, TemplateError> {
        let medium = template.medium();
        let raw = self.registries[medium.index()]
            .render(template.name(), &context.for_medium(medium))
            .map_err(|e| TemplateError::Render {
                template: template.name(),
                path: self.paths[index(template)].clone(),
                line: e.line_no,
                column: e.column_no,
                source: Box::new(e),
            })?;
        Ok(tidy(&raw))
    }

    /// Renders every template with `TemplateContext::sample()` (and with a just-declared
    /// incident that has no roles, resolution or links, so the `{{#if}}` branches for missing
    /// facts are rendered too). Ok(()) or every error, at most one per template.
    pub fn check(&self) -> Result<(), Vec<TemplateError>> {
        let contexts = [TemplateContext::sample(), TemplateContext::sample_sparse()];
        let mut errors = Vec::new();
        for template in Template::ALL {
            let result = contexts.iter().try_for_each(|context| {
                let text = self.render(template, context)?;
                self.validate(template, &text)
            });
            if let Err(e) = result {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn validate(&self, template: Template, text: &str) -> Result<(), TemplateError> {
        let problem = match template {
            Template::CustomerEmail => match split_subject(text) {
                None => Some("the email must start with a `Subject: …` line and a blank line"),
                Some(("", _)) => Some("the email subject is empty"),
                Some((_, body)) if body.trim().is_empty() => Some("the email body is empty"),
                Some(_) => None,
            },
            _ if text.trim().is_empty() => Some("the template renders to nothing"),
            _ => None,
        };
        match problem {
            None => Ok(()),
            Some(message) => Err(TemplateError::Invalid {
                template: template.name(),
                path: self.paths[index(template)].clone(),
                message: message.to_string(),
            }),
        }
    }
}

/// Splits a rendered customer email into its subject and body: the first line must be
/// `Subject: …`, followed by a blank line. `None` when it is not.
pub fn split_subject(email: &str) -> Option<(&str, &str)> {
    let email = email.trim_start();
    let rest = email.strip_prefix("Subject:")?;
    let (subject, body) = rest.split_once('\n')?;
    let body = body
        .strip_prefix("\r\n")
        .or_else(|| body.strip_prefix('\n'))?;
    Some((subject.trim(), body))
}

fn index(template: Template) -> usize {
    Template::ALL
        .iter()
        .position(|t| *t == template)
        .unwrap_or(0)
}

/// Trailing whitespace off every line and the end, at most one blank line in a row.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.trim_start_matches('\n').lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    let end = out.trim_end().len();
    out.truncate(end);
    out
}

/// `.hbs` files in the directory that override nothing are probably misnamed: say so.
fn warn_about_strays(dir: &Path) -> Result<(), TemplateError> {
    let entries = std::fs::read_dir(dir).map_err(|e| TemplateError::Dir {
        path: dir.to_path_buf(),
        source: e,
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".hbs") && Template::parse(&name).is_none() {
            tracing::warn!(
                file = %entry.path().display(),
                "this template overrides nothing: templates are named {}",
                Template::ALL.map(|t| format!("{t}.hbs")).join(", ")
            );
        }
    }
    Ok(())
}

fn registry(medium: Medium) -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    match medium {
        Medium::SlackMrkdwn => hb.register_escape_fn(crate::slack::render::escape),
        // No escaping, but warroom's invisible mention marks are left out.
        Medium::Markdown | Medium::PlainText => hb.register_escape_fn(crate::core::plain),
    }
    hb.register_helper("if", Box::new(StrictIf { positive: true }));
    hb.register_helper("unless", Box::new(StrictIf { positive: false }));
    hb.register_helper("mention", Box::new(Mention(medium)));
    hb.register_helper("with_mentions", Box::new(WithMentions(medium)));
    hb.register_helper("capitalize", Box::new(Capitalize));
    hb
}

/// The value of a helper's first parameter; in strict mode, an unknown variable is an error.
fn first_param<'a>(
    h: &'a Helper<'_>,
    r: &Handlebars<'_>,
    helper: &'static str,
) -> Result<&'a Json, RenderError> {
    let param = h
        .param(0)
        .ok_or(RenderErrorReason::ParamNotFoundForIndex(helper, 0))?;
    if r.strict_mode() && param.is_value_missing() {
        return Err(RenderError::strict_error(param.relative_path()));
    }
    Ok(param.value())
}

/// `{{#if}}` / `{{#unless}}` that, unlike the built-ins, reject unknown variables in strict
/// mode, so a misspelt condition fails `check-config` instead of silently being false.
struct StrictIf {
    positive: bool,
}

impl HelperDef for StrictIf {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let name = if self.positive { "if" } else { "unless" };
        let value = first_param(h, r, name)?;
        let include_zero = h
            .hash_get("includeZero")
            .and_then(|v| v.value().as_bool())
            .unwrap_or(false);
        let truthy = value.is_truthy(include_zero) == self.positive;
        match if truthy { h.template() } else { h.inverse() } {
            Some(t) => t.render(r, ctx, rc, out),
            None => Ok(()),
        }
    }
}

fn is_user_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// `{{mention incident.declared_by}}`: `<@U123>` in Slack, `@U123` elsewhere; anything that
/// is not a user id (e.g. `warroom`) is written as text; null writes nothing.
struct Mention(Medium);

impl HelperDef for Mention {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let id = match first_param(h, r, "mention")? {
            Json::Null => return Ok(()),
            Json::String(s) => s.trim().to_string(),
            other => other.render(),
        };
        let text = match (self.0, is_user_id(&id)) {
            (Medium::SlackMrkdwn, true) => format!("<@{id}>"),
            (Medium::SlackMrkdwn, false) => crate::slack::render::escape(&id),
            (_, true) => format!("@{id}"),
            (_, false) => id,
        };
        out.write(&text)?;
        Ok(())
    }
}

/// `{{with_mentions text}}`: stored text whose people named by warroom (`crate::core::mention`)
/// become real mentions in Slack, the rest escaped as usual (an id someone typed stays text);
/// elsewhere the text as it is, people as `@U123`.
struct WithMentions(Medium);

impl HelperDef for WithMentions {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let text = match first_param(h, r, "with_mentions")? {
            Json::Null => return Ok(()),
            Json::String(s) => s.clone(),
            other => other.render(),
        };
        let text = match self.0 {
            Medium::SlackMrkdwn => crate::slack::render::core_text(&text),
            Medium::Markdown | Medium::PlainText => crate::core::plain(&text),
        };
        out.write(&text)?;
        Ok(())
    }
}

/// `{{capitalize incident.status}}`: `Resolved`.
struct Capitalize;

impl HelperDef for Capitalize {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        _: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let text = match first_param(h, r, "capitalize")? {
            Json::Null => return Ok(()),
            Json::String(s) => s.clone(),
            other => other.render(),
        };
        let mut chars = text.chars();
        let text = match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
            None => String::new(),
        };
        let escaped = if rc.is_disable_escape() {
            text
        } else {
            r.get_escape_fn()(&text)
        };
        out.write(&escaped)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The context

/// Links an incident's communications can carry.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Links {
    /// The war room, e.g. `#inc-7-checkout-down`.
    pub war_room: Option<String>,
    /// The post-incident review document over HTTP.
    pub review: Option<String>,
    /// The incident's page over HTTP.
    pub incident_page: Option<String>,
}

/// The one context every template receives; documented field by field, with an example, in
/// `message-templates/README.md`.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateContext {
    pub incident: IncidentFacts,
    pub resolution: ResolutionFacts,
    pub roles: Roles,
    pub times: Times,
    pub durations: Durations,
    /// The whole timeline, oldest first.
    pub timeline: Vec<TimelineEntry>,
    /// The timeline events that show the fix working: deploys, health checks, the move to
    /// monitoring.
    pub verification: Vec<TimelineEntry>,
    pub checklist: Vec<ChecklistEntry>,
    pub checklist_done: usize,
    pub checklist_total: usize,
    pub links: Links,
    /// When this text was generated, `2026-11-29 15:20 UTC`.
    pub generated_at: String,
}

/// `incident.*`.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentFacts {
    /// `INC-7`.
    pub key: String,
    pub number: i64,
    pub title: String,
    /// May be empty.
    pub description: String,
    /// `P0`.
    pub severity: String,
    /// `security hole, data leak, production down for all`.
    pub severity_meaning: String,
    /// `investigating`, `identified`, `monitoring`, `resolved`, `closed`.
    pub status: String,
    /// The user id of who declared it.
    pub declared_by: String,
    /// `2026-11-29 14:02 UTC`.
    pub declared_at: String,
    /// The day it was declared, `2026-11-29` (UTC).
    pub date: String,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    pub war_room_name: Option<String>,
}

/// `resolution.*`: empty strings and lists until resolved.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ResolutionFacts {
    pub summary: String,
    pub impact: String,
    pub root_cause: String,
    pub fix: String,
    /// Link to the fix's pull request.
    pub pr: String,
    pub follow_ups: Vec<String>,
    pub customer_facing: bool,
}

/// `roles.*`: user ids, null when unassigned.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Roles {
    pub commander: Option<String>,
    pub comms: Option<String>,
    pub ops: Option<String>,
    pub scribe: Option<String>,
}

/// `times.*`: `2026-11-29 14:02 UTC`, null when it has not happened.
#[derive(Debug, Clone, Serialize)]
pub struct Times {
    /// When the incident was declared (= `incident.declared_at`).
    pub discovered: String,
    pub acknowledged: Option<String>,
    /// When the status first moved to monitoring.
    pub monitoring: Option<String>,
    /// When the fix was seen running in production (hotfix tracking).
    pub fix_deployed: Option<String>,
    pub resolved: Option<String>,
    /// The response-target deadline.
    pub target: String,
    /// The incident's span in words: `on 2026-11-29 between 14:02 and 15:14 UTC`, or
    /// `between 2026-11-29 23:40 and 2026-11-30 01:10 UTC`, or `since 2026-11-29 14:02 UTC`.
    pub window: String,
}

/// `durations.*`: human text (`1h 12m`, `3m`, `45s`), rounded to the minute from a minute on.
#[derive(Debug, Clone, Serialize)]
pub struct Durations {
    /// The severity's response target, `2h`.
    pub target: String,
    pub time_to_acknowledge: Option<String>,
    pub time_to_resolve: Option<String>,
    /// From declaration to the fix running in production.
    pub fix_deployed_after: Option<String>,
    /// Resolved within the target; null while unresolved.
    pub target_met: Option<bool>,
    /// Declaration to resolution, or to `generated_at` while unresolved.
    pub elapsed: String,
}

/// One `timeline` (or `verification`) entry.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    /// `14:02:11` (UTC).
    pub at: String,
    /// `2026-11-29`.
    pub date: String,
    /// `2026-11-29 14:02:11 UTC`.
    pub at_utc: String,
    /// Time since the incident was declared, `12m`.
    pub since_declared: String,
    /// True on the first entry and whenever the date changes from the previous entry.
    pub new_day: bool,
    /// A user id, or `warroom`.
    pub actor: String,
    /// `declared`, `status`, `note`, `deploy`, … (`TimelineKind`).
    pub kind: String,
    /// The event in words: people by display name (their bare user id while no directory
    /// is configured, see [`crate::timeline::Directory`]), what they typed as they typed it.
    /// For a Slack template, people named by warroom become mentions with `with_mentions`.
    pub text: String,
    /// The event as data, to render `text` for a template's medium.
    #[serde(skip)]
    detail: crate::core::TimelineDetail,
}

/// One `checklist` item.
#[derive(Debug, Clone, Serialize)]
pub struct ChecklistEntry {
    pub position: i64,
    pub text: String,
    pub done: bool,
    pub done_by: Option<String>,
    pub done_at: Option<String>,
}

fn utc_minute(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Human text for `to - from`, rounded to the minute from a minute on.
fn span(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let secs = (to - from).num_seconds().max(0) as u64;
    let secs = if secs >= 60 {
        (secs + 30) / 60 * 60
    } else {
        secs
    };
    crate::core::human_duration(Duration::from_secs(secs))
}

fn window(from: DateTime<Utc>, to: Option<DateTime<Utc>>) -> String {
    match to {
        None => format!("since {}", utc_minute(from)),
        Some(to) if to.date_naive() == from.date_naive() => format!(
            "on {} between {} and {} UTC",
            from.format("%Y-%m-%d"),
            from.format("%H:%M"),
            to.format("%H:%M")
        ),
        Some(to) => format!(
            "between {} and {} UTC",
            from.format("%Y-%m-%d %H:%M"),
            to.format("%Y-%m-%d %H:%M")
        ),
    }
}

fn is_verification(event: &TimelineEvent) -> bool {
    match event.kind {
        TimelineKind::Deploy | TimelineKind::Health => true,
        TimelineKind::StateChanged => moved_to_monitoring(event),
        _ => false,
    }
}

/// The core writes state changes as `Status investigating → monitoring`.
fn moved_to_monitoring(event: &TimelineEvent) -> bool {
    event.kind == TimelineKind::StateChanged
        && event
            .text()
            .trim_end()
            .ends_with(&format!("→ {}", Status::Monitoring))
}

impl TemplateContext {
    /// The context of an incident as it is at `now`, with its timeline (any order).
    pub fn build(
        incident: &Incident,
        timeline: &[TimelineEvent],
        links: Links,
        now: DateTime<Utc>,
    ) -> TemplateContext {
        let declared = incident.declared_at;
        let resolution = incident.resolution.clone().unwrap_or_default();
        let mut events: Vec<&TimelineEvent> = timeline.iter().collect();
        events.sort_by_key(|e| e.at);

        let entry = |e: &TimelineEvent, new_day: bool| TimelineEntry {
            at: e.at.format("%H:%M:%S").to_string(),
            date: e.at.format("%Y-%m-%d").to_string(),
            at_utc: e.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            since_declared: span(declared, e.at),
            new_day,
            actor: e.actor.clone().unwrap_or_else(|| "warroom".to_string()),
            kind: e.kind.as_str().to_string(),
            // Hook: people by name once a directory exists (`timeline::Directory`).
            text: crate::timeline::plain_text(&e.detail, &crate::timeline::IdsOnly),
            detail: e.detail.clone(),
        };
        let mut previous_day = None;
        let entries: Vec<TimelineEntry> = events
            .iter()
            .map(|e| {
                let day = e.at.date_naive();
                let new_day = previous_day != Some(day);
                previous_day = Some(day);
                entry(e, new_day)
            })
            .collect();
        let mut previous_day = None;
        let verification = events
            .iter()
            .filter(|e| is_verification(e))
            .map(|e| {
                let day = e.at.date_naive();
                let new_day = previous_day != Some(day);
                previous_day = Some(day);
                entry(e, new_day)
            })
            .collect();
        let monitoring = events
            .iter()
            .find(|e| moved_to_monitoring(e))
            .map(|e| utc_minute(e.at));

        let role = |r: Role| incident.roles.get(&r).cloned();
        let checklist: Vec<ChecklistEntry> = incident
            .checklist
            .iter()
            .map(|item| ChecklistEntry {
                position: item.position,
                text: item.text.clone(),
                done: item.done.is_some(),
                done_by: item.done.as_ref().map(|d| d.by.clone()),
                done_at: item.done.as_ref().map(|d| utc_minute(d.at)),
            })
            .collect();
        let resolved_at = incident.resolved_at;

        TemplateContext {
            incident: IncidentFacts {
                key: incident.key(),
                number: incident.number,
                title: incident.title.clone(),
                description: incident.description.clone(),
                severity: incident.severity.as_str().to_string(),
                severity_meaning: incident.severity.meaning().to_string(),
                status: incident.status.as_str().to_string(),
                declared_by: incident.declared_by.clone(),
                declared_at: utc_minute(declared),
                date: declared.format("%Y-%m-%d").to_string(),
                acknowledged_by: incident.acknowledged.as_ref().map(|d| d.by.clone()),
                resolved_at: resolved_at.map(utc_minute),
                resolved_by: incident
                    .resolution
                    .as_ref()
                    .map(|r| r.resolved_by.clone())
                    .filter(|by| !by.is_empty()),
                war_room_name: incident.war_room.as_ref().map(|w| w.name.clone()),
            },
            resolution: ResolutionFacts {
                summary: resolution.summary,
                impact: resolution.impact,
                root_cause: resolution.root_cause,
                fix: resolution.fix,
                pr: resolution.pr,
                follow_ups: resolution.follow_ups,
                customer_facing: resolution.customer_facing,
            },
            roles: Roles {
                commander: role(Role::Commander),
                comms: role(Role::Comms),
                ops: role(Role::Ops),
                scribe: role(Role::Scribe),
            },
            times: Times {
                discovered: utc_minute(declared),
                acknowledged: incident.acknowledged.as_ref().map(|d| utc_minute(d.at)),
                monitoring,
                fix_deployed: incident.fix_deployed_at.map(utc_minute),
                resolved: resolved_at.map(utc_minute),
                target: utc_minute(incident.target_at),
                window: window(declared, resolved_at),
            },
            durations: Durations {
                target: span(declared, incident.target_at),
                time_to_acknowledge: incident.acknowledged.as_ref().map(|d| span(declared, d.at)),
                time_to_resolve: resolved_at.map(|t| span(declared, t)),
                fix_deployed_after: incident.fix_deployed_at.map(|t| span(declared, t)),
                target_met: resolved_at.map(|t| t <= incident.target_at),
                elapsed: span(declared, resolved_at.unwrap_or(now)),
            },
            timeline: entries,
            verification,
            checklist_done: checklist.iter().filter(|i| i.done).count(),
            checklist_total: checklist.len(),
            checklist,
            links,
            generated_at: utc_minute(now),
        }
    }

    /// The context for a template of `medium`: in Slack mrkdwn, the timeline's text is the
    /// form `with_mentions` turns into mentions (and the emoji of an event's signal); other
    /// media keep the plain words.
    fn for_medium(&self, medium: Medium) -> std::borrow::Cow<'_, TemplateContext> {
        if medium != Medium::SlackMrkdwn {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut context = self.clone();
        for entry in context
            .timeline
            .iter_mut()
            .chain(context.verification.iter_mut())
        {
            entry.text = crate::slack::render::event_marked(&entry.detail);
        }
        std::borrow::Cow::Owned(context)
    }

    /// A realistic resolved P0 incident with a full timeline (used by check-config and tests).
    pub fn sample() -> TemplateContext {
        let (incident, timeline, now) = sample::resolved_p0();
        TemplateContext::build(&incident, &timeline, sample::links(), now)
    }

    /// A P2 just declared: no roles, acknowledgement, resolution, checklist ticks or links.
    fn sample_sparse() -> TemplateContext {
        let (incident, timeline, now) = sample::just_declared();
        TemplateContext::build(&incident, &timeline, Links::default(), now)
    }
}

mod sample {
    use chrono::{DateTime, TimeZone, Utc};

    use crate::core::{
        Done, Incident, OpenIncident, Platform, Resolution, Role, Severity, SeverityPolicy, Status,
        TimelineDetail, TimelineEvent, TimelineKind, WarRoom,
    };

    use super::Links;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, h, m, s)
            .single()
            .unwrap_or_default()
    }

    fn open(number: i64, title: &str, severity: Severity, now: DateTime<Utc>) -> Incident {
        let hours = match severity {
            Severity::P0 => 2,
            Severity::P1 => 4,
            Severity::P2 => 24,
            Severity::P3 => 48,
        };
        let policy = SeverityPolicy {
            target: std::time::Duration::from_secs(hours * 3600),
            checklist: crate::config::default_checklist(severity),
            escalation: Vec::new(),
            status_every: None,
            review_after: None,
        };
        let request = OpenIncident {
            number,
            title: title.into(),
            description: String::new(),
            severity,
            platform: Platform::Slack,
            declared_by: "U02ALICE".into(),
            declared_in: "C01ALERTS".into(),
            responders: Vec::new(),
            reply_to: None,
        };
        match crate::core::open(request, &policy, now) {
            Ok(opened) => opened.incident,
            Err(e) => unreachable!("the sample incident is valid: {e}"),
        }
    }

    pub(super) fn links() -> Links {
        Links {
            war_room: Some("#inc-7-checkout-api-returning-502s".into()),
            review: Some("https://warroom.example.com/incidents/7/review.md".into()),
            incident_page: Some("https://warroom.example.com/incidents/7".into()),
        }
    }

    pub(super) fn resolved_p0() -> (Incident, Vec<TimelineEvent>, DateTime<Utc>) {
        let mut inc = open(
            7,
            "Checkout API returning 502s",
            Severity::P0,
            at(14, 2, 11),
        );
        inc.description =
            "Error rate on /api/checkout jumped to 38% right after the 14:00 deploy.".into();
        inc.war_room = Some(WarRoom {
            id: "C07INC7".into(),
            name: "inc-7-checkout-api-returning-502s".into(),
        });
        inc.status = Status::Resolved;
        inc.acknowledged = Some(Done {
            by: "U03BOB".into(),
            at: at(14, 5, 2),
        });
        for (role, user) in [
            (Role::Commander, "U03BOB"),
            (Role::Comms, "U04CAROL"),
            (Role::Ops, "U05DAVE"),
            (Role::Scribe, "U02ALICE"),
        ] {
            inc.roles.insert(role, user.into());
        }
        let ticks = [
            ("U03BOB", at(14, 9, 40)),
            ("U03BOB", at(14, 6, 15)),
            ("U05DAVE", at(14, 21, 3)),
            ("U05DAVE", at(14, 39, 50)),
            ("U03BOB", at(14, 44, 12)),
            ("U05DAVE", at(14, 52, 30)),
            ("U05DAVE", at(15, 1, 20)),
            ("U05DAVE", at(15, 10, 5)),
            ("U04CAROL", at(15, 12, 0)),
        ];
        for (item, (by, when)) in inc.checklist.iter_mut().zip(ticks) {
            item.done = Some(Done {
                by: by.into(),
                at: when,
            });
        }
        inc.fix_deployed_at = Some(at(15, 1, 20));
        inc.resolved_at = Some(at(15, 14, 40));
        inc.resolution = Some(Resolution {
            summary: "Rolled back checkout-api to v2.13.4, then shipped v2.14.1 with the \
                      connection pool restored; error rate is back to baseline."
                .into(),
            impact: "About 38% of checkout attempts failed with HTTP 502 for 72 minutes; \
                     roughly 1,900 orders could not be placed. No data was lost."
                .into(),
            root_cause: "checkout-api v2.14.0 lowered the database connection pool from 50 \
                         to 5 in a configuration refactor; under normal afternoon load the \
                         pool was exhausted and requests timed out at the gateway."
                .into(),
            fix: "Rolled back to v2.13.4 at 14:41, then deployed v2.14.1 (pool size 50, \
                  plus a startup check that refuses pool sizes under 20) at 15:01."
                .into(),
            pr: "https://github.com/example/checkout-api/pull/1234".into(),
            follow_ups: vec![
                "Alert when database pool usage stays above 80% for 5 minutes".into(),
                "Add connection-pool saturation to the checkout load test".into(),
                "Require a canary stage for checkout-api deploys".into(),
            ],
            customer_facing: true,
            resolved_by: "U03BOB".into(),
        });
        let ev = |t, actor: Option<&str>, kind, detail: TimelineDetail| {
            TimelineEvent::new(t, actor, kind, detail)
        };
        let bob = Some("U03BOB");
        let dave = Some("U05DAVE");
        let timeline = vec![
            ev(
                at(14, 2, 11),
                Some("U02ALICE"),
                TimelineKind::Declared,
                TimelineDetail::new()
                    .words("P0 declared INC-7: ")
                    .typed("Checkout API returning 502s"),
            ),
            ev(
                at(14, 2, 14),
                None,
                TimelineKind::WarRoomOpened,
                "War room #inc-7-checkout-api-returning-502s opened".into(),
            ),
            ev(
                at(14, 2, 15),
                None,
                TimelineKind::Paged,
                "Paged primary on-call (PagerDuty)".into(),
            ),
            ev(
                at(14, 5, 2),
                bob,
                TimelineKind::Acknowledged,
                "Acknowledged: paging stopped".into(),
            ),
            ev(
                at(14, 5, 30),
                bob,
                TimelineKind::RoleAssigned,
                TimelineDetail::new()
                    .person("U03BOB")
                    .words(" assigned as incident commander"),
            ),
            ev(
                at(14, 5, 41),
                bob,
                TimelineKind::RoleAssigned,
                TimelineDetail::new()
                    .person("U04CAROL")
                    .words(" assigned as communications"),
            ),
            ev(
                at(14, 5, 55),
                bob,
                TimelineKind::RoleAssigned,
                TimelineDetail::new()
                    .person("U05DAVE")
                    .words(" assigned as operations"),
            ),
            ev(
                at(14, 9, 40),
                bob,
                TimelineKind::Status,
                TimelineDetail::new().typed(
                    "38% of checkouts failing with 502 since the 14:00 deploy of checkout-api v2.14.0",
                ),
            ),
            ev(
                at(14, 21, 3),
                dave,
                TimelineKind::Note,
                TimelineDetail::new().typed("DB pool exhausted: 5/5 connections busy, requests queueing"),
            ),
            ev(
                at(14, 23, 0),
                bob,
                TimelineKind::StateChanged,
                "Status investigating → identified".into(),
            ),
            ev(
                at(14, 41, 8),
                dave,
                TimelineKind::Deploy,
                TimelineDetail::new().typed("Rolled back checkout-api to v2.13.4"),
            ),
            ev(
                at(15, 1, 20),
                None,
                TimelineKind::Deploy,
                "Fix PR #1234 (checkout-api v2.14.1) running in production".into(),
            ),
            ev(
                at(15, 2, 0),
                bob,
                TimelineKind::StateChanged,
                "Status identified → monitoring".into(),
            ),
            ev(
                at(15, 10, 5),
                None,
                TimelineKind::Health,
                "Checkout error rate 0.2% (baseline 0.3%) for 10 minutes".into(),
            ),
            ev(
                at(15, 14, 40),
                bob,
                TimelineKind::Resolved,
                TimelineDetail::new().words("Resolved: ").typed(
                    "Rolled back checkout-api to v2.13.4, then shipped v2.14.1 with the \
                     connection pool restored; error rate is back to baseline.",
                ),
            ),
        ];
        (inc, timeline, at(15, 15, 0))
    }

    pub(super) fn just_declared() -> (Incident, Vec<TimelineEvent>, DateTime<Utc>) {
        let inc = open(8, "Search results slow", Severity::P2, at(16, 0, 0));
        let timeline = vec![TimelineEvent::new(
            at(16, 0, 0),
            Some("U02ALICE"),
            TimelineKind::Declared,
            TimelineDetail::new()
                .words("P2 declared INC-8: ")
                .typed("Search results slow"),
        )];
        (inc, timeline, at(16, 10, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    use crate::core::{
        Done, OpenIncident, Platform, Resolution, Severity, SeverityPolicy, TimelineEvent,
        TimelineKind,
    };

    const CHANNEL: &str = "<!channel>";

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, h, m, s).unwrap()
    }

    /// A P1 with `<!channel>` in its title and summary, resolved after the 4 h target.
    fn incident(missed: bool) -> (Incident, Vec<TimelineEvent>) {
        let policy = SeverityPolicy {
            target: Duration::from_secs(4 * 3600),
            checklist: vec!["Assess impact".into(), "Deploy fix".into()],
            escalation: vec![],
            status_every: None,
            review_after: None,
        };
        let opened = crate::core::open(
            OpenIncident {
                number: 42,
                title: format!("Payments {CHANNEL} & refunds failing"),
                description: "Card payments declined".into(),
                severity: Severity::P1,
                platform: Platform::Slack,
                declared_by: "U0DECL".into(),
                declared_in: "C1".into(),
                responders: vec![],
                reply_to: None,
            },
            &policy,
            at(9, 0, 0),
        )
        .unwrap();
        let mut inc = opened.incident;
        let resolved = if missed {
            at(13, 30, 0)
        } else {
            at(10, 12, 30)
        };
        inc.status = crate::core::Status::Resolved;
        inc.acknowledged = Some(Done {
            by: "U0ACK".into(),
            at: at(9, 3, 10),
        });
        inc.roles.insert(Role::Commander, "U0CMDR".into());
        inc.checklist[0].done = Some(Done {
            by: "U0CMDR".into(),
            at: at(9, 10, 0),
        });
        inc.fix_deployed_at = Some(at(10, 0, 0));
        inc.resolved_at = Some(resolved);
        inc.resolution = Some(Resolution {
            summary: format!("Rolled back {CHANNEL} the gateway config"),
            impact: "All card payments declined".into(),
            root_cause: "Expired TLS certificate on the payment gateway".into(),
            fix: "Renewed the certificate".into(),
            pr: "https://github.com/example/payments/pull/77".into(),
            follow_ups: vec![
                "Alert 30 days before certificates expire".into(),
                "Automate certificate renewal".into(),
            ],
            customer_facing: true,
            resolved_by: "U0CMDR".into(),
        });
        let mut timeline = opened.timeline;
        timeline.push(TimelineEvent::new(
            at(9, 3, 10),
            Some("U0ACK"),
            TimelineKind::Acknowledged,
            "Acknowledged: paging stopped",
        ));
        timeline.push(TimelineEvent::new(
            at(9, 20, 0),
            Some("U0CMDR"),
            TimelineKind::Note,
            "@U0OPS found the expired certificate",
        ));
        timeline.push(TimelineEvent::new(
            at(10, 0, 0),
            None,
            TimelineKind::Deploy,
            "Fix running in production",
        ));
        timeline.push(TimelineEvent::new(
            resolved,
            Some("U0CMDR"),
            TimelineKind::Resolved,
            "Resolved",
        ));
        (inc, timeline)
    }

    fn context(missed: bool) -> TemplateContext {
        let (inc, timeline) = incident(missed);
        TemplateContext::build(
            &inc,
            &timeline,
            Links {
                war_room: Some("#inc-42-payments".into()),
                review: Some("https://warroom.example.com/incidents/42/review.md".into()),
                incident_page: None,
            },
            at(13, 45, 0),
        )
    }

    fn render_all(templates: &Templates, ctx: &TemplateContext) -> Vec<(Template, String)> {
        Template::ALL
            .into_iter()
            .map(|t| {
                (
                    t,
                    templates.render(t, ctx).unwrap_or_else(|e| panic!("{e}")),
                )
            })
            .collect()
    }

    #[test]
    fn names_parse_and_media() {
        for t in Template::ALL {
            assert_eq!(Template::parse(t.name()), Some(t));
            assert_eq!(Template::parse(&format!("{}.hbs", t.name())), Some(t));
        }
        assert_eq!(Template::parse("nope"), None);
        assert_eq!(Template::InternalAnnouncement.medium(), Medium::SlackMrkdwn);
        assert_eq!(Template::StatusPage.medium(), Medium::PlainText);
        assert_eq!(Template::CustomerEmail.medium(), Medium::PlainText);
        assert_eq!(Template::PostIncidentReview.medium(), Medium::Markdown);
    }

    #[test]
    fn context_derives_times_and_durations() {
        let ctx = context(false);
        assert_eq!(ctx.incident.key, "INC-42");
        assert_eq!(ctx.incident.severity, "P1");
        assert_eq!(ctx.incident.declared_at, "2026-11-29 09:00 UTC");
        assert_eq!(ctx.incident.resolved_by.as_deref(), Some("U0CMDR"));
        assert_eq!(ctx.times.discovered, "2026-11-29 09:00 UTC");
        assert_eq!(
            ctx.times.acknowledged.as_deref(),
            Some("2026-11-29 09:03 UTC")
        );
        assert_eq!(
            ctx.times.fix_deployed.as_deref(),
            Some("2026-11-29 10:00 UTC")
        );
        assert_eq!(ctx.times.resolved.as_deref(), Some("2026-11-29 10:12 UTC"));
        assert_eq!(
            ctx.times.window,
            "on 2026-11-29 between 09:00 and 10:12 UTC"
        );
        assert_eq!(ctx.durations.target, "4h");
        assert_eq!(ctx.durations.time_to_acknowledge.as_deref(), Some("3m"));
        assert_eq!(ctx.durations.time_to_resolve.as_deref(), Some("1h 13m"));
        assert_eq!(ctx.durations.fix_deployed_after.as_deref(), Some("1h"));
        assert_eq!(ctx.durations.target_met, Some(true));
        assert_eq!(context(true).durations.target_met, Some(false));
        assert_eq!((ctx.checklist_done, ctx.checklist_total), (1, 2));
        assert_eq!(ctx.timeline.len(), 5);
        assert_eq!(ctx.timeline[0].at, "09:00:00");
        assert_eq!(ctx.timeline[0].actor, "U0DECL");
        assert!(ctx.timeline[0].new_day && !ctx.timeline[1].new_day);
        assert_eq!(ctx.timeline[3].actor, "warroom");
        assert_eq!(ctx.timeline[3].since_declared, "1h");
        assert_eq!(ctx.verification.len(), 1);

        let json = serde_json::to_value(&ctx).unwrap();
        assert!(json["roles"]["scribe"].is_null());
        assert_eq!(json["roles"]["commander"], "U0CMDR");
        assert!(json["links"]["incident_page"].is_null());
    }

    #[test]
    fn unresolved_context_has_nulls_and_empty_resolution() {
        let ctx = TemplateContext::sample_sparse();
        let json = serde_json::to_value(&ctx).unwrap();
        assert!(json["incident"]["resolved_at"].is_null());
        assert!(json["durations"]["target_met"].is_null());
        assert!(json["durations"]["time_to_resolve"].is_null());
        assert_eq!(json["resolution"]["summary"], "");
        assert_eq!(json["resolution"]["follow_ups"], serde_json::json!([]));
        assert_eq!(ctx.durations.elapsed, "10m");
        assert_eq!(ctx.times.window, "since 2026-11-29 16:00 UTC");
    }

    #[test]
    fn every_template_states_the_key_facts() {
        let templates = Templates::load(None).unwrap();
        for (t, text) in render_all(&templates, &context(false)) {
            for fact in [
                "Payments",
                "refunds failing",
                "09:00",
                "10:12",
                "All card payments declined",
            ] {
                assert!(text.contains(fact), "{t} lacks {fact:?}:\n{text}");
            }
            if t != Template::CustomerEmail && t != Template::StatusPage {
                for fact in [
                    "P1",
                    "1h 13m",
                    "Expired TLS certificate on the payment gateway",
                    "Renewed the certificate",
                    "https://github.com/example/payments/pull/77",
                    "Alert 30 days before certificates expire",
                    "Automate certificate renewal",
                    "3m",
                    "4h",
                ] {
                    assert!(text.contains(fact), "{t} lacks {fact:?}:\n{text}");
                }
            }
        }
    }

    #[test]
    fn internal_announcement_is_slack_mrkdwn() {
        let templates = Templates::load(None).unwrap();
        let text = templates
            .render(Template::InternalAnnouncement, &context(false))
            .unwrap();
        assert!(text.contains("*Priority:* P1"), "{text}");
        assert!(text.contains("• "), "{text}");
        assert!(text.contains("<@U0CMDR>"), "{text}");
        assert!(text.contains("within the 4h target"), "{text}");
        let missed = templates
            .render(Template::InternalAnnouncement, &context(true))
            .unwrap();
        assert!(missed.contains("missed the 4h target"), "{missed}");
    }

    #[test]
    fn slack_text_is_escaped_and_the_rest_is_not() {
        let templates = Templates::load(None).unwrap();
        for (t, text) in render_all(&templates, &context(false)) {
            if t.medium() == Medium::SlackMrkdwn {
                assert!(!text.contains(CHANNEL), "{t}:\n{text}");
                assert!(
                    text.contains("Payments &lt;!channel&gt; &amp; refunds failing"),
                    "{t}:\n{text}"
                );
                assert!(
                    text.contains("Rolled back &lt;!channel&gt; the gateway config"),
                    "{t}:\n{text}"
                );
            } else {
                assert!(
                    text.contains("Payments <!channel> & refunds failing"),
                    "{t}:\n{text}"
                );
                for entity in ["&lt;", "&gt;", "&amp;", "&#"] {
                    assert!(!text.contains(entity), "{t} has {entity}:\n{text}");
                }
            }
        }
        let review = templates
            .render(Template::PostIncidentReview, &context(false))
            .unwrap();
        assert!(review.contains("Rolled back <!channel> the gateway config"));
    }

    #[test]
    fn mention_helper_per_medium() {
        let templates = Templates::load(None).unwrap();
        let slack = &templates.registries[Medium::SlackMrkdwn.index()];
        let md = &templates.registries[Medium::Markdown.index()];
        let data = serde_json::json!({
            "id": "U123", "bad": "U1><!channel", "none": null,
            "note": format!("{} said <!here> to @U0EVE", crate::core::mention("U0BOB"))
        });
        let r = |hb: &Handlebars, s: &str| hb.render_template(s, &data).unwrap();
        assert_eq!(r(slack, "{{mention id}}"), "<@U123>");
        assert_eq!(r(slack, "{{mention bad}}"), "U1&gt;&lt;!channel");
        assert_eq!(r(slack, "[{{mention none}}]"), "[]");
        assert_eq!(r(md, "{{mention id}}"), "@U123");
        assert_eq!(r(md, "{{mention bad}}"), "U1><!channel");
        assert_eq!(
            r(slack, "{{with_mentions note}}"),
            "<@U0BOB> said &lt;!here&gt; to @U0EVE"
        );
        assert_eq!(
            r(md, "{{with_mentions note}}"),
            "@U0BOB said <!here> to @U0EVE"
        );
        assert_eq!(r(md, "{{note}}"), "@U0BOB said <!here> to @U0EVE");
        assert_eq!(r(slack, "{{note}}"), "@U0BOB said &lt;!here&gt; to @U0EVE");
        assert!(slack.render_template("{{mention nope}}", &data).is_err());
        assert!(slack
            .render_template("{{#if nope}}x{{/if}}", &data)
            .is_err());
        assert_eq!(r(slack, "{{#if none}}x{{else}}y{{/if}}"), "y");
        assert_eq!(r(slack, "{{#unless none}}x{{/unless}}"), "x");
    }

    #[test]
    fn customer_email_has_a_subject_line() {
        let templates = Templates::load(None).unwrap();
        let text = templates
            .render(Template::CustomerEmail, &context(false))
            .unwrap();
        let (subject, body) = split_subject(&text).unwrap();
        assert!(
            subject.contains("Payments <!channel> & refunds failing"),
            "{subject}"
        );
        assert!(!body.starts_with('\n'));
        assert!(body.contains("apologi"), "{body}");
        assert_eq!(split_subject("Subject: x\n\nbody"), Some(("x", "body")));
        assert_eq!(split_subject("Hello"), None);
    }

    #[test]
    fn status_page_says_resolved_and_when() {
        let templates = Templates::load(None).unwrap();
        let text = templates
            .render(Template::StatusPage, &context(false))
            .unwrap();
        assert!(
            text.starts_with("Resolved — Payments <!channel> & refunds failing"),
            "{text}"
        );
        assert!(text.contains("between 09:00 and 10:12 UTC"), "{text}");
    }

    #[test]
    fn review_is_a_markdown_document() {
        let templates = Templates::load(None).unwrap();
        let text = templates
            .render(Template::PostIncidentReview, &context(true))
            .unwrap();
        assert!(text.starts_with("# "), "{text}");
        for section in [
            "## Summary",
            "## Timeline (UTC)",
            "## Impact",
            "## Root cause",
            "## Resolution",
            "## What went well",
            "## What went wrong",
            "## Action items",
            "## Prevention",
            "## Lessons learned",
        ] {
            assert!(text.contains(section), "no {section}:\n{text}");
        }
        assert!(text.contains("- [ ] Alert 30 days before certificates expire"));
        assert!(text.contains("- [ ] Automate certificate renewal"));
        assert!(text.contains("_to be completed in the review meeting_"));
        assert!(text.contains("missed"), "{text}");
        assert!(
            text.contains("Deploy fix"),
            "undone checklist item:\n{text}"
        );
        assert!(text.contains("@U0OPS found the expired certificate"));
        assert!(text.contains("09:03:10"), "{text}");
        let met = templates
            .render(Template::PostIncidentReview, &context(false))
            .unwrap();
        assert!(met.contains("within the 4h"), "{met}");
    }

    #[test]
    fn builtins_pass_the_check_and_render_unresolved_incidents() {
        let templates = Templates::load(None).unwrap();
        templates.check().unwrap_or_else(|errors| {
            panic!(
                "{}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
        let sample = TemplateContext::sample();
        for (t, text) in render_all(&templates, &sample) {
            assert!(text.contains("Checkout API returning 502s"), "{t}");
            assert!(!text.contains("\n\n\n"), "{t}");
            assert!(!text.ends_with('\n'), "{t}");
        }
        for (t, text) in render_all(&templates, &TemplateContext::sample_sparse()) {
            assert!(text.contains("Search results slow"), "{t}");
        }
    }

    #[test]
    fn a_directory_overrides_templates() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("status-page.hbs"),
            "Fixed: {{incident.title}} ({{durations.time_to_resolve}})\n",
        )
        .unwrap();
        let templates = Templates::load(Some(dir.path())).unwrap();
        assert_eq!(
            templates.source(Template::StatusPage),
            Some(dir.path().join("status-page.hbs").as_path())
        );
        assert_eq!(templates.source(Template::CustomerEmail), None);
        assert_eq!(
            templates
                .render(Template::StatusPage, &context(false))
                .unwrap(),
            "Fixed: Payments <!channel> & refunds failing (1h 13m)"
        );
        let email = templates
            .render(Template::CustomerEmail, &context(false))
            .unwrap();
        assert!(email.starts_with("Subject:"), "built-in kept: {email}");
        templates.check().unwrap();
    }

    #[test]
    fn a_syntax_error_names_the_template_path_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("customer-email.hbs");
        std::fs::write(&path, "Subject: hi\n\n{{#if incident.title}}\nunclosed\n").unwrap();
        let err = Templates::load(Some(dir.path())).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, TemplateError::Syntax { .. }), "{err:?}");
        assert_eq!(err.template(), Some(Template::CustomerEmail));
        assert!(text.contains("customer-email"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("line "), "{text}");
    }

    #[test]
    fn an_unknown_variable_fails_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("internal-announcement.hbs");
        std::fs::write(&path, "Hello\n{{incident.titel}}\n").unwrap();
        std::fs::write(
            dir.path().join("post-incident-review.hbs"),
            "# Review\n{{#if resolution.rootcause}}x{{/if}}\n",
        )
        .unwrap();
        let templates = Templates::load(Some(dir.path())).unwrap();
        let errors = templates.check().unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        let text = errors[0].to_string();
        assert_eq!(errors[0].template(), Some(Template::InternalAnnouncement));
        assert!(text.contains("internal-announcement"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("incident.titel"), "{text}");
        assert!(text.contains("line 2"), "{text}");
        assert!(errors[1].to_string().contains("resolution.rootcause"));
        let err = templates
            .render(Template::InternalAnnouncement, &context(false))
            .unwrap_err();
        assert!(matches!(err, TemplateError::Render { .. }));
    }

    #[test]
    fn an_email_without_subject_fails_the_check() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("customer-email.hbs"),
            "Hello {{incident.title}}\n",
        )
        .unwrap();
        let errors = Templates::load(Some(dir.path()))
            .unwrap()
            .check()
            .unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().contains("Subject"), "{}", errors[0]);
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Templates::load(Some(&dir.path().join("nope"))).unwrap_err();
        assert!(matches!(err, TemplateError::Dir { .. }), "{err:?}");
    }
}
