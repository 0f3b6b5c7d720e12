#!/usr/bin/env python3
"""Lists an MCP server's tools with the official Python MCP SDK (PyPI `mcp`).

Used by tests/e2e/list_filter.rs: a second real MCP client (after rmcp) that
connects through Envoy with a bearer token, initializes a session and lists
the tools, following `nextCursor` over every page.

Usage: list_tools.py URL
  The bearer token is read from the environment variable MCP_BEARER_TOKEN
  (not argv: a token on a command line is visible to every local user).

Prints the tool names, in the server's order, as one JSON array on stdout.
Diagnostics go to stderr; the token is never printed.
Exit status: 0 listed, 1 any failure (HTTP, JSON-RPC, timeout), 2 bad usage,
3 the `mcp` package is not installed (run scripts/setup).
"""

import json
import os
import sys

# One exchange through the gateway takes milliseconds; a hung client is a failure.
DEADLINE_SECONDS = 20


async def list_tool_names(url: str, token: str) -> list[str]:
    import anyio
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.types import PaginatedRequestParams

    headers = {"Authorization": f"Bearer {token}"}
    names: list[str] = []
    with anyio.fail_after(DEADLINE_SECONDS):
        # trust_env=False: the target is on loopback, never via a proxy.
        async with httpx2.AsyncClient(
            headers=headers, timeout=httpx2.Timeout(10.0), trust_env=False
        ) as http:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    init = await session.initialize()
                    print(
                        f"list_tools.py: connected to {init.server_info.name} "
                        f"(protocol {init.protocol_version})",
                        file=sys.stderr,
                    )
                    cursor = None
                    while True:
                        params = PaginatedRequestParams(cursor=cursor) if cursor else None
                        result = await session.list_tools(params=params)
                        names.extend(tool.name for tool in result.tools)
                        cursor = result.next_cursor
                        if not cursor:
                            break
    return names


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: list_tools.py URL  (token in MCP_BEARER_TOKEN)", file=sys.stderr)
        return 2
    token = os.environ.get("MCP_BEARER_TOKEN")
    if not token:
        print("list_tools.py: MCP_BEARER_TOKEN is not set", file=sys.stderr)
        return 2
    try:
        import importlib.metadata

        import anyio  # noqa: F401  (a dependency of mcp)
        import mcp  # noqa: F401

        version = importlib.metadata.version("mcp")
    except ImportError as e:
        print(
            f"list_tools.py: the Python MCP SDK (PyPI `mcp`) is not installed in "
            f"{sys.prefix} ({e}): run scripts/setup",
            file=sys.stderr,
        )
        return 3
    print(f"list_tools.py: mcp {version}", file=sys.stderr)

    import asyncio
    import traceback

    try:
        names = asyncio.run(list_tool_names(sys.argv[1], token))
    except BaseException as e:  # noqa: BLE001  (ExceptionGroup from task groups, TimeoutError, ...)
        if isinstance(e, KeyboardInterrupt):
            raise
        print("list_tools.py: listing the tools failed:", file=sys.stderr)
        traceback.print_exception(e, file=sys.stderr)
        return 1
    json.dump(names, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
