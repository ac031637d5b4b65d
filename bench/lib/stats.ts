import type { ClientResult } from './stream-client.ts';

/** The value below which `p` percent of the sorted `values` lie (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export interface Distribution {
  count: number;
  min: number;
  p50: number;
  p99: number;
  max: number;
}

export function distribution(values: number[]): Distribution {
  const sorted = Float64Array.from(values).sort();
  const list = Array.from(sorted);
  return { count: list.length, min: list[0] ?? Number.NaN, p50: percentile(list, 50), p99: percentile(list, 99), max: list.at(-1) ?? Number.NaN };
}

export interface ClientsSummary {
  clients: number;
  /** Clients that got a 200 multipart response. */
  streaming: number;
  errors: Record<string, number>;
  /** Clients whose connection the server closed before the end of the run. */
  closedEarly: number;
  /** Opening the connection to the first part complete. */
  firstPartMs: Distribution;
  /** Parts whose scheduled time falls in the window. */
  expectedParts: number;
  /** Of those, the parts that arrived (at any time before the run stopped). */
  receivedParts: number;
  /** Arrival minus schedule, over every received part after the first, of every client. */
  latenessMs: Distribution;
  /** The same for the parts due after every client had connected (`steadyFrom`). */
  steadyLatenessMs: Distribution;
  /**
   * Time between a part and the one before it, minus the interval: jitter, seen locally. A stall
   * longer than an interval makes the server restart its clock (it does not send the missed
   * parts in a burst), which shifts the rest of a client's schedule; lateness then stays high
   * for good while the gaps are back to normal.
   */
  gapMs: Distribution;
  /** Received parts no later than `onTimeMs` after their schedule, out of the expected ones. */
  onTimeParts: number;
  /** The worst client's count of parts missing or later than `onTimeMs`. */
  worstClientMisses: number;
  bytes: number;
}

/**
 * Judges what a group of clients received against the slideshow's schedule. Each client's
 * schedule is its own: part k is due at (its first part's arrival) + k × interval, as the
 * server plays it (the first part at once, then one per interval, never catching up in a burst).
 * Parts due after `windowEnd` are ignored (a last second of slack before the run stops).
 */
export function summarize(results: readonly ClientResult[], intervalMs: number, steadyFrom: number, windowEnd: number, onTimeMs: number): ClientsSummary {
  const errors: Record<string, number> = {};
  const firstPart: number[] = [];
  const lateness: number[] = [];
  const steadyLateness: number[] = [];
  const gaps: number[] = [];
  let streaming = 0;
  let closedEarly = 0;
  let expectedParts = 0;
  let receivedParts = 0;
  let onTimeParts = 0;
  let worstClientMisses = 0;
  let bytes = 0;
  for (const client of results) {
    bytes += client.bytes;
    if (client.error) errors[client.error] = (errors[client.error] ?? 0) + 1;
    if (client.closedEarly) closedEarly++;
    if (client.status === 200) streaming++;
    const first = client.arrivals[0];
    // A client that never got its first part is expected to have got every part since it connected.
    const origin = first ?? client.openedAt;
    const expected = origin <= windowEnd ? Math.floor((windowEnd - origin) / intervalMs) + 1 : 0;
    expectedParts += expected;
    if (first === undefined) {
      worstClientMisses = Math.max(worstClientMisses, expected);
      continue;
    }
    firstPart.push(first - client.openedAt);
    let misses = 0;
    const received = Math.min(expected, client.arrivals.length);
    receivedParts += received;
    if (received > 0) onTimeParts++; // the first part defines the schedule
    for (let k = 1; k < received; k++) {
      const due = first + k * intervalMs;
      const late = client.arrivals[k]! - due;
      lateness.push(late);
      if (due >= steadyFrom) steadyLateness.push(late);
      gaps.push(client.arrivals[k]! - client.arrivals[k - 1]! - intervalMs);
      if (late <= onTimeMs) onTimeParts++;
      else misses++;
    }
    misses += expected - received;
    worstClientMisses = Math.max(worstClientMisses, misses);
  }
  return {
    clients: results.length,
    streaming,
    errors,
    closedEarly,
    firstPartMs: distribution(firstPart),
    expectedParts,
    receivedParts,
    latenessMs: distribution(lateness),
    steadyLatenessMs: distribution(steadyLateness),
    gapMs: distribution(gaps),
    onTimeParts,
    worstClientMisses,
    bytes,
  };
}
