/**
 * Value parsers the schemas cannot express: integers and booleans from text, URLs, origins, header lists and the
 * proxy addresses of `trustProxy`. Each returns `undefined` for a bad value and never quotes it. (Redis URLs:
 * lib/stores/redis-url.ts.)
 */
import { isIP, isIPv4 } from 'node:net'

/** A safe integer, or digits with optional surrounding spaces; otherwise `undefined`. */
export function parseInteger (raw: unknown): number | undefined {
  const value = typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : raw
  return typeof value === 'number' && Number.isSafeInteger(value) ? value : undefined
}

/** A boolean, or `true`/`false`/`1`/`0` in any case with optional surrounding spaces; otherwise `undefined`. */
export function parseBoolean (raw: unknown): boolean | undefined {
  if (typeof raw === 'boolean') return raw
  const text = typeof raw === 'string' ? raw.trim().toLowerCase() : undefined
  if (text === 'true' || text === '1') return true
  if (text === 'false' || text === '0') return false
  return undefined
}

/**
 * A number where text is expected is taken as its text (`upstreamClientId: 12345`, `{ 'X-Number': 42 }`), in the
 * value itself or in its entries. Arrays and records are copied, so validation never changes the caller's objects.
 */
export function numbersAsText (raw: unknown): unknown {
  const text = (item: unknown): unknown => typeof item === 'number' ? String(item) : item
  if (Array.isArray(raw)) return raw.map(text)
  if (typeof raw === 'object' && raw !== null) {
    return Object.fromEntries(Object.entries(raw).map(([name, item]) => [name, text(item)]))
  }
  return text(raw)
}

/**
 * Parses a URL that passed the schema (whose pattern already pins the scheme to http or https); `undefined` if
 * WHATWG URL rejects it (`http://`, a space, an empty host) or it has a part we do not allow.
 */
export function httpUrl (value: string, allowQuery: boolean): URL | undefined {
  if (value.includes('#') || (!allowQuery && value.includes('?'))) return undefined
  try {
    return new URL(value)
  } catch {
    return undefined
  }
}

/**
 * 127/8, ::1 and `localhost`: only this machine can connect (for default credentials and plain http). Redirect URIs
 * have their own, narrower rule on the raw string: isLoopbackRedirectUri, lib/redirect-uri.ts.
 */
export function isLoopbackHost (host: string): boolean {
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, '$1')
  if (name === 'localhost') return true
  if (isIPv4(name)) return name.startsWith('127.')
  if (isIP(name) === 6) return new URL(`http://[${name}]/`).hostname === '[::1]'
  return false
}

export function splitList (value: string, separator: RegExp): string[] {
  return value.split(separator).map((item) => item.trim()).filter((item) => item !== '')
}

// Scheme, host and port only: nothing WHATWG URL would read as user info, path (`\` counts as `/`), query or
// fragment, and no whitespace it would silently drop.
const ORIGIN_SHAPE = /^https?:\/\/[^/\\?#@\s]+$/i
// What a browser sends as an Origin host once URL has lowercased and punycoded it: a DNS name or an IP literal.
const ORIGIN_HOST = /^(?:\[[0-9a-f:.]+\]|[a-z0-9_-]+(?:\.[a-z0-9_-]+)*)$/

/** The serialized origin (lowercase scheme and host, default port dropped), or `undefined`. */
export function httpOrigin (value: string): string | undefined {
  if (!ORIGIN_SHAPE.test(value)) return undefined
  try {
    const url = new URL(value)
    return ORIGIN_HOST.test(url.hostname) ? url.origin : undefined
  } catch {
    return undefined
  }
}

// A non-empty field value of visible ASCII; spaces and tabs only inside (so no CR, LF or other controls).
export const HEADER_VALUE = /^[\x21-\x7E](?:[\t\x20-\x7E]*[\x21-\x7E])?$/
export const trimOws = (value: string): string => value.replace(/^[ \t]+|[ \t]+$/g, '')

/** Headers the gateway sets or strips itself: credentials, routing and hop-by-hop framing. */
export const GATEWAY_OWNED_HEADERS = new Set(['authorization', 'cookie', 'host', 'content-length', 'transfer-encoding',
  'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'proxy-authorization', 'proxy-connection'])
export const ownedRule = (name: string, verb: string) =>
  `must not ${verb} ${name}: the gateway owns ${[...GATEWAY_OWNED_HEADERS].join(', ')}`

/** Trimmed, non-empty entries of a string list or an array. */
export const entriesOf = (raw: unknown, separator: RegExp): string[] =>
  typeof raw === 'string'
    ? splitList(raw, separator)
    : (raw as string[]).map((item) => item.trim()).filter((item) => item !== '')

/**
 * `[name, value]` pairs from `{ name: value }`, `"Name: value"` strings, or one string of them separated by `;` or
 * newlines; `undefined` when an entry has no colon.
 */
export function headerPairs (raw: unknown): Array<[string, string]> | undefined {
  if (typeof raw === 'object' && !Array.isArray(raw)) {
    return Object.entries(raw as Record<string, string>).map(([name, value]) => [trimOws(name), trimOws(value)])
  }
  const pairs: Array<[string, string]> = []
  for (const entry of entriesOf(raw, /[;\r\n]+/)) {
    const colon = entry.indexOf(':')
    if (colon === -1) return undefined
    pairs.push([trimOws(entry.slice(0, colon)), trimOws(entry.slice(colon + 1))])
  }
  return pairs
}

const PROXY_KEYWORDS = new Set(['loopback', 'linklocal', 'uniquelocal'])

/** An address, a CIDR (`10.0.0.0/8`, `fd00::/8`), an IPv4 netmask form, or a proxy-addr keyword. */
export function isProxyAddress (entry: string): boolean {
  if (PROXY_KEYWORDS.has(entry)) return true
  const [address, range, ...rest] = entry.split('/')
  const family = isIP(address as string)
  if (family === 0 || rest.length > 0) return false
  if (range === undefined) return true
  if (family === 4 && isIPv4(range)) return true
  return /^\d{1,3}$/.test(range) && Number(range) <= (family === 4 ? 32 : 128)
}

/**
 * `true`, `false`, or comma-separated proxy addresses joined as Fastify's `trustProxy` takes them; `undefined` if bad.
 */
export function parseTrustProxy (raw: string): boolean | string | undefined {
  const lower = raw.trim().toLowerCase()
  if (lower === 'true') return true
  if (lower === 'false') return false
  const entries = splitList(raw, /,/)
  return entries.length === 0 || !entries.every(isProxyAddress) ? undefined : entries.join(',')
}
