/**
 * Splits a byte stream of concatenated JPEG images (ffmpeg `-f mjpeg`, many cameras' raw output)
 * into whole images, by walking the JPEG marker structure rather than searching for `FF D9`,
 * which can occur inside an embedded EXIF thumbnail. Bytes that are not inside an image are
 * skipped and reported. Pure TypeScript: no `node:` imports.
 */
import { DEFAULT_MAX_PART_BYTES } from '../defaults.ts';

export interface JpegSplitterEvents {
  /** Bytes skipped because they were not part of an image, and why. */
  onJunk?: (bytes: number, reason: string) => void;
}


export class JpegSplitter {
  private buf = new Uint8Array(64 * 1024);
  private start = 0; // first byte of the image being read (or of unread input)
  private end = 0; // end of buffered input
  private pos = 0; // parse position inside the current image
  private inImage = false;
  private inEntropy = false;
  private readonly maxBytes: number;
  private readonly events: JpegSplitterEvents;

  constructor(options: { maxImageBytes?: number } & JpegSplitterEvents = {}) {
    this.maxBytes = options.maxImageBytes ?? DEFAULT_MAX_PART_BYTES;
    this.events = options;
  }

  /** Feeds bytes; returns the images they completed (copies, safe to keep). */
  push(chunk: Uint8Array): Uint8Array[] {
    this.append(chunk);
    const images: Uint8Array[] = [];
    for (;;) {
      if (!this.inImage && !this.findStart()) break;
      const done = this.scan();
      if (done === 'more') {
        if (this.end - this.start > this.maxBytes) this.resync(this.end - this.start, `image over ${this.maxBytes} bytes`);
        break;
      }
      if (done === 'bad') continue;
      images.push(this.buf.slice(this.start, this.pos));
      this.start = this.pos;
      this.inImage = false;
    }
    this.compact();
    return images;
  }

  /** Bytes held for an image not yet complete. */
  get pendingBytes(): number {
    return this.end - this.start;
  }

  private append(chunk: Uint8Array): void {
    if (this.end + chunk.length > this.buf.length) {
      this.compact();
      if (this.end + chunk.length > this.buf.length) {
        const grown = new Uint8Array(Math.max(this.buf.length * 2, this.end + chunk.length));
        grown.set(this.buf.subarray(0, this.end));
        this.buf = grown;
      }
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }

  private compact(): void {
    if (this.start === 0) return;
    this.buf.copyWithin(0, this.start, this.end);
    this.end -= this.start;
    this.pos -= this.start;
    this.start = 0;
  }

  /** Moves `start` to the next start-of-image marker (FF D8 FF). */
  private findStart(): boolean {
    const { buf } = this;
    let i = this.start;
    while (i + 2 < this.end) {
      i = buf.indexOf(0xff, i);
      if (i === -1 || i + 2 >= this.end) break;
      if (buf[i + 1] === 0xd8 && buf[i + 2] === 0xff) {
        if (i > this.start) this.events.onJunk?.(i - this.start, 'bytes between images');
        this.start = i;
        this.pos = i + 2;
        this.inImage = true;
        this.inEntropy = false;
        return true;
      }
      i++;
    }
    // Keep the last two bytes: they may begin a marker.
    const keep = Math.max(this.start, this.end - 2);
    if (keep > this.start) this.events.onJunk?.(keep - this.start, 'bytes between images');
    this.start = keep;
    return false;
  }

  private resync(bytes: number, reason: string): void {
    this.events.onJunk?.(bytes, reason);
    this.start += bytes;
    this.inImage = false;
  }

  /** Walks markers from `pos`. 'done': pos is just past EOI. */
  private scan(): 'done' | 'more' | 'bad' {
    const { buf } = this;
    for (;;) {
      if (this.inEntropy) {
        // Entropy-coded data: FF 00 is a stuffed byte, FF D0-D7 a restart marker; other FF xx end it.
        let i = this.pos;
        for (;;) {
          i = buf.indexOf(0xff, i);
          if (i === -1 || i + 1 >= this.end) {
            this.pos = i === -1 ? this.end : i;
            return 'more';
          }
          const next = buf[i + 1]!;
          if (next === 0x00 || (next >= 0xd0 && next <= 0xd7) || next === 0xff) {
            i += next === 0xff ? 1 : 2;
            continue;
          }
          break;
        }
        this.pos = i;
        this.inEntropy = false;
      }
      if (this.pos + 1 >= this.end) return 'more';
      if (buf[this.pos] !== 0xff) {
        this.resync(this.pos - this.start, 'corrupt image (no marker where one was due)');
        return 'bad';
      }
      const marker = buf[this.pos + 1]!;
      if (marker === 0xff) {
        this.pos++; // fill byte
        continue;
      }
      if (marker === 0xd9) {
        this.pos += 2;
        return 'done';
      }
      if (marker === 0xd8) {
        // A new image began before this one ended: this one was truncated.
        this.resync(this.pos - this.start, 'truncated image');
        return 'bad';
      }
      if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
        this.pos += 2;
        continue;
      }
      if (this.pos + 3 >= this.end) return 'more';
      const length = (buf[this.pos + 2]! << 8) | buf[this.pos + 3]!;
      if (length < 2) {
        this.resync(this.pos - this.start, 'corrupt image (bad segment length)');
        return 'bad';
      }
      if (this.pos + 2 + length > this.end) return 'more';
      this.pos += 2 + length;
      if (marker === 0xda) this.inEntropy = true;
    }
  }
}
