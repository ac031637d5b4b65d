/**
 * Content types of the documents serverpush serves from a folder, by file extension (lower case,
 * without the dot). The original design's five (.html .txt .jpeg .jpg .gif) and what users of
 * today's cameras and dashboards put beside them.
 */
export const DOCUMENT_TYPES: Readonly<Record<string, string>> = Object.freeze({
  html: 'text/html; charset=utf-8',
  htm: 'text/html; charset=utf-8',
  txt: 'text/plain; charset=utf-8',
  jpeg: 'image/jpeg',
  jpg: 'image/jpeg',
  gif: 'image/gif',
  png: 'image/png',
  svg: 'image/svg+xml',
  webp: 'image/webp',
  json: 'application/json',
});

/**
 * The content type for a file name, by its extension (case-insensitive), or `undefined` when the
 * extension is not a served document type. JPEG is always plain `image/jpeg`, with no parameters:
 * ffmpeg's mpjpeg demuxer compares the whole header value.
 */
export function contentTypeForFileName(name: string): string | undefined {
  const dot = name.lastIndexOf('.');
  if (dot <= 0 || dot === name.length - 1) return undefined;
  const extension = name.slice(dot + 1).toLowerCase();
  return Object.hasOwn(DOCUMENT_TYPES, extension) ? DOCUMENT_TYPES[extension] : undefined;
}

/** The response Content-Type of a stream: `multipart/x-mixed-replace; boundary=B`. */
export function multipartContentType(boundary: string): string {
  // Our boundaries never need quoting (no space or tspecials other than those RFC 2046 allows
  // unquoted); quote anyway when one does, as RFC 2045 requires.
  return /^[0-9A-Za-z'+_\-.]+$/.test(boundary)
    ? `multipart/x-mixed-replace; boundary=${boundary}`
    : `multipart/x-mixed-replace; boundary="${boundary}"`;
}

/** True when a part of this content type is an image a browser's `<img>` can draw. */
export function isImageType(contentType: string): boolean {
  return /^image\//i.test(contentType.trimStart());
}
