/** Longest glob accepted in a policy. */
export const MAX_GLOB_LENGTH = 256;

/**
 * A name pattern with `*` (any run of characters, possibly empty) and `?` (one character); everything
 * else matches itself. Compiled once into literal segments and matched without regular expressions, in
 * O(pattern × name) time at worst (one backtracking point, as in the classic wildcard algorithm), so a
 * policy can never make a match slow.
 */
export class Glob {
  private readonly exact: string | undefined;

  constructor(readonly source: string) {
    if (source.length === 0 || source.length > MAX_GLOB_LENGTH) throw new Error(`glob must have 1 to ${MAX_GLOB_LENGTH} characters: ${JSON.stringify(source.slice(0, 40))}`);
    this.exact = /[*?]/.test(source) ? undefined : source;
  }

  /** Whether `name` matches. */
  matches(name: string): boolean {
    if (this.exact !== undefined) return name === this.exact;
    const p = this.source;
    let i = 0;
    let j = 0;
    let star = -1;
    let mark = 0;
    while (j < name.length) {
      if (i < p.length && (p[i] === '?' || (p[i] !== '*' && p[i] === name[j]))) {
        i++;
        j++;
      } else if (i < p.length && p[i] === '*') {
        star = i++;
        mark = j;
      } else if (star !== -1) {
        i = star + 1;
        j = ++mark;
      } else return false;
    }
    while (i < p.length && p[i] === '*') i++;
    return i === p.length;
  }
}

/** Whether any of `globs` matches `name`. */
export function anyMatches(globs: readonly Glob[], name: string): boolean {
  for (const g of globs) if (g.matches(name)) return true;
  return false;
}
