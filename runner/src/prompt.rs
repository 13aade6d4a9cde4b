//! The system prompt (contract §1.3), assembled in upstream's order: the
//! base prompt, the skills, tool guidance, channel context, team
//! relationships. The wording is ours; the structure and the headings are
//! what a model tuned on upstream runs expects.

use std::path::Path;

use crate::config::Config;

/// Separator between skill files.
const SKILL_SEPARATOR: &str = "\n\n---\n\n";

/// What the run learned at start-up that the prompt mentions: the loaded
/// MCP and native tools, and the auto-retrieved memory.
#[derive(Debug, Clone, Default)]
pub struct PromptExtras {
    /// MCP tools: name and server.
    pub mcp: Vec<(String, String)>,
    /// Native sidecar tools: name and description.
    pub native: Vec<(String, String)>,
    /// `MEMORY_SERVER_URL` is set (memory tools are offered).
    pub memory: bool,
    /// The agent's own memories relevant to the task.
    pub memory_context: String,
    /// Workflow memory is configured; `Some(true)` when read-only.
    pub workflow_read_only: Option<bool>,
    /// Shared workflow memories relevant to the task.
    pub workflow_context: String,
}

/// Builds the system prompt for `config`.
pub fn system_prompt(config: &Config) -> String {
    system_prompt_with(config, &PromptExtras::default())
}

/// Builds the system prompt for `config` with the start-up `extras`
/// (sections 6 to 8 of contract §1.3).
pub fn system_prompt_with(config: &Config, extras: &PromptExtras) -> String {
    let mut p = config.system_prompt.clone();

    let skills = read_skills(&config.roots.skills);
    if !skills.is_empty() {
        p.push_str("\n\n## Your Skills\n\n");
        p.push_str("The following skills describe what you can do and how to do it well.\n\n");
        p.push_str(&skills.join(SKILL_SEPARATOR));
    }

    if config.tools_enabled {
        p.push_str(TOOL_USAGE);
    }

    if let Some(ch) = &config.channel {
        p.push_str("\n\n## Channel Context\n\n");
        p.push_str(&format!(
            "This task came in through the {} channel (chatId: {}",
            ch.channel, ch.chat_id
        ));
        if !ch.thread_id.is_empty() {
            p.push_str(&format!(", threadId: {}", ch.thread_id));
        }
        p.push_str(
            "). To reply there, call send_channel_message with this channel and chatId; \
             your final answer is also delivered to it.",
        );
    }

    let delegates: Vec<_> = config
        .relationships
        .iter()
        .filter(|r| r.kind == "delegation")
        .collect();
    let supervised: Vec<_> = config
        .relationships
        .iter()
        .filter(|r| r.kind == "supervision")
        .collect();
    if !delegates.is_empty() || !supervised.is_empty() {
        p.push_str("\n\n## Team Relationships\n");
        if !delegates.is_empty() {
            p.push_str(
                "\nYou can hand work to these teammates with delegate_to_persona \
                 (targetPersona = the name below, task = a self-contained description):\n",
            );
            for r in &delegates {
                p.push_str(&format!("- {}", r.target));
                if !r.display_name.is_empty() {
                    p.push_str(&format!(" ({})", r.display_name));
                }
                if !r.condition.is_empty() {
                    p.push_str(&format!(": when {}", r.condition));
                }
                p.push('\n');
            }
        }
        if !supervised.is_empty() {
            p.push_str("\nYou supervise the work of:\n");
            for r in &supervised {
                p.push_str(&format!("- {}\n", r.target));
            }
        }
    }
    push_tool_sections(&mut p, extras);
    push_memory_sections(&mut p, config, extras);
    p
}

/// `## Specialized MCP Tools` and `## Native Sidecar Tools`.
fn push_tool_sections(p: &mut String, extras: &PromptExtras) {
    if !extras.mcp.is_empty() {
        p.push_str("\n\n## Specialized MCP Tools\n\n");
        p.push_str(&format!(
            "You have {} tools from MCP servers (their descriptions end in [MCP: <server>]). \
             Prefer them over generic commands for what they cover: check the inputs each \
             expects, call them, and base your answer on what they return.\n",
            extras.mcp.len()
        ));
        // Grouped by the prefix before the first `_` (the server's tools prefix).
        let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
        for (name, _) in &extras.mcp {
            let prefix = name.split('_').next().unwrap_or(name);
            match groups.iter_mut().find(|(g, _)| *g == prefix) {
                Some((_, names)) => names.push(name),
                None => groups.push((prefix, vec![name])),
            }
        }
        for (prefix, names) in groups {
            p.push_str(&format!("- {prefix}: {}\n", names.join(", ")));
        }
    }
    if !extras.native.is_empty() {
        p.push_str("\n\n## Native Sidecar Tools\n\n");
        p.push_str("These tools run in skill sidecars of this Pod:\n");
        for (name, description) in &extras.native {
            p.push_str(&format!("- {name}: {description}\n"));
        }
    }
}

/// `## Persistent Memory` (or the legacy marker instruction) and the shared
/// workflow memory sections.
fn push_memory_sections(p: &mut String, config: &Config, extras: &PromptExtras) {
    if extras.memory {
        p.push_str("\n\n## Persistent Memory\n\n");
        p.push_str(
            "You have a memory that outlives this run. Use memory_search before starting \
             work that earlier runs may have done, memory_store to keep facts, decisions and \
             findings worth knowing next time (short, self-contained, tagged), and memory_list \
             to see what is there.",
        );
        if !extras.memory_context.is_empty() {
            p.push_str("\n\n## Relevant Past Context (auto-retrieved)\n\n");
            p.push_str(&extras.memory_context);
        }
    } else if config.memory.legacy_enabled {
        p.push_str("\n\n## Memory\n\n");
        p.push_str(&format!(
            "To remember something for future runs, end your answer with a block \
             {start}\n<everything worth keeping, as Markdown>\n{end}\n\
             It replaces your whole memory file, so include what you still want from before.",
            start = agentpod_sdk::wire::marker::MEMORY_START,
            end = agentpod_sdk::wire::marker::MEMORY_END,
        ));
    }
    if let Some(read_only) = extras.workflow_read_only {
        if !extras.workflow_context.is_empty() {
            p.push_str("\n\n## Team Knowledge (Shared Workflow Memory)\n\n");
            p.push_str(&extras.workflow_context);
        }
        p.push_str("\n\n## Shared Workflow Memory\n\n");
        p.push_str(
            "Your ensemble shares a workflow memory. Use workflow_memory_search and \
             workflow_memory_list to build on what teammates found.",
        );
        if !read_only {
            p.push_str(
                " Use workflow_memory_store to share findings the team needs, with evidence \
                 (a tool result outranks an opinion).",
            );
        }
    }
}

const TOOL_USAGE: &str = "\n\n## Tool Usage\n\n\
You have tools; use them instead of guessing.\n\
- execute_command runs a shell command in a skill sidecar (kubectl and the \
pack's other tools live there); pass `target` to pick the SkillPack when \
several are mounted.\n\
- read_file and list_directory read under /workspace, /skills, /tmp and /ipc; \
write_file and edit_file change files under /workspace and /tmp.\n\
- fetch_url retrieves a public web page or API as text.\n\
- send_channel_message posts to a chat channel.\n\
Prefer several independent tool calls in one turn: they run in parallel.";

/// Regular, non-hidden files directly in `dir`, in name order, trimmed,
/// empty ones skipped (ConfigMap projections add `..data` and friends).
fn read_skills(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| std::fs::metadata(e.path()).is_ok_and(|m| m.is_file()))
        .map(|e| e.path())
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentpod_sdk::envconf::Env;

    #[test]
    fn assembles_sections_in_order() {
        let skills = tempfile::tempdir().unwrap();
        std::fs::write(skills.path().join("b.md"), "  second skill \n").unwrap();
        std::fs::write(skills.path().join("a.md"), "first skill").unwrap();
        std::fs::write(skills.path().join("..data"), "hidden").unwrap();
        std::fs::write(skills.path().join("empty.md"), "  \n").unwrap();
        std::fs::create_dir(skills.path().join("dir")).unwrap();
        let c = Config::from_vars(Env::from_map([
            ("TASK", "t"),
            ("SYSTEM_PROMPT", "Base."),
            ("TOOLS_ENABLED", "true"),
            ("SOURCE_CHANNEL", "slack"),
            ("SOURCE_CHAT_ID", "C1"),
            ("SOURCE_THREAD_ID", "T9"),
            ("ENSEMBLE_RELATIONSHIPS", r#"[{"target":"rev","displayName":"Reviewer","type":"delegation"},{"target":"jr","type":"supervision"}]"#),
            ("AGENTPOD_SKILLS_ROOT", skills.path().to_str().unwrap()),
        ]))
        .unwrap();
        let p = system_prompt(&c);
        assert!(p.starts_with("Base.\n\n## Your Skills\n\n"), "{p}");
        assert!(p.contains("first skill\n\n---\n\nsecond skill"), "{p}");
        assert!(!p.contains("hidden"));
        let order = [
            "## Your Skills",
            "## Tool Usage",
            "## Channel Context",
            "## Team Relationships",
        ];
        let pos: Vec<_> = order.iter().map(|h| p.find(h).unwrap()).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{pos:?}");
        assert!(p.contains("slack channel (chatId: C1, threadId: T9)"));
        assert!(p.contains("- rev (Reviewer)"));
        assert!(p.contains("You supervise the work of:\n- jr"));
    }

    #[test]
    fn tool_and_memory_sections_follow_in_order() {
        let c = Config::from_vars(Env::from_map([
            ("TASK", "t"),
            ("AGENTPOD_SKILLS_ROOT", "/nonexistent"),
        ]))
        .unwrap();
        let extras = PromptExtras {
            mcp: vec![
                ("gh_list".into(), "github".into()),
                ("gh_get".into(), "github".into()),
                ("echo_echo".into(), "py".into()),
            ],
            native: vec![("lint".into(), "Lints.".into())],
            memory: true,
            memory_context: "**Memory #1** (x)\nold\n".into(),
            workflow_read_only: Some(true),
            workflow_context: "**Memory #9**\nteam\n".into(),
        };
        let p = system_prompt_with(&c, &extras);
        let order = [
            "## Specialized MCP Tools",
            "## Native Sidecar Tools",
            "## Persistent Memory",
            "## Relevant Past Context (auto-retrieved)",
            "## Team Knowledge (Shared Workflow Memory)",
            "## Shared Workflow Memory\n",
        ];
        let pos: Vec<_> = order.iter().map(|h| p.find(h).unwrap()).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{p}");
        assert!(p.contains("You have 3 tools"));
        assert!(p.contains("- gh: gh_list, gh_get\n- echo: echo_echo"));
        assert!(!p.contains("workflow_memory_store"), "read-only: {p}");
    }

    #[test]
    fn bare_prompt_without_extras() {
        let c = Config::from_vars(Env::from_map([
            ("TASK", "t"),
            ("AGENTPOD_SKILLS_ROOT", "/nonexistent"),
        ]))
        .unwrap();
        assert_eq!(system_prompt(&c), "You are a helpful AI assistant.");
    }
}
