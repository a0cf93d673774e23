import { StoreFullError, StoreUnavailableError } from '../lib/stores/index.js'

/** What went wrong with a request, as far as its answer goes; every route family words it in its own language. */
export type RequestErrorKind =
  | 'rate_limited'
  | 'body_too_large'
  | 'unsupported_media_type'
  | 'malformed'
  | 'client_error'
  | 'store_unavailable'
  | 'store_full'
  | 'bug'

export interface RequestErrorClass {
  kind: RequestErrorKind
  status: number
  /** Seconds for Retry-After when the gateway sets it (the rate limiter sets its own on the reply). */
  retryAfterSeconds?: number
  /**
   * info: the client's mistake or a limit doing its job; warn: a bound of the gateway was reached;
   * error: the gateway or its store failed, and only a bug (`kind: 'bug'`) is logged with its stack.
   */
  logLevel: 'info' | 'warn' | 'error'
}

/** How long a client is told to wait when the store is down or full: a retry soon is cheap either way. */
export const STORE_RETRY_AFTER_SECONDS = 5

/** How often a failure anyone can cause (a full bound, a document that cannot be fetched) is reported at warn. */
export const WARN_EVERY_MS = 60_000
const warnedAt = new Map<string, number>()

/**
 * The operator must hear of a bound that keeps refusing records, or of client documents that cannot be fetched,
 * but anyone can cause either, and each occurrence would be a warning: one a minute per kind tells the operator,
 * and the rest go to info, so an attacker cannot flood the log at warn.
 */
export function warnOncePerMinute (kind: string, now = Date.now()): 'warn' | 'info' {
  const last = warnedAt.get(kind)
  if (last !== undefined && now - last < WARN_EVERY_MS) return 'info'
  warnedAt.set(kind, now)
  return 'warn'
}

interface ErrorLike { statusCode?: number, code?: string, validation?: unknown }

/**
 * The one mapping from an error thrown on the way to a route's answer to its HTTP status, shared by the
 * JSON (RFC 6749) and HTML error handlers so that a client mistake is a 4xx wherever it is made. Fastify's
 * parser and validation errors carry their status; anything that carries none is the gateway's bug.
 */
export function classifyRequestError (err: unknown): RequestErrorClass {
  if (err instanceof StoreUnavailableError) {
    return { kind: 'store_unavailable', status: 503, retryAfterSeconds: STORE_RETRY_AFTER_SECONDS, logLevel: 'error' }
  }
  if (err instanceof StoreFullError) {
    return {
      kind: 'store_full',
      status: 503,
      retryAfterSeconds: STORE_RETRY_AFTER_SECONDS,
      logLevel: warnOncePerMinute(err.kind)
    }
  }
  const e = (typeof err === 'object' && err !== null ? err : {}) as ErrorLike
  if (e.validation !== undefined) return { kind: 'malformed', status: 400, logLevel: 'info' }
  const status = e.statusCode
  if (status === undefined || status < 400 || status >= 500) return { kind: 'bug', status: 500, logLevel: 'error' }
  if (status === 429) return { kind: 'rate_limited', status, logLevel: 'info' }
  if (status === 413) return { kind: 'body_too_large', status, logLevel: 'info' }
  if (status === 415) return { kind: 'unsupported_media_type', status, logLevel: 'info' }
  if (status === 400) return { kind: 'malformed', status, logLevel: 'info' }
  return { kind: 'client_error', status, logLevel: 'info' }
}
