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
