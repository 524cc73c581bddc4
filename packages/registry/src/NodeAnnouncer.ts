import type { NodeRecord, PingData } from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import { NodeIdCollisionError, NodeNotRegisteredError, RegistryAuthError, RegistryConfigError, type Registry } from './Registry.js';

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
 *
 * Fatal errors stop it for good (state `fatal`, reported through `onStateChange`): a node id collision at
 * any time, a {@link RegistryConfigError}, and a {@link RegistryAuthError} before the node was ever
 * registered (a token revoked later is retried, since it may be fixed without restarting the agent).
 */
export class NodeAnnouncer {
  private state: AnnouncerState = 'registering';
  private timer: NodeJS.Timeout | undefined;
  private backoffMs = 0;
  private needsRegister = true;
  private stopped = false;
  private fatal = false;
  /** Whether a registration ever succeeded; until then rejected credentials are a configuration error. */
  private everRegistered = false;
  /** Whether the registry entry is ours to withdraw: never after a collision, where it belongs to another process. */
  private holdsRegistration = false;
  /** Serialises ticks: a refresh never runs concurrently with a scheduled heartbeat. */
  private running: Promise<void> = Promise.resolve();
  private lastError: Error | undefined;

  constructor(private readonly options: NodeAnnouncerOptions) {}

  /** Current state and the last error, if any. */
  status(): { state: AnnouncerState; error?: string } {
    return { state: this.state, ...(this.lastError ? { error: this.lastError.message } : {}) };
  }

  /**
   * Registers once, then keeps heartbeating in the background. Rejects on a collision, a configuration
   * error or rejected credentials; resolves (and keeps retrying) when the registry is merely unreachable.
   */
  async start(): Promise<void> {
    await this.enqueue();
    if (this.fatal && this.lastError) throw this.lastError;
  }

  /** Re-announces now, e.g. after the record changed (draining). */
  async refresh(): Promise<void> {
    this.needsRegister = true;
    await this.enqueue();
  }

  /**
   * Stops heartbeating and, when `deregister` is set, withdraws the node, unless this announcer never held
   * the registration (it never registered, or lost the id to another process in a collision).
   */
  async stop(deregister = true): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    this.setState('stopped');
    if (deregister && this.holdsRegistration) {
      try {
        await this.options.registry.deregister(this.options.record().nodeId);
      } catch (err) {
        this.options.logger.warn({ err }, 'deregistration failed; the registry will expire the node');
      }
    }
  }

  private enqueue(): Promise<void> {
    // tick never rejects, so the chain never breaks and no rejection goes unhandled from a timer.
    this.running = this.running.then(() => this.tick());
    return this.running;
  }

  private async tick(): Promise<void> {
    if (this.stopped || this.fatal) return;
    if (this.timer) clearTimeout(this.timer);
    const { registry, logger } = this.options;
    let record: NodeRecord;
    try {
      record = this.options.record();
    } catch (err) {
      logger.error({ err }, 'cannot build the node record; retrying at the next heartbeat');
      this.schedule();
      return;
    }
    // Two attempts: when the registry answers that it lost the node, re-register at once rather than
    // leaving the node invisible for another interval.
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        if (this.needsRegister) {
          await registry.register(record);
          this.needsRegister = false;
          this.everRegistered = true;
          this.holdsRegistration = true;
          logger.info({ registry: registry.kind, nodeId: record.nodeId }, 'node registered');
        }
        await registry.heartbeat(record, this.options.ping());
        if (this.state !== 'registered') this.setState('registered');
        this.backoffMs = 0;
        this.lastError = undefined;
        break;
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        this.lastError = error;
        if (error instanceof NodeIdCollisionError || error instanceof RegistryConfigError || (!this.everRegistered && error instanceof RegistryAuthError)) {
          this.fatal = true;
          if (error instanceof NodeIdCollisionError) this.holdsRegistration = false;
          logger.error({ err: error, registry: registry.kind, nodeId: record.nodeId }, 'cannot announce this node; giving up');
          this.setState('fatal', error);
          return;
        }
        this.needsRegister = true;
        if (error instanceof NodeNotRegisteredError && attempt === 0) {
          logger.warn({ nodeId: record.nodeId, registry: registry.kind }, 'registry lost this node; re-registering');
          continue;
        }
        this.backoffMs = Math.min(this.options.maxBackoffMs ?? 10_000, Math.max(250, this.backoffMs * 2));
        if (this.state !== 'retrying') logger.error({ err: error, registry: registry.kind }, 'registry unreachable; retrying');
        this.setState('retrying', error);
        break;
      }
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped || this.fatal) return;
    const delay = this.backoffMs || this.options.heartbeatIntervalMs || 1000;
    this.timer = setTimeout(() => void this.enqueue(), delay);
    this.timer.unref();
  }

  private setState(state: AnnouncerState, error?: Error): void {
    this.state = state;
    try {
      this.options.onStateChange?.(state, error);
    } catch (err) {
      this.options.logger.error({ err }, 'announcer state listener threw');
    }
  }
}
