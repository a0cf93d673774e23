/**
 * Redirect URI policy: what a client may register (RFC 7591 + OAuth 2.1 §2.3.1) and whether an
 * authorization request's redirect_uri is one it registered (exact match, OAuth 2.1 §4.1.1, with the
 * one exception RFC 8252 §7.3 allows: any port on a loopback host).
 *
 * Matching works on the raw strings, never on parsed-and-reserialised URLs, so no encoding, case or
 * dot-segment variant of a registered URI can be made to match it.
 */

/** Schemes that can run code or reach the wrong thing when a browser is sent there. */
const FORBIDDEN_SCHEMES = new Set([
  'javascript', 'data', 'vbscript', 'file', 'blob', 'about', 'ftp', 'ws', 'wss', 'filesystem'
])
/** scheme://loopback-host[:port]rest, with the port optional so a port-less registration matches any port. */
const LOOPBACK_URI = /^http:\/\/(127\.0\.0\.1|\[::1\]|localhost)(?::(\d{1,5}))?([/?][^#]*)?$/
const SCHEME = /^([a-z][a-z0-9+.-]*):/
const LOOPBACK_PATTERN = 'loopback'
/**
 * RFC 3986 §2: what may appear in a URI. Anything else (spaces, controls, raw non-ASCII) would reach a Location header.
 */
const URI_CHARACTERS = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]+$/

export type RedirectUriVerdict = { ok: true } | { ok: false, reason: string }

/**
 * Decides whether a client may register `uri`, under the operator's `allow` patterns (none: no restriction).
 * The reason is safe to return to the client.
 */
export function checkRedirectUri (uri: string, allow: readonly string[] = []): RedirectUriVerdict {
  const verdict = checkUri(uri)
  if (!verdict.ok || allow.length === 0 || allow.some((pattern) => matchesPattern(uri, pattern))) return verdict
  return { ok: false, reason: 'this gateway accepts only the redirect URIs its operator allows, and this is not one' }
}

/**
 * An entry of `--redirect-uri-allow`: `loopback` (RFC 8252 loopback URIs, any port), an exact URI, or a URI ending
 * in `*`, which allows every URI it begins. An http(s) prefix must reach past the host (`https://claude.ai/*`), so
 * that `https://claude.ai*` cannot allow `https://claude.ai.evil.example`.
 */
export function isRedirectUriPattern (pattern: string): boolean {
  if (pattern === LOOPBACK_PATTERN) return true
  const uri = pattern.endsWith('*') ? pattern.slice(0, -1) : pattern
  if (uri.includes('*') || !checkUri(uri).ok) return false
  return !pattern.endsWith('*') || !/^https?:/.test(uri) || /^https?:\/\/[^/?]*[/?]/.test(uri)
}

function matchesPattern (uri: string, pattern: string): boolean {
  if (pattern === LOOPBACK_PATTERN) return isLoopbackRedirectUri(uri)
  return pattern.endsWith('*') ? uri.startsWith(pattern.slice(0, -1)) : uri === pattern
}

function checkUri (uri: string): RedirectUriVerdict {
  const scheme = SCHEME.exec(uri)?.[1]
  if (scheme === undefined) return { ok: false, reason: 'redirect URIs must be absolute, with a lowercase scheme' }
  if (!URI_CHARACTERS.test(uri)) {
    return { ok: false, reason: 'redirect URIs may contain only URI characters (RFC 3986): percent-encode the rest' }
  }
  if (uri.includes('#')) return { ok: false, reason: 'redirect URIs must not contain a fragment' }
  if (FORBIDDEN_SCHEMES.has(scheme)) return { ok: false, reason: `the ${scheme}: scheme is not allowed` }
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    return { ok: false, reason: 'redirect URIs must be valid URLs' }
  }
  if (url.username !== '' || url.password !== '') {
    return { ok: false, reason: 'redirect URIs must not contain user information' }
  }
  if (scheme === 'https') {
    return url.hostname === '' ? { ok: false, reason: 'https redirect URIs need a host' } : { ok: true }
  }
  if (scheme === 'http') {
    return isLoopbackRedirectUri(uri)
      ? { ok: true }
      : {
          ok: false,
          reason: 'http redirect URIs are allowed only on loopback (127.0.0.1, [::1], localhost); use https'
        }
  }
  // A private-use scheme (cursor://, vscode://, com.example.app:/) for a native client, RFC 8252 §7.1.
  return { ok: true }
}

/**
 * An http redirect URI on this machine, spelled exactly 127.0.0.1, [::1] or localhost (RFC 8252 §7.3, §8.3):
 * on the raw string, like every redirect URI rule here. The host check of the configuration (isLoopbackHost,
 * lib/config/parsers.ts) is wider on purpose (all of 127/8, any spelling of ::1): it guards a listener, not a match.
 */
export function isLoopbackRedirectUri (uri: string): boolean {
  const match = LOOPBACK_URI.exec(uri)
  return match !== null && validPort(match[2])
}

/**
 * The registered URI that `requested` is, or undefined. Exact string match, except that a loopback
 * http URI matches a registered one that differs only by its port (RFC 8252 §7.3: native clients
 * listen on whatever port is free; VS Code, Claude Code and Cursor all rely on this).
 */
export function matchRedirectUri (registered: readonly string[], requested: string): string | undefined {
  if (registered.includes(requested)) return requested
  const asked = LOOPBACK_URI.exec(requested)
  if (asked === null || !validPort(asked[2])) return undefined
  return registered.find((candidate) => {
    const known = LOOPBACK_URI.exec(candidate)
    return known !== null && known[1] === asked[1] && (known[3] ?? '') === (asked[3] ?? '')
  })
}

/** What the consent page shows as "where the result goes": the host, or the scheme for a native app. */
export function redirectHost (uri: string): string {
  try {
    const url = new URL(uri)
    return url.host !== '' ? url.host : url.protocol.replace(/:$/, '')
  } catch {
    return uri
  }
}

function validPort (port: string | undefined): boolean {
  if (port === undefined) return true
  const n = Number(port)
  return n >= 1 && n <= 65535
}
