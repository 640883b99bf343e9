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

mod context;
mod registry;
mod sample;

pub use context::{
    ChecklistEntry, Durations, IncidentFacts, Links, ResolutionFacts, Roles, TemplateContext,
    TimelineEntry, Times,
};
pub use registry::{split_subject, Medium, Template, TemplateError, Templates};
