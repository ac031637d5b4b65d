import { ServerPushError } from '../errors.ts';

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

/** A parsed `Content-Type` value. */
export interface MediaType {
  /** `type/subtype` in lower case, e.g. `multipart/x-mixed-replace`. */
  type: string;
  /** Parameters by lower-case name, values unquoted. The first of a repeated name wins. */
  parameters: Record<string, string>;
}

/**
 * Parses a `Content-Type` value leniently, as cameras write it: parameters with or without spaces
 * around `;` and `=`, quoted (RFC 9110 quoted-string, backslash escapes) or not, names in any case.
 * Returns `undefined` when there is no `type/subtype`.
 */
export function parseMediaType(value: string): MediaType | undefined {
  const semicolon = value.indexOf(';');
  const type = (semicolon === -1 ? value : value.slice(0, semicolon)).trim().toLowerCase();
  if (!/^[^\s/;]+\/[^\s/;]+$/.test(type)) return undefined;
  const parameters: Record<string, string> = {};
  let i = semicolon === -1 ? value.length : semicolon + 1;
  while (i < value.length) {
    const nameEnd = /[=;]/.exec(value.slice(i));
    const end = nameEnd === null ? value.length : i + nameEnd.index;
    const name = value.slice(i, end).trim().toLowerCase();
    if (end === value.length || value[end] === ';') {
      i = end + 1;
      continue;
    }
    i = end + 1;
    while (value[i] === ' ' || value[i] === '\t') i++;
    let parameter = '';
    if (value[i] === '"') {
      for (i++; i < value.length && value[i] !== '"'; i++) parameter += value[i] === '\\' && i + 1 < value.length ? value[++i] : value[i];
      const next = value.indexOf(';', i);
      i = next === -1 ? value.length : next + 1;
    } else {
      const next = value.indexOf(';', i);
      parameter = value.slice(i, next === -1 ? value.length : next).trim();
      i = next === -1 ? value.length : next + 1;
    }
    if (name !== '' && !Object.hasOwn(parameters, name)) Object.defineProperty(parameters, name, { value: parameter, enumerable: true, writable: true, configurable: true });
  }
  return { type, parameters };
}

/**
 * The boundary of a multipart `Content-Type` (any `multipart/*`), as declared: quoted or not, with
 * a leading `--` if the server put one there (the parser copes with both). Throws
 * `SP_ERR_NOT_MULTIPART` when the type is missing or not multipart, `SP_ERR_NO_BOUNDARY` when the
 * boundary parameter is missing or empty.
 */
export function multipartBoundary(contentType: string | null | undefined): string {
  const media = contentType === null || contentType === undefined ? undefined : parseMediaType(contentType);
  if (media === undefined || !media.type.startsWith('multipart/')) {
    throw new ServerPushError('SP_ERR_NOT_MULTIPART', `not a multipart response: Content-Type is ${contentType ? JSON.stringify(contentType) : 'missing'}`);
  }
  const boundary = media.parameters['boundary'];
  if (boundary === undefined || boundary === '') {
    throw new ServerPushError('SP_ERR_NO_BOUNDARY', `multipart Content-Type without a boundary parameter: ${JSON.stringify(contentType)}`);
  }
  return boundary;
}

const EXTENSIONS: Readonly<Record<string, string>> = Object.freeze({
  'image/jpeg': 'jpg', 'image/jpg': 'jpg', 'image/pjpeg': 'jpg', 'image/png': 'png', 'image/gif': 'gif',
  'image/webp': 'webp', 'image/avif': 'avif', 'image/bmp': 'bmp', 'image/svg+xml': 'svg',
  'text/html': 'html', 'text/plain': 'txt', 'text/css': 'css', 'text/csv': 'csv',
  'application/json': 'json', 'application/xml': 'xml', 'text/xml': 'xml',
});

/** A file extension (without the dot) for a part's Content-Type; `bin` when unknown or missing. */
export function fileExtensionForType(contentType: string | undefined): string {
  const type = contentType === undefined ? undefined : parseMediaType(contentType)?.type;
  return type !== undefined && Object.hasOwn(EXTENSIONS, type) ? EXTENSIONS[type]! : 'bin';
}
