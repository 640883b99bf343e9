//! What warroom says on Slack: Block Kit and mrkdwn, built from the incident as stored.
//! Every piece of user text goes through [`escape`], so a title of `<!channel>` notifies nobody.

use chrono::{DateTime, Utc};
use slack_morphism::prelude::*;

use super::channel_name::ChannelName;
use super::limits::{self, fit_message, fit_view, truncate};
use crate::core::{
    human_duration, Incident, Role, Signal, Status, TextPart, TimelineDetail, MENTION_MARK,
};

/// Action ids of the kickoff message's buttons.
pub const ACTION_CHECKLIST: &str = "checklist_toggle";
pub const ACTION_ACKNOWLEDGE: &str = "acknowledge";

/// Escapes user text for mrkdwn: `&`, `<` and `>` (Slack's three control characters). The
/// text names nobody: warroom's mention mark ([`crate::core::MENTION_MARK`]) is dropped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            MENTION_MARK => {}
            c => out.push(c),
        }
    }
    out
}

/// A primary-style button carrying an action id and a value.
fn primary_button(label: &str, action_id: &str, value: String) -> SlackBlockButtonElement {
    SlackBlockButtonElement::new(pt!(label))
        .with_action_id(action_id.into())
        .with_value(value)
        .with_style(SlackBlockButtonStyle::Primary)
}

/// A mrkdwn message with one primary button under it.
fn text_with_button(text: String, button: SlackBlockButtonElement) -> SlackMessageContent {
    fit_message(
        SlackMessageContent::new()
            .with_text(text.clone())
            .with_blocks(vec![
                section(&text),
                SlackActionsBlock::new(vec![button.into()]).into(),
            ]),
    )
}

/// A mrkdwn section, its text cut to Slack's 3,000 characters.
fn section(text: &str) -> SlackBlock {
    section_more(text, None)
}

/// A mrkdwn section of user text, cut to Slack's 3,000 characters with [`cut`].
fn section_more(text: &str, page: Option<&str>) -> SlackBlock {
    SlackSectionBlock::new()
        .with_text(md!(cut(text, limits::SECTION_TEXT, page)))
        .into()
}

/// A plain-text message, cut to the 4,000 characters Slack advises.
fn plain(text: String) -> SlackMessageContent {
    plain_more(text, None)
}

/// A plain-text message of user text, cut to the 4,000 characters Slack advises with [`cut`].
fn plain_more(text: String, page: Option<&str>) -> SlackMessageContent {
    fit_message(SlackMessageContent::new().with_text(cut(&text, limits::TEXT_ADVISED, page)))
}

/// The label of the link that ends a cut text.
pub const MORE_LABEL: &str = "more on the incident page";

/// Shortens mrkdwn to `max` characters like [`truncate`], ending with the ellipsis and, when
/// `page` (the incident's web page, with its token) is known, a link to it where the reader
/// finds the whole text. The link counts within `max`; a page address too long to leave room
/// for the text is left out.
pub fn cut(text: &str, max: usize, page: Option<&str>) -> String {
    let tail = match page {
        Some(url) => format!("{} <{}|{MORE_LABEL}>", limits::ELLIPSIS, link_target(url)),
        None => limits::ELLIPSIS.to_string(),
    };
    if tail.chars().count() > max / 2 {
        return truncate(text, max);
    }
    limits::truncate_with(text, max, &tail)
}

/// A URL as the target of a mrkdwn link: `&` escaped, and the characters that would end the
/// link (`<`, `>`, `|`) percent-encoded.
fn link_target(url: &str) -> String {
    url.replace('&', "&amp;")
        .replace('<', "%3C")
        .replace('>', "%3E")
        .replace('|', "%7C")
}

/// A long mrkdwn document posted as one message (the internal announcement): kept whole up to
/// the 40,000 characters Slack takes, cut past that with [`cut`].
pub fn document(text: &str, page: Option<&str>) -> SlackMessageContent {
    SlackMessageContent::new().with_text(cut(text, limits::TEXT, page))
}

/// Text warroom wrote for the war room (deploys, health, rollbacks): escaped, with the people
/// warroom named as mentions, within Slack's limits.
pub fn war_room_text(text: &str) -> SlackMessageContent {
    plain(core_text(text))
}

/// `<@U123>`, a mention of a Slack user id (ids are ours or Slack's, never free text).
pub fn user(id: &str) -> String {
    format!("<@{}>", id.replace(['<', '>', '|', '&'], ""))
}

/// `<#C123|name>`, a link to a channel.
pub fn channel(id: &str, name: &str) -> String {
    format!(
        "<#{}|{}>",
        id.replace(['<', '>', '|', '&'], ""),
        escape(name)
    )
}

/// `14:05 UTC`.
pub fn clock(t: DateTime<Utc>) -> String {
    t.format("%H:%M UTC").to_string()
}

/// `2026-11-29 14:05 UTC`.
pub fn date_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn severity_emoji(incident: &Incident) -> &'static str {
    match incident.severity {
        crate::core::Severity::P0 => ":rotating_light:",
        crate::core::Severity::P1 => ":red_circle:",
        crate::core::Severity::P2 => ":large_orange_circle:",
        crate::core::Severity::P3 => ":large_yellow_circle:",
    }
}

fn target_text(incident: &Incident) -> String {
    let target = (incident.target_at - incident.declared_at)
        .to_std()
        .unwrap_or_default();
    format!(
        "resolve within {} (by {})",
        human_duration(target),
        clock(incident.target_at)
    )
}

fn war_room_link(incident: &Incident) -> String {
    match &incident.war_room {
        Some(room) => channel(&room.id, &room.name),
        None => format!(
            "#{}",
            ChannelName::for_incident(incident.number, &incident.title)
        ),
    }
}

/// The war room's topic (Slack allows 250 characters).
pub fn topic(incident: &Incident) -> String {
    let text = format!(
        "{} {} · {} · {} · target {}",
        incident.key(),
        incident.severity,
        incident.status,
        escape(&incident.title),
        clock(incident.target_at)
    );
    truncate(&text, limits::TOPIC)
}

/// The kickoff message: summary, roles, checklist with a button per item, Acknowledge. `page`
/// is the incident's web page, linked where user text is cut.
pub fn kickoff(incident: &Incident, page: Option<&str>) -> SlackMessageContent {
    let mut blocks: Vec<SlackBlock> = Vec::new();
    let headline = format!(
        "{} *{} · {} · {}*",
        severity_emoji(incident),
        incident.key(),
        incident.severity,
        escape(&incident.title)
    );
    blocks.push(section(&headline));
    let mut summary = format!(
        "*Status:* {}   *Severity:* {} ({})\n*Declared by* {} at {}\n*Response target:* {}",
        incident.status,
        incident.severity,
        incident.severity.meaning(),
        user(&incident.declared_by),
        clock(incident.declared_at),
        target_text(incident)
    );
    if !incident.description.is_empty() {
        summary.push_str(&format!(
            "\n>{}",
            escape(&incident.description).replace('\n', "\n>")
        ));
    }
    // The description is quoted last: a long one is cut, never the facts above it.
    blocks.push(section_more(&summary, page));

    let mut deploy_lines = Vec::new();
    if !incident.versions_at_open.is_empty() {
        deploy_lines.push(format!(
            "*Deployed at declaration:* {}",
            incident
                .versions_at_open
                .iter()
                .map(|(svc, v)| format!("{} {}", escape(svc), escape(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for link in &incident.hotfixes {
        deploy_lines.push(format!(
            "*Hotfix:* {}{}",
            escape(&crate::core::hotfix::display_link(&link.url)),
            link.version
                .as_deref()
                .map(|v| format!(" ({})", escape(v)))
                .unwrap_or_default()
        ));
    }
    if let Some(at) = incident.fix_deployed_at {
        deploy_lines.push(format!(":rocket: *Fix deployed* at {}", clock(at)));
    }
    if !deploy_lines.is_empty() {
        blocks.push(section_more(&deploy_lines.join("\n"), page));
    }
    let roles = Role::ALL
        .iter()
        .map(|role| match incident.roles.get(role) {
            Some(u) => format!("*{}:* {}", role.title(), user(u)),
            None => format!("*{}:* _unassigned_", role.title()),
        })
        .collect::<Vec<_>>()
        .join("\n");
    blocks.push(section(&roles));
    blocks.push(SlackDividerBlock::new().into());

    let done = incident
        .checklist
        .iter()
        .filter(|i| i.done.is_some())
        .count();
    blocks.push(
        SlackSectionBlock::new()
            .with_text(md!(
                "*Checklist* ({done}/{} done)",
                incident.checklist.len()
            ))
            .into(),
    );
    // Each item is a block with its button. Past what fits in one message (50 blocks; at most
    // 5 follow the items: the rest of the list, a divider, resolved, acknowledge, the hint),
    // the remaining items are listed in one section without buttons.
    let with_buttons = limits::MESSAGE_BLOCKS.saturating_sub(blocks.len() + 5);
    let mut rest = Vec::new();
    for (n, item) in incident.checklist.iter().enumerate() {
        if n >= with_buttons {
            rest.push(match &item.done {
                Some(_) => format!(":white_check_mark: ~{}~", escape(&item.text)),
                None => format!(":white_large_square: {}", escape(&item.text)),
            });
            continue;
        }
        let (text, label) = match &item.done {
            Some(d) => (
                format!(
                    ":white_check_mark: ~{}~\n_done by {} at {}_",
                    escape(&item.text),
                    user(&d.by),
                    clock(d.at)
                ),
                "Undo",
            ),
            None => (
                format!(":white_large_square: {}", escape(&item.text)),
                "Done",
            ),
        };
        let button = SlackBlockButtonElement::new(pt!(label))
            .with_action_id(format!("{ACTION_CHECKLIST}:{}", item.position).into())
            .with_value(format!("{}:{}", incident.number, item.position));
        blocks.push(
            SlackSectionBlock::new()
                .with_block_id(format!("checklist-{}", item.position).into())
                .with_text(md!(truncate(&text, limits::SECTION_TEXT)))
                .with_accessory(button.into())
                .into(),
        );
    }
    if !rest.is_empty() {
        blocks.push(section_more(&rest.join("\n"), page));
    }
    blocks.push(SlackDividerBlock::new().into());
    if let (Some(at), Some(r)) = (incident.resolved_at, &incident.resolution) {
        let resolved = format!(
            ":white_check_mark: *Resolved* by {} at {}: {}",
            user(&r.resolved_by),
            clock(at),
            escape(&r.summary)
        );
        blocks.push(section_more(&resolved, page));
    }
    match &incident.acknowledged {
        Some(ack) => blocks.push(
            SlackSectionBlock::new()
                .with_text(md!(
                    ":white_check_mark: Acknowledged by {} at {}: paging stopped",
                    user(&ack.by),
                    clock(ack.at)
                ))
                .into(),
        ),
        None if incident.status.is_active() => {
            let ack = primary_button(
                "Acknowledge",
                ACTION_ACKNOWLEDGE,
                incident.number.to_string(),
            );
            blocks.push(
                SlackActionsBlock::new(vec![ack.into()])
                    .with_block_id("acknowledge".into())
                    .into(),
            );
        }
        None => {}
    }
    blocks.push(
        SlackContextBlock::new(vec![md!(
            "React with :pushpin: to keep a message in the timeline · `/incident help` for commands"
        )])
        .into(),
    );
    fit_message(
        SlackMessageContent::new()
            .with_text(format!(
                "{} {} {}: {}",
                incident.key(),
                incident.severity,
                incident.status,
                escape(&incident.title)
            ))
            .with_blocks(blocks),
    )
}

/// The announcement of a new incident, for the announce channel.
pub fn announcement(incident: &Incident, page: Option<&str>) -> SlackMessageContent {
    let text = format!(
        "{} *{} incident declared: {} · {}*\nDeclared by {} · war room {} · {}",
        severity_emoji(incident),
        incident.severity,
        incident.key(),
        escape(&incident.title),
        user(&incident.declared_by),
        war_room_link(incident),
        target_text(incident)
    );
    fit_message(
        SlackMessageContent::new()
            .with_text(cut(&text, limits::TEXT_ADVISED, page))
            .with_blocks(vec![section_more(&text, page)]),
    )
}

/// The reply to the person who declared: where to go.
pub fn opened_reply(incident: &Incident) -> SlackMessageContent {
    plain(format!(
        ":white_check_mark: {} is open: join {} — you are invited, the checklist is there.",
        incident.key(),
        war_room_link(incident)
    ))
}

/// The immediate answer to `/incident open`, before the war room exists.
pub fn opening_ack(incident: &Incident) -> String {
    format!(
        ":hourglass_flowing_sand: Declaring {} ({}): {}. Opening #{} — the link follows in a moment.",
        incident.key(),
        incident.severity,
        escape(&incident.title),
        ChannelName::for_incident(incident.number, &incident.title)
    )
}

/// A page sent as a Slack DM.
pub fn page_dm(incident: &Incident, step: usize) -> SlackMessageContent {
    let text = format!(
        ":rotating_light: You are paged for {} ({}): {}\nDeclared by {} at {} · war room {} · escalation step {}",
        incident.key(),
        incident.severity,
        escape(&incident.title),
        user(&incident.declared_by),
        clock(incident.declared_at),
        war_room_link(incident),
        step + 1
    );
    text_with_button(
        text,
        primary_button(
            "Acknowledge",
            ACTION_ACKNOWLEDGE,
            incident.number.to_string(),
        ),
    )
}

/// `/incident list`: active incidents with severity, age, status and commander.
pub fn incident_list(incidents: &[Incident], now: DateTime<Utc>) -> String {
    if incidents.is_empty() {
        return ":white_check_mark: No open incidents.".into();
    }
    let mut lines = vec![format!("*Open incidents ({})*", incidents.len())];
    for i in incidents {
        let age = (now - i.declared_at).to_std().unwrap_or_default();
        let age = human_duration(std::time::Duration::from_secs(age.as_secs() / 60 * 60));
        let age = if age == "0s" { "<1m".to_string() } else { age };
        let commander = i
            .commander()
            .map(|u| user(u))
            .unwrap_or_else(|| "no commander".into());
        let overdue = if now > i.target_at && i.status != Status::Resolved {
            " · :warning: past target"
        } else {
            ""
        };
        lines.push(format!(
            "• *{}* {} · {} · {} · open {} · {} · {}{}",
            i.key(),
            i.severity,
            escape(&i.title),
            i.status,
            escape(&age),
            commander,
            war_room_link(i),
            overdue
        ));
    }
    lines.join("\n")
}

/// `/incident help`.
pub fn help(command: &str) -> String {
    format!(
        "*warroom* runs the incident protocol from Slack.\n\
         *Anywhere*\n\
         `{c} open &lt;P0-P3&gt; &lt;title&gt;` (or `declare`): declare an incident and open its war room; \
         `{c} open` alone opens a form\n\
         `{c} list`: open incidents with severity, age, status and commander\n\
         `{c} ack [INC-n]`: acknowledge a page (stops escalation)\n\
         `{c} help`: this text\n\
         *In a war room*\n\
         `{c} status &lt;text&gt;`: status update (posted here, and announced for P0/P1)\n\
         `{c} note &lt;text&gt;`: add a note to the timeline\n\
         `{c} severity &lt;P0-P3&gt;`: change the severity (escalation is re-planned)\n\
         `{c} assign &lt;commander|comms|ops|scribe&gt; &lt;@user&gt;`: assign a role\n\
         `{c} state <identified|monitoring>`: move the incident on\n\
         `{c} hotfix &lt;url&gt; [version]`: link the fix · `{c} resolve [summary]`: resolve\n\
         `{c} timeline`: the whole timeline\n\
         React with :pushpin: to keep a message in the timeline; press the checklist buttons to tick items.\n\
         *Severities*: P0 production down / security (2h) · P1 critical feature broken (4h) · \
         P2 partly broken, workaround exists (24h) · P3 business-critical, not broken (48h).",
        c = command
    )
}

/// The short usage error for a command that was not understood.
pub fn usage_error(command: &str, problem: &str) -> String {
    format!(
        ":warning: {}\nUsage: `{c} open &lt;P0-P3&gt; &lt;title&gt;` · `{c} list` · `{c} help`",
        escape(problem),
        c = command
    )
}

/// Text stored by warroom (timeline, replies) made safe for mrkdwn: escaped, and the people
/// warroom named itself ([`crate::core::mention`]: the mark, then `@U…`) turned into mentions.
/// Everything else, including an `@U0BOB` or `<@U0BOB>` someone typed, stays text.
pub fn core_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut parts = text.split(MENTION_MARK);
    if let Some(first) = parts.next() {
        out.push_str(&escape(first));
    }
    for part in parts {
        let id_len = part
            .strip_prefix('@')
            .map(|after| {
                after
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                    .count()
            })
            .unwrap_or(0);
        if id_len > 0 {
            out.push_str(&user(&part[1..1 + id_len]));
            out.push_str(&escape(&part[1 + id_len..]));
        } else {
            out.push_str(&escape(part));
        }
    }
    out
}

/// A status update, as posted in the war room (`page`: see [`cut`]).
pub fn status_update(
    incident: &Incident,
    text: &str,
    by: &str,
    page: Option<&str>,
) -> SlackMessageContent {
    let body = format!(
        ":mega: *Status update* on {} ({} · {}) from {}\n{}",
        incident.key(),
        incident.severity,
        incident.status,
        user(by),
        escape(text)
    );
    plain_more(body, page)
}

/// A status update of a P0/P1, as repeated in the announce channel (`page`: see [`cut`]).
pub fn status_announcement(
    incident: &Incident,
    text: &str,
    by: &str,
    page: Option<&str>,
) -> SlackMessageContent {
    let head = format!(
        ":mega: *{} {} update:* {}\n",
        incident.key(),
        incident.severity,
        escape(&incident.title),
    );
    let foot = format!(
        "\n_from {} · status {} · war room {}_",
        user(by),
        incident.status,
        war_room_link(incident)
    );
    // A long update is cut, never the footer after it.
    let room = limits::TEXT_ADVISED.saturating_sub(head.chars().count() + foot.chars().count());
    plain(format!("{head}{}{foot}", cut(&escape(text), room, page)))
}

// ---------------------------------------------------------------------------------------------
// Timeline events: warroom's words and what people typed escaped, the people an event names as
// real mentions, and an emoji for what the event signals.

/// The emoji Slack shows before an event that signals something.
pub fn signal_emoji(signal: Signal) -> &'static str {
    match signal {
        Signal::FixDeployed => ":rocket:",
        Signal::Rollback => ":rewind:",
        Signal::Failing => ":warning:",
        Signal::Recovered => ":white_check_mark:",
    }
}

/// An event's detail as mrkdwn. Only [`TextPart::Person`] mentions anyone: an `@U0BOB` or
/// `<@U0BOB>` someone typed stays text.
pub fn event_text(detail: &TimelineDetail) -> String {
    let mut out = String::new();
    if let Some(signal) = detail.signal {
        out.push_str(signal_emoji(signal));
        out.push(' ');
    }
    for part in &detail.parts {
        match part {
            TextPart::Words(text) | TextPart::Typed(text) => out.push_str(&escape(text)),
            TextPart::Person(id) if is_slack_user_id(id) => out.push_str(&user(id)),
            TextPart::Person(name) => {
                out.push('@');
                out.push_str(&escape(name));
            }
            TextPart::Code(name) => {
                out.push('`');
                out.push_str(&escape(name));
                out.push('`');
            }
        }
    }
    out
}

/// An event's detail as text for a Slack template (`crate::templates`): the emoji of its
/// signal, and the people it names marked the way `with_mentions` turns into mentions
/// ([`crate::core::mention`]); everything else stays text.
pub fn event_marked(detail: &TimelineDetail) -> String {
    let mut out = String::new();
    if let Some(signal) = detail.signal {
        out.push_str(signal_emoji(signal));
        out.push(' ');
    }
    for part in &detail.parts {
        match part {
            TextPart::Words(text) | TextPart::Typed(text) => {
                out.push_str(&crate::core::inert(text))
            }
            TextPart::Person(user) => out.push_str(&crate::core::mention(user)),
            TextPart::Code(name) => {
                out.push('`');
                out.push_str(&crate::core::inert(name));
                out.push('`');
            }
        }
    }
    out
}

/// A Slack user id (`U0BOB`); anything else (a bot's name) is shown as text.
fn is_slack_user_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// `/incident timeline`: the whole timeline in UTC with actors, split into messages of at most
/// `max_chars` characters each; a line longer than that is cut (`page`: see [`cut`]).
pub fn timeline(
    incident: &Incident,
    events: &[crate::core::TimelineEvent],
    max_chars: usize,
    page: Option<&str>,
) -> Vec<String> {
    let mut lines = vec![format!(
        "*Timeline of {} · {} · {}* ({} events, times in UTC)",
        incident.key(),
        incident.severity,
        escape(&incident.title),
        events.len()
    )];
    for e in events {
        let actor = e
            .actor
            .as_deref()
            .map(|a| format!("{} ", user(a)))
            .unwrap_or_else(|| "warroom ".into());
        lines.push(format!(
            "`{}` {}· {}",
            e.at.format("%Y-%m-%d %H:%M:%S"),
            actor,
            event_text(&e.detail)
        ));
    }
    let mut chunks: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in lines {
        let line = cut(&line, max_chars.saturating_sub(1), page);
        if !current.is_empty() && current.chars().count() + line.chars().count() + 1 > max_chars {
            chunks.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&line);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// The nudge when nobody posted a status update for a while.
pub fn status_nudge(incident: &Incident, quiet: chrono::Duration) -> SlackMessageContent {
    let quiet = human_duration(std::time::Duration::from_secs(
        quiet.num_seconds().max(0) as u64 / 60 * 60,
    ));
    plain(format!(
        ":alarm_clock: No status update on {} for {quiet}. Stakeholders are waiting: \
         post one with `/incident status &lt;what we know, what we do next&gt;`.",
        incident.key()
    ))
}

/// The warning that the response target is near or missed.
pub fn target_warning(incident: &Incident, breached: bool) -> SlackMessageContent {
    let target = (incident.target_at - incident.declared_at)
        .to_std()
        .unwrap_or_default();
    let text = if breached {
        format!(
            ":rotating_light: {} missed its {} response target of {} (due {}). \
             Escalate, or change the severity if it no longer fits.",
            incident.key(),
            incident.severity,
            human_duration(target),
            clock(incident.target_at)
        )
    } else {
        format!(
            ":hourglass: 75% of {}'s {} response target of {} has passed: due {}.",
            incident.key(),
            incident.severity,
            human_duration(target),
            clock(incident.target_at)
        )
    };
    plain(text)
}

/// A communication warroom could not send itself, posted for a human to paste.
pub fn draft(label: &str, reason: &str, title: &str, body: &str) -> SlackMessageContent {
    let body: String = body.chars().take(3500).collect();
    plain(format!(
        ":memo: *{label} — draft to paste* ({})\n*{}*\n```{}```",
        escape(reason),
        escape(title),
        escape(&body).replace("```", "ˋˋˋ")
    ))
}

/// The reminder that the post-incident review is due.
pub fn review_reminder(incident: &Incident) -> SlackMessageContent {
    plain(format!(
        ":spiral_note_pad: {} was resolved {}: its post-incident review is due. Hold the review, \
         record the action items, then `/incident close`.",
        incident.key(),
        incident
            .resolved_at
            .map(|t| format!("on {}", date_time(t)))
            .unwrap_or_default()
    ))
}

/// Action id of the Resolve button offered when a fix held.
pub const ACTION_RESOLVE: &str = "resolve_prompt";

/// The end of a monitoring window: healthy (offer to resolve) or not.
pub fn monitoring_summary(
    incident: &Incident,
    version: &str,
    window: std::time::Duration,
    failures: usize,
) -> SlackMessageContent {
    let window = human_duration(window);
    if failures == 0 {
        let text = format!(
            ":white_check_mark: The fix held: healthy for {window} since {}, 0 failed checks. Ready to resolve {}? Press Resolve or type `/incident resolve`.",
            escape(version),
            incident.key()
        );
        text_with_button(
            text,
            primary_button("Resolve", ACTION_RESOLVE, incident.number.to_string()),
        )
    } else {
        plain(format!(
            ":warning: {failures} failed health check(s) in the {window} after {} reached production: the fix may not have held. Consider rollback.",
            escape(version)
        ))
    }
}

/// An essential job that keeps failing: said in the announce channel and to the declarer.
pub fn delivery_stuck(
    incident: &Incident,
    kind: &str,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    error: &str,
) -> SlackMessageContent {
    let what = match kind {
        "create_war_room" => "create the war room",
        "invite_to_war_room" => "invite responders to the war room",
        "post_kickoff" => "post the kickoff message",
        "update_kickoff" => "post or update the kickoff message",
        "page" => "deliver a page",
        _ => "carry out a step",
    };
    let failing = human_duration(
        (now - since)
            .to_std()
            .map(|d| std::time::Duration::from_secs(d.as_secs() / 60 * 60))
            .unwrap_or_default(),
    );
    SlackMessageContent::new().with_text(format!(
        ":warning: {} ({}): warroom has failed to {what} for {failing} (since {}) and keeps \
         retrying. Last error: {}. Check the server's logs and its Slack and paging settings.",
        incident.key(),
        incident.severity,
        clock(since),
        escape(error)
    ))
}

/// A direct page to one person (outside the escalation ladder).
pub fn direct_page(incident: &Incident, reason: &str) -> SlackMessageContent {
    plain(format!(
        ":rotating_light: {} ({}): {} — war room {}",
        incident.key(),
        incident.severity,
        core_text(reason),
        war_room_link(incident)
    ))
}

/// Callback id of the declaration form.
pub const OPEN_MODAL: &str = "open_incident";

/// The declaration form for bare `/incident open`; `channel` is where it was asked for.
pub fn open_modal(channel: &str) -> SlackView {
    let options: Vec<serde_json::Value> = crate::core::Severity::ALL
        .iter()
        .map(|s| {
            serde_json::json!({
                "text": { "type": "plain_text", "text": format!("{s} — {}", s.meaning()) },
                "value": s.as_str()
            })
        })
        .collect();
    let view = serde_json::json!({
        "type": "modal",
        "callback_id": OPEN_MODAL,
        "private_metadata": channel,
        "title": { "type": "plain_text", "text": "Declare an incident" },
        "submit": { "type": "plain_text", "text": "Declare" },
        "close": { "type": "plain_text", "text": "Cancel" },
        "blocks": [
            {
                "type": "input", "block_id": "title",
                "label": { "type": "plain_text", "text": "Title" },
                "element": {
                    "type": "plain_text_input", "action_id": "title", "max_length": 200,
                    "placeholder": { "type": "plain_text", "text": "Checkout is down" }
                }
            },
            {
                "type": "input", "block_id": "severity",
                "label": { "type": "plain_text", "text": "Severity" },
                "element": { "type": "static_select", "action_id": "severity", "options": options }
            },
            {
                "type": "input", "block_id": "description", "optional": true,
                "label": { "type": "plain_text", "text": "What is happening?" },
                "element": {
                    "type": "plain_text_input", "action_id": "description", "multiline": true,
                    "max_length": 3000
                }
            }
        ]
    });
    match serde_json::from_value(view) {
        Ok(view) => fit_view(view),
        Err(e) => unreachable!("the declaration form is a valid view: {e}"),
    }
}

/// Callback id of the resolution form.
pub const RESOLVE_MODAL: &str = "resolve_incident";

/// The resolution form for bare `/incident resolve`.
pub fn resolve_modal(incident: &Incident) -> SlackView {
    let text = |block: &str, label: &str, multiline: bool, optional: bool| {
        serde_json::json!({
            "type": "input", "block_id": block, "optional": optional,
            "label": { "type": "plain_text", "text": label },
            "element": { "type": "plain_text_input", "action_id": block, "multiline": multiline }
        })
    };
    let title = format!("Resolve {}", incident.key());
    let view = serde_json::json!({
        "type": "modal",
        "callback_id": RESOLVE_MODAL,
        "private_metadata": incident.number.to_string(),
        "title": { "type": "plain_text", "text": title },
        "submit": { "type": "plain_text", "text": "Resolve" },
        "close": { "type": "plain_text", "text": "Cancel" },
        "blocks": [
            text("summary", "Summary", true, false),
            text("impact", "Impact (who was affected, how)", true, true),
            text("root_cause", "Root cause", true, true),
            text("fix", "Fix", true, true),
            {
                "type": "input", "block_id": "pr", "optional": true,
                "label": { "type": "plain_text", "text": "Pull request" },
                "element": { "type": "url_text_input", "action_id": "pr" }
            },
            text("follow_ups", "Follow-ups (one per line)", true, true),
            {
                "type": "input", "block_id": "customer_facing",
                "label": { "type": "plain_text", "text": "Customer-facing?" },
                "element": {
                    "type": "radio_buttons", "action_id": "customer_facing",
                    "initial_option": if incident.severity.is_major() {
                        serde_json::json!({ "text": { "type": "plain_text", "text": "Yes: update the status page and email customers" }, "value": "yes" })
                    } else {
                        serde_json::json!({ "text": { "type": "plain_text", "text": "No: internal only" }, "value": "no" })
                    },
                    "options": [
                        { "text": { "type": "plain_text", "text": "Yes: update the status page and email customers" }, "value": "yes" },
                        { "text": { "type": "plain_text", "text": "No: internal only" }, "value": "no" }
                    ]
                }
            }
        ]
    });
    match serde_json::from_value(view) {
        Ok(view) => fit_view(view),
        Err(e) => unreachable!("the resolution form is a valid view: {e}"),
    }
}

/// The answer to a war-room command typed elsewhere.
pub fn not_a_war_room(command: &str) -> String {
    format!(
        ":warning: That command works in an incident's war room (a `#inc-…` channel). \
         `{command} list` shows the open incidents and their war rooms."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_mentions() {
        assert_eq!(
            escape("<!channel> & <@U1>"),
            "&lt;!channel&gt; &amp; &lt;@U1&gt;"
        );
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn core_text_mentions_whom_warroom_names_and_escapes_the_rest() {
        use crate::core::mention;
        assert_eq!(
            core_text(&format!("{} assigned <!here> & @team", mention("U0BOB"))),
            "<@U0BOB> assigned &lt;!here&gt; &amp; @team"
        );
        assert_eq!(core_text("mail a@b.c"), "mail a@b.c");
        // Typed ids, bare or in Slack's syntax, stay text (old stored events included).
        assert_eq!(
            core_text("ping @U0EVE <@U0EVE> <@U0EVE|eve>"),
            "ping @U0EVE &lt;@U0EVE&gt; &lt;@U0EVE|eve&gt;"
        );
        // A stray mark is dropped, whatever follows it.
        assert_eq!(core_text("a\u{2063}b \u{2063}@ c\u{2063}"), "ab @ c");
        assert_eq!(
            core_text(&format!(
                "{}: “{}”",
                mention("U0BOB"),
                crate::core::inert("\u{2063}@U0EVE")
            )),
            "<@U0BOB>: “@U0EVE”"
        );
    }

    fn oversized_incident() -> Incident {
        let policy = crate::core::SeverityPolicy {
            target: std::time::Duration::from_secs(3600),
            checklist: (1..=60)
                .map(|i| format!("step {i} & <{}>", "x".repeat(40)))
                .collect(),
            escalation: Vec::new(),
            status_every: None,
            review_after: None,
        };
        let request = crate::core::OpenIncident {
            number: 7,
            title: "db & <down> ".repeat(16),
            description: "a & b <c> ".repeat(300),
            severity: crate::core::Severity::P0,
            platform: crate::core::Platform::Slack,
            declared_by: "U0ALICE".into(),
            declared_in: "C0GENERAL".into(),
            responders: Vec::new(),
            reply_to: None,
        };
        match crate::core::open(request, &policy, chrono::Utc::now()) {
            Ok(opened) => opened.incident,
            Err(e) => unreachable!("a valid incident: {e}"),
        }
    }

    /// [`oversized_incident`], resolved with a summary too long for one section.
    fn resolved_oversized_incident() -> Incident {
        let mut incident = oversized_incident();
        incident.resolved_at = Some(incident.declared_at);
        incident.resolution = Some(crate::core::Resolution {
            summary: "fixed & <verified> ".repeat(160),
            resolved_by: "U0BOB".into(),
            ..Default::default()
        });
        incident
    }

    fn valid(content: &SlackMessageContent) -> serde_json::Value {
        let value = serde_json::to_value(content).unwrap_or_default();
        assert_eq!(limits::check_message(&value), Ok(()), "{value}");
        value
    }

    const PAGE: &str = "https://warroom.test/incidents/7?token=0123abcd";
    const LINK: &str =
        "… <https://warroom.test/incidents/7?token=0123abcd|more on the incident page>";

    #[test]
    fn every_render_fits_slack_limits() {
        let incident = resolved_oversized_incident();
        let long = "a & <b> ".repeat(1000);
        for page in [None, Some(PAGE)] {
            let kickoff = valid(&kickoff(&incident, page));
            let blocks = kickoff["blocks"].as_array().cloned().unwrap_or_default();
            let text = kickoff["blocks"].to_string();
            assert!(text.contains("step 60 "), "every item is listed");
            assert!(text.contains("checklist-30"), "items keep their buttons");
            assert!(text.contains("*Resolved* by <@U0BOB>"));
            assert!(blocks.len() <= limits::MESSAGE_BLOCKS);
            valid(&announcement(&incident, page));
            valid(&status_update(&incident, &long, "U0BOB", page));
            valid(&status_announcement(&incident, &long, "U0BOB", page));
        }
        valid(&page_dm(&incident, 0));
        valid(&draft("Status page", &long, &long, &long));
        valid(&direct_page(&incident, &long));
        valid(&monitoring_summary(
            &incident,
            &long,
            std::time::Duration::from_secs(60),
            0,
        ));
        let topic = topic(&incident);
        assert_eq!(limits::check_topic(&topic), Ok(()));
        assert!(topic.ends_with('…'));
        for view in [open_modal("C1"), resolve_modal(&incident)] {
            let view = serde_json::to_value(view).unwrap_or_default();
            assert_eq!(limits::check_view(&view), Ok(()), "{view}");
        }
    }

    /// The texts of a message: `text` and every section's.
    fn texts(value: &serde_json::Value) -> Vec<String> {
        let blocks = value["blocks"].as_array().cloned().unwrap_or_default();
        std::iter::once(value["text"].clone())
            .chain(blocks.iter().map(|b| b["text"]["text"].clone()))
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect()
    }

    #[test]
    fn cut_user_text_links_to_the_incident_page() {
        let incident = resolved_oversized_incident();
        let long = "a & <b> ".repeat(1000);
        let kickoff = texts(&valid(&kickoff(&incident, Some(PAGE))));
        let cut_ones: Vec<&String> = kickoff.iter().filter(|t| t.contains('…')).collect();
        assert!(
            cut_ones.iter().any(|t| t.contains("a &amp; b &lt;c&gt;")),
            "the description is cut: {kickoff:#?}"
        );
        assert!(
            cut_ones.iter().any(|t| t.contains("*Resolved* by")),
            "the resolution is cut: {kickoff:#?}"
        );
        for text in cut_ones {
            assert!(text.ends_with(LINK), "{text}");
            assert!(text.chars().count() <= limits::SECTION_TEXT);
        }
        let update = valid(&status_update(&incident, &long, "U0BOB", Some(PAGE)));
        let update = update["text"].as_str().unwrap_or_default();
        assert!(update.ends_with(LINK), "{update}");
        let n = update.chars().count();
        assert!(
            n <= limits::TEXT_ADVISED && n > limits::TEXT_ADVISED - 10,
            "{n}"
        );
        let announced = valid(&status_announcement(&incident, &long, "U0BOB", Some(PAGE)));
        let announced = announced["text"].as_str().unwrap_or_default();
        let (quoted, footer) = announced.rsplit_once('\n').unwrap_or_default();
        assert!(quoted.ends_with(LINK), "{quoted}");
        assert!(footer.starts_with("_from <@U0BOB>"), "{footer}");
        assert!(announced.chars().count() <= limits::TEXT_ADVISED);
        // Without a public URL: the ellipsis alone.
        let plain = valid(&status_update(&incident, &long, "U0BOB", None));
        let plain = plain["text"].as_str().unwrap_or_default();
        assert!(
            plain.ends_with("&lt;b&gt;…") || plain.ends_with('…'),
            "{plain}"
        );
        assert!(!plain.contains("incident page"));
        // A timeline line too long for one message.
        let event = crate::core::TimelineEvent::new(
            incident.declared_at,
            Some("U0BOB"),
            crate::core::TimelineKind::Note,
            long.clone(),
        );
        let parts = timeline(&incident, &[event], 3500, Some(PAGE));
        let line = parts.last().cloned().unwrap_or_default();
        assert!(
            line.ends_with(LINK) && line.chars().count() < 3500,
            "{line}"
        );
        // Short text is never cut.
        let short = status_update(&incident, "all good", "U0BOB", Some(PAGE));
        assert!(!texts(&valid(&short)).concat().contains("incident page"));
    }

    #[test]
    fn the_link_fits_within_the_limit_and_breaks_no_markup() {
        for max in [60, 80, 120, 200] {
            let text = cut(&"x &amp; <@U1> y ".repeat(50), max, Some(PAGE));
            assert!(text.chars().count() <= max, "{max}: {text}");
            assert_eq!(
                text.matches('<').count(),
                text.matches('>').count(),
                "{text}"
            );
        }
        // A page address too long to leave room for the text: the ellipsis alone.
        assert_eq!(cut("abcdefghij", 8, Some(PAGE)), "abcdefg…");
        assert_eq!(
            cut("abcdefghijklmnop", 10, None),
            truncate("abcdefghijklmnop", 10)
        );
        assert_eq!(
            link_target("https://x.test/a?b=1&c=<2>|"),
            "https://x.test/a?b=1&amp;c=%3C2%3E%7C"
        );
    }

    #[test]
    fn documents_keep_to_slacks_hard_limit() {
        let short =
            serde_json::to_value(document("*hi* &amp; bye", Some(PAGE))).unwrap_or_default();
        assert_eq!(short["text"], "*hi* &amp; bye");
        let long = "&amp;".repeat(10_000);
        let cut = valid(&document(&long, None));
        let text = cut["text"].as_str().unwrap_or_default();
        assert!(text.chars().count() <= limits::TEXT && text.ends_with("&amp;…"));
        let linked = valid(&document(&long, Some(PAGE)));
        let text = linked["text"].as_str().unwrap_or_default();
        assert!(text.chars().count() <= limits::TEXT && text.ends_with(&format!("&amp;{LINK}")));
        let posted = valid(&war_room_text(&format!(
            "{} & @U0EVE",
            crate::core::mention("U1")
        )));
        assert_eq!(posted["text"], "<@U1> &amp; @U0EVE");
    }

    #[test]
    fn mentions_cannot_be_smuggled_through_ids() {
        assert_eq!(user("U1><!channel"), "<@U1!channel>");
        assert_eq!(channel("C1", "<x>"), "<#C1|&lt;x&gt;>");
    }

    #[test]
    fn people_become_mentions_and_typed_text_stays_text() {
        let detail = crate::core::TimelineDetail::new()
            .person("U0BOB")
            .words(" pinned “")
            .typed("<!channel> @U0EVE <@U0EVE> \u{2063}@U0EVE")
            .words("” for ")
            .person("deploy-bot")
            .words(" & ")
            .code("crasher")
            .with_signal(crate::core::Signal::Failing);
        assert_eq!(
            event_text(&detail),
            ":warning: <@U0BOB> pinned “&lt;!channel&gt; @U0EVE &lt;@U0EVE&gt; @U0EVE” for \
             @deploy-bot &amp; `crasher`"
        );
    }

    #[test]
    fn marked_text_renders_like_the_detail() {
        let detail = crate::core::TimelineDetail::new()
            .person("U0BOB")
            .words(" & ")
            .typed("<@U0EVE> \u{2063}@U0EVE")
            .code("x")
            .with_signal(crate::core::Signal::FixDeployed);
        assert_eq!(core_text(&event_marked(&detail)), event_text(&detail));
    }

    #[test]
    fn legacy_rows_render_as_they_did() {
        let stored = format!(":rocket: Fix deployed: {} & co", crate::core::mention("U1"));
        assert_eq!(
            event_text(&crate::store::legacy_timeline::detail_from_text(&stored)),
            core_text(&stored)
        );
    }
}
