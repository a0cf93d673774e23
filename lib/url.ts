/**
 * URL spelling rules the gateway applies in several places: trailing slashes and origins. A path with and
 * without a trailing slash names the same mount, issuer or prefix here, so every comparison drops them alike.
 */

/** `text` without any trailing slashes (`/gw//` → `/gw`, `/` → ``): for a path, prefix or query-less URL. */
export function withoutTrailingSlashes (text: string): string {
  return text.replace(/\/+$/, '')
}

/** A URL string with its path's trailing slashes removed and its query kept: `https://x/mcp/?a=1` → `https://x/mcp?a=1`. */
export function withoutPathTrailingSlashes (url: string): string {
  const query = url.indexOf('?')
  return query === -1 ? withoutTrailingSlashes(url) : withoutTrailingSlashes(url.slice(0, query)) + url.slice(query)
}

/** The serialized origin of an absolute URL (scheme, host, port): what logs and CORS may show of it. */
export function originOf (url: string): string {
  return new URL(url).origin
}
