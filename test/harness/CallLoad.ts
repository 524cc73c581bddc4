import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';

/** How a tool may be retried by the router: what the chaos tests hold it to. */
export type ToolKind = 'read-only' | 'idempotent' | 'non-idempotent';

/** One kind of call the load sends; `args` gets a fresh unique `seq` when the shape asks for one. */
export interface CallShape {
  readonly tool: string;
  readonly kind: ToolKind;
  /** Arguments of call number `seq` (unique across the whole load). */
  args(seq: number): Record<string, unknown>;
}

/** How one call ended, as its client saw it. */
export interface CallOutcome {
  readonly seq: number;
  readonly tool: string;
  readonly kind: ToolKind;
  readonly args: Record<string, unknown>;
  /** A result without `isError`. */
  readonly ok: boolean;
  /** Text of the result. */
  readonly text?: string;
  /** JSON-RPC error code, for calls that got an error. */
  readonly code?: number;
  readonly message?: string;
  /** The client's own timeout fired: the call hung. */
  readonly hung: boolean;
  /** Epoch ms when the call was sent and when it ended. */
  readonly startedAt: number;
  readonly endedAt: number;
  readonly ms: number;
}

/** Options of {@link CallLoad}. */
export interface CallLoadOptions {
  /** Concurrent clients, each with its own MCP session, calling one after another. */
  workers: number;
  /** Worker `w` sends shapes `w, w + workers, ...` in turn (mod the list). */
  shapes: readonly CallShape[];
  /** Every call's hard bound, ms: a call still open then counts as hung. */
  clientTimeoutMs: number;
}

/**
 * Steady closed-loop load through a router for chaos tests: every call is bounded by a client timeout and
 * its outcome recorded exactly (result, JSON-RPC error code and message, or hung), so a test can count
 * what was lost.
 */
export class CallLoad {
  readonly outcomes: CallOutcome[] = [];
  private stopping = false;
  private seq = 0;
  private loops: Promise<void>[] = [];
  private readonly inFlight = new Map<number, { tool: string; startedAt: number }>();
  private stopped: Promise<CallOutcome[]> | undefined;
  private clients: Array<{ client: Client; transport: StreamableHTTPClientTransport }> = [];
  /** Per worker: what its transport did (requests, statuses, errors), to explain a call that hung. */
  private readonly traces: string[][] = [];

  constructor(private readonly routerUrl: string, private readonly options: CallLoadOptions) {}

  /** Connects the workers and starts calling. */
  async start(): Promise<void> {
    this.clients = await Promise.all(
      Array.from({ length: this.options.workers }, async (_, w) => {
        const trace: string[] = (this.traces[w] = []);
        const note = (what: string): void => {
          trace.push(`${new Date().toISOString().slice(11, 23)} ${what}`);
          if (trace.length > 200) trace.splice(0, trace.length - 100);
        };
        const client = new Client({ name: 'chaos-load', version: '1.0.0' });
        const transport = new StreamableHTTPClientTransport(new URL(this.routerUrl), {
          // The SDK transport hands one AbortController's signal to every request; fetch adds a listener
          // per open request, which a long closed loop pushes past Node's warning threshold.
          fetch: async (url, init) => {
            if (init?.signal) setMaxListeners(0, init.signal);
            const resuming = new Headers(init?.headers).get('last-event-id');
            const what = `${init?.method ?? 'GET'}${resuming ? ` resume ${resuming.slice(0, 24)}` : ''}`;
            try {
              const res = await fetch(url, init);
              note(`${what} → ${res.status}`);
              return res;
            } catch (err) {
              note(`${what} → ${(err as Error).message}`);
              throw err;
            }
          },
        });
        client.onerror = (err) => note(`error: ${err.message}`);
        await client.connect(transport);
        return { client, transport };
      }),
    );
    this.loops = this.clients.map((c, w) => this.loop(c.client, w));
  }

  private traceSince(worker: number, since: number): string {
    const from = new Date(since).toISOString().slice(11, 23);
    return (this.traces[worker] ?? []).filter((line) => line.slice(0, 12) >= from).slice(0, 20).join('; ') || 'nothing';
  }

  /** Calls ended so far (optionally only those matching `filter`). */
  count(filter: (o: CallOutcome) => boolean = () => true): number {
    return this.outcomes.filter(filter).length;
  }

  /** Calls open right now, oldest first, for assertion messages: `tool (age ms)`. */
  describeInFlight(): string {
    const now = Date.now();
    return [...this.inFlight.values()].sort((a, b) => a.startedAt - b.startedAt).map((c) => `${c.tool} (${now - c.startedAt} ms)`).join(', ') || 'none';
  }

  /** Stops sending, waits for the calls in flight to end, closes the sessions, and returns every outcome. Idempotent. */
  stop(): Promise<CallOutcome[]> {
    this.stopped ??= (async () => {
      this.stopping = true;
      await Promise.all(this.loops);
      await Promise.all(this.clients.map(async ({ client, transport }) => {
        await transport.terminateSession().catch(() => {});
        await client.close().catch(() => {});
      }));
      return this.outcomes;
    })();
    return this.stopped;
  }

  private async loop(client: Client, worker: number): Promise<void> {
    const { shapes, workers, clientTimeoutMs } = this.options;
    for (let i = worker; !this.stopping; i += workers) {
      const shape = shapes[i % shapes.length]!;
      const seq = this.seq++;
      const args = shape.args(seq);
      const startedAt = Date.now();
      const t0 = performance.now();
      const base = { seq, tool: shape.tool, kind: shape.kind, args, startedAt };
      this.inFlight.set(seq, { tool: shape.tool, startedAt });
      try {
        const raw = await client.callTool({ name: shape.tool, arguments: args }, undefined, {
          // A hard bound: progress does not extend it, so a call that hangs is seen as such.
          timeout: clientTimeoutMs,
          onprogress: () => {},
        });
        const result = CallToolResultSchema.parse(raw);
        const text = result.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
        this.outcomes.push({ ...base, ok: result.isError !== true, text, hung: false, endedAt: Date.now(), ms: performance.now() - t0 });
      } catch (err) {
        const code = err instanceof McpError ? err.code : undefined;
        const message = err instanceof Error ? err.message : String(err);
        const hung = code === ErrorCode.RequestTimeout;
        // A call that hung says what its transport did meanwhile, so a rare failure explains itself.
        const story = hung ? ` [transport since the call: ${this.traceSince(worker, startedAt)}]` : '';
        this.outcomes.push({ ...base, ok: false, ...(code !== undefined ? { code } : {}), message: message + story, hung, endedAt: Date.now(), ms: performance.now() - t0 });
      } finally {
        this.inFlight.delete(seq);
      }
    }
  }
}

/** A one-line summary of outcomes by tool, for assertion messages. */
export function summarizeOutcomes(outcomes: readonly CallOutcome[]): string {
  const by = new Map<string, { ok: number; failed: Map<string, number> }>();
  for (const o of outcomes) {
    let entry = by.get(o.tool);
    if (!entry) by.set(o.tool, (entry = { ok: 0, failed: new Map() }));
    if (o.ok) entry.ok += 1;
    else {
      const key = o.hung ? 'hung' : `${o.code ?? '?'}: ${(o.message ?? '').slice(0, 160)}`;
      entry.failed.set(key, (entry.failed.get(key) ?? 0) + 1);
    }
  }
  return [...by].map(([tool, e]) => `${tool}: ${e.ok} ok${[...e.failed].map(([k, n]) => `, ${n}× [${k}]`).join('')}`).join('; ');
}
