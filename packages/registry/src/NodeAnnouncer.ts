import type { NodeRecord, PingData } from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import { NodeIdCollisionError, NodeNotRegisteredError, RegistryAuthError, type Registry } from './Registry.js';

/** State of an announcer, for health reporting. */
export type AnnouncerState = 'registering' | 'registered' | 'retrying' | 'stopped' | 'fatal';

/** Options for {@link NodeAnnouncer}. */
export interface NodeAnnouncerOptions {
  registry: Registry;
  record: () => NodeRecord;
  ping: () => PingData;
  logger: Logger;
  heartbeatIntervalMs?: number;
  /** Upper bound of the retry backoff while the registry is unreachable, ms. */
  maxBackoffMs?: number;
  onStateChange?: (state: AnnouncerState, error?: Error) => void;
}

/**
 * Keeps one node announced: registers, heartbeats every interval with fresh ping data, re-registers when
 * the registry lost the node (restart, reaping), and retries with capped exponential backoff while the
 * registry is unreachable, so an agent started before its registry still joins when it comes up.
 */
export class NodeAnnouncer {
  private state: AnnouncerState = 'registering';
  private timer: NodeJS.Timeout | undefined;
  private backoffMs = 0;
  private needsRegister = true;
  private stopped = false;
  private running: Promise<void> = Promise.resolve();
  private lastError: Error | undefined;

  constructor(private readonly options: NodeAnnouncerOptions) {}

  /** Current state and the last error, if any. */
  status(): { state: AnnouncerState; error?: string } {
    return { state: this.state, ...(this.lastError ? { error: this.lastError.message } : {}) };
  }

  /** Registers once (throwing a collision or auth error at once), then keeps heartbeating in the background. */
  async start(): Promise<void> {
    await this.tick(true);
  }

  /** Re-announces now, e.g. after the record changed (draining). */
  async refresh(): Promise<void> {
    this.needsRegister = true;
    await this.runTick();
  }

  /** Stops heartbeating and, when `deregister` is set, withdraws the node. */
  async stop(deregister = true): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running.catch(() => {});
    this.setState('stopped');
    if (deregister) {
      try {
        await this.options.registry.deregister(this.options.record().nodeId);
      } catch (err) {
        this.options.logger.warn({ err }, 'deregistration failed; the registry will expire the node');
      }
    }
  }

  private runTick(): Promise<void> {
    this.running = this.running.then(() => this.tick(false));
    return this.running;
  }

  private async tick(first: boolean): Promise<void> {
    if (this.stopped) return;
    const { registry, logger } = this.options;
    const record = this.options.record();
    try {
      if (this.needsRegister) {
        await registry.register(record);
        this.needsRegister = false;
        logger.info({ registry: registry.kind, nodeId: record.nodeId }, 'node registered');
      }
      await registry.heartbeat(record, this.options.ping());
      if (this.state !== 'registered') this.setState('registered');
      this.backoffMs = 0;
    } catch (err) {
      const error = err as Error;
      this.lastError = error;
      if (error instanceof NodeIdCollisionError || (first && error instanceof RegistryAuthError)) {
        this.setState('fatal', error);
        throw error;
      }
      if (error instanceof NodeNotRegisteredError) {
        logger.warn({ nodeId: record.nodeId }, 'registry lost this node; re-registering');
        this.needsRegister = true;
      } else {
        this.needsRegister = true;
        this.backoffMs = Math.min(this.options.maxBackoffMs ?? 10_000, Math.max(250, this.backoffMs * 2));
        if (this.state !== 'retrying') logger.error({ err: error, registry: registry.kind }, 'registry unreachable; retrying');
        this.setState('retrying', error);
      }
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    const delay = this.backoffMs || this.options.heartbeatIntervalMs || 1000;
    this.timer = setTimeout(() => void this.runTick(), delay);
    this.timer.unref();
  }

  private setState(state: AnnouncerState, error?: Error): void {
    this.state = state;
    this.options.onStateChange?.(state, error);
  }
}
