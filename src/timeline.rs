//! The timeline in the media that cannot mention people: Markdown (the post-incident
//! review), HTML (the incident page) and plain text (email, the template context). People are
//! shown by display name, looked up in a [`Directory`]; Slack renders its own way
//! (`slack::render::event_text`).

use crate::core::{TextPart, TimelineDetail};

/// Who a user id is, for media that cannot mention people.
///
/// Hook: no platform directory is wired in yet (a cache of Slack's `users.info`, or Teams'
/// roster, would implement this). Until then [`IdsOnly`] shows people as their bare ids.
pub trait Directory {
    fn display_name(&self, user: &str) -> Option<String>;
}

/// No directory: people are shown as their user ids (`U0BOB`), never as a mention.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdsOnly;

impl Directory for IdsOnly {
    fn display_name(&self, _user: &str) -> Option<String> {
        None
    }
}

/// A person as a medium without mentions shows them: their display name, else their id.
pub fn person(user: &str, names: &dyn Directory) -> String {
    names.display_name(user).unwrap_or_else(|| user.to_string())
}

/// Plain text (email, the template context): the parts as they are, literal names in
/// backticks.
pub fn plain_text(detail: &TimelineDetail, names: &dyn Directory) -> String {
    let mut out = String::new();
    for part in &detail.parts {
        match part {
            TextPart::Words(text) | TextPart::Typed(text) => out.push_str(text),
            TextPart::Person(user) => out.push_str(&person(user, names)),
            TextPart::Code(name) => {
                out.push('`');
                out.push_str(name);
                out.push('`');
            }
        }
    }
    out
}

/// Markdown (the review). Text is inserted as it is, as the review's template does with
/// every value; literal names become code spans.
pub fn markdown(detail: &TimelineDetail, names: &dyn Directory) -> String {
    plain_text(detail, names)
}

/// HTML (the incident page): everything escaped, literal names in `<code>`.
pub fn html(detail: &TimelineDetail, names: &dyn Directory) -> String {
    let mut out = String::new();
    for part in &detail.parts {
        match part {
            TextPart::Words(text) | TextPart::Typed(text) => out.push_str(&escape_html(text)),
            TextPart::Person(user) => out.push_str(&escape_html(&person(user, names))),
            TextPart::Code(name) => {
                out.push_str("<code>");
                out.push_str(&escape_html(name));
                out.push_str("</code>");
            }
        }
    }
    out
}

/// Escapes text for HTML.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Names;
    impl Directory for Names {
        fn display_name(&self, user: &str) -> Option<String> {
            (user == "U0BOB").then(|| "Bob".to_string())
        }
    }

    fn pinned() -> TimelineDetail {
        TimelineDetail::new()
            .words("Pinned ")
            .person("U0BOB")
            .words(": “")
            .typed("<b>@U0EVE</b> & <@U0EVE>")
            .words("” by ")
            .code("job<1>")
    }

    #[test]
    fn media_without_mentions_show_names_or_bare_ids() {
        assert_eq!(
            plain_text(&pinned(), &IdsOnly),
            "Pinned U0BOB: “<b>@U0EVE</b> & <@U0EVE>” by `job<1>`"
        );
        assert_eq!(
            markdown(&pinned(), &Names),
            "Pinned Bob: “<b>@U0EVE</b> & <@U0EVE>” by `job<1>`"
        );
        assert_eq!(
            html(&pinned(), &Names),
            "Pinned Bob: “&lt;b&gt;@U0EVE&lt;/b&gt; &amp; &lt;@U0EVE&gt;” by <code>job&lt;1&gt;</code>"
        );
        assert_eq!(person("U0EVE", &Names), "U0EVE");
    }
}
