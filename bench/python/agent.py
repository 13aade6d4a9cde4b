"""The LangGraph comparison agent for `agentpod-bench --only runner`.

The same job as agent-runner with TOOLS_ENABLED=true, written the way the
LangGraph documentation shows it: a `StateGraph` ReAct loop (model node,
`ToolNode`, `tools_condition`) over `langchain_openai.ChatOpenAI`, with `list_directory` and `read_file` implemented in Python with agent-runner's
names, schemas and result format. The model is the scripted server (any
OpenAI-compatible endpoint).

Environment (the runner's names where there is one):

| variable | meaning |
|---|---|
| `TASK` | the user message |
| `MODEL_NAME` | model name sent to the server |
| `MODEL_BASE_URL` | OpenAI base URL, e.g. `http://127.0.0.1:PORT/v1` |
| `API_KEY` | bearer token |
| `SYSTEM_PROMPT` | system message (optional) |
| `AGENTPOD_WORKSPACE_ROOT` | the host directory `/workspace` maps to |
| `MAX_TOOL_ITERATIONS` | model turns allowed (default 200) |
| `AGENTPOD_LLM_STREAM` | `false` for plain JSON answers (default: stream) |

Prints the final answer on stdout; exits 1 on any error.
"""

import os
import sys

# Imports are part of the measured cold start: they are what starting a
# LangGraph agent costs.
from langchain_core.messages import SystemMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

WORKSPACE = "/workspace"
HOST_WORKSPACE = os.environ.get("AGENTPOD_WORKSPACE_ROOT", WORKSPACE)


def host_path(path: str) -> str:
    """Maps an absolute /workspace path to the host; refuses anything else."""
    norm = os.path.normpath(path)
    if norm != WORKSPACE and not norm.startswith(WORKSPACE + "/"):
        raise ValueError(f"{path} is outside the readable roots")
    return HOST_WORKSPACE + norm[len(WORKSPACE):]


@tool
def list_directory(path: str) -> str:
    """List the files and directories in a directory, with their sizes. Paths
    must be absolute and inside /workspace."""
    try:
        host = host_path(path)
        entries = []
        with os.scandir(host) as it:
            for e in it:
                st = e.stat(follow_symlinks=False)
                kind = "dir" if e.is_dir(follow_symlinks=False) else "file"
                entries.append((e.name, kind, st.st_size))
    except (OSError, ValueError) as e:
        return f"Error: {e}"
    if not entries:
        return "(empty directory)"
    entries.sort()
    return "".join(f"{kind:<6} {size:>8}  {name}\n" for name, kind, size in entries)


@tool
def read_file(path: str, offset: int | None = None, limit: int | None = None) -> str:
    """Read the contents of a file. Paths must be absolute and inside
    /workspace. offset: 1-based line number to start reading from; limit:
    maximum number of lines to return."""
    try:
        with open(host_path(path), encoding="utf-8", errors="replace") as f:
            text = f.read()
    except (OSError, ValueError) as e:
        return f"Error: {e}"
    if offset is None and limit is None:
        return text
    start = max(offset or 1, 1) - 1
    lines = text.splitlines(keepends=True)
    end = start + limit if limit else len(lines)
    return "".join(lines[start:end])


def build_agent(model: ChatOpenAI, tools: list, system: str):
    """The ReAct loop as the LangGraph tutorials build it: the model node,
    a ToolNode, and `tools_condition` routing between them until the model
    answers without tool calls."""
    bound = model.bind_tools(tools)

    def call_model(state: MessagesState) -> dict:
        return {"messages": [bound.invoke([SystemMessage(system), *state["messages"]])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", call_model)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


def main() -> int:
    env = os.environ
    model = ChatOpenAI(
        model=env.get("MODEL_NAME", "scripted"),
        base_url=env["MODEL_BASE_URL"],
        api_key=env.get("API_KEY", "none"),
        streaming=env.get("AGENTPOD_LLM_STREAM", "true") != "false",
        max_retries=0,
        timeout=60,
    )
    agent = build_agent(
        model,
        [list_directory, read_file],
        env.get("SYSTEM_PROMPT", "You are a helpful agent."),
    )
    max_turns = int(env.get("MAX_TOOL_ITERATIONS", "200"))
    out = agent.invoke(
        {"messages": [("user", env["TASK"])]},
        # Each model turn and each tool step is one graph step.
        {"recursion_limit": 2 * max_turns + 1},
    )
    print(out["messages"][-1].content)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # noqa: BLE001 - report any failure, exit 1
        print(f"agent failed: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
