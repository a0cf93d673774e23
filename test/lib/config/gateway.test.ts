// parseGatewayOptions and the resolution it shares with loadConfig (lib/config/gateway.ts): plugin options, and
// the warnings about a risky but valid choice.
import t from 'tap'
import { loadConfig, parseGatewayOptions, type GatewayOptions } from '../../../lib/config.js'
import { RS, SECRET_A, SECRET_B, CREDS, PLUGIN, load, configError, everyFlag, OWNED } from '../../helpers/config.js'

t.test('loadConfig: both upstream endpoints without scopes warn about GitHub read-only access', async (t) => {
  const endpoints = ['--upstream-authorize-endpoint', 'https://github.com/login/oauth/authorize',
    '--upstream-token-endpoint', 'https://github.com/login/oauth/access_token']
  const bare = load(['--upstream-rs', RS, '--secret', SECRET_A, ...endpoints])
  t.ok(bare.warnings.some((w) =>
    /both upstream endpoints are set but --upstream-scopes \(MCP_GATEWAY_UPSTREAM_SCOPES\) is not/.test(w)))
  const scoped = load(['--upstream-rs', RS, '--secret', SECRET_A, ...endpoints, '--upstream-scopes', 'repo'])
  t.notOk(scoped.warnings.some((w) => /upstream endpoints/.test(w)))
  const one = load(['--upstream-rs', RS, '--secret', SECRET_A, ...endpoints.slice(0, 2)])
  t.notOk(one.warnings.some((w) => /upstream endpoints/.test(w)), 'one endpoint: discovery still runs')
})

t.test('loadConfig: an upstream client secret without a client id warns', async (t) => {
  const { warnings } = load(['--upstream-rs', RS, '--secret', SECRET_A, '--upstream-client-secret', 'abc'])
  t.ok(warnings.some((w) =>
    /--upstream-client-secret \(MCP_GATEWAY_UPSTREAM_CLIENT_SECRET\) is ignored without --upstream-client-id/.test(w)))
  t.notMatch(warnings.join('\n'), /abc/, 'the value is not echoed')
})

t.test('loadConfig: a plain-http public URL on a real host warns', async (t) => {
  const { warnings } = load(['--upstream-rs', RS, '--public-url', 'http://gw.example.com'], CREDS)
  t.ok(warnings.some((w) => /--public-url \(MCP_GATEWAY_PUBLIC_URL\) is plain http on a non-loopback host/.test(w)))
  for (const url of ['http://127.0.0.1:8002', 'http://[::1]:8002', 'https://gw.example.com']) {
    t.notOk(load(['--upstream-rs', RS, '--public-url', url], CREDS).warnings.some((w) => /plain http/.test(w)), url)
  }
})

t.test('parseGatewayOptions: the minimal plugin options', async (t) => {
  const { options, warnings } = parseGatewayOptions({ publicUrl: 'http://localhost:8002/', upstreamRs: RS })
  t.match(options, {
    publicUrl: 'http://localhost:8002',
    upstreamRs: RS,
    codeTtl: 300,
    secretGenerated: true,
    username: 'gateway_user'
  })
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
  t.same(parseGatewayOptions({ ...input, upstreamScopes: [] }).options.upstreamScopes, undefined,
    'an empty array is no scopes')
})

t.test('parseGatewayOptions: converts numeric strings and numbers, ignores undefined', async (t) => {
  const { options } = parseGatewayOptions({
    publicUrl: 'http://localhost:3000',
    upstreamRs: RS,
    codeTtl: '90',
    upstreamClientId: 12345,
    upstreamAs: undefined
  })
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
  t.same(input, {
    ...PLUGIN,
    upstreamHeaders: { 'X-Number': 42 },
    allowedOrigins: ['http://localhost:6274'],
    codeTTL: 5
  })
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
    'publicUrl: must be an http(s) URL without a query or fragment', 'upstreamRs: is required',
    'upstreamScopes: must be scope names separated by spaces or commas', 'password: must be 1 to 1024 characters',
    'secret: must be one or more comma-separated secrets of at least 32 characters each',
    'codeTtl: must be an integer from 1 to 600 (seconds)', 'flowTtl: must be an integer from 1 to 2147483647 (seconds)',
    'allowedOrigins: must be at most 64 comma-separated origins, each http(s)://host[:port] without a path, query, ' +
      'fragment or trailing slash',
    'upstreamHeaders: must be at most 64 "Name: value" headers (one per flag, separated by ; or newlines in the ' +
      'variable): names RFC 9110 tokens, values non-empty visible ASCII with spaces or tabs only inside',
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
    publicUrl: 'http://localhost:3000',
    upstreamRs: RS,
    secret: SECRET_A,
    username: 'a',
    password: 'b',
    codeTTL: 5,
    prefix: '/gw',
    logLevel: 'info'
  })
  t.same(warnings, ['unknown option "codeTTL" ignored'])
  t.notOk('codeTTL' in options)
  t.notOk('prefix' in options)
})

t.test('parseGatewayOptions: takes back what loadConfig resolved, unchanged ' +
  '(server.ts hands it to the plugin)', async (t) => {
  const argv = everyFlag()
  const { gateway } = load(argv, { ...CREDS, MCP_GATEWAY_MCP_SCOPE: 'tools' })
  const { secrets, secretGenerated: _generated, ...rest } = gateway
  const { options, warnings } = parseGatewayOptions({ ...rest, secret: secrets })
  t.same(options, gateway)
  t.same(warnings, [])
})

t.test('--metrics-path: a path, or off', async (t) => {
  t.equal(load(['--upstream-rs', RS]).gateway.metricsPath, false,
    'off on the main app unless asked (issue 15 finding 12)')
  t.equal(load(['--upstream-rs', RS, '--metrics-path', '/metrics']).gateway.metricsPath, '/metrics')
  t.equal(load(['--upstream-rs', RS, '--metrics-path', 'off']).gateway.metricsPath, false)
  t.equal(parseGatewayOptions({
    publicUrl: 'http://localhost:8002',
    upstreamRs: RS,
    secret: SECRET_A,
    metricsPath: false
  }).options.metricsPath, false)
  const error = configError(() => loadConfig(['--upstream-rs', RS, '--metrics-path', 'metrics'], {}))
  t.match(error.message, /--metrics-path \(MCP_GATEWAY_METRICS_PATH\): must be a path such as \/metrics, or off/)
})

t.test('client registration settings (issue 18): methods, allowed hosts and redirect URI patterns, checked entry by entry', async (t) => {
  const { options } = parseGatewayOptions({
    ...PLUGIN,
    clientRegistration: ' DCR , cimd,dcr',
    cimdAllowedHosts: 'Claude.ai *.Example.com',
    redirectUriAllow: ['loopback', 'https://claude.ai/API/*']
  })
  t.same(options.clientRegistration, ['dcr', 'cimd'], 'lowercased, deduplicated')
  t.same(options.cimdAllowedHosts, ['claude.ai', '*.example.com'], 'host names are case-insensitive')
  t.same(options.redirectUriAllow, ['loopback', 'https://claude.ai/API/*'], 'a path is case-sensitive: kept as given')
  const defaults = parseGatewayOptions(PLUGIN).options
  t.same(defaults.clientRegistration, ['dcr', 'cimd'], 'both by default')
  t.same([defaults.cimdAllowedHosts, defaults.redirectUriAllow, defaults.cimdAllowPrivate], [[], [], false])

  for (const [key, value] of [['clientRegistration', ''], ['clientRegistration', 'dcr,oidc'],
    ['cimdAllowedHosts', 'https://claude.ai'], ['cimdAllowedHosts', '*'], ['redirectUriAllow', 'https://claude.ai*'],
    ['redirectUriAllow', 'http://evil.example/cb']] as const) {
    const error = configError(() => parseGatewayOptions({ ...PLUGIN, [key]: value }))
    t.equal(error.problems.length, 1, `${key}=${value}`)
    t.match(error.problems[0], new RegExp(`^${key}: must be `))
  }
})
