//! Resolution communications as Handlebars templates (SPEC §5).
//!
//! Four templates — the internal announcement, the status-page note, the customer email
//! (`Subject:` first) and the post-incident review — are compiled in from `message-templates/*.hbs`; an operator can override any
//! of them with `<templates.dir>/<name>.hbs`. Every template receives the same
//! [`TemplateContext`], documented in `message-templates/README.md`.
//!
//! A template is rendered in the [`Medium`] of where its text goes, chosen by the caller: the
//! internal announcement posted in chat in the chat platform's (Slack mrkdwn), the status page
//! and the customer email in plain text, the review in Markdown.
//!
//! Rendering is strict (an unknown variable is an error, also in `{{#if}}`/`{{#unless}}`), and
//! output is escaped for its medium: Slack mrkdwn escapes `&`, `<` and `>` (so user text can
//! never become `<!channel>` or a link), Markdown and plain text are not escaped at all (never
//! HTML entities). `warroom check-config` renders every template with sample data
//! ([`Templates::check`]) so mistakes show up at start-up, not at resolution time.

mod context;
mod registry;
mod sample;

pub use context::{
    ChecklistEntry, Durations, IncidentFacts, Links, ResolutionFacts, Roles, TemplateContext,
    TimelineEntry, Times,
};
pub use registry::{split_subject, Medium, Template, TemplateError, Templates};
