// The list parsers (lib/config/parsers.ts) for allowed origins, pinned upstream headers and forwarded headers,
// from flags, variables and plugin options.
import t from 'tap'
import { loadConfig, parseGatewayOptions } from '../../../lib/config.js'
import { RS, PLUGIN, load, configError, OWNED } from '../../helpers/config.js'

const ORIGINS_RULE = '--allowed-origins (MCP_GATEWAY_ALLOWED_ORIGINS): must be at most 64 comma-separated ' +
  'origins, each http(s)://host[:port] without a path, query, fragment or trailing slash'
const HEADERS_RULE = '--upstream-header (MCP_GATEWAY_UPSTREAM_HEADERS): must be at most 64 "Name: value" headers ' +
  '(one per flag, separated by ; or newlines in the variable): names RFC 9110 tokens, ' +
  'values non-empty visible ASCII with spaces or tabs only inside'
const FORWARD_RULE =
  '--forward-headers (MCP_GATEWAY_FORWARD_HEADERS): must be at most 64 comma-separated header names (RFC 9110 tokens)'

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
  t.same(load([], {
    MCP_GATEWAY_UPSTREAM_RS: RS,
    MCP_GATEWAY_ALLOWED_ORIGINS: 'https://app.example'
  }).gateway.allowedOrigins, ['https://app.example'], 'from the environment')
  const flagged = load(['--upstream-rs', RS, '--allowed-origins', 'https://flag.example'],
    { MCP_GATEWAY_ALLOWED_ORIGINS: 'https://env.example' })
  t.same(flagged.gateway.allowedOrigins, ['https://flag.example'], 'the flag wins')
})

t.test('loadConfig: an allowed origin with anything but scheme, host and port is refused, unnamed', async (t) => {
  const bad = [
    'https://app.example/', 'https://app.example/path', 'https://app.example?x=1', 'https://app.example#top',
    'https://app.example\\x', 'https://user:pw@app.example', 'ftp://app.example', 'app.example', '*', 'null',
    'file:///etc', 'http://', 'https://*.example.com', 'https://app.example.', 'https://app.example:99999',
    'https://app.example:port', 'https://app .example', 'https://app.example,ws://x.example'
  ]
  for (const value of bad) {
    const error = configError(() => loadConfig(['--upstream-rs', RS, '--allowed-origins', value], {}))
    t.same(error.problems, [ORIGINS_RULE], value)
  }
  const many = Array.from({ length: 65 }, (_, i) => `https://o${i}.example`).join(',')
  t.same(configError(() => loadConfig(['--upstream-rs', RS, '--allowed-origins', many], {})).problems, [ORIGINS_RULE],
    'at most 64')
  t.same(load(['--upstream-rs', RS, '--allowed-origins',
    many.replace(/,https:\/\/o64\.example$/, '')]).gateway.allowedOrigins.length, 64)
  const error = configError(() => loadConfig([],
    { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_ALLOWED_ORIGINS: 'https://private-name.example/secret-path' }))
  t.same(error.problems, [ORIGINS_RULE], 'named by flag and variable')
  t.notMatch(error.message, /private-name|secret-path/, 'the value is not repeated')
})

t.test('parseGatewayOptions: allowedOrigins as a string or an array', async (t) => {
  t.same(parseGatewayOptions({ ...PLUGIN, allowedOrigins: 'https://a.example, HTTPS://B.example:443' })
    .options.allowedOrigins, ['https://a.example', 'https://b.example'])
  t.same(parseGatewayOptions({ ...PLUGIN, allowedOrigins: ['http://localhost:6274', ' https://a.example ', ''] })
    .options.allowedOrigins, ['http://localhost:6274', 'https://a.example'])
  t.same(parseGatewayOptions({ ...PLUGIN, allowedOrigins: [] }).options.allowedOrigins, [])
  for (const bad of [
    ['https://a.example/'], [{}], { origin: 'https://a.example' }, Array.from({ length: 65 }, () => 'https://a.example')
  ]) {
    const rule = 'allowedOrigins: must be at most 64 comma-separated origins, each http(s)://host[:port] without a ' +
      'path, query, fragment or trailing slash'
    t.same(configError(() => parseGatewayOptions({ ...PLUGIN, allowedOrigins: bad })).problems, [rule],
      JSON.stringify(bad))
  }
})

t.test('loadConfig: pinned upstream headers: a repeatable flag, or ; or newlines in the variable', async (t) => {
  const flags = load(['--upstream-rs', RS, '--upstream-header', 'X-MCP-Toolsets: repos,issues',
    '--upstream-header=X-MCP-Readonly:true',
    '--upstream-header', '  X-Tabbed:\t a \t b\t'])
  t.same(flags.gateway.upstreamHeaders,
    { 'x-mcp-toolsets': 'repos,issues', 'x-mcp-readonly': 'true', 'x-tabbed': 'a \t b' },
    'names lowercased, values trimmed')
  const env = load([], {
    MCP_GATEWAY_UPSTREAM_RS: RS,
    MCP_GATEWAY_UPSTREAM_HEADERS: 'X-MCP-Toolsets: repos,issues; X-MCP-Readonly: true\r\nX-Third: 3\n;\n'
  })
  t.same(env.gateway.upstreamHeaders, { 'x-mcp-toolsets': 'repos,issues', 'x-mcp-readonly': 'true', 'x-third': '3' })
  const both = load(['--upstream-rs', RS, '--upstream-header', 'X-Flag: 1'],
    { MCP_GATEWAY_UPSTREAM_HEADERS: 'X-Env: 2' })
  t.same(both.gateway.upstreamHeaders, { 'x-flag': '1' }, 'flags replace the variable, they are not merged')
  t.same(load(['--upstream-rs', RS, '--upstream-header', 'X-Semi: a;b=c']).gateway.upstreamHeaders,
    { 'x-semi': 'a;b=c' }, 'a flag holds one header, ; included')
  t.same(load(['--upstream-rs', RS, '--upstream-header', 'X-Colon: a:b']).gateway.upstreamHeaders, { 'x-colon': 'a:b' },
    'split at the first colon')
  t.same(load(['--upstream-rs', RS, '--upstream-header=']).gateway.upstreamHeaders, {}, 'an empty flag adds nothing')
  t.same(load(['--upstream-rs', RS, '--upstream-header', "!#$%&'*+-.^_`|~09azAZ: ~"]).gateway.upstreamHeaders,
    { "!#$%&'*+-.^_`|~09azaz": '~' }, 'every tchar')
  const proto = load(['--upstream-rs', RS, '--upstream-header', '__proto__: x']).gateway.upstreamHeaders
  t.ok(Object.hasOwn(proto, '__proto__'), 'a __proto__ header is a plain key')
  t.equal(Object.getPrototypeOf(proto), Object.prototype)
})

t.test('loadConfig: --upstream-header without a value is reported', async (t) => {
  for (const argv of [['--upstream-header'], ['--upstream-header', 'X-A: 1', '--upstream-header']]) {
    t.same(configError(() => loadConfig(['--upstream-rs', RS, ...argv], {})).problems,
      ['--upstream-header (MCP_GATEWAY_UPSTREAM_HEADERS): needs a value'], argv.join(' '))
  }
})

t.test('loadConfig: malformed pinned headers are refused without repeating them', async (t) => {
  const bad = [
    'no-colon-secret', ': secretvalue', 'X A: secretvalue', 'X-Ä: secretvalue', 'X-(A): secretvalue', 'X-Empty:',
    'X-Blank:  \t ', 'X-Bin: secret\u0001value', 'X-Del: secret\u007fvalue', 'X-Utf: secretvalüe',
    'X-Nul: secret\u0000value'
  ]
  for (const value of bad) {
    const error = configError(() => loadConfig(['--upstream-rs', RS, '--upstream-header', value], {}))
    t.same(error.problems, [HEADERS_RULE], JSON.stringify(value))
    t.notMatch(error.message, 'secret', 'not repeated')
  }
  const error = configError(() => loadConfig(['--upstream-rs', RS, '--upstream-header', 'X-Ok: fine',
    '--upstream-header', 'X-Api-Key: hunter2\u0007'], {}))
  t.same(error.problems, [HEADERS_RULE], 'one bad header among good ones')
  t.notMatch(error.message, /hunter2|fine/)
  const many = Array.from({ length: 65 }, (_, i) => `X-H${i}: ${i}`)
  t.same(configError(() => loadConfig([], {
    MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_UPSTREAM_HEADERS: many.join(';')
  })).problems, [HEADERS_RULE], 'at most 64')
  t.equal(Object.keys(load([], {
    MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_UPSTREAM_HEADERS: many.slice(1).join(';')
  }).gateway.upstreamHeaders).length, 64)
})

t.test('loadConfig: the headers the gateway owns cannot be pinned, named but their value never shown', async (t) => {
  for (const name of OWNED) {
    const mixed = name.toUpperCase()
    const error = configError(() =>
      loadConfig(['--upstream-rs', RS, '--upstream-header', `${mixed}: pinned-secret-value`], {}))
    t.same(error.problems, [
      `--upstream-header (MCP_GATEWAY_UPSTREAM_HEADERS): must not pin ${name}: the gateway owns ${OWNED.join(', ')}`
    ], name)
    t.notMatch(error.message, 'pinned-secret-value')
  }
})

t.test('loadConfig: a header pinned twice is refused, whatever its case', async (t) => {
  const error = configError(() => loadConfig([],
    { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_UPSTREAM_HEADERS: 'X-Key: first-secret; x-KEY: second-secret' }))
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
    t.same(parseGatewayOptions({ ...PLUGIN, upstreamHeaders: form }).options.upstreamHeaders, expected,
      JSON.stringify(form))
  }
  t.same(parseGatewayOptions({ ...PLUGIN, upstreamHeaders: { 'X-Number': 42 } }).options.upstreamHeaders,
    { 'x-number': '42' }, 'numbers are converted')
  const rule = 'upstreamHeaders: must be at most 64 "Name: value" headers (one per flag, separated by ; or newlines ' +
    'in the variable): names RFC 9110 tokens, values non-empty visible ASCII with spaces or tabs only inside'
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
  t.same(configError(() => parseGatewayOptions({ ...PLUGIN, upstreamHeaders: { 'X-A': '1', 'x-a': '2' } })).problems,
    ['upstreamHeaders: must not set x-a twice'])
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
  t.same(load([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_FORWARD_HEADERS: 'X-Tenant' }).gateway.forwardHeaders,
    ['x-tenant'], 'from the environment')
  const tooMany = Array.from({ length: 65 }, (_, i) => `x-${i}`).join(',')
  for (const bad of ['X-A:', 'a/b', 'X-Ä', '"quoted"', 'x;y', tooMany]) {
    t.same(configError(() => loadConfig(['--upstream-rs', RS, '--forward-headers', bad], {})).problems,
      [FORWARD_RULE], bad.slice(0, 20))
  }
  t.notMatch(configError(() => loadConfig(['--upstream-rs', RS, '--forward-headers', 'private-name/x'], {})).message,
    'private-name')
  for (const name of OWNED) {
    const error = configError(() =>
      loadConfig(['--upstream-rs', RS, '--forward-headers', `X-Ok,${name.toUpperCase()}`], {}))
    t.same(error.problems,
      [`--forward-headers (MCP_GATEWAY_FORWARD_HEADERS): must not forward ${name}: ` +
        `the gateway owns ${OWNED.join(', ')}`], name)
  }
})

t.test('parseGatewayOptions: forwardHeaders as a string or an array', async (t) => {
  t.same(parseGatewayOptions({ ...PLUGIN, forwardHeaders: 'X-A,X-B' }).options.forwardHeaders, ['x-a', 'x-b'])
  t.same(parseGatewayOptions({ ...PLUGIN, forwardHeaders: ['X-A', ' X-B '] }).options.forwardHeaders, ['x-a', 'x-b'])
  const rule = 'forwardHeaders: must be at most 64 comma-separated header names (RFC 9110 tokens)'
  for (const bad of [['X A:'], [{}], { name: 'x' }]) {
    t.same(configError(() => parseGatewayOptions({ ...PLUGIN, forwardHeaders: bad })).problems, [rule],
      JSON.stringify(bad))
  }
  t.same(configError(() => parseGatewayOptions({ ...PLUGIN, forwardHeaders: ['Authorization'] })).problems,
    [`forwardHeaders: must not forward authorization: the gateway owns ${OWNED.join(', ')}`])
})
