/** The scheme and authority of an absolute-form request target (RFC 9112 §3.2.2), which a server must accept. */
const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i

/**
 * What follows `mountPath` in a request target: `''` for the mount itself, `/x/y` or `?q` below it, or undefined
 * when the target's path is neither. Read from the path alone: an absolute-form target (`https://x/mcp`) loses
 * its scheme and authority first, which cutting `mountPath.length` characters off the raw target did not do.
 */
export function belowMount (target: string, mountPath: string): string | undefined {
  let start = 0
  if (target.charCodeAt(0) !== 0x2f) {
    const authority = ABSOLUTE_FORM.exec(target)
    if (authority === null) return undefined
    start = authority[0].length
  }
  if (!target.startsWith(mountPath, start)) return undefined
  const end = start + mountPath.length
  // `/mcpx` is another resource: the mount ends at a '/', a '?' or the end of the target.
  if (end !== target.length && target.charCodeAt(end) !== 0x2f && target.charCodeAt(end) !== 0x3f) return undefined
  return target.slice(end)
}

/** What follows the mount, split at the first '?': the sub-path (`''` or starting with '/') and the query. */
export interface SubTarget { path: string, query: string }

/**
 * The request target below `mountPath` (see belowMount), split into sub-path and query; undefined outside the
 * mount.
 */
export function subTarget (target: string, mountPath: string): SubTarget | undefined {
  const below = belowMount(target, mountPath)
  if (below === undefined) return undefined
  const mark = below.indexOf('?')
  return mark === -1 ? { path: below, query: '' } : { path: below.slice(0, mark), query: below.slice(mark + 1) }
}

/** RFC 3986 pchar and '/', '%' left out: it passes only as the start of a percent-encoded octet. */
const PATH_CHARS = /[A-Za-z0-9\-._~!$&'()*+,;=:@/]/
const SAFE_PATH = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*$/
const OCTET = /^%[0-9A-Fa-f]{2}/

const percent = (byte: number): string => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`

/**
 * A request path fit to quote in a header parameter (the challenge's resource_metadata): every character outside
 * RFC 3986 pchar and '/' is percent-encoded (`"`, `\`, controls, non-ASCII, and a `%` that starts no octet), so
 * nothing in the path can end the quoted string or add a parameter. A path spelled as RFC 3986 wants comes out
 * unchanged, and still names the resource the client asked about.
 */
export function quotablePath (path: string): string {
  if (SAFE_PATH.test(path)) return path
  let out = ''
  for (let i = 0; i < path.length; i++) {
    const char = path[i] as string
    const code = path.charCodeAt(i)
    if (code === 0x25 && OCTET.test(path.slice(i, i + 3))) out += char
    else if (PATH_CHARS.test(char)) out += char
    // Node's parser hands the target's bytes over as latin1 characters, one per byte: each is that byte.
    else if (code < 0x100) out += percent(code)
    else for (const byte of Buffer.from(char, 'utf8')) out += percent(byte)
  }
  return out
}
