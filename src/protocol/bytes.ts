const encoder = new TextEncoder();

/** UTF-8 bytes of a string. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/**
 * Index of the first occurrence of `needle` in `haystack` at or after `from`, or -1. Scans for the
 * needle's first byte with the engine's native `indexOf`, then compares the rest.
 */
export function indexOfBytes(haystack: Uint8Array, needle: Uint8Array, from = 0): number {
  const n = needle.length;
  if (n === 0) return from <= haystack.length ? from : -1;
  const first = needle[0]!;
  const last = haystack.length - n;
  let i = from;
  while (i <= last) {
    i = haystack.indexOf(first, i);
    if (i === -1 || i > last) return -1;
    let j = 1;
    while (j < n && haystack[i + j] === needle[j]) j++;
    if (j === n) return i;
    i++;
  }
  return -1;
}

/** Finds a fixed needle in a haystack from an offset; -1 when absent. */
export type ByteSearch = (haystack: Uint8Array, from: number) => number;

interface NativeIndexOf {
  call(haystack: Uint8Array, needle: Uint8Array, from: number): number;
}

/**
 * A search for `needle`. On Node (and runtimes that provide a Node-compatible `Buffer`), this is
 * `Buffer.prototype.indexOf`, native code that skips ahead on a mismatch (many times faster than
 * a byte loop on bodies full of near-matches); elsewhere, e.g. in browsers, it is
 * {@link indexOfBytes}. Found by feature detection: the protocol core imports nothing from `node:`.
 */
export function createSearch(needle: Uint8Array): ByteSearch {
  const native = (globalThis as { Buffer?: { prototype: { indexOf: NativeIndexOf } } }).Buffer?.prototype.indexOf;
  if (native !== undefined && needle.length > 0) return (haystack, from) => native.call(haystack, needle, from);
  return (haystack, from) => indexOfBytes(haystack, needle, from);
}
