import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createBoundary } from '../src/protocol/boundary.ts';
import { encodePartHeaders, MultipartFraming } from '../src/protocol/encoder.ts';
import { indexOfBytes, utf8 } from '../src/protocol/bytes.ts';
import { parseCut } from './helpers/parts.ts';

// Property-based round trips: encode any parts -> split anywhere -> parse equals the input.

interface InputPart {
  contentType: string;
  withLength: boolean;
  extra: Array<[string, string]>;
  body: Uint8Array;
}

const BOUNDARY = createBoundary();
const CORE = utf8(BOUNDARY);

/** Bytes that look like a delimiter but are not one, and whole delimiters (only safe with Content-Length). */
const nearMisses = [`\r\n--${BOUNDARY.slice(0, -1)}`, `\n--${BOUNDARY}x\r\n`, `--${BOUNDARY.slice(0, 12)}`, '\r\n--', '\r\n\r\n', '--\r\n', '\n', '\r', '-'];
const fullDelimiters = [`\r\n--${BOUNDARY}\r\n`, `\r\n--${BOUNDARY}--\r\n`, `\n${BOUNDARY}\n`];

const bodyArbitrary = (withDelimiters: boolean) =>
  fc.array(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(...nearMisses, ...(withDelimiters ? fullDelimiters : [])).map(utf8)), { maxLength: 8 })
    .map((pieces) => Uint8Array.from(pieces.flatMap((p) => [...p])));

const partArbitrary: fc.Arbitrary<InputPart> = fc.boolean().chain((withLength) =>
  fc.record({
    contentType: fc.constantFrom('image/jpeg', 'text/html; charset=utf-8', 'text/plain', 'image/png', 'application/octet-stream'),
    withLength: fc.constant(withLength),
    extra: fc.uniqueArray(fc.tuple(fc.stringMatching(/^X-[A-Za-z0-9]{1,10}$/), fc.stringMatching(/^[!-~]([ !-~]{0,20}[!-~])?$/)), { maxLength: 3, selector: ([name]) => name.toLowerCase() }),
    body: bodyArbitrary(withLength),
  }),
).filter((part) => part.withLength || indexOfBytes(part.body, CORE) === -1);

const cutsFor = (length: number) => fc.uniqueArray(fc.integer({ min: 0, max: length }), { maxLength: 12 }).map((cuts) => cuts.sort((a, b) => a - b));

function expectedHeaders(part: InputPart): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': part.contentType };
  if (part.withLength) headers['content-length'] = String(part.body.length);
  for (const [name, value] of part.extra) headers[name.toLowerCase()] = value;
  return headers;
}

function check(parts: InputPart[], declared: string, input: Uint8Array, cuts: number[]): void {
  const parsed = parseCut(declared, input, cuts);
  assert.equal(parsed.length, parts.length);
  parsed.forEach((got, i) => {
    assert.deepEqual(got.body, parts[i]!.body, `body of part ${i}`);
    assert.deepEqual({ ...got.headers }, expectedHeaders(parts[i]!), `headers of part ${i}`);
  });
}

test('round trip through serverpush\'s own encoder, split anywhere', () => {
  const framing = new MultipartFraming(BOUNDARY);
  fc.assert(
    fc.property(fc.array(partArbitrary.filter((p) => !framing.containsDelimiter(p.body)), { maxLength: 6 }), fc.boolean(), (parts, closed) => {
      const pieces: Uint8Array[] = [framing.opening];
      parts.forEach((part, i) => {
        if (i > 0) pieces.push(framing.delimiter);
        pieces.push(encodePartHeaders({ contentType: part.contentType, ...(part.withLength ? { contentLength: part.body.length } : {}), extra: part.extra }), part.body);
      });
      // A live stream that is cut off ends after a delimiter; a finished one with the closing delimiter.
      if (parts.length > 0) pieces.push(closed ? framing.close : framing.delimiter);
      const input = Buffer.concat(pieces);
      fc.assert(fc.property(cutsFor(input.length), (cuts) => check(parts, BOUNDARY, input, cuts)), { numRuns: 5 });
    }),
    { numRuns: 300 },
  );
});

interface Style {
  eol: '\r\n' | '\n';
  /** How the boundary is declared in the Content-Type, and what dashes the delimiter lines carry. */
  declared: 'plain' | 'dashed';
  lineDashes: '--' | '';
  /** ffmpeg: the delimiter before each part and only a line end after the body; else RFC 2046. */
  ffmpeg: boolean;
  preamble: string;
  closed: boolean;
}

const styleArbitrary: fc.Arbitrary<Style> = fc.record({
  eol: fc.constantFrom('\r\n' as const, '\n' as const),
  declared: fc.constantFrom('plain' as const, 'dashed' as const),
  lineDashes: fc.constantFrom('--' as const, '' as const),
  ffmpeg: fc.boolean(),
  preamble: fc.constantFrom('', 'This is a multi-part message in MIME format.\r\n', '\r\n\r\n', `junk --${BOUNDARY}\n`),
  closed: fc.boolean(),
});

function encodeStyled(parts: InputPart[], style: Style): Uint8Array {
  const { eol } = style;
  const line = `${style.lineDashes}${BOUNDARY}`;
  let out = style.preamble;
  const pieces: Uint8Array[] = [];
  const flush = () => {
    pieces.push(utf8(out));
    out = '';
  };
  parts.forEach((part, i) => {
    if (style.ffmpeg || i === 0) out += `${line}${eol}`;
    out += `Content-Type: ${part.contentType}${eol}`;
    if (part.withLength) out += `Content-Length: ${part.body.length}${eol}`;
    for (const [name, value] of part.extra) out += `${name}: ${value}${eol}`;
    out += eol;
    flush();
    pieces.push(part.body);
    // Extra blank lines after a body only where a Content-Length marks its end.
    if (style.ffmpeg) out += part.withLength ? `${eol}${eol}` : eol;
    else if (i < parts.length - 1) out += `${eol}${line}${eol}`;
  });
  if (parts.length === 0) out += `${line}${style.closed ? '--' : ''}${eol}`;
  else out += style.closed ? `${style.ffmpeg ? '' : eol}${line}--${eol}` : style.ffmpeg ? `${line}${eol}` : `${eol}${line}${eol}`;
  flush();
  return Buffer.concat(pieces);
}

test('round trip through camera-style encodings (LF, no dashes, a dashed boundary, ffmpeg framing, preamble), split anywhere', () => {
  // With bare LF and no Content-Length, a body that ends in CR is ambiguous (CR LF is a line end).
  const lfSafe = (style: Style) => (part: InputPart) => style.eol === '\r\n' || part.withLength || part.body.at(-1) !== 0x0d;
  fc.assert(
    fc.property(styleArbitrary.chain((style) => fc.tuple(fc.constant(style), fc.array(partArbitrary.filter(lfSafe(style)), { maxLength: 5 }))), ([style, parts]) => {
      const input = encodeStyled(parts, style);
      const declared = style.declared === 'dashed' ? `--${BOUNDARY}` : BOUNDARY;
      fc.assert(fc.property(cutsFor(input.length), (cuts) => check(parts, declared, input, cuts)), { numRuns: 5 });
    }),
    { numRuns: 400 },
  );
});

/** Cut positions around each boundary in the input (where delimiter lines are), and anywhere. */
function cutsNearBoundaries(input: Uint8Array) {
  const found: number[] = [];
  for (let i = indexOfBytes(input, CORE); i !== -1; i = indexOfBytes(input, CORE, i + 1)) found.push(i);
  const near = fc.tuple(fc.nat(), fc.integer({ min: -8, max: CORE.length + 4 })).map(([k, delta]) => Math.min(input.length, Math.max(0, (found[k % Math.max(1, found.length)] ?? 0) + delta)));
  return fc.uniqueArray(fc.oneof(near, near, fc.integer({ min: 0, max: input.length })), { maxLength: 6 }).map((cuts) => cuts.sort((a, b) => a - b));
}

test('round trip of large bodies in large chunks cut around delimiter lines (the set-aside and chunk-junction paths)', () => {
  const bigPart = fc.record({
    contentType: fc.constant('image/jpeg'),
    withLength: fc.boolean(),
    extra: fc.constant([] as Array<[string, string]>),
    body: fc.array(fc.oneof(fc.uint8Array({ minLength: 500, maxLength: 9000 }), fc.constantFrom(...nearMisses).map(utf8)), { minLength: 1, maxLength: 12 })
      .map((pieces) => Uint8Array.from(pieces.flatMap((p) => [...p]))),
  }).filter((part) => part.withLength || indexOfBytes(part.body, CORE) === -1);
  fc.assert(
    fc.property(styleArbitrary.chain((style) => fc.tuple(fc.constant(style), fc.array(bigPart.filter((p) => style.eol === '\r\n' || p.withLength || p.body.at(-1) !== 0x0d), { minLength: 1, maxLength: 4 }))), ([style, parts]) => {
      const input = encodeStyled(parts, style);
      const declared = style.declared === 'dashed' ? `--${BOUNDARY}` : BOUNDARY;
      fc.assert(fc.property(cutsNearBoundaries(input), (cuts) => check(parts, declared, input, cuts)), { numRuns: 20, endOnFailure: true });
    }),
    { numRuns: 150, endOnFailure: true },
  );
});
