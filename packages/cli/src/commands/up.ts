import { mkdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import type { ServerAffinity } from '@flotilla/protocol';
import { env, parseAffinity, parsePort } from '../options.js';
import { ManagedProcess } from '../up/ManagedProcess.js';
import { LOCAL_MESH_MOUNT, LOCAL_MESH_MOUNT_PACKAGE, writeLocalMeshServers } from '../up/localMeshMount.js';
import { LOCAL_MESH_AGENTS, localMeshAffinity } from '../up/localMeshPlan.js';
import { agentKeyArgs, localMeshKeys, routerKeyArgs } from '../up/localMeshKeys.js';
import { redactServers } from '@flotilla/trust';

const BIN = fileURLToPath(new URL('../bin.js', import.meta.url));

/** `flotilla up`: a whole local mesh (NATS if needed, router, three agents with the example servers). */
export function upCommand(): Command {
  return new Command('up')
    .description('start a local mesh: nats-server (if none is reachable), a router and three agents with the example servers, two of them also mounting the npm filesystem server by stdio')
    .option('--nats <url>', 'NATS URL to use, or to start nats-server on', env.natsUrl)
    .option('--port <port>', 'router port', parsePort, 8080)
    .option('--dir <dir>', 'where logs, the NATS store and the mesh\'s servers.json go', '.flotilla')
    .option('-v, --verbose', 'stream every process log to this terminal')
    .option('--affinity <server=mode>', 'session affinity of an example server: none or sticky (default: stateful=sticky, others none); repeatable', parseAffinity, {})
    .action(async (o: { nats: string; port: number; dir: string; verbose?: boolean; affinity: Record<string, ServerAffinity> }) => {
      const affinity = localMeshAffinity(o.affinity);
      const dir = resolve(o.dir);
      await mkdir(join(dir, 'logs'), { recursive: true });
      const started: ManagedProcess[] = [];
      let stopping = false;
      const stopAll = async (code: number): Promise<never> => {
        if (!stopping) {
          stopping = true;
          process.stdout.write('\nstopping the local mesh...\n');
          // Agents first, so they drain and deregister while the router and NATS are still up.
          const order = [...started].reverse();
          for (const p of order) await p.stop(p.label === 'nats' ? 3000 : 8000);
          process.stdout.write('stopped.\n');
        }
        process.exit(code);
      };
      process.once('exit', () => started.forEach((p) => p.killNow()));
      process.once('SIGINT', () => void stopAll(0));
      process.once('SIGTERM', () => void stopAll(0));

      try {
        const natsUrl = new URL(o.nats);
        const natsPort = Number(natsUrl.port || 4222);
        const natsHost = natsUrl.hostname || '127.0.0.1';
        let natsNote = `using the nats-server already at ${redactServers(o.nats)}`;
        if (!(await reachable(natsHost, natsPort))) {
          const nats = new ManagedProcess('nats', 'nats-server', ['-a', natsHost, '-p', String(natsPort), '-js', '-sd', join(dir, 'nats')], join(dir, 'logs', 'nats.log'), Boolean(o.verbose));
          started.push(nats);
          await Promise.race([
            waitReachable(natsHost, natsPort, 10_000),
            nats.exited.then((c) => { throw new Error(`nats-server exited (${c}); is it installed? (apt-get install nats-server) See ${join(dir, 'logs', 'nats.log')}`); }),
          ]);
          natsNote = `started nats-server at ${redactServers(o.nats)} (JetStream store in ${join(dir, 'nats')})`;
        }
        const mount = await writeLocalMeshServers(dir);
        const keys = localMeshKeys(join(dir, 'keys'), LOCAL_MESH_AGENTS.map((a) => a.nodeId));
        const router = new ManagedProcess('router', process.execPath, [BIN, 'router', '--nats', o.nats, '--port', String(o.port), ...routerKeyArgs(keys)], join(dir, 'logs', 'router.log'), Boolean(o.verbose));
        started.push(router);
        const routerReady = await router.ready(30_000);
        const agents = LOCAL_MESH_AGENTS.map((plan) => {
          const args = [BIN, 'agent', '--node-id', plan.nodeId, '--nats', o.nats, '--port', '0', '--grpc-port', '0', '--drain-grace', '5000', ...agentKeyArgs(keys, plan.nodeId)];
          for (const s of plan.servers) args.push('--server', `${s}=@flotilla/examples/${s}`);
          for (const s of plan.servers) if (affinity[s]) args.push('--affinity', `${s}=${affinity[s]}`);
          if (plan.mount) args.push('--config', mount.config);
          const p = new ManagedProcess(plan.nodeId, process.execPath, args, join(dir, 'logs', `${plan.nodeId}.log`), Boolean(o.verbose));
          started.push(p);
          return { plan, p };
        });
        const ready = await Promise.all(agents.map(async ({ plan, p }) => ({ plan, line: await p.ready(30_000) })));
        const base = String(routerReady.url ?? `http://127.0.0.1:${o.port}/mcp`).replace(/\/mcp$/, '');
        process.stdout.write(
          [
            '',
            'Flotilla local mesh is up.',
            `  NATS       ${natsNote}`,
            `  router     MCP endpoint ${base}/mcp`,
            `  auth       OPEN: no authentication (loopback only; anyone on this machine may call every tool). To require it: docs/security.md#front-door`,
            `  dashboard  ${base}/dashboard`,
            `  ops        ${base}/healthz  ${base}/readyz  ${base}/metrics  ${base}/api/v1/nodes`,
            ...ready.map(({ plan, line }) => `  ${plan.nodeId.padEnd(10)} ${String(line.url)}  servers: ${[...plan.servers.map((s) => (affinity[s] === 'sticky' ? `${s} (sticky)` : s)), ...(plan.mount ? [`${LOCAL_MESH_MOUNT} (stdio: ${LOCAL_MESH_MOUNT_PACKAGE} on ${mount.files})`] : [])].join(', ')}  gRPC health: ${String(line.grpc)}`),
            `  keys       generated for this run in ${keys.dir}: nodes sign their records and reports, the router sends agents mesh tokens,`,
            `             drain needs the operator key (node packages/cli/dist/bin.js drain node-2 --operator-seed-file ${keys.operator.seedFile})`,
            `  NATS auth  none: the local nats-server is open to this machine (deploy/nats/ has the production config)`,
            `  logs       ${join(dir, 'logs')}`,
            '',
            'Try:  npx flotilla tools',
            '      npx flotilla call slow_work --arg steps=10 --arg stepMs=300',
            `      npx flotilla call ${LOCAL_MESH_MOUNT}_read_text_file --arg path=${join(mount.files, 'hello.txt')}`,
            'Ctrl-C stops everything this command started.',
            '',
          ].join('\n'),
        );
        // Stay up; if any process dies, say so (the rest keep running, as in a real fleet).
        for (const p of started) void p.exited.then((code) => { if (!stopping) process.stderr.write(`${p.label} exited with code ${code}; see ${join(dir, 'logs', `${p.label}.log`)}\n`); });
      } catch (err) {
        process.stderr.write(`flotilla up failed: ${(err as Error).message}\n`);
        await stopAll(1);
      }
    });
}

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, host);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

async function waitReachable(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await reachable(host, port))) {
    if (Date.now() > deadline) throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
