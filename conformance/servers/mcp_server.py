"""The conformance suite's MCP server (Streamable HTTP on 127.0.0.1:<port>,
path /mcp), on the official Python SDK (PyPI `mcp` 2.3, installed into
.venv by scripts/setup-mcp.sh). Like upstream's test-mcp-bridge.sh server,
its echo tool answers "hello from mcp".

Usage: mcp_server.py <port>"""

import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("agentpod-conformance")


@server.tool()
def echo(text: str) -> str:
    """Echoes the text back."""
    return f"hello from mcp: {text}"


@server.tool()
def add(a: int, b: int) -> str:
    """Adds two integers."""
    return str(a + b)


@server.tool()
def fail(message: str) -> str:
    """Always fails with the message."""
    raise ToolError(message)


@server.tool()
def secret() -> str:
    """Returns a secret; scenarios deny it."""
    return "the secret is 42"


if __name__ == "__main__":
    server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
