/**
 * Whether a value's JSON would be at most `limit` bytes, found without building it: walks the value with
 * its own stack and stops as soon as the estimate passes the limit, so the cost is bounded by `limit`
 * whatever the value's size. The estimate counts string and key lengths, number digits and a few bytes
 * of punctuation per value: close to the JSON size, never far below it.
 */
export function jsonSizeWithin(value: unknown, limit: number): boolean {
  let size = 0;
  const stack: unknown[] = [value];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v === 'string') size += v.length + 2;
    else if (typeof v === 'number') size += 8;
    else if (v === null || typeof v !== 'object') size += 5;
    else if (Array.isArray(v)) {
      size += 2 + v.length;
      for (const item of v) stack.push(item);
    } else {
      size += 2;
      for (const [k, item] of Object.entries(v)) {
        size += k.length + 4;
        stack.push(item);
      }
    }
    if (size > limit) return false;
  }
  return true;
}
