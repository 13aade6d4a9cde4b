//! Configuration from the environment: the only reader of it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agentpod_sdk::envconf::{Env, EnvError};
use agentpod_sdk::skill::ServerOptions;

/// Variables read here, on top of [`agentpod_sdk::skill::server_env`].
pub mod env {
    pub use agentpod_sdk::skill::server_env::*;
    /// The shell for shell-mode requests: a name looked up in `PATH` or a
    /// path (default `bash`); `none` turns shell mode off.
    pub const SHELL: &str = "TOOL_EXECUTOR_SHELL";
    /// After a timeout's SIGTERM to the process group, how long before
    /// SIGKILL (Go duration, default 2s).
    pub const KILL_GRACE: &str = "TOOL_EXECUTOR_KILL_GRACE";
    /// `false` to leave orphaned processes to someone else (default: reap
    /// them, as a child subreaper).
    pub const REAP_ORPHANS: &str = "TOOL_EXECUTOR_REAP_ORPHANS";
    /// Searched for the shell.
    pub const PATH: &str = "PATH";
}

/// Default [`Config::kill_grace`].
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);

/// Everything `tool-executor` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The exec server's options (IPC root, pack, timeouts, limits).
    pub server: ServerOptions,
    /// The shell for shell mode, if the image has one.
    pub shell: Option<PathBuf>,
    /// SIGTERM-to-SIGKILL grace on timeout.
    pub kill_grace: Duration,
    /// Become a child subreaper and reap orphaned processes.
    pub reap_orphans: bool,
}

impl Config {
    /// Reads every variable, reporting all invalid ones at once.
    pub fn from_env(mut vars: Env) -> Result<Self, EnvError> {
        let server = ServerOptions::from_env(&mut vars);
        let shell_name = vars.string_or(env::SHELL, "bash");
        let shell = if shell_name.eq_ignore_ascii_case("none") {
            None
        } else {
            find_program(
                &shell_name,
                vars.raw(env::PATH)
                    .unwrap_or("/usr/local/bin:/usr/bin:/bin"),
            )
        };
        let kill_grace = vars.duration(env::KILL_GRACE).unwrap_or(DEFAULT_KILL_GRACE);
        let reap_orphans = vars.flag(env::REAP_ORPHANS, true);
        vars.finish()?;
        Ok(Self {
            server,
            shell,
            kill_grace,
            reap_orphans,
        })
    }
}

/// `name` as a path when it has a `/`, else the first executable file of
/// that name in `path`.
fn find_program(name: &str, path: &str) -> Option<PathBuf> {
    let is_exec = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_exec(&p).then_some(p);
    }
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| is_exec(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let c = Config::from_env(Env::from_map([("PATH", "/usr/bin:/bin")])).unwrap();
        assert!(c.shell.is_some(), "bash is on this machine");
        assert_eq!(c.server.max_timeout_secs, 120);
        assert_eq!(c.server.ipc.path(), Path::new("/ipc"));
        let c = Config::from_env(Env::from_map([(env::SHELL, "none")])).unwrap();
        assert!(c.shell.is_none());
        let c = Config::from_env(Env::from_map([(env::SHELL, "no-such-shell-here")])).unwrap();
        assert!(c.shell.is_none());
        let err = Config::from_env(Env::from_map([
            (env::KILL_GRACE, "soon"),
            (env::MAX_TIMEOUT, "-1"),
            (env::REAP_ORPHANS, "maybe"),
        ]))
        .unwrap_err();
        assert_eq!(err.problems.len(), 3, "{err}");
    }
}
