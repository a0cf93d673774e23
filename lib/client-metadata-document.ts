import type { ClientMetadata } from './clients.js'
import { checkRedirectUri } from './redirect-uri.js'

/*
 * Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, MCP authorization 2025-11-25):
 * a client's id is an https URL, and the JSON document at that URL is its registration. What is checked here is
 * the URL and the document, before either is trusted; fetching it safely is the fetcher's job.
 */

export type Verdict<T> = { ok: true, value: T } | { ok: false, reason: string }

/** Methods that prove a shared secret: a document anyone can read cannot hold one. */
const SECRET_METHODS = new Set(['client_secret_basic', 'client_secret_post', 'client_secret_jwt'])
const OPTIONAL_TEXT = ['client_name', 'client_uri', 'logo_uri', 'scope', 'tos_uri', 'policy_uri', 'software_id',
  'software_version', 'application_type'] as const

/**
 * True when `clientId` is a Client ID Metadata Document URL (CIMD §3): https, a path other than `/`, no dot
 * segments, no fragment, no user information. A client id that is not one is a registered (RFC 7591) client's.
 */
export function isClientIdUrl (clientId: string): boolean {
  if (!clientId.startsWith('https://') || clientId.includes('#')) return false
  let url: URL
  try {
    url = new URL(clientId)
  } catch {
    return false
  }
  // The raw string must spell its origin as the parser does (lowercase host, no default port, no user
  // information): the id is compared byte for byte, and no second spelling of one URL should pass.
  if (!clientId.startsWith(`${url.origin}/`)) return false
  // Read on the raw string: the URL parser would have resolved the dot segments away already.
  const rawPath = clientId.slice(url.origin.length).split('?', 1)[0] as string
  if (rawPath === '' || rawPath === '/') return false
  return !rawPath.split('/').some((segment) => segment === '.' || segment === '..' ||
    segment.toLowerCase() === '%2e' || segment.toLowerCase() === '%2e%2e')
}

const HOST_PATTERN = /^(?:\*\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*$/

/** An entry of `--cimd-allowed-hosts`, lowercase: a host name, or `*.` and the domain whose hosts it allows. */
export function isHostPattern (pattern: string): boolean {
  return HOST_PATTERN.test(pattern)
}

/** Whether a document at `url` (a client id URL) may be used under the allowed host patterns (none: any host). */
export function hostAllowed (url: string, patterns: readonly string[]): boolean {
  const host = new URL(url).hostname
  return patterns.length === 0 || patterns.some((pattern) =>
    pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) : host === pattern)
}

/**
 * The registration a fetched document makes, or why it makes none (a reason safe to show). The document must
 * name the URL it was fetched from as its `client_id`, byte for byte (CIMD §4.1), list redirect URIs the same
 * rules (and the operator's `redirectUriAllow`) allow as for a registered client, and be a public client: no
 * secret, no secret-based method.
 */
export function clientFromDocument (
  url: string,
  document: unknown,
  redirectUriAllow: readonly string[] = []
): Verdict<ClientMetadata> {
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    return { ok: false, reason: 'the client metadata document is not a JSON object' }
  }
  const doc = document as Record<string, unknown>
  if (doc.client_id !== url) {
    return { ok: false, reason: 'the document\'s client_id is not the URL it was fetched from' }
  }
  if ('client_secret' in doc || 'client_secret_expires_at' in doc) {
    return { ok: false, reason: 'a client metadata document must not contain a client secret' }
  }
  const method = doc.token_endpoint_auth_method ?? 'none'
  if (typeof method !== 'string' || SECRET_METHODS.has(method)) {
    return {
      ok: false,
      reason: 'a client metadata document cannot use a shared secret: use token_endpoint_auth_method none'
    }
  }
  if (method !== 'none') {
    return { ok: false, reason: `token_endpoint_auth_method ${method.slice(0, 40)} is not supported; use none` }
  }
  // MCP names client_name among a document's required fields: the consent page shows it beside the host.
  if (typeof doc.client_name !== 'string' || doc.client_name.trim() === '') {
    return { ok: false, reason: 'client_name is required in a client metadata document' }
  }
  const redirectUris = doc.redirect_uris
  if (!Array.isArray(redirectUris) || redirectUris.length === 0 || !redirectUris.every((u) => typeof u === 'string')) {
    return { ok: false, reason: 'redirect_uris must be a non-empty list of URIs' }
  }
  for (const uri of redirectUris as string[]) {
    const verdict = checkRedirectUri(uri, redirectUriAllow)
    if (!verdict.ok) return { ok: false, reason: verdict.reason }
  }
  const grantTypes = doc.grant_types ?? ['authorization_code']
  if (!Array.isArray(grantTypes) || !grantTypes.includes('authorization_code')) {
    return { ok: false, reason: 'grant_types must include authorization_code' }
  }
  const metadata: ClientMetadata = {
    redirect_uris: [...redirectUris as string[]],
    token_endpoint_auth_method: 'none',
    grant_types: grantTypes.filter((g): g is string => typeof g === 'string'),
    response_types: ['code']
  }
  for (const field of OPTIONAL_TEXT) {
    const value = doc[field]
    if (typeof value === 'string') metadata[field] = value
  }
  return { ok: true, value: metadata }
}

export interface CacheBounds {
  minMs: number
  maxMs: number
}

/**
 * How long a fetched document may be reused: its `Cache-Control: max-age`, kept within the bounds so a burst
 * of sign-ins fetches once (the floor, also for `no-store`, `no-cache` or no header) and a changed document is
 * seen within a day (the ceiling).
 */
export function documentLifetimeMs (cacheControl: string | undefined, { minMs, maxMs }: CacheBounds): number {
  const maxAge = /(?:^|[,\s])max-age\s*=\s*"?(\d{1,10})"?\s*(?:,|$)/i.exec(cacheControl ?? '')?.[1]
  const forbidsReuse = /(?:^|[,\s])(?:no-store|no-cache)\s*(?:,|$)/i.test(cacheControl ?? '')
  if (maxAge === undefined || forbidsReuse) return minMs
  return Math.min(maxMs, Math.max(minMs, Number(maxAge) * 1000))
}
