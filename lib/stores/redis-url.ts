import type { ClusterOptions, RedisOptions } from 'ioredis'

/** Where a Redis store connects, as ioredis takes it. Type-only import: parsing a URL never loads ioredis. */
export type RedisTarget =
  | { mode: 'standalone', url: string }
  | { mode: 'sentinel', options: RedisOptions }
  | {
    mode: 'cluster',
    nodes: Array<{ host: string, port: number }>,
    redisOptions: NonNullable<ClusterOptions['redisOptions']>
  }

// Redis's `databases` setting is a C int.
const MAX_REDIS_DB = 2_147_483_647
// Visible ASCII only: WHATWG URL would silently drop tabs and newlines, and trim spaces.
const VISIBLE = /^[\x21-\x7E]+$/
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)$/
// A Sentinel's master names are words of its configuration file; the gateway asks for no more than these.
const MASTER_NAME = /^[A-Za-z0-9._-]{1,128}$/
const MULTI_HOST = /^(rediss?)-(sentinel|cluster):\/\/([^?#]+)(?:#([^?#]*))?$/i

/**
 * The Redis a store URL names, or undefined for anything else:
 * - `redis://[[user]:password@]host[:port][/db]`, `rediss://…` (TLS): one server, handed to ioredis as written;
 * - `redis-sentinel://[[user]:password@]host1[:port1][,host2[:port2]…][/db]#master`, `rediss-sentinel://…`:
 *   the Sentinels (port 26379 by default) that name the master; the credentials are the master's;
 * - `redis-cluster://[[user]:password@]host1[:port1][,host2[:port2]…]`, `rediss-cluster://…`: startup nodes of a
 *   Redis Cluster (port 6379 by default), which has no database but 0.
 * The multi-host forms are Lettuce's. User info needs a password, and reserved characters in it percent-encoded.
 */
export function parseRedisUrl (value: string): RedisTarget | undefined {
  if (!VISIBLE.test(value)) return undefined
  if (/^rediss?:\/\//i.test(value)) return isSingleRedisUrl(value) ? { mode: 'standalone', url: value } : undefined
  const match = MULTI_HOST.exec(value)
  if (match === null) return undefined
  const [, scheme, mode, rest, fragment] = match as unknown as [string, string, string, string, string | undefined]
  const tls = scheme.toLowerCase() === 'rediss'
  const slash = rest.indexOf('/')
  const authority = slash === -1 ? rest : rest.slice(0, slash)
  const path = slash === -1 ? '' : rest.slice(slash)
  const at = authority.lastIndexOf('@')
  const credentials = at === -1 ? {} : userInfo(authority.slice(0, at))
  if (credentials === undefined) return undefined
  const isSentinel = mode.toLowerCase() === 'sentinel'
  const nodes = hostList(authority.slice(at + 1), isSentinel ? 26379 : 6379)
  if (nodes === undefined) return undefined

  if (isSentinel) {
    const db = path === '' || path === '/' ? 0 : /^\/(\d+)$/.test(path) ? Number(path.slice(1)) : NaN
    if (!(db <= MAX_REDIS_DB) || fragment === undefined || !MASTER_NAME.test(fragment)) return undefined
    return {
      mode: 'sentinel',
      // TLS to the Sentinels and, once they named it, to the master.
      options: {
        sentinels: nodes,
        name: fragment,
        db,
        ...credentials,
        ...(tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {})
      }
    }
  }
  if ((path !== '' && path !== '/') || fragment !== undefined) return undefined
  return { mode: 'cluster', nodes, redisOptions: { ...credentials, ...(tls ? { tls: {} } : {}) } }
}

/**
 * A `redis://` or `rediss://` URL as ioredis reads it (WHATWG URL, user info percent-decoded): a host, a port
 * other than 0 if any, at most a database number as the path, user info only with a password, no query or fragment.
 */
function isSingleRedisUrl (value: string): boolean {
  if (value.includes('?') || value.includes('#')) return false
  let url: URL
  try {
    url = new URL(value)
    // ioredis decodes these with decodeURIComponent, which throws on a stray `%`.
    decodeURIComponent(url.username)
    decodeURIComponent(url.password)
  } catch {
    return false
  }
  const db = /^\/(\d+)$/.exec(url.pathname)
  const pathOk = url.pathname === '' || url.pathname === '/' || (db !== null && Number(db[1]) <= MAX_REDIS_DB)
  const authOk = !value.includes('@') || url.password !== ''
  return HOST.test(url.hostname) && url.port !== '0' && pathOk && authOk
}

/** `[user]:password`, percent-decoded; undefined without a password or with a stray `%`. */
function userInfo (raw: string): { username?: string, password: string } | undefined {
  const colon = raw.indexOf(':')
  if (colon === -1) return undefined
  try {
    const username = decodeURIComponent(raw.slice(0, colon))
    const password = decodeURIComponent(raw.slice(colon + 1))
    if (password === '') return undefined
    return username === '' ? { password } : { username, password }
  } catch {
    return undefined
  }
}

/** `host[:port]` entries separated by commas, IPv6 hosts in brackets; undefined if any entry is not one. */
function hostList (raw: string, defaultPort: number): Array<{ host: string, port: number }> | undefined {
  const nodes: Array<{ host: string, port: number }> = []
  for (const entry of raw.split(',')) {
    const parts = /^(\[[^\]]*\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(entry)
    if (parts === null || !HOST.test(parts[1] as string)) return undefined
    const port = parts[2] === undefined ? defaultPort : Number(parts[2])
    if (port < 1 || port > 65535) return undefined
    nodes.push({ host: (parts[1] as string).replace(/^\[(.*)\]$/, '$1'), port })
  }
  return nodes
}
