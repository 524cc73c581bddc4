import { mkdtemp, rm } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createLocalKeySet, generateKey, natsConnectionOptions, natsServerConfig, type GeneratedKey, type LocalKeySet } from '../../packages/trust/src/index.js';
import { FlotillaProcess } from './FlotillaProcess.js';
import { NatsServerProcess } from './NatsServerProcess.js';

/** Options of {@link SecureMesh.start}. */
export interface SecureMeshOptions {
  /** Node ids to make keys (and NATS users) for. */
  nodeIds: string[];
  /** Start nats-server with accounts and per-role permissions (default); false: an open server. */
  enforceNats?: boolean;
}

/**
 * A mesh with every protection on, of real processes: keys made for it (issuer, operator, router mesh key,
 * one key and credential per node), a nats-server that (by default) enforces accounts and subject
 * permissions with NKey users, and `flotilla router`/`flotilla agent` started with those keys and
 * `FLOTILLA_INSECURE=0`. For the attack tests.
 */
export class SecureMesh {
  readonly agents = new Map<string, { process: FlotillaProcess; url: string }>();
  routerUrl = '';
  router: FlotillaProcess | undefined;

  private constructor(
    readonly nats: NatsServerProcess,
    readonly keys: LocalKeySet,
    /** The router's NATS identity (a user NKey), its seed in `routerNatsSeedFile`. */
    readonly routerNats: GeneratedKey,
    readonly routerNatsSeedFile: string,
    readonly dir: string,
    readonly enforced: boolean,
  ) {}

  static async start(options: SecureMeshOptions): Promise<SecureMesh> {
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-secure-'));
    const keys = createLocalKeySet(join(dir, 'keys'), options.nodeIds);
    const routerNats = generateKey('router');
    const routerNatsSeedFile = join(dir, 'keys', 'router-nats.nk');
    writeFileSync(routerNatsSeedFile, `${routerNats.seed}\n`, { mode: 0o600 });
    const enforced = options.enforceNats !== false;
    const nats = await NatsServerProcess.start(
      enforced
        ? {
            config: ({ port, storeDir }) =>
              natsServerConfig({
                listen: `127.0.0.1:${port}`,
                storeDir,
                agents: options.nodeIds.map((nodeId) => ({ nodeId, nkey: keys.nodes.get(nodeId)!.publicKey })),
                routers: [{ nkey: routerNats.publicKey }],
                operators: [{ nkey: keys.operator.publicKey }],
              }),
          }
        : {},
    );
    return new SecureMesh(nats, keys, routerNats, routerNatsSeedFile, dir, enforced);
  }

  /** Starts the router with the mesh's keys (and NATS identity); extra args after, extra environment. */
  async startRouter(extra: string[] = [], label = 'router', env: NodeJS.ProcessEnv = {}): Promise<{ process: FlotillaProcess; url: string }> {
    const auth = this.enforced ? ['--nats-nkey-seed-file', this.routerNatsSeedFile] : [];
    const process = FlotillaProcess.spawn(
      label,
      ['router', '--nats', this.nats.url, '--port', '0', '--trusted-issuers-file', this.keys.issuersFile, '--mesh-seed-file', this.keys.mesh.seedFile, ...auth, ...extra],
      { FLOTILLA_INSECURE: '0', ...env },
    );
    const url = String((await process.ready(60_000)).url);
    if (!this.router) {
      this.router = process;
      this.routerUrl = url;
    }
    return { process, url };
  }

  /** Starts an agent with its node key, the operator and mesh keys, and its NATS identity (its node key). */
  async startAgent(nodeId: string, servers: string[], extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<{ process: FlotillaProcess; url: string }> {
    const node = this.keys.nodes.get(nodeId);
    if (!node) throw new Error(`no keys for ${nodeId}`);
    const auth = this.enforced ? ['--nats-nkey-seed-file', node.seedFile] : [];
    const args = ['agent', '--node-id', nodeId, '--nats', this.nats.url, '--port', '0', '--grpc-port', '0', '--node-seed-file', node.seedFile, '--node-credential-file', node.credentialFile,
      '--operator-keys-file', this.keys.operatorsFile, '--mesh-keys-file', this.keys.meshKeysFile, ...auth, ...extra];
    for (const s of servers) args.push('--server', s);
    const process = FlotillaProcess.spawn(nodeId, args, { FLOTILLA_INSECURE: '0', ...env });
    const url = String((await process.ready(60_000)).url);
    this.agents.set(nodeId, { process, url });
    return { process, url };
  }

  /** A NATS connection as the holder of `seedFile` (none: anonymous); rejects when the server refuses it. */
  connectAs(seedFile: string | undefined, name = 'attacker'): Promise<NatsConnection> {
    return connect(natsConnectionOptions({ servers: this.nats.url, ...(seedFile ? { nkeySeedFile: seedFile } : {}) }, { name, maxReconnectAttempts: 0, timeout: 5000 }));
  }

  /** GETs the router's ops endpoint as JSON. */
  async api<T>(path: string): Promise<T> {
    return (await (await fetch(this.routerUrl.replace(/\/mcp$/, path))).json()) as T;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.process.stop()));
    await this.router?.stop();
    await this.nats.dispose();
    await rm(this.dir, { recursive: true, force: true });
  }
}
