/**
 * deploy/prometheus and deploy/grafana are configuration nobody deploys in CI, so this checks what can be
 * checked without a cluster: the dashboard is a well-formed Grafana dashboard whose every PromQL
 * expression names only metrics documented in docs/observability.md (and covers all of them), and the
 * scrape config is valid YAML whose Kubernetes jobs find the pods of deploy/kubernetes/*.yaml on the port
 * that serves /metrics.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { haproxyBinary } from '../harness/HaproxyProcess.js';

const root = (path: string): string => fileURLToPath(new URL(`../../${path}`, import.meta.url));

/** Series Prometheus makes itself, allowed in expressions without being ours to document. */
const PROMETHEUS_SYNTHETIC = new Set(['up']);
const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset']);

/** The metric tables of docs/observability.md: name → type. */
async function documentedMetrics(): Promise<Map<string, string>> {
  const doc = await readFile(root('docs/observability.md'), 'utf8');
  return new Map([...doc.matchAll(/^\| `(flotilla_[a-z0-9_]+)` \| (counter|gauge|histogram) \|/gm)].map((m) => [m[1]!, m[2]!]));
}

/**
 * Metric names an expression selects. Not a PromQL parser, but enough for dashboard queries: strings,
 * label matchers, ranges and grouping clauses are removed, then every identifier not followed by `(`
 * (a function or an aggregation) and not a keyword is a metric name.
 */
export function metricNames(expr: string): string[] {
  let s = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  s = s.replace(/\{[^}]*\}/g, ' ');
  s = s.replace(/\[[^\]]*\]/g, ' ');
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  for (const m of s.matchAll(/(?<![\w.$])[a-zA-Z_:][\w:]*/g)) {
    const after = s.slice(m.index + m[0].length);
    if (/^\s*\(/.test(after) || PROMQL_WORDS.has(m[0])) continue;
    names.push(m[0]);
  }
  return names;
}

/** The documented metric a series name belongs to (`x_bucket` → `x` for a histogram `x`). */
function documentedBase(name: string, documented: Map<string, string>): string | undefined {
  if (documented.has(name)) return name;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  return m && documented.get(m[1]!) === 'histogram' ? m[1] : undefined;
}

const DS = z.object({ type: z.literal('prometheus'), uid: z.literal('${datasource}') });
const TargetSchema = z.looseObject({ refId: z.string().min(1), expr: z.string().min(1), datasource: DS });
const GridPosSchema = z.object({ h: z.number().int().positive(), w: z.number().int().min(1).max(24), x: z.number().int().min(0).max(23), y: z.number().int().min(0) });
const PanelSchema = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('row'), id: z.number().int(), title: z.string().min(1), gridPos: GridPosSchema, panels: z.array(z.unknown()) }),
  z.looseObject({
    type: z.enum(['timeseries', 'stat', 'state-timeline', 'gauge', 'bargauge', 'table']),
    id: z.number().int(),
    title: z.string().min(1),
    description: z.string().min(1),
    datasource: DS,
    gridPos: GridPosSchema,
    fieldConfig: z.looseObject({ defaults: z.looseObject({}), overrides: z.array(z.unknown()) }),
    options: z.looseObject({}),
    targets: z.array(TargetSchema).min(1),
  }),
]);
const DashboardSchema = z.looseObject({
  uid: z.string().min(1),
  title: z.string().min(1),
  schemaVersion: z.number().int().min(36).max(41),
  panels: z.array(PanelSchema).min(1),
  templating: z.object({
    list: z.array(z.looseObject({ name: z.string(), type: z.enum(['datasource', 'query', 'custom', 'interval']), query: z.unknown() })),
  }),
  time: z.object({ from: z.string(), to: z.string() }),
});

test('the Grafana dashboard is well formed and uses only documented metrics, all of them', async () => {
  const documented = await documentedMetrics();
  assert.ok([...documented.keys()].some((n) => n.startsWith('flotilla_router_')) && [...documented.keys()].some((n) => n.startsWith('flotilla_agent_')));
  const dashboard = DashboardSchema.parse(JSON.parse(await readFile(root('deploy/grafana/flotilla-dashboard.json'), 'utf8')));

  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  // No two panels overlap on the 24-column grid.
  const boxes = dashboard.panels.map((p) => ({ title: p.title, ...p.gridPos }));
  for (const b of boxes) assert.ok(b.x + b.w <= 24, `${b.title} fits in 24 columns`);
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i]!;
      const b = boxes[j]!;
      const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
      assert.ok(!overlap, `panels "${a.title}" and "${b.title}" overlap`);
    }
  }

  const vars = dashboard.templating.list;
  assert.ok(vars.some((v) => v.type === 'datasource' && v.name === 'datasource'), 'a data source variable the panels use');
  const exprs: Array<{ where: string; expr: string }> = [];
  for (const p of dashboard.panels) if (p.type !== 'row') for (const t of p.targets) exprs.push({ where: `${p.title}/${t.refId}`, expr: t.expr });
  for (const v of vars) {
    if (v.type !== 'query') continue;
    const query = z.union([z.string(), z.object({ query: z.string() }).transform((q) => q.query)]).parse(v.query);
    const m = /^label_values\((\w+)(?:\{[^}]*\})?,\s*(\w+)\)$/.exec(query);
    assert.ok(m, `variable ${v.name}: label_values(metric, label)`);
    exprs.push({ where: `variable ${v.name}`, expr: m[1]! });
  }

  const used = new Set<string>();
  for (const { where, expr } of exprs) {
    const names = metricNames(expr);
    assert.ok(names.length > 0, `${where}: selects a metric`);
    for (const name of names) {
      if (PROMETHEUS_SYNTHETIC.has(name)) continue;
      const base = documentedBase(name, documented);
      assert.ok(base, `${where}: ${name} is not documented in docs/observability.md`);
      used.add(base);
      if (name.endsWith('_bucket')) assert.match(expr, /histogram_quantile\(/, `${where}: buckets go through histogram_quantile`);
    }
    assert.equal((expr.match(/\(/g) ?? []).length, (expr.match(/\)/g) ?? []).length, `${where}: balanced parentheses`);
  }
  const unused = [...documented.keys()].filter((n) => !used.has(n));
  assert.deepEqual(unused, [], 'every documented metric has a panel');
});

test('the PromQL name extraction finds metrics and skips functions, labels and clauses', () => {
  assert.deepEqual(
    metricNames('histogram_quantile(0.99, sum by (le, tool) (rate(flotilla_router_call_duration_seconds_bucket{tool=~"$tool"}[$__rate_interval])))'),
    ['flotilla_router_call_duration_seconds_bucket'],
  );
  assert.deepEqual(
    metricNames('sum by (node_id) (flotilla_agent_inflight_calls * on (instance, job) group_left (node_id) flotilla_agent_info{node_id=~"$node"}) / 2'),
    ['flotilla_agent_inflight_calls', 'flotilla_agent_info'],
  );
  assert.deepEqual(metricNames('count(a_total == 0 or b_total == 0) or vector(0)'), ['a_total', 'b_total']);
});

const RelabelSchema = z.strictObject({
  source_labels: z.array(z.string()).optional(),
  separator: z.string().optional(),
  regex: z.string().optional(),
  modulus: z.number().optional(),
  target_label: z.string().optional(),
  replacement: z.string().optional(),
  action: z.enum(['replace', 'keep', 'drop', 'keepequal', 'dropequal', 'hashmod', 'labelmap', 'labeldrop', 'labelkeep', 'lowercase', 'uppercase']).optional(),
});
type Relabel = z.infer<typeof RelabelSchema>;
const ScrapeConfigSchema = z.looseObject({
  job_name: z.string().min(1),
  metrics_path: z.string().startsWith('/').optional(),
  static_configs: z.array(z.object({ targets: z.array(z.string().regex(/^[\w.-]+:\d+$/)).min(1), labels: z.record(z.string(), z.string()).optional() })).optional(),
  kubernetes_sd_configs: z.array(z.looseObject({ role: z.enum(['pod', 'service', 'endpoints', 'endpointslice', 'node', 'ingress']) })).optional(),
  relabel_configs: z.array(RelabelSchema).optional(),
});
const PrometheusConfigSchema = z.looseObject({
  global: z.looseObject({ scrape_interval: z.string().regex(/^\d+[smh]$/) }),
  scrape_configs: z.array(ScrapeConfigSchema).min(1),
});

/** A pod template of deploy/kubernetes, as far as scraping goes. */
const WorkloadSchema = z.looseObject({
  kind: z.string(),
  spec: z.looseObject({
    template: z.looseObject({
      metadata: z.looseObject({ labels: z.record(z.string(), z.string()), annotations: z.record(z.string(), z.string()).optional() }),
      spec: z.looseObject({
        containers: z.array(z.looseObject({ args: z.array(z.string()).optional(), ports: z.array(z.object({ name: z.string(), containerPort: z.number() })).default([]) })),
      }),
    }),
  }),
});

/** A relabel regex as Prometheus matches it: RE2 (no back-references or look-around), anchored. */
function re2(regex: string, where: string): RegExp {
  assert.doesNotMatch(regex, /\\[1-9]|\(\?[=!<]/, `${where}: RE2 has no back-references or look-around`);
  return new RegExp(`^(?:${regex})$`);
}

function rule(job: { job_name: string; relabel_configs?: Relabel[] | undefined }, action: string, label: string): Relabel | undefined {
  return job.relabel_configs?.find((r) => r.action === action && r.source_labels?.length === 1 && r.source_labels[0] === label);
}

test('prometheus.yml is valid YAML whose Kubernetes jobs find the pods of deploy/kubernetes', async () => {
  const text = await readFile(root('deploy/prometheus/prometheus.yml'), 'utf8');
  const config = PrometheusConfigSchema.parse(parse(text, { strict: true, uniqueKeys: true }));
  const names = config.scrape_configs.map((j) => j.job_name);
  assert.equal(new Set(names).size, names.length, 'job names are unique');
  for (const job of config.scrape_configs) {
    assert.ok(job.static_configs || job.kubernetes_sd_configs, `${job.job_name} has targets`);
    for (const [i, r] of (job.relabel_configs ?? []).entries()) {
      if (r.regex !== undefined) re2(r.regex, `${job.job_name} relabel ${i}`);
      if ((r.action ?? 'replace') === 'replace') assert.ok(r.target_label, `${job.job_name} relabel ${i}: replace needs target_label`);
    }
  }

  const workloads: Array<z.infer<typeof WorkloadSchema>> = [];
  for (const file of (await readdir(root('deploy/kubernetes'))).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of parseAllDocuments(await readFile(root(`deploy/kubernetes/${file}`), 'utf8'))) {
      const parsed = WorkloadSchema.safeParse(doc.toJS());
      if (parsed.success) workloads.push(parsed.data);
    }
  }
  const appOf = (w: z.infer<typeof WorkloadSchema>): string | undefined => w.spec.template.metadata.labels['app.kubernetes.io/name'];

  const k8sJobs = config.scrape_configs.filter((j) => j.kubernetes_sd_configs);
  assert.ok(k8sJobs.length >= 2, 'Kubernetes jobs for routers and agents');
  for (const job of k8sJobs) {
    const keepApp = rule(job, 'keep', '__meta_kubernetes_pod_label_app_kubernetes_io_name');
    assert.ok(keepApp?.regex, `${job.job_name} keeps pods by app.kubernetes.io/name`);
    const matching = workloads.filter((w) => re2(keepApp.regex!, job.job_name).test(appOf(w) ?? ''));
    assert.equal(matching.length, 1, `${job.job_name} selects one workload of deploy/kubernetes`);
    const template = matching[0]!.spec.template;
    const ports = template.spec.containers.flatMap((c) => c.ports);
    const args = template.spec.containers.flatMap((c) => c.args ?? []);

    const byAnnotation = rule(job, 'keep', '__meta_kubernetes_pod_annotation_prometheus_io_scrape');
    const byPortName = rule(job, 'keep', '__meta_kubernetes_pod_container_port_name');
    let port: number | undefined;
    if (byAnnotation) {
      const annotations = template.metadata.annotations ?? {};
      assert.ok(re2(byAnnotation.regex ?? '(.*)', job.job_name).test(annotations['prometheus.io/scrape'] ?? ''), `${job.job_name}: the pods carry prometheus.io/scrape`);
      port = Number(annotations['prometheus.io/port']);
      assert.ok(ports.some((p) => p.containerPort === port), `${job.job_name}: prometheus.io/port is a container port`);
      assert.equal(annotations['prometheus.io/path'] ?? '/metrics', '/metrics');
    } else {
      assert.ok(byPortName?.regex, `${job.job_name} keeps pods by annotation or by port name`);
      const named = ports.filter((p) => re2(byPortName.regex!, job.job_name).test(p.name));
      assert.equal(named.length, 1, `${job.job_name}: one container port matches`);
      port = named[0]!.containerPort;
    }
    // That port is the process's HTTP port, the one serving /metrics.
    assert.ok(args.includes(`--port=${port}`), `${job.job_name}: the scraped port ${port} is the --port of the process`);
  }
});

test('the HAProxy config of deploy/haproxy is valid for HAProxy itself and balances routers per request on /healthz checks', async () => {
  const path = root('deploy/haproxy/haproxy.cfg');
  const check = spawnSync(haproxyBinary(), ['-c', '-f', path], { encoding: 'utf8' });
  assert.equal(check.status, 0, `haproxy -c: ${check.stdout}${check.stderr}`);
  const text = await readFile(path, 'utf8');
  assert.match(text, /^\s*balance roundrobin$/m);
  assert.doesNotMatch(text, /^\s*(stick|cookie|balance source|hash-type)/m, 'no stickiness: any replica serves any session');
  assert.match(text, /^\s*option httpchk GET \/healthz$/m);
  assert.match(text, /^\s*option redispatch$/m);
  const deployment = parseAllDocuments(await readFile(root('deploy/kubernetes/router-deployment.yaml'), 'utf8')).map((d) => d.toJSON() as Record<string, unknown>);
  const spec = (deployment.find((d) => d['kind'] === 'Deployment')!['spec'] as { replicas: number; template: { spec: { containers: Array<{ env: Array<{ name: string }> }> } } });
  assert.ok(spec.replicas > 1, 'the router Deployment runs more than one replica');
  assert.ok(spec.template.spec.containers[0]!.env.some((e) => e.name === 'FLOTILLA_SESSION_KEY'), 'every replica gets the shared session key');
  const service = deployment.find((d) => d['kind'] === 'Service')!['spec'] as Record<string, unknown>;
  assert.equal(service['sessionAffinity'], undefined, 'no session affinity needed');
});
