import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { anyMatches, Glob, MAX_GLOB_LENGTH } from './Glob.js';
import type { Identity } from './Identity.js';

const GlobList = z.array(z.string().min(1).max(MAX_GLOB_LENGTH)).max(256);

const TargetsSchema = z.strictObject({
  /** Server names (globs): every tool, prompt and resource of the server. */
  servers: GlobList.default([]),
  /** Namespaced tool names (`<server>_<tool>`, globs). */
  tools: GlobList.default([]),
  /** Namespaced prompt names (globs). */
  prompts: GlobList.default([]),
  /** Resource URIs and URI templates (globs). */
  resources: GlobList.default([]),
  /**
   * The router's operations endpoints (`/api/v1/*`, the dashboard's data and live stream): `allow.ops`
   * grants them, `deny.ops` takes them away (also from holders of the `flotilla:ops` role or scope).
   */
  ops: z.boolean().default(false),
});

const MatchSchema = z.strictObject({
  /** Principals (`jwt:<iss>#<sub>`, `key:<id>`, `anonymous`; globs). */
  principals: GlobList.optional(),
  /** Subjects (JWT `sub`, API key subject; globs). */
  subjects: GlobList.optional(),
  /** The identity has at least one of these scopes. */
  scopes: z.array(z.string().min(1)).max(64).optional(),
  /** The identity has at least one of these roles. */
  roles: z.array(z.string().min(1)).max(64).optional(),
});

const RuleSchema = z.strictObject({
  name: z.string().min(1).max(128),
  /** Who the rule is about; every field given must hold. `{}` is everyone. */
  match: MatchSchema.default({}),
  allow: TargetsSchema.optional(),
  /** Deny wins over allow, from any matching rule. */
  deny: TargetsSchema.optional(),
  /** Metrics label for identities this rule matches (the first matching rule with a label wins). */
  label: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'label: 1-64 letters, digits, _ . -').optional(),
});

/** The policy file (JSON): rules from identities to what they may use. */
export const AccessPolicySchema = z.strictObject({
  /** What an identity may use that no rule allows or denies: `deny` (default) or `allow`. */
  default: z.enum(['allow', 'deny']).default('deny'),
  rules: z.array(RuleSchema).max(1000),
});
export type AccessPolicyDocument = z.input<typeof AccessPolicySchema>;

interface CompiledTargets {
  readonly servers: Glob[];
  readonly tools: Glob[];
  readonly prompts: Glob[];
  readonly resources: Glob[];
  readonly ops: boolean;
}

/**
 * The role or scope that grants the operations endpoints without any policy rule (and without a policy
 * file); a policy rule's `deny.ops` still takes them away.
 */
export const OPS_PERMISSION = 'flotilla:ops';

/** Whether the identity holds {@link OPS_PERMISSION} as a role or a scope. */
export function holdsOpsPermission(identity: Identity): boolean {
  return identity.roles.includes(OPS_PERMISSION) || identity.scopes.includes(OPS_PERMISSION);
}

interface CompiledRule {
  readonly name: string;
  readonly label: string | undefined;
  readonly principals: Glob[] | undefined;
  readonly subjects: Glob[] | undefined;
  readonly scopes: readonly string[] | undefined;
  readonly roles: readonly string[] | undefined;
  readonly allow: CompiledTargets;
  readonly deny: CompiledTargets;
}

/** What a client may see and use, by kind. */
export type AccessKind = 'tool' | 'prompt' | 'resource';

/**
 * One identity's grants under a policy: which servers, tools, prompts and resources it may use. Decisions
 * are remembered per name (a session asks about the same few names over and over).
 */
export class Grants {
  private readonly decided = new Map<string, boolean>();

  constructor(
    private readonly allow: CompiledTargets,
    private readonly deny: CompiledTargets,
    private readonly byDefault: boolean,
    /** Names of the rules that matched the identity (for logs). */
    readonly rules: readonly string[],
    /** The metrics label a matching rule gave, if any. */
    readonly label: string | undefined,
  ) {}

  /** Whether the identity may use `name` (a namespaced tool or prompt, or a resource URI or template) of `server`. */
  allows(kind: AccessKind, server: string, name: string): boolean {
    const key = `${kind}\u0000${server}\u0000${name}`;
    let verdict = this.decided.get(key);
    if (verdict === undefined) {
      verdict = this.decide(kind, server, name);
      if (this.decided.size > 10_000) this.decided.clear();
      this.decided.set(key, verdict);
    }
    return verdict;
  }

  private decide(kind: AccessKind, server: string, name: string): boolean {
    const list = kind === 'tool' ? 'tools' : kind === 'prompt' ? 'prompts' : 'resources';
    if (anyMatches(this.deny.servers, server) || anyMatches(this.deny[list], name)) return false;
    if (anyMatches(this.allow.servers, server) || anyMatches(this.allow[list], name)) return true;
    return this.byDefault;
  }
}

/** Grants that allow everything (no policy configured). */
export const ALLOW_ALL = new Grants({ servers: [new Glob('*')], tools: [], prompts: [], resources: [], ops: false }, { servers: [], tools: [], prompts: [], resources: [], ops: false }, true, [], undefined);

/**
 * The router's access policy: rules from identities (principal, subject, scopes, roles) to the servers,
 * tools, prompts and resources they may use, by name or glob. Globs are compiled once, at load.
 */
export class AccessPolicy {
  private constructor(
    private readonly rules: readonly CompiledRule[],
    private readonly byDefault: boolean,
  ) {}

  /** Checks and compiles a policy document; throws a message naming each wrong field. */
  static fromDocument(doc: unknown, source = 'access policy'): AccessPolicy {
    const parsed = AccessPolicySchema.safeParse(doc);
    if (!parsed.success) {
      throw new Error(`${source}: ${parsed.error.issues.slice(0, 8).map((i) => `${i.path.join('.') || '(policy)'}: ${i.message}`).join('; ')}`);
    }
    const names = new Set<string>();
    const rules = parsed.data.rules.map((r, i): CompiledRule => {
      if (names.has(r.name)) throw new Error(`${source}: rules.${i}.name: "${r.name}" is used by an earlier rule`);
      names.add(r.name);
      return {
        name: r.name,
        label: r.label,
        principals: r.match.principals?.map((g) => new Glob(g)),
        subjects: r.match.subjects?.map((g) => new Glob(g)),
        scopes: r.match.scopes,
        roles: r.match.roles,
        allow: compileTargets(r.allow),
        deny: compileTargets(r.deny),
      };
    });
    return new AccessPolicy(rules, parsed.data.default === 'allow');
  }

  /** Reads a policy file (JSON). */
  static async load(path: string): Promise<AccessPolicy> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new Error(`access policy ${path}: cannot read (${(err as Error).message})`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new Error(`access policy ${path}: not JSON (${(err as Error).message})`);
    }
    return AccessPolicy.fromDocument(json, `access policy ${path}`);
  }

  /**
   * Whether `identity` may use the operations endpoints: a matching rule allows `ops` or the identity holds
   * {@link OPS_PERMISSION}, and no matching rule denies `ops`.
   */
  allowsOps(identity: Identity): boolean {
    const matching = this.rules.filter((r) => ruleMatches(r, identity));
    if (matching.some((r) => r.deny.ops)) return false;
    return holdsOpsPermission(identity) || matching.some((r) => r.allow.ops);
  }

  /** What `identity` may use. */
  grantsFor(identity: Identity): Grants {
    const matching = this.rules.filter((r) => ruleMatches(r, identity));
    const merge = (side: 'allow' | 'deny'): CompiledTargets => ({
      ops: matching.some((r) => r[side].ops),
      servers: matching.flatMap((r) => r[side].servers),
      tools: matching.flatMap((r) => r[side].tools),
      prompts: matching.flatMap((r) => r[side].prompts),
      resources: matching.flatMap((r) => r[side].resources),
    });
    return new Grants(
      merge('allow'),
      merge('deny'),
      this.byDefault,
      matching.map((r) => r.name),
      matching.find((r) => r.label !== undefined)?.label,
    );
  }
}

function compileTargets(t: z.output<typeof TargetsSchema> | undefined): CompiledTargets {
  const compile = (list: string[] | undefined): Glob[] => (list ?? []).map((g) => new Glob(g));
  return { servers: compile(t?.servers), tools: compile(t?.tools), prompts: compile(t?.prompts), resources: compile(t?.resources), ops: t?.ops ?? false };
}

function ruleMatches(rule: CompiledRule, identity: Identity): boolean {
  if (rule.principals && !anyMatches(rule.principals, identity.principal)) return false;
  if (rule.subjects && !anyMatches(rule.subjects, identity.subject)) return false;
  if (rule.scopes && !rule.scopes.some((s) => identity.scopes.includes(s))) return false;
  if (rule.roles && !rule.roles.some((r) => identity.roles.includes(r))) return false;
  return true;
}
