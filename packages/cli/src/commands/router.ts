import { Command, Option } from 'commander';
import { REGISTRY_KINDS } from '@flotilla/registry';
import { bindEnv } from '../config/optionSources.js';
import { withFrontDoorOptions } from '../frontDoorOptions.js';
import { STRATEGIES } from '../config/routerConfig.js';
import { runRouterCommand } from '../router/runRouter.js';
import { withNatsFlags } from '../security/natsFlags.js';
import { withRouterSecurityFlags } from '../security/securityFlags.js';
import { intInRange, parsePort, parsePositiveInt } from '../options.js';

/** Longest delay Node.js timers take (about 24.8 days); a longer one would fire at once. */
const MAX_TIMER_MS = 2_147_483_647;

/** `flotilla router`: the one MCP endpoint clients call. */
export function routerCommand(): Command {
  const cmd = new Command('router')
    .description('serve the merged MCP endpoint at /mcp and spread calls over the nodes')
    .option('-c, --config <file>', 'config file, YAML or JSON: any option below by its long name in camelCase ("maxAttempts": 5)')
    .option('--print-config', 'print the resolved configuration and where each value came from (flags > env > file > defaults), then exit')
    .option('--nats <url>', 'NATS server URL', 'nats://127.0.0.1:4222')
    .option('--prefix <prefix>', 'NATS subject prefix', 'flotilla')
    .addOption(new Option('--registry <kind>', 'registry backend').choices([...REGISTRY_KINDS]).default('nats-kv'))
    .option('--host <host>', 'bind address', '127.0.0.1')
    .option('--port <port>', 'port (0 = any free)', parsePort, 8080)
    .addOption(new Option('--strategy <name>', 'balancing strategy').choices([...STRATEGIES]).default('progress-aware'))
    .option('--max-body <bytes>', 'largest request body accepted', parsePositiveInt, 4 * 1024 * 1024)
    .option('--per-node-concurrency <n>', 'calls in flight per node before the router queues (default: twice the node capacity, at least 16)', parsePositiveInt)
    .option('--max-attempts <n>', 'most nodes tried for one call: retries, failovers and hedges together (1-10)', intInRange(1, 10), 3)
    .option('--retry-window-ms <ms>', "no retry or failover starts later than this after a call's first failed attempt", intInRange(1, MAX_TIMER_MS), 30_000)
    .option('--hedge-read-only', 'send a second copy of a read-only call to another replica when the first runs past the tool p95')
    .option('--call-timeout-ms <ms>', 'longest a forwarded call may go without an answer or a progress notification', intInRange(1, MAX_TIMER_MS), 10 * 60_000)
    .option('--session-idle-timeout-ms <ms>', 'a client session with no HTTP activity for this long is closed (then 404; the client initializes again)', intInRange(1, MAX_TIMER_MS), 30 * 60_000)
    .option('--max-client-sessions <n>', 'most client sessions at once; initialize past it gets HTTP 503', parsePositiveInt, 10_000)
    .option('--max-upstream-sessions <n>', "most upstream sessions (one per client session × node × server it used); past it the least recently used idle one closes", parsePositiveInt, 50_000)
    .option('--upstream-idle-timeout-ms <ms>', 'an upstream session no request used for this long closes, unless its client keeps state there', intInRange(1, MAX_TIMER_MS), 10 * 60_000)
    .option('--session-key-file <path>', 'file holding the mesh session key (32 bytes, base64; `openssl rand -base64 32`): the same on every replica behind one load balancer, so any replica serves any session (or FLOTILLA_SESSION_KEY)')
    .option('--reconnect-grace-ms <ms>', 'how long a client whose stream broke may take to resume it before its calls are cancelled', intInRange(0, MAX_TIMER_MS), 3000)
    .option('--max-tool-schema-bytes <bytes>', "largest tool definition a server may declare (JSON bytes); larger tools are refused, logged and counted", intInRange(1024, 64 * 1024 * 1024), 128 * 1024)
    .option('--max-tool-schema-depth <n>', "deepest nesting of a tool's input or output schema; deeper tools are refused, logged and counted", intInRange(4, 1000), 32)
    .option('--argument-check-budget-ms <ms>', "longest the router spends checking one call's arguments against the tool's schema (on a worker thread); past it the call goes on unchecked and its node checks them", intInRange(1, 60_000), 250)
    .option('--allowed-host <host>', 'Host header to accept (repeatable; default loopback names)', (v: string, p: string[] = []) => [...p, v])
    .option('--allowed-origin <origin>', 'Origin to accept (repeatable)', (v: string, p: string[] = []) => [...p, v])
    .action(async (_o: unknown, command: Command) => runRouterCommand(command));
  // The key and NATS flags keep their own documented variables (FLOTILLA_MESH_SEED_FILE, NATS_CREDS...).
  return withRouterSecurityFlags(withNatsFlags(bindEnv(withFrontDoorOptions(cmd), 'FLOTILLA_ROUTER', { nats: 'NATS_URL', prefix: 'FLOTILLA_PREFIX', registry: 'FLOTILLA_REGISTRY' })));
}
