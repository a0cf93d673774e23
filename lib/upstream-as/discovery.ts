import { parseScopes } from '../scopes.js'
import { withoutTrailingSlashes } from '../url.js'
import { UpstreamError } from './errors.js'
import { describe, describeUrl, headerValue, isHttpUrl, parseJsonObject, send } from './http.js'
import type { HttpLimits, JsonObject } from './http.js'

/**
 * Where the upstream authorization server's endpoints are: configured, or found from the MCP server
 * (RFC 9728 protected resource metadata) and the AS's own metadata (RFC 8414, OIDC Discovery).
 */

export interface UpstreamEndpoints {
  issuer?: string
  authorizationEndpoint: string
  tokenEndpoint: string
  registrationEndpoint?: string
  revocationEndpoint?: string
  scopesSupported?: string[]
}

export interface DiscoverySettings extends HttpLimits {
  /** The upstream MCP server, asked for its authorization server when no issuer is configured. */
  resourceUrl: string
  issuerUrl?: string | undefined
  /** Discovery is skipped only when both are given; one alone overrides the discovered value. */
  authorizeEndpoint?: string | undefined
  tokenEndpoint?: string | undefined
}

export interface Discovered {
  endpoints: UpstreamEndpoints
  /** The resource's own scopes_supported, when its metadata lists them. */
  resourceScopes?: string[]
}

// fetch-based MCP clients follow redirects on discovery; undici's request() does not, so do it by hand.
const MAX_REDIRECTS = 3

export async function discoverEndpoints (s: DiscoverySettings): Promise<Discovered> {
  if (s.authorizeEndpoint !== undefined && s.tokenEndpoint !== undefined) {
    const endpoints: UpstreamEndpoints = {
      authorizationEndpoint: configuredUrl(s.authorizeEndpoint, 'upstream authorize endpoint'),
      tokenEndpoint: configuredUrl(s.tokenEndpoint, 'upstream token endpoint')
    }
    if (s.issuerUrl !== undefined) endpoints.issuer = s.issuerUrl
    return { endpoints }
  }

  let issuer = s.issuerUrl
  let resourceScopes: string[] | undefined
  if (issuer === undefined) {
    ({ issuer, resourceScopes } = await findIssuer(s))
  }
  const metadata = await authorizationServerMetadata(issuer, s)
  if (s.authorizeEndpoint !== undefined) {
    metadata.authorizationEndpoint = configuredUrl(s.authorizeEndpoint, 'upstream authorize endpoint')
  }
  if (s.tokenEndpoint !== undefined) metadata.tokenEndpoint = configuredUrl(s.tokenEndpoint, 'upstream token endpoint')
  return resourceScopes === undefined ? { endpoints: metadata } : { endpoints: metadata, resourceScopes }
}

/** RFC 9728: the 401 challenge's resource_metadata first, then the path-inserted and root well-knowns. */
async function findIssuer (s: DiscoverySettings): Promise<{ issuer: string, resourceScopes?: string[] }> {
  const resource = configuredUrl(s.resourceUrl, 'upstream resource URL')
  const resourceUrl = new URL(resource)
  const tried: string[] = []
  const candidates: string[] = []

  // Headers only: a resource server that needs no auth may answer GET with an endless SSE stream.
  const probe = await send(resource, {
    method: 'GET',
    headers: { accept: 'application/json, text/event-stream' },
    readBody: false
  }, 'upstream MCP server', s)
  // Read whatever the status: some servers challenge with 403 or 400 as well.
  const pointer = resourceMetadataFrom(probe.headers['www-authenticate'])
  const noPointer = pointer === undefined ? ', no resource_metadata' : ''
  tried.push(`${describeUrl(resourceUrl)} (HTTP ${probe.status}${noPointer})`)
  if (pointer !== undefined) candidates.push(pointer)
  candidates.push(...wellKnownUrls(resourceUrl, 'oauth-protected-resource', false))

  for (const url of new Set(candidates)) {
    const doc = await getJson(url, tried, s)
    if (doc === undefined) continue
    // The document's `resource` is deliberately not compared with ours: GitHub's differs by a
    // trailing slash, and its enterprise host points at the api.githubcopilot.com metadata.
    const servers = doc['authorization_servers']
    const first: unknown = Array.isArray(servers) ? servers[0] : undefined
    if (typeof first !== 'string' || !isHttpUrl(first)) {
      tried.push(`${describe(url)} (no authorization_servers)`)
      continue
    }
    const scopes = doc['scopes_supported']
    return Array.isArray(scopes) ? { issuer: first, resourceScopes: parseScopes(scopes) } : { issuer: first }
  }
  throw new UpstreamError('discovery',
    `could not find the authorization server of ${describeUrl(resourceUrl)}; tried ${tried.join(', ')}. ` +
    'Pass --upstream-as, or both upstream endpoints')
}

/** RFC 8414 and OIDC Discovery, in the order the MCP spec gives. */
async function authorizationServerMetadata (issuer: string, limits: HttpLimits): Promise<UpstreamEndpoints> {
  const issuerUrl = new URL(configuredUrl(issuer, 'upstream issuer'))
  const tried: string[] = []
  for (const url of wellKnownUrls(issuerUrl, 'oauth-authorization-server', true)) {
    const doc = await getJson(url, tried, limits)
    if (doc === undefined) continue
    const authorizationEndpoint = httpUrlField(doc, 'authorization_endpoint')
    const tokenEndpoint = httpUrlField(doc, 'token_endpoint')
    if (authorizationEndpoint === undefined || tokenEndpoint === undefined) {
      tried.push(`${describe(url)} (no authorization_endpoint or token_endpoint)`)
      continue
    }
    const named = doc['issuer']
    // RFC 8414 §3.3: metadata naming another issuer is discarded (mix-up defence).
    if (typeof named === 'string' && withoutTrailingSlashes(named) !== withoutTrailingSlashes(issuer)) {
      tried.push(`${describe(url)} (names issuer ${describe(named)})`)
      continue
    }
    const endpoints: UpstreamEndpoints = {
      issuer: typeof named === 'string' ? named : issuer,
      authorizationEndpoint,
      tokenEndpoint
    }
    const registrationEndpoint = httpUrlField(doc, 'registration_endpoint')
    if (registrationEndpoint !== undefined) endpoints.registrationEndpoint = registrationEndpoint
    const revocationEndpoint = httpUrlField(doc, 'revocation_endpoint')
    if (revocationEndpoint !== undefined) endpoints.revocationEndpoint = revocationEndpoint
    if (Array.isArray(doc['scopes_supported'])) endpoints.scopesSupported = parseScopes(doc['scopes_supported'])
    return endpoints
  }
  throw new UpstreamError('discovery',
    `no authorization server metadata for issuer ${describeUrl(issuerUrl)}; tried ${tried.join(', ')}. ` +
    'Pass both upstream endpoints to skip discovery')
}

/** GETs a JSON object, following a few redirects. Undefined (with the reason in `tried`) when there is none. */
async function getJson (url: string, tried: string[], limits: HttpLimits): Promise<JsonObject | undefined> {
  let current = url
  for (let hops = 0; hops <= MAX_REDIRECTS; hops++) {
    const reply = await send(current, { method: 'GET', headers: { accept: 'application/json' } },
      'upstream metadata', limits)
    const location = headerValue(reply.headers['location'])
    if (reply.status >= 300 && reply.status < 400 && location !== undefined) {
      const next = URL.canParse(location, current) ? new URL(location, current).href : undefined
      if (next === undefined || !isHttpUrl(next)) {
        tried.push(`${describe(url)} (bad redirect)`)
        return undefined
      }
      current = next
      continue
    }
    if (reply.status < 200 || reply.status > 299) {
      tried.push(`${describe(url)} (HTTP ${reply.status})`)
      return undefined
    }
    // Parsed whatever the content-type: GitHub has sent `application/json, application/json`.
    const doc = parseJsonObject(reply.body)
    if (doc === undefined) tried.push(`${describe(url)} (not a JSON object)`)
    return doc
  }
  tried.push(`${describe(url)} (too many redirects)`)
  return undefined
}

/**
 * RFC 9728 §3.1 / RFC 8414 §3.1 path insertion, then the fallbacks. For an AS with a path the MCP
 * order adds OIDC's path-appended form, which is the only one OIDC Discovery itself defines.
 */
function wellKnownUrls (base: URL, suffix: string, authorizationServer: boolean): string[] {
  // A trailing slash would give `…/mcp/` variants some servers do not serve (MCP SDK behaviour).
  const path = withoutTrailingSlashes(base.pathname)
  const origin = base.origin
  if (!authorizationServer) {
    const root = `${origin}/.well-known/${suffix}`
    return path === '' ? [root] : [root + path, root]
  }
  if (path === '') return [`${origin}/.well-known/${suffix}`, `${origin}/.well-known/openid-configuration`]
  return [
    `${origin}/.well-known/${suffix}${path}`,
    `${origin}/.well-known/openid-configuration${path}`,
    `${origin}${path}/.well-known/openid-configuration`
  ]
}

/** The resource_metadata auth-param of a Bearer challenge (quoted or token form). */
function resourceMetadataFrom (header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header.join(', ') : header
  const match = value === undefined
    ? null
    : /(?:^|[\s,])resource_metadata\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/i.exec(value)
  if (match === null) return undefined
  const url = match[1] === undefined ? match[2] : match[1].replace(/\\(.)/g, '$1')
  return url !== undefined && isHttpUrl(url) ? url : undefined
}

function configuredUrl (value: string, what: string): string {
  if (!isHttpUrl(value)) throw new UpstreamError('discovery', `${what} is not an http(s) URL`)
  return value
}

function httpUrlField (doc: JsonObject, field: string): string | undefined {
  const value = doc[field]
  return typeof value === 'string' && isHttpUrl(value) ? value : undefined
}
