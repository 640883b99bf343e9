//! Slack's documented limits on what it accepts, checked and enforced in one place.
//!
//! [`check_message`], [`check_view`] and [`check_topic`] say whether Slack would accept a
//! message, a modal or a topic (the emulator answers with their error code, as Slack does);
//! [`fit_message`] and [`fit_view`] make a rendered message fit (every render goes through
//! them), and [`truncate`] shortens mrkdwn without breaking an escape or a link.

use serde_json::Value;
use slack_morphism::prelude::{SlackMessageContent, SlackView};

/// Characters of a section's text.
pub const SECTION_TEXT: usize = 3000;
/// Characters of one section field.
pub const SECTION_FIELD: usize = 2000;
/// Fields of one section.
pub const SECTION_FIELDS: usize = 10;
/// Characters of a header's text.
pub const HEADER_TEXT: usize = 150;
/// Characters of a button's text.
pub const BUTTON_TEXT: usize = 75;
/// Characters of a button's value.
pub const BUTTON_VALUE: usize = 2000;
/// Characters of an `action_id`, a `block_id` or a `callback_id`.
pub const ID: usize = 255;
/// Elements of one actions block.
pub const ACTIONS_ELEMENTS: usize = 25;
/// Elements of one context block.
pub const CONTEXT_ELEMENTS: usize = 10;
/// Blocks of one message.
pub const MESSAGE_BLOCKS: usize = 50;
/// Blocks of one modal.
pub const MODAL_BLOCKS: usize = 100;
/// Characters of a modal's title, submit and close texts.
pub const MODAL_TITLE: usize = 24;
/// Characters of a label or a hint in a modal.
pub const LABEL: usize = 2000;
/// Characters of a message's `text`: Slack refuses (`msg_too_long`) or cuts longer text.
pub const TEXT: usize = 40_000;
/// Characters of a message's `text` that Slack advises, and warroom keeps to.
pub const TEXT_ADVISED: usize = 4_000;
/// Characters of a channel topic.
pub const TOPIC: usize = 250;
/// Posts one `response_url` accepts (within 30 minutes).
pub const RESPONSE_URL_POSTS: usize = 5;

/// The mark at the end of shortened text.
pub const ELLIPSIS: &str = "…";

/// Why Slack would refuse something: its error code and where the fault is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {path} {problem}")]
pub struct Violation {
    /// Slack's error code: `invalid_blocks`, `msg_too_long` or `too_long`.
    pub error: &'static str,
    /// Where, e.g. `blocks[3].text`.
    pub path: String,
    /// What, e.g. `has 3512 characters (at most 3000)`.
    pub problem: String,
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

fn over(error: &'static str, path: &str, what: &str, n: usize, max: usize) -> Violation {
    Violation {
        error,
        path: path.to_string(),
        problem: format!("has {n} {what} (at most {max})"),
    }
}

fn invalid(path: &str, problem: &str) -> Violation {
    Violation {
        error: "invalid_blocks",
        path: path.to_string(),
        problem: problem.to_string(),
    }
}

/// A string field at most `max` characters long (absent is fine).
fn check_str(node: &Value, key: &str, max: usize, path: &str) -> Result<(), Violation> {
    match node.get(key).and_then(Value::as_str) {
        Some(s) if chars(s) > max => Err(over(
            "invalid_blocks",
            &format!("{path}.{key}"),
            "characters",
            chars(s),
            max,
        )),
        _ => Ok(()),
    }
}

/// A text object (`{"type": "mrkdwn"|"plain_text", "text": …}`) of 1 to `max` characters.
fn check_text_object(node: Option<&Value>, max: usize, path: &str) -> Result<(), Violation> {
    let Some(node) = node else {
        return Ok(());
    };
    let Some(text) = node.get("text").and_then(Value::as_str) else {
        return Err(invalid(path, "is not a text object"));
    };
    if text.is_empty() {
        return Err(invalid(path, "is empty"));
    }
    if chars(text) > max {
        return Err(over("invalid_blocks", path, "characters", chars(text), max));
    }
    Ok(())
}

fn check_count(node: &Value, key: &str, max: usize, path: &str) -> Result<usize, Violation> {
    let n = node.get(key).and_then(Value::as_array).map_or(0, Vec::len);
    if n > max {
        return Err(over(
            "invalid_blocks",
            &format!("{path}.{key}"),
            "items",
            n,
            max,
        ));
    }
    Ok(n)
}

/// An interactive element: a button, a select, an input.
fn check_element(element: &Value, path: &str) -> Result<(), Violation> {
    check_str(element, "action_id", ID, path)?;
    match element.get("type").and_then(Value::as_str) {
        Some("button") => {
            check_text_object(element.get("text"), BUTTON_TEXT, &format!("{path}.text"))?;
            check_str(element, "value", BUTTON_VALUE, path)?;
            check_str(element, "url", 3000, path)?;
        }
        Some("plain_text_input") => {
            if let Some(n) = element.get("max_length").and_then(Value::as_u64) {
                if n > 3000 {
                    return Err(invalid(path, "has max_length over 3000"));
                }
            }
        }
        Some("static_select" | "multi_static_select" | "radio_buttons" | "checkboxes") => {
            check_count(element, "options", 100, path)?;
            let options = element.get("options").and_then(Value::as_array);
            for (i, option) in options.into_iter().flatten().enumerate() {
                let at = format!("{path}.options[{i}]");
                check_text_object(option.get("text"), 75, &format!("{at}.text"))?;
                check_str(option, "value", 150, &at)?;
            }
        }
        _ => {}
    }
    check_text_object(
        element.get("placeholder"),
        150,
        &format!("{path}.placeholder"),
    )
}

/// One block of a message or a modal.
fn check_block(block: &Value, path: &str) -> Result<(), Violation> {
    check_str(block, "block_id", ID, path)?;
    match block.get("type").and_then(Value::as_str) {
        Some("section") => {
            let fields = check_count(block, "fields", SECTION_FIELDS, path)?;
            if block.get("text").is_none() && fields == 0 {
                return Err(invalid(path, "has neither text nor fields"));
            }
            check_text_object(block.get("text"), SECTION_TEXT, &format!("{path}.text"))?;
            let all = block.get("fields").and_then(Value::as_array);
            for (i, field) in all.into_iter().flatten().enumerate() {
                check_text_object(Some(field), SECTION_FIELD, &format!("{path}.fields[{i}]"))?;
            }
            if let Some(accessory) = block.get("accessory") {
                check_element(accessory, &format!("{path}.accessory"))?;
            }
        }
        Some("header") => {
            check_text_object(block.get("text"), HEADER_TEXT, &format!("{path}.text"))?;
        }
        Some("actions") => {
            if check_count(block, "elements", ACTIONS_ELEMENTS, path)? == 0 {
                return Err(invalid(path, "has no elements"));
            }
            let all = block.get("elements").and_then(Value::as_array);
            for (i, element) in all.into_iter().flatten().enumerate() {
                check_element(element, &format!("{path}.elements[{i}]"))?;
            }
        }
        Some("context") => {
            if check_count(block, "elements", CONTEXT_ELEMENTS, path)? == 0 {
                return Err(invalid(path, "has no elements"));
            }
        }
        Some("input") => {
            check_text_object(block.get("label"), LABEL, &format!("{path}.label"))?;
            check_text_object(block.get("hint"), LABEL, &format!("{path}.hint"))?;
            match block.get("element") {
                Some(element) => check_element(element, &format!("{path}.element"))?,
                None => return Err(invalid(path, "has no element")),
            }
        }
        Some(_) => {}
        None => return Err(invalid(path, "has no type")),
    }
    Ok(())
}

fn check_blocks(blocks: Option<&Value>, max: usize) -> Result<(), Violation> {
    let blocks = match blocks {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(blocks)) => blocks,
        Some(_) => return Err(invalid("blocks", "is not a list")),
    };
    if blocks.len() > max {
        return Err(over(
            "invalid_blocks",
            "blocks",
            "blocks",
            blocks.len(),
            max,
        ));
    }
    for (i, block) in blocks.iter().enumerate() {
        check_block(block, &format!("blocks[{i}]"))?;
    }
    Ok(())
}

/// Whether Slack accepts a message (`chat.postMessage`, `chat.update`, `chat.postEphemeral`, a
/// `response_url` post): `text` and `blocks` as JSON.
pub fn check_message(message: &Value) -> Result<(), Violation> {
    if let Some(text) = message.get("text").and_then(Value::as_str) {
        if chars(text) > TEXT {
            return Err(over(
                "msg_too_long",
                "text",
                "characters",
                chars(text),
                TEXT,
            ));
        }
    }
    check_blocks(message.get("blocks"), MESSAGE_BLOCKS)
}

/// Whether Slack accepts a modal view (`views.open`, `views.update`, `views.push`).
pub fn check_view(view: &Value) -> Result<(), Violation> {
    for key in ["title", "submit", "close"] {
        check_text_object(view.get(key), MODAL_TITLE, key)?;
    }
    check_str(view, "callback_id", ID, "view")?;
    check_str(view, "private_metadata", 3000, "view")?;
    check_blocks(view.get("blocks"), MODAL_BLOCKS)
}

/// Whether Slack accepts a channel topic (`conversations.setTopic` answers `too_long`).
pub fn check_topic(topic: &str) -> Result<(), Violation> {
    if chars(topic) > TOPIC {
        return Err(over("too_long", "topic", "characters", chars(topic), TOPIC));
    }
    Ok(())
}

/// Shortens mrkdwn to at most `max` characters, ending with [`ELLIPSIS`]: cut on a character
/// boundary, never inside an escape (`&amp;`) or a link or mention (`<…>`).
pub fn truncate(text: &str, max: usize) -> String {
    truncate_with(text, max, ELLIPSIS)
}

/// [`truncate`] with `tail` (e.g. `… (see the incident page)`) instead of the bare ellipsis.
pub fn truncate_with(text: &str, max: usize, tail: &str) -> String {
    if chars(text) <= max {
        return text.to_string();
    }
    let budget = max.saturating_sub(chars(tail));
    let mut cut = text
        .char_indices()
        .nth(budget)
        .map_or(text.len(), |(i, _)| i);
    // Inside `<…>`: cut before the `<`.
    if let Some(open) = text[..cut].rfind('<') {
        if !text[open..cut].contains('>') {
            cut = open;
        }
    }
    // Inside `&amp;`, `&lt;` or `&gt;`: cut before the `&`.
    if let Some(amp) = text[..cut].rfind('&') {
        let rest = &text[amp..];
        let entity = ["&amp;", "&lt;", "&gt;"]
            .iter()
            .find(|e| rest.starts_with(**e));
        if let Some(entity) = entity {
            if amp + entity.len() > cut {
                cut = amp;
            }
        }
    }
    let head = text[..cut].trim_end();
    let tail = if head.is_empty() {
        tail.trim_start()
    } else {
        tail
    };
    let out = format!("{head}{tail}");
    // A tail longer than `max` still has to fit.
    if chars(&out) > max {
        return out.chars().take(max).collect();
    }
    out
}

/// Shortens the text object `node.key.text` to `max` characters, if it is longer.
fn fit_text(node: &mut Value, key: &str, max: usize) {
    if let Some(Value::String(text)) = node.get_mut(key).and_then(|t| t.get_mut("text")) {
        if chars(text) > max {
            *text = truncate(text, max);
        }
    }
}

fn fit_list(node: &mut Value, key: &str, max: usize) {
    if let Some(Value::Array(items)) = node.get_mut(key) {
        items.truncate(max);
    }
}

fn fit_element(element: &mut Value) {
    if element.get("type").and_then(Value::as_str) == Some("button") {
        fit_text(element, "text", BUTTON_TEXT);
    }
}

fn fit_blocks(blocks: &mut Vec<Value>, max: usize) {
    if blocks.len() > max {
        let dropped = blocks.len() - (max - 1);
        blocks.truncate(max - 1);
        blocks.push(serde_json::json!({
            "type": "context",
            "elements": [{ "type": "mrkdwn", "text": format!("{ELLIPSIS} {dropped} more not shown") }]
        }));
    }
    for block in blocks.iter_mut() {
        match block.get("type").and_then(Value::as_str) {
            Some("section") => {
                fit_text(block, "text", SECTION_TEXT);
                fit_list(block, "fields", SECTION_FIELDS);
                if let Some(Value::Array(fields)) = block.get_mut("fields") {
                    for field in fields.iter_mut() {
                        if let Some(Value::String(text)) = field.get_mut("text") {
                            if chars(text) > SECTION_FIELD {
                                *text = truncate(text, SECTION_FIELD);
                            }
                        }
                    }
                }
                if let Some(accessory) = block.get_mut("accessory") {
                    fit_element(accessory);
                }
            }
            Some("header") => fit_text(block, "text", HEADER_TEXT),
            Some("actions") => {
                fit_list(block, "elements", ACTIONS_ELEMENTS);
                if let Some(Value::Array(elements)) = block.get_mut("elements") {
                    elements.iter_mut().for_each(fit_element);
                }
            }
            Some("context") => fit_list(block, "elements", CONTEXT_ELEMENTS),
            _ => {}
        }
    }
}

/// Makes a rendered message fit Slack's limits: long texts shortened with an ellipsis, extra
/// blocks or elements left out, `text` kept to the advised 4,000 characters. A message that
/// still would not fit (a bug) is logged and sent as its text alone, which always fits.
pub fn fit_message(content: SlackMessageContent) -> SlackMessageContent {
    let mut value = match serde_json::to_value(&content) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "a message could not be serialised");
            return content;
        }
    };
    if let Some(Value::String(text)) = value.get_mut("text") {
        if chars(text) > TEXT_ADVISED {
            *text = truncate(text, TEXT_ADVISED);
        }
    }
    if let Some(Value::Array(blocks)) = value.get_mut("blocks") {
        fit_blocks(blocks, MESSAGE_BLOCKS);
    }
    let fitted = check_message(&value)
        .map_err(|e| e.to_string())
        .and_then(|()| serde_json::from_value(value.clone()).map_err(|e| e.to_string()));
    match fitted {
        Ok(fitted) => fitted,
        Err(e) => {
            tracing::error!(error = %e, "a message does not fit Slack's limits: sent as text");
            let text = value
                .get("text")
                .and_then(Value::as_str)
                .map(|t| truncate(t, TEXT_ADVISED))
                .unwrap_or_default();
            SlackMessageContent::new().with_text(text)
        }
    }
}

/// Makes a modal fit: title, submit and close shortened to 24 characters, then checked (a view
/// that still does not fit is logged; Slack will refuse it).
pub fn fit_view(view: SlackView) -> SlackView {
    let Ok(mut value) = serde_json::to_value(&view) else {
        return view;
    };
    for key in ["title", "submit", "close"] {
        fit_text(&mut value, key, MODAL_TITLE);
    }
    if let Err(e) = check_view(&value) {
        tracing::error!(error = %e, "a modal does not fit Slack's limits");
    }
    serde_json::from_value(value).unwrap_or(view)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn section(text: &str) -> Value {
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } })
    }

    fn button(text: &str) -> Value {
        json!({ "type": "button", "text": { "type": "plain_text", "text": text }, "action_id": "a" })
    }

    fn error_of(message: Value) -> Option<&'static str> {
        check_message(&message).err().map(|v| v.error)
    }

    #[test]
    fn messages_within_the_limits_pass() {
        let ok = json!({
            "text": "x".repeat(TEXT),
            "blocks": [
                section(&"é".repeat(SECTION_TEXT)),
                { "type": "header", "text": { "type": "plain_text", "text": "h".repeat(HEADER_TEXT) } },
                { "type": "actions", "block_id": "b".repeat(ID), "elements": vec![button(&"b".repeat(BUTTON_TEXT)); ACTIONS_ELEMENTS] },
                { "type": "context", "elements": vec![json!({"type": "mrkdwn", "text": "c"}); CONTEXT_ELEMENTS] },
                { "type": "section", "fields": vec![json!({"type": "mrkdwn", "text": "f"}); SECTION_FIELDS] },
                { "type": "divider" }
            ]
        });
        assert_eq!(check_message(&ok), Ok(()));
        let blocks: Vec<Value> = (0..MESSAGE_BLOCKS).map(|_| section("s")).collect();
        assert_eq!(check_message(&json!({ "blocks": blocks })), Ok(()));
    }

    #[test]
    fn each_limit_is_enforced() {
        let one = |block: Value| error_of(json!({ "blocks": [block] }));
        assert_eq!(
            one(section(&"x".repeat(SECTION_TEXT + 1))),
            Some("invalid_blocks")
        );
        assert_eq!(one(section("")), Some("invalid_blocks"));
        assert_eq!(
            one(
                json!({ "type": "header", "text": { "type": "plain_text", "text": "h".repeat(HEADER_TEXT + 1) } })
            ),
            Some("invalid_blocks")
        );
        assert_eq!(
            one(json!({ "type": "actions", "elements": [button(&"b".repeat(BUTTON_TEXT + 1))] })),
            Some("invalid_blocks")
        );
        assert_eq!(
            one(json!({ "type": "actions", "elements": vec![button("b"); ACTIONS_ELEMENTS + 1] })),
            Some("invalid_blocks")
        );
        assert_eq!(
            one(json!({ "type": "actions", "elements": [] })),
            Some("invalid_blocks")
        );
        assert_eq!(
            one(
                json!({ "type": "context", "elements": vec![json!({"type": "mrkdwn", "text": "c"}); CONTEXT_ELEMENTS + 1] })
            ),
            Some("invalid_blocks")
        );
        assert_eq!(
            one(
                json!({ "type": "section", "fields": vec![json!({"type": "mrkdwn", "text": "f"}); SECTION_FIELDS + 1] })
            ),
            Some("invalid_blocks")
        );
        let mut long_id = section("s");
        long_id["block_id"] = json!("b".repeat(ID + 1));
        assert_eq!(one(long_id), Some("invalid_blocks"));
        let mut long_action = section("s");
        long_action["accessory"] = button("ok");
        long_action["accessory"]["action_id"] = json!("a".repeat(ID + 1));
        assert_eq!(one(long_action), Some("invalid_blocks"));
        let blocks: Vec<Value> = (0..=MESSAGE_BLOCKS).map(|_| section("s")).collect();
        assert_eq!(
            error_of(json!({ "blocks": blocks })),
            Some("invalid_blocks")
        );
        assert_eq!(
            error_of(json!({ "text": "x".repeat(TEXT + 1) })),
            Some("msg_too_long")
        );
    }

    #[test]
    fn views_and_topics_have_their_limits() {
        let view = |title: &str, blocks: usize| {
            json!({
                "type": "modal",
                "title": { "type": "plain_text", "text": title },
                "blocks": (0..blocks).map(|_| section("s")).collect::<Vec<_>>()
            })
        };
        assert_eq!(
            check_view(&view(&"t".repeat(MODAL_TITLE), MODAL_BLOCKS)),
            Ok(())
        );
        assert!(check_view(&view(&"t".repeat(MODAL_TITLE + 1), 1)).is_err());
        assert!(check_view(&view("t", MODAL_BLOCKS + 1)).is_err());
        assert_eq!(check_topic(&"t".repeat(TOPIC)), Ok(()));
        assert_eq!(
            check_topic(&"t".repeat(TOPIC + 1)).map_err(|v| v.error),
            Err("too_long")
        );
    }

    #[test]
    fn truncation_keeps_escapes_links_and_characters_whole() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("abcdefghij", 5), "abcd…");
        // Never inside `&amp;`.
        assert_eq!(truncate("abc &amp; def", 7), "abc…");
        assert_eq!(truncate("abc &lt;x", 8), "abc…");
        // Never inside a mention or a link.
        assert_eq!(truncate("hi <@U0BOB> there", 8), "hi…");
        assert_eq!(truncate("see <https://x.y/z|page> now", 20), "see…");
        // Multi-byte characters count as one and are never split.
        assert_eq!(truncate("ééééé", 3), "éé…");
        assert_eq!(truncate("🚨🚨🚨🚨", 3), "🚨🚨…");
        for max in 1..40 {
            let text = "a &amp; <@U1> é 🚨 &lt;b&gt; <#C1|x> end";
            let cut = truncate(text, max);
            assert!(cut.chars().count() <= max, "{max}: {cut}");
            assert_eq!(
                cut.matches('<').count(),
                cut.matches('>').count(),
                "{max}: {cut}"
            );
            assert_eq!(
                cut.matches('&').count(),
                cut.matches(';').count(),
                "{max}: {cut}"
            );
        }
        assert_eq!(truncate_with("0123456789", 8, "… more"), "01… more");
    }

    #[test]
    fn fit_makes_oversized_messages_valid() {
        let blocks: Vec<Value> = (0..60)
            .map(|i| {
                if i == 0 {
                    section(&"&amp;".repeat(1000))
                } else {
                    json!({ "type": "actions", "elements": [button(&"b".repeat(100))] })
                }
            })
            .collect();
        let content: SlackMessageContent =
            serde_json::from_value(json!({ "text": "t".repeat(50_000), "blocks": blocks }))
                .expect("a message");
        let fitted = serde_json::to_value(fit_message(content)).expect("json");
        assert_eq!(check_message(&fitted), Ok(()));
        let blocks = fitted["blocks"].as_array().expect("blocks");
        assert_eq!(blocks.len(), MESSAGE_BLOCKS);
        let first = blocks[0]["text"]["text"].as_str().expect("text");
        assert!(first.ends_with("&amp;…"), "{}", &first[first.len() - 20..]);
        assert!(fitted["text"].as_str().expect("text").chars().count() <= TEXT_ADVISED);
    }
}
