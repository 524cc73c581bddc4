import { NodeIdSchema } from './NodeRecord.js';

/** Default prefix of every Flotilla NATS subject and KV bucket. */
export const DEFAULT_SUBJECT_PREFIX = 'flotilla';

/** NATS subject names, all under one configurable prefix. */
export interface Subjects {
  load(nodeId: string): string;
  progress(nodeId: string): string;
  control(nodeId: string): string;
  readonly allLoad: string;
  readonly allProgress: string;
  readonly events: string;
  /** KV bucket of the NATS KV registry backend. */
  readonly registryBucket: string;
  /** Router replicas: what one replica has for a client session whose stream another holds (notifications). */
  sessionPush(sid: string): string;
  /** Router replicas: requests for a client session's stream, answered by the replica that holds it. */
  sessionAsk(sid: string): string;
  /** Router replicas: asks the replica holding a client session's stream to hold an upstream session's stream too. */
  sessionStreams(sid: string): string;
  /** Router replicas: client answers to requests replica `tag` sent. */
  replicaAnswers(tag: string): string;
  /** Router replicas: client cancellations of requests another replica may run. */
  readonly sessionCancels: string;
  /** Router replicas: each one's heartbeat, so the others know when it is gone. */
  readonly routerHeartbeats: string;
  /** KV bucket of client sessions' shared state (router replicas). */
  readonly sessionBucket: string;
  /** Every router-replica subject above (session push/ask/streams, replica answers, cancels, heartbeats): for NATS permissions. */
  readonly allRouterReplica: string;
}

const SESSION_TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

/** Builds the subject names for a prefix (letters, digits, `_` and `-` only, dot-separated). */
export function subjects(prefix: string = DEFAULT_SUBJECT_PREFIX): Subjects {
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(prefix)) {
    throw new Error(`invalid NATS subject prefix "${prefix}": use letters, digits, "_" or "-", dot-separated`);
  }
  const node = (id: string): string => NodeIdSchema.parse(id);
  const token = (id: string): string => {
    if (!SESSION_TOKEN.test(id)) throw new Error(`invalid subject token "${id}"`);
    return id;
  };
  return {
    load: (id) => `${prefix}.v1.load.${node(id)}`,
    progress: (id) => `${prefix}.v1.progress.${node(id)}`,
    control: (id) => `${prefix}.v1.control.${node(id)}`,
    allLoad: `${prefix}.v1.load.*`,
    allProgress: `${prefix}.v1.progress.*`,
    events: `${prefix}.v1.events`,
    registryBucket: `${prefix.replace(/\./g, '_')}_nodes`,
    sessionPush: (sid) => `${prefix}.v1.router.session.${token(sid)}.push`,
    sessionAsk: (sid) => `${prefix}.v1.router.session.${token(sid)}.ask`,
    sessionStreams: (sid) => `${prefix}.v1.router.session.${token(sid)}.streams`,
    replicaAnswers: (tag) => `${prefix}.v1.router.replica.${token(tag)}.answers`,
    sessionCancels: `${prefix}.v1.router.cancels`,
    routerHeartbeats: `${prefix}.v1.router.alive`,
    sessionBucket: `${prefix.replace(/\./g, '_')}_sessions`,
    allRouterReplica: `${prefix}.v1.router.>`,
  };
}
