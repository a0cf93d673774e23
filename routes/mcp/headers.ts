import type { IncomingHttpHeaders } from 'node:http'
import { parseScopes } from '../../lib/scopes.js'

/** Client request headers that always go upstream: the MCP transport's own. */
const ALWAYS_FORWARDED = new Set(['content-type', 'accept', 'last-event-id'])

/**
 * Upstream response headers a client gets, and no others: the MCP transport's two (Mcp-Session-Id,
 * Mcp-Protocol-Version) and the content headers. Hop-by-hop headers, Set-Cookie, WWW-Authenticate (mapped to the
 * gateway's own challenges) and every other `Mcp-*` stay here: an upstream that echoes its request headers into
 * a debug header would otherwise hand the client the upstream token.
 */
const RESPONSE_HEADERS = new Set([
  'mcp-session-id',
  'mcp-protocol-version',
  'content-type',
  'content-length',
  'content-encoding',
  'cache-control',
  'retry-after',
  'etag',
  'last-modified',
  'vary'
])

/**
 * The upstream request's headers, built from an allow-list: the MCP transport headers (every `Mcp-*`
 * of any revision: Mcp-Session-Id, Mcp-Protocol-Version, Mcp-Method, Mcp-Name, Mcp-Param-*), the
 * operator's extra names, the operator's pinned values, and the upstream token. The client's
 * Authorization, cookies, Host and hop-by-hop headers never pass: nothing is forwarded by default.
 */
export function upstreamRequestHeaders (
  incoming: IncomingHttpHeaders,
  extra: ReadonlySet<string>,
  pinned: Readonly<Record<string, string>>,
  upstreamToken: string
): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {}
  for (const name in incoming) {
    const value = incoming[name]
    if (value !== undefined && (ALWAYS_FORWARDED.has(name) || name.startsWith('mcp-') || extra.has(name))) {
      headers[name] = value
    }
  }
  Object.assign(headers, pinned)
  headers.authorization = `Bearer ${upstreamToken}`
  return headers
}

/** The client response's headers from the upstream's, by the RESPONSE_HEADERS allow-list. */
export function clientResponseHeaders (
  upstream: IncomingHttpHeaders | Record<string, string | string[] | undefined>
): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {}
  for (const name in upstream) {
    const value = upstream[name]
    if (value !== undefined && RESPONSE_HEADERS.has(name)) headers[name] = value
  }
  return headers
}

/** The scope parameter of an upstream `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"`. */
export function insufficientScope (header: string | string[] | undefined): string[] | undefined {
  const value = Array.isArray(header) ? header.join(', ') : header
  if (value === undefined || !/error="?insufficient_scope"?/i.test(value)) return undefined
  return parseScopes(/scope="([^"]*)"/i.exec(value)?.[1] ?? '')
}
