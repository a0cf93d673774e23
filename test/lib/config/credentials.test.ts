// The credentials and secrets rules: default credentials only where no other machine can reach them, and
// generated or rotating secrets.
import t from 'tap'
import { loadConfig, parseGatewayOptions } from '../../../lib/config.js'
import { RS, SECRET_A, SECRET_B, CREDS, load, configError } from '../../helpers/config.js'

t.test('loadConfig: the default credentials are refused on a non-loopback host', async (t) => {
  for (const host of ['0.0.0.0', '::', 'gw.example.com', '192.168.1.10', '::ffff:127.0.0.1']) {
    const error = configError(() => loadConfig(['--upstream-rs', RS, '--host', host], {}))
    t.equal(error.problems.length, 1, host)
    t.match(error.message,
      /^MCP_GATEWAY_PASSWORD: .*refused on host .*set MCP_GATEWAY_USERNAME and MCP_GATEWAY_PASSWORD$/, host)
  }
  // Only the password is a secret: a custom username does not make the published password safe.
  const error = configError(() => loadConfig(['--upstream-rs', RS, '--host', '0.0.0.0'],
    { MCP_GATEWAY_USERNAME: 'alice' }))
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
  const { server, gateway, warnings } = load(['--upstream-rs', RS, '--host', '0.0.0.0'],
    { ...CREDS, MCP_GATEWAY_SECRET: SECRET_A })
  t.equal(server.host, '0.0.0.0')
  t.equal(gateway.username, 'alice')
  t.equal(gateway.publicUrl, 'http://localhost:8002')
  t.same(warnings, ['--public-url (MCP_GATEWAY_PUBLIC_URL) is not set, so clients are sent to http://localhost:8002; ' +
    'set it unless that is how they reach this gateway'])
  t.same(load(['--upstream-rs', RS, '--host', '0.0.0.0', '--public-url', 'https://gw.example.com'],
    { ...CREDS, MCP_GATEWAY_SECRET: SECRET_A }).warnings, [])
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
  t.same(none.problems, ['--secret (MCP_GATEWAY_SECRET): must be one or more comma-separated secrets of at least 32 ' +
    'characters each'])
})

t.test('issue 15 finding 10: default credentials are refused whenever the public URL ' +
  'is not loopback either', async (t) => {
  // The usual setup behind a TLS proxy: a loopback listener, a public https URL.
  const error = configError(() =>
    loadConfig(['--upstream-rs', RS, '--host', '127.0.0.1', '--public-url', 'https://mcp.example.com'], {}))
  t.same(error.problems,
    ['MCP_GATEWAY_PASSWORD: the published default credentials (gateway_user/gateway_pass) are refused with public ' +
      'URL host mcp.example.com, which other machines can reach: set MCP_GATEWAY_USERNAME and MCP_GATEWAY_PASSWORD'])
  t.ok(load(['--upstream-rs', RS, '--host', '127.0.0.1', '--public-url', 'https://mcp.example.com'], CREDS))
  t.ok(load(['--upstream-rs', RS, '--host', '127.0.0.1', '--public-url', 'http://127.0.0.1:8002']),
    'loopback both ways: a try-out')

  // Embedded: no listener is known, so the public URL decides.
  const embedded = configError(() => parseGatewayOptions({ publicUrl: 'https://gw.example.com', upstreamRs: RS }))
  t.match(embedded.message, new RegExp('^password: the published default credentials \\(gateway_user/gateway_pass\\) ' +
    'are refused for publicUrl gw\\.example\\.com'))
  t.ok(parseGatewayOptions({
    publicUrl: 'https://gw.example.com',
    upstreamRs: RS,
    username: 'alice',
    password: 'correct horse battery staple'
  }))
  t.ok(parseGatewayOptions({
    publicUrl: 'http://127.0.0.1:8002',
    upstreamRs: RS
  }).warnings.some((w) => /published defaults/.test(w)))
})
