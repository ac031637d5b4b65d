import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { MultipartParser } from '../src/protocol/parser.ts';
import { multipartBoundary, parseMediaType, fileExtensionForType } from '../src/protocol/content-type.ts';
import { LimitExceededError, isServerPushError } from '../src/errors.ts';
import { loadFixtures, parseCut, parseInChunks, summary, bytes, text } from './helpers/parts.ts';

function assertCode(code: string, limit?: number) {
  return (error: unknown) => {
    assert.ok(isServerPushError(error), `expected a ServerPushError, got ${String(error)}`);
    assert.equal(error.code, code);
    if (limit !== undefined) {
      assert.ok(error instanceof LimitExceededError);
      assert.equal(error.limit, limit);
    }
    return true;
  };
}

describe('the corpus of real and hand-made producers (test/fixtures)', () => {
  for (const fixture of loadFixtures()) {
    const boundary = multipartBoundary(fixture.contentType);
    const expected = fixture.parts;

    test(`${fixture.name} (${fixture.producer}) parses into the parts that were written`, () => {
      const parser = new MultipartParser(boundary);
      const parts = [...parser.push(fixture.bytes)];
      assert.equal(parser.done, fixture.closed, fixture.closed ? 'the closing delimiter ends the stream' : 'no closing delimiter');
      parts.push(...parser.end());
      assert.deepEqual(summary(parts), expected);
      assert.equal(parser.contentLengthMismatches, 0);
    });

    test(`${fixture.name} parses the same when split at every position`, () => {
      for (let cut = 0; cut <= fixture.bytes.length; cut++) {
        const got = summary(parseCut(boundary, fixture.bytes, [cut]));
        if (JSON.stringify(got) !== JSON.stringify(expected)) assert.deepEqual(got, expected, `split at ${cut}`);
      }
    });

    test(`${fixture.name} parses the same one byte at a time and in chunks of 2 to 4096 bytes`, () => {
      for (const size of [1, 2, 3, 7, 64, 1000, 4096]) assert.deepEqual(summary(parseInChunks(boundary, fixture.bytes, size)), expected, `chunks of ${size}`);
    });
  }
});

const JPEG_A = bytes('\xff\xd8\xff\xe0JFIF-A\x00\x01\xff\xd9');
const JPEG_B = bytes('\xff\xd8\xff\xe0JFIF-B\x00\x02\x03\xff\xd9');
const concat = (...pieces: Array<string | Uint8Array>) => Buffer.concat(pieces.map((p) => (typeof p === 'string' ? bytes(p) : p)));

describe('when a part is complete', () => {
  test('yields a part as soon as its Content-Length is reached, before the next part begins', () => {
    const parser = new MultipartParser('B');
    assert.deepEqual(parser.push(bytes('--B\r\nContent-Type: image/jpeg\r\nContent-Length: 14\r\n\r\n')), []);
    const parts = parser.push(JPEG_A);
    assert.equal(parts.length, 1, 'the part is out with its last byte, with nothing after it yet');
    assert.deepEqual(parts[0]!.body, JPEG_A);
    assert.deepEqual(parser.push(bytes('\r\n--B\r\n')), []);
  });

  test('without Content-Length, yields a part as soon as the delimiter line after it has arrived', () => {
    const parser = new MultipartParser('B');
    assert.deepEqual(parser.push(concat('--B\r\nContent-Type: image/jpeg\r\n\r\n', JPEG_A)), []);
    assert.deepEqual(parser.push(bytes('\r\n--B')), [], 'could still be --BB, or body');
    const parts = parser.push(bytes('\r\n'));
    assert.equal(parts.length, 1);
    assert.deepEqual(parts[0]!.body, JPEG_A);
  });

  test('yields several parts that share one chunk separately, neither merged nor repeated', () => {
    const input = concat('--B\r\nContent-Type: image/jpeg\r\nContent-Length: 14\r\n\r\n', JPEG_A, '\r\n--B\r\nContent-Type: image/jpeg\r\n\r\n', JPEG_B,
      '\r\n--B\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi\r\n--B--\r\n');
    const parts = new MultipartParser('B').push(input);
    assert.deepEqual(parts.map((p) => text(p.body)), [text(JPEG_A), text(JPEG_B), 'hi']);
    assert.deepEqual(parts.map((p) => p.headers['content-type']), ['image/jpeg', 'image/jpeg', 'text/plain']);
  });

  test('keeps a part whose JPEG end marker FF D9 straddles two chunks, with or without Content-Length', () => {
    for (const head of ['Content-Length: 14\r\n', '']) {
      const input = concat(`--B\r\nContent-Type: image/jpeg\r\n${head}\r\n`, JPEG_A, '\r\n--B\r\n');
      const marker = input.indexOf(0xd9, 4 + head.length);
      const parts = parseCut('B', input, [marker]);
      assert.equal(parts.length, 1);
      assert.deepEqual(parts[0]!.body, JPEG_A);
    }
  });

  test('yields parts of any content type, with their headers', () => {
    const parts = new MultipartParser('B').push(bytes('--B\r\nContent-Type: text/html\r\nX-Timestamp: 1.000001\r\n\r\n<p>hi</p>\r\n--B\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01\r\n--B--'));
    assert.deepEqual(parts.map((p) => [p.headers, text(p.body)]), [[{ 'content-type': 'text/html', 'x-timestamp': '1.000001' }, '<p>hi</p>']]);
  });

  test('the closing delimiter ends the stream, even without a line end after it, and the epilogue is ignored', () => {
    const parser = new MultipartParser('B');
    assert.equal(parser.push(bytes('--B\r\nContent-Type: text/plain\r\n\r\nlast\r\n--B--')).length, 0);
    assert.deepEqual(parser.end().map((p) => text(p.body)), ['last']);
    const closed = new MultipartParser('B');
    assert.equal(closed.push(bytes('--B\r\nContent-Type: text/plain\r\n\r\nlast\r\n--B--\r\nepilogue\r\n--B\r\nContent-Type: x/y\r\n\r\nno\r\n--B\r\n')).length, 1);
    assert.equal(closed.done, true);
    assert.deepEqual(closed.end(), []);
  });

  test('an endless stream has no limit on part count or total bytes', () => {
    const parser = new MultipartParser('B', { maxPartBytes: 2048 });
    const body = new Uint8Array(1500).fill(0x61);
    const part = concat('Content-Type: text/plain\r\nContent-Length: 1500\r\n\r\n', body, '\r\n--B\r\n');
    let count = parser.push(bytes('--B\r\n')).length;
    for (let i = 0; i < 20_000; i++) count += parser.push(part).length;
    assert.equal(count, 20_000, '30 MB in 20,000 parts');
  });
});

describe('real-world tolerance', () => {
  const jpegPart = (delimiter: string, eol: string, length: boolean) =>
    concat(`${delimiter}${eol}Content-Type: image/jpeg${eol}${length ? `Content-Length: 14${eol}` : ''}${eol}`, JPEG_A, eol);

  for (const eol of ['\r\n', '\n']) {
    for (const length of [true, false]) {
      for (const [declared, sent] of [['B', '--B'], ['B', 'B'], ['--B', '--B'], ['--B', '----B']] as const) {
        test(`boundary declared ${declared}, delimiters ${sent}, ${eol === '\n' ? 'bare LF' : 'CRLF'}, ${length ? 'with' : 'without'} Content-Length`, () => {
          const input = concat(jpegPart(sent, eol, length), jpegPart(sent, eol, length), `${sent}--${eol}`);
          for (let cut = 0; cut <= input.length; cut++) {
            const parts = parseCut(declared, input, [cut]);
            assert.deepEqual(parts.map((p) => p.body), [JPEG_A, JPEG_A], `split at ${cut}`);
          }
        });
      }
    }
  }

  test('the boundary parameter quoted or not, with or without a leading --, in any case, among other parameters', () => {
    assert.equal(multipartBoundary('multipart/x-mixed-replace; boundary=myboundary'), 'myboundary');
    assert.equal(multipartBoundary('multipart/x-mixed-replace;boundary=--myboundary'), '--myboundary');
    assert.equal(multipartBoundary('Multipart/X-Mixed-Replace; Boundary="my boundary:1"; charset=x'), 'my boundary:1');
    assert.equal(multipartBoundary('multipart/x-mixed-replace; charset="a;b"; boundary = "q\\"uo;ted" '), 'q"uo;ted');
    assert.equal(multipartBoundary('multipart/mixed; boundary=abc;'), 'abc');
    assert.deepEqual(parseMediaType('image/jpeg'), { type: 'image/jpeg', parameters: {} });
  });

  test('a preamble, a line that only starts like a delimiter, and junk before the first delimiter are skipped', () => {
    const input = concat('HTTP junk\r\nThis is a multi-part message in MIME format.\n--Bx\r\nx--B\r\n\r\n', jpegPart('--B', '\r\n', true), '--B--\r\n');
    assert.deepEqual(parseInChunks('B', input, 5).map((p) => p.body), [JPEG_A]);
  });

  test('blank lines and whitespace between parts are skipped', () => {
    const input = concat('\r\n\r\n--B\r\n\r\n\r\nContent-Type: image/jpeg\r\nContent-Length: 14\r\n\r\n', JPEG_A, '\r\n\r\n \t\r\n\n--B\r\nContent-Type: image/jpeg\r\nContent-Length: 15\r\n\r\n', JPEG_B, '--B--');
    assert.deepEqual(parseInChunks('B', input, 3).map((p) => p.body), [JPEG_A, JPEG_B]);
  });

  test('padding after the boundary on a delimiter line', () => {
    const input = concat('--B \t\r\nContent-Type: text/plain\r\n\r\none\r\n--B  \r\nContent-Type: text/plain\r\n\r\ntwo\r\n--B-- \r\n');
    assert.deepEqual(parseInChunks('B', input, 2).map((p) => text(p.body)), ['one', 'two']);
  });

  test('header names in any case, values trimmed, folded lines joined, repeated fields joined, lines without a colon skipped', () => {
    const parts = new MultipartParser('B').push(bytes('--B\r\nCONTENT-type:image/jpeg  \r\nx-Note: a\r\n  continued\r\nX-NOTE: b\r\nnot a header\r\n__proto__: safe\r\nContent-LENGTH: 2\r\n\r\nab\r\n--B\r\n'));
    assert.equal(parts.length, 1);
    assert.deepEqual({ ...parts[0]!.headers }, JSON.parse('{ "content-type": "image/jpeg", "x-note": "a continued, b", "__proto__": "safe", "content-length": "2" }'));
    assert.equal(Object.getPrototypeOf(parts[0]!.headers), Object.prototype);
  });

  test('with Content-Length, a body may contain the delimiter itself', () => {
    const body = bytes('line\r\n--B\r\nContent-Type: fake\r\n\r\nstill the body');
    const input = concat(`--B\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n`, body, '\r\n--B--\r\n');
    assert.deepEqual(parseInChunks('B', input, 4).map((p) => p.body), [body]);
  });

  test('a Content-Length that is not a number, or repeated with different values, is ignored for the delimiter', () => {
    for (const header of ['Content-Length: 3x\r\n', 'Content-Length: 5\r\nContent-Length: 6\r\n', 'Content-Length: -2\r\n']) {
      const input = concat(`--B\r\nContent-Type: text/plain\r\n${header}\r\nhello\r\n--B--\r\n`);
      assert.deepEqual(parseCut('B', input, []).map((p) => text(p.body)), ['hello'], header);
    }
    assert.deepEqual(parseCut('B', bytes('--B\r\nContent-Length: 5, 5\r\n\r\nhello--B\r\n'), []).map((p) => text(p.body)), ['hello'], 'Content-Length: 5, 5 is 5');
  });

  test('a wrong Content-Length: the part is yielded as framed, the parser skips to the next delimiter and uses delimiters from then on', () => {
    for (const wrong of [10, 18]) {
      const input = concat(`--B\r\nContent-Type: image/jpeg\r\nContent-Length: ${wrong}\r\n\r\n`, JPEG_A, '\r\n--B\r\nContent-Type: image/jpeg\r\nContent-Length: 14\r\n\r\n', JPEG_B,
        '\r\n--B\r\nContent-Type: image/jpeg\r\nContent-Length: 99\r\n\r\n', JPEG_A, '\r\n--B--\r\n');
      const parser = new MultipartParser('B');
      const parts = [...parser.push(input), ...parser.end()];
      assert.equal(parts[0]!.body.length, wrong, 'the first part as its Content-Length framed it');
      assert.equal(parser.contentLengthMismatches, 1);
      assert.deepEqual(parts.slice(1).map((p) => p.body).at(-1), JPEG_A, 'a later wrong Content-Length is not used');
      if (wrong < 14) assert.deepEqual(parts.slice(1).map((p) => p.body), [JPEG_B, JPEG_A]);
    }
  });

  test('ffmpeg-style streams that end after a body, or after a delimiter, without a closing delimiter end cleanly', () => {
    assert.equal(parseCut('B', concat('--B\r\nContent-Length: 14\r\n\r\n', JPEG_A, '\r\n'), []).length, 1);
    assert.equal(parseCut('B', concat('--B\r\nContent-Length: 14\r\n\r\n', JPEG_A, '\r\n--B\r\n'), []).length, 1);
    assert.equal(parseCut('B', bytes(''), []).length, 0);
  });
});

describe('failures, each with its code', () => {
  test('a header block over maxHeaderBytes throws SP_ERR_HEADERS_TOO_LARGE with the limit, without buffering the rest', () => {
    const parser = new MultipartParser('B', { maxHeaderBytes: 100 });
    parser.push(bytes('--B\r\nX-Long: '));
    assert.throws(() => {
      for (let i = 0; i < 100; i++) parser.push(bytes('aaaaaaaaaa'));
    }, assertCode('SP_ERR_HEADERS_TOO_LARGE', 100));
    assert.throws(() => new MultipartParser('B', { maxHeaderBytes: 30 }).push(bytes('--B\r\nContent-Type: image/jpeg\r\nX: 1\r\n\r\n')), assertCode('SP_ERR_HEADERS_TOO_LARGE', 30));
  });

  test('a Content-Length over maxPartBytes throws SP_ERR_PART_TOO_LARGE at once, before the body arrives', () => {
    const parser = new MultipartParser('B', { maxPartBytes: 1000 });
    assert.throws(() => parser.push(bytes('--B\r\nContent-Type: image/jpeg\r\nContent-Length: 1001\r\n\r\n')), assertCode('SP_ERR_PART_TOO_LARGE', 1000));
  });

  test('a part without Content-Length that grows over maxPartBytes throws SP_ERR_PART_TOO_LARGE', () => {
    const parser = new MultipartParser('B', { maxPartBytes: 1000 });
    parser.push(bytes('--B\r\nContent-Type: image/jpeg\r\n\r\n'));
    assert.throws(() => {
      for (let i = 0; i < 20; i++) parser.push(new Uint8Array(100));
    }, assertCode('SP_ERR_PART_TOO_LARGE', 1000));
    assert.throws(() => parseCut('B', concat('--B\r\n\r\nX: y\r\n\r\n', new Uint8Array(1001), '\r\n--B\r\n'), [], { maxPartBytes: 1000 }), assertCode('SP_ERR_PART_TOO_LARGE', 1000));
  });

  test('no delimiter within maxPreambleBytes throws SP_ERR_NO_DELIMITER with the limit', () => {
    const parser = new MultipartParser('B', { maxPreambleBytes: 1024 });
    assert.throws(() => {
      for (let i = 0; i < 40; i++) parser.push(bytes('<html>not the stream you wanted</html>\r\n--C\r\n'));
    }, assertCode('SP_ERR_NO_DELIMITER', 1024));
  });

  test('input that ends with bytes but no delimiter at all throws SP_ERR_NO_DELIMITER', () => {
    assert.throws(() => parseCut('B', bytes('<html>404</html>'), []), assertCode('SP_ERR_NO_DELIMITER'));
  });

  test('input that ends inside a part throws SP_ERR_INCOMPLETE_PART', () => {
    for (const input of ['--B\r\nContent-Type: image/jpeg\r\nContent-Length: 14\r\n\r\n\xff\xd8', '--B\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff', '--B\r\nContent-Ty']) {
      assert.throws(() => parseCut('B', bytes(input), []), assertCode('SP_ERR_INCOMPLETE_PART'), JSON.stringify(input));
    }
  });

  test('an empty boundary, or one with a line break, throws SP_ERR_INVALID_BOUNDARY', () => {
    assert.throws(() => new MultipartParser(''), assertCode('SP_ERR_INVALID_BOUNDARY'));
    assert.throws(() => new MultipartParser('a\r\nb'), assertCode('SP_ERR_INVALID_BOUNDARY'));
  });

  test('a Content-Type that is missing or not multipart throws SP_ERR_NOT_MULTIPART; one without a boundary SP_ERR_NO_BOUNDARY', () => {
    assert.throws(() => multipartBoundary(null), assertCode('SP_ERR_NOT_MULTIPART'));
    assert.throws(() => multipartBoundary('text/html; charset=utf-8'), assertCode('SP_ERR_NOT_MULTIPART'));
    assert.throws(() => multipartBoundary('image/jpeg'), assertCode('SP_ERR_NOT_MULTIPART'));
    assert.throws(() => multipartBoundary('multipart/x-mixed-replace'), assertCode('SP_ERR_NO_BOUNDARY'));
    assert.throws(() => multipartBoundary('multipart/x-mixed-replace; boundary=""'), assertCode('SP_ERR_NO_BOUNDARY'));
  });
});

test('file extensions for part types', () => {
  assert.deepEqual(['image/jpeg', 'IMAGE/PNG', 'text/html; charset=utf-8', 'application/x-thing', undefined].map(fileExtensionForType), ['jpg', 'png', 'html', 'bin', 'bin']);
});
