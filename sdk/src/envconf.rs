//! Reading configuration from the environment, the way every agentpod binary
//! does it: one pass over a map of variables that collects **every** invalid
//! value, then one error that names them all and says what would be valid.
//!
//! `Config::from_env()` of a binary builds an [`Env`] from the process
//! environment; tests build one from a map.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A snapshot of environment variables plus the problems found so far.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
    problems: Vec<EnvProblem>,
}

/// One invalid variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvProblem {
    /// The variable name.
    pub name: String,
    /// The value found (secrets are never stored here: see
    /// [`Env::secret`]).
    pub value: String,
    /// What would be valid.
    pub expected: String,
}

impl fmt::Display for EnvProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={:?} is invalid: expected {}",
            self.name, self.value, self.expected
        )
    }
}

/// Every invalid variable of one configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct EnvError {
    /// The problems, in the order they were found.
    pub problems: Vec<EnvProblem>,
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration: ")?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Self {
        Self::from_map(std::env::vars())
    }

    /// Variables from any list of pairs (tests).
    pub fn from_map<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            problems: Vec::new(),
        }
    }

    /// The raw value, if set (even to the empty string).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The trimmed value when set and non-empty.
    pub fn string(&self, name: &str) -> Option<String> {
        self.raw(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// The trimmed value, or `default`.
    pub fn string_or(&self, name: &str, default: &str) -> String {
        self.string(name).unwrap_or_else(|| default.to_owned())
    }

    /// The first non-empty of several variables (e.g. API keys). The value
    /// is returned but never recorded in a problem or a log.
    pub fn secret(&self, names: &[&str]) -> Option<String> {
        names.iter().find_map(|n| self.string(n))
    }

    /// Records a problem with `name`.
    pub fn invalid(&mut self, name: &str, value: &str, expected: impl Into<String>) {
        self.problems.push(EnvProblem {
            name: name.to_owned(),
            value: value.to_owned(),
            expected: expected.into(),
        });
    }

    /// A boolean flag: unset or empty is `default`; `true`/`false`/`1`/`0`
    /// (any case) are accepted; anything else is a problem.
    pub fn flag(&mut self, name: &str, default: bool) -> bool {
        let Some(v) = self.string(name) else {
            return default;
        };
        match v.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                self.invalid(name, &v, "true or false");
                default
            }
        }
    }

    /// A parsed value: unset or empty is `None`; a value `T` cannot parse, or
    /// that fails `check`, is a problem described by `expected`.
    pub fn parse<T: FromStr>(
        &mut self,
        name: &str,
        expected: &str,
        check: impl Fn(&T) -> bool,
    ) -> Option<T> {
        let v = self.string(name)?;
        match v.parse::<T>() {
            Ok(t) if check(&t) => Some(t),
            _ => {
                self.invalid(name, &v, expected);
                None
            }
        }
    }

    /// A Go-style duration (`300ms`, `30s`, `5m`, `1h30m`); unset is `None`.
    pub fn duration(&mut self, name: &str) -> Option<Duration> {
        let v = self.string(name)?;
        match parse_go_duration(&v) {
            Some(d) => Some(d),
            None => {
                self.invalid(name, &v, "a duration such as 90s, 5m or 1h30m");
                None
            }
        }
    }

    /// Fails with every problem found, or succeeds.
    pub fn finish(self) -> Result<(), EnvError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(EnvError {
                problems: self.problems,
            })
        }
    }
}

/// Parses a Go `time.ParseDuration` string: a sequence of decimal numbers,
/// each with a unit `ns`, `us`, `µs`, `ms`, `s`, `m` or `h`; `0` alone is
/// allowed. Negative durations are refused.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." {
            return None;
        }
        let value: f64 = num.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        rest = tail;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        for bad in ["", "5", "m", "-5s", "5x", "1..2s", "."] {
            assert_eq!(parse_go_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn collects_every_problem() {
        let mut env = Env::from_map([
            ("A", "yes"),
            ("B", "-1"),
            ("C", "soon"),
            ("D", "7"),
            ("E", ""),
        ]);
        assert!(!env.flag("A", false));
        assert_eq!(
            env.parse::<u32>("B", "a positive integer", |n| *n > 0),
            None
        );
        assert_eq!(env.duration("C"), None);
        assert_eq!(
            env.parse::<u32>("D", "a positive integer", |n| *n > 0),
            Some(7)
        );
        assert!(env.flag("E", true), "empty means default");
        let err = env.finish().unwrap_err();
        assert_eq!(err.problems.len(), 3);
        let msg = err.to_string();
        assert!(
            msg.contains("A=\"yes\" is invalid: expected true or false"),
            "{msg}"
        );
        assert!(
            msg.contains("B=\"-1\" is invalid: expected a positive integer"),
            "{msg}"
        );
        assert!(
            msg.contains("C=\"soon\" is invalid: expected a duration"),
            "{msg}"
        );
    }
}
