import t from 'tap'
import { GatewayOptionsSchema } from '../../lib/config/schema.js'
import { ConfigError, helpText, loadConfig, parseGatewayOptions, type GatewayOptions } from '../../lib/config.js'

const RS = 'https://api.githubcopilot.com/mcp'
const SECRET_A = 'a'.repeat(32)
const SECRET_B = 'b'.repeat(40)
// Non-default credentials, so tests about other things can use a non-loopback host.
const CREDS = { MCP_GATEWAY_USERNAME: 'alice', MCP_GATEWAY_PASSWORD: 'correct horse battery staple' }

/** loadConfig, asserting it did not answer with help. */
function load (argv: string[], env: Record<string, string | undefined> = {}) {
  const result = loadConfig(argv, env)
  if ('help' in result) throw new Error('unexpected help')
  return result
}

/** The ConfigError that `fn` throws; anything else (or nothing) fails the test. */
function configError (fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (error) {
    if (error instanceof ConfigError) return error
    throw error
  }
  throw new Error('expected a ConfigError')
}

// Every flag, its variable and a valid non-default value.
const EVERY_SETTING: Array<[string, string, string]> = [
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
  ['--upstream-authorize-endpoint', 'MCP_GATEWAY_UPSTREAM_AUTHORIZE_ENDPOINT', 'https://github.com/login/oauth/authorize'],
  ['--upstream-token-endpoint', 'MCP_GATEWAY_UPSTREAM_TOKEN_ENDPOINT', 'https://github.com/login/oauth/access_token'],
  ['--upstream-scopes', 'MCP_GATEWAY_UPSTREAM_SCOPES', 'repo,read:org'],
  ['--secret', 'MCP_GATEWAY_SECRET', `${SECRET_A},${SECRET_B}`],
  ['--code-ttl', 'MCP_GATEWAY_CODE_TTL', '120'],
  ['--flow-ttl', 'MCP_GATEWAY_FLOW_TTL', '900'],
  ['--access-token-ttl', 'MCP_GATEWAY_ACCESS_TOKEN_TTL', '1800'],
  ['--refresh-token-ttl', 'MCP_GATEWAY_REFRESH_TOKEN_TTL', '86400'],
  ['--client-ttl', 'MCP_GATEWAY_CLIENT_TTL', '604800'],
  ['--refresh-grace', 'MCP_GATEWAY_REFRESH_GRACE', '30'],
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
  ['--max-pending-sign-ins', 'MCP_GATEWAY_MAX_PENDING_SIGN_INS', '700'],
  ['--rate-limit-sign-in', 'MCP_GATEWAY_RATE_LIMIT_SIGN_IN', '20'],
  ['--rate-limit-register', 'MCP_GATEWAY_RATE_LIMIT_REGISTER', '5'],
  ['--rate-limit-token', 'MCP_GATEWAY_RATE_LIMIT_TOKEN', '60'],
  ['--login-failures-per-address', 'MCP_GATEWAY_LOGIN_FAILURES_PER_ADDRESS', '20'],
  ['--login-failures-per-user', 'MCP_GATEWAY_LOGIN_FAILURES_PER_USER', '3'],
  ['--max-streams', 'MCP_GATEWAY_MAX_STREAMS', '100'],
  ['--max-streams-per-grant', 'MCP_GATEWAY_MAX_STREAMS_PER_GRANT', '8']
]
// Flags that take no value: `--flag` alone (the value above is for `--flag=value` and the variable).
const VALUELESS = new Set(['--disable-get-stream'])
const everyFlag = () => EVERY_SETTING.flatMap(([flag, , value]) => VALUELESS.has(flag) ? [flag] : [flag, value])
const ENV_ONLY = ['MCP_GATEWAY_USERNAME', 'MCP_GATEWAY_PASSWORD', 'MCP_GATEWAY_MCP_SCOPE']
// The headers the gateway owns, in the order the error lists them.
const OWNED = ['authorization', 'cookie', 'host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te',
  'trailer', 'proxy-authorization', 'proxy-connection']

const STORE_RULE = '--store (MCP_GATEWAY_STORE): must be memory, redis://[[user]:password@]host[:port][/db], redis-sentinel://[[user]:password@]host[:port][,host[:port]…][/db]#master or redis-cluster://[[user]:password@]host[:port][,host[:port]…], or the same as rediss://, rediss-sentinel://, rediss-cluster:// (TLS), with db a non-negative integer and no query (percent-encode reserved characters in the password)'
const PREFIX_RULE = '--store-prefix (MCP_GATEWAY_STORE_PREFIX): must be 1 to 64 characters of A-Z, a-z, 0-9, :, _, . and -'
const TTL_RULE = '--token-cache-ttl (MCP_GATEWAY_TOKEN_CACHE_TTL): must be an integer from 0 to 60000 (milliseconds)'
const SECRET_REQUIRED = '--secret (MCP_GATEWAY_SECRET): is required with a persistent --store (tokens must survive restarts and work on every replica)'
// A store URL with a password: it must never come back in an error, a warning or the help.
const REDIS = 'redis://:hunter2@redis.example.com:6379/0'

const EXPECTED_SERVER = {
  port: 9000,
  host: '127.0.0.1',
  trustProxy: '10.0.0.0/8',
  logLevel: 'debug',
  shutdownGrace: 3,
  requestTimeout: 15000,
  headersTimeout: 5000,
  keepAliveTimeout: 65000,
  maxConnections: 500,
  metricsPort: 9464,
  metricsHost: '::1'
}
// What a secret given as a flag warns (`ps` shows it), for the runs that give every flag.
const SECRET_FLAG_WARNINGS = [
  '--upstream-client-secret (MCP_GATEWAY_UPSTREAM_CLIENT_SECRET) was given as a flag, which every user of this machine can read in `ps`: prefer MCP_GATEWAY_UPSTREAM_CLIENT_SECRET or MCP_GATEWAY_UPSTREAM_CLIENT_SECRET_FILE',
  '--secret (MCP_GATEWAY_SECRET) was given as a flag, which every user of this machine can read in `ps`: prefer MCP_GATEWAY_SECRET or MCP_GATEWAY_SECRET_FILE'
]
const EXPECTED_GATEWAY = {
  publicUrl: 'https://gw.example.com/base',
  upstreamRs: RS,
  upstreamAs: 'https://github.com/login/oauth',
  upstreamClientId: 'Iv1.abc',
  upstreamClientSecret: 'upstream-client-secret-value',
  upstreamAuthorizeEndpoint: 'https://github.com/login/oauth/authorize',
  upstreamTokenEndpoint: 'https://github.com/login/oauth/access_token',
  upstreamScopes: ['repo', 'read:org'],
  username: 'alice',
  password: 'correct horse battery staple',
  mcpScope: 'tools',
  secrets: [SECRET_A, SECRET_B],
  secretGenerated: false,
  codeTtl: 120,
  flowTtl: 900,
  accessTokenTtl: 1800,
  refreshTokenTtl: 86400,
  clientTtl: 604800,
  refreshGrace: 30,
  upstreamTimeout: 2500,
  allowedOrigins: ['http://localhost:6274', 'https://app.example'],
  upstreamHeaders: { 'x-mcp-toolsets': 'repos,issues' },
  forwardHeaders: ['x-request-id', 'traceparent'],
  disableGetStream: true,
  proxyTimeout: 60000,
  maxBodySize: 1048576,
  store: 'rediss://gateway:s3cret@redis.example.com:6380/2',
  storePrefix: 'gw.prod_1-a:',
  tokenCacheTtl: 1500,
  metricsPath: '/internal/metrics',
  unusedClientTtl: 3600,
  maxUnusedClients: 500,
  maxPendingSignIns: 700,
  rateLimitSignIn: 20,
  rateLimitRegister: 5,
  rateLimitToken: 60,
  loginFailuresPerAddress: 20,
  loginFailuresPerUser: 3,
  maxStreams: 100,
  maxStreamsPerGrant: 8
}

t.test('loadConfig: defaults with only --upstream-rs', async (t) => {
  const { server, gateway, warnings } = load(['--upstream-rs', RS])
  t.same(server, {
    port: 8002,
    host: 'localhost',
    trustProxy: false,
    logLevel: 'info',
    shutdownGrace: 10,
    requestTimeout: 30000,
    headersTimeout: 10000,
    keepAliveTimeout: 72000,
    maxConnections: 4096,
    metricsHost: '127.0.0.1'
  })
  t.equal(server.metricsPort, undefined, 'no metrics listener unless asked')
  t.match(gateway, {
    publicUrl: 'http://localhost:8002',
    upstreamRs: RS,
    upstreamScopes: undefined,
    username: 'gateway_user',
    password: 'gateway_pass',
    mcpScope: 'mcp',
    secretGenerated: true,
    codeTtl: 300,
    flowTtl: 600,
    accessTokenTtl: 3600,
    refreshTokenTtl: 2592000,
    clientTtl: 7776000,
    refreshGrace: 30,
    upstreamTimeout: 10000,
    metricsPath: false,
    unusedClientTtl: 86400,
    maxUnusedClients: 10000,
    maxPendingSignIns: 10000,
    rateLimitSignIn: 60,
    rateLimitRegister: 30,
    rateLimitToken: 120,
    loginFailuresPerAddress: 10,
    loginFailuresPerUser: 5,
    maxStreams: 2048,
    maxStreamsPerGrant: 32
  })
  for (const key of ['upstreamAs', 'upstreamClientId', 'upstreamClientSecret', 'upstreamAuthorizeEndpoint', 'upstreamTokenEndpoint', 'upstreamScopes'] as const) {
    t.ok(key in gateway, `${key} is present`)
    t.equal(gateway[key], undefined, `${key} is undefined`)
  }
  t.same(gateway.allowedOrigins, [])
  t.same(gateway.upstreamHeaders, {})
  t.same(gateway.forwardHeaders, [])
  t.equal(gateway.disableGetStream, false)
  t.equal(gateway.proxyTimeout, 300000)
  t.equal(gateway.maxBodySize, 16777216)
  t.equal(gateway.store, 'memory')
  t.equal(gateway.storePrefix, 'mcp-gateway:')
  t.equal(gateway.tokenCacheTtl, 5000)
  t.equal(gateway.secrets.length, 1)
  t.ok((gateway.secrets[0] as string).length >= 32, 'the generated secret is long enough')
  t.equal(warnings.length, 2, 'default credentials and generated secret')
})

t.test('loadConfig: every flag is read', async (t) => {
  const argv = everyFlag()
  const { server, gateway, warnings } = load(argv, { ...CREDS, MCP_GATEWAY_MCP_SCOPE: 'tools' })
  t.same(server, EXPECTED_SERVER)
  t.same(gateway, EXPECTED_GATEWAY)
  t.same(warnings, SECRET_FLAG_WARNINGS)
})

t.test('loadConfig: every flag also accepts --flag=value', async (t) => {
  const argv = EVERY_SETTING.map(([flag, , value]) => `${flag}=${value}`)
  const { server, gateway } = load(argv, { ...CREDS, MCP_GATEWAY_MCP_SCOPE: 'tools' })
  t.same(server, EXPECTED_SERVER)
  t.same(gateway, EXPECTED_GATEWAY)
})

t.test('loadConfig: every environment variable is read', async (t) => {
  const env = Object.fromEntries(EVERY_SETTING.map(([, name, value]) => [name, value]))
  const { server, gateway, warnings } = load([], { ...env, ...CREDS, MCP_GATEWAY_MCP_SCOPE: 'tools' })
  t.same(server, EXPECTED_SERVER)
  t.same(gateway, EXPECTED_GATEWAY)
  t.same(warnings, [])
})

t.test('loadConfig: flags beat environment variables, which beat defaults', async (t) => {
  const env = { MCP_GATEWAY_UPSTREAM_RS: 'https://env.example.com/mcp', MCP_GATEWAY_PORT: '9001', MCP_GATEWAY_CODE_TTL: '60' }
  const { server, gateway } = load(['--upstream-rs', RS, '--port', '9002'], env)
  t.equal(gateway.upstreamRs, RS, 'flag over env')
  t.equal(server.port, 9002, 'flag over env')
  t.equal(gateway.codeTtl, 60, 'env over default')
  t.equal(gateway.flowTtl, 600, 'default')
})

t.test('loadConfig: a repeated flag takes its last value', async (t) => {
  t.equal(load(['--upstream-rs', RS, '--port', '1', '--port', '2']).server.port, 2)
})

t.test('loadConfig: an empty environment variable counts as unset', async (t) => {
  const { server, gateway } = load([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_PORT: '', MCP_GATEWAY_UPSTREAM_AS: '', MCP_GATEWAY_SECRET: '' })
  t.equal(server.port, 8002)
  t.equal(gateway.upstreamAs, undefined)
  t.equal(gateway.secretGenerated, true)
})

t.test('loadConfig: --help and -h answer with the help text, even next to bad flags', async (t) => {
  t.same(loadConfig(['--help'], {}), { help: helpText() })
  t.same(loadConfig(['-h'], {}), { help: helpText() })
  t.same(loadConfig(['--port', 'nope', '--bogus', '-h'], {}), { help: helpText() })
})

t.test('helpText: lists every flag, every variable and the defaults', async (t) => {
  const help = helpText()
  for (const [flag, name] of EVERY_SETTING) {
    const line = help.split('\n').find((l) => l.trimStart().startsWith(`${flag} `))
    t.ok(line, `${flag} is listed`)
    t.match(line, name, `${flag} is listed with ${name}`)
  }
  for (const name of ENV_ONLY) t.match(help, name, `${name} is listed`)
  for (const text of ['8002', 'localhost', 'http://localhost:<port>', 'gateway_user', 'gateway_pass', '[default: mcp]', '300', '600', '3600', '2592000', '7776000', '10000', '-h, --help',
    '[default: 300000]', '[default: 16777216 (16 MiB)]', '[default: false]', '[default: memory]', '[default: mcp-gateway:]', '[default: 5000]',
    'required with a redis --store', 'rediss://', '0 = no cache', 'public URL\'s own origin always is', 'repeat the flag', '; or newlines', 'Mcp-*']) {
    t.match(help, text, `mentions ${text}`)
  }
  t.match(help, /^ {2}--disable-get-stream {2,}MCP_GATEWAY_DISABLE_GET_STREAM/m, 'a flag without a value has no placeholder')
  t.match(help, /^ {2}--upstream-header <header> +MCP_GATEWAY_UPSTREAM_HEADERS/m)
  t.match(help, /ps/, 'says why credentials are environment-only')
  t.notMatch(help, /--password|--username|--mcp-scope/, 'no flags for environment-only settings')
})

t.test('loadConfig: every bad value is reported in one ConfigError', async (t) => {
  const error = configError(() => loadConfig([
    '--port', '70000',
    '--host', 'has space',
    '--trust-proxy', '1.2.3.4/99',
    '--log-level', 'loud',
    '--shutdown-grace', '3601',
    '--public-url', 'https://gw.example.com/?x=1',
    '--upstream-as', 'ftp://example.com',
    '--upstream-authorize-endpoint', 'not a url',
    '--upstream-token-endpoint', 'https://x/#frag',
    '--upstream-scopes', 'repo "quoted"',
    '--code-ttl', '601',
    '--flow-ttl', '0',
    '--access-token-ttl', '12.5',
    '--refresh-token-ttl', '0x10',
    '--client-ttl', '1e3',
    '--refresh-grace', '-1',
    '--upstream-timeout', '2147483648',
    '--allowed-origins', 'https://app.example/',
    '--upstream-header', 'Host: evil.example',
    '--forward-headers', 'x/y',
    '--proxy-timeout', '0',
    '--max-body-size', '1023',
    '--store', 'redis://:hunter2@redis.example.com/main',
    '--store-prefix', 'has space',
    '--token-cache-ttl', '60001'
  ], { MCP_GATEWAY_MCP_SCOPE: 'two words', MCP_GATEWAY_DISABLE_GET_STREAM: 'yes' }))
  t.same(error.problems, [
    '--port (MCP_GATEWAY_PORT): must be an integer from 0 to 65535',
    '--host (MCP_GATEWAY_HOST): must be a host name or IP address',
    '--trust-proxy (MCP_GATEWAY_TRUST_PROXY): must be true, false, or comma-separated IP addresses/CIDR ranges',
    '--log-level (MCP_GATEWAY_LOG_LEVEL): must be one of fatal, error, warn, info, debug, trace, silent',
    '--shutdown-grace (MCP_GATEWAY_SHUTDOWN_GRACE): must be an integer from 0 to 3600 (seconds)',
    '--public-url (MCP_GATEWAY_PUBLIC_URL): must be an http(s) URL without a query or fragment',
    '--upstream-rs (MCP_GATEWAY_UPSTREAM_RS): is required',
    '--upstream-as (MCP_GATEWAY_UPSTREAM_AS): must be an http(s) URL without a fragment',
    '--upstream-authorize-endpoint (MCP_GATEWAY_UPSTREAM_AUTHORIZE_ENDPOINT): must be an http(s) URL without a fragment',
    '--upstream-token-endpoint (MCP_GATEWAY_UPSTREAM_TOKEN_ENDPOINT): must be an http(s) URL without a fragment',
    '--upstream-scopes (MCP_GATEWAY_UPSTREAM_SCOPES): must be scope names separated by spaces or commas',
    'MCP_GATEWAY_MCP_SCOPE: must be one scope name (printable ASCII without spaces, quotes or backslashes)',
    SECRET_REQUIRED,
    '--code-ttl (MCP_GATEWAY_CODE_TTL): must be an integer from 1 to 600 (seconds)',
    '--flow-ttl (MCP_GATEWAY_FLOW_TTL): must be an integer from 1 to 2147483647 (seconds)',
    '--access-token-ttl (MCP_GATEWAY_ACCESS_TOKEN_TTL): must be an integer from 1 to 2147483647 (seconds)',
    '--refresh-token-ttl (MCP_GATEWAY_REFRESH_TOKEN_TTL): must be an integer from 1 to 2147483647 (seconds)',
    '--client-ttl (MCP_GATEWAY_CLIENT_TTL): must be an integer from 1 to 2147483647 (seconds)',
    '--refresh-grace (MCP_GATEWAY_REFRESH_GRACE): must be an integer from 0 to 2147483647 (seconds)',
    '--upstream-timeout (MCP_GATEWAY_UPSTREAM_TIMEOUT): must be an integer from 1 to 2147483647 (milliseconds)',
    '--allowed-origins (MCP_GATEWAY_ALLOWED_ORIGINS): must be at most 64 comma-separated origins, each http(s)://host[:port] without a path, query, fragment or trailing slash',
    `--upstream-header (MCP_GATEWAY_UPSTREAM_HEADERS): must not pin host: the gateway owns ${OWNED.join(', ')}`,
    '--forward-headers (MCP_GATEWAY_FORWARD_HEADERS): must be at most 64 comma-separated header names (RFC 9110 tokens)',
    '--disable-get-stream (MCP_GATEWAY_DISABLE_GET_STREAM): must be true, false, 1 or 0',
    '--proxy-timeout (MCP_GATEWAY_PROXY_TIMEOUT): must be an integer from 1 to 2147483647 (milliseconds)',
    '--max-body-size (MCP_GATEWAY_MAX_BODY_SIZE): must be an integer from 1024 to 1073741824 (bytes)',
    STORE_RULE,
    PREFIX_RULE,
    TTL_RULE
  ])
  t.notMatch(error.message, 'evil.example', 'a pinned value is never repeated')
  t.notMatch(error.message, /hunter2|redis\.example|main/, 'nor a store URL')
  t.equal(error.message, error.problems.join('\n'), 'one line per bad field')
  t.equal(error.name, 'ConfigError')
  t.type(error, Error)
})

t.test('loadConfig: bad values from the environment are named by flag and variable', async (t) => {
  const error = configError(() => loadConfig([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_PORT: 'abc', MCP_GATEWAY_USERNAME: 'x'.repeat(257) }))
  t.same(error.problems, [
    '--port (MCP_GATEWAY_PORT): must be an integer from 0 to 65535',
    'MCP_GATEWAY_USERNAME: must be 1 to 256 characters'
  ])
})

t.test('loadConfig: integers are converted strictly', async (t) => {
  const ok = load(['--upstream-rs', RS, '--port', '0', '--refresh-grace', '0', '--code-ttl', ' 600 '])
  t.equal(ok.server.port, 0)
  t.equal(ok.gateway.refreshGrace, 0)
  t.equal(ok.gateway.codeTtl, 600, 'surrounding spaces are tolerated')
  for (const bad of ['12.5', '0x10', '1e3', 'true', '-0', '+1', '99999999999999999999']) {
    const error = configError(() => loadConfig(['--upstream-rs', RS, '--flow-ttl', bad], {}))
    t.same(error.problems, ['--flow-ttl (MCP_GATEWAY_FLOW_TTL): must be an integer from 1 to 2147483647 (seconds)'], bad)
  }
})

t.test('loadConfig: a flag without a value is reported', async (t) => {
  const error = configError(() => loadConfig(['--upstream-rs', RS, '--port'], {}))
  t.same(error.problems, ['--port (MCP_GATEWAY_PORT): needs a value'])
})

t.test('loadConfig: unknown flags and stray arguments are errors, listed before the settings', async (t) => {
  const error = configError(() => loadConfig(['--upstream-rs', RS, '--bogus', '-x', 'stray', '--port', 'abc'], {}))
  t.same(error.problems, [
    '--bogus is not a known flag (see --help)',
    '-x is not a known flag (see --help)',
    'unexpected argument #5 (not shown): every setting is a --flag, see --help',
    '--port (MCP_GATEWAY_PORT): must be an integer from 0 to 65535'
  ])
})

t.test('loadConfig: --username and --password are refused, pointing at the environment', async (t) => {
  const error = configError(() => loadConfig(['--upstream-rs', RS, '--username', 'bob', '--password=hunter2-secret'], {}))
  t.same(error.problems, [
    '--username is not a flag (it would show in `ps`): set MCP_GATEWAY_USERNAME instead',
    'unexpected argument #4 (not shown): every setting is a --flag, see --help',
    '--password is not a flag (it would show in `ps`): set MCP_GATEWAY_PASSWORD instead'
  ])
  t.notMatch(error.message, 'hunter2-secret')
})

t.test('loadConfig: secret and password values never appear in the error', async (t) => {
  const shortSecret = 'short-but-secret-value'
  const longPassword = 'p'.repeat(1025)
  const clientSecret = 'c'.repeat(2049)
  const error = configError(() => loadConfig(
    ['--upstream-rs', RS, '--secret', `${SECRET_A},${shortSecret}`, '--upstream-client-secret', clientSecret, 'positional-secret-value'],
    { MCP_GATEWAY_USERNAME: 'alice', MCP_GATEWAY_PASSWORD: longPassword }))
  t.same(error.problems, [
    'unexpected argument #7 (not shown): every setting is a --flag, see --help',
    '--upstream-client-secret (MCP_GATEWAY_UPSTREAM_CLIENT_SECRET): must be 1 to 2048 characters',
    'MCP_GATEWAY_PASSWORD: must be 1 to 1024 characters',
    '--secret (MCP_GATEWAY_SECRET): must be one or more comma-separated secrets of at least 32 characters each'
  ])
  for (const value of [shortSecret, SECRET_A, 'ppppp', 'ccccc', 'positional-secret-value']) t.notMatch(error.message, value)
})

t.test('loadConfig: the default credentials are refused on a non-loopback host', async (t) => {
  for (const host of ['0.0.0.0', '::', 'gw.example.com', '192.168.1.10', '::ffff:127.0.0.1']) {
    const error = configError(() => loadConfig(['--upstream-rs', RS, '--host', host], {}))
    t.equal(error.problems.length, 1, host)
    t.match(error.message, /^MCP_GATEWAY_PASSWORD: .*refused on host .*set MCP_GATEWAY_USERNAME and MCP_GATEWAY_PASSWORD$/, host)
  }
  // Only the password is a secret: a custom username does not make the published password safe.
  const error = configError(() => loadConfig(['--upstream-rs', RS, '--host', '0.0.0.0'], { MCP_GATEWAY_USERNAME: 'alice' }))
  t.match(error.message, /refused/)
})

t.test('loadConfig: the default credentials are accepted on loopback, with a warning', async (t) => {
  for (const host of ['localhost', 'LOCALHOST', '127.0.0.1', '127.1.2.3', '::1', '[::1]', '0:0:0:0:0:0:0:1']) {
    const { warnings } = load(['--upstream-rs', RS, '--host', host], { MCP_GATEWAY_SECRET: SECRET_A })
    t.equal(warnings.length, 1, host)
    t.match(warnings[0], /published defaults \(gateway_user\/gateway_pass\)/, host)
  }
})

t.test('loadConfig: own credentials on 0.0.0.0 start, warning only about the public URL', async (t) => {
  const { server, gateway, warnings } = load(['--upstream-rs', RS, '--host', '0.0.0.0'], { ...CREDS, MCP_GATEWAY_SECRET: SECRET_A })
  t.equal(server.host, '0.0.0.0')
  t.equal(gateway.username, 'alice')
  t.equal(gateway.publicUrl, 'http://localhost:8002')
  t.same(warnings, ['--public-url (MCP_GATEWAY_PUBLIC_URL) is not set, so clients are sent to http://localhost:8002; set it unless that is how they reach this gateway'])
  t.same(load(['--upstream-rs', RS, '--host', '0.0.0.0', '--public-url', 'https://gw.example.com'], { ...CREDS, MCP_GATEWAY_SECRET: SECRET_A }).warnings, [])
})

t.test('loadConfig: a bad host is reported alone, not as a credentials problem', async (t) => {
  const error = configError(() => loadConfig(['--upstream-rs', RS, '--host', 'a/b'], {}))
  t.same(error.problems, ['--host (MCP_GATEWAY_HOST): must be a host name or IP address'])
})

t.test('loadConfig: a generated secret is announced; configured secrets rotate in order', async (t) => {
  const generated = load(['--upstream-rs', RS])
  t.equal(generated.gateway.secretGenerated, true)
  t.ok(generated.warnings.some((w) => /no --secret \(MCP_GATEWAY_SECRET\) set: .*will not survive a restart/.test(w)))
  t.not(load(['--upstream-rs', RS]).gateway.secrets[0], generated.gateway.secrets[0], 'random each time')

  const configured = load(['--upstream-rs', RS, '--secret', ` ${SECRET_B} , ${SECRET_A},`])
  t.same(configured.gateway.secrets, [SECRET_B, SECRET_A], 'trimmed, empty entries dropped, order kept')
  t.equal(configured.gateway.secretGenerated, false)
  t.notOk(configured.warnings.some((w) => /secret (was )?generated|no --secret/.test(w)))

  const none = configError(() => loadConfig(['--upstream-rs', RS, '--secret', ' , '], {}))
  t.same(none.problems, ['--secret (MCP_GATEWAY_SECRET): must be one or more comma-separated secrets of at least 32 characters each'])
})

t.test('loadConfig: upstream scopes split on spaces and commas', async (t) => {
  const cases: Array<[string, string[] | undefined]> = [
    ['repo read:org', ['repo', 'read:org']],
    ['repo,read:org', ['repo', 'read:org']],
    [' repo, read:org  user ', ['repo', 'read:org', 'user']],
    [' , ', undefined]
  ]
  for (const [input, expected] of cases) {
    t.same(load(['--upstream-rs', RS, '--upstream-scopes', input]).gateway.upstreamScopes, expected, JSON.stringify(input))
  }
})

t.test('loadConfig: both upstream endpoints without scopes warn about GitHub read-only access', async (t) => {
  const endpoints = ['--upstream-authorize-endpoint', 'https://github.com/login/oauth/authorize', '--upstream-token-endpoint', 'https://github.com/login/oauth/access_token']
  const bare = load(['--upstream-rs', RS, '--secret', SECRET_A, ...endpoints])
  t.ok(bare.warnings.some((w) => /both upstream endpoints are set but --upstream-scopes \(MCP_GATEWAY_UPSTREAM_SCOPES\) is not/.test(w)))
  const scoped = load(['--upstream-rs', RS, '--secret', SECRET_A, ...endpoints, '--upstream-scopes', 'repo'])
  t.notOk(scoped.warnings.some((w) => /upstream endpoints/.test(w)))
  const one = load(['--upstream-rs', RS, '--secret', SECRET_A, ...endpoints.slice(0, 2)])
  t.notOk(one.warnings.some((w) => /upstream endpoints/.test(w)), 'one endpoint: discovery still runs')
})

t.test('loadConfig: an upstream client secret without a client id warns', async (t) => {
  const { warnings } = load(['--upstream-rs', RS, '--secret', SECRET_A, '--upstream-client-secret', 'abc'])
  t.ok(warnings.some((w) => /--upstream-client-secret \(MCP_GATEWAY_UPSTREAM_CLIENT_SECRET\) is ignored without --upstream-client-id/.test(w)))
  t.notMatch(warnings.join('\n'), /abc/, 'the value is not echoed')
})

t.test('loadConfig: the default public URL follows the port', async (t) => {
  t.equal(load(['--upstream-rs', RS, '--port', '9100']).gateway.publicUrl, 'http://localhost:9100')
  t.equal(load(['--upstream-rs', RS], { MCP_GATEWAY_PORT: '9200' }).gateway.publicUrl, 'http://localhost:9200')
  t.equal(load(['--upstream-rs', RS, '--port', '9100', '--public-url', 'https://gw.example.com'], CREDS).gateway.publicUrl, 'https://gw.example.com')
  const error = configError(() => loadConfig(['--upstream-rs', RS, '--port', 'x'], {}))
  t.same(error.problems, ['--port (MCP_GATEWAY_PORT): must be an integer from 0 to 65535'], 'no second error about the derived URL')
})

t.test('loadConfig: trailing slashes are stripped from the public and upstream MCP URLs only', async (t) => {
  const { gateway } = load([
    '--public-url', 'https://gw.example.com/base//',
    '--upstream-rs', 'https://mcp.example.com/mcp/?tenant=1',
    '--upstream-as', 'https://as.example.com/'
  ], CREDS)
  t.equal(gateway.publicUrl, 'https://gw.example.com/base')
  t.equal(gateway.upstreamRs, 'https://mcp.example.com/mcp?tenant=1', 'before the query')
  t.equal(gateway.upstreamAs, 'https://as.example.com/', 'issuer kept as configured')
  t.equal(load(['--upstream-rs', 'https://mcp.example.com/']).gateway.upstreamRs, 'https://mcp.example.com')
})

t.test('loadConfig: URLs must be absolute http(s) URLs', async (t) => {
  for (const bad of ['http://', 'mailto:a@b.c', 'example.com/mcp', 'https://a b/', 'https://x/#f']) {
    const error = configError(() => loadConfig(['--upstream-rs', bad], {}))
    t.same(error.problems, ['--upstream-rs (MCP_GATEWAY_UPSTREAM_RS): must be an http(s) URL without a fragment'], bad)
  }
  t.equal(load(['--upstream-rs', 'HTTPS://MCP.example.com/x']).gateway.upstreamRs, 'HTTPS://MCP.example.com/x')
})

t.test('loadConfig: a plain-http public URL on a real host warns', async (t) => {
  const { warnings } = load(['--upstream-rs', RS, '--public-url', 'http://gw.example.com'], CREDS)
  t.ok(warnings.some((w) => /--public-url \(MCP_GATEWAY_PUBLIC_URL\) is plain http on a non-loopback host/.test(w)))
  for (const url of ['http://127.0.0.1:8002', 'http://[::1]:8002', 'https://gw.example.com']) {
    t.notOk(load(['--upstream-rs', RS, '--public-url', url], CREDS).warnings.some((w) => /plain http/.test(w)), url)
  }
})

t.test('loadConfig: trust proxy', async (t) => {
  const cases: Array<[string, boolean | string]> = [
    ['true', true],
    ['TRUE', true],
    ['false', false],
    ['127.0.0.1', '127.0.0.1'],
    ['10.0.0.0/8, 192.168.0.0/16', '10.0.0.0/8,192.168.0.0/16'],
    ['fd00::/8,::1', 'fd00::/8,::1'],
    ['10.0.0.0/255.0.0.0', '10.0.0.0/255.0.0.0'],
    ['loopback,uniquelocal,linklocal', 'loopback,uniquelocal,linklocal']
  ]
  for (const [input, expected] of cases) {
    t.equal(load(['--upstream-rs', RS, '--trust-proxy', input]).server.trustProxy, expected, input)
  }
  for (const bad of ['', ',', 'yes', '1', '10.0.0.0/33', 'fd00::/129', '10.0.0.0/8/8', '::1/255.0.0.0', 'example.com']) {
    const error = configError(() => loadConfig(['--upstream-rs', RS, `--trust-proxy=${bad}`], {}))
    t.same(error.problems, ['--trust-proxy (MCP_GATEWAY_TRUST_PROXY): must be true, false, or comma-separated IP addresses/CIDR ranges'], bad)
  }
})

t.test('loadConfig: every log level', async (t) => {
  for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) {
    t.equal(load(['--upstream-rs', RS, '--log-level', level]).server.logLevel, level)
  }
})

const ORIGINS_RULE = '--allowed-origins (MCP_GATEWAY_ALLOWED_ORIGINS): must be at most 64 comma-separated origins, each http(s)://host[:port] without a path, query, fragment or trailing slash'
const HEADERS_RULE = '--upstream-header (MCP_GATEWAY_UPSTREAM_HEADERS): must be at most 64 "Name: value" headers (one per flag, separated by ; or newlines in the variable): names RFC 9110 tokens, values non-empty visible ASCII with spaces or tabs only inside'
const FORWARD_RULE = '--forward-headers (MCP_GATEWAY_FORWARD_HEADERS): must be at most 64 comma-separated header names (RFC 9110 tokens)'
const BOOLEAN_RULE = '--disable-get-stream (MCP_GATEWAY_DISABLE_GET_STREAM): must be true, false, 1 or 0'
const PLUGIN = { publicUrl: 'https://gw.example.com', upstreamRs: RS, username: 'alice', password: 'correct horse battery staple' }

t.test('loadConfig: allowed origins are normalised serialized origins', async (t) => {
  const cases: Array<[string, string[]]> = [
    ['http://localhost:6274', ['http://localhost:6274']],
    ['HTTP://LocalHost:6274, HTTPS://App.Example', ['http://localhost:6274', 'https://app.example']],
    ['https://app.example:443,http://app.example:80', ['https://app.example', 'http://app.example']],
    ['https://app.example:8443 http://127.0.0.1:3000', ['https://app.example:8443', 'http://127.0.0.1:3000']],
    ['http://[::1]:6274,http://[0:0:0:0:0:0:0:1]:6274', ['http://[::1]:6274']],
    ['https://bücher.example', ['https://xn--bcher-kva.example']],
    ['https://a.example,https://A.example:443,', ['https://a.example']],
    [' , ', []]
  ]
  for (const [input, expected] of cases) {
    t.same(load(['--upstream-rs', RS, '--allowed-origins', input]).gateway.allowedOrigins, expected, input)
  }
  t.same(load([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_ALLOWED_ORIGINS: 'https://app.example' }).gateway.allowedOrigins, ['https://app.example'], 'from the environment')
  t.same(load(['--upstream-rs', RS, '--allowed-origins', 'https://flag.example'], { MCP_GATEWAY_ALLOWED_ORIGINS: 'https://env.example' }).gateway.allowedOrigins,
    ['https://flag.example'], 'the flag wins')
})

t.test('loadConfig: an allowed origin with anything but scheme, host and port is refused, unnamed', async (t) => {
  const bad = [
    'https://app.example/', 'https://app.example/path', 'https://app.example?x=1', 'https://app.example#top', 'https://app.example\\x',
    'https://user:pw@app.example', 'ftp://app.example', 'app.example', '*', 'null', 'file:///etc', 'http://', 'https://*.example.com',
    'https://app.example.', 'https://app.example:99999', 'https://app.example:port', 'https://app .example', 'https://app.example,ws://x.example'
  ]
  for (const value of bad) {
    const error = configError(() => loadConfig(['--upstream-rs', RS, '--allowed-origins', value], {}))
    t.same(error.problems, [ORIGINS_RULE], value)
  }
  const many = Array.from({ length: 65 }, (_, i) => `https://o${i}.example`).join(',')
  t.same(configError(() => loadConfig(['--upstream-rs', RS, '--allowed-origins', many], {})).problems, [ORIGINS_RULE], 'at most 64')
  t.same(load(['--upstream-rs', RS, '--allowed-origins', many.replace(/,https:\/\/o64\.example$/, '')]).gateway.allowedOrigins.length, 64)
  const error = configError(() => loadConfig([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_ALLOWED_ORIGINS: 'https://private-name.example/secret-path' }))
  t.same(error.problems, [ORIGINS_RULE], 'named by flag and variable')
  t.notMatch(error.message, /private-name|secret-path/, 'the value is not repeated')
})

t.test('parseGatewayOptions: allowedOrigins as a string or an array', async (t) => {
  t.same(parseGatewayOptions({ ...PLUGIN, allowedOrigins: 'https://a.example, HTTPS://B.example:443' }).options.allowedOrigins, ['https://a.example', 'https://b.example'])
  t.same(parseGatewayOptions({ ...PLUGIN, allowedOrigins: ['http://localhost:6274', ' https://a.example ', ''] }).options.allowedOrigins,
    ['http://localhost:6274', 'https://a.example'])
  t.same(parseGatewayOptions({ ...PLUGIN, allowedOrigins: [] }).options.allowedOrigins, [])
  for (const bad of [['https://a.example/'], [{}], { origin: 'https://a.example' }, Array.from({ length: 65 }, () => 'https://a.example')]) {
    const rule = 'allowedOrigins: must be at most 64 comma-separated origins, each http(s)://host[:port] without a path, query, fragment or trailing slash'
    t.same(configError(() => parseGatewayOptions({ ...PLUGIN, allowedOrigins: bad })).problems, [rule], JSON.stringify(bad))
  }
})

t.test('loadConfig: pinned upstream headers: a repeatable flag, or ; or newlines in the variable', async (t) => {
  const flags = load(['--upstream-rs', RS, '--upstream-header', 'X-MCP-Toolsets: repos,issues', '--upstream-header=X-MCP-Readonly:true',
    '--upstream-header', '  X-Tabbed:\t a \t b\t'])
  t.same(flags.gateway.upstreamHeaders, { 'x-mcp-toolsets': 'repos,issues', 'x-mcp-readonly': 'true', 'x-tabbed': 'a \t b' }, 'names lowercased, values trimmed')
  const env = load([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_UPSTREAM_HEADERS: 'X-MCP-Toolsets: repos,issues; X-MCP-Readonly: true\r\nX-Third: 3\n;\n' })
  t.same(env.gateway.upstreamHeaders, { 'x-mcp-toolsets': 'repos,issues', 'x-mcp-readonly': 'true', 'x-third': '3' })
  const both = load(['--upstream-rs', RS, '--upstream-header', 'X-Flag: 1'], { MCP_GATEWAY_UPSTREAM_HEADERS: 'X-Env: 2' })
  t.same(both.gateway.upstreamHeaders, { 'x-flag': '1' }, 'flags replace the variable, they are not merged')
  t.same(load(['--upstream-rs', RS, '--upstream-header', 'X-Semi: a;b=c']).gateway.upstreamHeaders, { 'x-semi': 'a;b=c' }, 'a flag holds one header, ; included')
  t.same(load(['--upstream-rs', RS, '--upstream-header', 'X-Colon: a:b']).gateway.upstreamHeaders, { 'x-colon': 'a:b' }, 'split at the first colon')
  t.same(load(['--upstream-rs', RS, '--upstream-header=']).gateway.upstreamHeaders, {}, 'an empty flag adds nothing')
  t.same(load(['--upstream-rs', RS, '--upstream-header', "!#$%&'*+-.^_`|~09azAZ: ~"]).gateway.upstreamHeaders, { "!#$%&'*+-.^_`|~09azaz": '~' }, 'every tchar')
  const proto = load(['--upstream-rs', RS, '--upstream-header', '__proto__: x']).gateway.upstreamHeaders
  t.ok(Object.hasOwn(proto, '__proto__'), 'a __proto__ header is a plain key')
  t.equal(Object.getPrototypeOf(proto), Object.prototype)
})

t.test('loadConfig: --upstream-header without a value is reported', async (t) => {
  for (const argv of [['--upstream-header'], ['--upstream-header', 'X-A: 1', '--upstream-header']]) {
    t.same(configError(() => loadConfig(['--upstream-rs', RS, ...argv], {})).problems, ['--upstream-header (MCP_GATEWAY_UPSTREAM_HEADERS): needs a value'], argv.join(' '))
  }
})

t.test('loadConfig: malformed pinned headers are refused without repeating them', async (t) => {
  const bad = [
    'no-colon-secret', ': secretvalue', 'X A: secretvalue', 'X-Ä: secretvalue', 'X-(A): secretvalue', 'X-Empty:', 'X-Blank:  \t ',
    'X-Bin: secret\u0001value', 'X-Del: secret\u007fvalue', 'X-Utf: secretvalüe', 'X-Nul: secret\u0000value'
  ]
  for (const value of bad) {
    const error = configError(() => loadConfig(['--upstream-rs', RS, '--upstream-header', value], {}))
    t.same(error.problems, [HEADERS_RULE], JSON.stringify(value))
    t.notMatch(error.message, 'secret', 'not repeated')
  }
  const error = configError(() => loadConfig(['--upstream-rs', RS, '--upstream-header', 'X-Ok: fine', '--upstream-header', 'X-Api-Key: hunter2\u0007'], {}))
  t.same(error.problems, [HEADERS_RULE], 'one bad header among good ones')
  t.notMatch(error.message, /hunter2|fine/)
  const many = Array.from({ length: 65 }, (_, i) => `X-H${i}: ${i}`)
  t.same(configError(() => loadConfig([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_UPSTREAM_HEADERS: many.join(';') })).problems, [HEADERS_RULE], 'at most 64')
  t.equal(Object.keys(load([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_UPSTREAM_HEADERS: many.slice(1).join(';') }).gateway.upstreamHeaders).length, 64)
})

t.test('loadConfig: the headers the gateway owns cannot be pinned, named but their value never shown', async (t) => {
  for (const name of OWNED) {
    const mixed = name.toUpperCase()
    const error = configError(() => loadConfig(['--upstream-rs', RS, '--upstream-header', `${mixed}: pinned-secret-value`], {}))
    t.same(error.problems, [`--upstream-header (MCP_GATEWAY_UPSTREAM_HEADERS): must not pin ${name}: the gateway owns ${OWNED.join(', ')}`], name)
    t.notMatch(error.message, 'pinned-secret-value')
  }
})

t.test('loadConfig: a header pinned twice is refused, whatever its case', async (t) => {
  const error = configError(() => loadConfig([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_UPSTREAM_HEADERS: 'X-Key: first-secret; x-KEY: second-secret' }))
  t.same(error.problems, ['--upstream-header (MCP_GATEWAY_UPSTREAM_HEADERS): must not set x-key twice'])
  t.notMatch(error.message, /first-secret|second-secret/)
})

t.test('parseGatewayOptions: upstreamHeaders as a record, strings, or one string', async (t) => {
  const expected = { 'x-mcp-toolsets': 'repos,issues', 'x-mcp-readonly': 'true' }
  for (const form of [
    { 'X-MCP-Toolsets': 'repos,issues', ' X-MCP-Readonly ': ' true ' },
    ['X-MCP-Toolsets: repos,issues', 'X-MCP-Readonly: true'],
    'X-MCP-Toolsets: repos,issues\nX-MCP-Readonly: true'
  ]) {
    t.same(parseGatewayOptions({ ...PLUGIN, upstreamHeaders: form }).options.upstreamHeaders, expected, JSON.stringify(form))
  }
  t.same(parseGatewayOptions({ ...PLUGIN, upstreamHeaders: { 'X-Number': 42 } }).options.upstreamHeaders, { 'x-number': '42' }, 'numbers are converted')
  const rule = 'upstreamHeaders: must be at most 64 "Name: value" headers (one per flag, separated by ; or newlines in the variable): names RFC 9110 tokens, values non-empty visible ASCII with spaces or tabs only inside'
  for (const bad of [
    { 'X-Split': 'secret\r\nInjected: 1' },
    { 'X-Lf': 'secret\n' },
    { 'Bad Name': 'secret' },
    { 'X-Empty': '' },
    { 'X-Nested': { secret: 1 } },
    [{ secret: 1 }],
    Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`X-H${i}`, 'secret']))
  ]) {
    const error = configError(() => parseGatewayOptions({ ...PLUGIN, upstreamHeaders: bad }))
    t.same(error.problems, [rule], JSON.stringify(bad))
    t.notMatch(error.message, 'secret')
  }
  t.same(configError(() => parseGatewayOptions({ ...PLUGIN, upstreamHeaders: { Cookie: 'session=secret' } })).problems,
    [`upstreamHeaders: must not pin cookie: the gateway owns ${OWNED.join(', ')}`])
  t.same(configError(() => parseGatewayOptions({ ...PLUGIN, upstreamHeaders: { 'X-A': '1', 'x-a': '2' } })).problems, ['upstreamHeaders: must not set x-a twice'])
})

t.test('loadConfig: forwarded client headers', async (t) => {
  const cases: Array<[string, string[]]> = [
    ['X-Request-Id', ['x-request-id']],
    ['X-Request-Id, traceparent,TraceState', ['x-request-id', 'traceparent', 'tracestate']],
    ['x-a,X-A x-b', ['x-a', 'x-b']],
    ['Mcp-Session-Id,Accept', ['mcp-session-id', 'accept']],
    [' , ', []]
  ]
  for (const [input, expected] of cases) {
    t.same(load(['--upstream-rs', RS, '--forward-headers', input]).gateway.forwardHeaders, expected, input)
  }
  t.same(load([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_FORWARD_HEADERS: 'X-Tenant' }).gateway.forwardHeaders, ['x-tenant'], 'from the environment')
  for (const bad of ['X-A:', 'a/b', 'X-Ä', '"quoted"', 'x;y', Array.from({ length: 65 }, (_, i) => `x-${i}`).join(',')]) {
    t.same(configError(() => loadConfig(['--upstream-rs', RS, '--forward-headers', bad], {})).problems, [FORWARD_RULE], bad.slice(0, 20))
  }
  t.notMatch(configError(() => loadConfig(['--upstream-rs', RS, '--forward-headers', 'private-name/x'], {})).message, 'private-name')
  for (const name of OWNED) {
    const error = configError(() => loadConfig(['--upstream-rs', RS, '--forward-headers', `X-Ok,${name.toUpperCase()}`], {}))
    t.same(error.problems, [`--forward-headers (MCP_GATEWAY_FORWARD_HEADERS): must not forward ${name}: the gateway owns ${OWNED.join(', ')}`], name)
  }
})

t.test('parseGatewayOptions: forwardHeaders as a string or an array', async (t) => {
  t.same(parseGatewayOptions({ ...PLUGIN, forwardHeaders: 'X-A,X-B' }).options.forwardHeaders, ['x-a', 'x-b'])
  t.same(parseGatewayOptions({ ...PLUGIN, forwardHeaders: ['X-A', ' X-B '] }).options.forwardHeaders, ['x-a', 'x-b'])
  const rule = 'forwardHeaders: must be at most 64 comma-separated header names (RFC 9110 tokens)'
  for (const bad of [['X A:'], [{}], { name: 'x' }]) {
    t.same(configError(() => parseGatewayOptions({ ...PLUGIN, forwardHeaders: bad })).problems, [rule], JSON.stringify(bad))
  }
  t.same(configError(() => parseGatewayOptions({ ...PLUGIN, forwardHeaders: ['Authorization'] })).problems,
    [`forwardHeaders: must not forward authorization: the gateway owns ${OWNED.join(', ')}`])
})

t.test('loadConfig: --disable-get-stream is a flag without a value; the variable takes true/false/1/0', async (t) => {
  t.equal(load(['--upstream-rs', RS, '--disable-get-stream']).gateway.disableGetStream, true)
  t.equal(load(['--upstream-rs', RS, '--disable-get-stream'], { MCP_GATEWAY_DISABLE_GET_STREAM: 'false' }).gateway.disableGetStream, true, 'the flag wins')
  for (const [value, expected] of [['true', true], ['TRUE', true], [' True ', true], ['1', true], ['false', false], ['False', false], ['0', false]] as const) {
    t.equal(load([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_DISABLE_GET_STREAM: value }).gateway.disableGetStream, expected, `variable ${value}`)
    t.equal(load(['--upstream-rs', RS, `--disable-get-stream=${value}`]).gateway.disableGetStream, expected, `--disable-get-stream=${value}`)
  }
  for (const bad of ['yes', 'no', 'on', '2', '-1', 'truefalse']) {
    const error = configError(() => loadConfig([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_DISABLE_GET_STREAM: bad }))
    t.same(error.problems, [BOOLEAN_RULE], bad)
  }
  t.same(configError(() => loadConfig(['--upstream-rs', RS, '--disable-get-stream', 'false'], {})).problems,
    ['unexpected argument #4 (not shown): every setting is a --flag, see --help'], 'a separate value is a stray argument')
})

t.test('parseGatewayOptions: disableGetStream is a boolean, or its string', async (t) => {
  t.equal(parseGatewayOptions({ ...PLUGIN, disableGetStream: true }).options.disableGetStream, true)
  t.equal(parseGatewayOptions({ ...PLUGIN, disableGetStream: false }).options.disableGetStream, false)
  t.equal(parseGatewayOptions({ ...PLUGIN, disableGetStream: 'TRUE' }).options.disableGetStream, true)
  for (const bad of [1, 0, 'yes', null, {}]) {
    t.same(configError(() => parseGatewayOptions({ ...PLUGIN, disableGetStream: bad })).problems, ['disableGetStream: must be true, false, 1 or 0'], String(bad))
  }
})

t.test('loadConfig: proxy timeout and maximum body size bounds', async (t) => {
  const ok = load(['--upstream-rs', RS, '--proxy-timeout', '1', '--max-body-size', '1024'])
  t.equal(ok.gateway.proxyTimeout, 1)
  t.equal(ok.gateway.maxBodySize, 1024)
  const top = load([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_PROXY_TIMEOUT: '2147483647', MCP_GATEWAY_MAX_BODY_SIZE: '1073741824' })
  t.equal(top.gateway.proxyTimeout, 2147483647)
  t.equal(top.gateway.maxBodySize, 1073741824)
  for (const [timeout, size] of [['0', '1023'], ['2147483648', '1073741825'], ['1.5', '16MiB'], ['-1', '1e6']]) {
    const error = configError(() => loadConfig(['--upstream-rs', RS, '--proxy-timeout', timeout as string, '--max-body-size', size as string], {}))
    t.same(error.problems, [
      '--proxy-timeout (MCP_GATEWAY_PROXY_TIMEOUT): must be an integer from 1 to 2147483647 (milliseconds)',
      '--max-body-size (MCP_GATEWAY_MAX_BODY_SIZE): must be an integer from 1024 to 1073741824 (bytes)'
    ], `${timeout as string} ${size as string}`)
  }
  t.same(configError(() => loadConfig(['--upstream-rs', RS, '--proxy-timeout'], {})).problems, ['--proxy-timeout (MCP_GATEWAY_PROXY_TIMEOUT): needs a value'])
})

t.test('parseGatewayOptions: the minimal plugin options', async (t) => {
  const { options, warnings } = parseGatewayOptions({ publicUrl: 'http://localhost:8002/', upstreamRs: RS })
  t.match(options, { publicUrl: 'http://localhost:8002', upstreamRs: RS, codeTtl: 300, secretGenerated: true, username: 'gateway_user' })
  t.equal(warnings.length, 2)
  t.match(warnings[0], /^no secret set/, 'named as the option, not the flag')
  t.match(warnings[1], /^username and password are the published defaults/)
})

t.test('parseGatewayOptions: everything, typed values and arrays', async (t) => {
  const input: GatewayOptions = {
    publicUrl: 'http://localhost:3000',
    upstreamRs: RS,
    upstreamClientId: 'id',
    upstreamScopes: ['repo', 'read:org'],
    username: 'alice',
    password: 'pw',
    secret: [SECRET_A, SECRET_B],
    codeTtl: 60,
    refreshGrace: 5,
    allowedOrigins: ['http://localhost:6274'],
    upstreamHeaders: { 'X-MCP-Readonly': 'true' },
    forwardHeaders: ['X-Request-Id'],
    disableGetStream: true,
    proxyTimeout: 1000,
    maxBodySize: 2048
  }
  const { options, warnings } = parseGatewayOptions(input)
  t.same(options.upstreamScopes, ['repo', 'read:org'])
  t.same(options.secrets, [SECRET_A, SECRET_B])
  t.equal(options.secretGenerated, false)
  t.equal(options.codeTtl, 60)
  t.equal(options.refreshGrace, 5)
  t.same(options.allowedOrigins, ['http://localhost:6274'])
  t.same(options.upstreamHeaders, { 'x-mcp-readonly': 'true' })
  t.same(options.forwardHeaders, ['x-request-id'])
  t.equal(options.disableGetStream, true)
  t.equal(options.proxyTimeout, 1000)
  t.equal(options.maxBodySize, 2048)
  t.same(warnings, [])
  t.same(parseGatewayOptions({ ...input, upstreamScopes: [] }).options.upstreamScopes, undefined, 'an empty array is no scopes')
})

t.test('parseGatewayOptions: converts numeric strings and numbers, ignores undefined', async (t) => {
  const { options } = parseGatewayOptions({ publicUrl: 'http://localhost:3000', upstreamRs: RS, codeTtl: '90', upstreamClientId: 12345, upstreamAs: undefined })
  t.equal(options.codeTtl, 90)
  t.equal(options.upstreamClientId, '12345')
  t.equal(options.upstreamAs, undefined)
})

t.test('parseGatewayOptions: never changes the caller\'s objects', async (t) => {
  // Validation fills in defaults, drops unknown keys and turns numbers into text: on its own copies. Frozen inputs
  // make any write to them throw.
  const headers = Object.freeze({ 'X-Number': 42 })
  const origins = Object.freeze(['http://localhost:6274'])
  const input = Object.freeze({ ...PLUGIN, upstreamHeaders: headers, allowedOrigins: origins, codeTTL: 5 })
  const { options } = parseGatewayOptions(input)
  t.same(options.upstreamHeaders, { 'x-number': '42' })
  t.same(options.allowedOrigins, ['http://localhost:6274'])
  t.same(input, { ...PLUGIN, upstreamHeaders: { 'X-Number': 42 }, allowedOrigins: ['http://localhost:6274'], codeTTL: 5 })
})

t.test('parseGatewayOptions: bad options, named as camelCase keys, all at once', async (t) => {
  const error = configError(() => parseGatewayOptions({
    publicUrl: 'https://gw.example.com#x',
    codeTtl: 12.5,
    flowTtl: -1,
    upstreamScopes: ['ok', 'not ok'],
    secret: ['too short'],
    password: '',
    allowedOrigins: ['https://ok.example', 'https://app.example/path'],
    upstreamHeaders: { 'X-Api-Key': 'line\r\nbreak-secret' },
    forwardHeaders: ['Cookie'],
    disableGetStream: 'maybe',
    proxyTimeout: 2 ** 31,
    maxBodySize: 2 ** 30 + 1
  }))
  t.same(error.problems, [
    'publicUrl: must be an http(s) URL without a query or fragment',
    'upstreamRs: is required',
    'upstreamScopes: must be scope names separated by spaces or commas',
    'password: must be 1 to 1024 characters',
    'secret: must be one or more comma-separated secrets of at least 32 characters each',
    'codeTtl: must be an integer from 1 to 600 (seconds)',
    'flowTtl: must be an integer from 1 to 2147483647 (seconds)',
    'allowedOrigins: must be at most 64 comma-separated origins, each http(s)://host[:port] without a path, query, fragment or trailing slash',
    'upstreamHeaders: must be at most 64 "Name: value" headers (one per flag, separated by ; or newlines in the variable): names RFC 9110 tokens, values non-empty visible ASCII with spaces or tabs only inside',
    `forwardHeaders: must not forward cookie: the gateway owns ${OWNED.join(', ')}`,
    'disableGetStream: must be true, false, 1 or 0',
    'proxyTimeout: must be an integer from 1 to 2147483647 (milliseconds)',
    'maxBodySize: must be an integer from 1024 to 1073741824 (bytes)'
  ])
  t.notMatch(error.message, 'too short')
  t.notMatch(error.message, 'break-secret')
})

t.test('parseGatewayOptions: not an object', async (t) => {
  for (const input of [undefined, null, 'x', 42, []]) {
    t.same(configError(() => parseGatewayOptions(input)).problems, ['gateway options must be an object'], String(input))
  }
})

t.test('parseGatewayOptions: unknown keys warn, except what Fastify itself passes', async (t) => {
  const { options, warnings } = parseGatewayOptions({
    publicUrl: 'http://localhost:3000', upstreamRs: RS, secret: SECRET_A, username: 'a', password: 'b', codeTTL: 5, prefix: '/gw', logLevel: 'info'
  })
  t.same(warnings, ['unknown option "codeTTL" ignored'])
  t.notOk('codeTTL' in options)
  t.notOk('prefix' in options)
})

t.test('GatewayOptionsSchema: publishes defaults for documentation and embedding', async (t) => {
  const codeTtl = GatewayOptionsSchema.properties.codeTtl as unknown as Record<string, unknown>
  t.equal(codeTtl.default, 300)
  t.equal(codeTtl.maximum, 600)
  t.same(GatewayOptionsSchema.required, ['publicUrl', 'upstreamRs'])
  const properties = GatewayOptionsSchema.properties as unknown as Record<string, Record<string, unknown>>
  t.equal(properties.proxyTimeout?.default, 300000)
  t.same([properties.maxBodySize?.default, properties.maxBodySize?.minimum, properties.maxBodySize?.maximum], [16777216, 1024, 1073741824])
  t.equal(properties.disableGetStream?.default, false)
  t.same(properties.allowedOrigins?.default, [])
  t.same(properties.upstreamHeaders?.default, {})
  t.same(properties.forwardHeaders?.default, [])
  t.equal(properties.store?.default, 'memory')
  t.equal(properties.storePrefix?.default, 'mcp-gateway:')
  t.same([properties.tokenCacheTtl?.default, properties.tokenCacheTtl?.minimum, properties.tokenCacheTtl?.maximum], [5000, 0, 60000])
})

t.test('parseGatewayOptions: takes back what loadConfig resolved, unchanged (server.ts hands it to the plugin)', async (t) => {
  const argv = everyFlag()
  const { gateway } = load(argv, { ...CREDS, MCP_GATEWAY_MCP_SCOPE: 'tools' })
  const { secrets, secretGenerated: _generated, ...rest } = gateway
  const { options, warnings } = parseGatewayOptions({ ...rest, secret: secrets })
  t.same(options, gateway)
  t.same(warnings, [])
})

t.test('loadConfig: --store takes memory or a Redis URL (one server, Sentinels, a cluster), kept as given', async (t) => {
  const good = [
    'redis://localhost',
    'redis://localhost:6379',
    'redis://127.0.0.1:6379/0',
    'redis://:hunter2@redis.example.com:6379/0',
    'redis://gateway:hunter2@redis.example.com/15',
    'redis://:p%40ss%3Aw%2Fo%3Frd%23@redis.example.com',
    'redis://:pass:with:colons@redis.example.com',
    'redis://redis_1.internal/',
    'redis://[::1]:6379/2',
    'redis://host/2147483647',
    'rediss://default:hunter2@cache.example.com:6380/1',
    'REDISS://Cache.Example.com',
    'redis-sentinel://s1.example.com#main',
    'redis-sentinel://:hunter2@s1.example.com:26379,s2.example.com,[::1]:26380/3#main-1',
    'rediss-sentinel://gateway:p%40ss@s1.example.com:26379/#main',
    'redis-cluster://10.0.0.1:7000,10.0.0.2:7000,10.0.0.3',
    'rediss-cluster://gateway:hunter2@clustercfg.cache.example.com:6379/',
    'REDIS-CLUSTER://Node1.Example.com'
  ]
  for (const url of good) {
    t.equal(load(['--upstream-rs', RS, '--secret', SECRET_A, '--store', url]).gateway.store, url, url)
  }
  for (const memory of ['memory', 'MEMORY', 'Memory']) {
    t.equal(load(['--upstream-rs', RS, '--store', memory]).gateway.store, 'memory', memory)
  }
  t.equal(load([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_SECRET: SECRET_A, MCP_GATEWAY_STORE: REDIS }).gateway.store, REDIS, 'from the environment')
  t.equal(load(['--upstream-rs', RS, '--store', 'memory'], { MCP_GATEWAY_STORE: REDIS }).gateway.store, 'memory', 'the flag wins')
  t.equal(load([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_STORE: '' }).gateway.store, 'memory', 'an empty variable is the default')
})

t.test('loadConfig: a bad --store is refused without repeating it', async (t) => {
  const bad = [
    'redis', 'Memory ', ' memory', 'mem', 'http://hunter2@redis.example.com', 'unix:///tmp/hunter2.sock', '/tmp/hunter2.sock', 'redis:hunter2',
    'redis://', 'redis:///0', 'redis://:hunter2@', 'redis://:hunter2@:6379', 'redis://:hunter2@/0',
    'redis://:hunter2@redis.example.com:0', 'redis://:hunter2@redis.example.com:65536', 'redis://:hunter2@redis.example.com:port',
    'redis://:hunter2@redis.example.com/db', 'redis://:hunter2@redis.example.com/-1', 'redis://:hunter2@redis.example.com/1.5',
    'redis://:hunter2@redis.example.com/0/1', 'redis://:hunter2@redis.example.com//0', 'redis://:hunter2@redis.example.com/2147483648',
    'redis://:hunter2@redis.example.com?db=1', 'redis://:hunter2@redis.example.com/0?', 'redis://:hunter2@redis.example.com#x',
    'redis://:hun#hunter2@redis.example.com', 'redis://:hun?hunter2@redis.example.com', 'redis://:hunter2/x@redis.example.com',
    'redis://hunter2@redis.example.com', 'redis://hunter2:@redis.example.com', 'redis://:@redis.example.com',
    'redis://:hunter2%zz@redis.example.com', 'redis://hunter2%zz:pw@redis.example.com',
    'redis://:hunter2@redis example.com', 'redis://:hunter2@redis.example.com\n', 'redis://:hunter2@red\tis.example.com',
    'redis://:hunter2@redis.exämple.com', 'redis://:hunter2@redis.example.com.', 'redis://:hunter2@red%41is.example.com',
    'redis://:hunter2@[::1', 'redis://:hunter2@[hunter2]', 'redis://:hunter2@red$is.example.com',
    'redis-sentinel://:hunter2@redis.example.com', 'redis-sentinel://:hunter2@redis.example.com#', 'redis-sentinel://:hunter2@redis.example.com#a b',
    'redis-sentinel://:hunter2@redis.example.com/x#main', 'redis-sentinel://:hunter2@redis.example.com/2147483648#main',
    'redis-sentinel://:hunter2@redis.example.com?db=1#main', 'redis-sentinel://:hunter2@redis.example.com#main#x', 'redis-sentinel://hunter2@redis.example.com#main',
    'redis-sentinel://:hun#ter2@redis.example.com#main', 'redis-sentinel://:hunter2/x@redis.example.com#main', 'redis-sentinel://:hunter2%zz@redis.example.com#main',
    'redis-cluster://', 'redis-cluster://:hunter2@', 'redis-cluster://:hunter2@redis.example.com/0', 'redis-cluster://:hunter2@redis.example.com#main',
    'redis-cluster://:hunter2@redis.example.com,', 'redis-cluster://:hunter2@redis.example.com,,redis2.example.com', 'redis-cluster://:hunter2@redis.example.com:0',
    'redis-cluster://:hunter2@redis.example.com:65536', 'redis-cluster://:hunter2@redis.example.com:x', 'redis-cluster://:hunter2@[hunter2]:7000',
    'redis-cluster://:hunter2@redis.example.com?x', 'redis-cluster://hunter2:@redis.example.com', 'redis-cluster://:hunter2@redis.example.com\n',
    'redis-cluster+tls://:hunter2@redis.example.com', 'redis-replica://:hunter2@redis.example.com', 'rediss-sentinels://:hunter2@redis.example.com#main'
  ]
  for (const value of bad) {
    const error = configError(() => loadConfig(['--upstream-rs', RS, '--secret', SECRET_A, '--store', value], {}))
    t.same(error.problems, [STORE_RULE], JSON.stringify(value))
    t.notMatch(error.message, /hunter2|redis\.example|\/tmp/, 'not repeated')
  }
  const fromEnv = configError(() => loadConfig([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_SECRET: SECRET_A, MCP_GATEWAY_STORE: 'redis://:hunter2@redis.example.com/x' }))
  t.same(fromEnv.problems, [STORE_RULE], 'named by flag and variable')
  t.same(configError(() => loadConfig(['--upstream-rs', RS, '--store'], {})).problems, ['--store (MCP_GATEWAY_STORE): needs a value'])
  t.same(configError(() => loadConfig(['--upstream-rs', RS, '--store='], {})).problems, [STORE_RULE], 'an empty flag is no store, and asks for no secret')
})

t.test('loadConfig: a persistent store needs a configured secret', async (t) => {
  for (const store of [REDIS, 'rediss://cache.example.com']) {
    t.same(configError(() => loadConfig(['--upstream-rs', RS, '--store', store], {})).problems, [SECRET_REQUIRED], store)
    t.same(configError(() => loadConfig([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_STORE: store, MCP_GATEWAY_SECRET: '' })).problems,
      [SECRET_REQUIRED], 'an empty secret variable is no secret')
  }
  const both = configError(() => loadConfig(['--upstream-rs', RS, '--store', 'redis://:hunter2@redis.example.com/main'], {}))
  t.same(both.problems, [SECRET_REQUIRED, STORE_RULE], 'a bad URL is still a persistent store: both named at once')
  const short = configError(() => loadConfig(['--upstream-rs', RS, '--store', REDIS, '--secret', 'too-short'], {}))
  t.same(short.problems, ['--secret (MCP_GATEWAY_SECRET): must be one or more comma-separated secrets of at least 32 characters each'], 'a bad secret is named once')

  const { gateway, warnings } = load(['--upstream-rs', RS, '--store', REDIS], { MCP_GATEWAY_SECRET: SECRET_A })
  t.equal(gateway.secretGenerated, false)
  t.same(gateway.secrets, [SECRET_A])
  t.notOk(warnings.some((w) => /secret/.test(w)))

  const memory = load(['--upstream-rs', RS, '--store', 'memory'])
  t.equal(memory.gateway.secretGenerated, true, 'memory still runs with a generated secret')
  t.ok(memory.warnings.some((w) => /^no --secret \(MCP_GATEWAY_SECRET\) set: a random secret was generated/.test(w)))
})

t.test('loadConfig: --store-prefix', async (t) => {
  for (const prefix of ['a', 'mcp-gateway:', 'App.v1_x-y:Z9:', 'p'.repeat(64)]) {
    t.equal(load(['--upstream-rs', RS, '--store-prefix', prefix]).gateway.storePrefix, prefix, prefix)
  }
  t.equal(load([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_STORE_PREFIX: 'env:' }).gateway.storePrefix, 'env:', 'from the environment')
  t.equal(load(['--upstream-rs', RS, '--store-prefix', 'flag:'], { MCP_GATEWAY_STORE_PREFIX: 'env:' }).gateway.storePrefix, 'flag:', 'the flag wins')
  t.equal(load([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_STORE_PREFIX: '' }).gateway.storePrefix, 'mcp-gateway:', 'an empty variable is the default')
  for (const bad of ['', 'p'.repeat(65), 'a b', 'a/b', 'a*', '{tag}', 'prä', 'a\n', ' a']) {
    t.same(configError(() => loadConfig(['--upstream-rs', RS, `--store-prefix=${bad}`], {})).problems, [PREFIX_RULE], JSON.stringify(bad))
  }
  t.same(configError(() => loadConfig(['--upstream-rs', RS, '--store-prefix'], {})).problems, ['--store-prefix (MCP_GATEWAY_STORE_PREFIX): needs a value'])
})

t.test('loadConfig: --token-cache-ttl from 0 (no cache) to 60000 ms', async (t) => {
  for (const [input, expected] of [['0', 0], ['1', 1], [' 250 ', 250], ['60000', 60000]] as const) {
    t.equal(load(['--upstream-rs', RS, '--token-cache-ttl', input]).gateway.tokenCacheTtl, expected, input)
  }
  t.equal(load([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_TOKEN_CACHE_TTL: '0' }).gateway.tokenCacheTtl, 0, 'from the environment')
  t.equal(load(['--upstream-rs', RS, '--token-cache-ttl', '10'], { MCP_GATEWAY_TOKEN_CACHE_TTL: '20' }).gateway.tokenCacheTtl, 10, 'the flag wins')
  for (const bad of ['60001', '-1', '1.5', '5s', '1e3', 'true', '']) {
    t.same(configError(() => loadConfig(['--upstream-rs', RS, `--token-cache-ttl=${bad}`], {})).problems, [TTL_RULE], bad)
  }
})

t.test('parseGatewayOptions: store, storePrefix and tokenCacheTtl', async (t) => {
  const defaults = parseGatewayOptions(PLUGIN).options
  t.same([defaults.store, defaults.storePrefix, defaults.tokenCacheTtl], ['memory', 'mcp-gateway:', 5000])
  const { options, warnings } = parseGatewayOptions({
    ...PLUGIN, username: 'a', password: 'b', secret: SECRET_A, store: 'rediss://:hunter2@cache.example.com:6380/3', storePrefix: 'tenant-a:', tokenCacheTtl: 0
  })
  t.same([options.store, options.storePrefix, options.tokenCacheTtl], ['rediss://:hunter2@cache.example.com:6380/3', 'tenant-a:', 0])
  t.same(warnings, [])
  t.equal(parseGatewayOptions({ ...PLUGIN, tokenCacheTtl: '750' }).options.tokenCacheTtl, 750, 'a numeric string')

  t.same(configError(() => parseGatewayOptions({ ...PLUGIN, store: REDIS })).problems,
    ['secret: is required with a persistent store (tokens must survive restarts and work on every replica)'], 'named as options, not flags')
  const error = configError(() => parseGatewayOptions({ ...PLUGIN, secret: SECRET_A, store: 'redis://:hunter2@redis.example.com?tls=1', storePrefix: 'a b', tokenCacheTtl: 60001 }))
  t.same(error.problems, [
    STORE_RULE.replace('--store (MCP_GATEWAY_STORE)', 'store'),
    'storePrefix: must be 1 to 64 characters of A-Z, a-z, 0-9, :, _, . and -',
    'tokenCacheTtl: must be an integer from 0 to 60000 (milliseconds)'
  ])
  t.notMatch(error.message, /hunter2|redis\.example/)
  for (const bad of [42, {}, [REDIS], true, '']) {
    const problems = configError(() => parseGatewayOptions({ ...PLUGIN, store: bad })).problems
    t.same(problems, [error.problems[0] as string], JSON.stringify(bad))
  }
  for (const bad of [-1, 1.5, 'x', null]) {
    t.same(configError(() => parseGatewayOptions({ ...PLUGIN, tokenCacheTtl: bad })).problems, ['tokenCacheTtl: must be an integer from 0 to 60000 (milliseconds)'], String(bad))
  }
  for (const bad of [['a:'], {}, '']) {
    t.same(configError(() => parseGatewayOptions({ ...PLUGIN, storePrefix: bad })).problems, ['storePrefix: must be 1 to 64 characters of A-Z, a-z, 0-9, :, _, . and -'], JSON.stringify(bad))
  }
})

t.test('a store password never appears in an error, a warning or the help', async (t) => {
  const texts: string[] = []
  const collect = (fn: () => unknown) => {
    try {
      const result = fn() as { warnings?: string[], help?: string }
      texts.push(...(result.warnings ?? []), result.help ?? '')
    } catch (error) {
      texts.push(String(error), ...(error instanceof ConfigError ? error.problems : []))
    }
  }
  const urls = [REDIS, 'redis://user:hunter2@redis.example.com:6379/0', 'redis://:hunter2@redis.example.com:6379/0?x', 'redis://:hunter2#@redis.example.com']
  for (const url of urls) {
    collect(() => loadConfig(['--upstream-rs', RS, '--store', url], {}))
    collect(() => loadConfig(['--upstream-rs', RS, '--store', url, '--secret', SECRET_A], {}))
    collect(() => loadConfig(['--upstream-rs', RS, '--host', '0.0.0.0', '--public-url', 'http://gw.example.com', '--store', url, '--secret', SECRET_A], CREDS))
    collect(() => loadConfig([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_STORE: url }))
    collect(() => loadConfig(['--upstream-rs', RS, `--stores=${url}`, url], {}))
    collect(() => loadConfig(['--store', url, '--help'], {}))
    collect(() => parseGatewayOptions({ ...PLUGIN, store: url }))
    collect(() => parseGatewayOptions({ ...PLUGIN, store: url, secret: SECRET_A, stores: url }))
  }
  t.ok(texts.length > 30, `${texts.length} texts checked`)
  t.ok(texts.some((text) => text.includes('--store')), 'the store is named')
  for (const text of texts) t.notMatch(text, /hunter2|redis\.example/)
})

t.test('--metrics-path: a path, or off', async (t) => {
  t.equal(load(['--upstream-rs', RS]).gateway.metricsPath, false, 'off on the main app unless asked (issue 15 finding 12)')
  t.equal(load(['--upstream-rs', RS, '--metrics-path', '/metrics']).gateway.metricsPath, '/metrics')
  t.equal(load(['--upstream-rs', RS, '--metrics-path', 'off']).gateway.metricsPath, false)
  t.equal(parseGatewayOptions({ publicUrl: 'http://localhost:8002', upstreamRs: RS, secret: SECRET_A, metricsPath: false }).options.metricsPath, false)
  const error = configError(() => loadConfig(['--upstream-rs', RS, '--metrics-path', 'metrics'], {}))
  t.match(error.message, /--metrics-path \(MCP_GATEWAY_METRICS_PATH\): must be a path such as \/metrics, or off/)
})

t.test('issue 15 finding 10: default credentials are refused whenever the public URL is not loopback either', async (t) => {
  // The usual setup behind a TLS proxy: a loopback listener, a public https URL.
  const error = configError(() => loadConfig(['--upstream-rs', RS, '--host', '127.0.0.1', '--public-url', 'https://mcp.example.com'], {}))
  t.same(error.problems, ['MCP_GATEWAY_PASSWORD: the published default credentials (gateway_user/gateway_pass) are refused with public URL host mcp.example.com, which other machines can reach: set MCP_GATEWAY_USERNAME and MCP_GATEWAY_PASSWORD'])
  t.ok(load(['--upstream-rs', RS, '--host', '127.0.0.1', '--public-url', 'https://mcp.example.com'], CREDS))
  t.ok(load(['--upstream-rs', RS, '--host', '127.0.0.1', '--public-url', 'http://127.0.0.1:8002']), 'loopback both ways: a try-out')

  // Embedded: no listener is known, so the public URL decides.
  const embedded = configError(() => parseGatewayOptions({ publicUrl: 'https://gw.example.com', upstreamRs: RS }))
  t.match(embedded.message, /^password: the published default credentials \(gateway_user\/gateway_pass\) are refused for publicUrl gw\.example\.com/)
  t.ok(parseGatewayOptions({ publicUrl: 'https://gw.example.com', upstreamRs: RS, username: 'alice', password: 'correct horse battery staple' }))
  t.ok(parseGatewayOptions({ publicUrl: 'http://127.0.0.1:8002', upstreamRs: RS }).warnings.some((w) => /published defaults/.test(w)))
})

t.test('issue 15 finding 12: secrets from *_FILE variables, and a warning for a secret given as a flag', async (t) => {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs')
  const { join } = await import('node:path')
  const { tmpdir } = await import('node:os')
  const dir = mkdtempSync(join(tmpdir(), 'gw-secrets-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = (name: string, content: string): string => {
    const path = join(dir, name)
    writeFileSync(path, content)
    return path
  }
  const env = {
    MCP_GATEWAY_UPSTREAM_RS: RS,
    MCP_GATEWAY_USERNAME: 'alice',
    MCP_GATEWAY_SECRET_FILE: file('secret', `${SECRET_A}\n`),
    MCP_GATEWAY_PASSWORD_FILE: file('password', 'pass word from a file\r\n'),
    MCP_GATEWAY_UPSTREAM_CLIENT_SECRET_FILE: file('client-secret', 'upstream-secret'),
    MCP_GATEWAY_UPSTREAM_CLIENT_ID: 'Iv1.abc'
  }
  const { gateway, warnings } = load(['--host', '0.0.0.0', '--public-url', 'https://gw.example.com'], env)
  t.same(gateway.secrets, [SECRET_A], 'one trailing newline dropped')
  t.equal(gateway.password, 'pass word from a file')
  t.equal(gateway.upstreamClientSecret, 'upstream-secret')
  t.same(warnings, [])

  const both = configError(() => loadConfig([], { ...env, MCP_GATEWAY_SECRET: SECRET_B }))
  t.same(both.problems, ['MCP_GATEWAY_SECRET and MCP_GATEWAY_SECRET_FILE are both set: set one'])
  const missing = configError(() => loadConfig([], { ...env, MCP_GATEWAY_PASSWORD_FILE: join(dir, 'nope') }))
  t.same(missing.problems, ['MCP_GATEWAY_PASSWORD_FILE: the file cannot be read (ENOENT)'])
  const empty = configError(() => loadConfig([], { ...env, MCP_GATEWAY_SECRET_FILE: file('empty', '\n') }))
  t.same(empty.problems, ['MCP_GATEWAY_SECRET_FILE: the file is empty'])
  t.equal(load(['--secret', SECRET_B], env).gateway.secrets[0], SECRET_B, 'a flag wins over the file, as over the variable')

  const flagged = load(['--upstream-rs', RS, '--secret', SECRET_A, '--upstream-client-secret', 'xyz'])
  t.same(flagged.warnings.filter((w) => /was given as a flag/.test(w)).length, 2)
  t.notOk(flagged.warnings.some((w) => w.includes(SECRET_A) || w.includes('xyz')), 'never the value')
})
