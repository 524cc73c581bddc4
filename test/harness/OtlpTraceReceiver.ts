import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { z } from 'zod';

/** An OTLP attribute value (JSON encoding): the kinds our spans use. */
const AnyValueSchema = z.looseObject({
  stringValue: z.string().optional(),
  boolValue: z.boolean().optional(),
  intValue: z.union([z.string(), z.number()]).optional(),
  doubleValue: z.number().optional(),
});
const AttributesSchema = z.array(z.object({ key: z.string(), value: AnyValueSchema })).default([]);

const SpanSchema = z.looseObject({
  traceId: z.string().regex(/^[0-9a-f]{32}$/),
  spanId: z.string().regex(/^[0-9a-f]{16}$/),
  parentSpanId: z.string().optional(),
  name: z.string(),
  kind: z.number().int(),
  attributes: AttributesSchema,
  events: z.array(z.looseObject({ name: z.string(), attributes: AttributesSchema })).default([]),
  status: z.looseObject({ code: z.number().int().optional(), message: z.string().optional() }).optional(),
});

/** OTLP/HTTP JSON `ExportTraceServiceRequest` (hex trace and span ids, as the JS exporter writes them). */
const ExportTraceServiceRequestSchema = z.object({
  resourceSpans: z.array(
    z.looseObject({
      resource: z.looseObject({ attributes: AttributesSchema }).optional(),
      scopeSpans: z.array(z.looseObject({ scope: z.looseObject({ name: z.string() }).optional(), spans: z.array(SpanSchema).default([]) })).default([]),
    }),
  ),
});

/** One exported span, with attributes flattened to plain values. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** Empty when the span is a root. */
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  attributes: Record<string, string | number | boolean>;
  events: Array<{ name: string; attributes: Record<string, string | number | boolean> }>;
  statusCode: number;
  /** Attributes of the resource that exported it (`service.name`...). */
  resource: Record<string, string | number | boolean>;
}

function flatten(attrs: z.infer<typeof AttributesSchema>): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of attrs) {
    const v = value.stringValue ?? value.boolValue ?? value.doubleValue ?? (value.intValue !== undefined ? Number(value.intValue) : undefined);
    if (v !== undefined) out[key] = v;
  }
  return out;
}

/**
 * A tiny OTLP/HTTP traces receiver for tests (JSON protocol: `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`):
 * collects every `POST /v1/traces` on a free loopback port and answers as a collector would. Bodies that
 * are not valid OTLP JSON are answered 400 and kept in {@link errors}, so a test can assert there were none.
 */
export class OtlpTraceReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly errors: string[] = [];

  private constructor(private readonly server: Server) {}

  /** Full URL for `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`. */
  get tracesUrl(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1/traces`;
  }

  /**
   * Environment that makes a Flotilla process export its spans here as OTLP/HTTP JSON, promptly (short
   * batch delay), whatever OTEL_* the test runner itself has.
   */
  exportEnv(bspDelayMs = 100): NodeJS.ProcessEnv {
    return {
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: this.tracesUrl,
      OTEL_BSP_SCHEDULE_DELAY: String(bspDelayMs),
      OTEL_SERVICE_NAME: undefined,
      OTEL_SDK_DISABLED: undefined,
    };
  }

  static async start(): Promise<OtlpTraceReceiver> {
    let receiver!: OtlpTraceReceiver;
    const server = createServer((req, res) => {
      void receiver.receive(req).then((status) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(status === 200 ? '{}' : '{"error":"bad request"}');
      });
    });
    receiver = new OtlpTraceReceiver(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  /** Spans of one trace. */
  trace(traceId: string): ReceivedSpan[] {
    return this.spans.filter((s) => s.traceId === traceId);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async receive(req: IncomingMessage): Promise<number> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.method !== 'POST' || req.url !== '/v1/traces') {
      this.errors.push(`${req.method ?? '?'} ${req.url ?? '?'}`);
      return 404;
    }
    try {
      const raw = Buffer.concat(chunks);
      const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
      const parsed = ExportTraceServiceRequestSchema.parse(JSON.parse(body.toString('utf8')));
      for (const rs of parsed.resourceSpans) {
        const resource = flatten(rs.resource?.attributes ?? []);
        for (const ss of rs.scopeSpans) {
          for (const s of ss.spans) {
            this.spans.push({
              traceId: s.traceId,
              spanId: s.spanId,
              parentSpanId: s.parentSpanId ?? '',
              name: s.name,
              kind: s.kind,
              attributes: flatten(s.attributes),
              events: s.events.map((e) => ({ name: e.name, attributes: flatten(e.attributes) })),
              statusCode: s.status?.code ?? 0,
              resource,
            });
          }
        }
      }
      return 200;
    } catch (err) {
      this.errors.push(err instanceof Error ? err.message : String(err));
      return 400;
    }
  }
}
