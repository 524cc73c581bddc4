import { trace, ProxyTracerProvider } from '@opentelemetry/api';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

/** A started OpenTelemetry SDK; call `shutdown` before exit so spans are flushed. */
export interface Tracing {
  readonly enabled: boolean;
  /** Exports every ended span now. */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
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
  return { enabled: true, flush, shutdown: () => sdk.shutdown() };
}

