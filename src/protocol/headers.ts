/**
 * Header fields of a received part, by lower-case name. A field that appears more than once has
 * its values joined with `, ` (RFC 9110 §5.3).
 */
export type PartHeaderFields = Record<string, string>;

const LF = 0x0a;

function latin1(bytes: Uint8Array, start: number, end: number): string {
  let text = '';
  // fromCharCode maps each byte to one code unit (ISO-8859-1), so no byte is lost or replaced.
  for (let i = start; i < end; i += 4096) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, Math.min(end, i + 4096)) as unknown as number[]);
  }
  return text;
}

/** Adds `value` to the field `name`, after `separator` when the field already has a value. */
function addToField(fields: PartHeaderFields, name: string, value: string, separator: string): void {
  const previous = Object.hasOwn(fields, name) ? fields[name] : undefined;
  const joined = previous === undefined || previous === '' ? value : value === '' ? previous : `${previous}${separator}${value}`;
  // defineProperty, so a field named `__proto__` is data, not the object's prototype.
  Object.defineProperty(fields, name, { value: joined, enumerable: true, writable: true, configurable: true });
}

/**
 * Parses the header lines in `bytes[start, end)` (without the blank line that ends the block)
 * leniently: CRLF or bare LF line ends, names in any case, any whitespace around the value, obsolete
 * line folding (a line that starts with a space or tab continues the previous value). A line
 * without a colon, or with an empty name, is skipped.
 */
export function parseHeaderBlock(bytes: Uint8Array, start: number, end: number): PartHeaderFields {
  const fields: PartHeaderFields = {};
  let last: string | undefined;
  let lineStart = start;
  while (lineStart < end) {
    let lineEnd = bytes.indexOf(LF, lineStart);
    if (lineEnd === -1 || lineEnd > end) lineEnd = end;
    const line = latin1(bytes, lineStart, lineEnd).replace(/\r$/, '');
    lineStart = lineEnd + 1;
    if (line === '') continue;
    if ((line[0] === ' ' || line[0] === '\t') && last !== undefined) {
      addToField(fields, last, line.trim(), ' ');
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (name === '' || /\s/.test(name)) continue;
    addToField(fields, name, line.slice(colon + 1).trim(), ', ');
    last = name;
  }
  return fields;
}

/**
 * The part's Content-Length when it is present and consistent: decimal digits only, and every
 * value the same when it is repeated (`Content-Length: 42, 42` is 42, RFC 9110 §8.6). Otherwise
 * `undefined`, and the part ends at the next delimiter.
 */
export function contentLengthOf(fields: PartHeaderFields): number | undefined {
  const raw = fields['content-length'];
  if (raw === undefined) return undefined;
  let length: number | undefined;
  for (const item of raw.split(',')) {
    const text = item.trim();
    if (!/^\d{1,15}$/.test(text)) return undefined;
    const value = Number(text);
    if (length !== undefined && value !== length) return undefined;
    length = value;
  }
  return length;
}
