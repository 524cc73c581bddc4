import { subjects } from '@flotilla/protocol';

/** A NATS user: authenticated by NKey (public key) or by user name and password. */
export type NatsUserAuth = { nkey: string } | { user: string; password: string };

/** What {@link natsServerConfig} builds a config for. */
export interface NatsServerConfigSpec {
  /** Subject prefix (default `flotilla`). */
  prefix?: string;
  /** Account name holding the mesh (default `FLOTILLA`). */
  account?: string;
  /** One entry per agent: its node id and how it authenticates. */
  agents: Array<{ nodeId: string } & NatsUserAuth>;
  routers: NatsUserAuth[];
  operators: NatsUserAuth[];
  /** `listen` address (default `127.0.0.1:4222`). */
  listen?: string;
  /** JetStream store directory (default `/var/lib/nats`). */
  storeDir?: string;
  /** TLS: server certificate, key, and (for client certificates) the CA and `verify`. */
  tls?: { certFile: string; keyFile: string; caFile?: string; verify?: boolean };
}

/** Reply-subject prefix an agent's connection uses (`NATS_INBOX_PREFIX`), so it can be allowed only its own. */
export function agentInboxPrefix(nodeId: string): string {
  return `_INBOX_${nodeId}`;
}

/** The subject permissions of each role, for a prefix: what `deploy/nats/flotilla.conf` spells out. */
export function rolePermissions(prefix: string = 'flotilla'): {
  agent: (nodeId: string) => { publish: string[]; subscribe: string[] };
  router: { publish: string[]; subscribe: string[] };
  operator: { publish: string[]; subscribe: string[] };
} {
  const s = subjects(prefix);
  const bucket = s.registryBucket;
  const stream = `KV_${bucket}`;
  const kvRead = kvReadPermissions(s.registryBucket);
  return {
    agent: (nodeId) => ({
      publish: [
        s.load(nodeId),
        s.progress(nodeId),
        s.events,
        `$KV.${bucket}.nodes.${nodeId}`,
        '$JS.API.INFO',
        `$JS.API.STREAM.INFO.${stream}`,
        `$JS.API.DIRECT.GET.${stream}.$KV.${bucket}.nodes.${nodeId}`,
      ],
      subscribe: [s.control(nodeId), `${agentInboxPrefix(nodeId)}.>`],
    }),
    router: {
      publish: [
        ...kvRead,
        ...kvWatchPermissions(s.registryBucket),
        // Client sessions' shared state (router replicas): read, written, watched and created by routers only.
        ...kvReadPermissions(s.sessionBucket).filter((p) => p !== '$JS.API.INFO'),
        ...kvWatchPermissions(s.sessionBucket),
        `$KV.${s.sessionBucket}.>`,
        `${prefix}.v1.control.*`,
        // Router replicas talk to each other: session pushes, asks and stream hand-offs, answers, cancels.
        s.allRouterReplica,
      ],
      subscribe: [s.allLoad, s.allProgress, s.events, s.allRouterReplica, '_INBOX.>'],
    },
    operator: {
      publish: [...kvRead, `${prefix}.v1.control.*`],
      subscribe: [s.events, '_INBOX.>'],
    },
  };
}

/** What reading a KV bucket (get, info) needs. */
function kvReadPermissions(bucket: string): string[] {
  const stream = `KV_${bucket}`;
  return [
    '$JS.API.INFO',
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.API.STREAM.MSG.GET.${stream}`,
  ];
}

/** What creating and watching a KV bucket needs (stream create, ordered consumers and their flow control). */
function kvWatchPermissions(bucket: string): string[] {
  const stream = `KV_${bucket}`;
  return [
    `$JS.API.STREAM.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.DELETE.${stream}.>`,
    `$JS.API.CONSUMER.INFO.${stream}.>`,
    `$JS.FC.${stream}.>`,
  ];
}

function userLine(auth: NatsUserAuth, perms: { publish: string[]; subscribe: string[] }, allowResponses: boolean): string {
  const id = 'nkey' in auth ? `nkey: ${auth.nkey}` : `user: ${JSON.stringify(auth.user)}, password: ${JSON.stringify(auth.password)}`;
  const list = (xs: string[]): string => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;
  const responses = allowResponses ? ', allow_responses: true' : '';
  return `      { ${id}, permissions: { publish: { allow: ${list(perms.publish)} }, subscribe: { allow: ${list(perms.subscribe)} }${responses} } }`;
}

/**
 * A nats-server (2.9+) configuration for a Flotilla mesh: one account with JetStream, one user per agent
 * allowed only its own reports, registry key and control subject, router users that read everything and
 * may send control requests, operator users that may send control requests and read the registry, and no
 * anonymous access. Tests start nats-server with it; `deploy/nats/flotilla.conf` is one instance of it.
 */
export function natsServerConfig(spec: NatsServerConfigSpec): string {
  const prefix = spec.prefix ?? 'flotilla';
  const perms = rolePermissions(prefix);
  const users = [
    ...spec.agents.map((a) => userLine(a, perms.agent(a.nodeId), true)),
    // Routers answer each other's requests (session asks, stream hand-offs) on the asker's reply subject.
    ...spec.routers.map((r) => userLine(r, perms.router, true)),
    ...spec.operators.map((o) => userLine(o, perms.operator, false)),
  ];
  const tls = spec.tls
    ? [
        'tls {',
        `  cert_file: ${JSON.stringify(spec.tls.certFile)}`,
        `  key_file: ${JSON.stringify(spec.tls.keyFile)}`,
        ...(spec.tls.caFile ? [`  ca_file: ${JSON.stringify(spec.tls.caFile)}`] : []),
        ...(spec.tls.verify ? ['  verify: true'] : []),
        '}',
      ]
    : [];
  return [
    `listen: ${JSON.stringify(spec.listen ?? '127.0.0.1:4222')}`,
    `jetstream { store_dir: ${JSON.stringify(spec.storeDir ?? '/var/lib/nats')} }`,
    ...tls,
    'accounts {',
    `  ${spec.account ?? 'FLOTILLA'} {`,
    '    jetstream: enabled',
    '    users: [',
    users.join(',\n'),
    '    ]',
    '  }',
    '}',
    '',
  ].join('\n');
}
