import type { Counter, LabelValues } from '@flotilla/telemetry';

/** How long a node's counter series outlive the node, ms: long enough for several scrapes to see its last counts. */
export const NODE_SERIES_RETENTION_MS = 10 * 60_000;

/**
 * Drops the counter series of nodes that left, some time after they left (as Linkerd's proxy expires the
 * series of idle endpoints). Node ids often change with every restart (a pod's hostname), so without this
 * a long-running router would keep a series per tool × outcome for every node it ever saw. Gauges need
 * none of this: they are read from the live nodes at scrape time.
 */
export class NodeSeriesRetention {
  /** Per node, each series it has, by counter and labels, with how to remove it. */
  private readonly series = new Map<string, Map<string, () => void>>();
  private readonly counterIds = new WeakMap<object, number>();
  private nextCounterId = 0;
  /** Nodes with series that were absent from the last scrape, and since when. */
  private readonly absentSince = new Map<string, number>();

  constructor(
    private readonly retentionMs = NODE_SERIES_RETENTION_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Increments `counter` for `labels`, which name node `nodeId`. */
  inc<L extends string>(counter: Counter<L>, nodeId: string, labels: LabelValues<L>): void {
    counter.inc(labels);
    let ofNode = this.series.get(nodeId);
    if (!ofNode) this.series.set(nodeId, (ofNode = new Map()));
    let counterId = this.counterIds.get(counter);
    if (counterId === undefined) this.counterIds.set(counter, (counterId = this.nextCounterId++));
    const key = `${counterId}\0${JSON.stringify(labels)}`;
    if (!ofNode.has(key)) ofNode.set(key, () => counter.remove(labels));
  }

  /** At scrape time: forgets the series of nodes absent from `present` for longer than the retention. */
  prune(present: ReadonlySet<string>): void {
    const now = this.now();
    for (const nodeId of this.series.keys()) {
      if (present.has(nodeId)) {
        this.absentSince.delete(nodeId);
        continue;
      }
      const since = this.absentSince.get(nodeId) ?? now;
      this.absentSince.set(nodeId, since);
      if (now - since < this.retentionMs) continue;
      for (const remove of this.series.get(nodeId)!.values()) remove();
      this.series.delete(nodeId);
      this.absentSince.delete(nodeId);
    }
  }
}
