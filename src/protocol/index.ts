export { createBoundary, isValidBoundary, assertValidBoundary } from './boundary.ts';
export { contentTypeForFileName, multipartContentType, isImageType, DOCUMENT_TYPES, parseMediaType, multipartBoundary, fileExtensionForType, type MediaType } from './content-type.ts';
export { encodePartHeaders, formatTimestamp, MultipartFraming, type PartHeaders } from './encoder.ts';
export { indexOfBytes, utf8, createSearch, type ByteSearch } from './bytes.ts';
export { MultipartParser, DEFAULT_LIMITS, type MultipartLimits } from './parser.ts';
export { ReceivedPart, type MultipartPart } from './part.ts';
export { parseHeaderBlock, contentLengthOf, type PartHeaderFields } from './headers.ts';
export { readParts, type ByteSource, type ReadPartsOptions } from './read-parts.ts';
