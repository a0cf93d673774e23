import { invalidTarget } from './oauth-errors.js'

/**
 * RFC 8707 resource indicators. The gateway protects one resource, its `/mcp` URL (sub-paths such as
 * GitHub's `/mcp/x/repos` included). Clients vary in how they spell it: Claude Code once sent a
 * trailing slash, some send an uppercase host, older clients send nothing. All of those mean the
 * gateway; anything else is `invalid_target`. Tokens are always bound to the canonical URL.
 */
export function resolveResource (requested: string | readonly string[] | undefined, canonical: string): string {
  const values = requested === undefined ? [] : typeof requested === 'string' ? [requested] : requested
  for (const value of values) {
    if (!isGatewayResource(value, canonical)) throw invalidTarget(`unknown resource ${JSON.stringify(value.slice(0, 200))}`)
  }
  return canonical
}

function isGatewayResource (value: string, canonical: string): boolean {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return false
  }
  if (url.hash !== '' || url.search !== '' || url.username !== '' || url.password !== '') return false
  const base = new URL(canonical)
  if (url.origin !== base.origin) return false
  const path = url.pathname.replace(/\/+$/, '')
  return path === base.pathname || path.startsWith(base.pathname + '/')
}
