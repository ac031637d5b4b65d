export { createBoundary, isValidBoundary, assertValidBoundary } from './boundary.ts';
export { contentTypeForFileName, multipartContentType, isImageType, DOCUMENT_TYPES } from './content-type.ts';
export { encodePartHeaders, formatTimestamp, MultipartFraming, type PartHeaders } from './encoder.ts';
export { indexOfBytes, utf8 } from './bytes.ts';
