/**
 * Every setting of the gateway, declared once: its flag, variable, kind, bounds, default, help and the rule a bad
 * value is told. The TypeBox schemas (schema.ts), `--help` and the README's options table (docs.ts) are derived
 * from this table, so a default or a help text cannot disagree between them.
 */

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
// A listening host: no whitespace, no slash (so no URL slipped in by mistake).
const HOST_PATTERN = '^[^\\s/]+$'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/**
 * The shape of a value, which picks its schema (schema.ts) and how a flag or variable is read (command-line.ts):
 * `integer` and `boolean` are converted strictly from text; the rest are text, lists or records as the schema says.
 */
export type Kind = 'text' | 'url' | 'required-url' | 'integer' | 'boolean' | 'list' | 'scopes' | 'secrets' | 'headers' |
  'metrics-path' | 'trust-proxy' | 'log-level'

export interface Setting {
  kind: Kind
  /** A setting of the listener (`ServerSettings`), which the embedding API does not take. */
  server?: true
  /** Absent for credentials: a password given as a flag would show in `ps`. */
  flag?: string
  env: string
  /** `<url>`, `<n>`…: the placeholder shown in the help. */
  arg: string
  /** What a good value looks like: the whole error text, so a bad value is never repeated back. Integers derive theirs from the bounds. */
  rule?: string
  /** One line for `--help` and the schema's description. */
  help: string
  /** The README's longer text, where one line is not enough. */
  doc?: string
  /** The value the schema fills in when the setting is absent. */
  default?: string | number | boolean | readonly [] | Readonly<Record<string, never>>
  /** How the default reads in the help, when the value alone does not say it (or there is none to fill in). */
  defaultText?: string
  /** How the default reads in the README, when it says more than the help. */
  docDefault?: string
  minimum?: number
  maximum?: number
  /** Of an integer, in its rule: seconds unless given. */
  unit?: string
  minLength?: number
  maxLength?: number
  pattern?: string
  /** A flag that may be repeated, each time one entry; the variable holds all entries in one string. */
  multiple?: true
  /** A secret: `<env>_FILE` names a file holding it (Docker and Kubernetes secrets), and a flag warns (`ps`). */
  secret?: true
}

const URL_RULE = 'must be an http(s) URL without a fragment'
const BOOLEAN_RULE = 'must be true, false, 1 or 0'
const PORT_RULE = 'must be an integer from 0 to 65535'
const HOST_RULE = 'must be a host name or IP address'

/** The order of this table is the order of `--help`, of the README and of the problems in a `ConfigError`. */
export const SETTINGS = {
  port: { server: true, kind: 'integer', flag: 'port', env: 'MCP_GATEWAY_PORT', arg: '<n>', minimum: 0, maximum: 65535, rule: PORT_RULE, default: DEFAULT_PORT, help: 'Port to listen on' },
  host: { server: true, kind: 'text', flag: 'host', env: 'MCP_GATEWAY_HOST', arg: '<host>', minLength: 1, maxLength: 253, pattern: HOST_PATTERN, rule: HOST_RULE, default: 'localhost', doc: 'Address to listen on (`0.0.0.0` for all interfaces)', help: 'Address to listen on (0.0.0.0 for all interfaces)' },
  trustProxy: { server: true, kind: 'trust-proxy', flag: 'trust-proxy', env: 'MCP_GATEWAY_TRUST_PROXY', arg: '<v>', rule: 'must be true, false, or comma-separated IP addresses/CIDR ranges', default: false, doc: 'Trust `X-Forwarded-*` from `true` (any) or a list of addresses/CIDRs', help: 'Trust X-Forwarded-* from: true (any), or a comma-separated list of addresses/CIDRs' },
  logLevel: { server: true, kind: 'log-level', flag: 'log-level', env: 'MCP_GATEWAY_LOG_LEVEL', arg: '<level>', rule: `must be one of ${LOG_LEVELS.join(', ')}`, default: 'info', doc: '`fatal` … `trace`, `silent`', help: `Log level: ${LOG_LEVELS.join(', ')}` },
  shutdownGrace: { server: true, kind: 'integer', flag: 'shutdown-grace', env: 'MCP_GATEWAY_SHUTDOWN_GRACE', arg: '<s>', minimum: 0, maximum: 3600, default: 10, help: 'Seconds requests in flight get to finish after SIGTERM/SIGINT (keep it below `docker stop -t`)' },
  requestTimeout: { server: true, kind: 'integer', flag: 'request-timeout', env: 'MCP_GATEWAY_REQUEST_TIMEOUT', arg: '<ms>', minimum: 1000, maximum: MAX_TIMEOUT_MS, unit: 'milliseconds', default: 30_000, help: 'Milliseconds a client has to send a whole request, headers and body; responses and event streams are not bounded by it' },
  headersTimeout: { server: true, kind: 'integer', flag: 'headers-timeout', env: 'MCP_GATEWAY_HEADERS_TIMEOUT', arg: '<ms>', minimum: 1000, maximum: MAX_TIMEOUT_MS, unit: 'milliseconds', default: 10_000, help: 'Milliseconds a client has to send a request\'s headers' },
  keepAliveTimeout: { server: true, kind: 'integer', flag: 'keep-alive-timeout', env: 'MCP_GATEWAY_KEEP_ALIVE_TIMEOUT', arg: '<ms>', minimum: 1000, maximum: MAX_TIMEOUT_MS, unit: 'milliseconds', default: 72_000, doc: 'Milliseconds an idle keep-alive connection stays open (keep it above your load balancer\'s idle timeout)', help: 'Milliseconds an idle keep-alive connection stays open (above your load balancer\'s idle timeout)' },
  maxConnections: { server: true, kind: 'integer', flag: 'max-connections', env: 'MCP_GATEWAY_MAX_CONNECTIONS', arg: '<n>', minimum: 1, maximum: MAX_COUNT, unit: 'connections', default: 4096, help: 'Client connections open at once; more are closed as they arrive' },
  metricsPort: { server: true, kind: 'integer', flag: 'metrics-port', env: 'MCP_GATEWAY_METRICS_PORT', arg: '<n>', minimum: 0, maximum: 65535, rule: PORT_RULE, defaultText: 'none (no metrics listener)', docDefault: 'none', doc: 'Serve Prometheus metrics at `/metrics` on a listener of their own, on this port', help: 'Serve Prometheus metrics at /metrics on a listener of their own, on this port' },
  metricsHost: { server: true, kind: 'text', flag: 'metrics-host', env: 'MCP_GATEWAY_METRICS_HOST', arg: '<host>', minLength: 1, maxLength: 253, pattern: HOST_PATTERN, rule: HOST_RULE, default: '127.0.0.1', help: 'Address of the metrics listener' },

  publicUrl: { kind: 'required-url', flag: 'public-url', env: 'MCP_GATEWAY_PUBLIC_URL', arg: '<url>', rule: 'must be an http(s) URL without a query or fragment', defaultText: 'http://localhost:<port>', docDefault: '`http://localhost:<port>`', doc: 'The URL clients reach the gateway at: issuer and resource base (set it behind a TLS proxy)', help: 'URL clients reach the gateway at (issuer and resource)' },
  upstreamRs: { kind: 'required-url', flag: 'upstream-rs', env: 'MCP_GATEWAY_UPSTREAM_RS', arg: '<url>', rule: URL_RULE, docDefault: 'required', doc: 'The upstream MCP server', help: 'Upstream MCP server URL (required)' },
  upstreamAs: { kind: 'url', flag: 'upstream-as', env: 'MCP_GATEWAY_UPSTREAM_AS', arg: '<url>', rule: URL_RULE, docDefault: 'discovered', doc: 'The upstream authorization server', help: 'Upstream authorization server (discovered when absent)' },
  upstreamClientId: { kind: 'text', flag: 'upstream-client-id', env: 'MCP_GATEWAY_UPSTREAM_CLIENT_ID', arg: '<id>', minLength: 1, maxLength: 512, rule: 'must be 1 to 512 characters', docDefault: 'registers dynamically', doc: 'The gateway\'s client id upstream (GitHub has no dynamic registration)', help: 'Client id at the upstream AS (skips dynamic registration)' },
  upstreamClientSecret: { kind: 'text', flag: 'upstream-client-secret', env: 'MCP_GATEWAY_UPSTREAM_CLIENT_SECRET', arg: '<secret>', secret: true, minLength: 1, maxLength: 2048, rule: 'must be 1 to 2048 characters', docDefault: 'none', doc: 'Its secret', help: 'Client secret at the upstream AS' },
  upstreamAuthorizeEndpoint: { kind: 'url', flag: 'upstream-authorize-endpoint', env: 'MCP_GATEWAY_UPSTREAM_AUTHORIZE_ENDPOINT', arg: '<url>', rule: URL_RULE, docDefault: 'discovered', doc: 'With the token endpoint, skips discovery', help: 'Upstream authorization endpoint (with the token endpoint: skips discovery)' },
  upstreamTokenEndpoint: { kind: 'url', flag: 'upstream-token-endpoint', env: 'MCP_GATEWAY_UPSTREAM_TOKEN_ENDPOINT', arg: '<url>', rule: URL_RULE, docDefault: 'discovered', help: 'Upstream token endpoint (with the authorize endpoint: skips discovery)' },
  upstreamScopes: { kind: 'scopes', flag: 'upstream-scopes', env: 'MCP_GATEWAY_UPSTREAM_SCOPES', arg: '<scopes>', rule: 'must be scope names separated by spaces or commas', docDefault: 'discovered `scopes_supported`, else none', doc: 'Scopes requested upstream. GitHub grants only public read access when none are sent', help: 'Scopes to request upstream, space- or comma-separated' },
  username: { kind: 'text', env: 'MCP_GATEWAY_USERNAME', arg: '', minLength: 1, maxLength: 256, rule: 'must be 1 to 256 characters', default: DEFAULT_USERNAME, defaultText: `${DEFAULT_USERNAME}, loopback hosts only`, docDefault: '`gateway_user` (loopback only)', doc: 'Gateway login', help: 'Login user name' },
  usersFile: { kind: 'text', flag: 'users-file', env: 'MCP_GATEWAY_USERS_FILE', arg: '<path>', minLength: 1, maxLength: 4096, rule: 'must be a file path of 1 to 4096 characters', defaultText: 'none: the one account above', docDefault: 'none (the one account above)', doc: 'Personal accounts for screen 1 instead of the one account: a file of `name:hash` lines, each hash made by `mcp-oauth-gateway hash-password`; re-read when it changes. See [teams](#teams-personal-accounts)', help: 'Personal accounts instead of the one account: a file of name:hash lines (hashes from `mcp-oauth-gateway hash-password`), re-read when it changes' },
  loginOidcIssuer: { kind: 'url', flag: 'login-oidc-issuer', env: 'MCP_GATEWAY_LOGIN_OIDC_ISSUER', arg: '<url>', rule: URL_RULE, defaultText: 'none', docDefault: 'none', doc: 'Single sign-on for screen 1: the OpenID Connect provider (discovery, PKCE, state, nonce, ID token checks by openid-client). Needs the client id and `--login-allowed-emails` or `--login-allowed-domains`; the provider must allow the redirect URIs `<public-url>/login/sso/callback` and `<public-url>/account/sso/callback`. See [teams](#teams-personal-accounts)', help: 'Single sign-on for screen 1: the OpenID Connect issuer (redirect URIs <public-url>/login/sso/callback and /account/sso/callback)' },
  loginOidcClientId: { kind: 'text', flag: 'login-oidc-client-id', env: 'MCP_GATEWAY_LOGIN_OIDC_CLIENT_ID', arg: '<id>', minLength: 1, maxLength: 512, rule: 'must be 1 to 512 characters', defaultText: 'none', docDefault: 'none', doc: 'The gateway\'s client id at that provider', help: 'The gateway\'s client id at the sign-on provider' },
  loginOidcClientSecret: { kind: 'text', flag: 'login-oidc-client-secret', env: 'MCP_GATEWAY_LOGIN_OIDC_CLIENT_SECRET', arg: '<secret>', secret: true, minLength: 1, maxLength: 2048, rule: 'must be 1 to 2048 characters', defaultText: 'none (a public client)', docDefault: 'none (a public client, PKCE alone)', doc: 'Its secret, sent as client_secret_post', help: 'Its secret at the sign-on provider' },
  loginAllowedEmails: { kind: 'list', flag: 'login-allowed-emails', env: 'MCP_GATEWAY_LOGIN_ALLOWED_EMAILS', arg: '<emails>', rule: `must be at most ${MAX_LIST} comma-separated email addresses`, default: [], defaultText: 'none', docDefault: 'none', doc: 'Comma-separated addresses that may sign in by single sign-on (verified by the provider); with `--login-allowed-domains`, either is enough', help: 'Email addresses that may sign in by single sign-on, comma-separated' },
  loginAllowedDomains: { kind: 'list', flag: 'login-allowed-domains', env: 'MCP_GATEWAY_LOGIN_ALLOWED_DOMAINS', arg: '<domains>', rule: `must be at most ${MAX_LIST} comma-separated domain names`, default: [], defaultText: 'none', docDefault: 'none', doc: 'Comma-separated domains whose (verified) addresses may sign in by single sign-on, e.g. `example.com` (not its subdomains)', help: 'Domains whose verified addresses may sign in by single sign-on, comma-separated' },
  password: { kind: 'text', env: 'MCP_GATEWAY_PASSWORD', arg: '', secret: true, minLength: 1, maxLength: 1024, rule: 'must be 1 to 1024 characters', default: DEFAULT_PASSWORD, defaultText: `${DEFAULT_PASSWORD}, loopback hosts only`, docDefault: '`gateway_pass` (loopback only)', doc: 'Gateway password (environment only: a flag would show in `ps`)', help: 'Login password' },
  mcpScope: { kind: 'text', env: 'MCP_GATEWAY_MCP_SCOPE', arg: '', maxLength: 256, pattern: SCOPE_TOKEN, rule: 'must be one scope name (printable ASCII without spaces, quotes or backslashes)', default: 'mcp', doc: 'The scope on every gateway token', help: 'Scope on every gateway code and token' },
  secret: { kind: 'secrets', flag: 'secret', env: 'MCP_GATEWAY_SECRET', arg: '<s1,s2>', secret: true, rule: `must be one or more comma-separated secrets of at least ${MIN_SECRET_LENGTH} characters each`, defaultText: 'random, lost on restart; required with a redis --store', docDefault: 'random, with a warning; required with a Redis `--store`', doc: 'Comma-separated secrets (≥ 32 chars): the first signs cookies and encrypts upstream tokens, all verify and decrypt. Every replica needs the same list', help: `Secrets (>= ${MIN_SECRET_LENGTH} chars), comma-separated; the first signs and encrypts, all verify (rotation)` },
  codeTtl: { kind: 'integer', flag: 'code-ttl', env: 'MCP_GATEWAY_CODE_TTL', arg: '<s>', minimum: 1, maximum: 600, default: 300, doc: 'Authorization code lifetime, seconds (≤ 600)', help: 'Authorization code lifetime, seconds' },
  flowTtl: { kind: 'integer', flag: 'flow-ttl', env: 'MCP_GATEWAY_FLOW_TTL', arg: '<s>', minimum: 1, maximum: MAX_SECONDS, default: 600, doc: 'Sign-in flow lifetime, seconds', help: 'Login flow lifetime, seconds' },
  accessTokenTtl: { kind: 'integer', flag: 'access-token-ttl', env: 'MCP_GATEWAY_ACCESS_TOKEN_TTL', arg: '<s>', minimum: 1, maximum: MAX_SECONDS, default: 3600, doc: 'Access token lifetime, capped by the upstream token\'s', help: 'Access token lifetime, seconds' },
  refreshTokenTtl: { kind: 'integer', flag: 'refresh-token-ttl', env: 'MCP_GATEWAY_REFRESH_TOKEN_TTL', arg: '<s>', minimum: 1, maximum: MAX_SECONDS, default: 2_592_000, doc: 'Refresh token lifetime (30 days), renewed on each rotation', help: 'Refresh token lifetime, seconds' },
  clientTtl: { kind: 'integer', flag: 'client-ttl', env: 'MCP_GATEWAY_CLIENT_TTL', arg: '<s>', minimum: 1, maximum: MAX_SECONDS, default: 7_776_000, doc: 'Registered clients expire after this idle time', help: 'Registered clients expire after this idle time, seconds' },
  refreshGrace: { kind: 'integer', flag: 'refresh-grace', env: 'MCP_GATEWAY_REFRESH_GRACE', arg: '<s>', minimum: 0, maximum: MAX_SECONDS, default: 30, doc: 'Seconds in which a just-rotated refresh token gets the same answer again (the same access and refresh token), for clients that send one refresh twice at once or retry; after it, reuse revokes the grant. `0`: any reuse revokes at once', help: 'Seconds a just-rotated refresh token gets the same answer again, for clients that refresh twice at once or retry (0 = off: reuse revokes at once)' },
  upstreamUserEndpoint: { kind: 'url', flag: 'upstream-user-endpoint', env: 'MCP_GATEWAY_UPSTREAM_USER_ENDPOINT', arg: '<url>', rule: URL_RULE, defaultText: 'https://api.github.com/user for GitHub, none otherwise', docDefault: '`https://api.github.com/user` for GitHub (github.com or api.githubcopilot.com upstreams), none otherwise', doc: 'Where the gateway asks the upstream who signed in (GitHub\'s `GET /user`; `/orgs` below it when organisations are restricted), right after the upstream sign-in; the answer stays with the grant', help: 'Where the gateway asks who signed in upstream (GitHub\'s GET /user)' },
  upstreamAllowedUsers: { kind: 'list', flag: 'upstream-allowed-users', env: 'MCP_GATEWAY_UPSTREAM_ALLOWED_USERS', arg: '<logins>', rule: `must be at most ${MAX_LIST} comma-separated upstream user names`, default: [], defaultText: 'anyone', docDefault: 'anyone', doc: 'Comma-separated upstream user names (GitHub logins, any case) allowed to sign in; with `--upstream-allowed-orgs`, being in either list is enough. Anyone else gets a "not allowed" page and no gateway code', help: 'Upstream user names allowed to sign in, comma-separated (with --upstream-allowed-orgs: either list)' },
  upstreamAllowedOrgs: { kind: 'list', flag: 'upstream-allowed-orgs', env: 'MCP_GATEWAY_UPSTREAM_ALLOWED_ORGS', arg: '<orgs>', rule: `must be at most ${MAX_LIST} comma-separated upstream organisation names`, default: [], defaultText: 'any', docDefault: 'any', doc: 'Comma-separated upstream organisations (GitHub org logins, any case) whose members may sign in. GitHub lists an org only if the OAuth App was granted access to it, or the membership is public', help: 'Upstream organisations whose members may sign in, comma-separated' },
  upstreamTimeout: { kind: 'integer', flag: 'upstream-timeout', env: 'MCP_GATEWAY_UPSTREAM_TIMEOUT', arg: '<ms>', minimum: 1, maximum: MAX_TIMEOUT_MS, unit: 'milliseconds', default: 10_000, help: 'Upstream request timeout, milliseconds' },
  allowedOrigins: { kind: 'list', flag: 'allowed-origins', env: 'MCP_GATEWAY_ALLOWED_ORIGINS', arg: '<origins>', rule: `must be at most ${MAX_LIST} comma-separated origins, each http(s)://host[:port] without a path, query, fragment or trailing slash`, default: [], defaultText: 'none besides the public URL\'s', docDefault: 'none (the public URL\'s own origin is always allowed)', doc: 'Comma-separated browser origins allowed to call `/mcp` (Origin check and CORS), each `http(s)://host[:port]` without a path or trailing slash, e.g. `http://localhost:6274` for MCP Inspector', help: 'Browser origins allowed to call /mcp, comma-separated (e.g. http://localhost:6274); the public URL\'s own origin always is' },
  upstreamHeaders: { kind: 'headers', flag: 'upstream-header', env: 'MCP_GATEWAY_UPSTREAM_HEADERS', arg: '<header>', multiple: true, rule: `must be at most ${MAX_LIST} "Name: value" headers (one per flag, separated by ; or newlines in the variable): names RFC 9110 tokens, values non-empty visible ASCII with spaces or tabs only inside`, default: {}, defaultText: 'none', doc: 'A header pinned on every proxied request, `Name: value` (e.g. `X-MCP-Toolsets: repos,issues`); repeat the flag for more. The variable separates entries with `;` or newlines; flags replace it. Credential, `Host` and hop-by-hop headers are refused', help: 'Header pinned on every proxied request, "Name: value"; repeat the flag for more (flags replace the variable, whose entries are separated by ; or newlines)' },
  forwardHeaders: { kind: 'list', flag: 'forward-headers', env: 'MCP_GATEWAY_FORWARD_HEADERS', arg: '<names>', rule: `must be at most ${MAX_LIST} comma-separated header names (RFC 9110 tokens)`, default: [], defaultText: 'none', doc: 'Comma-separated extra client request headers forwarded upstream; `Content-Type`, `Accept`, `Mcp-*` and `Last-Event-ID` always are', help: 'Extra client request headers forwarded upstream, comma-separated (Content-Type, Accept, Mcp-*, Last-Event-ID always are)' },
  disableGetStream: { kind: 'boolean', flag: 'disable-get-stream', env: 'MCP_GATEWAY_DISABLE_GET_STREAM', arg: '', rule: BOOLEAN_RULE, default: false, doc: 'Answer `GET /mcp` with 405 locally, for upstreams without a GET stream (GitHub\'s). A flag without a value; the variable takes `true`/`false`/`1`/`0`', help: 'Answer GET /mcp with 405 here, for upstreams without a GET stream (GitHub); the variable takes true/false/1/0' },
  proxyTimeout: { kind: 'integer', flag: 'proxy-timeout', env: 'MCP_GATEWAY_PROXY_TIMEOUT', arg: '<ms>', minimum: 1, maximum: MAX_TIMEOUT_MS, unit: 'milliseconds', default: 300_000, doc: 'Milliseconds `/mcp` waits for the upstream\'s response headers before answering 504; a started stream never times out', help: 'How long /mcp waits for the upstream\'s response headers before answering 504, milliseconds (checked about once a second; a started stream never times out)' },
  maxBodySize: { kind: 'integer', flag: 'max-body-size', env: 'MCP_GATEWAY_MAX_BODY_SIZE', arg: '<bytes>', minimum: MIN_BODY_SIZE, maximum: MAX_BODY_SIZE, unit: 'bytes', default: DEFAULT_BODY_SIZE, defaultText: `${DEFAULT_BODY_SIZE} (16 MiB)`, docDefault: '`16777216` (16 MiB)', doc: 'Largest request body `/mcp` accepts, bytes (1024 to 1073741824)', help: 'Largest request body /mcp accepts, bytes' },
  // The rule never quotes the value: a store URL may carry a password.
  store: { kind: 'text', flag: 'store', env: 'MCP_GATEWAY_STORE', arg: '<memory|url>', minLength: 1, maxLength: 2048, rule: 'must be memory, redis://[[user]:password@]host[:port][/db], redis-sentinel://[[user]:password@]host[:port][,host[:port]…][/db]#master or redis-cluster://[[user]:password@]host[:port][,host[:port]…], or the same as rediss://, rediss-sentinel://, rediss-cluster:// (TLS), with db a non-negative integer and no query (percent-encode reserved characters in the password)', default: DEFAULT_STORE, doc: 'Where state lives: `memory` (one instance, lost on restart) or Redis: one server `redis://[[user]:password@]host[:port][/db]`, Sentinels `redis-sentinel://[[user]:password@]host[:port][,host[:port]…][/db]#master`, or a cluster `redis-cluster://[[user]:password@]host[:port][,host[:port]…]`; `rediss://`, `rediss-sentinel://`, `rediss-cluster://` for TLS (percent-encode `@ : / ? #` in the password; no query). See [the Redis store](#restarts-and-replicas-the-redis-store). Redis requires `--secret`, so tokens survive restarts and work on every replica. Configuration errors and warnings never repeat the value; with a password, prefer the variable (a flag shows in `ps`)', help: 'Where state lives: memory (one instance, lost on restart), or redis://[[user]:password@]host[:port][/db], redis-sentinel://[[user]:password@]host[:port][,host[:port]…][/db]#master, redis-cluster://[[user]:password@]host[:port][,host[:port]…]; rediss://, rediss-sentinel://, rediss-cluster:// for TLS (needs --secret; with a password, prefer the variable: a flag shows in `ps`)' },
  storePrefix: { kind: 'text', flag: 'store-prefix', env: 'MCP_GATEWAY_STORE_PREFIX', arg: '<prefix>', pattern: '^[A-Za-z0-9:_.-]{1,64}$', rule: 'must be 1 to 64 characters of A-Z, a-z, 0-9, :, _, . and -', default: DEFAULT_STORE_PREFIX, doc: 'Prefix of every key, 1–64 characters of `A-Z a-z 0-9 : _ . -`; gateways sharing one Redis need different prefixes', help: 'Prefix of every key in the store' },
  metricsPath: { kind: 'metrics-path', flag: 'metrics-path', env: 'MCP_GATEWAY_METRICS_PATH', arg: '<path|off>', rule: 'must be a path such as /metrics, or off', default: 'off', doc: 'Also serve Prometheus metrics on the gateway\'s own port, at this path (under the gateway prefix): public, so prefer `--metrics-port`', help: 'Also serve Prometheus metrics on the gateway\'s own port, at this path (public: prefer --metrics-port)' },
  unusedClientTtl: { kind: 'integer', flag: 'unused-client-ttl', env: 'MCP_GATEWAY_UNUSED_CLIENT_TTL', arg: '<s>', minimum: 1, maximum: MAX_SECONDS, default: 86_400, doc: 'A registered client that has not completed a sign-in expires after this, seconds; once used, `--client-ttl` applies', help: 'A registered client that has not completed a sign-in expires after this, seconds' },
  maxUnusedClients: { kind: 'integer', flag: 'max-unused-clients', env: 'MCP_GATEWAY_MAX_UNUSED_CLIENTS', arg: '<n>', minimum: 1, maximum: MAX_COUNT, unit: 'clients', default: 10_000, doc: 'Registrations that have not completed a sign-in, at most at once; more get 503, none is evicted', help: 'Registrations that have not completed a sign-in, at most at once; more are refused with 503, none evicted' },
  clientRegistration: { kind: 'list', flag: 'client-registration', env: 'MCP_GATEWAY_CLIENT_REGISTRATION', arg: '<methods>', rule: 'must be dcr, cimd or dcr,cimd', default: 'dcr,cimd', docDefault: '`dcr,cimd`', doc: 'How MCP clients may identify themselves: `dcr` (RFC 7591 registration at `/register`), `cimd` (an https URL as `client_id`, its Client ID Metadata Document fetched by the gateway), or both. See [client registration](#client-registration)', help: 'How clients may identify themselves: dcr (registration at /register), cimd (client metadata document URLs), or dcr,cimd' },
  cimdAllowedHosts: { kind: 'list', flag: 'cimd-allowed-hosts', env: 'MCP_GATEWAY_CIMD_ALLOWED_HOSTS', arg: '<hosts>', rule: `must be at most ${MAX_LIST} comma-separated host names, each maybe starting with *. (e.g. claude.ai,*.example.com)`, default: [], defaultText: 'any public host', docDefault: 'any public host', doc: 'Comma-separated hosts whose client metadata documents are accepted: `claude.ai` is that host, `*.example.com` any host below example.com', help: 'Hosts whose client metadata documents are accepted, comma-separated; *.example.com is any host below example.com' },
  cimdAllowPrivate: { kind: 'boolean', flag: 'cimd-allow-private', env: 'MCP_GATEWAY_CIMD_ALLOW_PRIVATE', arg: '', rule: BOOLEAN_RULE, default: false, doc: 'Fetch client metadata documents from loopback, private and other non-public addresses too (for tests and intranets); by default only public addresses are fetched, so a client id cannot make the gateway reach its own network', help: 'Fetch client metadata documents from loopback and private addresses too (tests, intranets); the variable takes true/false/1/0' },
  redirectUriAllow: { kind: 'list', flag: 'redirect-uri-allow', env: 'MCP_GATEWAY_REDIRECT_URI_ALLOW', arg: '<patterns>', rule: `must be at most ${MAX_LIST} comma-separated patterns: loopback, or an absolute URI that may end in * (e.g. https://claude.ai/*)`, default: [], defaultText: 'any URI the rules accept', docDefault: 'any redirect URI the rules accept', doc: 'Comma-separated patterns every redirect URI of a client (registered or from its metadata document) must match: `loopback` (http://127.0.0.1, [::1] or localhost, any port), an exact URI, or a URI ending in `*` (any URI it begins)', help: 'Patterns every client redirect URI must match, comma-separated: loopback, an exact URI, or one ending in * (e.g. loopback,https://claude.ai/*)' },
  maxClientDocuments: { kind: 'integer', flag: 'max-client-documents', env: 'MCP_GATEWAY_MAX_CLIENT_DOCUMENTS', arg: '<n>', minimum: 1, maximum: MAX_COUNT, unit: 'documents', default: 10_000, doc: 'Client metadata documents kept cached at once; past it a document is used without being cached, none is evicted', help: 'Client metadata documents cached at once; past it documents are fetched each time, none evicted' },
  maxClientDocumentFetches: { kind: 'integer', flag: 'max-client-document-fetches', env: 'MCP_GATEWAY_MAX_CLIENT_DOCUMENT_FETCHES', arg: '<n>', minimum: 1, maximum: 10_000, unit: 'fetches', default: 32, doc: 'Client metadata documents fetched at once by one gateway; more sign-ins wait for none and get a 503 page', help: 'Client metadata documents fetched at once; more sign-ins get a 503 page' },
  maxPendingSignIns: { kind: 'integer', flag: 'max-pending-sign-ins', env: 'MCP_GATEWAY_MAX_PENDING_SIGN_INS', arg: '<n>', minimum: 1, maximum: MAX_COUNT, unit: 'sign-ins', default: 10_000, doc: 'Sign-ins in progress at once (from `/authorize` to the upstream callback); more get a 503 page, none is evicted', help: 'Sign-ins in progress at once (from /authorize to the upstream callback); more are refused with 503, none evicted' },
  maxGrantsPerUser: { kind: 'integer', flag: 'max-grants-per-user', env: 'MCP_GATEWAY_MAX_GRANTS_PER_USER', arg: '<n>', minimum: 1, maximum: 10_000, unit: 'grants', default: 100, doc: 'Clients one person may have connected at once (each a grant, listed on their [account page](#teams-personal-accounts)); one more is refused at `/token` (`invalid_grant`, logged at warn), none is evicted', help: 'Clients one person may have connected at once; one more is refused at /token, none evicted' },
  rateLimitSignIn: { kind: 'integer', flag: 'rate-limit-sign-in', env: 'MCP_GATEWAY_RATE_LIMIT_SIGN_IN', arg: '<n>', minimum: 1, maximum: MAX_COUNT, unit: 'requests', default: 60, doc: 'Requests a minute per client address to each of `/authorize`, `/login`, `/consent`, `/upstream/callback` and the `/account` pages', help: 'Requests a minute per client address to each of /authorize, /login, /consent, /upstream/callback and the /account pages' },
  rateLimitRegister: { kind: 'integer', flag: 'rate-limit-register', env: 'MCP_GATEWAY_RATE_LIMIT_REGISTER', arg: '<n>', minimum: 1, maximum: MAX_COUNT, unit: 'requests', default: 30, help: 'Registrations a minute per client address' },
  rateLimitToken: { kind: 'integer', flag: 'rate-limit-token', env: 'MCP_GATEWAY_RATE_LIMIT_TOKEN', arg: '<n>', minimum: 1, maximum: MAX_COUNT, unit: 'requests', default: 120, doc: 'Requests a minute per client address to each of `/token` and `/revoke`', help: 'Requests a minute per client address to each of /token and /revoke' },
  loginFailuresPerAddress: { kind: 'integer', flag: 'login-failures-per-address', env: 'MCP_GATEWAY_LOGIN_FAILURES_PER_ADDRESS', arg: '<n>', minimum: 1, maximum: MAX_COUNT, unit: 'failures', default: 10, help: 'Failed sign-ins per client address in 15 minutes; then that address is refused until the window ends' },
  loginFailuresPerUser: { kind: 'integer', flag: 'login-failures-per-user', env: 'MCP_GATEWAY_LOGIN_FAILURES_PER_USER', arg: '<n>', minimum: 1, maximum: MAX_COUNT, unit: 'failures', default: 5, doc: 'Failed sign-ins for one user name in 15 minutes; then each further attempt waits, doubling from 1 s up to 15 minutes', help: 'Failed sign-ins for one user name in 15 minutes; then each further attempt waits, doubling up to 15 minutes' },
  maxStreams: { kind: 'integer', flag: 'max-streams', env: 'MCP_GATEWAY_MAX_STREAMS', arg: '<n>', minimum: 1, maximum: MAX_COUNT, unit: 'streams', default: 2048, doc: 'Proxied requests and event streams open at once, in total; also the cap on upstream connections; more get 503', help: 'Proxied requests and event streams open at once, in total (also the cap on upstream connections); more get 503' },
  maxStreamsPerGrant: { kind: 'integer', flag: 'max-streams-per-grant', env: 'MCP_GATEWAY_MAX_STREAMS_PER_GRANT', arg: '<n>', minimum: 1, maximum: MAX_COUNT, unit: 'streams', default: 32, help: 'Proxied requests and event streams open at once for one signed-in client; more get 429' },
  tokenCacheTtl: { kind: 'integer', flag: 'token-cache-ttl', env: 'MCP_GATEWAY_TOKEN_CACHE_TTL', arg: '<ms>', minimum: 0, maximum: MAX_TOKEN_CACHE_TTL, unit: 'milliseconds', default: 5000, doc: 'Milliseconds a replica may keep a validated access token in memory before asking the store again, so also the most a revocation made on another replica can lag (0 to 60000; `0` = no cache)', help: 'How long a validated access token is kept in memory before the store is asked again, milliseconds: the most a revocation on another replica can lag (0 = no cache)' }
} as const satisfies Record<string, Setting>

export type SettingKey = keyof typeof SETTINGS
/** The keys of the listener's settings, and of the gateway's (the plugin options). */
export type ServerKey = { [K in SettingKey]: typeof SETTINGS[K] extends { server: true } ? K : never }[SettingKey]
export type GatewayKey = Exclude<SettingKey, ServerKey>

const entries = Object.entries(SETTINGS) as Array<[SettingKey, Setting]>
export const SERVER_SETTINGS = Object.fromEntries(entries.filter(([, s]) => s.server === true)) as { [K in ServerKey]: typeof SETTINGS[K] }
export const GATEWAY_SETTINGS = Object.fromEntries(entries.filter(([, s]) => s.server !== true)) as { [K in GatewayKey]: typeof SETTINGS[K] }

/** What a bad value is told: the setting's own rule, or for an integer its bounds. */
export function ruleOf (setting: Setting): string {
  if (setting.rule !== undefined) return setting.rule
  return `must be an integer from ${setting.minimum as number} to ${setting.maximum as number} (${setting.unit ?? 'seconds'})`
}
