# The official Python MCP client (PyPI `mcp`) against exoclaw's /mcp:
# initialize, list the tools, ask an agent, call a tool, and a call without
# credentials. Prints one JSON document for the Rust test to check.
import asyncio
import json
import sys

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

url, token = sys.argv[1], sys.argv[2]


async def main():
    out = {}
    headers = {"Authorization": "Bearer " + token}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                out["server"] = init.server_info.name
                tools = await session.list_tools()
                out["tools"] = sorted(t.name for t in tools.tools)
                answer = await session.call_tool("chat_with_default", {"message": "hello over mcp"})
                out["chat"] = answer.content[0].text
                out["chat_error"] = bool(answer.is_error)
                listed = await session.call_tool("list_files", {})
                out["list_files_error"] = bool(listed.is_error)
                denied = await session.call_tool("no_such_tool", {})
                out["missing"] = denied.content[0].text
                out["missing_error"] = bool(denied.is_error)
    async with httpx2.AsyncClient(timeout=30) as anon:
        r = await anon.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        out["anonymous"] = r.status_code
    print(json.dumps(out))


asyncio.run(main())
