import { TRACING_SHUTDOWN_TIMEOUT_MS, startTracing, type Logger } from '@flotilla/telemetry';

/**
 * Starts tracing for a long-running command (off unless OTEL_* asks for it), before its component starts
 * so its first call already has a tracer; returns how to export the last spans on the way out.
 */
export function processTracing(service: string, logger: Logger): () => Promise<void> {
  const tracing = startTracing(service);
  if (tracing.enabled) logger.info({ service: process.env.OTEL_SERVICE_NAME }, 'tracing enabled');
  return () => tracing.shutdown(TRACING_SHUTDOWN_TIMEOUT_MS).catch((err: unknown) => logger.warn({ err }, 'could not export the last spans'));
}
