import type { Logger } from '@flotilla/telemetry';
import type { CallTracker } from '../calls/CallTracker.js';
import { McpEndpoint, type SessionEvents } from '../http/McpEndpoint.js';
import type { SessionBudget } from '../http/SessionBudget.js';
import { DEFAULT_REMOTE_TIMEOUT_MS, isMount, type ResolvedServerSpec } from '../mounts/MountSpecs.js';
import { buildServerHost } from './buildServerHost.js';
import { HostedServerRuntime } from './HostedServerRuntime.js';
import { canonicalJson } from './toolDigest.js';
import { ToolCatalogProbe, type ToolCatalog } from './ToolCatalogProbe.js';

/** What {@link ServerRuntimes} needs from the agent. */
export interface ServerRuntimesDeps {
  readonly nodeId: string;
  readonly agentVersion: string;
  readonly tracker: CallTracker;
  readonly logger: Logger;
  readonly sessionIdleTimeoutMs: number;
  /** A request body must arrive within this, ms (408 otherwise). */
  readonly bodyTimeoutMs: number;
  readonly budget: SessionBudget;
  readonly sessionEvents: SessionEvents;
  /** A server is about to serve: its metrics start at zero. */
  serverAdded(name: string): void;
  /** A server's tool list is known or changed. */
  toolsChanged(name: string, catalog: ToolCatalog): void;
}

/** What {@link ServerRuntimes.apply} did. */
export interface ServersChange {
  added: string[];
  removed: string[];
  changed: string[];
  /** Servers of the new list that could not be started (the previous one, if any, keeps serving). */
  failed: Array<{ name: string; error: string }>;
  /** Runtimes taken out of service; the caller retires them once the change is announced. */
  retired: HostedServerRuntime[];
}

/**
 * The servers the agent serves now, in order: starts each (build its host, start mounted processes, open
 * its probe), and applies a new list while running (added, removed, and changed servers, a changed one
 * replaced by a new runtime under the same name once the new one is up).
 */
export class ServerRuntimes {
  private list: HostedServerRuntime[] = [];

  constructor(private readonly deps: ServerRuntimesDeps) {}

  all(): readonly HostedServerRuntime[] {
    return this.list;
  }

  get(name: string): HostedServerRuntime | undefined {
    return this.list.find((r) => r.name === name);
  }

  /** Starts the servers of the agent's start; a module that cannot be hosted fails it, a mount only goes NOT_SERVING. */
  async startAll(specs: readonly ResolvedServerSpec[]): Promise<void> {
    for (const spec of specs) this.list.push(await this.launch(spec));
  }

  /**
   * Makes `specs` the served list: new servers are started and join, removed ones leave, changed ones are
   * replaced. Never throws for one server: a failure is reported and leaves that server as it was.
   */
  async apply(specs: readonly ResolvedServerSpec[]): Promise<ServersChange> {
    const change: ServersChange = { added: [], removed: [], changed: [], failed: [], retired: [] };
    const next: HostedServerRuntime[] = [];
    for (const spec of specs) {
      const old = this.get(spec.name);
      if (old && canonicalJson(old.spec) === canonicalJson(spec)) {
        next.push(old);
        continue;
      }
      try {
        const launched = await this.launch(spec);
        if (old?.serving && !launched.serving) {
          // A change that does not answer would put a working server out of service: keep the old one.
          await this.discard(launched, old);
          change.failed.push({ name: spec.name, error: `the changed server did not answer initialize/tools/list; the previous one keeps serving` });
          next.push(old);
          continue;
        }
        next.push(launched);
        (old ? change.changed : change.added).push(spec.name);
        if (old) change.retired.push(old);
      } catch (err) {
        change.failed.push({ name: spec.name, error: err instanceof Error ? err.message : String(err) });
        if (old) next.push(old);
      }
    }
    for (const r of this.list) {
      if (!specs.some((s) => s.name === r.name)) {
        change.removed.push(r.name);
        change.retired.push(r);
      }
    }
    this.list = next;
    return change;
  }

  /**
   * Takes a runtime out of service for good, after the calls still open in its sessions finished (at most
   * `graceMs`): its sessions end, its probe closes, mounted processes stop.
   */
  async retire(runtime: HostedServerRuntime, graceMs: number): Promise<void> {
    const log = this.deps.logger.child({ server: runtime.name });
    const idle = await runtime.endpoint.whenNoCalls(graceMs);
    if (!idle) log.warn({ graceMs, openCalls: runtime.endpoint.openCalls }, 'retired server still had calls after the grace period; ending them');
    await runtime.endpoint.closeAll();
    await runtime.probe.close();
    await runtime.host.stop?.();
    log.info({ kind: runtime.spec.kind }, 'server retired');
  }

  /** Stops a runtime that never served (it took no sessions), and announces `kept`'s tools again. */
  private async discard(runtime: HostedServerRuntime, kept: HostedServerRuntime): Promise<void> {
    await runtime.endpoint.closeAll();
    await runtime.probe.close();
    await runtime.host.stop?.();
    this.deps.toolsChanged(kept.name, kept.probe.catalog);
    this.deps.logger.warn({ server: kept.name, kind: runtime.spec.kind }, 'changed server did not answer; stopped it and kept the previous one');
  }

  /** Closes every server's sessions and probe, then stops mounted processes (agent shutdown). */
  async stopAll(): Promise<void> {
    await Promise.allSettled(this.list.map((r) => r.endpoint.closeAll()));
    await Promise.allSettled(this.list.map((r) => r.probe.close()));
    await Promise.allSettled(this.list.map((r) => r.host.stop?.()));
  }

  /** Builds, starts and probes one server. */
  private async launch(spec: ResolvedServerSpec): Promise<HostedServerRuntime> {
    const { deps } = this;
    const log = deps.logger.child({ server: spec.name });
    const host = await buildServerHost(spec, { nodeId: deps.nodeId, logger: log, agentVersion: deps.agentVersion });
    deps.serverAdded(spec.name);
    let runtime: HostedServerRuntime | undefined;
    const endpoint = new McpEndpoint(spec.name, host, {
      nodeId: deps.nodeId,
      tracker: deps.tracker,
      logger: log,
      sessionIdleTimeoutMs: deps.sessionIdleTimeoutMs,
      bodyTimeoutMs: deps.bodyTimeoutMs,
      budget: deps.budget,
      events: deps.sessionEvents,
      refusal: () => runtime?.refusal(deps.nodeId),
    });
    const probe = new ToolCatalogProbe(spec.name, host, log, (catalog) => deps.toolsChanged(spec.name, catalog), { connectTimeoutMs: probeTimeout(spec) });
    runtime = new HostedServerRuntime(spec, host, endpoint, probe);
    await host.start?.();
    try {
      await probe.start();
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      if (!isMount(spec)) {
        await endpoint.closeAll();
        throw new Error(`server "${spec.name}" (module ${spec.module}) did not answer initialize/tools/list: ${detail}`, { cause: err });
      }
      runtime.serving = false;
      log.warn({ reason: detail }, 'mounted server does not answer yet: NOT_SERVING until it does');
    }
    deps.toolsChanged(spec.name, probe.catalog);
    log.info({ kind: spec.kind, style: host.style, tools: probe.catalog.tools.length, digest: probe.catalog.digest, affinity: spec.affinity, serving: runtime.serving }, 'server loaded');
    return runtime;
  }
}

/** How long the probe may wait for a mounted server's `initialize`: its startup or request timeout. */
function probeTimeout(spec: ResolvedServerSpec): number | undefined {
  if (spec.kind === 'stdio') return spec.startupTimeoutMs;
  if (spec.kind === 'remote') return spec.timeoutMs ?? DEFAULT_REMOTE_TIMEOUT_MS;
  return undefined;
}
