import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

/** Busy and total jiffies of the whole machine, from the first line of /proc/stat. */
export function machineTicks(): { busy: number; total: number } {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    // idle and iowait
    return { busy: total - (fields[3] ?? 0) - (fields[4] ?? 0), total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/**
 * Waits until the machine is quiet: until, over two 2 s windows in a row, everything together
 * uses less than `belowPercent` of one core. Gives up after `maxWaitMs` and says so. On a machine
 * shared with other work (builds, browsers, other benchmarks) a run would otherwise measure the
 * contention; the report shows the other processes' CPU during each run either way.
 */
export async function waitForQuiet(maxWaitMs: number, belowPercent = 25, say: (text: string) => void = () => {}): Promise<number> {
  const deadline = performance.now() + maxWaitMs;
  let quietWindows = 0;
  for (let said = false; ; said = true) {
    const before = machineTicks();
    await sleep(2000);
    const after = machineTicks();
    const busy = ((after.busy - before.busy) / Math.max(1, after.total - before.total)) * cpus().length * 100;
    quietWindows = busy < belowPercent ? quietWindows + 1 : 0;
    if (quietWindows >= 2) return busy;
    if (performance.now() > deadline) {
      say(`the machine is still busy (${busy.toFixed(0)} % of one core used by other work); running anyway`);
      return busy;
    }
    if (!said && quietWindows === 0) say(`waiting for the machine to be quiet (${busy.toFixed(0)} % of one core used by other work) ...`);
  }
}
