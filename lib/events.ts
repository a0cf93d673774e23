import type { UpstreamErrorKind } from './upstream-as/errors.js'

/**
 * What went wrong talking to the upstream: an UpstreamError's kind (authorization server: discovery,
 * registration, token calls), or what the MCP proxy saw (no answer, a slow one, a token the upstream
 * refused, a step-up it asked for).
 */
export type UpstreamFailureKind = UpstreamErrorKind | 'proxy_502' | 'proxy_504' | 'upstream_401' | 'upstream_403_scope'

export const UPSTREAM_FAILURE_KINDS: readonly UpstreamFailureKind[] = [
  'unreachable', 'timeout', 'bad_response', 'oauth_error', 'discovery', 'registration',
  'proxy_502', 'proxy_504', 'upstream_401', 'upstream_403_scope'
]

/** Why a grant (a login's whole token family) ended before its time. */
export type GrantRevocationReason =
  /** The client revoked one of its tokens (RFC 7009). */
  | 'client_revoked'
  /** A rotated refresh token came back (RFC 9700 §4.14.2). */
  | 'refresh_reuse'
  /** A used authorization code came back, or was used twice at once (OAuth 2.1 §4.1.3). */
  | 'code_replay'
  /** The upstream refused to refresh its token: the user's upstream login is over. */
  | 'upstream_refused'
  /** The upstream token expired and there is nothing to refresh it with. */
  | 'upstream_expired'
  /** The upstream MCP server refused the grant's token and it could not be refreshed. */
  | 'upstream_rejected'
  /** The person revoked it on their account page (/account). */
  | 'user_revoked'
  /** An operator revoked it (`mcp-oauth-gateway grants revoke`). */
  | 'operator_revoked'

export const GRANT_REVOCATION_REASONS: readonly GrantRevocationReason[] = [
  'client_revoked', 'refresh_reuse', 'code_replay', 'upstream_refused', 'upstream_expired', 'upstream_rejected',
  'user_revoked', 'operator_revoked'
]

export type IssuingGrantType = 'authorization_code' | 'refresh_token'

/**
 * Every event and its payload. Payloads carry ids and enumerations only: never a token, a code, a
 * secret, a password or anything a client sent as free text, so any listener may log or count them.
 */
export interface GatewayEventMap {
  client_registered: { clientId: string, authMethod: string }
  login_failed: { clientId: string }
  login_succeeded: { clientId: string, userId: string }
  /** A sign-in refused before its password was checked: too many failures from the address, or on the user name. */
  login_refused: { clientId: string, reason: 'address' | 'user', retryAfterSeconds: number }
  consent_given: { clientId: string, userId: string, remembered: boolean }
  consent_denied: { clientId: string, userId: string }
  code_issued: { clientId: string, userId: string, upstreamUser?: string }
  tokens_issued: { clientId: string, grantId: string, grantType: IssuingGrantType }
  refresh_reuse_detected: { clientId: string, grantId: string }
  /** A just-rotated refresh token came back within the grace period and got its rotation's answer again. */
  refresh_repeated: { clientId: string, grantId: string }
  code_replay_detected: { clientId: string, grantId: string }
  grant_revoked: { clientId: string, grantId: string, reason: GrantRevocationReason }
  /** Not logged here: every place that emits it logs the failure itself, with its cause, at error. */
  upstream_error: { kind: UpstreamFailureKind }
  /** Telemetry, not logged: the upstream MCP server answered (its response headers arrived). */
  proxy_response: { method: string, seconds: number }
  /** Telemetry, not logged: an SSE response from the upstream started or ended. */
  stream_opened: Record<string, never>
  stream_closed: Record<string, never>
}

export type GatewayEventName = keyof GatewayEventMap

/** The little of a logger the bus needs: pino's (Fastify's `req.log`, `app.log`) fits. */
export interface EventLogger {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  error (obj: object, msg: string): void
}

type Listener<K extends GatewayEventName> = (payload: GatewayEventMap[K]) => void

interface LogLine { level: 'info' | 'warn', message: string | ((payload: never) => string) }

/** One log line per OAuth event; security events at warn. `null`: the event is not logged by the bus. */
const LOG_LINES: { readonly [K in GatewayEventName]: LogLine | null } = {
  client_registered: { level: 'info', message: 'client registered' },
  login_failed: { level: 'info', message: 'login failed' },
  login_succeeded: { level: 'info', message: 'login succeeded' },
  login_refused: { level: 'warn', message: 'login refused' },
  consent_given: { level: 'info', message: 'consent given' },
  consent_denied: { level: 'info', message: 'consent denied' },
  code_issued: { level: 'info', message: 'authorization code issued' },
  tokens_issued: {
    level: 'info',
    message: (p: GatewayEventMap['tokens_issued']) =>
      p.grantType === 'refresh_token' ? 'tokens refreshed' : 'tokens issued'
  },
  refresh_reuse_detected: { level: 'warn', message: 'refresh token reuse detected' },
  refresh_repeated: { level: 'info', message: 'refresh repeated within the grace period: same tokens' },
  code_replay_detected: { level: 'warn', message: 'authorization code replay detected' },
  grant_revoked: { level: 'info', message: 'grant revoked' },
  upstream_error: null,
  proxy_response: null,
  stream_opened: null,
  stream_closed: null
}

const silent: EventLogger = { info () {}, warn () {}, error () {} }

/**
 * The gateway's event bus: the routes and the grant service say what happened, once, and the bus
 * writes the log line (through the request's logger when given, so it carries the request id) and
 * tells the listeners (metrics). Listeners run synchronously and their errors are logged, never
 * thrown into the OAuth flow that emitted the event.
 */
export class GatewayEvents {
  readonly #log: EventLogger
  readonly #listeners = new Map<GatewayEventName, Set<Listener<never>>>()

  /** `log` is used for events emitted without a request logger (and for listener failures). */
  constructor (options: { log?: EventLogger } = {}) {
    this.#log = options.log ?? silent
  }

  /** Subscribes; returns the function that unsubscribes. */
  on<K extends GatewayEventName> (name: K, listener: Listener<K>): () => void {
    let set = this.#listeners.get(name)
    if (set === undefined) {
      set = new Set()
      this.#listeners.set(name, set)
    }
    const added = listener as Listener<never>
    set.add(added)
    return () => { set.delete(added) }
  }

  emit<K extends GatewayEventName> (name: K, payload: GatewayEventMap[K], log: EventLogger = this.#log): void {
    const line = LOG_LINES[name]
    if (line !== null) {
      const message = typeof line.message === 'string' ? line.message : line.message(payload as never)
      log[line.level]({ event: name, ...payload }, message)
    }
    const listeners = this.#listeners.get(name)
    if (listeners === undefined) return
    for (const listener of listeners) {
      try {
        (listener as Listener<K>)(payload)
      } catch (err) {
        this.#log.error(
          { event: name, err: { message: err instanceof Error ? err.message : String(err) } },
          'event listener failed'
        )
      }
    }
  }
}
