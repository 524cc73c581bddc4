import { CallCancelledError } from '../upstream/UpstreamFailure.js';
import { rateLimited } from './RateLimitedError.js';

/** The scheduler's caps (see `LimitsOptions`). */
export interface FairSchedulerLimits {
  readonly maxConcurrent: number;
  readonly perClientConcurrency: number;
  readonly perSessionConcurrency: number;
  readonly perClientQueue: number;
  readonly maxQueued: number;
  readonly maxQueueWaitMs: number;
}

interface Waiter {
  readonly client: ClientState;
  readonly session: string;
  readonly start: () => void;
  readonly fail: (err: Error) => void;
  done: boolean;
}

interface ClientState {
  readonly key: string;
  running: number;
  waiting: number;
  /** Waiters by session, sessions in round-robin order (the next to serve first). */
  readonly queues: Map<string, Waiter[]>;
  readonly sessionsRunning: Map<string, number>;
}

/** Runs `work` now or later; resolves with what it resolves. */
export type Release = () => void;

/**
 * The router's bounded, fair queue of forwarded requests (like deficit round robin with equal quanta):
 * at most `maxConcurrent` run at once, at most `perClientConcurrency` of one client and
 * `perSessionConcurrency` of one session. Requests beyond wait in their client's queue, and a freed slot
 * goes to the waiting client with the fewest requests running (then the next of its sessions in turn),
 * never simply to the oldest request. So a client that sends a flood of slow calls waits behind itself, and another client's call
 * starts at once. Queues are bounded (per client and in all) and waits too: past a bound the request
 * gets RateLimited (-32020) with `retryAfterMs`.
 */
export class FairScheduler {
  private readonly clients = new Map<string, ClientState>();
  /** Clients with waiters, in turn order. */
  private readonly turn = new Set<ClientState>();
  private running = 0;
  private queued = 0;

  constructor(private readonly limits: FairSchedulerLimits) {}

  /** Requests running now, and waiting. */
  stats(): { running: number; queued: number; clients: number } {
    return { running: this.running, queued: this.queued, clients: this.clients.size };
  }

  /**
   * Waits for a slot for one request of `client`'s `session`; resolves with its release (call it once,
   * when the request ends). Rejects with RateLimited when a queue is full or the wait too long, and with
   * a cancellation when `signal` aborts first.
   */
  acquire(clientKey: string, session: string, signal?: AbortSignal): Promise<Release> {
    const client = this.clientState(clientKey);
    if (this.canStart(client, session) && client.waiting === 0) return Promise.resolve(this.start(client, session));
    if (client.waiting >= this.limits.perClientQueue) {
      this.forgetIfIdle(client);
      return Promise.reject(rateLimited('client_queue', `Too many requests: this client already has ${client.running} running and ${client.waiting} waiting; retry later`, 1000));
    }
    if (this.queued >= this.limits.maxQueued) {
      this.forgetIfIdle(client);
      return Promise.reject(rateLimited('router_queue', `Too many requests: the router's queue is full (${this.queued} waiting); retry later`, 1000));
    }
    if (signal?.aborted) return Promise.reject(new CallCancelledError(String(signal.reason ?? 'cancelled')));
    return new Promise<Release>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => waiter.fail(new CallCancelledError(String(signal?.reason ?? 'cancelled')));
      const cleanup = (): void => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        client,
        session,
        done: false,
        start: () => {
          cleanup();
          resolve(this.start(client, session));
        },
        fail: (err) => {
          if (waiter.done) return;
          waiter.done = true;
          cleanup();
          this.dequeue(waiter);
          reject(err);
        },
      };
      timer = setTimeout(
        () => waiter.fail(rateLimited('queue_wait', `Too many requests: waited ${this.limits.maxQueueWaitMs} ms for a slot; retry later`, 1000)),
        this.limits.maxQueueWaitMs,
      );
      timer.unref();
      signal?.addEventListener('abort', onAbort, { once: true });
      let queue = client.queues.get(session);
      if (!queue) client.queues.set(session, (queue = []));
      queue.push(waiter);
      client.waiting++;
      this.queued++;
      this.turn.add(client);
    });
  }

  private clientState(key: string): ClientState {
    let client = this.clients.get(key);
    if (!client) this.clients.set(key, (client = { key, running: 0, waiting: 0, queues: new Map(), sessionsRunning: new Map() }));
    return client;
  }

  private canStart(client: ClientState, session: string): boolean {
    return (
      this.running < this.limits.maxConcurrent &&
      client.running < this.limits.perClientConcurrency &&
      (client.sessionsRunning.get(session) ?? 0) < this.limits.perSessionConcurrency
    );
  }

  private start(client: ClientState, session: string): Release {
    this.running++;
    client.running++;
    client.sessionsRunning.set(session, (client.sessionsRunning.get(session) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      client.running--;
      const n = client.sessionsRunning.get(session)! - 1;
      if (n === 0) client.sessionsRunning.delete(session);
      else client.sessionsRunning.set(session, n);
      this.pump();
      this.forgetIfIdle(client);
    };
  }

  /**
   * Starts waiters while there are slots. Each slot goes to the waiting client with the fewest requests
   * running (max-min fairness; ties in turn order), and within it to its sessions in turn.
   */
  private pump(): void {
    while (this.running < this.limits.maxConcurrent && this.turn.size > 0) {
      let best: { client: ClientState; waiter: Waiter } | undefined;
      for (const client of this.turn) {
        if (best && client.running >= best.client.running) continue;
        const waiter = this.nextOf(client);
        if (waiter) best = { client, waiter };
      }
      if (!best) return;
      const { client, waiter } = best;
      // This client goes to the back of the turn.
      this.turn.delete(client);
      this.dequeue(waiter);
      // And this session to the back of its client's turn.
      const rest = client.queues.get(waiter.session);
      if (rest) {
        client.queues.delete(waiter.session);
        client.queues.set(waiter.session, rest);
      }
      if (client.waiting > 0) this.turn.add(client);
      waiter.done = true;
      waiter.start();
    }
  }

  /** The next waiter of `client` that may start now (its sessions in turn), if any. */
  private nextOf(client: ClientState): Waiter | undefined {
    if (client.running >= this.limits.perClientConcurrency) return undefined;
    for (const [session, queue] of client.queues) {
      if ((client.sessionsRunning.get(session) ?? 0) >= this.limits.perSessionConcurrency) continue;
      const waiter = queue[0];
      if (waiter) return waiter;
    }
    return undefined;
  }

  private dequeue(waiter: Waiter): void {
    const { client } = waiter;
    const queue = client.queues.get(waiter.session);
    const i = queue ? queue.indexOf(waiter) : -1;
    if (i < 0) return;
    queue!.splice(i, 1);
    if (queue!.length === 0) client.queues.delete(waiter.session);
    client.waiting--;
    this.queued--;
    if (client.waiting === 0) this.turn.delete(client);
  }

  private forgetIfIdle(client: ClientState): void {
    if (client.running === 0 && client.waiting === 0) this.clients.delete(client.key);
  }
}
