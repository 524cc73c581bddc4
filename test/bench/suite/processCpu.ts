/** CPU time of a process from its own kernel counters (Linux `/proc/<pid>/stat`: utime + stime). */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of `/proc` counters (USER_HZ, 100 on Linux everywhere we run). */
const USER_HZ = 100;

/** User + system CPU time the process has used so far, in ms (10 ms resolution). */
export function processCpuMs(pid: number): number {
  // The command name (field 2) may contain spaces; the fields after it start past its closing ')'.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
}
