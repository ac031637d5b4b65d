/**
 * Failed authentications counted per client address, and the lockout that follows too many.
 * Memory is bounded: at most `maxAddresses` entries, the least recently failed dropped first; an
 * IPv6 client is counted by its /64 (see `failureKey`), so rotating addresses inside one's own
 * prefix gains nothing.
 */
import { failureKey } from './address.ts';
import { DEFAULT_AUTH_FAILURE_LIMIT, DEFAULT_AUTH_FAILURE_WINDOW_MS, DEFAULT_AUTH_LOCKOUT_MS, DEFAULT_AUTH_TRACKED_ADDRESSES } from '../../defaults.ts';

/** Options of {@link FailureTracker}. */
export interface FailureTrackerOptions {
  /** Failures within `windowMs` that lock an address out. @default 10 */
  limit?: number;
  /** @default 60000 (a minute) */
  windowMs?: number;
  /** How long an address stays locked out. @default 300000 (5 minutes) */
  lockoutMs?: number;
  /** Most addresses remembered at once. @default 10000 */
  maxAddresses?: number;
  /** Clock in milliseconds (tests). @default performance.now */
  now?: () => number;
}

interface Entry {
  /** Failures in the current window, which started at `since`. */
  count: number;
  since: number;
  /** Locked out until then (0: not locked). */
  lockedUntil: number;
}

export class FailureTracker {
  readonly limit: number;
  readonly windowMs: number;
  readonly lockoutMs: number;
  readonly maxAddresses: number;
  private readonly now: () => number;
  private readonly entries = new Map<string, Entry>();

  constructor(options: FailureTrackerOptions = {}) {
    this.limit = options.limit ?? DEFAULT_AUTH_FAILURE_LIMIT;
    this.windowMs = options.windowMs ?? DEFAULT_AUTH_FAILURE_WINDOW_MS;
    this.lockoutMs = options.lockoutMs ?? DEFAULT_AUTH_LOCKOUT_MS;
    this.maxAddresses = options.maxAddresses ?? DEFAULT_AUTH_TRACKED_ADDRESSES;
    this.now = options.now ?? (() => performance.now());
  }

  /** Addresses remembered now. */
  get size(): number {
    return this.entries.size;
  }

  /** Seconds left of `address`'s lockout (rounded up), or 0 when it is not locked out. */
  lockedFor(address: string | undefined): number {
    const entry = this.entries.get(failureKey(address));
    if (!entry || entry.lockedUntil === 0) return 0;
    const left = entry.lockedUntil - this.now();
    return left > 0 ? Math.ceil(left / 1000) : 0;
  }

  /** Counts a failure of `address`. Returns true when it has just been locked out. */
  fail(address: string | undefined): boolean {
    const key = failureKey(address);
    const now = this.now();
    let entry = this.entries.get(key);
    if (entry) this.entries.delete(key); // re-inserted below: the map's order is least recently failed first
    if (!entry || now - entry.since > this.windowMs || (entry.lockedUntil !== 0 && now >= entry.lockedUntil)) entry = { count: 0, since: now, lockedUntil: 0 };
    entry.count++;
    let lockedNow = false;
    if (entry.lockedUntil === 0 && entry.count >= this.limit) {
      entry.lockedUntil = now + this.lockoutMs;
      lockedNow = true;
    }
    this.entries.set(key, entry);
    while (this.entries.size > this.maxAddresses) this.entries.delete(this.entries.keys().next().value!);
    return lockedNow;
  }
}
