// Client ID Metadata Documents (issue 18; spec checklist §1.5; draft-ietf-oauth-client-id-metadata-document):
// the client id URL and the document it names, checked before either is trusted.
import t from 'tap'
import { clientFromDocument, documentLifetimeMs, hostAllowed, isClientIdUrl, isHostPattern } from '../../lib/client-metadata-document.js'

const URL_ID = 'https://claude.ai/oauth/mcp-oauth-client-metadata'
const doc = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  client_id: URL_ID,
  client_name: 'Claude Code',
  redirect_uris: ['http://localhost/callback', 'http://127.0.0.1/callback'],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
  ...overrides
})

t.test('CIMD §3: a client id URL is https with a path, no dot segments, fragment or user information', async (t) => {
  for (const id of [URL_ID, 'https://app.example/client.json', 'https://app.example:8443/a/b?v=1',
    'https://vscode.dev/redirect/client']) {
    t.ok(isClientIdUrl(id), id)
  }
  for (const id of ['http://app.example/client.json', 'https://app.example', 'https://app.example/',
    'https://app.example/a/../client.json', 'https://app.example/./client.json', 'https://app.example/%2e%2e/x',
    'https://app.example/%2E/x', 'https://app.example/client.json#x', 'https://user:pw@app.example/client.json',
    'https://user@app.example/client.json', 'https:///client.json', 'https://[bad/client.json',
    'https://App.example/client.json', 'https://app.example:443/client.json',
    '0oa1b2c3d4', 'gwc_registered-client-id', '']) {
    t.notOk(isClientIdUrl(id), JSON.stringify(id))
  }
})

t.test('a valid document becomes a public client with the same rules for redirect URIs', async (t) => {
  const verdict = clientFromDocument(URL_ID, doc({ logo_uri: 'https://claude.ai/logo.png', contacts: 'not a list' }))
  t.same(verdict, {
    ok: true,
    value: {
      redirect_uris: ['http://localhost/callback', 'http://127.0.0.1/callback'],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      client_name: 'Claude Code',
      logo_uri: 'https://claude.ai/logo.png'
    }
  }, 'port-less loopback redirect URIs are kept as listed (RFC 8252 §7.3 port variance applies at /authorize)')
  const minimal = clientFromDocument(URL_ID, { client_id: URL_ID, client_name: 'App', redirect_uris: ['https://app.example/cb'] })
  t.same(minimal.ok && minimal.value.grant_types, ['authorization_code'], 'grant types default to the code flow')
  t.same(minimal.ok && minimal.value.token_endpoint_auth_method, 'none', 'no method named: a public client')
})

t.test('a document is refused with a reason for each way it can be wrong', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['not an object', ['a'], /not a JSON object/],
    ['null', null, /not a JSON object/],
    ['client_id of another URL', doc({ client_id: 'https://evil.example/client.json' }), /client_id is not the URL/],
    ['client_id that differs only by a slash', doc({ client_id: `${URL_ID}/` }), /client_id is not the URL/],
    ['no client_id', doc({ client_id: undefined }), /client_id is not the URL/],
    ['a client secret', doc({ client_secret: 's' }), /must not contain a client secret/],
    ['a secret method', doc({ token_endpoint_auth_method: 'client_secret_basic' }), /cannot use a shared secret/],
    ['client_secret_jwt', doc({ token_endpoint_auth_method: 'client_secret_jwt' }), /cannot use a shared secret/],
    ['a method that is not a string', doc({ token_endpoint_auth_method: 3 }), /cannot use a shared secret/],
    ['private_key_jwt, not supported yet', doc({ token_endpoint_auth_method: 'private_key_jwt' }),
      /private_key_jwt is not supported; use none/],
    ['no redirect URIs', doc({ redirect_uris: [] }), /non-empty list/],
    ['redirect URIs that are not a list', doc({ redirect_uris: 'https://app.example/cb' }), /non-empty list/],
    ['a redirect URI that is not a string', doc({ redirect_uris: [1] }), /non-empty list/],
    ['an http redirect URI off loopback', doc({ redirect_uris: ['http://app.example/cb'] }), /only on loopback/],
    ['a javascript: redirect URI', doc({ redirect_uris: ['javascript:alert(1)'] }), /scheme is not allowed/],
    ['grant types without the code flow', doc({ grant_types: ['client_credentials'] }), /authorization_code/],
    ['grant types that are not a list', doc({ grant_types: 'authorization_code' }), /authorization_code/]
  ]
  for (const [what, document, reason] of cases) {
    const verdict = clientFromDocument(URL_ID, document)
    t.equal(verdict.ok, false, what)
    t.match(verdict.ok ? '' : verdict.reason, reason, `${what}: says why`)
  }
})

t.test('cache lifetime: max-age within the bounds; no-store, no-cache or nothing get the floor', async (t) => {
  const bounds = { minMs: 300_000, maxMs: 86_400_000 }
  t.equal(documentLifetimeMs('public, max-age=3600', bounds), 3_600_000)
  t.equal(documentLifetimeMs('max-age="7200"', bounds), 7_200_000, 'a quoted value')
  t.equal(documentLifetimeMs('max-age=10', bounds), 300_000, 'raised to the floor, so a burst fetches once')
  t.equal(documentLifetimeMs('max-age=31536000', bounds), 86_400_000, 'lowered to a day')
  t.equal(documentLifetimeMs('max-age=99999999999', bounds), 300_000, 'an absurd number is no number')
  t.equal(documentLifetimeMs('no-store', bounds), 300_000)
  t.equal(documentLifetimeMs('max-age=3600, no-cache', bounds), 300_000)
  t.equal(documentLifetimeMs('s-maxage=3600', bounds), 300_000, 'only max-age counts')
  t.equal(documentLifetimeMs(undefined, bounds), 300_000)
})

t.test('--cimd-allowed-hosts: a host name, or *. and a domain whose hosts (not itself) it allows', async (t) => {
  for (const pattern of ['claude.ai', '*.example.com', 'localhost', 'vscode.dev', 'a-b.c1.example']) {
    t.ok(isHostPattern(pattern), pattern)
  }
  for (const pattern of ['*', '*.', 'claude.ai/', 'https://claude.ai', 'a..b', '.example.com', '*example.com',
    'claude.ai:443', 'Claude.AI', 'ex ample.com', '']) {
    t.notOk(isHostPattern(pattern), JSON.stringify(pattern))
  }
  const allowed = ['claude.ai', '*.example.com']
  t.ok(hostAllowed(URL_ID, allowed))
  t.ok(hostAllowed('https://mcp.example.com/client.json', allowed))
  t.ok(hostAllowed('https://a.b.example.com:8443/client.json', allowed), 'any depth, any port')
  t.notOk(hostAllowed('https://example.com/client.json', allowed), '*. does not allow the domain itself')
  t.notOk(hostAllowed('https://evilexample.com/client.json', allowed))
  t.notOk(hostAllowed('https://claude.ai.evil.example/client.json', allowed))
  t.notOk(hostAllowed('https://sub.claude.ai/client.json', allowed), 'an exact host allows no subdomain')
  t.ok(hostAllowed('https://anything.example/client.json', []), 'no patterns: any host')
})

t.test('--redirect-uri-allow applies to a document\'s redirect URIs: one outside the patterns refuses the client', async (t) => {
  t.match(clientFromDocument(URL_ID, doc(), ['loopback']), { ok: true })
  t.match(clientFromDocument(URL_ID, doc(), ['https://claude.ai/*']), { ok: false, reason: /operator allows/ })
  t.match(clientFromDocument(URL_ID, doc({ redirect_uris: ['https://claude.ai/api/cb'] }), ['https://claude.ai/*']),
    { ok: true })
})

t.test('MCP 2025-11-25: client_name is a required field of a document, a non-empty string', async (t) => {
  for (const name of [undefined, 42, '', '   ']) {
    t.match(clientFromDocument(URL_ID, doc({ client_name: name })), { ok: false, reason: /client_name is required/ },
      JSON.stringify(name))
  }
  t.match(clientFromDocument(URL_ID, doc({ client_name: 'Claude Code' })), { ok: true, value: { client_name: 'Claude Code' } })
})
