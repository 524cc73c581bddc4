import { hostname } from 'node:os';
import { Command, Option } from 'commander';
import { REGISTRY_KINDS } from '@flotilla/registry';
import { runAgentCommand } from '../agent/runAgent.js';
import { SERVERS_JSON_HELP } from '../agent/serversJsonHelp.js';
import { bindEnv } from '../config/optionSources.js';
import { intInRange, parseAffinity, parsePort, parsePositiveInt, parseServerSpec } from '../options.js';
import { withNatsFlags } from '../security/natsFlags.js';
import { withAgentSecurityFlags } from '../security/securityFlags.js';

/** Environment variables of agent options that predate the `FLOTILLA_AGENT_*` names (shared with other commands). */
const SHARED_ENV = { nats: 'NATS_URL', prefix: 'FLOTILLA_PREFIX', registry: 'FLOTILLA_REGISTRY', nodeId: 'FLOTILLA_NODE_ID' } as const;

/** `flotilla agent`: serve MCP servers on this node and announce them. */
export function agentCommand(): Command {
  const cmd = new Command('agent')
    .description('serve MCP servers on this node (modules it hosts, stdio commands and remote URLs it mounts), announce them and report load over NATS')
    .option('-c, --config <file>', 'config file, YAML or JSON: options by long name in camelCase, plus mcpServers (servers.json, the shape Claude Desktop, Cursor and FastMCP read); reloaded on change')
    .option('--print-config', 'print the resolved configuration and where each value came from (flags > env > file > defaults; secrets redacted), then exit')
    .option('-s, --server <name=module>', 'MCP server module to host (repeatable): a file or package exporting a FastMCP instance or an McpServer factory', parseServerSpec)
    .option('--node-id <id>', 'node id, unique in the fleet', hostname().replace(/[^A-Za-z0-9_-]/g, '-'))
    .option('--nats <url>', 'NATS server URL', 'nats://127.0.0.1:4222')
    .option('--prefix <prefix>', 'NATS subject prefix', 'flotilla')
    .addOption(new Option('--registry <kind>', 'registry backend').choices([...REGISTRY_KINDS]).default('nats-kv'))
    .option('--host <host>', 'HTTP bind address', '127.0.0.1')
    .option('--port <port>', 'HTTP port (0 = any free)', parsePort, 0)
    .option('--advertise-host <host>', 'host routers use to reach this agent (default: --host)')
    .option('--grpc-port <port>', 'grpc.health.v1 port (0 = any free)', parsePort, 0)
    .option('--capacity <n>', 'concurrent tool calls', parsePositiveInt, 16)
    .option('--max-queue <n>', 'calls waiting beyond capacity before the node answers busy', parsePositiveInt, 64)
    .option('--zone <zone>', 'zone label')
    .option('--drain-grace <ms>', 'how long in-flight calls may finish on drain/SIGTERM (and on a server removed from the config file)', parsePositiveInt, 30_000)
    .option('--max-sessions <n>', 'most MCP sessions open at once, all hosted servers together; more initialize requests get HTTP 503 (-32016 SessionLimit)', parsePositiveInt, 10_000)
    .option('--session-idle-timeout <ms>', 'close a session with no open request, call or task for this long', intInRange(1, 2_147_483_647), 600_000)
    .option('--body-timeout-ms <ms>', 'a request body must arrive within this (slower: 408 and the connection closes)', intInRange(1, 2_147_483_647), 30_000)
    .option('--headers-timeout-ms <ms>', 'request headers must arrive within this', intInRange(1, 2_147_483_647), 10_000)
    .option('--max-connections <n>', 'most open HTTP connections (default: --max-sessions + 1024)', parsePositiveInt)
    .option('--affinity <server=mode>', 'session affinity announced for a server: none (calls spread per call) or sticky (one node per client session); repeatable', parseAffinity)
    .addHelpText('after', SERVERS_JSON_HELP)
    .action(async (_o: unknown, command: Command) => runAgentCommand(command));
  // The key and NATS flags keep their own documented variables (FLOTILLA_NODE_SEED_FILE, NATS_CREDS...).
  return withAgentSecurityFlags(withNatsFlags(bindEnv(cmd, 'FLOTILLA_AGENT', SHARED_ENV, new Set(['server', 'affinity']))));
}
