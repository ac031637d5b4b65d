import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBoundary, isValidBoundary, assertValidBoundary } from '../src/protocol/boundary.ts';
import { contentTypeForFileName, multipartContentType, isImageType } from '../src/protocol/content-type.ts';
import { encodePartHeaders, formatTimestamp, MultipartFraming } from '../src/protocol/encoder.ts';
import { indexOfBytes, utf8 } from '../src/protocol/bytes.ts';
import { isServerPushError } from '../src/errors.ts';
import { readdir, readFile } from 'node:fs/promises';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

test('createBoundary makes distinct RFC 2046-valid boundaries with 32 random characters', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const boundary = createBoundary();
    assert.match(boundary, /^serverpush-[0-9A-Za-z]{32}$/);
    assert.ok(isValidBoundary(boundary));
    seen.add(boundary);
  }
  assert.equal(seen.size, 1000);
});

test('isValidBoundary follows RFC 2046: 1-70 bchars, no trailing space', () => {
  assert.ok(isValidBoundary('a'));
  assert.ok(isValidBoundary("0-9A'()+_,-./:=? Z"));
  assert.ok(isValidBoundary('x'.repeat(70)));
  assert.ok(!isValidBoundary(''));
  assert.ok(!isValidBoundary('x'.repeat(71)));
  assert.ok(!isValidBoundary('ends with space '));
  assert.ok(!isValidBoundary('has"quote'));
  assert.ok(!isValidBoundary('line\r\nbreak'));
  assert.throws(() => assertValidBoundary('bad;'), (error) => isServerPushError(error, 'SP_ERR_INVALID_BOUNDARY'));
});

test('contentTypeForFileName maps the original five and the modern types, case-insensitively', () => {
  assert.equal(contentTypeForFileName('a.html'), 'text/html; charset=utf-8');
  assert.equal(contentTypeForFileName('a.HTM'), 'text/html; charset=utf-8');
  assert.equal(contentTypeForFileName('a.txt'), 'text/plain; charset=utf-8');
  assert.equal(contentTypeForFileName('a.jpeg'), 'image/jpeg');
  assert.equal(contentTypeForFileName('A.JPG'), 'image/jpeg');
  assert.equal(contentTypeForFileName('a.gif'), 'image/gif');
  assert.equal(contentTypeForFileName('a.png'), 'image/png');
  assert.equal(contentTypeForFileName('a.svg'), 'image/svg+xml');
  assert.equal(contentTypeForFileName('a.webp'), 'image/webp');
  assert.equal(contentTypeForFileName('a.json'), 'application/json');
  for (const name of ['a.exe', 'jpg', '.jpg', 'a.', 'a.jpg.tmp', 'a.constructor', 'a.__proto__']) {
    assert.equal(contentTypeForFileName(name), undefined, name);
  }
});

test('multipartContentType quotes only boundaries that need it', () => {
  assert.equal(multipartContentType('abc-123'), 'multipart/x-mixed-replace; boundary=abc-123');
  assert.equal(multipartContentType('a b:c'), 'multipart/x-mixed-replace; boundary="a b:c"');
  assert.ok(isImageType('image/png'));
  assert.ok(!isImageType('text/html'));
});

test('encodePartHeaders writes Content-Type, Content-Length and X-Timestamp with CRLF and a blank line', () => {
  const bytes = encodePartHeaders({ contentType: 'image/jpeg', contentLength: 1234, timestamp: 1700000000123.456 });
  assert.equal(text(bytes), 'Content-Type: image/jpeg\r\nContent-Length: 1234\r\nX-Timestamp: 1700000000.123456\r\n\r\n');
  assert.equal(text(encodePartHeaders({ contentType: 'text/plain' })), 'Content-Type: text/plain\r\n\r\n');
  assert.equal(text(encodePartHeaders({ contentType: 'a/b', extra: [['X-Frame', '7']] })), 'Content-Type: a/b\r\nX-Frame: 7\r\n\r\n');
});

test('encodePartHeaders refuses header injection and bad lengths', () => {
  // A bad part header is the part's (its source's) fault, never a request's: SP_ERR_INVALID_PART.
  assert.throws(() => encodePartHeaders({ contentType: 'text/plain\r\nX-Evil: 1' }), (error) => isServerPushError(error, 'SP_ERR_INVALID_PART'));
  assert.throws(() => encodePartHeaders({ contentType: 'a/b', extra: [['Bad Name', 'x']] }), (error) => isServerPushError(error, 'SP_ERR_INVALID_PART'));
  assert.throws(() => encodePartHeaders({ contentType: 'a/b', contentLength: -1 }), (error) => isServerPushError(error, 'SP_ERR_INVALID_PART'));
  assert.throws(() => encodePartHeaders({ contentType: 'a/b', contentLength: 1.5 }), (error) => isServerPushError(error, 'SP_ERR_INVALID_PART'));
});

test('formatTimestamp gives seconds and six digits of microseconds', () => {
  assert.equal(formatTimestamp(0), '0.000000');
  assert.equal(formatTimestamp(1500), '1.500000');
  assert.equal(formatTimestamp(1700000000001), '1700000000.001000');
});

test('MultipartFraming holds the opening, delimiter and closing bytes', () => {
  const framing = new MultipartFraming('B0undary');
  assert.equal(text(framing.opening), '--B0undary\r\n');
  assert.equal(text(framing.delimiter), '\r\n--B0undary\r\n');
  assert.equal(text(framing.close), '\r\n--B0undary--\r\n');
  assert.throws(() => new MultipartFraming('bad boundary '), (error) => isServerPushError(error, 'SP_ERR_INVALID_BOUNDARY'));
});

test('containsDelimiter finds the boundary anywhere, with or without CRLF before it', () => {
  const framing = new MultipartFraming('xyz');
  assert.ok(framing.containsDelimiter(utf8('--xyz')));
  assert.ok(framing.containsDelimiter(utf8('abc\r\n--xyz\r\n')));
  assert.ok(framing.containsDelimiter(utf8('abc\n--xyzzy')));
  assert.ok(!framing.containsDelimiter(utf8('-xyz --xy z -- xyz')));
  assert.throws(() => framing.assertSafeBody(utf8('a--xyz')), (error) => isServerPushError(error, 'SP_ERR_BOUNDARY_IN_BODY'));
});

test('indexOfBytes agrees with Buffer.indexOf on every position', () => {
  const haystack = utf8('aabaabaaab--B--Bx');
  for (const needle of ['a', 'aab', 'aaab', '--B', '--Bx', 'x', 'zz', 'aabaabaaab--B--Bx', 'aabaabaaab--B--Bxy']) {
    for (let from = 0; from <= haystack.length; from++) {
      assert.equal(indexOfBytes(haystack, utf8(needle), from), Buffer.from(haystack).indexOf(needle, from), `${needle} from ${from}`);
    }
  }
});

test('the protocol core imports nothing from node:', async () => {
  const dir = new URL('../src/protocol/', import.meta.url);
  for (const name of await readdir(dir)) {
    const source = await readFile(new URL(name, dir), 'utf8');
    assert.doesNotMatch(source, /from ['"]node:|require\(/, name);
    for (const [, path] of source.matchAll(/from ['"](\.[^'"]+)['"]/g)) {
      assert.ok(path!.startsWith('./') || path === '../errors.ts' || path === '../defaults.ts', `${name} imports ${path}`);
    }
  }
  // What the protocol core may import from outside it imports nothing itself.
  for (const file of ['../src/errors.ts', '../src/defaults.ts']) {
    assert.doesNotMatch(await readFile(new URL(file, import.meta.url), 'utf8'), /from ['"]/, file);
  }
});
