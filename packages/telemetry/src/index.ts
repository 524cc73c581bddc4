export * from './logger.js';
export * from './tracing.js';
export * from './traceContext.js';
export * from './metrics.js';
