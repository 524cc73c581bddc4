import { namespacedName } from '@flotilla/protocol';
import type { Logger } from '@flotilla/telemetry';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';

/** Bounds on what a server may declare for one tool. */
export interface ToolSchemaLimits {
  /** Largest tool definition (name, description, input and output schemas, annotations) as JSON, bytes. */
  maxBytes: number;
  /** Deepest nesting of objects and arrays in a tool's input or output schema. */
  maxDepth: number;
}

export const DEFAULT_TOOL_SCHEMA_LIMITS: Readonly<ToolSchemaLimits> = { maxBytes: 128 * 1024, maxDepth: 32 };

/** Most refused tools remembered (for the reason given to a client that calls one); the oldest go first. */
const MAX_REMEMBERED = 1000;

/** Where a listing came from, for the log. */
export interface ListingOrigin {
  readonly nodeId: string;
  readonly server: string;
}

/**
 * Keeps tools whose definitions are too big or too deeply nested out of the router: server-supplied
 * schemas are untrusted, and the router compiles, stores and sends them to every client. A refused tool
 * is left out of the listing (so it is neither listed nor callable through the router), logged once with
 * its reason, counted, and remembered, so that a client calling it is told why instead of "unknown tool".
 */
export class ToolSchemaGuard {
  private readonly refused = new Map<string, string>();

  constructor(
    private readonly limits: ToolSchemaLimits,
    private readonly logger: Logger,
    private readonly onRefused?: (server: string) => void,
  ) {}

  /** The tools of a listing within the limits; the others are refused. */
  admit(tools: Tool[], origin: ListingOrigin): Tool[] {
    const kept: Tool[] = [];
    for (const tool of tools) {
      const reason = this.problem(tool);
      if (reason === undefined) {
        kept.push(tool);
        continue;
      }
      const name = namespacedName(origin.server, tool.name);
      if (this.refused.get(name) !== reason) {
        this.logger.warn({ nodeId: origin.nodeId, server: origin.server, tool: tool.name, reason }, 'tool refused: its definition is beyond the router\'s bounds');
        this.onRefused?.(origin.server);
        this.refused.delete(name);
        this.refused.set(name, reason);
        if (this.refused.size > MAX_REMEMBERED) this.refused.delete(this.refused.keys().next().value!);
      }
    }
    return kept;
  }

  /** Why the tool with this router-facing name was refused, when it was. */
  refusal(name: string): string | undefined {
    return this.refused.get(name);
  }

  private problem(tool: Tool): string | undefined {
    for (const [what, schema] of [['input schema', tool.inputSchema], ['output schema', tool.outputSchema]] as const) {
      if (schema === undefined) continue;
      const depth = depthBeyond(schema, this.limits.maxDepth);
      if (depth !== undefined) return `its ${what} is nested deeper than ${this.limits.maxDepth} levels (at least ${depth})`;
    }
    const bytes = Buffer.byteLength(JSON.stringify(tool));
    if (bytes > this.limits.maxBytes) return `its definition is ${bytes} bytes of JSON (limit ${this.limits.maxBytes})`;
    return undefined;
  }
}

/**
 * The nesting depth of `value` when it is over `limit` (the first depth found over it), else undefined.
 * Walks with its own stack, so a hostile depth cannot overflow the router's, and stops at the first
 * value past the limit.
 */
function depthBeyond(value: unknown, limit: number): number | undefined {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > limit) return depth;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return undefined;
}
