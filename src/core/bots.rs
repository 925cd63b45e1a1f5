//! Which actors are bots: every GitHub App (its login ends in `[bot]`) and
//! the logins an operator names (`--bot-login`), compared as GitHub compares
//! logins, ignoring ASCII case.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// The suffix GitHub gives every GitHub App's login (`dependabot[bot]`).
pub const APP_SUFFIX: &str = "[bot]";

/// Most logins `--bot-login` may name: each is matched on every event
/// written and re-marked when the list changes.
pub const MAX_BOT_LOGINS: usize = 1_000;

/// A login named as a bot: GitHub's login syntax (letters, digits and
/// hyphens, at most 39, not starting with a hyphen), optionally with the
/// `[bot]` suffix; kept in lower case.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BotLogin(String);

impl BotLogin {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BotLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for BotLogin {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let name = text.strip_suffix(APP_SUFFIX).unwrap_or(text);
        let valid = (1..=39).contains(&name.len())
            && !name.starts_with('-')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            let shown: String = text.chars().take(60).collect();
            return Err(format!(
                "{shown:?} is not a GitHub login (1 to 39 letters, digits or hyphens, optionally ending in [bot])"
            ));
        }
        Ok(BotLogin(text.to_ascii_lowercase()))
    }
}

/// The bots' logins besides the GitHub Apps', sorted and without repeats.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BotLogins(BTreeSet<BotLogin>);

impl BotLogins {
    /// The list from `--bot-login` values; more than [`MAX_BOT_LOGINS`] is refused.
    pub fn new(logins: impl IntoIterator<Item = BotLogin>) -> Result<BotLogins, String> {
        let logins: BTreeSet<BotLogin> = logins.into_iter().collect();
        if logins.len() > MAX_BOT_LOGINS {
            return Err(format!(
                "{} bot logins given; at most {MAX_BOT_LOGINS}",
                logins.len()
            ));
        }
        Ok(BotLogins(logins))
    }

    /// Whether an event by `login` is a bot's.
    pub fn is_bot(&self, login: &str) -> bool {
        is_app(login) || self.0.contains(&BotLogin(login.to_ascii_lowercase()))
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(BotLogin::as_str)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether `login` is a GitHub App's (ends in `[bot]`, in any case).
pub fn is_app(login: &str) -> bool {
    login.len() >= APP_SUFFIX.len()
        && login.as_bytes()[login.len() - APP_SUFFIX.len()..]
            .eq_ignore_ascii_case(APP_SUFFIX.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logins(names: &[&str]) -> BotLogins {
        BotLogins::new(names.iter().map(|name| name.parse().unwrap())).unwrap()
    }

    #[test]
    fn apps_and_named_logins_are_bots_in_any_case() {
        let bots = logins(&["Renovate-Bot", "k8s-ci-robot"]);
        for bot in [
            "dependabot[bot]",
            "GitHub-Actions[BOT]",
            "renovate-bot",
            "K8S-CI-ROBOT",
        ] {
            assert!(bots.is_bot(bot), "{bot}");
        }
        for human in ["octocat", "bot", "[bot]x", "renovate-bot2", ""] {
            assert!(!bots.is_bot(human), "{human}");
        }
        assert_eq!(
            bots.iter().collect::<Vec<_>>(),
            ["k8s-ci-robot", "renovate-bot"]
        );
    }

    #[test]
    fn malformed_logins_and_too_many_are_refused() {
        for bad in [
            "",
            "-x",
            "a b",
            "a/b",
            "x'; DROP TABLE events; --",
            &"a".repeat(40),
            "[bot]",
        ] {
            let error = bad.parse::<BotLogin>().unwrap_err();
            assert!(error.contains("not a GitHub login"), "{bad}: {error}");
        }
        assert!("app-name[bot]".parse::<BotLogin>().is_ok());
        let many = (0..=MAX_BOT_LOGINS).map(|i| format!("bot-{i}").parse().unwrap());
        assert!(BotLogins::new(many).unwrap_err().contains("at most"));
    }
}
