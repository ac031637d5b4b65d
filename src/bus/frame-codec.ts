/**
 * How a frame travels on the Redis bus: one binary message, the body as it is (no base64, no
 * JSON), published once and written to the stream's latest-frame key with the same bytes.
 *
 * ```
 * offset size
 *   0     1   magic 0x53 ('S')
 *   1     1   version (1)
 *   2     1   content-type length L (1-255)
 *   3     1   reserved (0)
 *   4     8   epoch: random, one per publishing run of a source (a new owner, a restart)
 *  12     4   seq: 1, 2, 3… within the epoch (a jump is a gap: frames lost on the bus)
 *  16     8   timestamp: when the frame was made, ms since the Unix epoch (float64)
 *  24     8   publishedAt: when it was published, ms since the Unix epoch (float64), for lag
 *  32     L   content type (ASCII)
 *  32+L   …   body
 * ```
 * All numbers big-endian. Runtime-neutral apart from `Buffer`-free `DataView` use.
 */
import { ServerPushError } from '../errors.ts';

const MAGIC = 0x53;
const VERSION = 1;
/** Bytes before the content type. */
export const FRAME_HEADER_BYTES = 32;

/** A frame as the bus carries it. */
export interface BusFrame {
  /** 16 hex digits: the publishing run. */
  epoch: string;
  seq: number;
  contentType: string;
  timestamp: number;
  publishedAt: number;
  body: Uint8Array;
}

/** A new random epoch (16 hex digits). */
export function newEpoch(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return [...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** Encodes a frame into one message. Throws `SP_ERR_INVALID_PART` for a content type that cannot travel. */
export function encodeBusFrame(frame: BusFrame): Uint8Array {
  const type = frame.contentType;
  if (type.length === 0 || type.length > 255 || !/^[\x20-\x7e]+$/.test(type)) {
    throw new ServerPushError('SP_ERR_INVALID_PART', `content type ${JSON.stringify(type.slice(0, 80))} cannot be carried on the bus (1-255 printable ASCII characters)`);
  }
  if (!/^[0-9a-f]{16}$/.test(frame.epoch)) throw new ServerPushError('SP_ERR_INVALID_PART', 'bus epoch must be 16 hex digits');
  const message = new Uint8Array(FRAME_HEADER_BYTES + type.length + frame.body.length);
  const view = new DataView(message.buffer);
  message[0] = MAGIC;
  message[1] = VERSION;
  message[2] = type.length;
  for (let i = 0; i < 8; i++) message[4 + i] = parseInt(frame.epoch.slice(i * 2, i * 2 + 2), 16);
  view.setUint32(12, frame.seq >>> 0);
  view.setFloat64(16, frame.timestamp);
  view.setFloat64(24, frame.publishedAt);
  for (let i = 0; i < type.length; i++) message[FRAME_HEADER_BYTES + i] = type.charCodeAt(i);
  message.set(frame.body, FRAME_HEADER_BYTES + type.length);
  return message;
}

/**
 * Decodes a message of the bus; the body is a view of `message` (no copy). Throws
 * `SP_ERR_BUS_BAD_FRAME` for a message that is not a frame of this version.
 */
export function decodeBusFrame(message: Uint8Array): BusFrame {
  if (message.length < FRAME_HEADER_BYTES || message[0] !== MAGIC) throw new ServerPushError('SP_ERR_BUS_BAD_FRAME', `not a serverpush bus frame (${message.length} bytes)`);
  if (message[1] !== VERSION) throw new ServerPushError('SP_ERR_BUS_BAD_FRAME', `bus frame of version ${message[1]}; this serverpush reads version ${VERSION}`);
  const typeLength = message[2]!;
  if (typeLength === 0 || message.length < FRAME_HEADER_BYTES + typeLength + 1) throw new ServerPushError('SP_ERR_BUS_BAD_FRAME', 'truncated bus frame');
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  let epoch = '';
  for (let i = 0; i < 8; i++) epoch += message[4 + i]!.toString(16).padStart(2, '0');
  let contentType = '';
  for (let i = 0; i < typeLength; i++) contentType += String.fromCharCode(message[FRAME_HEADER_BYTES + i]!);
  return {
    epoch,
    seq: view.getUint32(12),
    timestamp: view.getFloat64(16),
    publishedAt: view.getFloat64(24),
    contentType,
    body: message.subarray(FRAME_HEADER_BYTES + typeLength),
  };
}
