//! The environment, read in one place: every invalid variable is reported
//! at once.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use agentpod_sdk::envconf::{Env, EnvError};

/// Upstream's request body cap.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 << 20;

/// How hard SQLite syncs commits (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// Every commit reaches the disk before it is acknowledged (upstream's
    /// SQLite default).
    Full,
    /// WAL commits are synced at checkpoints: faster; a power cut may lose
    /// the last commits but never corrupts.
    Normal,
}

/// Everything the server reads from its environment.
#[derive(Clone)]
pub struct Config {
    /// `MEMORY_DB_PATH`.
    pub db_path: PathBuf,
    /// `MEMORY_BIND`.
    pub bind: IpAddr,
    /// `MEMORY_PORT` (0: any free port).
    pub port: u16,
    /// `MEMORY_AGENT`: the owning agent, a log field.
    pub agent: String,
    /// `MEMORY_ADMIN_TOKEN`: enables `DELETE /delete`. Never logged.
    pub admin_token: Option<String>,
    /// `MEMORY_READERS`: read connections.
    pub readers: usize,
    /// `MEMORY_MAX_TOP_K`: larger `top_k` is lowered to this.
    pub max_top_k: usize,
    /// `MEMORY_MAX_LIST_LIMIT`: larger list `limit` is lowered to this.
    pub max_list_limit: usize,
    /// `MEMORY_MAX_BODY_BYTES`.
    pub max_body_bytes: usize,
    /// `MEMORY_SYNCHRONOUS`.
    pub synchronous: Synchronous,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("db_path", &self.db_path)
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("agent", &self.agent)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<set>"))
            .field("readers", &self.readers)
            .field("max_top_k", &self.max_top_k)
            .field("max_list_limit", &self.max_list_limit)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("synchronous", &self.synchronous)
            .finish()
    }
}

impl Config {
    /// Reads the configuration from `env`.
    pub fn from_env(mut env: Env) -> Result<Self, EnvError> {
        let db_path = PathBuf::from(env.string_or("MEMORY_DB_PATH", "/data/memory.db"));
        let bind = env
            .parse::<IpAddr>(
                "MEMORY_BIND",
                "an IP address such as 0.0.0.0 or 127.0.0.1",
                |_| true,
            )
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let port = env
            .parse::<u16>("MEMORY_PORT", "a port number (0 to 65535)", |_| true)
            .unwrap_or(8080);
        let agent = env.string_or("MEMORY_AGENT", "");
        let admin_token = env.secret(&["MEMORY_ADMIN_TOKEN"]);
        let readers = env
            .parse::<usize>("MEMORY_READERS", "an integer from 1 to 64", |n| {
                (1..=64).contains(n)
            })
            .unwrap_or(4);
        let max_top_k = env
            .parse::<usize>("MEMORY_MAX_TOP_K", "an integer from 1 to 10000", |n| {
                (1..=10_000).contains(n)
            })
            .unwrap_or(100);
        let max_list_limit = env
            .parse::<usize>(
                "MEMORY_MAX_LIST_LIMIT",
                "an integer from 1 to 100000",
                |n| (1..=100_000).contains(n),
            )
            .unwrap_or(1000);
        let max_body_bytes = env
            .parse::<usize>(
                "MEMORY_MAX_BODY_BYTES",
                "a byte count from 1024 to 268435456",
                |n| (1024..=256 << 20).contains(n),
            )
            .unwrap_or(DEFAULT_MAX_BODY_BYTES);
        let synchronous = match env
            .string("MEMORY_SYNCHRONOUS")
            .map(|s| s.to_ascii_lowercase())
        {
            None => Synchronous::Full,
            Some(s) if s == "full" => Synchronous::Full,
            Some(s) if s == "normal" => Synchronous::Normal,
            Some(s) => {
                env.invalid("MEMORY_SYNCHRONOUS", &s, "full or normal");
                Synchronous::Full
            }
        };
        env.finish()?;
        Ok(Self {
            db_path,
            bind,
            port,
            agent,
            admin_token,
            readers,
            max_top_k,
            max_list_limit,
            max_body_bytes,
            synchronous,
        })
    }

    /// Defaults with the database at `db_path`, bound to 127.0.0.1 on any
    /// free port (tests, benchmarks).
    pub fn local(db_path: impl Into<PathBuf>) -> Self {
        // No variable is set, so nothing can be invalid.
        #[allow(clippy::expect_used)]
        let mut c = Self::from_env(Env::default()).expect("the defaults are valid");
        c.db_path = db_path.into();
        c.bind = IpAddr::from([127, 0, 0, 1]);
        c.port = 0;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_upstream() {
        let c = Config::from_env(Env::default()).unwrap();
        assert_eq!(c.db_path, PathBuf::from("/data/memory.db"));
        assert_eq!(c.port, 8080);
        assert_eq!(c.bind.to_string(), "0.0.0.0");
        assert_eq!(c.max_body_bytes, 4 * 1024 * 1024);
        assert!(c.admin_token.is_none());
        assert_eq!(c.synchronous, Synchronous::Full);
    }

    #[test]
    fn reports_every_bad_variable_and_hides_the_token() {
        let err = Config::from_env(Env::from_map([
            ("MEMORY_PORT", "http"),
            ("MEMORY_BIND", "localhost"),
            ("MEMORY_READERS", "0"),
            ("MEMORY_SYNCHRONOUS", "off"),
        ]))
        .unwrap_err();
        assert_eq!(err.problems.len(), 4, "{err}");
        let c = Config::from_env(Env::from_map([("MEMORY_ADMIN_TOKEN", "hunter2")])).unwrap();
        assert_eq!(c.admin_token.as_deref(), Some("hunter2"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
