/**
 * CORS (Fetch standard, "CORS protocol") as the gateway needs it: which headers a response or a preflight
 * gets, for a policy fixed at start-up. Nothing here knows Fastify; every header value that does not
 * depend on the request is built once.
 */
import { HTTP_TOKEN } from './http-token.js'

export interface CorsPolicy {
  /**
   * `'*'` (any page; the gateway never uses cookies cross-origin, so never with
   * credentials), or the exact origins allowed.
   */
  origins: '*' | readonly string[]
  methods: readonly string[]
  /**
   * Request headers a page may send. `'requested'` allows the names the preflight asks for: the MCP
   * transport has header names no list can hold (`Mcp-Param-*`).
   */
  allowHeaders: readonly string[] | 'requested'
  exposeHeaders: readonly string[]
  maxAgeSeconds: number
}

export type CorsHeaders = Record<string, string>

export interface Cors {
  /**
   * Headers for a response to an actual request from `origin` (undefined: a request without
   * Origin); none to add: undefined.
   */
  actual: (origin: string | undefined) => CorsHeaders | undefined
  /**
   * Headers for the answer to a preflight (an OPTIONS with Access-Control-Request-Method) from `origin`;
   * undefined when it is not a CORS preflight at all (no Origin). A refused origin gets an answer
   * without Access-Control-Allow-Origin, which is how CORS says no.
   */
  preflight: (origin: string | undefined, requestedHeaders: string | undefined) => CorsHeaders | undefined
}

/**
 * The field names of an Access-Control-Request-Headers value, lower-cased; a name that is no
 * RFC 9110 token is not echoed back.
 */
export function requestedHeaderNames (value: string | undefined): string[] {
  if (value === undefined) return []
  return value.split(',').map((name) => name.trim().toLowerCase()).filter((name) => HTTP_TOKEN.test(name))
}

export function compileCors (policy: CorsPolicy): Cors {
  const expose = policy.exposeHeaders.join(', ')
  const preflightCommon: CorsHeaders = {
    'access-control-allow-methods': policy.methods.join(', '),
    'access-control-max-age': String(policy.maxAgeSeconds)
  }
  const allowHeaders = policy.allowHeaders === 'requested'
    ? (requested: string | undefined) => requestedHeaderNames(requested).join(', ')
    : () => (policy.allowHeaders as readonly string[]).join(', ')

  if (policy.origins === '*') {
    // The same headers for every request, Origin or not: a shared cache may hand a response fetched
    // without Origin to a browser page, so it must already carry them (and no Vary is needed).
    const actual: CorsHeaders = { 'access-control-allow-origin': '*', 'access-control-expose-headers': expose }
    return {
      actual: () => actual,
      preflight: (origin, requested) => origin === undefined
        ? undefined
        : {
            'access-control-allow-origin': '*',
            ...preflightCommon,
            'access-control-allow-headers': allowHeaders(requested)
          }
    }
  }

  const allowed = new Set(policy.origins)
  const varyPreflight = policy.allowHeaders === 'requested' ? 'Origin, Access-Control-Request-Headers' : 'Origin'
  return {
    // Without Origin there is nothing to add: list policies are for /mcp, whose answers (POST, DELETE,
    // event streams) no cache keeps.
    actual: (origin): CorsHeaders | undefined => {
      if (origin === undefined) return undefined
      if (!allowed.has(origin)) return { vary: 'Origin' }
      return { 'access-control-allow-origin': origin, 'access-control-expose-headers': expose, vary: 'Origin' }
    },
    preflight: (origin, requested): CorsHeaders | undefined => {
      if (origin === undefined) return undefined
      if (!allowed.has(origin)) return { vary: varyPreflight }
      return {
        'access-control-allow-origin': origin,
        ...preflightCommon,
        'access-control-allow-headers': allowHeaders(requested),
        vary: varyPreflight
      }
    }
  }
}
