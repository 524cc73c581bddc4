import type { PingData } from '@flotilla/protocol';
import type { Registry } from '@flotilla/registry';
import type { Logger } from '@flotilla/telemetry';

/** A node's latest heartbeat as the registry stores it. */
export interface NodeHeartbeat {
  instanceId: string;
  ping: PingData | undefined;
  /** Epoch ms of the heartbeat (the registry's own time of the write). */
  at: number;
  /** Epoch ms when this router read it: `readAt - at` is how old the heartbeat was then. */
  readAt: number;
}

/** A reading younger than this is used as is, ms; an older one is read again (agents heartbeat every second). */
export const PING_REFRESH_MS = 500;
/** How long a snapshot waits for a new reading before it uses the last one, ms. */
export const PING_READ_WAIT_MS = 300;
/** Heartbeats read longer ago than this are not shown, ms: an old reading would mislead more than a dash. */
export const PING_MAX_AGE_MS = 10_000;

/**
 * The nodes' latest heartbeats (ping data: NATS round trip, uptime, loop lag), read from the registry on
 * demand. The registry watch the router routes by only reports changes of records and health, not every
 * heartbeat, so its ping data is as old as the node's last record change; the dashboard reads
 * `registry.list()` instead, when it builds a snapshot (about once a second while someone looks; each read
 * is one request per node on NATS KV, one on Consul).
 */
export class LivePingData {
  private latest: { readAt: number; nodes: Map<string, NodeHeartbeat> } | undefined;
  private reading: Promise<void> | undefined;
  private lastError: string | undefined;

  constructor(
    private readonly registry: Pick<Registry, 'list'>,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * A recent reading: reads the registry again when the last reading is older than
   * {@link PING_REFRESH_MS}, waiting for it at most `waitMs` (then the last reading serves, if not too old).
   */
  async heartbeats(waitMs = PING_READ_WAIT_MS): Promise<ReadonlyMap<string, NodeHeartbeat> | undefined> {
    if (!this.latest || this.now() - this.latest.readAt >= PING_REFRESH_MS) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.refresh(), new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
      clearTimeout(timer);
    }
    return this.latest && this.now() - this.latest.readAt <= PING_MAX_AGE_MS ? this.latest.nodes : undefined;
  }

  /** Reads the registry now (at most one read at a time); resolves when done, never rejects. */
  refresh(): Promise<void> {
    this.reading ??= this.registry
      .list({ includeCritical: true })
      .then(
        (nodes) => {
          const readAt = this.now();
          this.latest = {
            readAt,
            nodes: new Map(nodes.map((n) => [n.record.nodeId, { instanceId: n.record.instanceId, ping: n.ping, at: n.lastHeartbeatAt, readAt }])),
          };
          this.lastError = undefined;
        },
        (err: unknown) => {
          const message = err instanceof Error ? err.message : String(err);
          // Once per distinct problem: the dashboard asks every second.
          if (message !== this.lastError) this.logger.warn({ err }, 'dashboard cannot read heartbeats from the registry');
          this.lastError = message;
        },
      )
      .finally(() => {
        this.reading = undefined;
      });
    return this.reading;
  }
}
