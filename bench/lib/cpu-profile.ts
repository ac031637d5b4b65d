/** Reads a V8 `.cpuprofile` (from `node --cpu-prof`) into self and inclusive time per function. */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface FunctionTime {
  name: string;
  selfMs: number;
  totalMs: number;
}

export interface ProfileSummary {
  /** Wall time the profile covers, ms. */
  wallMs: number;
  /** Sampled time that was not idle, ms. */
  busyMs: number;
  functions: FunctionTime[];
}

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName || '(anonymous)';
  if (!url) return name;
  const file = url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '').replace(/^.*\/(dist|src|bench)\//, '$1/');
  return `${name} ${file}:${lineNumber + 1}`;
}

/**
 * `fromUs`/`toUs`: only the samples in this span (V8 stamps samples with CLOCK_MONOTONIC µs on
 * Linux, the clock of `process.hrtime`), e.g. a bench's measured window.
 */
export function summarizeProfile(path: string, fromUs = -Infinity, toUs = Infinity): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const selfUs = new Map<number, number>();
  let at = profile.startTime;
  let first = Infinity;
  let last = -Infinity;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    if (at < fromUs || at > toUs) continue;
    first = Math.min(first, at);
    last = Math.max(last, at);
    const id = profile.samples[i]!;
    // A sample's time is the delta to the next sample.
    const delta = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  }
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const name = label(node);
    self.set(name, (self.get(name) ?? 0) + us);
    if (name !== '(idle)') busy += us;
    // Inclusive: count once per distinct function on the stack.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const n = label(byId.get(at)!);
      if (seen.has(n)) continue;
      seen.add(n);
      total.set(n, (total.get(n) ?? 0) + us);
    }
  }
  const functions = [...total.keys()].map((name) => ({ name, selfMs: (self.get(name) ?? 0) / 1000, totalMs: (total.get(name) ?? 0) / 1000 }));
  const wallUs = Number.isFinite(fromUs) || Number.isFinite(toUs) ? Math.max(0, last - first) : profile.endTime - profile.startTime;
  return { wallMs: wallUs / 1000, busyMs: busy / 1000, functions };
}
