import t from 'tap'
import { ConfigError, GatewayOptionsSchema, helpText, loadConfig, parseGatewayOptions, type GatewayOptions } from '../../lib/config.js'

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
  ['--upstream-timeout', 'MCP_GATEWAY_UPSTREAM_TIMEOUT', '2500']
]
const ENV_ONLY = ['MCP_GATEWAY_USERNAME', 'MCP_GATEWAY_PASSWORD', 'MCP_GATEWAY_MCP_SCOPE']

const EXPECTED_SERVER = { port: 9000, host: '127.0.0.1', trustProxy: '10.0.0.0/8', logLevel: 'debug' }
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
  upstreamTimeout: 2500
}

t.test('loadConfig: defaults with only --upstream-rs', async (t) => {
  const { server, gateway, warnings } = load(['--upstream-rs', RS])
  t.same(server, { port: 8002, host: 'localhost', trustProxy: false, logLevel: 'info' })
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
    refreshGrace: 0,
    upstreamTimeout: 10000
  })
  for (const key of ['upstreamAs', 'upstreamClientId', 'upstreamClientSecret', 'upstreamAuthorizeEndpoint', 'upstreamTokenEndpoint', 'upstreamScopes'] as const) {
    t.ok(key in gateway, `${key} is present`)
    t.equal(gateway[key], undefined, `${key} is undefined`)
  }
  t.equal(gateway.secrets.length, 1)
  t.ok((gateway.secrets[0] as string).length >= 32, 'the generated secret is long enough')
  t.equal(warnings.length, 2, 'default credentials and generated secret')
})

t.test('loadConfig: every flag is read', async (t) => {
  const argv = EVERY_SETTING.flatMap(([flag, , value]) => [flag, value])
  const { server, gateway, warnings } = load(argv, { ...CREDS, MCP_GATEWAY_MCP_SCOPE: 'tools' })
  t.same(server, EXPECTED_SERVER)
  t.same(gateway, EXPECTED_GATEWAY)
  t.same(warnings, [])
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
  for (const text of ['8002', 'localhost', 'http://localhost:<port>', 'gateway_user', 'gateway_pass', '[default: mcp]', '300', '600', '3600', '2592000', '7776000', '10000', '-h, --help']) {
    t.match(help, text, `mentions ${text}`)
  }
  t.match(help, /ps/, 'says why credentials are environment-only')
  t.notMatch(help, /--password|--username|--mcp-scope/, 'no flags for environment-only settings')
})

t.test('loadConfig: every bad value is reported in one ConfigError', async (t) => {
  const error = configError(() => loadConfig([
    '--port', '70000',
    '--host', 'has space',
    '--trust-proxy', '1.2.3.4/99',
    '--log-level', 'loud',
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
    '--upstream-timeout', '2147483648'
  ], { MCP_GATEWAY_MCP_SCOPE: 'two words' }))
  t.same(error.problems, [
    '--port (MCP_GATEWAY_PORT): must be an integer from 0 to 65535',
    '--host (MCP_GATEWAY_HOST): must be a host name or IP address',
    '--trust-proxy (MCP_GATEWAY_TRUST_PROXY): must be true, false, or comma-separated IP addresses/CIDR ranges',
    '--log-level (MCP_GATEWAY_LOG_LEVEL): must be one of fatal, error, warn, info, debug, trace, silent',
    '--public-url (MCP_GATEWAY_PUBLIC_URL): must be an http(s) URL without a query or fragment',
    '--upstream-rs (MCP_GATEWAY_UPSTREAM_RS): is required',
    '--upstream-as (MCP_GATEWAY_UPSTREAM_AS): must be an http(s) URL without a fragment',
    '--upstream-authorize-endpoint (MCP_GATEWAY_UPSTREAM_AUTHORIZE_ENDPOINT): must be an http(s) URL without a fragment',
    '--upstream-token-endpoint (MCP_GATEWAY_UPSTREAM_TOKEN_ENDPOINT): must be an http(s) URL without a fragment',
    '--upstream-scopes (MCP_GATEWAY_UPSTREAM_SCOPES): must be scope names separated by spaces or commas',
    'MCP_GATEWAY_MCP_SCOPE: must be one scope name (printable ASCII without spaces, quotes or backslashes)',
    '--code-ttl (MCP_GATEWAY_CODE_TTL): must be an integer from 1 to 600 (seconds)',
    '--flow-ttl (MCP_GATEWAY_FLOW_TTL): must be an integer from 1 to 2147483647 (seconds)',
    '--access-token-ttl (MCP_GATEWAY_ACCESS_TOKEN_TTL): must be an integer from 1 to 2147483647 (seconds)',
    '--refresh-token-ttl (MCP_GATEWAY_REFRESH_TOKEN_TTL): must be an integer from 1 to 2147483647 (seconds)',
    '--client-ttl (MCP_GATEWAY_CLIENT_TTL): must be an integer from 1 to 2147483647 (seconds)',
    '--refresh-grace (MCP_GATEWAY_REFRESH_GRACE): must be an integer from 0 to 2147483647 (seconds)',
    '--upstream-timeout (MCP_GATEWAY_UPSTREAM_TIMEOUT): must be an integer from 1 to 2147483647 (milliseconds)'
  ])
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
    const { warnings } = load(['--upstream-rs', RS, '--host', host, '--secret', SECRET_A])
    t.equal(warnings.length, 1, host)
    t.match(warnings[0], /published defaults \(gateway_user\/gateway_pass\)/, host)
  }
})

t.test('loadConfig: own credentials on 0.0.0.0 start, warning only about the public URL', async (t) => {
  const { server, gateway, warnings } = load(['--upstream-rs', RS, '--host', '0.0.0.0', '--secret', SECRET_A], CREDS)
  t.equal(server.host, '0.0.0.0')
  t.equal(gateway.username, 'alice')
  t.equal(gateway.publicUrl, 'http://localhost:8002')
  t.same(warnings, ['--public-url (MCP_GATEWAY_PUBLIC_URL) is not set, so clients are sent to http://localhost:8002; set it unless that is how they reach this gateway'])
  t.same(load(['--upstream-rs', RS, '--host', '0.0.0.0', '--secret', SECRET_A, '--public-url', 'https://gw.example.com'], CREDS).warnings, [])
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
  t.notOk(configured.warnings.some((w) => /secret/.test(w)))

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
  t.equal(load(['--upstream-rs', RS, '--port', '9100', '--public-url', 'https://gw.example.com']).gateway.publicUrl, 'https://gw.example.com')
  const error = configError(() => loadConfig(['--upstream-rs', RS, '--port', 'x'], {}))
  t.same(error.problems, ['--port (MCP_GATEWAY_PORT): must be an integer from 0 to 65535'], 'no second error about the derived URL')
})

t.test('loadConfig: trailing slashes are stripped from the public and upstream MCP URLs only', async (t) => {
  const { gateway } = load([
    '--public-url', 'https://gw.example.com/base//',
    '--upstream-rs', 'https://mcp.example.com/mcp/?tenant=1',
    '--upstream-as', 'https://as.example.com/'
  ])
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
  const { warnings } = load(['--upstream-rs', RS, '--secret', SECRET_A, '--public-url', 'http://gw.example.com'])
  t.ok(warnings.some((w) => /--public-url \(MCP_GATEWAY_PUBLIC_URL\) is plain http on a non-loopback host/.test(w)))
  for (const url of ['http://127.0.0.1:8002', 'http://[::1]:8002', 'https://gw.example.com']) {
    t.notOk(load(['--upstream-rs', RS, '--public-url', url]).warnings.some((w) => /plain http/.test(w)), url)
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

t.test('parseGatewayOptions: the minimal plugin options', async (t) => {
  const { options, warnings } = parseGatewayOptions({ publicUrl: 'https://gw.example.com/', upstreamRs: RS })
  t.match(options, { publicUrl: 'https://gw.example.com', upstreamRs: RS, codeTtl: 300, secretGenerated: true, username: 'gateway_user' })
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
    refreshGrace: 5
  }
  const { options, warnings } = parseGatewayOptions(input)
  t.same(options.upstreamScopes, ['repo', 'read:org'])
  t.same(options.secrets, [SECRET_A, SECRET_B])
  t.equal(options.secretGenerated, false)
  t.equal(options.codeTtl, 60)
  t.equal(options.refreshGrace, 5)
  t.same(warnings, [])
  t.same(parseGatewayOptions({ ...input, upstreamScopes: [] }).options.upstreamScopes, undefined, 'an empty array is no scopes')
})

t.test('parseGatewayOptions: converts numeric strings and numbers, ignores undefined', async (t) => {
  const { options } = parseGatewayOptions({ publicUrl: 'http://localhost:3000', upstreamRs: RS, codeTtl: '90', upstreamClientId: 12345, upstreamAs: undefined })
  t.equal(options.codeTtl, 90)
  t.equal(options.upstreamClientId, '12345')
  t.equal(options.upstreamAs, undefined)
})

t.test('parseGatewayOptions: bad options, named as camelCase keys, all at once', async (t) => {
  const error = configError(() => parseGatewayOptions({
    publicUrl: 'https://gw.example.com#x',
    codeTtl: 12.5,
    flowTtl: -1,
    upstreamScopes: ['ok', 'not ok'],
    secret: ['too short'],
    password: ''
  }))
  t.same(error.problems, [
    'publicUrl: must be an http(s) URL without a query or fragment',
    'upstreamRs: is required',
    'upstreamScopes: must be scope names separated by spaces or commas',
    'password: must be 1 to 1024 characters',
    'secret: must be one or more comma-separated secrets of at least 32 characters each',
    'codeTtl: must be an integer from 1 to 600 (seconds)',
    'flowTtl: must be an integer from 1 to 2147483647 (seconds)'
  ])
  t.notMatch(error.message, 'too short')
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
})

t.test('parseGatewayOptions: takes back what loadConfig resolved, unchanged (server.ts hands it to the plugin)', async (t) => {
  const argv = EVERY_SETTING.flatMap(([flag, , value]) => [flag, value])
  const { gateway } = load(argv, { ...CREDS, MCP_GATEWAY_MCP_SCOPE: 'tools' })
  const { secrets, secretGenerated: _generated, ...rest } = gateway
  const { options, warnings } = parseGatewayOptions({ ...rest, secret: secrets })
  t.same(options, gateway)
  t.same(warnings, [])
})
