import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { buildGateway } from '../helpers/gateway.js'

const CLIENT_ID = /^gwc_[A-Za-z0-9_-]{32}$/
const CLIENT_SECRET = /^gws_[A-Za-z0-9_-]{43}$/

async function register (
  app: FastifyInstance,
  payload: unknown,
  headers: Record<string, string> = {}
): Promise<LightMyRequestResponse> {
  return await app.inject({
    method: 'POST',
    url: '/register',
    headers: { 'content-type': 'application/json', ...headers },
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload)
  })
}

function assertNoStore (t: Test, res: LightMyRequestResponse): void {
  t.equal(res.headers['cache-control'], 'no-store', 'OAuth 2.1 §3.2.3: no-store')
  t.equal(res.headers.pragma, 'no-cache')
  t.match(res.headers['content-type'], /^application\/json/)
}

/** Revocation with the client's credentials: 200 proves the secret authenticates, 401 that it does not. */
async function revokeWith (
  app: FastifyInstance,
  form: Record<string, string>,
  headers: Record<string, string> = {}
): Promise<number> {
  const res = await app.inject({
    method: 'POST',
    url: '/revoke',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    payload: new URLSearchParams({ token: 'not-a-token', ...form }).toString()
  })
  return res.statusCode
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`

t.test('RFC 7591 §3.2.1 public client (none): 201, no secret, client_id_issued_at, metadata echoed', async (t) => {
  const { app, clock } = await buildGateway(t)
  const res = await register(app, {
    redirect_uris: ['http://127.0.0.1:33418/callback'],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    client_name: 'Public Client',
    scope: 'mcp'
  })
  t.equal(res.statusCode, 201)
  assertNoStore(t, res)
  const body = res.json()
  t.match(body.client_id, CLIENT_ID)
  t.strictSame(body, {
    client_id: body.client_id,
    client_id_issued_at: Math.floor(clock.now() / 1000),
    redirect_uris: ['http://127.0.0.1:33418/callback'],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    client_name: 'Public Client',
    scope: 'mcp'
  })
  t.notOk('client_secret' in body)
  t.notOk('client_secret_expires_at' in body)
  t.equal(await revokeWith(app, { client_id: body.client_id }), 200, 'the public client authenticates with client_id alone')
})

t.test('RFC 7591 §3.2.1 confidential client_secret_post: secret returned once with client_secret_expires_at 0', async (t) => {
  const { app, clock } = await buildGateway(t)
  const res = await register(app, { redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'client_secret_post' })
  t.equal(res.statusCode, 201)
  assertNoStore(t, res)
  const body = res.json()
  t.match(body.client_secret, CLIENT_SECRET)
  t.strictSame(body, {
    client_id: body.client_id,
    client_secret: body.client_secret,
    client_secret_expires_at: 0,
    client_id_issued_at: Math.floor(clock.now() / 1000),
    redirect_uris: ['https://app.example/cb'],
    token_endpoint_auth_method: 'client_secret_post',
    grant_types: ['authorization_code'],
    response_types: ['code']
  })
  t.equal(await revokeWith(app, { client_id: body.client_id, client_secret: body.client_secret }), 200, 'the returned secret authenticates')
  t.equal(await revokeWith(app, { client_id: body.client_id, client_secret: 'gws_wrong' }), 401, 'a wrong secret does not')
  t.equal(await revokeWith(app, { client_id: body.client_id }), 401, 'a confidential client without its secret does not')

  const again = await register(app, { redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'client_secret_post' })
  t.not(again.json().client_id, body.client_id, 'each registration is a new client')
  t.not(again.json().client_secret, body.client_secret, 'with a new secret')
})

t.test('RFC 7591 §3.2.1 confidential client_secret_basic: secret works in the Authorization header', async (t) => {
  const { app } = await buildGateway(t)
  const res = await register(app, { redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'client_secret_basic' })
  t.equal(res.statusCode, 201)
  const body = res.json()
  t.equal(body.token_endpoint_auth_method, 'client_secret_basic')
  t.match(body.client_secret, CLIENT_SECRET)
  t.equal(body.client_secret_expires_at, 0)
  t.equal(await revokeWith(app, {}, { authorization: basic(body.client_id, body.client_secret) }), 200)
  t.equal(await revokeWith(app, {}, { authorization: basic(body.client_id, 'wrong') }), 401)
})

t.test('RFC 7591 §2 (checklist item 51): token_endpoint_auth_method defaults to client_secret_basic, grant_types to authorization_code', async (t) => {
  const { app } = await buildGateway(t)
  const res = await register(app, { redirect_uris: ['https://app.example/cb'] })
  t.equal(res.statusCode, 201)
  const body = res.json()
  t.equal(body.token_endpoint_auth_method, 'client_secret_basic')
  t.strictSame(body.grant_types, ['authorization_code'])
  t.strictSame(body.response_types, ['code'])
  t.match(body.client_secret, CLIENT_SECRET)
  t.equal(body.client_secret_expires_at, 0)
})

t.test('landscape §4.6 (python-sdk#1650): authorization_code-only registration accepted', async (t) => {
  const { app } = await buildGateway(t)
  const res = await register(app, { redirect_uris: ['http://localhost:3000/cb'], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'] })
  t.equal(res.statusCode, 201)
  t.strictSame(res.json().grant_types, ['authorization_code'])
})

t.test('landscape §4.6 (Copilot CLI): a registration without scope is accepted and no scope is invented', async (t) => {
  const { app } = await buildGateway(t)
  const res = await register(app, { redirect_uris: ['http://127.0.0.1:8080/cb'], token_endpoint_auth_method: 'none' })
  t.equal(res.statusCode, 201)
  t.notOk('scope' in res.json())
})

t.test('landscape §4.1 / checklist item 13: Cursor\'s three redirect URIs in ONE request are accepted', async (t) => {
  const { app } = await buildGateway(t)
  const uris = ['cursor://anysphere.cursor-mcp/oauth/callback', 'https://www.cursor.com/agents/mcp/oauth/callback', 'http://localhost:8787/callback']
  const res = await register(app, { redirect_uris: uris, token_endpoint_auth_method: 'none', client_name: 'Cursor' })
  t.equal(res.statusCode, 201, res.body)
  t.strictSame(res.json().redirect_uris, uris, 'stored and echoed as sent, in order')
})

t.test('landscape §4.1 / RFC 8252 §7.3: VS Code\'s loopback and vscode.dev redirect URIs are accepted', async (t) => {
  const { app } = await buildGateway(t)
  const uris = ['http://127.0.0.1:33418/', 'https://vscode.dev/redirect', 'https://insiders.vscode.dev/redirect']
  const res = await register(app, { redirect_uris: uris, token_endpoint_auth_method: 'none', client_name: 'Visual Studio Code' })
  t.equal(res.statusCode, 201, res.body)
  t.strictSame(res.json().redirect_uris, uris)
})

t.test('landscape §4.1: Claude (claude.ai callback, port-less loopback) and [::1] are accepted', async (t) => {
  const { app } = await buildGateway(t)
  const uris = ['https://claude.ai/api/mcp/auth_callback', 'http://localhost/callback', 'http://127.0.0.1/callback', 'http://[::1]:9000/cb']
  const res = await register(app, { redirect_uris: uris, token_endpoint_auth_method: 'none' })
  t.equal(res.statusCode, 201, res.body)
  t.strictSame(res.json().redirect_uris, uris)
})

t.test('RFC 7591 §3.2.2 / OAuth 2.1 §2.3 (checklist items 13, 14): unsafe redirect URIs are refused with 400 invalid_redirect_uri', async (t) => {
  const { app } = await buildGateway(t)
  const cases: Array<[unknown, string]> = [
    [['javascript:alert(1)'], 'the javascript: scheme is not allowed'],
    [['data:text/html,x'], 'the data: scheme is not allowed'],
    [['http://evil.example/cb'], 'http redirect URIs are allowed only on loopback (127.0.0.1, [::1], localhost); use https'],
    [['https://a.example/cb#frag'], 'redirect URIs must not contain a fragment'],
    [['https://user:pw@a.example/cb'], 'redirect URIs must not contain user information'],
    [['/cb'], 'redirect URIs must be absolute, with a lowercase scheme'],
    [[], 'redirect_uris must be a list of absolute URIs'],
    [[''], 'redirect_uris must be a list of absolute URIs'],
    [['https://ok.example/cb', 'http://evil.example/cb'], 'http redirect URIs are allowed only on loopback (127.0.0.1, [::1], localhost); use https']
  ]
  for (const [uris, description] of cases) {
    const res = await register(app, { redirect_uris: uris, token_endpoint_auth_method: 'none' })
    t.equal(res.statusCode, 400, JSON.stringify(uris))
    assertNoStore(t, res)
    t.strictSame(res.json(), { error: 'invalid_redirect_uri', error_description: description }, JSON.stringify(uris))
  }
})

t.test('RFC 3986 §2 / RFC 7591 §3.2.2: redirect URIs with whitespace, control or non-ASCII characters are invalid_redirect_uri', async (t) => {
  const { app } = await buildGateway(t)
  for (const uri of ['https://a.example/c b', 'https://a.example/c\nb', 'https://a.example/cb\r\nSet-Cookie: x=1', 'https://a.example/cb\u20ac']) {
    const res = await register(app, { redirect_uris: [uri], token_endpoint_auth_method: 'none' })
    t.equal(res.statusCode, 400, JSON.stringify(uri))
    t.equal(res.json().error, 'invalid_redirect_uri', JSON.stringify(uri))
  }
})

t.test('RFC 7591 §2: a registration without redirect_uris is refused', async (t) => {
  const { app } = await buildGateway(t)
  const res = await register(app, { token_endpoint_auth_method: 'none' })
  t.equal(res.statusCode, 400)
  t.strictSame(res.json(), { error: 'invalid_client_metadata', error_description: 'the client metadata is invalid' })
})

t.test('RFC 7591 §3.2.2 (checklist item 51): unsupported grant and response types are invalid_client_metadata', async (t) => {
  const { app } = await buildGateway(t)
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ grant_types: ['refresh_token'] }, 'grant_types must include authorization_code'],
    [{ grant_types: ['implicit'] }, 'the client metadata is invalid'],
    [{ grant_types: ['authorization_code', 'implicit'] }, 'the client metadata is invalid'],
    [{ grant_types: ['client_credentials'] }, 'the client metadata is invalid'],
    [{ grant_types: [] }, 'the client metadata is invalid'],
    [{ response_types: ['token'] }, 'the client metadata is invalid'],
    [{ response_types: ['code', 'token'] }, 'the client metadata is invalid'],
    [{ token_endpoint_auth_method: 'private_key_jwt' }, 'the client metadata is invalid'],
    [{ application_type: 'browser' }, 'the client metadata is invalid'],
    [{ client_name: 'x'.repeat(301) }, 'the client metadata is invalid']
  ]
  for (const [extra, description] of cases) {
    const res = await register(app, { redirect_uris: ['https://a.example/cb'], ...extra })
    t.equal(res.statusCode, 400, JSON.stringify(extra))
    assertNoStore(t, res)
    t.strictSame(res.json(), { error: 'invalid_client_metadata', error_description: description }, JSON.stringify(extra))
  }
})

t.test('RFC 7591 §3.1 (JSON bodies only): text/plain → 400, a form → 415, both invalid_client_metadata (§3.2.2 has no other code)', async (t) => {
  const { app } = await buildGateway(t)
  const text = await register(app, 'hello', { 'content-type': 'text/plain' })
  t.equal(text.statusCode, 400)
  assertNoStore(t, text)
  t.strictSame(text.json(), { error: 'invalid_client_metadata', error_description: 'the client metadata is invalid' })

  const form = await register(app, 'redirect_uris=https%3A%2F%2Fa.example%2Fcb', { 'content-type': 'application/x-www-form-urlencoded' })
  t.equal(form.statusCode, 415)
  assertNoStore(t, form)
  t.strictSame(form.json(), { error: 'invalid_client_metadata', error_description: 'malformed request' })
})

t.test('RFC 7591 §3.2.2: a non-JSON body under application/json is invalid_client_metadata', async (t) => {
  const { app } = await buildGateway(t)
  for (const payload of ['{"redirect_uris": [', 'not json', '']) {
    const res = await register(app, payload)
    t.equal(res.statusCode, 400, JSON.stringify(payload))
    assertNoStore(t, res)
    t.strictSame(res.json(), { error: 'invalid_client_metadata', error_description: 'malformed request' }, JSON.stringify(payload))
  }
})

t.test('landscape §5 bounded registration: a body over 16 KiB is refused with 413 and a JSON OAuth error', async (t) => {
  const { app } = await buildGateway(t)
  const res = await register(app, { redirect_uris: ['https://a.example/cb'], client_name: 'x', padding: 'x'.repeat(16 * 1024) })
  t.equal(res.statusCode, 413)
  assertNoStore(t, res)
  t.strictSame(res.json(), { error: 'invalid_client_metadata', error_description: 'malformed request' })

  const justUnder = await register(app, { redirect_uris: ['https://a.example/cb'], token_endpoint_auth_method: 'none', padding: 'x'.repeat(16 * 1024 - 200) })
  t.equal(justUnder.statusCode, 201, 'a body just under the limit is read (and the unknown member dropped)')
})

t.test('RFC 7591 §2: redirect_uris of the wrong type (a string) is invalid_client_metadata', async (t) => {
  const { app } = await buildGateway(t)
  const res = await register(app, { redirect_uris: 'https://a.example/cb', token_endpoint_auth_method: 'none' })
  t.equal(res.statusCode, 400)
  t.equal(res.json().error, 'invalid_client_metadata')
})

t.test('RFC 7591 §2: members of the wrong type that cannot be coerced are refused', async (t) => {
  const { app } = await buildGateway(t)
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ redirect_uris: { 0: 'https://a.example/cb' } }, 'invalid_client_metadata'],
    [{ redirect_uris: [42] }, 'invalid_redirect_uri'],
    [{ redirect_uris: ['https://a.example/cb'], contacts: { a: 1 } }, 'invalid_client_metadata'],
    [{ redirect_uris: ['https://a.example/cb'], grant_types: 'implicit' }, 'invalid_client_metadata']
  ]
  for (const [payload, error] of cases) {
    const res = await register(app, payload)
    t.equal(res.statusCode, 400, JSON.stringify(payload))
    t.equal(res.json().error, error, JSON.stringify(payload))
  }
  const array = await register(app, ['https://a.example/cb'])
  t.equal(array.statusCode, 400, 'a JSON array body')
  t.equal(array.json().error, 'invalid_client_metadata')
})

t.test('RFC 7591 §3.1: unknown members are dropped, not echoed or stored', async (t) => {
  const { app } = await buildGateway(t)
  const res = await register(app, {
    redirect_uris: ['https://a.example/cb'],
    token_endpoint_auth_method: 'none',
    client_id: 'chosen-by-client',
    client_secret: 'chosen-by-client',
    client_id_issued_at: 1,
    jwks: { keys: [] },
    software_statement: 'eyJ.x.y',
    is_admin: true
  })
  t.equal(res.statusCode, 201, res.body)
  const body = res.json()
  t.match(body.client_id, CLIENT_ID, 'the client cannot choose its client_id (OAuth 2.1 §7.4, checklist §2.3 item 19)')
  for (const name of ['client_secret', 'jwks', 'software_statement', 'is_admin']) {
    t.notOk(name in body, `${name} not echoed`)
    t.notOk(res.body.includes(`"${name}"`), `${name} not in the raw body`)
  }
  t.not(body.client_id_issued_at, 1)
})

t.test('RFC 7591 §2: optional metadata (client_uri, logo_uri, tos_uri, policy_uri, contacts, software_*, application_type) is echoed', async (t) => {
  const { app } = await buildGateway(t)
  const metadata = {
    redirect_uris: ['https://a.example/cb'],
    token_endpoint_auth_method: 'none',
    client_name: 'Full',
    client_uri: 'https://a.example/',
    logo_uri: 'https://a.example/logo.png',
    tos_uri: 'https://a.example/tos',
    policy_uri: 'https://a.example/privacy',
    contacts: ['ops@a.example'],
    software_id: 'a-client',
    software_version: '1.2.3',
    application_type: 'native'
  }
  const res = await register(app, metadata)
  t.equal(res.statusCode, 201)
  t.match(res.json(), metadata)
})

t.test('checklist item 51 (self-asserted metadata): client_name with <script> is stored and returned as JSON, unchanged', async (t) => {
  const { app } = await buildGateway(t)
  const name = '<script>alert(1)</script>"&\''
  const res = await register(app, { redirect_uris: ['https://a.example/cb'], token_endpoint_auth_method: 'none', client_name: name })
  t.equal(res.statusCode, 201)
  t.match(res.headers['content-type'], /^application\/json/)
  t.equal(res.headers['x-content-type-options'], undefined, 'JSON, not an HTML page: escaping is the pages\' job')
  t.equal(res.json().client_name, name)
})

t.test('RFC 7591 §3 / checklist item 51: the registration endpoint is rate-limited (30/min), 429 with a JSON OAuth error', async (t) => {
  const { app } = await buildGateway(t)
  const payload = { redirect_uris: ['https://a.example/cb'], token_endpoint_auth_method: 'none' }
  for (let i = 1; i <= 30; i++) {
    const res = await register(app, payload)
    if (res.statusCode !== 201) t.fail(`request ${i} answered ${res.statusCode}`)
  }
  const limited = await register(app, payload)
  t.equal(limited.statusCode, 429)
  assertNoStore(t, limited)
  t.strictSame(limited.json(), { error: 'temporarily_unavailable', error_description: 'too many requests, slow down' })
  t.match(limited.headers['retry-after'], /^\d+$/)
  t.equal(limited.headers['x-ratelimit-limit'], '30')
  t.equal(limited.headers['x-ratelimit-remaining'], '0')

  const refused = await register(app, { redirect_uris: ['javascript:alert(1)'] })
  t.equal(refused.statusCode, 429, 'refused registrations count too')
})

t.test('RFC 7591 §3.1: a JSON body with __proto__ is refused, not merged', async (t) => {
  const { app } = await buildGateway(t)
  const res = await register(app, '{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none","__proto__":{"is_admin":true}}')
  t.equal(res.statusCode, 400)
  assertNoStore(t, res)
  t.match(res.json(), { error: /^invalid_(request|client_metadata)$/ })
})

t.test('RFC 7591 §3: only POST; GET /register is not a client-read endpoint', async (t) => {
  const { app } = await buildGateway(t)
  const res = await app.inject({ method: 'GET', url: '/register' })
  t.equal(res.statusCode, 404)
})
