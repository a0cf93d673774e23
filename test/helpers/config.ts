/**
 * The fixture the configuration tests (test/lib/config/) share: one place for the values and rules several of them
 * check, so a changed default or message is edited once.
 */
import { ConfigError, loadConfig } from '../../lib/config.js'

export const RS = 'https://api.githubcopilot.com/mcp'
export const SECRET_A = 'a'.repeat(32)
export const SECRET_B = 'b'.repeat(40)
// Non-default credentials, so tests about other things can use a non-loopback host.
export const CREDS = { MCP_GATEWAY_USERNAME: 'alice', MCP_GATEWAY_PASSWORD: 'correct horse battery staple' }
// Plugin options that pass on their own, for the parseGatewayOptions tests to add one option to.
export const PLUGIN = {
  publicUrl: 'https://gw.example.com',
  upstreamRs: RS,
  username: 'alice',
  password: 'correct horse battery staple'
}

/** loadConfig, asserting it did not answer with help. */
export function load (argv: string[], env: Record<string, string | undefined> = {}) {
  const result = loadConfig(argv, env)
  if ('help' in result) throw new Error('unexpected help')
  return result
}

/** The ConfigError that `fn` throws; anything else (or nothing) fails the test. */
export function configError (fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (error) {
    if (error instanceof ConfigError) return error
    throw error
  }
  throw new Error('expected a ConfigError')
}

// Every flag, its variable and a valid non-default value.
export const EVERY_SETTING: Array<[string, string, string]> = [
  ['--port', 'MCP_GATEWAY_PORT', '9000'],
  ['--host', 'MCP_GATEWAY_HOST', '127.0.0.1'],
  ['--trust-proxy', 'MCP_GATEWAY_TRUST_PROXY', '10.0.0.0/8'],
  ['--log-level', 'MCP_GATEWAY_LOG_LEVEL', 'debug'],
  ['--shutdown-grace', 'MCP_GATEWAY_SHUTDOWN_GRACE', '3'],
  ['--public-url', 'MCP_GATEWAY_PUBLIC_URL', 'https://gw.example.com/base'],
  ['--upstream-rs', 'MCP_GATEWAY_UPSTREAM_RS', RS],
  ['--upstream-as', 'MCP_GATEWAY_UPSTREAM_AS', 'https://github.com/login/oauth'],
  ['--upstream-client-id', 'MCP_GATEWAY_UPSTREAM_CLIENT_ID', 'Iv1.abc'],
  ['--upstream-client-secret', 'MCP_GATEWAY_UPSTREAM_CLIENT_SECRET', 'upstream-client-secret-value'],
  ['--upstream-authorize-endpoint', 'MCP_GATEWAY_UPSTREAM_AUTHORIZE_ENDPOINT',
    'https://github.com/login/oauth/authorize'],
  ['--upstream-token-endpoint', 'MCP_GATEWAY_UPSTREAM_TOKEN_ENDPOINT', 'https://github.com/login/oauth/access_token'],
  ['--upstream-scopes', 'MCP_GATEWAY_UPSTREAM_SCOPES', 'repo,read:org'],
  ['--secret', 'MCP_GATEWAY_SECRET', `${SECRET_A},${SECRET_B}`],
  ['--code-ttl', 'MCP_GATEWAY_CODE_TTL', '120'],
  ['--flow-ttl', 'MCP_GATEWAY_FLOW_TTL', '900'],
  ['--access-token-ttl', 'MCP_GATEWAY_ACCESS_TOKEN_TTL', '1800'],
  ['--refresh-token-ttl', 'MCP_GATEWAY_REFRESH_TOKEN_TTL', '86400'],
  ['--client-ttl', 'MCP_GATEWAY_CLIENT_TTL', '604800'],
  ['--refresh-grace', 'MCP_GATEWAY_REFRESH_GRACE', '30'],
  ['--upstream-user-endpoint', 'MCP_GATEWAY_UPSTREAM_USER_ENDPOINT', 'https://ghe.example.com/api/v3/user'],
  ['--upstream-allowed-users', 'MCP_GATEWAY_UPSTREAM_ALLOWED_USERS', 'OctoCat,hubot'],
  ['--upstream-allowed-orgs', 'MCP_GATEWAY_UPSTREAM_ALLOWED_ORGS', 'octo-org'],
  ['--upstream-timeout', 'MCP_GATEWAY_UPSTREAM_TIMEOUT', '2500'],
  ['--allowed-origins', 'MCP_GATEWAY_ALLOWED_ORIGINS', 'http://localhost:6274,https://app.example'],
  ['--upstream-header', 'MCP_GATEWAY_UPSTREAM_HEADERS', 'X-MCP-Toolsets: repos,issues'],
  ['--forward-headers', 'MCP_GATEWAY_FORWARD_HEADERS', 'X-Request-Id,Traceparent'],
  ['--disable-get-stream', 'MCP_GATEWAY_DISABLE_GET_STREAM', 'true'],
  ['--proxy-timeout', 'MCP_GATEWAY_PROXY_TIMEOUT', '60000'],
  ['--max-body-size', 'MCP_GATEWAY_MAX_BODY_SIZE', '1048576'],
  ['--store', 'MCP_GATEWAY_STORE', 'rediss://gateway:s3cret@redis.example.com:6380/2'],
  ['--store-prefix', 'MCP_GATEWAY_STORE_PREFIX', 'gw.prod_1-a:'],
  ['--token-cache-ttl', 'MCP_GATEWAY_TOKEN_CACHE_TTL', '1500'],
  ['--metrics-path', 'MCP_GATEWAY_METRICS_PATH', '/internal/metrics'],
  ['--request-timeout', 'MCP_GATEWAY_REQUEST_TIMEOUT', '15000'],
  ['--headers-timeout', 'MCP_GATEWAY_HEADERS_TIMEOUT', '5000'],
  ['--keep-alive-timeout', 'MCP_GATEWAY_KEEP_ALIVE_TIMEOUT', '65000'],
  ['--max-connections', 'MCP_GATEWAY_MAX_CONNECTIONS', '500'],
  ['--metrics-port', 'MCP_GATEWAY_METRICS_PORT', '9464'],
  ['--metrics-host', 'MCP_GATEWAY_METRICS_HOST', '::1'],
  ['--unused-client-ttl', 'MCP_GATEWAY_UNUSED_CLIENT_TTL', '3600'],
  ['--max-unused-clients', 'MCP_GATEWAY_MAX_UNUSED_CLIENTS', '500'],
  ['--users-file', 'MCP_GATEWAY_USERS_FILE', '/etc/mcp-gateway/users'],
  ['--login-oidc-issuer', 'MCP_GATEWAY_LOGIN_OIDC_ISSUER', 'https://login.example.com/tenant'],
  ['--login-oidc-client-id', 'MCP_GATEWAY_LOGIN_OIDC_CLIENT_ID', 'gateway'],
  ['--login-oidc-client-secret', 'MCP_GATEWAY_LOGIN_OIDC_CLIENT_SECRET', 'sso-client-secret-value'],
  ['--login-allowed-emails', 'MCP_GATEWAY_LOGIN_ALLOWED_EMAILS', 'Alice@Example.com'],
  ['--login-allowed-domains', 'MCP_GATEWAY_LOGIN_ALLOWED_DOMAINS', 'example.org'],
  ['--client-registration', 'MCP_GATEWAY_CLIENT_REGISTRATION', 'CIMD'],
  ['--cimd-allowed-hosts', 'MCP_GATEWAY_CIMD_ALLOWED_HOSTS', 'Claude.ai,*.example.com'],
  ['--cimd-allow-private', 'MCP_GATEWAY_CIMD_ALLOW_PRIVATE', 'true'],
  ['--redirect-uri-allow', 'MCP_GATEWAY_REDIRECT_URI_ALLOW', 'loopback,https://claude.ai/api/*'],
  ['--max-client-documents', 'MCP_GATEWAY_MAX_CLIENT_DOCUMENTS', '300'],
  ['--max-client-document-fetches', 'MCP_GATEWAY_MAX_CLIENT_DOCUMENT_FETCHES', '4'],
  ['--max-pending-sign-ins', 'MCP_GATEWAY_MAX_PENDING_SIGN_INS', '700'],
  ['--max-grants-per-user', 'MCP_GATEWAY_MAX_GRANTS_PER_USER', '7'],
  ['--rate-limit-sign-in', 'MCP_GATEWAY_RATE_LIMIT_SIGN_IN', '20'],
  ['--rate-limit-register', 'MCP_GATEWAY_RATE_LIMIT_REGISTER', '5'],
  ['--rate-limit-token', 'MCP_GATEWAY_RATE_LIMIT_TOKEN', '60'],
  ['--login-failures-per-address', 'MCP_GATEWAY_LOGIN_FAILURES_PER_ADDRESS', '20'],
  ['--login-failures-per-user', 'MCP_GATEWAY_LOGIN_FAILURES_PER_USER', '3'],
  ['--max-streams', 'MCP_GATEWAY_MAX_STREAMS', '100'],
  ['--max-streams-per-grant', 'MCP_GATEWAY_MAX_STREAMS_PER_GRANT', '8']
]
// Flags that take no value: `--flag` alone (the value above is for `--flag=value` and the variable).
const VALUELESS = new Set(['--disable-get-stream', '--cimd-allow-private'])
export const everyFlag = () => EVERY_SETTING.flatMap(([flag, , value]) => VALUELESS.has(flag) ? [flag] : [flag, value])

// The headers the gateway owns, in the order the error lists them.
export const OWNED = ['authorization', 'cookie', 'host', 'content-length', 'transfer-encoding', 'connection',
  'keep-alive', 'upgrade', 'te', 'trailer', 'proxy-authorization', 'proxy-connection']

export const STORE_RULE = '--store (MCP_GATEWAY_STORE): must be memory, redis://[[user]:password@]host[:port][/db], ' +
  'redis-sentinel://[[user]:password@]host[:port][,host[:port]…][/db]#master or ' +
  'redis-cluster://[[user]:password@]host[:port][,host[:port]…], or the same as rediss://, rediss-sentinel://, ' +
  'rediss-cluster:// (TLS), with db a non-negative integer and no query ' +
  '(percent-encode reserved characters in the password)'
export const PREFIX_RULE =
  '--store-prefix (MCP_GATEWAY_STORE_PREFIX): must be 1 to 64 characters of A-Z, a-z, 0-9, :, _, . and -'
export const TTL_RULE =
  '--token-cache-ttl (MCP_GATEWAY_TOKEN_CACHE_TTL): must be an integer from 0 to 60000 (milliseconds)'
export const SECRET_REQUIRED = '--secret (MCP_GATEWAY_SECRET): is required with a persistent --store ' +
  '(tokens must survive restarts and work on every replica)'
// A store URL with a password: it must never come back in an error, a warning or the help.
export const REDIS = 'redis://:hunter2@redis.example.com:6379/0'
