/**
 * A strict parser of the Prometheus text exposition format (version 0.0.4, what prom-client writes), for
 * tests: it throws on any line that does not follow the format, so a test that parses a scrape also
 * validates it, and it gives the samples back for exact assertions.
 */

/** One sample line. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** One metric family: its `# TYPE`, `# HELP` and samples. */
export interface MetricFamily {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** A parsed scrape. */
export class Exposition {
  constructor(readonly families: ReadonlyMap<string, MetricFamily>) {}

  /** The value of the sample with exactly these labels, or undefined when there is none. */
  value(name: string, labels: Record<string, string> = {}): number | undefined {
    const family = this.families.get(familyOf(name, this.families));
    const wanted = Object.entries(labels);
    const sample = family?.samples.find(
      (s) => s.name === name && Object.keys(s.labels).length === wanted.length && wanted.every(([k, v]) => s.labels[k] === v),
    );
    return sample?.value;
  }

  /** Like {@link value}, with 0 for a series not exposed yet (a counter or histogram never touched). */
  valueOrZero(name: string, labels: Record<string, string> = {}): number {
    return this.value(name, labels) ?? 0;
  }

  /** Samples of a family whose labels include the given ones. */
  samples(name: string, labels: Record<string, string> = {}): Sample[] {
    const family = this.families.get(familyOf(name, this.families));
    return (family?.samples ?? []).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  }

  /** Sum of the samples of `name` whose labels include the given ones (0 when there is none). */
  sum(name: string, labels: Record<string, string> = {}): number {
    return this.samples(name, labels).reduce((total, s) => total + s.value, 0);
  }
}

function familyOf(sampleName: string, families: ReadonlyMap<string, MetricFamily>): string {
  if (families.has(sampleName)) return sampleName;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (sampleName.endsWith(suffix)) {
      const base = sampleName.slice(0, -suffix.length);
      const f = families.get(base);
      if (f && (f.type === 'histogram' || f.type === 'summary')) return base;
    }
  }
  return sampleName;
}

/**
 * A sample value as Prometheus reads it (Go's `strconv.ParseFloat`): special values are case-insensitive,
 * which matters because prom-client writes NaN as `Nan`.
 */
function parseValue(raw: string, line: string): number {
  if (/^\+?inf(inity)?$/i.test(raw)) return Number.POSITIVE_INFINITY;
  if (/^-inf(inity)?$/i.test(raw)) return Number.NEGATIVE_INFINITY;
  if (/^nan$/i.test(raw)) return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) throw new Error(`bad sample value "${raw}" in: ${line}`);
  return Number(raw);
}

/** Parses `{a="x",b="y"}` starting at `text[0] === '{'`; returns the labels and the rest of the line. */
function parseLabels(text: string, line: string): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 1;
  for (;;) {
    if (text[i] === '}') return { labels, rest: text.slice(i + 1) };
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`bad label set in: ${line}`);
    const name = text.slice(i, eq);
    if (!LABEL_NAME.test(name)) throw new Error(`bad label name "${name}" in: ${line}`);
    if (name in labels) throw new Error(`label "${name}" repeated in: ${line}`);
    if (text[eq + 1] !== '"') throw new Error(`label value of "${name}" not quoted in: ${line}`);
    let value = '';
    let j = eq + 2;
    for (;; j++) {
      const c = text[j];
      if (c === undefined) throw new Error(`unterminated label value in: ${line}`);
      if (c === '"') break;
      if (c === '\\') {
        const next = text[++j];
        if (next === 'n') value += '\n';
        else if (next === '\\' || next === '"') value += next;
        else throw new Error(`bad escape \\${next ?? ''} in: ${line}`);
      } else {
        value += c;
      }
    }
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i += 1;
    else if (text[i] !== '}') throw new Error(`expected , or } after label "${name}" in: ${line}`);
  }
}

/** Checks the invariants of a histogram family: cumulative buckets ending in +Inf equal to _count. */
function checkHistogram(f: MetricFamily): void {
  const series = new Map<string, { buckets: Array<{ le: number; value: number }>; count?: number; sum?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const entry = series.get(key) ?? { buckets: [] };
    series.set(key, entry);
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new Error(`${f.name}_bucket sample without le`);
      entry.buckets.push({ le: parseValue(le, s.name), value: s.value });
    } else if (s.name === `${f.name}_count`) entry.count = s.value;
    else if (s.name === `${f.name}_sum`) entry.sum = s.value;
    else throw new Error(`sample ${s.name} does not belong to histogram ${f.name}`);
  }
  for (const [key, e] of series) {
    if (e.count === undefined || e.sum === undefined) throw new Error(`histogram ${f.name}${key} lacks _count or _sum`);
    const last = e.buckets[e.buckets.length - 1];
    if (!last || last.le !== Number.POSITIVE_INFINITY) throw new Error(`histogram ${f.name}${key} lacks the +Inf bucket`);
    for (let k = 1; k < e.buckets.length; k++) {
      if (e.buckets[k]!.le <= e.buckets[k - 1]!.le) throw new Error(`histogram ${f.name}${key}: buckets not in increasing le order`);
      if (e.buckets[k]!.value < e.buckets[k - 1]!.value) throw new Error(`histogram ${f.name}${key}: buckets not cumulative`);
    }
    if (last.value !== e.count) throw new Error(`histogram ${f.name}${key}: +Inf bucket ${last.value} != count ${e.count}`);
  }
}

/** Parses and validates a text exposition; throws an Error naming the first problem. */
export function parseExposition(text: string): Exposition {
  const families = new Map<string, MetricFamily>();
  let current: MetricFamily | undefined;
  const closed = new Set<string>();
  const lines = text.split('\n');
  if (lines[lines.length - 1] !== '') throw new Error('exposition does not end with a newline');
  for (const line of lines.slice(0, -1)) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) continue; // other comments are allowed
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!METRIC_NAME.test(name)) throw new Error(`bad metric name in: ${line}`);
      let family = families.get(name);
      if (!family) {
        if (closed.has(name)) throw new Error(`metric family ${name} is not contiguous`);
        family = { name, type: 'untyped', help: '', samples: [] };
        families.set(name, family);
      }
      if (current && current !== family) closed.add(current.name);
      current = family;
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`bad type in: ${line}`);
        if (family.samples.length > 0) throw new Error(`TYPE of ${name} after its samples`);
        family.type = rest as MetricFamily['type'];
      } else {
        family.help = rest;
      }
      continue;
    }
    const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (!nameMatch) throw new Error(`bad sample line: ${line}`);
    const name = nameMatch[0];
    let rest = line.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, line));
    const parts = rest.trim().split(/\s+/);
    if (!rest.startsWith(' ') || parts.length < 1 || parts.length > 2) throw new Error(`bad sample line: ${line}`);
    const value = parseValue(parts[0]!, line);
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) throw new Error(`bad timestamp in: ${line}`);
    const familyName = familyOf(name, families);
    const family = families.get(familyName);
    if (!family || family !== current) throw new Error(`sample ${name} outside its family's block (no # TYPE before it?)`);
    if (family.type === 'counter' && !(value >= 0)) throw new Error(`counter ${name} is negative or NaN`);
    family.samples.push({ name, labels, value });
  }
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return new Exposition(families);
}
