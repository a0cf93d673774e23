import { invalidTarget } from './oauth-errors.js'

/**
 * RFC 8707 resource indicators, one policy for /authorize, /token and the proxy. The gateway's resource
 * is its `/mcp` URL; every sub-path of it (GitHub's `/mcp/x/repos` toolset views) is a resource too, and
 * the one a client asks for is the one its tokens are bound to. Clients vary in how they spell it: an
 * uppercase scheme or host, a default port, one trailing slash, nothing at all (older clients). All of
 * those mean the same resource; anything outside `/mcp` is `invalid_target`.
 */

/**
 * A path a resource may have: segments of RFC 3986 pchar (percent-encoding included), none empty, none
 * a dot segment, no encoded `/` or `\`. Checked on the value as sent, before URL parsing resolves dots
 * or turns backslashes into slashes, so nothing the upstream might resolve can step out of `/mcp`.
 */
const SEGMENT = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%(?!2f|5c)[0-9A-Fa-f]{2})+$/i

/** `.` or `..`, percent-encoded or not: what a server may resolve into a step up the path. */
export function isDotSegment (segment: string): boolean {
  const decoded = segment.replace(/%2e/gi, '.')
  return decoded === '.' || decoded === '..'
}

/**
 * The canonical spelling of a resource URL (lowercase scheme and host, no default port, no trailing
 * slash), or undefined when it can never name a resource of this gateway: not absolute http(s), with
 * a query, fragment or user info, or with a path that could be read as another one.
 */
export function normaliseResource (value: string): string | undefined {
  // The raw path: between the authority and the end (query and fragment are refused below).
  const raw = /^[a-z][a-z0-9+.-]*:\/\/[^/?#\\]*([^?#]*)/i.exec(value)
  if (raw === null) return undefined
  let path = raw[1] as string
  if (path.endsWith('/')) path = path.slice(0, -1)
  const segmentsOk = (p: string) =>
    p.slice(1).split('/').every((segment) => SEGMENT.test(segment) && !isDotSegment(segment))
  if (path !== '' && (!path.startsWith('/') || !segmentsOk(path))) return undefined
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return undefined
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined
  if (value.includes('?') || value.includes('#') || url.username !== '' || url.password !== '') return undefined
  return url.origin + url.pathname.replace(/\/$/, '')
}

/** Whether `resource` (canonical) is `base` (canonical) or a path below it: a token for `base` covers it. */
export function isWithinResource (resource: string, base: string): boolean {
  return resource === base || resource.startsWith(base + '/')
}

/**
 * /authorize: the resource the grant is bound to. Omitted, it is the gateway's own (RFC 8707 lets the
 * AS pick a default); otherwise every value must be the gateway's resource or below it, and all must
 * name the same one, since a grant has one audience.
 */
export function resolveResource (requested: string | readonly string[] | undefined, gatewayResource: string): string {
  // The gateway's own resource is built from a validated publicUrl: it always normalises.
  const base = normaliseResource(gatewayResource) ?? gatewayResource
  const values = requested === undefined ? [] : typeof requested === 'string' ? [requested] : requested
  let bound: string | undefined
  for (const value of values) {
    const resource = normaliseResource(value)
    if (resource === undefined || !isWithinResource(resource, base)) {
      throw invalidTarget(`unknown resource ${JSON.stringify(value.slice(0, 200))}`)
    }
    if (bound !== undefined && bound !== resource) throw invalidTarget('several different resources in one request')
    bound = resource
  }
  return bound ?? base
}

/**
 * /token, both grants: a `resource` sent again must name the resource the code or grant is bound to
 * (spelled any way `normaliseResource` accepts); omitted, the bound one applies.
 */
export function checkBoundResource (requested: string | readonly string[] | undefined, bound: string): void {
  if (requested === undefined) return
  // Bound at /authorize, so already canonical; normalised again for records written before this policy.
  const canonical = normaliseResource(bound) ?? bound
  for (const value of typeof requested === 'string' ? [requested] : requested) {
    if (normaliseResource(value) !== canonical) throw invalidTarget('resource differs from the one granted')
  }
}
