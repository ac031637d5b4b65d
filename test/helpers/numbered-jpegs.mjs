// A camera on standard output, for exec streams in tests: writes the JPEG FILE again and again,
// FPS times a second, each copy stamped with its sequence number (from FIRST, default 1) in a
// comment segment right after SOI, as camera-writer.ts's stampSeq does (readSeq reads it back).
// Usage: node numbered-jpegs.mjs FILE FPS [FIRST]
import { readFileSync } from 'node:fs';

const [file, fps, first] = process.argv.slice(2);
const jpeg = readFileSync(file);
let seq = Number(first ?? 1);

function stamp(n) {
  const text = Buffer.from(`camera-writer seq=${String(n).padStart(8, '0')}`, 'latin1');
  const com = Buffer.alloc(4 + text.length);
  com[0] = 0xff;
  com[1] = 0xfe;
  com.writeUInt16BE(2 + text.length, 2);
  text.copy(com, 4);
  return Buffer.concat([jpeg.subarray(0, 2), com, jpeg.subarray(2)]);
}

process.stdout.on('error', () => process.exit(0));
setInterval(() => process.stdout.write(stamp(seq++)), 1000 / Number(fps));
