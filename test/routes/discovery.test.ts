import type { FastifyInstance, InjectOptions } from 'fastify'
import t from 'tap'
import { PUBLIC_URL, buildGateway } from '../helpers/gateway.js'

const ORIGIN = 'https://inspector.example'

const PRM = {
  resource: `${PUBLIC_URL}/mcp`,
  authorization_servers: [PUBLIC_URL],
  scopes_supported: ['mcp'],
  bearer_methods_supported: ['header'],
  resource_name: 'MCP OAuth Gateway'
}

const AS_METADATA = {
  issuer: PUBLIC_URL,
  authorization_endpoint: `${PUBLIC_URL}/authorize`,
  token_endpoint: `${PUBLIC_URL}/token`,
  registration_endpoint: `${PUBLIC_URL}/register`,
  client_id_metadata_document_supported: true,
  revocation_endpoint: `${PUBLIC_URL}/revoke`,
  response_types_supported: ['code'],
  response_modes_supported: ['query'],
  grant_types_supported: ['authorization_code', 'refresh_token'],
  token_endpoint_auth_methods_supported: ['none', 'client_secret_post', 'client_secret_basic'],
  revocation_endpoint_auth_methods_supported: ['none', 'client_secret_post', 'client_secret_basic'],
  code_challenge_methods_supported: ['S256'],
  scopes_supported: ['mcp'],
  authorization_response_iss_parameter_supported: true
}

const PREFLIGHT_HEADERS = {
  origin: ORIGIN,
  'access-control-request-method': 'POST',
  'access-control-request-headers': 'content-type, mcp-protocol-version'
}

async function getJson (app: FastifyInstance, url: string, headers: Record<string, string> = {}) {
  const res = await app.inject({ method: 'GET', url, headers })
  return { res, body: res.json() as Record<string, unknown> }
}

function corsHeaders (headers: Record<string, unknown>): string[] {
  return Object.keys(headers).filter((name) => name.startsWith('access-control-'))
}

t.test('RFC 9728 §3.1 path-suffixed PRM /.well-known/oauth-protected-resource/mcp: exact document, resource without trailing slash', async (t) => {
  const { app } = await buildGateway(t)
  const { res, body } = await getJson(app, '/.well-known/oauth-protected-resource/mcp')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  t.equal(res.headers['cache-control'], 'public, max-age=3600')
  t.strictSame(body, PRM)
  t.equal(body.resource, 'http://localhost:8002/mcp', 'byte-exact resource (RFC 9728 §3.3, checklist item 20)')
  t.ok(res.body.includes('"resource":"http://localhost:8002/mcp"'), 'serialised without a trailing slash or escaping')
})

t.test('RFC 9728 §3.1 / checklist item 24: root PRM /.well-known/oauth-protected-resource is the same document', async (t) => {
  const { app } = await buildGateway(t)
  const { res, body } = await getJson(app, '/.well-known/oauth-protected-resource')
  t.equal(res.statusCode, 200)
  t.strictSame(body, PRM)
})

t.test('RFC 9728 §3.3 PRM with a trailing slash after /mcp names the canonical resource', async (t) => {
  const { app } = await buildGateway(t)
  const { res, body } = await getJson(app, '/.well-known/oauth-protected-resource/mcp/')
  t.equal(res.statusCode, 200)
  t.strictSame(body, PRM)
})

t.test('RFC 9728 §3.3 sub-path PRM /.well-known/oauth-protected-resource/mcp/x/repos names …/mcp/x/repos', async (t) => {
  const { app } = await buildGateway(t)
  for (const url of ['/.well-known/oauth-protected-resource/mcp/x/repos', '/.well-known/oauth-protected-resource/mcp/x/repos/']) {
    const { res, body } = await getJson(app, url)
    t.equal(res.statusCode, 200, url)
    t.strictSame(body, { ...PRM, resource: 'http://localhost:8002/mcp/x/repos' }, url)
  }
})

t.test('RFC 9728 §3.3 sub-path PRM: resource is identical to the (percent-encoded) URL the client asked about', async (t) => {
  const { app } = await buildGateway(t)
  const { res, body } = await getJson(app, '/.well-known/oauth-protected-resource/mcp/x/a%20b')
  t.equal(res.statusCode, 200)
  t.equal(body.resource, 'http://localhost:8002/mcp/x/a%20b')
})

t.test('issue 16 item 3: no PRM for a sub-path the gateway would refuse as a resource (encoded slashes, empty segments)', async (t) => {
  const { app } = await buildGateway(t)
  for (const path of ['/mcp/x%2fy', '/mcp/x%5Cy', '/mcp/x//y', '/mcp/x/repos//']) {
    const res = await app.inject({ method: 'GET', url: `/.well-known/oauth-protected-resource${path}` })
    t.equal(res.statusCode, 404, path)
  }
})

t.test('RFC 9728 §3.1: PRM for an unrelated resource path is not served', async (t) => {
  const { app } = await buildGateway(t)
  const res = await app.inject({ method: 'GET', url: '/.well-known/oauth-protected-resource/other' })
  t.equal(res.statusCode, 404)
})

t.test('RFC 8414 §3 AS metadata at /.well-known/oauth-authorization-server (checklist items 26, 27, 29, 30, 31, 50)', async (t) => {
  const { app } = await buildGateway(t)
  const { res, body } = await getJson(app, '/.well-known/oauth-authorization-server')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  t.equal(res.headers['cache-control'], 'public, max-age=3600')
  t.strictSame(body, AS_METADATA)
  t.strictSame(body.code_challenge_methods_supported, ['S256'], 'item 27: PKCE advertised, S256 only')
  t.ok((body.token_endpoint_auth_methods_supported as string[]).includes('none'), 'item 31: public clients (none)')
  t.equal(body.authorization_response_iss_parameter_supported, true, 'item 30: RFC 9207')
  t.equal(body.revocation_endpoint, `${PUBLIC_URL}/revoke`)
  t.equal(body.registration_endpoint, `${PUBLIC_URL}/register`, 'item 29: DCR advertised')
  t.equal(body.client_id_metadata_document_supported, true, 'item 28: CIMD advertised')
})

t.test('checklist items 28, 29: the metadata advertises only the registration methods the operator allows', async (t) => {
  for (const [clientRegistration, dcr, cimd] of [['dcr', true, false], ['cimd', false, true]] as const) {
    const { app } = await buildGateway(t, { clientRegistration })
    const { body } = await getJson(app, '/.well-known/oauth-authorization-server')
    t.equal('registration_endpoint' in body, dcr, `${clientRegistration}: registration_endpoint`)
    t.equal(body.client_id_metadata_document_supported === true, cimd, `${clientRegistration}: CIMD flag`)
    t.ok((body.token_endpoint_auth_methods_supported as string[]).includes('none'), 'public clients (none) either way')
    const registered = await app.inject({
      method: 'POST', url: '/register', payload: { redirect_uris: ['http://127.0.0.1:3000/cb'] }
    })
    t.equal(registered.statusCode, dcr ? 201 : 404, `${clientRegistration}: /register`)
  }
})

t.test('OIDC Discovery §4 / checklist item 26: /.well-known/openid-configuration is the identical document', async (t) => {
  const { app } = await buildGateway(t)
  const oauth = await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })
  const oidc = await app.inject({ method: 'GET', url: '/.well-known/openid-configuration' })
  t.equal(oidc.statusCode, 200)
  t.equal(oidc.body, oauth.body, 'byte-identical')
  t.strictSame(oidc.json(), AS_METADATA)
})

t.test('RFC 8414 §3.3 / checklist item 25: the issuer is byte-identical everywhere (PUBLIC_URL, PRM authorization_servers[0], iss)', async (t) => {
  const { app } = await buildGateway(t)
  const issuers = new Set<unknown>()
  for (const url of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp/x/repos']) {
    const { body } = await getJson(app, url)
    const servers = body.authorization_servers as string[]
    t.equal(servers.length, 1, `${url}: exactly one AS, the gateway (item 22)`)
    issuers.add(servers[0])
  }
  for (const url of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
    issuers.add((await getJson(app, url)).body.issuer)
  }
  t.strictSame([...issuers], [PUBLIC_URL])
  t.notOk(PUBLIC_URL.endsWith('/'), 'no trailing slash drift')
})

t.test('RFC 8414 §3 / RFC 9728 §3: HEAD on metadata answers like GET without a body', async (t) => {
  const { app } = await buildGateway(t)
  const res = await app.inject({ method: 'HEAD', url: '/.well-known/oauth-authorization-server' })
  t.equal(res.statusCode, 200)
  t.equal(res.body, '')
})

t.test('checklist item 23 / landscape §4.2: CORS `*` on PRM and AS metadata for a browser client', async (t) => {
  const { app } = await buildGateway(t)
  for (const url of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource', '/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
    const res = await app.inject({ method: 'GET', url, headers: { origin: ORIGIN, 'mcp-protocol-version': '2025-11-25' } })
    t.equal(res.statusCode, 200, url)
    t.equal(res.headers['access-control-allow-origin'], '*', url)
    t.equal(res.headers['access-control-expose-headers'], 'WWW-Authenticate', url)
    t.equal(res.headers['access-control-allow-credentials'], undefined, `${url}: never with credentials`)
  }
})

t.test('checklist item 23 / BCP §2.6: CORS `*` on the actual POST /register and POST /token responses', async (t) => {
  const { app } = await buildGateway(t)
  const register = await app.inject({ method: 'POST', url: '/register', headers: { origin: ORIGIN }, payload: { redirect_uris: ['http://127.0.0.1:6274/oauth/callback'], token_endpoint_auth_method: 'none' } })
  t.equal(register.statusCode, 201)
  t.equal(register.headers['access-control-allow-origin'], '*')
  t.equal(register.headers['access-control-expose-headers'], 'WWW-Authenticate')

  const token = await app.inject({ method: 'POST', url: '/token', headers: { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'grant_type=authorization_code&code=nope&code_verifier=' + 'a'.repeat(43) + '&client_id=unknown' })
  t.equal(token.statusCode, 401)
  t.strictSame(token.json(), { error: 'invalid_client', error_description: 'client authentication failed' })
  t.equal(token.headers['access-control-allow-origin'], '*', 'errors are readable cross-origin too')
})

const preflight = async (app: FastifyInstance, url: string, headers: InjectOptions['headers'] = PREFLIGHT_HEADERS) =>
  await app.inject({ method: 'OPTIONS', url, headers })

t.test('checklist item 23 / landscape §4.2: CORS preflight for POST /register is answered with allow headers', async (t) => {
  const { app } = await buildGateway(t)
  const res = await preflight(app, '/register')
  t.equal(res.statusCode, 204)
  t.equal(res.headers['access-control-allow-origin'], '*')
  t.match(String(res.headers['access-control-allow-methods']), /POST/)
  t.match(String(res.headers['access-control-allow-headers']), /Content-Type/i)
  t.match(String(res.headers['access-control-allow-headers']), /MCP-Protocol-Version/i)
  t.equal(res.headers['access-control-max-age'], '86400')
})

t.test('checklist item 23 / landscape §4.2: CORS preflight for POST /token is answered with allow headers', async (t) => {
  const { app } = await buildGateway(t)
  const res = await preflight(app, '/token')
  t.equal(res.statusCode, 204)
  t.equal(res.headers['access-control-allow-origin'], '*')
  t.match(String(res.headers['access-control-allow-methods']), /POST/)
  t.match(String(res.headers['access-control-allow-headers']), /MCP-Protocol-Version/i)
})

t.test('checklist item 23: CORS preflight for a metadata GET carrying MCP-Protocol-Version is answered', async (t) => {
  const { app } = await buildGateway(t)
  const res = await preflight(app, '/.well-known/oauth-protected-resource/mcp', { origin: ORIGIN, 'access-control-request-method': 'GET', 'access-control-request-headers': 'mcp-protocol-version' })
  t.equal(res.statusCode, 204)
  t.equal(res.headers['access-control-allow-origin'], '*')
  t.match(String(res.headers['access-control-allow-headers']), /MCP-Protocol-Version/i)
})

t.test('OAuth 2.1 §3.1 / BCP §2.6: GET /authorize with an Origin gets no CORS headers', async (t) => {
  const { app } = await buildGateway(t)
  const res = await app.inject({ method: 'GET', url: '/authorize?client_id=unknown', headers: { origin: ORIGIN } })
  t.equal(res.statusCode, 400)
  t.match(res.headers['content-type'], /^text\/html/)
  t.equal(res.headers['access-control-allow-origin'], undefined)
  t.strictSame(corsHeaders(res.headers), [])
})

t.test('OAuth 2.1 §3.1: a preflight OPTIONS for /authorize (and the HTML pages) gets no CORS headers', async (t) => {
  const { app } = await buildGateway(t)
  for (const [url, method] of [['/authorize', 'GET'], ['/authorize?client_id=x', 'GET'], ['/login', 'POST'], ['/consent', 'POST'], ['/upstream/callback', 'GET']] as const) {
    const res = await preflight(app, url, { origin: ORIGIN, 'access-control-request-method': method, 'access-control-request-headers': 'content-type' })
    t.not(res.statusCode, 204, url)
    t.not(res.statusCode, 200, url)
    t.strictSame(corsHeaders(res.headers), [], `${url}: no access-control-* headers`)
  }
})

t.test('RFC 9728 §3.1 with a publicUrl path: issuer keeps the path, PRM is path-inserted (/.well-known/oauth-protected-resource/gw/mcp)', async (t) => {
  const publicUrl = 'http://localhost:8002/gw'
  const { app } = await buildGateway(t, { publicUrl })
  const expectedPrm = { ...PRM, resource: `${publicUrl}/mcp`, authorization_servers: [publicUrl] }
  const prm = await getJson(app, '/.well-known/oauth-protected-resource/gw/mcp')
  t.equal(prm.res.statusCode, 200)
  t.strictSame(prm.body, expectedPrm)
  const root = await getJson(app, '/.well-known/oauth-protected-resource')
  t.strictSame(root.body, expectedPrm)
  const sub = await getJson(app, '/.well-known/oauth-protected-resource/gw/mcp/x/repos')
  t.equal(sub.body.resource, `${publicUrl}/mcp/x/repos`)
  const notInserted = await app.inject({ method: 'GET', url: '/.well-known/oauth-protected-resource/mcp' })
  t.equal(notInserted.statusCode, 404, 'the PRM of …/gw/mcp is not at the un-prefixed location')

  // What is published at the root today (the only place the AS document is served in this setup).
  const as = await getJson(app, '/.well-known/oauth-authorization-server')
  t.equal(as.res.statusCode, 200)
  t.equal(as.body.issuer, publicUrl)
  t.equal(as.body.authorization_endpoint, `${publicUrl}/authorize`)
  t.equal(as.body.token_endpoint, `${publicUrl}/token`)
  t.equal(as.body.registration_endpoint, `${publicUrl}/register`)
  t.equal(as.body.revocation_endpoint, `${publicUrl}/revoke`)
})

t.test('RFC 8414 §3.1 / checklist §1.3: with issuer http://localhost:8002/gw the AS metadata is found where clients look', async (t) => {
  const publicUrl = 'http://localhost:8002/gw'
  const { app } = await buildGateway(t, { publicUrl })
  // Without a plugin prefix, a path in publicUrl means a proxy that strips /gw: the third location
  // clients try, /gw/.well-known/openid-configuration, reaches the gateway as the root document.
  for (const url of ['/.well-known/oauth-authorization-server/gw', '/.well-known/openid-configuration/gw', '/.well-known/openid-configuration']) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 200, url)
    if (res.statusCode === 200) t.equal(res.json().issuer, publicUrl, url)
  }
})
