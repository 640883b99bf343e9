//! War-room channel names: `inc-<n>-<slug>`, valid on Slack.

use std::fmt;

/// Slack's limit on channel names.
pub const MAX_LEN: usize = 80;

/// A channel name that obeys Slack's rules: lowercase ASCII letters, digits, `-` and `_`,
/// 1 to 80 characters, not only punctuation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelName(String);

impl ChannelName {
    /// `inc-<number>-<slug of title>`, cut to 80 characters on a word boundary where possible.
    pub fn for_incident(number: i64, title: &str) -> ChannelName {
        Self::build(number, title, None)
    }

    /// The same name with a numeric suffix (`-2`, `-3`, …) for when the plain one is taken.
    /// `attempt` 0 is the plain name.
    pub fn with_suffix(number: i64, title: &str, attempt: u32) -> ChannelName {
        let suffix = (attempt > 0).then(|| format!("-{}", attempt + 1));
        Self::build(number, title, suffix.as_deref())
    }

    fn build(number: i64, title: &str, suffix: Option<&str>) -> ChannelName {
        let prefix = format!("inc-{number}");
        let suffix = suffix.unwrap_or("");
        let room = MAX_LEN.saturating_sub(prefix.len() + suffix.len() + 1);
        let slug = truncate_slug(&slugify(title), room);
        let name = if slug.is_empty() {
            format!("{prefix}{suffix}")
        } else {
            format!("{prefix}-{slug}{suffix}")
        };
        ChannelName(name)
    }

    /// Checks a name against Slack's rules.
    pub fn parse(name: &str) -> Result<ChannelName, String> {
        if name.is_empty() || name.len() > MAX_LEN {
            return Err(format!("a channel name has 1 to {MAX_LEN} characters"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err("a channel name has only lowercase letters, digits, - and _".into());
        }
        if name.chars().all(|c| c == '-' || c == '_') {
            return Err("a channel name needs a letter or digit".into());
        }
        Ok(ChannelName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lowercase ASCII words joined by single dashes; everything else is a separator.
fn slugify(title: &str) -> String {
    let mut slug = String::with_capacity(title.len());
    let mut pending_dash = false;
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_dash && !slug.is_empty() {
                slug.push('-');
            }
            pending_dash = false;
            slug.push(c.to_ascii_lowercase());
        } else if c.is_alphanumeric() {
            // A letter Slack would not accept (é, ü, 中): drop it, keep the word together.
        } else {
            pending_dash = true;
        }
    }
    slug
}

/// Cuts a slug to at most `max` bytes, preferring to end at a word boundary.
fn truncate_slug(slug: &str, max: usize) -> String {
    if slug.len() <= max {
        return slug.to_string();
    }
    let cut = &slug[..max];
    let cut = match cut.rfind('-') {
        Some(i) if i >= max / 2 => &cut[..i],
        _ => cut,
    };
    cut.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_titles() {
        assert_eq!(
            ChannelName::for_incident(1, "checkout is down").as_str(),
            "inc-1-checkout-is-down"
        );
        assert_eq!(
            ChannelName::for_incident(12, "  Checkout: 500s on /pay!! ").as_str(),
            "inc-12-checkout-500s-on-pay"
        );
    }

    #[test]
    fn mrkdwn_and_unicode_are_dropped() {
        assert_eq!(
            ChannelName::for_incident(3, "<!channel> checkout is down").as_str(),
            "inc-3-channel-checkout-is-down"
        );
        assert_eq!(
            ChannelName::for_incident(4, "café down").as_str(),
            "inc-4-caf-down"
        );
        assert_eq!(ChannelName::for_incident(5, "!!! ???").as_str(), "inc-5");
        assert_eq!(ChannelName::for_incident(6, "支付").as_str(), "inc-6");
    }

    #[test]
    fn long_titles_fit_in_80() {
        let title = "the payment service returns errors for every customer in europe and asia during checkout with saved cards";
        for attempt in 0..12 {
            let name = ChannelName::with_suffix(123_456, title, attempt);
            assert!(name.as_str().len() <= MAX_LEN, "{name}");
            assert!(ChannelName::parse(name.as_str()).is_ok(), "{name}");
            assert!(!name.as_str().ends_with("--"));
        }
        let long = ChannelName::for_incident(1, &"a".repeat(200));
        assert_eq!(long.as_str().len(), MAX_LEN);
    }

    #[test]
    fn suffixes_count_from_two() {
        assert_eq!(ChannelName::with_suffix(1, "db", 0).as_str(), "inc-1-db");
        assert_eq!(ChannelName::with_suffix(1, "db", 1).as_str(), "inc-1-db-2");
        assert_eq!(ChannelName::with_suffix(1, "db", 2).as_str(), "inc-1-db-3");
    }

    #[test]
    fn parse_applies_slack_rules() {
        assert!(ChannelName::parse("inc-1-x").is_ok());
        for bad in ["", "Inc-1", "inc 1", "---", &"a".repeat(81), "inc.1"] {
            assert!(ChannelName::parse(bad).is_err(), "{bad}");
        }
    }
}
