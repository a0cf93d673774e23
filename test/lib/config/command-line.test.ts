// loadConfig (lib/config/command-line.ts): flags, variables and _FILE variables read, defaulted and checked, and
// what its errors name and never repeat.
import t from 'tap'
import { helpText, loadConfig } from '../../../lib/config.js'
import {
  RS, SECRET_A, SECRET_B, CREDS, load, configError, EVERY_SETTING, everyFlag, OWNED, STORE_RULE, PREFIX_RULE,
  TTL_RULE, SECRET_REQUIRED
} from '../../helpers/config.js'

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
  '--upstream-client-secret (MCP_GATEWAY_UPSTREAM_CLIENT_SECRET) was given as a flag, which every user of this ' +
    'machine can read in `ps`: prefer MCP_GATEWAY_UPSTREAM_CLIENT_SECRET or MCP_GATEWAY_UPSTREAM_CLIENT_SECRET_FILE',
  '--login-oidc-client-secret (MCP_GATEWAY_LOGIN_OIDC_CLIENT_SECRET) was given as a flag, which every user of this ' +
    'machine can read in `ps`: prefer MCP_GATEWAY_LOGIN_OIDC_CLIENT_SECRET or MCP_GATEWAY_LOGIN_OIDC_CLIENT_SECRET_FILE',
  '--secret (MCP_GATEWAY_SECRET) was given as a flag, which every user of this machine can read in `ps`: ' +
    'prefer MCP_GATEWAY_SECRET or MCP_GATEWAY_SECRET_FILE'
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
  usersFile: '/etc/mcp-gateway/users',
  loginOidcIssuer: 'https://login.example.com/tenant',
  loginOidcClientId: 'gateway',
  loginOidcClientSecret: 'sso-client-secret-value',
  loginAllowedEmails: ['alice@example.com'],
  loginAllowedDomains: ['example.org'],
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
  upstreamUserEndpoint: 'https://ghe.example.com/api/v3/user',
  upstreamAllowedUsers: ['octocat', 'hubot'],
  upstreamAllowedOrgs: ['octo-org'],
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
  clientRegistration: ['cimd'],
  cimdAllowedHosts: ['claude.ai', '*.example.com'],
  cimdAllowPrivate: true,
  redirectUriAllow: ['loopback', 'https://claude.ai/api/*'],
  maxClientDocuments: 300,
  maxClientDocumentFetches: 4,
  maxPendingSignIns: 700,
  maxGrantsPerUser: 7,
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
    maxGrantsPerUser: 100,
    rateLimitSignIn: 60,
    rateLimitRegister: 30,
    rateLimitToken: 120,
    loginFailuresPerAddress: 10,
    loginFailuresPerUser: 5,
    maxStreams: 2048,
    maxStreamsPerGrant: 32
  })
  for (const key of ['upstreamAs', 'upstreamClientId', 'upstreamClientSecret', 'upstreamAuthorizeEndpoint',
    'upstreamTokenEndpoint', 'upstreamScopes'] as const) {
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
  const env = {
    MCP_GATEWAY_UPSTREAM_RS: 'https://env.example.com/mcp',
    MCP_GATEWAY_PORT: '9001',
    MCP_GATEWAY_CODE_TTL: '60'
  }
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
  const { server, gateway } = load([],
    { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_PORT: '', MCP_GATEWAY_UPSTREAM_AS: '', MCP_GATEWAY_SECRET: '' })
  t.equal(server.port, 8002)
  t.equal(gateway.upstreamAs, undefined)
  t.equal(gateway.secretGenerated, true)
})

t.test('loadConfig: --help and -h answer with the help text, even next to bad flags', async (t) => {
  t.same(loadConfig(['--help'], {}), { help: helpText() })
  t.same(loadConfig(['-h'], {}), { help: helpText() })
  t.same(loadConfig(['--port', 'nope', '--bogus', '-h'], {}), { help: helpText() })
})

t.test('loadConfig: every bad value is reported in one ConfigError', async (t) => {
  const error = configError(() => loadConfig([
    '--port', '70000', '--host', 'has space', '--trust-proxy', '1.2.3.4/99', '--log-level', 'loud', '--shutdown-grace',
    '3601', '--public-url', 'https://gw.example.com/?x=1', '--upstream-as', 'ftp://example.com',
    '--upstream-authorize-endpoint', 'not a url', '--upstream-token-endpoint', 'https://x/#frag', '--upstream-scopes',
    'repo "quoted"', '--code-ttl', '601', '--flow-ttl', '0', '--access-token-ttl', '12.5', '--refresh-token-ttl',
    '0x10', '--client-ttl', '1e3', '--refresh-grace', '-1', '--upstream-timeout', '2147483648', '--allowed-origins',
    'https://app.example/', '--upstream-header', 'Host: evil.example', '--forward-headers', 'x/y', '--proxy-timeout',
    '0', '--max-body-size', '1023', '--store', 'redis://:hunter2@redis.example.com/main', '--store-prefix', 'has space',
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
    '--upstream-authorize-endpoint (MCP_GATEWAY_UPSTREAM_AUTHORIZE_ENDPOINT): ' +
      'must be an http(s) URL without a fragment',
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
    '--allowed-origins (MCP_GATEWAY_ALLOWED_ORIGINS): must be at most 64 comma-separated origins, each ' +
      'http(s)://host[:port] without a path, query, fragment or trailing slash',
    `--upstream-header (MCP_GATEWAY_UPSTREAM_HEADERS): must not pin host: the gateway owns ${OWNED.join(', ')}`,
    '--forward-headers (MCP_GATEWAY_FORWARD_HEADERS): ' +
      'must be at most 64 comma-separated header names (RFC 9110 tokens)',
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
  const error = configError(() => loadConfig([],
    { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_PORT: 'abc', MCP_GATEWAY_USERNAME: 'x'.repeat(257) }))
  t.same(error.problems, [
    '--port (MCP_GATEWAY_PORT): must be an integer from 0 to 65535', 'MCP_GATEWAY_USERNAME: must be 1 to 256 characters'
  ])
})

t.test('loadConfig: a flag without a value is reported', async (t) => {
  const error = configError(() => loadConfig(['--upstream-rs', RS, '--port'], {}))
  t.same(error.problems, ['--port (MCP_GATEWAY_PORT): needs a value'])
})

t.test('loadConfig: unknown flags and stray arguments are errors, listed before the settings', async (t) => {
  const error = configError(() => loadConfig(['--upstream-rs', RS, '--bogus', '-x', 'stray', '--port', 'abc'], {}))
  t.same(error.problems, [
    '--bogus is not a known flag (see --help)', '-x is not a known flag (see --help)',
    'unexpected argument #5 (not shown): every setting is a --flag, see --help',
    '--port (MCP_GATEWAY_PORT): must be an integer from 0 to 65535'
  ])
})

t.test('loadConfig: --username and --password are refused, pointing at the environment', async (t) => {
  const error = configError(() =>
    loadConfig(['--upstream-rs', RS, '--username', 'bob', '--password=hunter2-secret'], {}))
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
    ['--upstream-rs', RS, '--secret', `${SECRET_A},${shortSecret}`, '--upstream-client-secret', clientSecret,
      'positional-secret-value'],
    { MCP_GATEWAY_USERNAME: 'alice', MCP_GATEWAY_PASSWORD: longPassword }))
  t.same(error.problems, [
    'unexpected argument #7 (not shown): every setting is a --flag, see --help',
    '--upstream-client-secret (MCP_GATEWAY_UPSTREAM_CLIENT_SECRET): must be 1 to 2048 characters',
    'MCP_GATEWAY_PASSWORD: must be 1 to 1024 characters',
    '--secret (MCP_GATEWAY_SECRET): must be one or more comma-separated secrets of at least 32 characters each'
  ])
  for (const value of [shortSecret, SECRET_A, 'ppppp', 'ccccc', 'positional-secret-value']) {
    t.notMatch(error.message, value)
  }
})

t.test('loadConfig: the default public URL follows the port', async (t) => {
  t.equal(load(['--upstream-rs', RS, '--port', '9100']).gateway.publicUrl, 'http://localhost:9100')
  t.equal(load(['--upstream-rs', RS], { MCP_GATEWAY_PORT: '9200' }).gateway.publicUrl, 'http://localhost:9200')
  t.equal(load(['--upstream-rs', RS, '--port', '9100', '--public-url', 'https://gw.example.com'],
    CREDS).gateway.publicUrl, 'https://gw.example.com')
  const error = configError(() => loadConfig(['--upstream-rs', RS, '--port', 'x'], {}))
  t.same(error.problems, ['--port (MCP_GATEWAY_PORT): must be an integer from 0 to 65535'],
    'no second error about the derived URL')
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
  t.equal(load(['--secret', SECRET_B], env).gateway.secrets[0], SECRET_B,
    'a flag wins over the file, as over the variable')

  const flagged = load(['--upstream-rs', RS, '--secret', SECRET_A, '--upstream-client-secret', 'xyz'])
  t.same(flagged.warnings.filter((w) => /was given as a flag/.test(w)).length, 2)
  t.notOk(flagged.warnings.some((w) => w.includes(SECRET_A) || w.includes('xyz')), 'never the value')
})
