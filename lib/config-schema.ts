/**
 * What valid gateway options and server settings look like, as TypeBox schemas, with the limits and defaults they
 * use. Only plain data is exported: the build (scripts/freeze-schemas.mjs) turns this module into the JSON it
 * evaluates to, so the running gateway never loads TypeBox. `lib/config.ts` reads flags and variables, checks them
 * against these schemas and resolves what the schemas cannot say.
 */
import { Type } from 'typebox'

export const DEFAULT_USERNAME = 'gateway_user'
export const DEFAULT_PASSWORD = 'gateway_pass'
export const DEFAULT_PORT = 8002
export const MIN_SECRET_LENGTH = 32

// Largest TTL in seconds: 2^31 - 1 keeps `ttl * 1000` a safe integer and still allows 68 years.
export const MAX_SECONDS = 2_147_483_647
// Node's timers treat delays above 2^31 - 1 ms as 1 ms, so a larger upstream timeout would fire at once.
export const MAX_TIMEOUT_MS = 2_147_483_647
export const MIN_BODY_SIZE = 1024
export const MAX_BODY_SIZE = 1_073_741_824
export const DEFAULT_BODY_SIZE = 16_777_216
export const DEFAULT_STORE = 'memory'
export const DEFAULT_STORE_PREFIX = 'mcp-gateway:'
export const MAX_TOKEN_CACHE_TTL = 60_000
// Caps on state and concurrency: large enough for any team, small enough that a flood cannot exhaust memory.
export const MAX_COUNT = 10_000_000
// Most origins, pinned headers or forwarded header names one setting takes.
export const MAX_LIST = 64

// RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`.
export const SCOPE_TOKEN = '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$'

const HttpUrl = (description: string) =>
  Type.String({ format: 'uri', pattern: '^[hH][tT][tT][pP][sS]?://', maxLength: 2048, description })

const Integer = (fallback: number, description: string, minimum = 1, maximum = MAX_SECONDS) =>
  Type.Optional(Type.Integer({ minimum, maximum, default: fallback, description }))

/** A comma-separated string or an array; split, normalised and checked entry by entry in `resolveGateway`. */
const List = (description: string) => Type.Optional(Type.Union([
  Type.String({ maxLength: 16_384 }),
  Type.Array(Type.String({ maxLength: 2048 }), { maxItems: MAX_LIST })
], { default: [], description }))

/**
 * The options of the gateway plugin, camelCase. The standalone server builds the same object from flags and
 * environment variables, so both ways in go through one validation (`parseGatewayOptions`).
 */
export const GatewayOptionsSchema = Type.Object({
  publicUrl: HttpUrl('The URL clients reach the gateway at (issuer and resource); no query or fragment'),
  upstreamRs: HttpUrl('The upstream MCP server (resource server) URL'),
  upstreamAs: Type.Optional(HttpUrl('The upstream authorization server; discovered from upstreamRs when absent')),
  upstreamClientId: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  upstreamClientSecret: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
  upstreamAuthorizeEndpoint: Type.Optional(HttpUrl('Upstream authorization endpoint (discovery is skipped when both endpoints are set)')),
  upstreamTokenEndpoint: Type.Optional(HttpUrl('Upstream token endpoint (discovery is skipped when both endpoints are set)')),
  upstreamScopes: Type.Optional(Type.Union([
    Type.String({ maxLength: 2048 }),
    Type.Array(Type.String({ pattern: SCOPE_TOKEN, maxLength: 256 }), { maxItems: 64 })
  ], { description: 'Scopes requested upstream: a space- or comma-separated string, or an array' })),
  username: Type.Optional(Type.String({ minLength: 1, maxLength: 256, default: DEFAULT_USERNAME })),
  password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, default: DEFAULT_PASSWORD })),
  mcpScope: Type.Optional(Type.String({ pattern: SCOPE_TOKEN, maxLength: 256, default: 'mcp' })),
  secret: Type.Optional(Type.Union([
    Type.String({ minLength: MIN_SECRET_LENGTH }),
    Type.Array(Type.String({ minLength: MIN_SECRET_LENGTH }), { minItems: 1 })
  ], { description: 'Comma-separated secrets (or an array): the first signs and encrypts, all verify and decrypt' })),
  codeTtl: Integer(300, 'Authorization code lifetime, seconds', 1, 600),
  flowTtl: Integer(600, 'Lifetime of a login/consent flow, seconds'),
  accessTokenTtl: Integer(3600, 'Access token lifetime, seconds'),
  refreshTokenTtl: Integer(2_592_000, 'Refresh token lifetime, seconds'),
  clientTtl: Integer(7_776_000, 'Registered clients expire after this idle time, seconds'),
  refreshGrace: Integer(30, 'Seconds a just-rotated refresh token gets the same answer again (0 = off)', 0),
  upstreamTimeout: Integer(10_000, 'Upstream request timeout, milliseconds', 1, MAX_TIMEOUT_MS),
  allowedOrigins: List('Browser origins (http(s)://host[:port]) allowed to call /mcp besides the publicUrl\'s own'),
  upstreamHeaders: Type.Optional(Type.Union([
    Type.String({ maxLength: 65_536 }),
    Type.Array(Type.String({ maxLength: 8192 }), { maxItems: MAX_LIST }),
    Type.Record(Type.String(), Type.String({ maxLength: 8192 }))
  ], { default: {}, description: 'Headers pinned on every proxied request: { name: value }, "Name: value" strings, or one string of them separated by ; or newlines' })),
  forwardHeaders: List('Names of extra client request headers forwarded upstream (Content-Type, Accept, Mcp-* and Last-Event-ID always are)'),
  disableGetStream: Type.Optional(Type.Boolean({ default: false, description: 'Answer GET /mcp with 405 locally, for upstreams without a GET stream' })),
  proxyTimeout: Integer(300_000, 'How long /mcp waits for the upstream\'s response headers before a 504, milliseconds', 1, MAX_TIMEOUT_MS),
  maxBodySize: Integer(DEFAULT_BODY_SIZE, 'Largest request body /mcp accepts, bytes', MIN_BODY_SIZE, MAX_BODY_SIZE),
  store: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 2048,
    default: DEFAULT_STORE,
    description: 'Where state lives: memory, or redis://[[user]:password@]host[:port][/db], redis-sentinel://[[user]:password@]host[:port][,host[:port]…][/db]#master or redis-cluster://[[user]:password@]host[:port][,host[:port]…] (rediss://, rediss-sentinel://, rediss-cluster:// for TLS); a persistent store requires secret'
  })),
  storePrefix: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9:_.-]{1,64}$', default: DEFAULT_STORE_PREFIX, description: 'Prefix of every key in the store' })),
  tokenCacheTtl: Integer(5000, 'How long a validated access token may be kept in memory before the store is asked again, milliseconds; bounds how late a revocation on another replica takes effect (0 = no cache)', 0, MAX_TOKEN_CACHE_TTL),
  metricsPath: Type.Optional(Type.Union([
    Type.String({ pattern: '^(off|/[A-Za-z0-9._~/-]{0,255})$' }),
    Type.Literal(false)
  ], { default: 'off', description: 'Where Prometheus metrics are served on the gateway\'s own routes (under its prefix), or off (false), the default' })),
  unusedClientTtl: Integer(86_400, 'A registered client that has not completed a sign-in expires after this, seconds'),
  maxUnusedClients: Integer(10_000, 'Registrations that have not completed a sign-in, at most at once', 1, MAX_COUNT),
  maxPendingSignIns: Integer(10_000, 'Sign-ins in progress (from /authorize to the upstream callback), at most at once', 1, MAX_COUNT),
  rateLimitSignIn: Integer(60, 'Requests a minute per client address to each of /authorize, /login, /consent and /upstream/callback', 1, MAX_COUNT),
  rateLimitRegister: Integer(30, 'Registrations a minute per client address', 1, MAX_COUNT),
  rateLimitToken: Integer(120, 'Requests a minute per client address to each of /token and /revoke', 1, MAX_COUNT),
  loginFailuresPerAddress: Integer(10, 'Failed sign-ins per client address in 15 minutes before that address is refused until the window ends', 1, MAX_COUNT),
  loginFailuresPerUser: Integer(5, 'Failed sign-ins for one user name in 15 minutes before each further attempt must wait, doubling up to 15 minutes', 1, MAX_COUNT),
  maxStreams: Integer(2048, 'Proxied requests and event streams open to the upstream at once, in total: also the cap on upstream connections', 1, MAX_COUNT),
  maxStreamsPerGrant: Integer(32, 'Proxied requests and event streams open at once for one grant (one signed-in client)', 1, MAX_COUNT)
})

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export const ServerSettingsSchema = Type.Object({
  port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, default: DEFAULT_PORT })),
  host: Type.Optional(Type.String({ minLength: 1, maxLength: 253, pattern: '^[^\\s/]+$', default: 'localhost' })),
  trustProxy: Type.Optional(Type.Union([Type.Boolean(), Type.String({ minLength: 1 })], { default: false })),
  logLevel: Type.Optional(Type.Union(LOG_LEVELS.map((level) => Type.Literal(level)), { default: 'info' })),
  shutdownGrace: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600, default: 10 })),
  requestTimeout: Type.Optional(Type.Integer({ minimum: 1000, maximum: MAX_TIMEOUT_MS, default: 30_000 })),
  headersTimeout: Type.Optional(Type.Integer({ minimum: 1000, maximum: MAX_TIMEOUT_MS, default: 10_000 })),
  keepAliveTimeout: Type.Optional(Type.Integer({ minimum: 1000, maximum: MAX_TIMEOUT_MS, default: 72_000 })),
  maxConnections: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_COUNT, default: 4096 })),
  metricsPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  metricsHost: Type.Optional(Type.String({ minLength: 1, maxLength: 253, pattern: '^[^\\s/]+$', default: '127.0.0.1' }))
})
