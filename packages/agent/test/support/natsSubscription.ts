import { decodeJson } from '@flotilla/protocol';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { z } from 'zod';
import { waitUntil } from './agentFixture.js';

/** Collects and validates every message on a subject; invalid payloads are kept as errors for assertions. */
export class CollectedSubject<S extends z.ZodType> {
  readonly values: Array<z.output<S>> = [];
  readonly errors: string[] = [];
  private readonly sub: Subscription;

  constructor(nc: NatsConnection, subject: string, schema: S) {
    this.sub = nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return;
        const decoded = decodeJson(schema, msg.data);
        if (decoded.ok) this.values.push(decoded.value);
        else this.errors.push(decoded.error);
      },
    });
  }

  async waitFor(match: (v: z.output<S>) => boolean, timeoutMs = 20_000): Promise<z.output<S>> {
    let found: z.output<S> | undefined;
    await waitUntil(() => (found = this.values.find(match)) !== undefined, timeoutMs, `message on ${this.sub.getSubject()}`);
    return found!;
  }

  stop(): void {
    this.sub.unsubscribe();
  }
}
