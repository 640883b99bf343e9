//! The template registry: the four templates (built in, or overridden from `templates.dir`),
//! Handlebars set up per medium with its escaping and warroom's helpers, rendering and the
//! check `warroom check-config` runs.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, JsonRender, JsonTruthy, Output,
    RenderContext, RenderError, RenderErrorReason, Renderable,
};
use serde_json::Value as Json;

use super::context::TemplateContext;

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

    /// The template shipped with warroom.
    pub fn builtin(self) -> &'static str {
        match self {
            Template::InternalAnnouncement => {
                include_str!("../../message-templates/internal-announcement.hbs")
            }
            Template::StatusPage => include_str!("../../message-templates/status-page.hbs"),
            Template::CustomerEmail => include_str!("../../message-templates/customer-email.hbs"),
            Template::PostIncidentReview => {
                include_str!("../../message-templates/post-incident-review.hbs")
            }
        }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind of text a template is rendered into, which decides how values are escaped and
/// people mentioned. Chosen by where the text goes, not by the template: the internal
/// announcement posted in chat is in the chat platform's medium
/// ([`crate::chat::ChatPlatform::medium`]), the same template elsewhere in another.
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

/// The loaded templates: one Handlebars registry per medium, strict, with its escaping, each
/// holding every template.
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
            for registry in &mut templates.registries {
                registry
                    .register_template_string(name, &source)
                    .map_err(|e| TemplateError::Syntax {
                        template: name,
                        path: path.clone(),
                        line: e.pos().map(|(l, _)| l),
                        column: e.pos().map(|(_, c)| c),
                        source: Box::new(e),
                    })?;
            }
            templates.paths[i] = path;
        }
        Ok(templates)
    }

    /// The override file a template was loaded from, `None` for the built-in one.
    pub fn source(&self, template: Template) -> Option<&Path> {
        self.paths[index(template)].as_deref()
    }

    /// Renders a template in `medium`, the medium of where the text goes. Trailing whitespace
    /// is trimmed and runs of blank lines are collapsed to one, so optional sections never
    /// leave holes.
    pub fn render(
        &self,
        template: Template,
        medium: Medium,
        context: &TemplateContext,
    ) -> Result<String, TemplateError> {
        let raw = self.registries[medium.index()]
            .render(template.name(), &for_medium(context, medium))
            .map_err(|e| TemplateError::Render {
                template: template.name(),
                path: self.paths[index(template)].clone(),
                line: e.line_no,
                column: e.column_no,
                source: Box::new(e),
            })?;
        Ok(tidy(&raw))
    }

    /// Renders every template in every medium with `TemplateContext::sample()` (and with a
    /// just-declared incident that has no roles, resolution or links, so the `{{#if}}` branches
    /// for missing facts are rendered too). Ok(()) or every error, at most one per template.
    pub fn check(&self) -> Result<(), Vec<TemplateError>> {
        let contexts = [TemplateContext::sample(), TemplateContext::sample_sparse()];
        let mut errors = Vec::new();
        for template in Template::ALL {
            let result = contexts.iter().try_for_each(|context| {
                Medium::ALL.into_iter().try_for_each(|medium| {
                    let text = self.render(template, medium, context)?;
                    self.validate(template, &text)
                })
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

/// The context for a template of `medium`: in Slack mrkdwn, the timeline's text is the
/// form `with_mentions` turns into mentions (and the emoji of an event's signal); other
/// media keep the plain words.
fn for_medium(context: &TemplateContext, medium: Medium) -> std::borrow::Cow<'_, TemplateContext> {
    if medium != Medium::SlackMrkdwn {
        return std::borrow::Cow::Borrowed(context);
    }
    let mut context = context.clone();
    for entry in context
        .timeline
        .iter_mut()
        .chain(context.verification.iter_mut())
    {
        entry.text = crate::slack::render::event_marked(&entry.detail);
    }
    std::borrow::Cow::Owned(context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates::sample::fixtures::{context, CHANNEL};

    /// The medium of where each template goes, Slack being the chat platform.
    fn destination(template: Template) -> Medium {
        match template {
            Template::InternalAnnouncement => Medium::SlackMrkdwn,
            Template::StatusPage | Template::CustomerEmail => Medium::PlainText,
            Template::PostIncidentReview => Medium::Markdown,
        }
    }

    fn render_all(templates: &Templates, ctx: &TemplateContext) -> Vec<(Template, String)> {
        Template::ALL
            .into_iter()
            .map(|t| {
                (
                    t,
                    templates
                        .render(t, destination(t), ctx)
                        .unwrap_or_else(|e| panic!("{e}")),
                )
            })
            .collect()
    }

    #[test]
    fn names_parse() {
        for t in Template::ALL {
            assert_eq!(Template::parse(t.name()), Some(t));
            assert_eq!(Template::parse(&format!("{}.hbs", t.name())), Some(t));
        }
        assert_eq!(Template::parse("nope"), None);
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
            .render(
                Template::InternalAnnouncement,
                Medium::SlackMrkdwn,
                &context(false),
            )
            .unwrap();
        assert!(text.contains("*Priority:* P1"), "{text}");
        assert!(text.contains("• "), "{text}");
        assert!(text.contains("<@U0CMDR>"), "{text}");
        assert!(text.contains("within the 4h target"), "{text}");
        let missed = templates
            .render(
                Template::InternalAnnouncement,
                Medium::SlackMrkdwn,
                &context(true),
            )
            .unwrap();
        assert!(missed.contains("missed the 4h target"), "{missed}");
    }

    #[test]
    fn slack_text_is_escaped_and_the_rest_is_not() {
        let templates = Templates::load(None).unwrap();
        let every = Template::ALL
            .into_iter()
            .flat_map(|t| Medium::ALL.map(|m| (t, m)));
        for (t, medium) in every {
            let text = templates.render(t, medium, &context(false)).unwrap();
            if medium == Medium::SlackMrkdwn {
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
            .render(
                Template::PostIncidentReview,
                Medium::Markdown,
                &context(false),
            )
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
            .render(Template::CustomerEmail, Medium::PlainText, &context(false))
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
            .render(Template::StatusPage, Medium::PlainText, &context(false))
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
            .render(
                Template::PostIncidentReview,
                Medium::Markdown,
                &context(true),
            )
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
            .render(
                Template::PostIncidentReview,
                Medium::Markdown,
                &context(false),
            )
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
                .render(Template::StatusPage, Medium::PlainText, &context(false))
                .unwrap(),
            "Fixed: Payments <!channel> & refunds failing (1h 13m)"
        );
        let email = templates
            .render(Template::CustomerEmail, Medium::PlainText, &context(false))
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
            .render(
                Template::InternalAnnouncement,
                Medium::SlackMrkdwn,
                &context(false),
            )
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
