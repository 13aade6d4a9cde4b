//! Process exit codes that other containers and the controller read.

use super::result::ResultStatus;

/// Success, and also a skipped run.
pub const SUCCESS: i32 = 0;
/// The run failed (result status `error`, or a fatal configuration error).
pub const ERROR: i32 = 1;
/// A command killed by `timeout(1)` in a skill sidecar; the exec result then
/// has `timedOut: true` and keeps this exit code.
pub const COMMAND_TIMED_OUT: i32 = 124;

/// Exit code of the agent container for a result status: 1 for `error`,
/// 0 otherwise.
pub fn for_status(status: ResultStatus) -> i32 {
    match status {
        ResultStatus::Error => ERROR,
        ResultStatus::Success | ResultStatus::Skipped => SUCCESS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(for_status(ResultStatus::Success), 0);
        assert_eq!(for_status(ResultStatus::Skipped), 0);
        assert_eq!(for_status(ResultStatus::Error), 1);
    }
}
