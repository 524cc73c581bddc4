import { trace, ProxyTracerProvider } from '@opentelemetry/api';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

/** A started OpenTelemetry SDK; call `shutdown` before exit so spans are flushed. */
export interface Tracing {
  readonly enabled: boolean;
  /** Exports every ended span now. */
  flush(): Promise<void>;
  /**
   * Exports the spans still buffered and stops the SDK. With `timeoutMs`, resolves after at most that long
   * even when the collector does not answer, so an unreachable collector cannot hold up a process exit.
   */
  shutdown(timeoutMs?: number): Promise<void>;
}

/** How long a process waits for its last spans to be exported on exit by default, ms. */
export const TRACING_SHUTDOWN_TIMEOUT_MS = 5000;

/**
 * `work`, or nothing after `timeoutMs`. The timer is not unref'd: a process waiting for its collector must
 * not end early with an empty event loop (losing the exit code it was about to set); it is cleared as
 * soon as the work is done.
 */
async function within(work: Promise<void>, timeoutMs: number | undefined): Promise<void> {
  if (timeoutMs === undefined) return work;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([work, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** True when the standard `OTEL_*` variables ask for traces to be exported. */
export function tracingConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED === 'true') return false;
  if (env.OTEL_TRACES_EXPORTER && env.OTEL_TRACES_EXPORTER !== 'none') return true;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/**
 * Starts OpenTelemetry tracing configured by the standard `OTEL_*` environment variables (OTLP exporter,
 * `OTEL_SERVICE_NAME`, sampler...). Off unless configured, so an unconfigured process pays nothing.
 * `exporter` lets tests collect spans in memory.
 */
export function startTracing(serviceName: string, options: { exporter?: SpanExporter } = {}): Tracing {
  if (!options.exporter && !tracingConfigured()) return { enabled: false, flush: async () => {}, shutdown: async () => {} };
  process.env.OTEL_SERVICE_NAME ??= serviceName;
  const sdk = new NodeSDK({
    serviceName: process.env.OTEL_SERVICE_NAME,
    // Automatic instrumentations are not loaded: Flotilla creates its own spans at the points that matter.
    instrumentations: [],
    // Logs are pino JSON on stdout (with trace ids); unasked, the SDK would build an OTLP logs exporter
    // that nothing writes to. Setting OTEL_LOGS_EXPORTER still gets the SDK's own logs pipeline.
    ...(process.env.OTEL_LOGS_EXPORTER ? {} : { logRecordProcessors: [] }),
    ...(options.exporter
      ? { spanProcessors: [new SimpleSpanProcessor(options.exporter)] }
      : {}),
  });
  sdk.start();
  const flush = async (): Promise<void> => {
    const global = trace.getTracerProvider();
    const provider: unknown = global instanceof ProxyTracerProvider ? global.getDelegate() : global;
    if (provider && typeof (provider as { forceFlush?: unknown }).forceFlush === 'function') {
      await (provider as { forceFlush(): Promise<void> }).forceFlush();
    }
  };
  let stopping: Promise<void> | undefined;
  return {
    enabled: true,
    flush,
    shutdown: (timeoutMs) => {
      stopping ??= sdk.shutdown();
      return within(stopping, timeoutMs);
    },
  };
}

