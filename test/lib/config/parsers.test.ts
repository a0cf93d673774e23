// The value parsers (lib/config/parsers.ts) for integers, booleans, URLs, scopes and proxy addresses, through both
// entry points.
import t from 'tap'
import { loadConfig, parseGatewayOptions } from '../../../lib/config.js'
import { RS, CREDS, PLUGIN, load, configError } from '../../helpers/config.js'

const BOOLEAN_RULE = '--disable-get-stream (MCP_GATEWAY_DISABLE_GET_STREAM): must be true, false, 1 or 0'

t.test('loadConfig: integers are converted strictly', async (t) => {
  const ok = load(['--upstream-rs', RS, '--port', '0', '--refresh-grace', '0', '--code-ttl', ' 600 '])
  t.equal(ok.server.port, 0)
  t.equal(ok.gateway.refreshGrace, 0)
  t.equal(ok.gateway.codeTtl, 600, 'surrounding spaces are tolerated')
  for (const bad of ['12.5', '0x10', '1e3', 'true', '-0', '+1', '99999999999999999999']) {
    const error = configError(() => loadConfig(['--upstream-rs', RS, '--flow-ttl', bad], {}))
    t.same(error.problems,
      ['--flow-ttl (MCP_GATEWAY_FLOW_TTL): must be an integer from 1 to 2147483647 (seconds)'], bad)
  }
})

t.test('loadConfig: upstream scopes split on spaces and commas', async (t) => {
  const cases: Array<[string, string[] | undefined]> = [
    ['repo read:org', ['repo', 'read:org']],
    ['repo,read:org', ['repo', 'read:org']],
    [' repo, read:org  user ', ['repo', 'read:org', 'user']],
    [' , ', undefined]
  ]
  for (const [input, expected] of cases) {
    t.same(load(['--upstream-rs', RS, '--upstream-scopes', input]).gateway.upstreamScopes, expected,
      JSON.stringify(input))
  }
})

t.test('loadConfig: trailing slashes are stripped from the public and upstream MCP URLs only', async (t) => {
  const { gateway } = load([
    '--public-url', 'https://gw.example.com/base//', '--upstream-rs', 'https://mcp.example.com/mcp/?tenant=1',
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
  for (const bad of [
    '', ',', 'yes', '1', '10.0.0.0/33', 'fd00::/129', '10.0.0.0/8/8', '::1/255.0.0.0', 'example.com'
  ]) {
    const error = configError(() => loadConfig(['--upstream-rs', RS, `--trust-proxy=${bad}`], {}))
    t.same(error.problems, [
      '--trust-proxy (MCP_GATEWAY_TRUST_PROXY): must be true, false, or comma-separated IP addresses/CIDR ranges'
    ], bad)
  }
})

t.test('loadConfig: every log level', async (t) => {
  for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) {
    t.equal(load(['--upstream-rs', RS, '--log-level', level]).server.logLevel, level)
  }
})

t.test('loadConfig: --disable-get-stream is a flag without a value; the variable takes true/false/1/0', async (t) => {
  t.equal(load(['--upstream-rs', RS, '--disable-get-stream']).gateway.disableGetStream, true)
  t.equal(load(['--upstream-rs', RS, '--disable-get-stream'],
    { MCP_GATEWAY_DISABLE_GET_STREAM: 'false' }).gateway.disableGetStream, true, 'the flag wins')
  for (const [value, expected] of [['true', true], ['TRUE', true], [' True ', true], ['1', true], ['false', false],
    ['False', false], ['0', false]] as const) {
    t.equal(load([], { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_DISABLE_GET_STREAM: value }).gateway.disableGetStream,
      expected, `variable ${value}`)
    t.equal(load(['--upstream-rs', RS, `--disable-get-stream=${value}`]).gateway.disableGetStream, expected,
      `--disable-get-stream=${value}`)
  }
  for (const bad of ['yes', 'no', 'on', '2', '-1', 'truefalse']) {
    const error = configError(() => loadConfig([],
      { MCP_GATEWAY_UPSTREAM_RS: RS, MCP_GATEWAY_DISABLE_GET_STREAM: bad }))
    t.same(error.problems, [BOOLEAN_RULE], bad)
  }
  t.same(configError(() => loadConfig(['--upstream-rs', RS, '--disable-get-stream', 'false'], {})).problems,
    ['unexpected argument #4 (not shown): every setting is a --flag, see --help'],
    'a separate value is a stray argument')
})

t.test('parseGatewayOptions: disableGetStream is a boolean, or its string', async (t) => {
  t.equal(parseGatewayOptions({ ...PLUGIN, disableGetStream: true }).options.disableGetStream, true)
  t.equal(parseGatewayOptions({ ...PLUGIN, disableGetStream: false }).options.disableGetStream, false)
  t.equal(parseGatewayOptions({ ...PLUGIN, disableGetStream: 'TRUE' }).options.disableGetStream, true)
  for (const bad of [1, 0, 'yes', null, {}]) {
    t.same(configError(() => parseGatewayOptions({ ...PLUGIN, disableGetStream: bad })).problems,
      ['disableGetStream: must be true, false, 1 or 0'], String(bad))
  }
})

t.test('loadConfig: proxy timeout and maximum body size bounds', async (t) => {
  const ok = load(['--upstream-rs', RS, '--proxy-timeout', '1', '--max-body-size', '1024'])
  t.equal(ok.gateway.proxyTimeout, 1)
  t.equal(ok.gateway.maxBodySize, 1024)
  const top = load([], {
    MCP_GATEWAY_UPSTREAM_RS: RS,
    MCP_GATEWAY_PROXY_TIMEOUT: '2147483647',
    MCP_GATEWAY_MAX_BODY_SIZE: '1073741824'
  })
  t.equal(top.gateway.proxyTimeout, 2147483647)
  t.equal(top.gateway.maxBodySize, 1073741824)
  for (const [timeout, size] of [['0', '1023'], ['2147483648', '1073741825'], ['1.5', '16MiB'], ['-1', '1e6']]) {
    const error = configError(() => loadConfig(['--upstream-rs', RS, '--proxy-timeout', timeout as string,
      '--max-body-size', size as string], {}))
    t.same(error.problems, [
      '--proxy-timeout (MCP_GATEWAY_PROXY_TIMEOUT): must be an integer from 1 to 2147483647 (milliseconds)',
      '--max-body-size (MCP_GATEWAY_MAX_BODY_SIZE): must be an integer from 1024 to 1073741824 (bytes)'
    ], `${timeout as string} ${size as string}`)
  }
  t.same(configError(() => loadConfig(['--upstream-rs', RS, '--proxy-timeout'], {})).problems,
    ['--proxy-timeout (MCP_GATEWAY_PROXY_TIMEOUT): needs a value'])
})
