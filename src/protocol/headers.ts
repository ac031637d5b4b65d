/**
 * Header fields of a received part, by lower-case name. A field that appears more than once has
 * its values joined with `, ` (RFC 9110 §5.3).
 */
export type PartHeaderFields = Record<string, string>;

const LF = 0x0a, CR = 0x0d, SPACE = 0x20, TAB = 0x09, COLON = 0x3a;
const ascii = new TextDecoder();

/** `bytes[start, end)` as a string, one code unit per byte (ISO-8859-1): no byte is lost or replaced. */
function latin1(bytes: Uint8Array, start: number, end: number): string {
  if (end - start <= 32) {
    let text = '';
    for (let i = start; i < end; i++) text += String.fromCharCode(bytes[i]!);
    return text;
  }
  let i = start;
  while (i < end && bytes[i]! < 0x80) i++;
  // All ASCII (the usual case): the native decoder is fastest, and UTF-8 agrees with ISO-8859-1 there.
  if (i === end) return ascii.decode(bytes.subarray(start, end));
  let text = '';
  for (i = start; i < end; i += 4096) text += String.fromCharCode.apply(null, bytes.subarray(i, Math.min(end, i + 4096)) as unknown as number[]);
  return text;
}

/** Field names seen on nearly every part, matched without making a string. */
const COMMON_NAMES = ['content-type', 'content-length', 'x-timestamp'].map((name) => ({ name, bytes: Array.from(name, (c) => c.charCodeAt(0)) }));

/** The lower-case field name in `bytes[start, end)`, or `undefined` when it is empty or has whitespace inside. */
function fieldName(bytes: Uint8Array, start: number, end: number): string | undefined {
  while (start < end && (bytes[start] === SPACE || bytes[start] === TAB)) start++;
  while (end > start && (bytes[end - 1] === SPACE || bytes[end - 1] === TAB)) end--;
  if (start === end) return undefined;
  for (const common of COMMON_NAMES) {
    if (common.bytes.length !== end - start) continue;
    let k = 0;
    // ASCII letters differ from their capitals in bit 0x20 only; the other bytes of these names are '-'.
    while (k < common.bytes.length && (bytes[start + k]! | 0x20) === common.bytes[k]) k++;
    if (k === common.bytes.length) return common.name;
  }
  const name = latin1(bytes, start, end);
  return /\s/.test(name) ? undefined : name.toLowerCase();
}

/** Adds `value` to the field `name`, after `separator` when the field already has a value. */
function addToField(fields: PartHeaderFields, name: string, value: string, separator: string): void {
  const previous = Object.hasOwn(fields, name) ? fields[name] : undefined;
  const joined = previous === undefined || previous === '' ? value : value === '' ? previous : `${previous}${separator}${value}`;
  // A field named `__proto__` must be data, not the object's prototype; any other name is a plain
  // assignment, which keeps the object fast.
  if (name === '__proto__') Object.defineProperty(fields, name, { value: joined, enumerable: true, writable: true, configurable: true });
  else fields[name] = joined;
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
  for (let p = start; p < end;) {
    let next = bytes.indexOf(LF, p);
    if (next === -1 || next > end) next = end;
    let lineEnd = next > p && bytes[next - 1] === CR ? next - 1 : next;
    const first = bytes[p];
    if (lineEnd > p && (first === SPACE || first === TAB)) {
      while (p < lineEnd && (bytes[p] === SPACE || bytes[p] === TAB)) p++;
      while (lineEnd > p && (bytes[lineEnd - 1] === SPACE || bytes[lineEnd - 1] === TAB)) lineEnd--;
      if (last !== undefined) addToField(fields, last, latin1(bytes, p, lineEnd), ' ');
    } else if (lineEnd > p) {
      let colon = p;
      while (colon < lineEnd && bytes[colon] !== COLON) colon++;
      const name = colon > p && colon < lineEnd ? fieldName(bytes, p, colon) : undefined;
      if (name !== undefined) {
        let v = colon + 1;
        while (v < lineEnd && (bytes[v] === SPACE || bytes[v] === TAB)) v++;
        while (lineEnd > v && (bytes[lineEnd - 1] === SPACE || bytes[lineEnd - 1] === TAB)) lineEnd--;
        addToField(fields, name, latin1(bytes, v, lineEnd), ', ');
        last = name;
      }
    }
    p = next + 1;
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
  // The usual case, without a regular expression: 1 to 15 digits.
  if (raw.length > 0 && raw.length <= 15) {
    let value = 0;
    for (let i = 0; i < raw.length; i++) {
      const digit = raw.charCodeAt(i) - 48;
      if (digit < 0 || digit > 9) {
        value = -1;
        break;
      }
      value = value * 10 + digit;
    }
    if (value >= 0) return value;
  }
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
