import type { Logger } from '@flotilla/telemetry';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import ajvFormats from 'ajv-formats';
import { linearRegExp } from './linearRegExp.js';

/** Outcome of checking arguments: fine, or the list of what was wrong. */
export type ArgumentCheck = { ok: true; unchecked?: string } | { ok: false; problems: string[] };

const DRAFT_2020 = /json-schema\.org\/draft\/2020-12/;

/**
 * Checks tool-call arguments against the tool's `inputSchema` at the router, so a malformed call is
 * answered at once with what is wrong instead of travelling to a node. Schemas declaring draft 2020-12
 * (zod 4's default) are compiled with Ajv's 2020 dialect, others with draft-07. A schema Ajv cannot
 * compile is not enforced here (the node still validates). Schemas come from servers and are untrusted:
 * their regular expressions run on RE2 ({@link linearRegExp}), never on JavaScript's backtracking engine,
 * and the catalog only holds schemas within the size and depth bounds of `ToolSchemaGuard`.
 */
export class ToolArgumentValidator {
  private readonly draft07: Ajv;
  private readonly draft2020: Ajv2020;
  /** Keyed by the schema object, which the catalog keeps as long as the listing is unchanged. */
  private readonly compiled = new WeakMap<object, ValidateFunction | null>();

  constructor(private readonly logger: Logger) {
    const options = { strict: false, allErrors: true, validateSchema: false, code: { regExp: linearRegExp } } as const;
    this.draft07 = new Ajv(options);
    this.draft2020 = new Ajv2020(options);
    ajvFormats.default(this.draft07);
    ajvFormats.default(this.draft2020);
  }

  check(tool: Tool, args: Record<string, unknown> | undefined): ArgumentCheck {
    const validate = this.validatorFor(tool);
    if (!validate) return { ok: true };
    if (validate(args ?? {})) return { ok: true };
    return { ok: false, problems: (validate.errors ?? []).map(describe) };
  }

  private validatorFor(tool: Tool): ValidateFunction | null {
    const schema = tool.inputSchema as Record<string, unknown>;
    const known = this.compiled.get(schema);
    if (known !== undefined) return known;
    let validate: ValidateFunction | null = null;
    try {
      const { $schema, $id: _id, ...rest } = schema;
      const ajv = typeof $schema === 'string' && DRAFT_2020.test($schema) ? this.draft2020 : this.draft07;
      validate = ajv.compile(rest);
    } catch (err) {
      this.logger.warn({ tool: tool.name, err }, 'cannot compile the tool input schema; arguments are checked by the node only');
    }
    this.compiled.set(schema, validate);
    return validate;
  }
}

function describe(error: ErrorObject): string {
  const where = error.instancePath || '(root)';
  if (error.keyword === 'additionalProperties') {
    return `${where} must not have additional property '${String((error.params as { additionalProperty?: unknown }).additionalProperty)}'`;
  }
  if (error.keyword === 'enum') {
    return `${where} ${error.message ?? 'is invalid'}: ${JSON.stringify((error.params as { allowedValues?: unknown }).allowedValues)}`;
  }
  return `${where} ${error.message ?? 'is invalid'}`;
}
