import type { AnySchema, SchemaOutput } from '@modelcontextprotocol/sdk/server/zod-compat.js';
import { CallForwarder, type ForwardRequest } from '../../forwarding/CallForwarder.js';
import { traceIdOfMeta } from './activeTraceId.js';
import type { CallActivityRecorder } from './CallActivityRecorder.js';
import type { CallFacts, CallScope } from './CallScope.js';

/** Text of a tool's error result (`isError: true`), for the failures list. */
function errorResultText(result: unknown): string | undefined {
  if (typeof result !== 'object' || result === null || (result as { isError?: unknown }).isError !== true) return undefined;
  const content = (result as { content?: unknown }).content;
  if (!Array.isArray(content)) return 'tool returned an error result';
  const texts = content.flatMap((c: unknown) =>
    typeof c === 'object' && c !== null && (c as { type?: unknown }).type === 'text' && typeof (c as { text?: unknown }).text === 'string' ? [(c as { text: string }).text] : [],
  );
  return texts.length ? texts.join(' ') : 'tool returned an error result';
}

/**
 * The router's {@link CallForwarder}, each tool call run inside a {@link CallScope}, so the dashboard's
 * recorder can tie what the forwarder's observer hears to one call, and learn the call's error. The
 * forwarding itself is the parent's, unchanged.
 */
export class ScopedCallForwarder extends CallForwarder {
  constructor(
    forwarderArgs: ConstructorParameters<typeof CallForwarder>,
    private readonly scope: CallScope,
    private readonly recorder: CallActivityRecorder,
  ) {
    super(...forwarderArgs);
  }

  override forward<S extends AnySchema>(req: ForwardRequest<S>): Promise<SchemaOutput<S>> {
    if (req.request.method !== 'tools/call') return super.forward(req);
    const traceId = traceIdOfMeta(req.client.meta);
    const facts: CallFacts = { tool: req.target, attempts: [], ...(traceId ? { traceId } : {}) };
    return this.scope.run(facts, async () => {
      try {
        const result = await super.forward(req);
        const error = errorResultText(result);
        if (error !== undefined) facts.error = error;
        return result;
      } catch (err) {
        facts.error = err instanceof Error ? err.message : String(err);
        throw err;
      } finally {
        this.recorder.settled(facts);
      }
    });
  }
}
