//! Timeline rows stored before timelines were structured: their text was Slack text, with an
//! emoji shortcode in front of some events and U+2063 marks before the people warroom named
//! (`core::mention`). This reads such text back into a [`TimelineDetail`]; the migration and
//! any row still without a detail use it. Nothing else in warroom writes these conventions.

use crate::core::{Signal, TimelineDetail, MENTION_MARK};

/// The detail of a legacy row. A leading emoji shortcode becomes the signal it stood for (or
/// is dropped), a person warroom marked (U+2063 then `@U…`) becomes a person, and every other
/// mark is removed. Never fails: what cannot be read stays warroom's words.
pub fn detail_from_text(text: &str) -> TimelineDetail {
    let mut detail = TimelineDetail::new();
    let mut rest = text;
    if let Some((code, after)) = leading_shortcode(rest) {
        detail.signal = match code {
            "rocket" => Some(Signal::FixDeployed),
            "rewind" => Some(Signal::Rollback),
            "warning" => Some(Signal::Failing),
            "white_check_mark" => Some(Signal::Recovered),
            _ => None,
        };
        rest = after;
    }
    let mut pieces = rest.split(MENTION_MARK);
    let mut words = pieces.next().unwrap_or_default().to_string();
    for piece in pieces {
        let id_len = piece
            .strip_prefix('@')
            .map(|after| {
                after
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                    .count()
            })
            .unwrap_or(0);
        if id_len == 0 {
            words.push_str(piece);
            continue;
        }
        if !words.is_empty() {
            detail = detail.words(std::mem::take(&mut words));
        }
        detail = detail.person(&piece[1..1 + id_len]);
        words.push_str(&piece[1 + id_len..]);
    }
    if !words.is_empty() || detail.parts.is_empty() {
        detail = detail.words(words);
    }
    detail
}

/// `:name: ` at the start of `text`: the name and what follows.
fn leading_shortcode(text: &str) -> Option<(&str, &str)> {
    let inner = text.strip_prefix(':')?;
    let end = inner.find(':')?;
    let name = &inner[..end];
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_+-".contains(c));
    let after = inner[end + 1..].strip_prefix(' ')?;
    valid.then_some((name, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_text_is_read_back_into_parts() {
        assert_eq!(
            detail_from_text("\u{2063}@U0BOB assigned as scribe"),
            TimelineDetail::new()
                .person("U0BOB")
                .words(" assigned as scribe")
        );
        assert_eq!(
            detail_from_text(":rocket: Fix deployed: v2 \u{2063}x"),
            TimelineDetail::new()
                .words("Fix deployed: v2 x")
                .with_signal(Signal::FixDeployed)
        );
        assert_eq!(
            detail_from_text(":memo: Pinned \u{2063}@U1: “a”"),
            TimelineDetail::new()
                .words("Pinned ")
                .person("U1")
                .words(": “a”")
        );
        assert_eq!(
            detail_from_text("Status 10:00: x"),
            TimelineDetail::from("Status 10:00: x")
        );
        assert_eq!(detail_from_text(""), TimelineDetail::from(""));
        assert_eq!(
            detail_from_text("@U0EVE typed"),
            TimelineDetail::from("@U0EVE typed")
        );
    }
}
