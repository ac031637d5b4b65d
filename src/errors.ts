/**
 * Every error serverpush raises or logs carries a stable `code`. Match on the code, not on the
 * message: messages may be reworded, codes are part of the public API (README, "Error codes").
 */
export type ServerPushErrorCode =
  | 'SP_ERR_INVALID_OPTION'
  | 'SP_ERR_DIR_NOT_FOUND'
  | 'SP_ERR_NOT_A_DIRECTORY'
  | 'SP_ERR_ADDRESS_IN_USE'
  | 'SP_ERR_LISTEN'
  | 'SP_ERR_EMPTY_DOCUMENT'
  | 'SP_ERR_UNREADABLE'
  | 'SP_ERR_VANISHED'
  | 'SP_ERR_NOT_A_FILE'
  | 'SP_ERR_OUTSIDE_ROOT'
  | 'SP_ERR_PART_TOO_LARGE'
  | 'SP_ERR_BOUNDARY_IN_BODY'
  | 'SP_ERR_INVALID_BOUNDARY'
  | 'SP_ERR_NO_DOCUMENTS'
  | 'SP_ERR_SLOW_CLIENT'
  | 'SP_ERR_NOT_FOUND'
  | 'SP_ERR_METHOD_NOT_ALLOWED'
  | 'SP_ERR_BAD_REQUEST'
  | 'SP_ERR_HEADERS_TOO_LARGE'
  | 'SP_ERR_NO_DELIMITER'
  | 'SP_ERR_INCOMPLETE_PART'
  | 'SP_ERR_NOT_MULTIPART'
  | 'SP_ERR_NO_BOUNDARY'
  | 'SP_ERR_HTTP_STATUS'
  | 'SP_ERR_CONNECTION'
  | 'SP_ERR_TIMEOUT'
  | 'SP_ERR_INVALID_FRAME'
  | 'SP_ERR_NO_FRAME'
  | 'SP_ERR_SOURCE_DOWN'
  | 'SP_ERR_SOURCE_FAILED'
  | 'SP_ERR_UNKNOWN_STREAM'
  | 'SP_ERR_CONFIG'
  | 'SP_ERR_INVALID_PART'
  | 'SP_ERR_SHUTTING_DOWN'
  | 'SP_ERR_INTERNAL'
  | 'SP_ERR_AUTH_FAILED'
  | 'SP_ERR_CANNOT_WRITE'
  | 'SP_ERR_UNKNOWN_TYPE'
  | 'SP_ERR_TOO_MANY_VIEWERS'
  | 'SP_ERR_TOO_MANY_FROM_CLIENT'
  | 'SP_ERR_UNAUTHORIZED'
  | 'SP_ERR_FORBIDDEN'
  | 'SP_ERR_TOKEN_EXPIRED'
  | 'SP_ERR_TOO_MANY_FAILURES'
  | 'SP_ERR_AUTH_BUSY'
  | 'SP_ERR_SOURCE_STALLED'
  | 'SP_ERR_STALE_FRAME'
  | 'SP_ERR_TLS'
  | 'SP_ERR_UNPROTECTED'

  | 'SP_ERR_BUS_DOWN'
  | 'SP_ERR_BUS_FRAME_TOO_LARGE'
  | 'SP_ERR_BUS_BAD_FRAME'
  | 'SP_ERR_LEASE_LOST';

/** Base class of every error serverpush throws. */
export class ServerPushError extends Error {
  readonly code: ServerPushErrorCode;

  constructor(code: ServerPushErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ServerPushError';
    this.code = code;
  }
}

/** A size limit was exceeded; `limit` is the value in force (bytes), as set by the named option. */
export class LimitExceededError extends ServerPushError {
  readonly limit: number;

  constructor(code: ServerPushErrorCode, message: string, limit: number) {
    super(code, message);
    this.name = 'LimitExceededError';
    this.limit = limit;
  }
}

/** True when `error` is a {@link ServerPushError}, optionally with the given code. */
export function isServerPushError(error: unknown, code?: ServerPushErrorCode): error is ServerPushError {
  return error instanceof ServerPushError && (code === undefined || error.code === code);
}
