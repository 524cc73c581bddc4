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
}

/** Builds the subject names for a prefix (letters, digits, `_` and `-` only, dot-separated). */
export function subjects(prefix: string = DEFAULT_SUBJECT_PREFIX): Subjects {
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(prefix)) {
    throw new Error(`invalid NATS subject prefix "${prefix}": use letters, digits, "_" or "-", dot-separated`);
  }
  const node = (id: string): string => NodeIdSchema.parse(id);
  return {
    load: (id) => `${prefix}.v1.load.${node(id)}`,
    progress: (id) => `${prefix}.v1.progress.${node(id)}`,
    control: (id) => `${prefix}.v1.control.${node(id)}`,
    allLoad: `${prefix}.v1.load.*`,
    allProgress: `${prefix}.v1.progress.*`,
    events: `${prefix}.v1.events`,
    registryBucket: `${prefix.replace(/\./g, '_')}_nodes`,
  };
}
