/** `serverpush/protocol`: the wire format alone — boundaries, content types, the encoder and the parser. Runtime-neutral. */
export { createBoundary, isValidBoundary, assertValidBoundary } from './boundary.ts';
export { contentTypeForFileName, multipartContentType, multipartBoundary, isImageType } from './content-type.ts';
export { encodePartHeaders, formatTimestamp, MultipartFraming, type PartHeaders } from './encoder.ts';
export { MultipartParser, DEFAULT_LIMITS, type MultipartLimits } from './parser.ts';
export type { MultipartPart } from './part.ts';
export { readParts, type ByteSource, type ReadPartsOptions } from './read-parts.ts';
export { JpegSplitter, type JpegSplitterEvents } from './jpeg-splitter.ts';
export { imageCompleteness, imageProblem } from './image-check.ts';
