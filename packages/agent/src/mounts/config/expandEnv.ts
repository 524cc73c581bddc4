/** A `${NAME}` or `${env:NAME}` reference in a config value. */
const REFERENCE = /\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Result of expanding one value: the text, or the names of the variables that are not set. */
export type Expansion = { ok: true; value: string; usedEnv: boolean } | { ok: false; missing: string[] };

/**
 * Replaces `${NAME}` and `${env:NAME}` (the forms desktop MCP clients use) with the variable's value
 * from `env`. A variable that is not set is an error, not an empty string: a header like
 * `Bearer ${TOKEN}` with TOKEN unset must not quietly send `Bearer `. `$${` stays a literal `${`.
 */
export function expandEnv(value: string, env: NodeJS.ProcessEnv): Expansion {
  const missing: string[] = [];
  let usedEnv = false;
  const escaped = value.split('$${');
  const parts = escaped.map((part) =>
    part.replace(REFERENCE, (_, name: string) => {
      usedEnv = true;
      const v = env[name];
      if (v === undefined) {
        missing.push(name);
        return '';
      }
      return v;
    }),
  );
  if (missing.length > 0) return { ok: false, missing: [...new Set(missing)] };
  return { ok: true, value: parts.join('${'), usedEnv };
}

/** Whether a value is exactly one environment reference (safe to print: it holds no secret itself). */
export function isPureReference(value: string): boolean {
  return /^\$\{(?:env:)?[A-Za-z_][A-Za-z0-9_]*\}$/.test(value);
}
