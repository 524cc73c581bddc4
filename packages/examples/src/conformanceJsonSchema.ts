/**
 * Companion fixture for the conformance suite's `json-schema-2020-12` scenario (SEP-1613, in the suite's
 * "pending" set). The suite calls that tool `json_schema_2020_12_tool`; behind the router a tool is named
 * `<server>_<tool>`, so this module registers `schema_2020_12_tool` and is meant to be hosted as server
 * `json` (`--server json=@flotilla/examples/conformanceJsonSchema`).
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { registerJsonSchemaTool } from './conformance.js';

/** Agent entry point: a fresh server per session with the one SEP-1613 tool (host it as server `json`). */
export default function conformanceJsonSchemaServer(): McpServer {
  const server = new McpServer({ name: 'flotilla-conformance-json-schema', version: '1.0.0' });
  registerJsonSchemaTool(server, 'schema_2020_12_tool');
  return server;
}
