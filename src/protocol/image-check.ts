/**
 * Cheap structural checks that a frame is a whole image of its declared type, so that a truncated
 * or foreign frame from a pipe or an upstream camera never reaches viewers half-made. They look at
 * the first and last bytes only; they do not decode.
 */

function startsWith(body: Uint8Array, signature: readonly number[]): boolean {
  if (body.length < signature.length) return false;
  for (let i = 0; i < signature.length; i++) if (body[i] !== signature[i]) return false;
  return true;
}

/** True when `body` is the beginning of `signature` (or all of it). */
function prefixOf(body: Uint8Array, signature: readonly number[]): boolean {
  if (body.length > signature.length) return false;
  for (let i = 0; i < body.length; i++) if (body[i] !== signature[i]) return false;
  return true;
}

/** Index just past the last non-padding byte: encoders and cameras may pad with NUL or CR/LF. */
function contentEnd(body: Uint8Array): number {
  let end = body.length;
  while (end > 0 && (body[end - 1] === 0x00 || body[end - 1] === 0x0a || body[end - 1] === 0x0d)) end--;
  return end;
}

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const IEND = [0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82];

/**
 * Why `body` is not a whole image of `contentType`, or `undefined` when it looks whole (or the
 * type is one these checks do not know, such as text).
 */
export function imageProblem(contentType: string, body: Uint8Array): string | undefined {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  if (body.length === 0) return 'empty';
  const end = contentEnd(body);
  switch (type) {
    case 'image/jpeg':
    case 'image/jpg':
      if (!startsWith(body, [0xff, 0xd8, 0xff])) return 'not a JPEG (no start-of-image marker)';
      if (end < 4 || body[end - 2] !== 0xff || body[end - 1] !== 0xd9) return 'truncated JPEG (no end-of-image marker)';
      return undefined;
    case 'image/png': {
      if (!startsWith(body, PNG)) return 'not a PNG (bad signature)';
      if (end < 20 || !IEND.every((byte, i) => body[end - 8 + i] === byte)) return 'truncated PNG (no IEND chunk at the end)';
      return undefined;
    }
    case 'image/gif':
      if (!startsWith(body, [0x47, 0x49, 0x46, 0x38])) return 'not a GIF (bad signature)';
      if (body[end - 1] !== 0x3b) return 'truncated GIF (no trailer)';
      return undefined;
    case 'image/webp':
      if (!startsWith(body, [0x52, 0x49, 0x46, 0x46]) || body[8] !== 0x57 || body[9] !== 0x45 || body[10] !== 0x42 || body[11] !== 0x50) return 'not a WebP (bad RIFF header)';
      {
        const declared = (body[4]! | (body[5]! << 8) | (body[6]! << 16) | (body[7]! << 24)) >>> 0;
        if (declared + 8 > body.length) return 'truncated WebP';
      }
      return undefined;
    default:
      return undefined;
  }
}

/**
 * Whether `body` is known to be a whole image of `contentType`, from its structure alone:
 * - `whole`: the structure ends exactly at the end of the body (trailing NUL/CR/LF padding
 *   allowed);
 * - `partial`: the body is a prefix of an image that is not finished yet;
 * - `unknown`: a type without a structure check here (text, html, svg, json), or bytes that are
 *   not such an image or carry something after it; a caller decides by other means.
 *
 * Used to push a file that a writer fills in place as soon as it is whole. A JPEG is walked
 * segment by segment (as {@link JpegSplitter} does), so a file cut right after an embedded EXIF
 * thumbnail's `FF D9` is `partial`, though it starts and ends like a whole JPEG. PNG ends with its
 * IEND chunk; GIF is walked block by block to its trailer; WebP is as long as its RIFF header says.
 */
export function imageCompleteness(contentType: string, body: Uint8Array): 'whole' | 'partial' | 'unknown' {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  switch (type) {
    case 'image/jpeg':
    case 'image/jpg':
      return settled(jpegEnd(body), body);
    case 'image/png':
      if (body.length < PNG.length) return prefixOf(body, PNG) ? 'partial' : 'unknown';
      if (!startsWith(body, PNG)) return 'unknown';
      return imageProblem(type, body) === undefined ? 'whole' : 'partial';
    case 'image/gif':
      return settled(gifEnd(body), body);
    case 'image/webp': {
      if (body.length < 12) return prefixOf(body.subarray(0, 4), [0x52, 0x49, 0x46, 0x46]) ? 'partial' : 'unknown';
      if (imageProblem(type, body) === 'not a WebP (bad RIFF header)') return 'unknown';
      const declared = (body[4]! | (body[5]! << 8) | (body[6]! << 16) | (body[7]! << 24)) >>> 0;
      return settled(declared + 8, body);
    }
    default:
      return 'unknown';
  }
}

/** From where a structure walk ended: `partial` (-1), or whether only padding follows. */
function settled(end: number | 'partial' | 'unknown', body: Uint8Array): 'whole' | 'partial' | 'unknown' {
  if (end === 'partial' || end === 'unknown') return end;
  if (end > body.length) return 'partial';
  return contentEnd(body) <= end ? 'whole' : 'unknown';
}

/** Index just past the EOI of the JPEG at the start of `body`, by walking its segments. */
function jpegEnd(body: Uint8Array): number | 'partial' | 'unknown' {
  const n = body.length;
  if (n < 3) return prefixOf(body, [0xff, 0xd8, 0xff]) ? 'partial' : 'unknown';
  if (!startsWith(body, [0xff, 0xd8, 0xff])) return 'unknown';
  let pos = 2;
  let entropy = false;
  for (;;) {
    if (entropy) {
      // Entropy-coded data: FF 00 is a stuffed byte, FF D0-D7 a restart marker; other FF xx end it.
      for (;;) {
        pos = body.indexOf(0xff, pos);
        if (pos === -1 || pos + 1 >= n) return 'partial';
        const next = body[pos + 1]!;
        if (next === 0x00 || (next >= 0xd0 && next <= 0xd7)) pos += 2;
        else if (next === 0xff) pos += 1;
        else break;
      }
      entropy = false;
    }
    if (pos + 1 >= n) return 'partial';
    if (body[pos] !== 0xff) return 'unknown';
    const marker = body[pos + 1]!;
    if (marker === 0xff) {
      pos++; // fill byte
      continue;
    }
    if (marker === 0xd9) return pos + 2;
    if (marker === 0xd8) return 'unknown';
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      pos += 2;
      continue;
    }
    if (pos + 3 >= n) return 'partial';
    const length = (body[pos + 2]! << 8) | body[pos + 3]!;
    if (length < 2) return 'unknown';
    pos += 2 + length;
    if (pos > n) return 'partial';
    if (marker === 0xda) entropy = true;
  }
}

/** Index just past the trailer of the GIF at the start of `body`, by walking its blocks. */
function gifEnd(body: Uint8Array): number | 'partial' | 'unknown' {
  const n = body.length;
  const signature = [0x47, 0x49, 0x46, 0x38];
  if (n < 13) return prefixOf(body.subarray(0, 4), signature) ? 'partial' : 'unknown';
  if (!startsWith(body, signature)) return 'unknown';
  const colorTable = (flags: number): number => (flags & 0x80 ? 3 * 2 ** ((flags & 0x07) + 1) : 0);
  let pos = 13 + colorTable(body[10]!);
  /** Skips data sub-blocks (a length byte, that many bytes, … a zero length). */
  const subBlocks = (): boolean => {
    for (;;) {
      if (pos >= n) return false;
      const size = body[pos]!;
      pos += 1 + size;
      if (size === 0) return true;
    }
  };
  for (;;) {
    if (pos >= n) return 'partial';
    const introducer = body[pos]!;
    if (introducer === 0x3b) return pos + 1;
    if (introducer === 0x21) {
      pos += 2; // introducer, label
      if (!subBlocks()) return 'partial';
    } else if (introducer === 0x2c) {
      if (pos + 10 > n) return 'partial';
      pos += 10 + colorTable(body[pos + 9]!) + 1; // descriptor, local color table, LZW code size
      if (!subBlocks()) return 'partial';
    } else {
      return 'unknown';
    }
  }
}
