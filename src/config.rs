//! Environment → [`Config`], validated once at start so a typo fails the deploy, not a push.

use std::time::Duration;

use crate::reference::is_tag;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {variable}={value:?}: {expected}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub expected: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerKind {
    Ecs,
    AppRunner,
    Lambda,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub alert_topic_arn: Option<String>,
    pub alert: bool,
    pub tag: bool,
    pub marker_tag_prefix: String,
    /// Empty means every repository.
    pub repository_filter: Vec<String>,
    pub consumers: Vec<ConsumerKind>,
    pub alert_on_unknown: bool,
    /// How long a warm Lambda reuses the consumer index; zero turns the cache off.
    pub consumer_cache_ttl: Duration,
    /// AWS requests in flight at once while looking up consumers.
    pub max_concurrency: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            alert_topic_arn: None,
            alert: true,
            tag: false,
            marker_tag_prefix: "incompatible-".into(),
            repository_filter: Vec::new(),
            consumers: vec![ConsumerKind::Ecs, ConsumerKind::AppRunner, ConsumerKind::Lambda],
            alert_on_unknown: false,
            consumer_cache_ttl: Duration::from_secs(60),
            max_concurrency: 8,
        }
    }
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut config = Config::default();

        if let Some(arn) = get("ALERT_TOPIC_ARN") {
            if !arn.starts_with("arn:") || arn.split(':').count() != 6 {
                return Err(invalid(
                    "ALERT_TOPIC_ARN",
                    &arn,
                    "an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)",
                ));
            }
            config.alert_topic_arn = Some(arn);
        }
        if let Some(actions) = get("ACTIONS") {
            config.alert = false;
            for action in list(&actions) {
                match action {
                    "alert" => config.alert = true,
                    "tag" => config.tag = true,
                    "none" => {}
                    _ => {
                        return Err(invalid(
                            "ACTIONS",
                            &actions,
                            "a comma list of alert, tag (or none)",
                        ))
                    }
                }
            }
        }
        if let Some(prefix) = get("MARKER_TAG_PREFIX") {
            // The prefix starts every marker tag, so it must itself be a valid tag beginning.
            if prefix.len() > 100 || !is_tag(&prefix) {
                return Err(invalid(
                    "MARKER_TAG_PREFIX",
                    &prefix,
                    "up to 100 characters of [A-Za-z0-9_.-], starting with a letter, digit or _",
                ));
            }
            config.marker_tag_prefix = prefix;
        }
        if let Some(filter) = get("REPOSITORY_FILTER") {
            config.repository_filter = list(&filter).map(str::to_string).collect();
            if let Some(bad) = config.repository_filter.iter().find(|p| !is_filter_pattern(p)) {
                return Err(invalid(
                    "REPOSITORY_FILTER",
                    &filter,
                    &format!("repository names or `prefix/*` globs; {bad:?} is neither"),
                ));
            }
        }
        if let Some(consumers) = get("CONSUMERS") {
            config.consumers.clear();
            for kind in list(&consumers) {
                let kind = match kind {
                    "ecs" => ConsumerKind::Ecs,
                    "apprunner" => ConsumerKind::AppRunner,
                    "lambda" => ConsumerKind::Lambda,
                    _ => {
                        return Err(invalid(
                            "CONSUMERS",
                            &consumers,
                            "a comma list of ecs, apprunner, lambda",
                        ))
                    }
                };
                if !config.consumers.contains(&kind) {
                    config.consumers.push(kind);
                }
            }
        }
        if let Some(alert_on) = get("ALERT_ON") {
            let values: Vec<&str> = list(&alert_on).collect();
            config.alert_on_unknown = match values.as_slice() {
                ["incompatible"] => false,
                ["incompatible", "unknown"] | ["unknown", "incompatible"] => true,
                _ => {
                    return Err(invalid(
                        "ALERT_ON",
                        &alert_on,
                        "incompatible or incompatible,unknown",
                    ))
                }
            };
        }
        if let Some(ttl) = get("CONSUMER_CACHE_TTL_SECONDS") {
            let seconds: u64 = ttl.parse().map_err(|_| {
                invalid(
                    "CONSUMER_CACHE_TTL_SECONDS",
                    &ttl,
                    "whole seconds, 0 to turn the cache off",
                )
            })?;
            config.consumer_cache_ttl = Duration::from_secs(seconds);
        }
        if let Some(n) = get("MAX_CONCURRENCY") {
            config.max_concurrency = n
                .parse()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| invalid("MAX_CONCURRENCY", &n, "a whole number from 1 to 64"))?;
        }
        Ok(config)
    }

    /// Whether `REPOSITORY_FILTER` lets this repository through.
    pub fn validates_repository(&self, repository: &str) -> bool {
        self.repository_filter.is_empty()
            || self
                .repository_filter
                .iter()
                .any(|pattern| match pattern.strip_suffix('*') {
                    Some(prefix) => repository.starts_with(prefix),
                    None => repository == pattern,
                })
    }

    pub fn is_marker_tag(&self, tag: &str) -> bool {
        tag.starts_with(&self.marker_tag_prefix)
    }
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|v| !v.is_empty())
}

fn is_filter_pattern(pattern: &str) -> bool {
    let name = pattern.strip_suffix('*').unwrap_or(pattern);
    !name.contains('*')
        && (pattern == "*"
            || name.trim_end_matches('/').split('/').all(|c| {
                !c.is_empty()
                    && c.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                    })
            }))
}

fn invalid(variable: &'static str, value: &str, expected: &str) -> ConfigError {
    ConfigError {
        variable,
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_match_the_design() {
        let c = config(&[]).unwrap();
        assert_eq!(c, Config::default());
        assert!(c.alert && !c.tag && !c.alert_on_unknown);
        assert_eq!(c.marker_tag_prefix, "incompatible-");
    }

    #[test]
    fn parses_every_variable() {
        let c = config(&[
            ("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:alerts"),
            ("ACTIONS", "tag, alert"),
            ("MARKER_TAG_PREFIX", "bad-arch-"),
            ("REPOSITORY_FILTER", "shop/*,web"),
            ("CONSUMERS", "ecs,lambda"),
            ("ALERT_ON", "incompatible,unknown"),
            ("CONSUMER_CACHE_TTL_SECONDS", "0"),
            ("MAX_CONCURRENCY", "4"),
        ])
        .unwrap();
        assert!(c.alert && c.tag && c.alert_on_unknown);
        assert_eq!(c.consumers, vec![ConsumerKind::Ecs, ConsumerKind::Lambda]);
        assert!(c.validates_repository("shop/cart") && c.validates_repository("web"));
        assert!(!c.validates_repository("webapp") && !c.validates_repository("other"));
        assert!(c.is_marker_tag("bad-arch-latest"));
        assert_eq!(c.consumer_cache_ttl, Duration::ZERO);
        assert_eq!(c.max_concurrency, 4);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (variable, value) in [
            ("ACTIONS", "alert,page"),
            ("ALERT_TOPIC_ARN", "alerts"),
            ("MARKER_TAG_PREFIX", "bad prefix"),
            ("REPOSITORY_FILTER", "Shop/*"),
            ("CONSUMERS", "ecs,eks"),
            ("ALERT_ON", "always"),
            ("CONSUMER_CACHE_TTL_SECONDS", "-1"),
            ("MAX_CONCURRENCY", "0"),
        ] {
            let err = config(&[(variable, value)]).unwrap_err();
            assert_eq!(err.variable, variable);
            assert!(
                err.to_string().starts_with(&format!("invalid {variable}=")),
                "{err}"
            );
        }
    }
}
