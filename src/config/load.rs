//! Loading the configuration: finding and reading the file, merging the environment's
//! overrides (`WARROOM_<SECTION>__<KEY>`), and the process settings that come only from the
//! environment ([`Environment`]).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use toml::{Table, Value};

use super::types::Config;
use super::validate::{ConfigError, Problem, Warning};

/// The environment variable naming the config file.
pub const CONFIG_ENV: &str = "WARROOM_CONFIG";
const OVERRIDE_PREFIX: &str = "WARROOM_";

/// Process settings that come only from the environment (SPEC §7).
#[derive(Debug, Clone)]
pub struct Environment {
    pub bind: SocketAddr,
    pub database_url: String,
    pub slack_api_url: String,
    pub slack_signing_secret: Option<SecretString>,
    pub slack_bot_token: Option<SecretString>,
    pub slack_app_token: Option<SecretString>,
    pub web_token: Option<SecretString>,
    pub pagerduty_webhook_secret: Option<SecretString>,
    /// `WARROOM_PUBLIC_URL`: where users reach this server (links in messages).
    pub public_url: Option<String>,
}

impl Environment {
    pub const DEFAULT_BIND: &'static str = "0.0.0.0:3000";
    pub const DEFAULT_DATABASE_URL: &'static str = "sqlite://warroom.db";
    pub const DEFAULT_SLACK_API_URL: &'static str = "https://slack.com/api/";

    /// Reads the environment through `get` (tests pass a map; `main` passes `std::env::var`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Environment, ConfigError> {
        let mut problems = Vec::new();
        let non_empty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let bind_raw = non_empty("WARROOM_BIND").unwrap_or_else(|| Self::DEFAULT_BIND.into());
        let bind = match bind_raw.parse::<SocketAddr>() {
            Ok(addr) => addr,
            Err(e) => {
                problems.push(Problem {
                    key: "WARROOM_BIND".into(),
                    message: format!("`{bind_raw}` is not host:port ({e})"),
                });
                ([0, 0, 0, 0], 3000).into()
            }
        };
        let database_url =
            non_empty("DATABASE_URL").unwrap_or_else(|| Self::DEFAULT_DATABASE_URL.into());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            problems.push(Problem {
                key: "DATABASE_URL".into(),
                message: "must start with sqlite:// or postgres://".into(),
            });
        }
        let mut slack_api_url =
            non_empty("SLACK_API_URL").unwrap_or_else(|| Self::DEFAULT_SLACK_API_URL.into());
        if url::Url::parse(&slack_api_url).is_err() {
            problems.push(Problem {
                key: "SLACK_API_URL".into(),
                message: format!("`{slack_api_url}` is not a URL"),
            });
        }
        if !slack_api_url.ends_with('/') {
            slack_api_url.push('/');
        }
        let secret = |k: &str| non_empty(k).map(SecretString::from);
        let public_url = non_empty("WARROOM_PUBLIC_URL");
        if let Some(u) = &public_url {
            if url::Url::parse(u).is_err() {
                problems.push(Problem {
                    key: "WARROOM_PUBLIC_URL".into(),
                    message: format!("`{u}` is not a URL"),
                });
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError {
                file: "the environment".into(),
                problems,
            });
        }
        Ok(Environment {
            bind,
            database_url,
            slack_api_url,
            slack_signing_secret: secret("SLACK_SIGNING_SECRET"),
            slack_bot_token: secret("SLACK_BOT_TOKEN"),
            slack_app_token: secret("SLACK_APP_TOKEN"),
            web_token: secret("WARROOM_WEB_TOKEN"),
            pagerduty_webhook_secret: secret("PAGERDUTY_WEBHOOK_SECRET"),
            public_url,
        })
    }
}

impl Config {
    /// Finds and loads the configuration: `path` if given, else `$WARROOM_CONFIG`, else
    /// `./warroom.toml` if it exists, else the defaults. `env` supplies overrides.
    pub fn load(
        path: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<(Config, Vec<Warning>), ConfigError> {
        let from_env = env
            .iter()
            .find(|(k, v)| k == CONFIG_ENV && !v.trim().is_empty())
            .map(|(_, v)| PathBuf::from(v));
        let chosen = path.map(Path::to_path_buf).or(from_env).or_else(|| {
            let local = PathBuf::from("warroom.toml");
            local.exists().then_some(local)
        });
        let (mut table, file_name) = match &chosen {
            Some(p) => {
                let name = p.display().to_string();
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError {
                    file: name.clone(),
                    problems: vec![Problem {
                        key: "(file)".into(),
                        message: format!("cannot read it: {e}"),
                    }],
                })?;
                let table = text.parse::<Table>().map_err(|e| ConfigError {
                    file: name.clone(),
                    problems: vec![Problem {
                        key: "(syntax)".into(),
                        message: e.to_string().trim().replace('\n', " "),
                    }],
                })?;
                (table, name)
            }
            None => (Table::new(), "the built-in defaults".to_string()),
        };
        let overridden = apply_env_overrides(&mut table, env).map_err(|problems| ConfigError {
            file: file_name.clone(),
            problems,
        })?;
        let config = Config::from_table(chosen.clone(), table, &overridden).map_err(|mut e| {
            e.file = file_name.clone();
            e
        })?;
        let warnings = config.warnings();
        Ok((config, warnings))
    }

    /// Parses from TOML text (used by tests and `check-config`).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let table = text.parse::<Table>().map_err(|e| ConfigError {
            file: "(inline)".into(),
            problems: vec![Problem {
                key: "(syntax)".into(),
                message: e.to_string(),
            }],
        })?;
        Config::from_table(None, table, &BTreeSet::new())
    }
}

/// Merges `WARROOM_A__B__C=value` variables into the table; returns the dotted keys set.
fn apply_env_overrides(
    table: &mut Table,
    env: &[(String, String)],
) -> Result<BTreeSet<String>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut set = BTreeSet::new();
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix(OVERRIDE_PREFIX) else {
            continue;
        };
        if !rest.contains("__") {
            continue;
        }
        let mut path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        if path.iter().any(String::is_empty) {
            problems.push(Problem {
                key: name.clone(),
                message: "empty key segment (use single words joined by __)".into(),
            });
            continue;
        }
        if path[0] == "severity" && path.len() > 1 {
            path[1] = path[1].to_ascii_uppercase();
        }
        let value = format!("v = {raw}")
            .parse::<Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| Value::String(raw.clone()));
        match insert_path(table, &path, value) {
            Ok(()) => {
                set.insert(path.join("."));
            }
            Err(message) => problems.push(Problem {
                key: name.clone(),
                message,
            }),
        }
    }
    if problems.is_empty() {
        Ok(set)
    } else {
        Err(problems)
    }
}

fn insert_path(table: &mut Table, path: &[String], value: Value) -> Result<(), String> {
    match path {
        [] => Ok(()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => match table
            .entry(first.clone())
            .or_insert_with(|| Value::Table(Table::new()))
        {
            Value::Table(t) => insert_path(t, rest, value),
            _ => Err(format!("`{first}` is not a table in the configuration")),
        },
    }
}
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::core::Severity;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_overrides_any_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warroom.toml");
        std::fs::write(&path, "[slack]\nannounce_channel = \"C1\"\n").unwrap();
        let (c, _) = Config::load(
            Some(&path),
            &env(&[
                ("WARROOM_SLACK__ANNOUNCE_CHANNEL", "C2"),
                ("WARROOM_SEVERITY__P1__TARGET", "3h"),
                ("WARROOM_SEVERITY__P2__CHECKLIST", r#"["one", "two"]"#),
                ("WARROOM_BIND", "127.0.0.1:1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.slack.announce_channel.as_deref(), Some("C2"));
        assert_eq!(
            c.severity(Severity::P1).target,
            Duration::from_secs(3 * 3600)
        );
        assert_eq!(c.severity(Severity::P2).checklist, ["one", "two"]);

        let err = Config::load(Some(&path), &env(&[("WARROOM_SLACK__NOPE", "x")])).unwrap_err();
        assert_eq!(err.problems[0].key, "slack.nope");
        assert!(err.to_string().contains("warroom.toml"));
        let err = Config::load(
            Some(&path),
            &env(&[("WARROOM_SEVERITY__P0__TARGET", "soon")]),
        )
        .unwrap_err();
        assert!(err.problems[0]
            .message
            .contains("WARROOM_SEVERITY__P0__TARGET"));
    }

    #[test]
    fn missing_file_is_an_error_not_a_default() {
        let err = Config::load(Some(Path::new("/nonexistent/warroom.toml")), &[]).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/warroom.toml"));
    }

    #[test]
    fn environment_settings() {
        let vars = [
            ("WARROOM_BIND", "127.0.0.1:4000"),
            ("SLACK_API_URL", "http://127.0.0.1:9/api"),
        ];
        let e = Environment::from_lookup(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
        .unwrap();
        assert_eq!(e.bind.port(), 4000);
        assert_eq!(e.slack_api_url, "http://127.0.0.1:9/api/");
        assert_eq!(e.database_url, "sqlite://warroom.db");
        let bad = Environment::from_lookup(|k| (k == "WARROOM_BIND").then(|| "nope".to_string()));
        assert_eq!(bad.unwrap_err().problems[0].key, "WARROOM_BIND");
    }
}
