// mjpeg-consumer ships no types: a Transform stream that emits one Buffer per JPEG frame.
declare module 'mjpeg-consumer' {
  import { Transform } from 'node:stream';
  export default class MjpegConsumer extends Transform {}
}
