/** Memory of a flotilla process from its own /metrics (prom-client's default process and V8 metrics). */
import { request } from 'undici';
import { parseExposition } from '../../harness/prometheusText.js';
import { benchPool } from './RawMcpClient.js';

/** Resident set and used V8 heap, bytes. */
export interface ProcessMemory {
  rss: number;
  heap: number;
}

/** Reads `<prefix>_process_resident_memory_bytes` and `<prefix>_nodejs_heap_size_used_bytes`. */
export async function processMemory(metricsUrl: string, prefix: 'flotilla_router' | 'flotilla_agent'): Promise<ProcessMemory> {
  const res = await request(metricsUrl, { dispatcher: benchPool });
  const m = parseExposition(await res.body.text());
  return { rss: m.value(`${prefix}_process_resident_memory_bytes`) ?? NaN, heap: m.value(`${prefix}_nodejs_heap_size_used_bytes`) ?? NaN };
}
