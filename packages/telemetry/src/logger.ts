import { trace } from '@opentelemetry/api';
import { pino, stdTimeFunctions, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/** Paths redacted from every log line: credentials, and tool arguments unless FLOTILLA_LOG_ARGUMENTS=1. */
export function defaultRedactPaths(logArguments = process.env.FLOTILLA_LOG_ARGUMENTS === '1'): string[] {
  const secrets = ['token', '*.token', 'authorization', '*.authorization', 'headers.authorization', 'password', '*.password', 'secret', '*.secret'];
  return logArguments ? secrets : [...secrets, 'arguments', '*.arguments', 'params.arguments'];
}

/** Options for {@link createLogger}. */
export interface CreateLoggerOptions {
  /** Component name, e.g. `router`, `agent`; appears as `name` on every line. */
  name: string;
  /** Level; defaults to `LOG_LEVEL` or `info`. */
  level?: string;
  /** Extra fields on every line, e.g. `{ nodeId }`. */
  base?: Record<string, unknown>;
  /** Where lines go; defaults to stdout. */
  destination?: NodeJS.WritableStream;
}

/**
 * A pino JSON logger whose lines carry `trace_id` and `span_id` of the active OpenTelemetry span, so
 * every line written during a call can be joined with its trace.
 */
export function createLogger(options: CreateLoggerOptions): Logger {
  const config: LoggerOptions = {
    name: options.name,
    level: options.level ?? process.env.LOG_LEVEL ?? 'info',
    base: { pid: process.pid, ...options.base },
    redact: { paths: defaultRedactPaths(), censor: '[redacted]' },
    timestamp: stdTimeFunctions.isoTime,
    mixin() {
      const span = trace.getActiveSpan();
      if (!span) return {};
      const ctx = span.spanContext();
      return { trace_id: ctx.traceId, span_id: ctx.spanId };
    },
  };
  return options.destination ? pino(config, options.destination) : pino(config);
}
