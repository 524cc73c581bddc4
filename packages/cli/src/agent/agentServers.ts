import type { ServerSpec } from '@flotilla/agent';
import type { ServerAffinity } from '@flotilla/protocol';
import { withAffinities } from '../options.js';

/**
 * The servers an agent serves: those of its config file, then those of `--server` flags (a flag replaces
 * a file entry of the same name: flags win), with `--affinity` (or the file's `affinity` map) applied.
 * Throws naming a server the affinities mention but nothing serves.
 */
export function agentServers(fromFile: readonly ServerSpec[], fromFlags: ReadonlyArray<{ name: string; module: string }>, affinity: Record<string, ServerAffinity>): ServerSpec[] {
  const flagged = new Set(fromFlags.map((s) => s.name));
  const merged: ServerSpec[] = [...fromFile.filter((s) => !flagged.has(s.name)), ...fromFlags];
  return withAffinities(merged, affinity);
}
