import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { isIP, isIPv4 } from 'node:net'
import { parseArgs } from 'node:util'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import addFormats from 'ajv-formats'
import type { Static } from 'typebox'
import { HTTP_TOKEN } from './http-token.js'
import { splitScopeList } from './scopes.js'
import { parseRedisUrl } from './stores/redis-url.js'
import { withoutPathTrailingSlashes } from './url.js'
import {
  DEFAULT_BODY_SIZE, DEFAULT_PASSWORD, DEFAULT_PORT, DEFAULT_STORE, DEFAULT_STORE_PREFIX, DEFAULT_USERNAME, GatewayOptionsSchema,
  LOG_LEVELS, MAX_BODY_SIZE, MAX_LIST, MAX_SECONDS, MAX_TIMEOUT_MS, MAX_TOKEN_CACHE_TTL, MIN_BODY_SIZE, MIN_SECRET_LENGTH, MAX_COUNT,
  SCOPE_TOKEN, ServerSettingsSchema
} from './config-schema.js'

export type GatewayOptions = Static<typeof GatewayOptionsSchema>

export interface ResolvedGatewayOptions {
  publicUrl: string
  upstreamRs: string
  upstreamAs: string | undefined
  upstreamClientId: string | undefined
  upstreamClientSecret: string | undefined
  upstreamAuthorizeEndpoint: string | undefined
  upstreamTokenEndpoint: string | undefined
  upstreamScopes: string[] | undefined
  username: string
  password: string
  mcpScope: string
  /** The first signs and encrypts; all verify and decrypt, so a new secret can be put first and old ones kept. */
  secrets: string[]
  /** True when no secret was configured and a random one was made: nothing issued survives a restart. */
  secretGenerated: boolean
  codeTtl: number
  flowTtl: number
  accessTokenTtl: number
  refreshTokenTtl: number
  clientTtl: number
  refreshGrace: number
  upstreamTimeout: number
  /** Normalised serialized origins (`https://app.example`), deduplicated; the proxy adds the publicUrl's own. */
  allowedOrigins: string[]
  /** Pinned on every proxied request. Names are lowercase RFC 9110 tokens, never one the gateway owns. */
  upstreamHeaders: Record<string, string>
  /** Lowercase names of extra client request headers to forward, deduplicated, never one the gateway owns. */
  forwardHeaders: string[]
  disableGetStream: boolean
  /** Milliseconds /mcp waits for the upstream's response headers; a started stream never times out. */
  proxyTimeout: number
  /** Bytes. */
  maxBodySize: number
  /**
   * `'memory'`, or a Redis URL (`redis://`, `redis-sentinel://`, `redis-cluster://`, each also TLS) exactly as configured. It may carry a password: never log it.
   * Anything but `'memory'` comes with configured secrets (`secretGenerated` is false).
   */
  store: string
  /** Prefix of every key in the store: 1 to 64 of `A-Z a-z 0-9 : _ . -`. */
  storePrefix: string
  /**
   * Milliseconds a replica may keep a validated access token in memory before asking the store again, and so
   * the bound on how late a revocation made on another replica takes effect; 0 = no cache.
   */
  tokenCacheTtl: number
  /** Where Prometheus metrics are served on the gateway's own routes, or false (the default): see ServerSettings.metricsPort. */
  metricsPath: string | false
  /** Seconds a registration that has not completed a sign-in lives; one that has lives `clientTtl` idle. */
  unusedClientTtl: number
  /** Registrations younger than `unusedClientTtl` at once, across replicas; more are refused (503), none evicted. */
  maxUnusedClients: number
  /** Sign-ins in progress at once, across replicas; more are refused (503), none evicted. */
  maxPendingSignIns: number
  /** Requests a minute per address to each sign-in route (/authorize, /login, /consent, /upstream/callback). */
  rateLimitSignIn: number
  rateLimitRegister: number
  /** Requests a minute per address to each of /token and /revoke. */
  rateLimitToken: number
  /** Failed sign-ins per address in 15 minutes before the address is refused. */
  loginFailuresPerAddress: number
  /** Failed sign-ins for one user name in 15 minutes before each further attempt waits (doubling, up to 15 minutes). */
  loginFailuresPerUser: number
  /** Proxied requests and streams open at once in total; also the upstream connection cap. */
  maxStreams: number
  maxStreamsPerGrant: number
}

export interface ServerSettings {
  port: number
  host: string
  /** `true`, `false`, or comma-separated addresses/CIDRs, handed to Fastify's `trustProxy` as is. */
  trustProxy: boolean | string
  logLevel: typeof LOG_LEVELS[number]
  /** Seconds requests in flight get to finish after SIGTERM/SIGINT before what is left is cut. */
  shutdownGrace: number
  /** Milliseconds to receive a whole request, headers and body (Node's `requestTimeout`); responses and streams are not bounded by it. */
  requestTimeout: number
  /** Milliseconds to receive a request's headers. */
  headersTimeout: number
  /** Milliseconds an idle keep-alive connection stays open. */
  keepAliveTimeout: number
  /** Connections open at once; more are refused by the kernel's accept queue, then closed. */
  maxConnections: number
  /** The port of a listener of its own that serves /metrics, or undefined (no such listener). */
  metricsPort: number | undefined
  metricsHost: string
}

/** One bad value or more. The message has one line per bad field and never contains a configured value. */
export class ConfigError extends Error {
  readonly problems: string[]

  constructor (problems: string[]) {
    super(problems.join('\n'))
    this.name = 'ConfigError'
    this.problems = problems
  }
}

type GatewayKey = keyof GatewayOptions
type ServerKey = keyof ServerSettings

interface Setting {
  /** Absent for credentials: a password given as a flag would show in `ps`. */
  flag?: string
  env: string
  /** What a good value looks like: the whole error text, so a bad value is never repeated back. */
  rule: string
  help: string
  defaultText?: string
  integer?: true
  /** A flag without a value (`--x` is true); a string value or variable must be true, false, 1 or 0. */
  boolean?: true
  /** A flag that may be repeated, each time one entry; the variable holds all entries in one string. */
  multiple?: true
  /** A secret: `<env>_FILE` names a file holding it (Docker and Kubernetes secrets), and a flag warns (`ps`). */
  secret?: true
  /** `<url>`, `<n>`…: the placeholder shown in the help. */
  arg: string
}

const URL_RULE = 'must be an http(s) URL without a fragment'
const BOOLEAN_RULE = 'must be true, false, 1 or 0'
const integerRule = (min: number, max: number, unit = 'seconds') => `must be an integer from ${min} to ${max} (${unit})`

const SERVER_SETTINGS: Record<ServerKey, Setting> = {
  port: { flag: 'port', env: 'MCP_GATEWAY_PORT', arg: '<n>', integer: true, rule: 'must be an integer from 0 to 65535', help: 'Port to listen on', defaultText: String(DEFAULT_PORT) },
  host: { flag: 'host', env: 'MCP_GATEWAY_HOST', arg: '<host>', rule: 'must be a host name or IP address', help: 'Address to listen on (0.0.0.0 for all interfaces)', defaultText: 'localhost' },
  trustProxy: { flag: 'trust-proxy', env: 'MCP_GATEWAY_TRUST_PROXY', arg: '<v>', rule: 'must be true, false, or comma-separated IP addresses/CIDR ranges', help: 'Trust X-Forwarded-* from: true (any), or a comma-separated list of addresses/CIDRs', defaultText: 'false' },
  logLevel: { flag: 'log-level', env: 'MCP_GATEWAY_LOG_LEVEL', arg: '<level>', rule: `must be one of ${LOG_LEVELS.join(', ')}`, help: `Log level: ${LOG_LEVELS.join(', ')}`, defaultText: 'info' },
  shutdownGrace: { flag: 'shutdown-grace', env: 'MCP_GATEWAY_SHUTDOWN_GRACE', arg: '<s>', integer: true, rule: integerRule(0, 3600), help: 'Seconds requests in flight get to finish after SIGTERM/SIGINT (keep it below `docker stop -t`)', defaultText: '10' },
  requestTimeout: { flag: 'request-timeout', env: 'MCP_GATEWAY_REQUEST_TIMEOUT', arg: '<ms>', integer: true, rule: integerRule(1000, MAX_TIMEOUT_MS, 'milliseconds'), help: 'Milliseconds a client has to send a whole request, headers and body; responses and event streams are not bounded by it', defaultText: '30000' },
  headersTimeout: { flag: 'headers-timeout', env: 'MCP_GATEWAY_HEADERS_TIMEOUT', arg: '<ms>', integer: true, rule: integerRule(1000, MAX_TIMEOUT_MS, 'milliseconds'), help: 'Milliseconds a client has to send a request\'s headers', defaultText: '10000' },
  keepAliveTimeout: { flag: 'keep-alive-timeout', env: 'MCP_GATEWAY_KEEP_ALIVE_TIMEOUT', arg: '<ms>', integer: true, rule: integerRule(1000, MAX_TIMEOUT_MS, 'milliseconds'), help: 'Milliseconds an idle keep-alive connection stays open (above your load balancer\'s idle timeout)', defaultText: '72000' },
  maxConnections: { flag: 'max-connections', env: 'MCP_GATEWAY_MAX_CONNECTIONS', arg: '<n>', integer: true, rule: integerRule(1, MAX_COUNT, 'connections'), help: 'Client connections open at once; more are closed as they arrive', defaultText: '4096' },
  metricsPort: { flag: 'metrics-port', env: 'MCP_GATEWAY_METRICS_PORT', arg: '<n>', integer: true, rule: 'must be an integer from 0 to 65535', help: 'Serve Prometheus metrics at /metrics on a listener of their own, on this port', defaultText: 'none (no metrics listener)' },
  metricsHost: { flag: 'metrics-host', env: 'MCP_GATEWAY_METRICS_HOST', arg: '<host>', rule: 'must be a host name or IP address', help: 'Address of the metrics listener', defaultText: '127.0.0.1' }
}

const GATEWAY_SETTINGS: Record<GatewayKey, Setting> = {
  publicUrl: { flag: 'public-url', env: 'MCP_GATEWAY_PUBLIC_URL', arg: '<url>', rule: 'must be an http(s) URL without a query or fragment', help: 'URL clients reach the gateway at (issuer and resource)', defaultText: 'http://localhost:<port>' },
  upstreamRs: { flag: 'upstream-rs', env: 'MCP_GATEWAY_UPSTREAM_RS', arg: '<url>', rule: URL_RULE, help: 'Upstream MCP server URL (required)' },
  upstreamAs: { flag: 'upstream-as', env: 'MCP_GATEWAY_UPSTREAM_AS', arg: '<url>', rule: URL_RULE, help: 'Upstream authorization server (discovered when absent)' },
  upstreamClientId: { flag: 'upstream-client-id', env: 'MCP_GATEWAY_UPSTREAM_CLIENT_ID', arg: '<id>', rule: 'must be 1 to 512 characters', help: 'Client id at the upstream AS (skips dynamic registration)' },
  upstreamClientSecret: { flag: 'upstream-client-secret', env: 'MCP_GATEWAY_UPSTREAM_CLIENT_SECRET', arg: '<secret>', secret: true, rule: 'must be 1 to 2048 characters', help: 'Client secret at the upstream AS' },
  upstreamAuthorizeEndpoint: { flag: 'upstream-authorize-endpoint', env: 'MCP_GATEWAY_UPSTREAM_AUTHORIZE_ENDPOINT', arg: '<url>', rule: URL_RULE, help: 'Upstream authorization endpoint (with the token endpoint: skips discovery)' },
  upstreamTokenEndpoint: { flag: 'upstream-token-endpoint', env: 'MCP_GATEWAY_UPSTREAM_TOKEN_ENDPOINT', arg: '<url>', rule: URL_RULE, help: 'Upstream token endpoint (with the authorize endpoint: skips discovery)' },
  upstreamScopes: { flag: 'upstream-scopes', env: 'MCP_GATEWAY_UPSTREAM_SCOPES', arg: '<scopes>', rule: 'must be scope names separated by spaces or commas', help: 'Scopes to request upstream, space- or comma-separated' },
  username: { env: 'MCP_GATEWAY_USERNAME', arg: '', rule: 'must be 1 to 256 characters', help: 'Login user name', defaultText: `${DEFAULT_USERNAME}, loopback hosts only` },
  password: { env: 'MCP_GATEWAY_PASSWORD', arg: '', secret: true, rule: 'must be 1 to 1024 characters', help: 'Login password', defaultText: `${DEFAULT_PASSWORD}, loopback hosts only` },
  mcpScope: { env: 'MCP_GATEWAY_MCP_SCOPE', arg: '', rule: 'must be one scope name (printable ASCII without spaces, quotes or backslashes)', help: 'Scope on every gateway code and token', defaultText: 'mcp' },
  secret: { flag: 'secret', env: 'MCP_GATEWAY_SECRET', arg: '<s1,s2>', secret: true, rule: `must be one or more comma-separated secrets of at least ${MIN_SECRET_LENGTH} characters each`, help: `Secrets (>= ${MIN_SECRET_LENGTH} chars), comma-separated; the first signs and encrypts, all verify (rotation)`, defaultText: 'random, lost on restart; required with a redis --store' },
  codeTtl: { flag: 'code-ttl', env: 'MCP_GATEWAY_CODE_TTL', arg: '<s>', integer: true, rule: integerRule(1, 600), help: 'Authorization code lifetime, seconds', defaultText: '300' },
  flowTtl: { flag: 'flow-ttl', env: 'MCP_GATEWAY_FLOW_TTL', arg: '<s>', integer: true, rule: integerRule(1, MAX_SECONDS), help: 'Login flow lifetime, seconds', defaultText: '600' },
  accessTokenTtl: { flag: 'access-token-ttl', env: 'MCP_GATEWAY_ACCESS_TOKEN_TTL', arg: '<s>', integer: true, rule: integerRule(1, MAX_SECONDS), help: 'Access token lifetime, seconds', defaultText: '3600' },
  refreshTokenTtl: { flag: 'refresh-token-ttl', env: 'MCP_GATEWAY_REFRESH_TOKEN_TTL', arg: '<s>', integer: true, rule: integerRule(1, MAX_SECONDS), help: 'Refresh token lifetime, seconds', defaultText: '2592000' },
  clientTtl: { flag: 'client-ttl', env: 'MCP_GATEWAY_CLIENT_TTL', arg: '<s>', integer: true, rule: integerRule(1, MAX_SECONDS), help: 'Registered clients expire after this idle time, seconds', defaultText: '7776000' },
  refreshGrace: { flag: 'refresh-grace', env: 'MCP_GATEWAY_REFRESH_GRACE', arg: '<s>', integer: true, rule: integerRule(0, MAX_SECONDS), help: 'Seconds a just-rotated refresh token gets the same answer again, for clients that refresh twice at once or retry (0 = off: reuse revokes at once)', defaultText: '30' },
  upstreamTimeout: { flag: 'upstream-timeout', env: 'MCP_GATEWAY_UPSTREAM_TIMEOUT', arg: '<ms>', integer: true, rule: integerRule(1, MAX_TIMEOUT_MS, 'milliseconds'), help: 'Upstream request timeout, milliseconds', defaultText: '10000' },
  allowedOrigins: { flag: 'allowed-origins', env: 'MCP_GATEWAY_ALLOWED_ORIGINS', arg: '<origins>', rule: `must be at most ${MAX_LIST} comma-separated origins, each http(s)://host[:port] without a path, query, fragment or trailing slash`, help: 'Browser origins allowed to call /mcp, comma-separated (e.g. http://localhost:6274); the public URL\'s own origin always is', defaultText: 'none besides the public URL\'s' },
  upstreamHeaders: { flag: 'upstream-header', env: 'MCP_GATEWAY_UPSTREAM_HEADERS', arg: '<header>', multiple: true, rule: `must be at most ${MAX_LIST} "Name: value" headers (one per flag, separated by ; or newlines in the variable): names RFC 9110 tokens, values non-empty visible ASCII with spaces or tabs only inside`, help: 'Header pinned on every proxied request, "Name: value"; repeat the flag for more (flags replace the variable, whose entries are separated by ; or newlines)', defaultText: 'none' },
  forwardHeaders: { flag: 'forward-headers', env: 'MCP_GATEWAY_FORWARD_HEADERS', arg: '<names>', rule: `must be at most ${MAX_LIST} comma-separated header names (RFC 9110 tokens)`, help: 'Extra client request headers forwarded upstream, comma-separated (Content-Type, Accept, Mcp-*, Last-Event-ID always are)', defaultText: 'none' },
  disableGetStream: { flag: 'disable-get-stream', env: 'MCP_GATEWAY_DISABLE_GET_STREAM', arg: '', boolean: true, rule: BOOLEAN_RULE, help: 'Answer GET /mcp with 405 here, for upstreams without a GET stream (GitHub); the variable takes true/false/1/0', defaultText: 'false' },
  proxyTimeout: { flag: 'proxy-timeout', env: 'MCP_GATEWAY_PROXY_TIMEOUT', arg: '<ms>', integer: true, rule: integerRule(1, MAX_TIMEOUT_MS, 'milliseconds'), help: 'How long /mcp waits for the upstream\'s response headers before answering 504, milliseconds (checked about once a second; a started stream never times out)', defaultText: '300000' },
  maxBodySize: { flag: 'max-body-size', env: 'MCP_GATEWAY_MAX_BODY_SIZE', arg: '<bytes>', integer: true, rule: integerRule(MIN_BODY_SIZE, MAX_BODY_SIZE, 'bytes'), help: 'Largest request body /mcp accepts, bytes', defaultText: `${DEFAULT_BODY_SIZE} (16 MiB)` },
  // The rule never quotes the value: a store URL may carry a password.
  store: { flag: 'store', env: 'MCP_GATEWAY_STORE', arg: '<memory|url>', rule: 'must be memory, redis://[[user]:password@]host[:port][/db], redis-sentinel://[[user]:password@]host[:port][,host[:port]…][/db]#master or redis-cluster://[[user]:password@]host[:port][,host[:port]…], or the same as rediss://, rediss-sentinel://, rediss-cluster:// (TLS), with db a non-negative integer and no query (percent-encode reserved characters in the password)', help: 'Where state lives: memory (one instance, lost on restart), or redis://[[user]:password@]host[:port][/db], redis-sentinel://[[user]:password@]host[:port][,host[:port]…][/db]#master, redis-cluster://[[user]:password@]host[:port][,host[:port]…]; rediss://, rediss-sentinel://, rediss-cluster:// for TLS (needs --secret; with a password, prefer the variable: a flag shows in `ps`)', defaultText: DEFAULT_STORE },
  storePrefix: { flag: 'store-prefix', env: 'MCP_GATEWAY_STORE_PREFIX', arg: '<prefix>', rule: 'must be 1 to 64 characters of A-Z, a-z, 0-9, :, _, . and -', help: 'Prefix of every key in the store', defaultText: DEFAULT_STORE_PREFIX },
  metricsPath: { flag: 'metrics-path', env: 'MCP_GATEWAY_METRICS_PATH', arg: '<path|off>', rule: 'must be a path such as /metrics, or off', help: 'Also serve Prometheus metrics on the gateway\'s own port, at this path (public: prefer --metrics-port)', defaultText: 'off' },
  unusedClientTtl: { flag: 'unused-client-ttl', env: 'MCP_GATEWAY_UNUSED_CLIENT_TTL', arg: '<s>', integer: true, rule: integerRule(1, MAX_SECONDS), help: 'A registered client that has not completed a sign-in expires after this, seconds', defaultText: '86400' },
  maxUnusedClients: { flag: 'max-unused-clients', env: 'MCP_GATEWAY_MAX_UNUSED_CLIENTS', arg: '<n>', integer: true, rule: integerRule(1, MAX_COUNT, 'clients'), help: 'Registrations that have not completed a sign-in, at most at once; more are refused with 503, none evicted', defaultText: '10000' },
  maxPendingSignIns: { flag: 'max-pending-sign-ins', env: 'MCP_GATEWAY_MAX_PENDING_SIGN_INS', arg: '<n>', integer: true, rule: integerRule(1, MAX_COUNT, 'sign-ins'), help: 'Sign-ins in progress at once (from /authorize to the upstream callback); more are refused with 503, none evicted', defaultText: '10000' },
  rateLimitSignIn: { flag: 'rate-limit-sign-in', env: 'MCP_GATEWAY_RATE_LIMIT_SIGN_IN', arg: '<n>', integer: true, rule: integerRule(1, MAX_COUNT, 'requests'), help: 'Requests a minute per client address to each of /authorize, /login, /consent and /upstream/callback', defaultText: '60' },
  rateLimitRegister: { flag: 'rate-limit-register', env: 'MCP_GATEWAY_RATE_LIMIT_REGISTER', arg: '<n>', integer: true, rule: integerRule(1, MAX_COUNT, 'requests'), help: 'Registrations a minute per client address', defaultText: '30' },
  rateLimitToken: { flag: 'rate-limit-token', env: 'MCP_GATEWAY_RATE_LIMIT_TOKEN', arg: '<n>', integer: true, rule: integerRule(1, MAX_COUNT, 'requests'), help: 'Requests a minute per client address to each of /token and /revoke', defaultText: '120' },
  loginFailuresPerAddress: { flag: 'login-failures-per-address', env: 'MCP_GATEWAY_LOGIN_FAILURES_PER_ADDRESS', arg: '<n>', integer: true, rule: integerRule(1, MAX_COUNT, 'failures'), help: 'Failed sign-ins per client address in 15 minutes; then that address is refused until the window ends', defaultText: '10' },
  loginFailuresPerUser: { flag: 'login-failures-per-user', env: 'MCP_GATEWAY_LOGIN_FAILURES_PER_USER', arg: '<n>', integer: true, rule: integerRule(1, MAX_COUNT, 'failures'), help: 'Failed sign-ins for one user name in 15 minutes; then each further attempt waits, doubling up to 15 minutes', defaultText: '5' },
  maxStreams: { flag: 'max-streams', env: 'MCP_GATEWAY_MAX_STREAMS', arg: '<n>', integer: true, rule: integerRule(1, MAX_COUNT, 'streams'), help: 'Proxied requests and event streams open at once, in total (also the cap on upstream connections); more get 503', defaultText: '2048' },
  maxStreamsPerGrant: { flag: 'max-streams-per-grant', env: 'MCP_GATEWAY_MAX_STREAMS_PER_GRANT', arg: '<n>', integer: true, rule: integerRule(1, MAX_COUNT, 'streams'), help: 'Proxied requests and event streams open at once for one signed-in client; more get 429', defaultText: '32' },
  tokenCacheTtl: { flag: 'token-cache-ttl', env: 'MCP_GATEWAY_TOKEN_CACHE_TTL', arg: '<ms>', integer: true, rule: integerRule(0, MAX_TOKEN_CACHE_TTL, 'milliseconds'), help: 'How long a validated access token is kept in memory before the store is asked again, milliseconds: the most a revocation on another replica can lag (0 = no cache)', defaultText: '5000' }
}

// What Fastify itself puts into a plugin's options object: not typos, so no warning about them.
const FASTIFY_REGISTER_KEYS = new Set(['prefix', 'logLevel', 'logSerializers'])

/** Bad fields by key (first problem wins), printed in the order of the settings tables. */
class Problems {
  readonly #lines = new Map<string, string>()
  readonly #label: (key: string) => string

  constructor (label: (key: string) => string) {
    this.#label = label
  }

  add (key: string, rule: string): void {
    this.addLine(key, `${this.#label(key)}: ${rule}`)
  }

  /** A problem that is not about one setting (a stray argument): the line is taken as is. */
  addLine (key: string, line: string): void {
    if (!this.#lines.has(key)) this.#lines.set(key, line)
  }

  has (key: string): boolean {
    return this.#lines.has(key)
  }

  get size (): number {
    return this.#lines.size
  }

  list (): string[] {
    const order = [...Object.keys(SERVER_SETTINGS), ...Object.keys(GATEWAY_SETTINGS)]
    // Keys outside the tables (argv problems) rank -1: first, in the order they were found.
    return [...this.#lines].sort(([a], [b]) => order.indexOf(a) - order.indexOf(b)).map(([, line]) => line)
  }
}

const settingOf = (key: string): Setting | undefined =>
  (SERVER_SETTINGS as Record<string, Setting>)[key] ?? (GATEWAY_SETTINGS as Record<string, Setting>)[key]

/** `--port (MCP_GATEWAY_PORT)`, or just the variable for environment-only settings. */
function cliLabel (key: string): string {
  const setting = settingOf(key) as Setting
  return setting.flag === undefined ? setting.env : `--${setting.flag} (${setting.env})`
}

/** A safe integer, or digits with optional surrounding spaces; otherwise `undefined`. */
function parseInteger (raw: unknown): number | undefined {
  const value = typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : raw
  return typeof value === 'number' && Number.isSafeInteger(value) ? value : undefined
}

/** A boolean, or `true`/`false`/`1`/`0` in any case with optional surrounding spaces; otherwise `undefined`. */
function parseBoolean (raw: unknown): boolean | undefined {
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
function numbersAsText (raw: unknown): unknown {
  const text = (item: unknown): unknown => typeof item === 'number' ? String(item) : item
  if (Array.isArray(raw)) return raw.map(text)
  if (typeof raw === 'object' && raw !== null) return Object.fromEntries(Object.entries(raw).map(([name, item]) => [name, text(item)]))
  return text(raw)
}

/**
 * Ajv, the validator Fastify already loads for request schemas: defaults filled in, unknown keys removed, every
 * error reported. It never coerces: `runSchema` converts integers and booleans strictly, and numbers to text, first.
 */
const ajv = new Ajv({ useDefaults: true, removeAdditional: 'all', allErrors: true })
// ajv-formats is CommonJS whose types declare only `.default`; at run time both name the plugin.
addFormats.default(ajv, ['uri'])
const validateGateway = ajv.compile(GatewayOptionsSchema)
const validateServer = ajv.compile(ServerSettingsSchema)

/** Checks `input` with `validate`, collecting one problem per bad field (in `settings`' words, never the value). */
function runSchema (validate: ValidateFunction, settings: Record<string, Setting>, input: Record<string, unknown>, problems: Problems): Record<string, unknown> {
  // `{ upstreamAs: undefined }` means "not set": dropped, so that required fields read as missing, not mistyped.
  const value = Object.fromEntries(Object.entries(input).filter(([, raw]) => raw !== undefined))
  for (const [key, setting] of Object.entries(settings)) {
    const raw = value[key]
    if (raw === undefined) continue
    if (setting.integer !== true && setting.boolean !== true) {
      value[key] = numbersAsText(raw)
      continue
    }
    const converted = setting.boolean === true ? parseBoolean(raw) : parseInteger(raw)
    if (converted === undefined) {
      problems.add(key, setting.rule)
      delete value[key]
    } else {
      value[key] = converted
    }
  }
  if (validate(value)) return value
  for (const error of validate.errors as ErrorObject[]) {
    if (error.keyword === 'required') {
      problems.add(String(error.params.missingProperty), 'is required')
    } else {
      // `/allowedOrigins/3` → `allowedOrigins`: the whole setting is named, whichever part of it is wrong.
      const key = error.instancePath.split('/')[1] as string
      problems.add(key, (settings[key] as Setting).rule)
    }
  }
  return value
}

/**
 * Parses a URL that passed the schema (whose pattern already pins the scheme to http or https); `undefined` if
 * WHATWG URL rejects it (`http://`, a space, an empty host) or it has a part we do not allow.
 */
function httpUrl (value: string, allowQuery: boolean): URL | undefined {
  if (value.includes('#') || (!allowQuery && value.includes('?'))) return undefined
  try {
    return new URL(value)
  } catch {
    return undefined
  }
}

/** 127/8, ::1 and `localhost`: only this machine can connect. */
function isLoopbackHost (host: string): boolean {
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, '$1')
  if (name === 'localhost') return true
  if (isIPv4(name)) return name.startsWith('127.')
  if (isIP(name) === 6) return new URL(`http://[${name}]/`).hostname === '[::1]'
  return false
}

function splitList (value: string, separator: RegExp): string[] {
  return value.split(separator).map((item) => item.trim()).filter((item) => item !== '')
}

const SCOPE_TOKEN_RE = new RegExp(SCOPE_TOKEN)

// Scheme, host and port only: nothing WHATWG URL would read as user info, path (`\` counts as `/`), query or
// fragment, and no whitespace it would silently drop.
const ORIGIN_SHAPE = /^https?:\/\/[^/\\?#@\s]+$/i
// What a browser sends as an Origin host once URL has lowercased and punycoded it: a DNS name or an IP literal.
const ORIGIN_HOST = /^(?:\[[0-9a-f:.]+\]|[a-z0-9_-]+(?:\.[a-z0-9_-]+)*)$/

/** The serialized origin (lowercase scheme and host, default port dropped), or `undefined`. */
function httpOrigin (value: string): string | undefined {
  if (!ORIGIN_SHAPE.test(value)) return undefined
  try {
    const url = new URL(value)
    return ORIGIN_HOST.test(url.hostname) ? url.origin : undefined
  } catch {
    return undefined
  }
}

// A non-empty field value of visible ASCII; spaces and tabs only inside (so no CR, LF or other controls).
const HEADER_VALUE = /^[\x21-\x7E](?:[\t\x20-\x7E]*[\x21-\x7E])?$/
const trimOws = (value: string): string => value.replace(/^[ \t]+|[ \t]+$/g, '')

/** Headers the gateway sets or strips itself: credentials, routing and hop-by-hop framing. */
const GATEWAY_OWNED_HEADERS = new Set(['authorization', 'cookie', 'host', 'content-length', 'transfer-encoding', 'connection',
  'keep-alive', 'upgrade', 'te', 'trailer', 'proxy-authorization', 'proxy-connection'])
const ownedRule = (name: string, verb: string) =>
  `must not ${verb} ${name}: the gateway owns ${[...GATEWAY_OWNED_HEADERS].join(', ')}`

/** Trimmed, non-empty entries of a string list or an array. */
const entriesOf = (raw: unknown, separator: RegExp): string[] =>
  typeof raw === 'string' ? splitList(raw, separator) : (raw as string[]).map((item) => item.trim()).filter((item) => item !== '')

/**
 * `[name, value]` pairs from `{ name: value }`, `"Name: value"` strings, or one string of them separated by `;` or
 * newlines; `undefined` when an entry has no colon.
 */
function headerPairs (raw: unknown): Array<[string, string]> | undefined {
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

const isMemoryStore = (value: string): boolean => value.toLowerCase() === DEFAULT_STORE

interface Resolution {
  options: ResolvedGatewayOptions
  warnings: string[]
}

/** Validates gateway options; adds every problem to `problems` and returns options only when there is none. */
function resolveGateway (input: Record<string, unknown>, problems: Problems, label: (key: string) => string): Resolution | undefined {
  const before = problems.size
  const warnings: string[] = []
  const value = runSchema(validateGateway, GATEWAY_SETTINGS, input, problems)

  const url = (key: GatewayKey, allowQuery: boolean, strip: boolean): string | undefined => {
    const raw = value[key]
    if (typeof raw !== 'string' || problems.has(key)) return undefined
    if (httpUrl(raw, allowQuery) === undefined) {
      problems.add(key, GATEWAY_SETTINGS[key].rule)
      return undefined
    }
    return strip ? withoutPathTrailingSlashes(raw) : raw
  }
  const publicUrl = url('publicUrl', false, true)
  const upstreamRs = url('upstreamRs', true, true)
  // Issuer identifiers and endpoints are compared or called exactly as configured: no slash stripping.
  const upstreamAs = url('upstreamAs', true, false)
  const upstreamAuthorizeEndpoint = url('upstreamAuthorizeEndpoint', true, false)
  const upstreamTokenEndpoint = url('upstreamTokenEndpoint', true, false)

  let upstreamScopes: string[] | undefined
  const scopes = value.upstreamScopes
  if (typeof scopes === 'string' && !problems.has('upstreamScopes')) {
    upstreamScopes = splitScopeList(scopes)
    if (!upstreamScopes.every((scope) => SCOPE_TOKEN_RE.test(scope))) problems.add('upstreamScopes', GATEWAY_SETTINGS.upstreamScopes.rule)
  } else if (Array.isArray(scopes)) {
    upstreamScopes = scopes as string[]
  }
  if (upstreamScopes?.length === 0) upstreamScopes = undefined

  let secrets: string[] = []
  const secret = value.secret
  if (typeof secret === 'string' && !problems.has('secret')) {
    secrets = splitList(secret, /,/)
    if (secrets.length === 0 || secrets.some((s) => s.length < MIN_SECRET_LENGTH)) problems.add('secret', GATEWAY_SETTINGS.secret.rule)
  } else if (Array.isArray(secret)) {
    secrets = secret as string[]
  }

  let allowedOrigins: string[] = []
  if (!problems.has('allowedOrigins')) {
    const origins = entriesOf(value.allowedOrigins, /[\s,]+/).map(httpOrigin)
    if (origins.length > MAX_LIST || origins.includes(undefined)) {
      problems.add('allowedOrigins', GATEWAY_SETTINGS.allowedOrigins.rule)
    } else {
      allowedOrigins = [...new Set(origins as string[])]
    }
  }

  // Header names are case-insensitive: kept lowercase, so that the proxy compares them as they are.
  const upstreamHeaders = new Map<string, string>()
  const pairs = problems.has('upstreamHeaders') ? [] : headerPairs(value.upstreamHeaders)
  if (pairs === undefined || pairs.length > MAX_LIST) {
    problems.add('upstreamHeaders', GATEWAY_SETTINGS.upstreamHeaders.rule)
  } else {
    for (const [name, headerValue] of pairs) {
      const lower = name.toLowerCase()
      // Only names that passed the token check are named back, never a value (a pinned header may be a secret).
      if (!HTTP_TOKEN.test(name) || !HEADER_VALUE.test(headerValue)) {
        problems.add('upstreamHeaders', GATEWAY_SETTINGS.upstreamHeaders.rule)
      } else if (GATEWAY_OWNED_HEADERS.has(lower)) {
        problems.add('upstreamHeaders', ownedRule(lower, 'pin'))
      } else if (upstreamHeaders.has(lower)) {
        problems.add('upstreamHeaders', `must not set ${lower} twice`)
      }
      upstreamHeaders.set(lower, headerValue)
    }
  }

  let forwardHeaders: string[] = []
  if (!problems.has('forwardHeaders')) {
    const names = entriesOf(value.forwardHeaders, /[\s,]+/)
    const owned = names.find((name) => GATEWAY_OWNED_HEADERS.has(name.toLowerCase()))
    if (names.length > MAX_LIST || !names.every((name) => HTTP_TOKEN.test(name))) {
      problems.add('forwardHeaders', GATEWAY_SETTINGS.forwardHeaders.rule)
    } else if (owned !== undefined) {
      problems.add('forwardHeaders', ownedRule(owned.toLowerCase(), 'forward'))
    } else {
      forwardHeaders = [...new Set(names.map((name) => name.toLowerCase()))]
    }
  }

  let store = DEFAULT_STORE
  const storeValue = value.store
  if (typeof storeValue === 'string' && !problems.has('store')) {
    if (isMemoryStore(storeValue)) {
      store = DEFAULT_STORE
    } else if (parseRedisUrl(storeValue) !== undefined) {
      store = storeValue
    } else {
      problems.add('store', GATEWAY_SETTINGS.store.rule)
    }
  }
  // Checked even when the URL is bad: any string but memory means to persist, so both problems are named at once.
  // On the input as given: a number or a boolean the schema turned into a string is just a bad store.
  const givenStore = input.store
  if (typeof givenStore === 'string' && givenStore !== '' && !isMemoryStore(givenStore) && secrets.length === 0) {
    problems.add('secret', `is required with a persistent ${label('store').split(' ')[0] as string} (tokens must survive restarts and work on every replica)`)
  }

  for (const key of Object.keys(input)) {
    if (!(key in GATEWAY_SETTINGS) && !FASTIFY_REGISTER_KEYS.has(key)) warnings.push(`unknown option "${key}" ignored`)
  }
  if (problems.size > before) return undefined

  const secretGenerated = secrets.length === 0
  if (secretGenerated) {
    secrets = [randomBytes(32).toString('base64url')]
    warnings.push(`no ${label('secret')} set: a random secret was generated, so tokens, codes and cookies will not survive a restart (and will not work across instances)`)
  }
  if (upstreamAuthorizeEndpoint !== undefined && upstreamTokenEndpoint !== undefined && upstreamScopes === undefined) {
    warnings.push(`both upstream endpoints are set but ${label('upstreamScopes')} is not: GitHub then grants only public, read-only access`)
  }
  if (value.upstreamClientSecret !== undefined && value.upstreamClientId === undefined) {
    warnings.push(`${label('upstreamClientSecret')} is ignored without ${label('upstreamClientId')}: the gateway registers itself upstream`)
  }
  // Checked above: publicUrl parses, or there was a problem and we returned.
  const publicHost = (httpUrl(publicUrl as string, false) as URL).hostname
  if ((publicUrl as string).toLowerCase().startsWith('http:') && !isLoopbackHost(publicHost)) {
    warnings.push(`${label('publicUrl')} is plain http on a non-loopback host: OAuth 2.1 requires https there (terminate TLS in front of the gateway)`)
  }

  return {
    warnings,
    options: {
      publicUrl: publicUrl as string,
      upstreamRs: upstreamRs as string,
      upstreamAs,
      upstreamClientId: value.upstreamClientId as string | undefined,
      upstreamClientSecret: value.upstreamClientSecret as string | undefined,
      upstreamAuthorizeEndpoint,
      upstreamTokenEndpoint,
      upstreamScopes,
      username: value.username as string,
      password: value.password as string,
      mcpScope: value.mcpScope as string,
      secrets,
      secretGenerated,
      codeTtl: value.codeTtl as number,
      flowTtl: value.flowTtl as number,
      accessTokenTtl: value.accessTokenTtl as number,
      refreshTokenTtl: value.refreshTokenTtl as number,
      clientTtl: value.clientTtl as number,
      refreshGrace: value.refreshGrace as number,
      upstreamTimeout: value.upstreamTimeout as number,
      allowedOrigins,
      // fromEntries defines properties, so even a `__proto__` header name stays a plain key.
      upstreamHeaders: Object.fromEntries(upstreamHeaders),
      forwardHeaders,
      disableGetStream: value.disableGetStream as boolean,
      proxyTimeout: value.proxyTimeout as number,
      maxBodySize: value.maxBodySize as number,
      store,
      storePrefix: value.storePrefix as string,
      tokenCacheTtl: value.tokenCacheTtl as number,
      metricsPath: value.metricsPath === 'off' || value.metricsPath === false ? false : value.metricsPath as string,
      unusedClientTtl: value.unusedClientTtl as number,
      maxUnusedClients: value.maxUnusedClients as number,
      maxPendingSignIns: value.maxPendingSignIns as number,
      rateLimitSignIn: value.rateLimitSignIn as number,
      rateLimitRegister: value.rateLimitRegister as number,
      rateLimitToken: value.rateLimitToken as number,
      loginFailuresPerAddress: value.loginFailuresPerAddress as number,
      loginFailuresPerUser: value.loginFailuresPerUser as number,
      maxStreams: value.maxStreams as number,
      maxStreamsPerGrant: value.maxStreamsPerGrant as number
    }
  }
}

const usesDefaultPassword = (options: ResolvedGatewayOptions): boolean => options.password === DEFAULT_PASSWORD
const isLoopbackUrl = (url: string): boolean => isLoopbackHost(new URL(url).hostname)

/**
 * Validates what an embedding app passes to the gateway plugin. Throws a `ConfigError` naming every bad option.
 * No listening host is known here, so default credentials only warn.
 */
export function parseGatewayOptions (input: unknown): { options: ResolvedGatewayOptions, warnings: string[] } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ConfigError(['gateway options must be an object'])
  }
  const problems = new Problems((key) => key)
  const resolved = resolveGateway(input as Record<string, unknown>, problems, (key) => key)
  if (resolved === undefined) throw new ConfigError(problems.list())
  if (usesDefaultPassword(resolved.options)) {
    if (!isLoopbackUrl(resolved.options.publicUrl)) {
      throw new ConfigError([`password: the published default credentials (${DEFAULT_USERNAME}/${DEFAULT_PASSWORD}) are refused for publicUrl ${new URL(resolved.options.publicUrl).host}, which other machines can reach: set username and password`])
    }
    resolved.warnings.push(`username and password are the published defaults (${DEFAULT_USERNAME}/${DEFAULT_PASSWORD}): fine for a try-out on this machine, never anywhere else; set username and password`)
  }
  return resolved
}

const ALL_SETTINGS: Array<[string, Setting]> = [...Object.entries(SERVER_SETTINGS), ...Object.entries(GATEWAY_SETTINGS)]

const FLAG_OPTIONS: Record<string, { type: 'string' | 'boolean', short?: string, multiple?: boolean }> = Object.fromEntries([
  ['help', { type: 'boolean', short: 'h' }],
  ...ALL_SETTINGS.flatMap(([, s]) => s.flag === undefined
    ? []
    : [[s.flag, s.boolean === true ? { type: 'boolean' } : { type: 'string', multiple: s.multiple === true }]])
])

const PROXY_KEYWORDS = new Set(['loopback', 'linklocal', 'uniquelocal'])

/** An address, a CIDR (`10.0.0.0/8`, `fd00::/8`), an IPv4 netmask form, or a proxy-addr keyword. */
function isProxyAddress (entry: string): boolean {
  if (PROXY_KEYWORDS.has(entry)) return true
  const [address, range, ...rest] = entry.split('/')
  const family = isIP(address as string)
  if (family === 0 || rest.length > 0) return false
  if (range === undefined) return true
  if (family === 4 && isIPv4(range)) return true
  return /^\d{1,3}$/.test(range) && Number(range) <= (family === 4 ? 32 : 128)
}

function parseTrustProxy (raw: string, problems: Problems): boolean | string | undefined {
  const lower = raw.trim().toLowerCase()
  if (lower === 'true') return true
  if (lower === 'false') return false
  const entries = splitList(raw, /,/)
  if (entries.length === 0 || !entries.every(isProxyAddress)) {
    problems.add('trustProxy', SERVER_SETTINGS.trustProxy.rule)
    return undefined
  }
  return entries.join(',')
}

/**
 * Reads flags (first), then `MCP_GATEWAY_*` variables, then defaults. Returns `{ help }` for `--help`/`-h`, and
 * throws one `ConfigError` listing every bad flag or variable.
 */
export function loadConfig (argv: string[], env: Record<string, string | undefined>):
  { help: string } | { server: ServerSettings, gateway: ResolvedGatewayOptions, warnings: string[] } {
  const problems = new Problems(cliLabel)
  // strict: false so that unknown flags are reported by us, together with everything else, and without the
  // value parseArgs would otherwise quote (`--password=…` must not end up in a log).
  const { values, tokens } = parseArgs({ args: argv, options: FLAG_OPTIONS, strict: false, allowPositionals: true, tokens: true })
  if (values.help !== undefined) return { help: helpText() }
  const warnings: string[] = []

  for (const token of tokens) {
    if (token.kind === 'positional') {
      problems.addLine(`argv${token.index}`, `unexpected argument #${token.index + 1} (not shown): every setting is a --flag, see --help`)
    } else if (token.kind === 'option' && !(token.name in FLAG_OPTIONS)) {
      const envOnly = token.name === 'username' || token.name === 'password'
      problems.addLine(`argv${token.index}`, envOnly
        ? `${token.rawName} is not a flag (it would show in \`ps\`): set MCP_GATEWAY_${token.name.toUpperCase()} instead`
        : `${token.rawName} is not a known flag (see --help)`)
    }
  }

  const raw = (key: string, setting: Setting): unknown => {
    const flag = setting.flag === undefined ? undefined : values[setting.flag]
    // Without strict mode, a string flag given no value comes back as `true` (inside the array, if repeatable);
    // a boolean flag is `true` when present, or its string when written `--flag=value`.
    if (setting.boolean !== true && (flag === true || (Array.isArray(flag) && flag.includes(true)))) {
      problems.add(key, 'needs a value')
      return undefined
    }
    if (flag !== undefined) {
      if (setting.secret === true) warnings.push(`${cliLabel(key)} was given as a flag, which every user of this machine can read in \`ps\`: prefer ${setting.env} or ${setting.env}_FILE`)
      return flag
    }
    // An empty variable counts as unset: compose files and shells often pass `VAR=` for "not configured".
    const fromEnv = env[setting.env] === '' ? undefined : env[setting.env]
    const file = setting.secret === true && env[`${setting.env}_FILE`] !== '' ? env[`${setting.env}_FILE`] : undefined
    if (file === undefined) return fromEnv
    if (fromEnv !== undefined) {
      problems.addLine(key, `${setting.env} and ${setting.env}_FILE are both set: set one`)
      return undefined
    }
    return secretFile(key, file, `${setting.env}_FILE`)
  }

  /** A Docker or Kubernetes secret file's content, without the newline editors end it with; never quoted back. */
  const secretFile = (key: string, path: string, name: string): string | undefined => {
    try {
      const content = readFileSync(path, 'utf8').replace(/\r?\n$/, '')
      if (content !== '') return content
      problems.addLine(key, `${name}: the file is empty`)
    } catch (err) {
      problems.addLine(key, `${name}: the file cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    }
    return undefined
  }

  const serverInput: Record<string, unknown> = {}
  for (const [key, setting] of Object.entries(SERVER_SETTINGS)) serverInput[key] = raw(key, setting)
  if (typeof serverInput.trustProxy === 'string') serverInput.trustProxy = parseTrustProxy(serverInput.trustProxy, problems)
  const server = runSchema(validateServer, SERVER_SETTINGS, serverInput, problems) as unknown as ServerSettings

  const gatewayInput: Record<string, unknown> = {}
  for (const [key, setting] of Object.entries(GATEWAY_SETTINGS)) gatewayInput[key] = raw(key, setting)
  const hostOk = !problems.has('host')
  const loopback = hostOk && isLoopbackHost(server.host)
  if (gatewayInput.publicUrl === undefined && !problems.has('publicUrl')) {
    // As in the original: http://localhost:<port>, so its documented upstream callback URL keeps working.
    const port = problems.has('port') ? DEFAULT_PORT : server.port
    gatewayInput.publicUrl = `http://localhost:${port}`
    if (hostOk && !loopback) {
      warnings.push(`${cliLabel('publicUrl')} is not set, so clients are sent to ${gatewayInput.publicUrl as string}; set it unless that is how they reach this gateway`)
    }
  }

  const resolved = resolveGateway(gatewayInput, problems, cliLabel)
  if (resolved !== undefined && usesDefaultPassword(resolved.options) && hostOk) {
    // Behind a TLS proxy the listener is loopback and the public URL is not: either one reachable from elsewhere refuses.
    const publicHost = new URL(resolved.options.publicUrl).hostname
    if (!loopback) {
      problems.add('password', `the published default credentials (${DEFAULT_USERNAME}/${DEFAULT_PASSWORD}) are refused on host ${server.host}, which other machines can reach: set MCP_GATEWAY_USERNAME and MCP_GATEWAY_PASSWORD`)
    } else if (!isLoopbackHost(publicHost)) {
      problems.add('password', `the published default credentials (${DEFAULT_USERNAME}/${DEFAULT_PASSWORD}) are refused with public URL host ${publicHost}, which other machines can reach: set MCP_GATEWAY_USERNAME and MCP_GATEWAY_PASSWORD`)
    } else {
      warnings.push(`MCP_GATEWAY_USERNAME/MCP_GATEWAY_PASSWORD are the published defaults (${DEFAULT_USERNAME}/${DEFAULT_PASSWORD}): fine on ${server.host} for a try-out, never anywhere else`)
    }
  }
  if (resolved === undefined || problems.size > 0) throw new ConfigError(problems.list())
  return { server, gateway: resolved.options, warnings: [...warnings, ...resolved.warnings] }
}

/** Usage text: every flag with its variable and default, then the environment-only settings. */
export function helpText (): string {
  const rows = ALL_SETTINGS.filter(([, s]) => s.flag !== undefined)
    .map(([, s]) => [`--${s.flag as string}${s.arg === '' ? '' : ` ${s.arg}`}`, s.env, s])
  const width = Math.max(...rows.map(([flag]) => (flag as string).length))
  const envWidth = Math.max(...ALL_SETTINGS.map(([, s]) => s.env.length))
  const describe = (s: Setting) => s.help + (s.defaultText === undefined ? '' : ` [default: ${s.defaultText}]`)
  return [
    'Usage: mcp-oauth-gateway --upstream-rs <url> [options]',
    '',
    'An OAuth 2.1 gateway in front of a remote MCP server that has its own OAuth (GitHub first).',
    'Flags win over environment variables, which win over defaults. An empty variable counts as unset.',
    '',
    'Options:',
    ...rows.map(([flag, envName, s]) => `  ${(flag as string).padEnd(width)}  ${(envName as string).padEnd(envWidth)}  ${describe(s as Setting)}`),
    `  ${'-h, --help'.padEnd(width)}  ${''.padEnd(envWidth)}  Show this help`,
    '',
    'Environment only (a password given as a flag would be visible to every user in `ps`):',
    ...ALL_SETTINGS.filter(([, s]) => s.flag === undefined).map(([, s]) => `  ${s.env.padEnd(envWidth)}  ${describe(s)}`),
    '',
    'The default credentials are accepted only when --host and the public URL are loopback; anywhere else the gateway refuses to start.',
    'Secrets (MCP_GATEWAY_SECRET, MCP_GATEWAY_PASSWORD, MCP_GATEWAY_UPSTREAM_CLIENT_SECRET) may instead be read from the file a <VARIABLE>_FILE names.',
    ''
  ].join('\n')
}
