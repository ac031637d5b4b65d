#!/usr/bin/env node
/**
 * A camera on standard output for `exec` sources in tests and benches: writes concatenated JPEGs
 * (the fixture frames in turn) at FPS frames a second, each stamped with its sequence number in a
 * JPEG comment right after SOI (the format of camera-writer.ts's stampSeq / readSeq), optionally
 * padded with a second comment to about PAD bytes. Plain JavaScript: it starts in ~50 ms.
 *
 *   node test/helpers/frame-pump.mjs FPS [PAD] [MARKER]
 *
 * MARKER is ignored; it lets a test find its pumps with pgrep.
 */
import { readdirSync, readFileSync } from 'node:fs';

const fps = Number(process.argv[2] ?? 30);
const pad = Number(process.argv[3] ?? 0);
const dir = new URL('../fixtures/frames/', import.meta.url);
const frames = readdirSync(dir).filter((name) => name.endsWith('.jpg')).sort().map((name) => readFileSync(new URL(name, dir)));

function segment(text) {
  const body = Buffer.from(text, 'latin1');
  const head = Buffer.alloc(4);
  head[0] = 0xff;
  head[1] = 0xfe;
  head.writeUInt16BE(2 + body.length, 2);
  return Buffer.concat([head, body]);
}

function frame(seq) {
  const jpeg = frames[seq % frames.length];
  const parts = [jpeg.subarray(0, 2), segment(`camera-writer seq=${String(seq).padStart(8, '0')}`)];
  for (let left = pad - jpeg.length; left > 0; left -= 65_000) parts.push(segment('x'.repeat(Math.min(65_000, left))));
  parts.push(jpeg.subarray(2));
  return Buffer.concat(parts);
}

let seq = 0;
const start = performance.now();
process.stdout.on('error', () => process.exit(0));
function next() {
  seq++;
  process.stdout.write(frame(seq));
  const due = start + (seq * 1000) / fps;
  setTimeout(next, Math.max(0, due - performance.now()));
}
next();
