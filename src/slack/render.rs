//! What warroom says on Slack: Block Kit and mrkdwn, built from the incident as stored.
//! Every piece of user text goes through [`escape`], so a title of `<!channel>` notifies nobody.

use chrono::{DateTime, Utc};
use slack_morphism::prelude::*;

use crate::core::{human_duration, Incident, Role, Status};

/// Action ids of the kickoff message's buttons.
pub const ACTION_CHECKLIST: &str = "checklist_toggle";
pub const ACTION_ACKNOWLEDGE: &str = "acknowledge";

/// Escapes user text for mrkdwn: `&`, `<` and `>` (Slack's three control characters).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
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
        None => format!("#{}", incident.channel_name),
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
    text.chars().take(250).collect()
}

/// The kickoff message: summary, roles, checklist with a button per item, Acknowledge.
pub fn kickoff(incident: &Incident) -> SlackMessageContent {
    let mut blocks: Vec<SlackBlock> = Vec::new();
    let headline = format!(
        "{} *{} · {} · {}*",
        severity_emoji(incident),
        incident.key(),
        incident.severity,
        escape(&incident.title)
    );
    blocks.push(
        SlackSectionBlock::new()
            .with_text(md!(headline.clone()))
            .into(),
    );
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
    blocks.push(SlackSectionBlock::new().with_text(md!(summary)).into());

    let roles = Role::ALL
        .iter()
        .map(|role| match incident.roles.get(role) {
            Some(u) => format!("*{}:* {}", role.title(), user(u)),
            None => format!("*{}:* _unassigned_", role.title()),
        })
        .collect::<Vec<_>>()
        .join("\n");
    blocks.push(SlackSectionBlock::new().with_text(md!(roles)).into());
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
    for item in &incident.checklist {
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
                .with_text(md!(text))
                .with_accessory(button.into())
                .into(),
        );
    }
    blocks.push(SlackDividerBlock::new().into());
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
            let ack = SlackBlockButtonElement::new(pt!("Acknowledge"))
                .with_action_id(ACTION_ACKNOWLEDGE.into())
                .with_value(incident.number.to_string())
                .with_style(SlackBlockButtonStyle::Primary);
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
    SlackMessageContent::new()
        .with_text(format!(
            "{} {} {}: {}",
            incident.key(),
            incident.severity,
            incident.status,
            escape(&incident.title)
        ))
        .with_blocks(blocks)
}

/// The announcement of a new incident, for the announce channel.
pub fn announcement(incident: &Incident) -> SlackMessageContent {
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
    SlackMessageContent::new()
        .with_text(text.clone())
        .with_blocks(vec![SlackSectionBlock::new().with_text(md!(text)).into()])
}

/// The reply to the person who declared: where to go.
pub fn opened_reply(incident: &Incident) -> SlackMessageContent {
    SlackMessageContent::new().with_text(format!(
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
        incident.channel_name
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
    let ack = SlackBlockButtonElement::new(pt!("Acknowledge"))
        .with_action_id(ACTION_ACKNOWLEDGE.into())
        .with_value(incident.number.to_string())
        .with_style(SlackBlockButtonStyle::Primary);
    SlackMessageContent::new()
        .with_text(text.clone())
        .with_blocks(vec![
            SlackSectionBlock::new().with_text(md!(text)).into(),
            SlackActionsBlock::new(vec![ack.into()]).into(),
        ])
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
         `{c} open <P0-P3> <title>` (or `declare`): declare an incident and open its war room\n\
         `{c} list`: open incidents with severity, age, status and commander\n\
         `{c} help`: this text\n\
         In a war room: `status <text>`, `note <text>`, `severity <P0-P3>`, \
         `assign <commander|comms|ops|scribe> <@user>`, `ack`, `state <identified|monitoring>`, \
         `hotfix <url> [version]`, `resolve [summary]`, `timeline`.\n\
         Severities: P0 production down / security (2h) · P1 critical feature broken (4h) · \
         P2 partly broken, workaround exists (24h) · P3 business-critical, not broken (48h).",
        c = command
    )
}

/// The short usage error for a command that was not understood.
pub fn usage_error(command: &str, problem: &str) -> String {
    format!(
        ":warning: {}\nUsage: `{c} open <P0-P3> <title>` · `{c} list` · `{c} help`",
        escape(problem),
        c = command
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
    fn mentions_cannot_be_smuggled_through_ids() {
        assert_eq!(user("U1><!channel"), "<@U1!channel>");
        assert_eq!(channel("C1", "<x>"), "<#C1|&lt;x&gt;>");
    }
}
