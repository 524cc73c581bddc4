/** The `servers.json` example `flotilla agent --help` ends with. */
export const SERVERS_JSON_HELP = `
Servers come from --server flags (modules) and from the config file's mcpServers, the servers.json
shape of Claude Desktop, Cursor and FastMCP: a command for a stdio server, a url for a remote one
(Streamable HTTP, or legacy SSE when the path ends in /sse), ${'${VAR}'} taken from the environment.

  # servers.json                      flotilla agent --config servers.json --nats nats://nats:4222
  {
    "mcpServers": {
      "filesystem": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv/data"] },
      "thinking":   { "command": "mcp-server-sequential-thinking",
                      "flotilla": { "sessions": "per-session", "pool": { "warm": 2, "max": 16 }, "affinity": "sticky" } },
      "search":     { "url": "https://search.example.com/mcp", "headers": { "Authorization": "Bearer ${'${SEARCH_TOKEN}'}" } },
      "echo":       { "module": "@flotilla/examples/echo" }
    }
  }

Any option above can be set in the same file by its long name in camelCase ("maxSessions": 500), and
through the environment (shown as env:); flags win over the environment, which wins over the file.
--print-config shows the result and where each value came from. The file is reloaded when it changes
(or on SIGHUP): servers are added, removed and changed live; other options need a restart.
Stdio servers share one process by default ("sessions": "shared"); see docs/mounts.md.`;
