"""A Python MCP server for the mcp-bridge tests, on the official SDK (PyPI
`mcp` 2.3, `MCPServer`).

Usage: py_server.py stdio | py_server.py http <port>   (HTTP binds 127.0.0.1,
serves /mcp, answers with SSE bodies)."""

import json
import os
import sys

import anyio
from mcp.server.mcpserver import Context, Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("agentpod-test")

# A 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


@server.tool()
def echo(text: str) -> str:
    """Returns its input."""
    return f"echo: {text}"


@server.tool()
def add(a: int, b: int) -> str:
    """Adds two integers."""
    return str(a + b)


@server.tool()
def image() -> Image:
    """Returns a tiny PNG."""
    return Image(data=PNG, format="png")


@server.tool()
def fail(message: str) -> str:
    """Always fails with the message."""
    raise ToolError(message)


@server.tool()
def headers(ctx: Context) -> str:
    """Returns the auth and custom headers of the HTTP request."""
    h = ctx.headers or {}
    return json.dumps({k: h.get(k) for k in ("authorization", "x-team", "x-api-key", "traceparent")})


@server.tool()
async def hang() -> str:
    """Never answers."""
    await anyio.sleep(3600)
    return "unreachable"


@server.tool()
def crash() -> str:
    """Kills the server process."""
    print("crashing on purpose", file=sys.stderr, flush=True)
    os._exit(3)


if __name__ == "__main__":
    if sys.argv[1] == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
