import type { RegExpEngine } from 'ajv/dist/types/index.js';
import RE2 from 're2';

/**
 * Ajv's `code.regExp` engine for server-supplied `pattern` and `patternProperties`: RE2, whose matching
 * time is linear in the input, so a pattern such as `^(a+)+$` cannot stall the router's event loop
 * (JavaScript's backtracking engine takes seconds on 30 characters, doubling with each one more).
 * Patterns RE2 cannot run (back-references, look-around) make the schema fail to compile: the router
 * then leaves those arguments to the node to check.
 */
export const linearRegExp: RegExpEngine = Object.assign((pattern: string, flags: string) => new RE2(pattern, flags), { code: 'new RE2' });
