//! The small sub-commands: `check-config` and `manifest`.

use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use crate::config::{Config, Environment};

/// `warroom check-config`: loads the configuration and the environment, prints every problem
/// with its key, and a summary when all is well.
pub fn check_config(path: Option<&Path>, env: &[(String, String)]) -> ExitCode {
    let mut failed = false;
    match Config::load(path, env) {
        Ok((config, warnings)) => {
            let source = config
                .source
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "built-in defaults (no warroom.toml)".into());
            println!("configuration: {source}");
            for (sev, s) in &config.severities {
                println!(
                    "  {sev}: target {}, {} checklist items, escalation: {}",
                    humantime::format_duration(s.target),
                    s.checklist.len(),
                    if s.escalation.is_empty() {
                        "none".to_string()
                    } else {
                        s.escalation
                            .iter()
                            .map(|st| {
                                format!(
                                    "{} → {}",
                                    humantime::format_duration(st.after),
                                    st.page.join("+")
                                )
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                );
            }
            println!("  contacts: {}", config.contacts.len());
            for w in warnings {
                println!("warning: {w}");
            }
        }
        Err(e) => {
            eprintln!("{e}");
            failed = true;
        }
    }
    let lookup = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if let Ok((config, _)) = Config::load(path, env) {
        match crate::templates::Templates::load(config.templates.dir.as_deref()) {
            Ok(templates) => match templates.check() {
                Ok(()) => println!(
                    "templates: {} render with sample data",
                    crate::templates::Template::ALL
                        .iter()
                        .map(|t| t.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Err(errors) => {
                    for e in errors {
                        eprintln!("templates: {e}");
                    }
                    failed = true;
                }
            },
            Err(e) => {
                eprintln!("templates: {e}");
                failed = true;
            }
        }
    }
    if let (Ok((config, _)), Ok(paging)) = (
        Config::load(path, env),
        crate::paging::routes::PagingSettings::from_lookup(lookup),
    ) {
        for w in unusable_route_warnings(&config, &paging) {
            println!("warning: {w}");
        }
    }
    for (name, result) in [
        (
            "paging",
            crate::paging::routes::PagingSettings::from_lookup(lookup).map(|_| ()),
        ),
        (
            "status page",
            crate::publish::StatuspageSettings::from_lookup(lookup).map(|_| ()),
        ),
    ] {
        if let Err(e) = result {
            eprintln!("{name}: {e}");
            failed = true;
        }
    }
    match Environment::from_lookup(lookup) {
        Ok(e) => {
            if e.slack_signing_secret.is_none() || e.slack_bot_token.is_none() {
                println!(
                    "warning: SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN are not both set: `serve` will refuse to start"
                );
            }
        }
        Err(e) => {
            eprintln!("{e}");
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        println!("configuration OK");
        ExitCode::SUCCESS
    }
}

/// Contacts paged by email or SMS when that route is not set up in the environment.
fn unusable_route_warnings(
    config: &Config,
    paging: &crate::paging::routes::PagingSettings,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, contact) in &config.contacts {
        if contact.email.is_some() && paging.smtp.is_none() {
            out.push(format!(
                "contacts.{name}.email is set but SMTP_HOST and SMTP_FROM are not: {name} is not paged by email"
            ));
        }
        if contact.phone.is_some() && paging.twilio.is_none() {
            out.push(format!(
                "contacts.{name}.phone is set but Twilio (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM) is not: {name} is not paged by SMS"
            ));
        }
    }
    out
}

/// `warroom manifest --url <base>`: a Slack app manifest (JSON) for "Create app from manifest".
pub fn manifest(base_url: &str) -> Result<String, String> {
    let base = url::Url::parse(base_url).map_err(|e| format!("`{base_url}` is not a URL: {e}"))?;
    if base.scheme() != "https" && base.scheme() != "http" {
        return Err(format!("`{base_url}` must be an https:// URL"));
    }
    let base = base_url.trim_end_matches('/');
    let manifest = json!({
        "display_information": {
            "name": "warroom",
            "description": "Incident response: war rooms, timelines, checklists, paging",
            "background_color": "#b71c1c"
        },
        "features": {
            "bot_user": { "display_name": "warroom", "always_online": true },
            "slash_commands": [{
                "command": "/incident",
                "url": format!("{base}/slack/commands"),
                "description": "Declare and run incidents",
                "usage_hint": "open P0 checkout is down | list | help",
                "should_escape": false
            }]
        },
        "oauth_config": {
            "scopes": {
                "bot": [
                    "channels:manage", "channels:read", "channels:history", "channels:join",
                    "groups:read", "groups:history", "chat:write", "chat:write.public",
                    "commands", "im:write", "im:history", "reactions:read", "users:read",
                    "pins:write", "bookmarks:write", "files:write"
                ]
            }
        },
        "settings": {
            "event_subscriptions": {
                "request_url": format!("{base}/slack/events"),
                "bot_events": ["reaction_added", "reaction_removed", "message.channels"]
            },
            "interactivity": {
                "is_enabled": true,
                "request_url": format!("{base}/slack/interactions")
            },
            "org_deploy_enabled": false,
            "socket_mode_enabled": false,
            "token_rotation_enabled": false
        }
    });
    serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())
}

/// `warroom preview <template> [--incident N]`: renders a template with sample data, or with a
/// stored incident from `DATABASE_URL`.
pub async fn preview(
    path: Option<&Path>,
    env: &[(String, String)],
    template: &str,
    incident: Option<&str>,
) -> anyhow::Result<String> {
    use crate::templates::{Template, TemplateContext, Templates};
    let template = Template::parse(template).ok_or_else(|| {
        anyhow::anyhow!(
            "no template `{template}`: use {}",
            Template::ALL
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let (config, _) = Config::load(path, env).map_err(|e| anyhow::anyhow!("{e}"))?;
    let templates = Templates::load(config.templates.dir.as_deref())?;
    let context = match incident {
        None => TemplateContext::sample(),
        Some(raw) => {
            let number: i64 = raw
                .trim_start_matches("INC-")
                .parse()
                .map_err(|_| anyhow::anyhow!("`{raw}` is not an incident number"))?;
            let lookup = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let e = Environment::from_lookup(lookup).map_err(|e| anyhow::anyhow!("{e}"))?;
            let store = crate::store::Store::connect(&e.database_url).await?;
            store.migrate().await?;
            let mut conn = store.acquire().await?;
            let found = crate::store::get_incident(&mut conn, number)
                .await?
                .ok_or_else(|| anyhow::anyhow!("INC-{number} does not exist"))?;
            let timeline = crate::store::timeline(&mut conn, number).await?;
            TemplateContext::build(
                &found,
                &timeline,
                crate::templates::Links::default(),
                chrono::Utc::now(),
            )
        }
    };
    Ok(templates.render(template, &context)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_about_email_and_sms_contacts_without_a_provider() {
        let config = Config::from_toml(
            r#"
[contacts.manager]
email = "manager@acme.test"
phone = "+15550001111"
"#,
        )
        .unwrap();
        let none = crate::paging::routes::PagingSettings::default();
        let warnings = unusable_route_warnings(&config, &none);
        assert_eq!(warnings.len(), 2, "{warnings:#?}");
        assert!(
            warnings[0].contains("contacts.manager.email"),
            "{warnings:#?}"
        );
        assert!(
            warnings[1].contains("contacts.manager.phone"),
            "{warnings:#?}"
        );
        let both = crate::paging::routes::PagingSettings::from_lookup(|k| {
            [
                ("SMTP_HOST", "smtp.acme.test"),
                ("SMTP_FROM", "warroom@acme.test"),
                ("TWILIO_ACCOUNT_SID", "AC1"),
                ("TWILIO_AUTH_TOKEN", "t"),
                ("TWILIO_FROM", "+15550000000"),
            ]
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
        })
        .unwrap();
        assert!(unusable_route_warnings(&config, &both).is_empty());
    }

    #[test]
    fn manifest_points_slack_at_our_endpoints() {
        let text = manifest("https://bot.example.com/").unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["features"]["slash_commands"][0]["url"],
            "https://bot.example.com/slack/commands"
        );
        assert_eq!(v["features"]["slash_commands"][0]["command"], "/incident");
        assert_eq!(
            v["settings"]["interactivity"]["request_url"],
            "https://bot.example.com/slack/interactions"
        );
        assert!(text.contains("https://bot.example.com/slack/events"));
        assert!(manifest("not a url").is_err());
    }
}
