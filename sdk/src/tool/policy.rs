//! `TOOL_POLICY_ALLOW` / `TOOL_POLICY_DENY` (contract §1.7).

use std::collections::BTreeSet;

/// Allow and deny lists. Deny wins; a non-empty allow list switches to
/// allowlist mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolPolicy {
    allow: BTreeSet<String>,
    deny: BTreeSet<String>,
}

impl ToolPolicy {
    /// Builds a policy from the comma-separated env values (items trimmed,
    /// empty items ignored).
    pub fn from_lists(allow: &str, deny: &str) -> Self {
        fn split(s: &str) -> BTreeSet<String> {
            s.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        }
        Self {
            allow: split(allow),
            deny: split(deny),
        }
    }

    /// Whether `tool` may be advertised and called.
    pub fn permits(&self, tool: &str) -> bool {
        !self.deny.contains(tool) && (self.allow.is_empty() || self.allow.contains(tool))
    }

    /// Whether the policy restricts anything at all.
    pub fn is_open(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_removes_and_allow_switches_to_allowlist() {
        let p = ToolPolicy::from_lists("", " write_file , fetch_url,");
        assert!(p.permits("read_file"));
        assert!(!p.permits("write_file"));
        assert!(!p.permits("fetch_url"));

        let p = ToolPolicy::from_lists("read_file,list_directory", "");
        assert!(p.permits("read_file"));
        assert!(!p.permits("execute_command"));

        let p = ToolPolicy::from_lists("read_file", "read_file");
        assert!(!p.permits("read_file"), "a tool in both lists is denied");
        assert!(ToolPolicy::default().is_open());
    }
}
