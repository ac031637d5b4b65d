import { ServerPushError } from '../errors.ts';

// RFC 2046 §5.1.1: boundary := 0*69<bchars> bcharsnospace
const BCHARS_NO_SPACE = "0-9A-Za-z'()+_,\\-./:=?";
const BOUNDARY_PATTERN = new RegExp(`^[${BCHARS_NO_SPACE} ]{0,69}[${BCHARS_NO_SPACE}]$`);

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/**
 * Makes a random boundary: `serverpush-` followed by 32 characters drawn from 62 (190 bits), so
 * no document contains it by chance. Uses the Web Crypto API, present in Node >= 20 and browsers.
 */
export function createBoundary(prefix = 'serverpush-'): string {
  const random = new Uint8Array(32);
  globalThis.crypto.getRandomValues(random);
  let out = prefix;
  // 256 is not a multiple of 62; the slight bias of `% 62` costs well under a bit of the 190.
  for (const byte of random) out += ALPHABET[byte % ALPHABET.length];
  assertValidBoundary(out);
  return out;
}

/** True when `boundary` is a valid RFC 2046 boundary (1–70 bchars, not ending in a space). */
export function isValidBoundary(boundary: string): boolean {
  return BOUNDARY_PATTERN.test(boundary);
}

/** Throws `SP_ERR_INVALID_BOUNDARY` unless `boundary` is a valid RFC 2046 boundary. */
export function assertValidBoundary(boundary: string): void {
  if (!isValidBoundary(boundary)) {
    throw new ServerPushError('SP_ERR_INVALID_BOUNDARY', `invalid multipart boundary ${JSON.stringify(boundary)}: RFC 2046 allows 1-70 of [0-9A-Za-z'()+_,-./:=? ], not ending in a space`);
  }
}
