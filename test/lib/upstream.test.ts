import { createServer } from 'node:http'
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { Agent, request } from 'undici'
import type { Dispatcher } from 'undici'
import { ManualClock } from '../../lib/clock.js'
import { deriveKey, hashSecret } from '../../lib/crypto.js'
import { createPkcePair } from '../../lib/pkce.js'
import { MemoryStore } from '../../lib/stores/memory.js'
import { UpstreamAuthorizationServer } from '../../lib/upstream-as/authorization-server.js'
import type { UpstreamSettings } from '../../lib/upstream-as/authorization-server.js'
import { UpstreamError } from '../../lib/upstream-as/errors.js'
import { parseTokenResponse } from '../../lib/upstream-as/token-endpoint.js'
import { startFakeGithub } from '../helpers/fake-github.js'
import type { FakeGithub, FakeGithubOptions } from '../helpers/fake-github.js'

const REDIRECT_URI = 'https://gateway.example/upstream/callback'
const NOW = Date.UTC(2026, 0, 1)
const SEAL_KEY = deriveKey('an-operator-secret-of-at-least-32-chars', 'upstream-client-seal')

interface Recorded { method: string, path: string, headers: IncomingHttpHeaders, body: string }
interface Tiny { origin: string, requests: Recorded[] }
type TinyHandler = (req: IncomingMessage, res: ServerResponse, body: string, origin: string) => void

/** A throwaway server for the upstream variants the GitHub fake does not play. */
async function tiny (t: Test, handler: TinyHandler): Promise<Tiny> {
  const requests: Recorded[] = []
  let origin = ''
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body })
      handler(req, res, body, origin)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { origin, requests }
}

function sendJson (res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(value))
}

async function github (t: Test, options?: FakeGithubOptions): Promise<FakeGithub> {
  const fake = await startFakeGithub(options)
  t.teardown(() => fake.close())
  return fake
}

interface Made { upstream: UpstreamAuthorizationServer, store: MemoryStore, clock: ManualClock }

function make (t: Test, settings: Partial<UpstreamSettings> & { resourceUrl: string }, store?: MemoryStore, sealKeys = [SEAL_KEY]): Made {
  const clock = new ManualClock(NOW)
  const theStore = store ?? new MemoryStore({ clock })
  if (store === undefined) t.teardown(() => theStore.close())
  const upstream = new UpstreamAuthorizationServer({ redirectUri: REDIRECT_URI, clientName: 'mcp-oauth-gateway', timeoutMs: 2000, ...settings }, { store: theStore, clock, sealKeys })
  return { upstream, store: theStore, clock }
}

/** The static-client setup a GitHub deployment uses. */
function forGithub (t: Test, fake: FakeGithub, extra: Partial<UpstreamSettings> = {}): Made {
  return make(t, { resourceUrl: fake.resourceUrl, issuerUrl: fake.issuer, clientId: fake.clientId, clientSecret: fake.clientSecret, ...extra })
}

/** Plays the browser at the upstream authorize endpoint and returns what came back to the callback. */
async function authorize (upstream: UpstreamAuthorizationServer, scopes?: string[]): Promise<{ code: string, verifier: string, callback: URL }> {
  const pkce = createPkcePair()
  const url = await upstream.authorizeUrl(scopes === undefined
    ? { state: 'st-1', codeChallenge: pkce.challenge }
    : { state: 'st-1', codeChallenge: pkce.challenge, scopes })
  const res = await request(url)
  await res.body.dump()
  const callback = new URL(String(res.headers['location']))
  return { code: callback.searchParams.get('code') ?? '', verifier: pkce.verifier, callback }
}

async function rejection (promise: Promise<unknown>): Promise<UpstreamError> {
  try {
    await promise
  } catch (err) {
    if (err instanceof UpstreamError) return err
    throw err
  }
  throw new Error('expected an UpstreamError')
}

const paths = (requests: Recorded[]): string[] => requests.map((r) => `${r.method} ${r.path.split('?')[0] ?? ''}`)

t.test('discovery', async (t) => {
  t.test('finds GitHub through the resource_metadata of the RS 401 challenge (github/github-mcp-server#1804)', async (t) => {
    const fake = await github(t)
    const { upstream } = make(t, { resourceUrl: fake.resourceUrl, clientId: fake.clientId, clientSecret: fake.clientSecret })
    t.equal(upstream.displayName, new URL(fake.origin).host, 'before discovery: the best guess from the settings')
    const resolved = await upstream.resolve()
    t.same(resolved.endpoints, {
      issuer: fake.issuer,
      authorizationEndpoint: fake.authorizeEndpoint,
      tokenEndpoint: fake.tokenEndpoint,
      scopesSupported: ['repo', 'read:org', 'gist', 'notifications', 'user', 'user:email']
    })
    t.same(resolved.scopes, ['repo', 'read:org', 'gist'], 'the PRM scopes_supported win over the AS ones (MCP scope selection)')
    t.same(resolved.client, { clientId: fake.clientId, clientSecret: fake.clientSecret, authMethod: 'client_secret_post' })
    t.same(paths(fake.requests), [
      'GET /mcp',
      'GET /.well-known/oauth-protected-resource/mcp',
      'GET /.well-known/oauth-authorization-server/login/oauth'
    ], 'RFC 9728 and RFC 8414 path insertion, not the path-appended URLs of the original (bug 15)')
    t.notOk(fake.requests[0]?.headers.authorization, 'the probe is unauthenticated')
    t.equal(upstream.displayName, new URL(fake.origin).host)
  })

  t.test('a token-form resource_metadata in a multi-challenge header is read too', async (t) => {
    const fake = await github(t)
    const rs = await tiny(t, (req, res) => {
      if (req.url === '/mcp') {
        res.writeHead(401, { 'www-authenticate': ['Basic realm="x"', `Bearer resource_metadata=${fake.origin}/.well-known/oauth-protected-resource/mcp`] }).end()
      } else res.writeHead(404).end()
    })
    const { upstream } = make(t, { resourceUrl: `${rs.origin}/mcp`, clientId: 'id' })
    t.equal((await upstream.resolve()).endpoints.issuer, fake.issuer)
    t.same(paths(rs.requests), ['GET /mcp'])
  })

  t.test('an escaped quoted resource_metadata and a 403 challenge', async (t) => {
    const fake = await github(t)
    const rs = await tiny(t, (req, res) => {
      res.writeHead(403, { 'www-authenticate': `Bearer error="insufficient_scope", resource_metadata="${fake.origin}/.well-known/oauth-protected-resource/m\\cp"` }).end()
    })
    const { upstream } = make(t, { resourceUrl: `${rs.origin}/mcp`, clientId: 'id' })
    t.equal((await upstream.resolve()).endpoints.issuer, fake.issuer)
  })

  t.test('falls back to the path-inserted PRM when the 401 names no resource_metadata (landscape bug 15)', async (t) => {
    const fake = await github(t)
    const rs = await tiny(t, (req, res, _body, origin) => {
      if (req.url === '/mcp/') res.writeHead(401, { 'www-authenticate': 'Bearer realm="mcp", resource_metadata="not a url"' }).end()
      else if (req.url === '/.well-known/oauth-protected-resource/mcp') sendJson(res, 200, { resource: `${origin}/mcp`, authorization_servers: [fake.issuer] })
      else res.writeHead(404).end()
    })
    const { upstream } = make(t, { resourceUrl: `${rs.origin}/mcp/`, clientId: 'id' })
    const resolved = await upstream.resolve()
    t.equal(resolved.endpoints.issuer, fake.issuer)
    t.same(resolved.scopes, ['repo', 'read:org', 'gist', 'notifications', 'user', 'user:email'], 'no PRM scopes: the AS scopes_supported')
    t.same(paths(rs.requests), ['GET /mcp/', 'GET /.well-known/oauth-protected-resource/mcp'], 'the trailing slash is dropped before insertion')
  })

  t.test('falls back to the root PRM', async (t) => {
    const fake = await github(t)
    const rs = await tiny(t, (req, res) => {
      if (req.url === '/.well-known/oauth-protected-resource') sendJson(res, 200, { authorization_servers: [fake.issuer], scopes_supported: 'repo gist' })
      else if (req.url === '/mcp') res.writeHead(200, { 'content-type': 'text/event-stream' }).write(': a stream that never ends\n\n')
      else res.writeHead(404).end()
    })
    const { upstream } = make(t, { resourceUrl: `${rs.origin}/mcp`, clientId: 'id' })
    const resolved = await upstream.resolve()
    t.equal(resolved.endpoints.issuer, fake.issuer, 'an endless 200 stream at the RS does not hang discovery')
    t.same(resolved.scopes, ['repo', 'read:org', 'gist', 'notifications', 'user', 'user:email'], 'a non-array PRM scopes_supported is ignored')
    t.same(paths(rs.requests), ['GET /mcp', 'GET /.well-known/oauth-protected-resource/mcp', 'GET /.well-known/oauth-protected-resource'])
  })

  t.test('a resource at the root tries the root PRM once', async (t) => {
    const rs = await tiny(t, (_req, res) => { res.writeHead(404).end() })
    const { upstream } = make(t, { resourceUrl: `${rs.origin}/`, clientId: 'id' })
    const err = await rejection(upstream.resolve())
    t.equal(err.kind, 'discovery')
    t.same(paths(rs.requests), ['GET /', 'GET /.well-known/oauth-protected-resource'])
  })

  t.test('no PRM anywhere: a discovery error naming every URL tried', async (t) => {
    const rs = await tiny(t, (req, res) => {
      if (req.url === '/.well-known/oauth-protected-resource/mcp') sendJson(res, 200, { authorization_servers: ['ftp://as.example'] })
      else if (req.url === '/.well-known/oauth-protected-resource/x') sendJson(res, 200, { resource: 'x' })
      else if (req.url === '/.well-known/oauth-protected-resource') sendJson(res, 200, ['not', 'an', 'object'])
      else res.writeHead(401).end()
    })
    const { upstream } = make(t, { resourceUrl: `${rs.origin}/mcp?token=s3cret-query`, clientId: 'id', clientSecret: 'the-client-secret' })
    const err = await rejection(upstream.resolve())
    t.equal(err.kind, 'discovery')
    t.match(err.message, `${rs.origin}/mcp (HTTP 401, no resource_metadata)`)
    t.match(err.message, `${rs.origin}/.well-known/oauth-protected-resource/mcp (no authorization_servers)`)
    t.match(err.message, `${rs.origin}/.well-known/oauth-protected-resource (not a JSON object)`)
    t.match(err.message, '--upstream-as')
    t.notMatch(err.message, 's3cret-query', 'queries are not logged')
    t.notMatch(err.message, 'the-client-secret')
    const missing = await rejection(make(t, { resourceUrl: `${rs.origin}/x`, clientId: 'id' }).upstream.resolve())
    t.match(missing.message, `${rs.origin}/.well-known/oauth-protected-resource/x (no authorization_servers)`)
  })

  t.test('GitHub path-inserted AS metadata from --upstream-as (github/github-mcp-server#2901)', async (t) => {
    const fake = await github(t)
    const { upstream } = forGithub(t, fake)
    t.equal((await upstream.resolve()).endpoints.tokenEndpoint, fake.tokenEndpoint)
    t.same(paths(fake.requests), ['GET /.well-known/oauth-authorization-server/login/oauth'], 'no RS probe when the AS is given')
    t.equal(upstream.displayName, new URL(fake.origin).host)
  })

  t.test('the display name of a GitHub deployment is github.com before any request', async (t) => {
    const { upstream } = make(t, { resourceUrl: 'https://api.githubcopilot.com/mcp/', issuerUrl: 'https://github.com/login/oauth' })
    t.equal(upstream.displayName, 'github.com')
    t.equal(make(t, { resourceUrl: 'not a url' }).upstream.displayName, 'not a url')
  })

  t.test('OIDC fallbacks in the MCP order for an issuer with a path', async (t) => {
    const as = await tiny(t, (req, res, _body, origin) => {
      if (req.url === '/tenant/.well-known/openid-configuration') {
        sendJson(res, 200, {
          issuer: `${origin}/tenant`,
          authorization_endpoint: `${origin}/tenant/authorize`,
          token_endpoint: `${origin}/tenant/token`,
          registration_endpoint: 'not a url',
          revocation_endpoint: `${origin}/tenant/revoke`
        }, { 'content-type': 'application/json, application/json' })
      } else sendJson(res, 404, { error: 'not_found' })
    })
    const { upstream } = make(t, { resourceUrl: 'https://rs.example/mcp', issuerUrl: `${as.origin}/tenant/`, clientId: 'id' })
    const { endpoints, scopes, client } = await upstream.resolve()
    t.same(endpoints, {
      issuer: `${as.origin}/tenant`,
      authorizationEndpoint: `${as.origin}/tenant/authorize`,
      tokenEndpoint: `${as.origin}/tenant/token`,
      revocationEndpoint: `${as.origin}/tenant/revoke`
    }, 'a trailing slash on --upstream-as is tolerated; a bad registration_endpoint is dropped')
    t.same(scopes, [], 'no scopes anywhere: none are sent')
    t.same(client, { clientId: 'id', authMethod: 'none' }, 'a client id without a secret is a public client')
    t.same(paths(as.requests), [
      'GET /.well-known/oauth-authorization-server/tenant',
      'GET /.well-known/openid-configuration/tenant',
      'GET /tenant/.well-known/openid-configuration'
    ])
  })

  t.test('OIDC fallback for an issuer without a path, and metadata without an issuer field', async (t) => {
    const as = await tiny(t, (req, res, _body, origin) => {
      if (req.url === '/.well-known/openid-configuration') sendJson(res, 200, { authorization_endpoint: `${origin}/a`, token_endpoint: `${origin}/t` })
      else res.writeHead(500).end()
    })
    const { upstream } = make(t, { resourceUrl: 'https://rs.example/mcp', issuerUrl: as.origin, clientId: 'id' })
    t.equal((await upstream.resolve()).endpoints.issuer, as.origin)
    t.same(paths(as.requests), ['GET /.well-known/oauth-authorization-server', 'GET /.well-known/openid-configuration'])
  })

  t.test('metadata for another issuer or without endpoints is discarded (RFC 8414 §3.3)', async (t) => {
    const as = await tiny(t, (req, res, _body, origin) => {
      const endpoints = { authorization_endpoint: `${origin}/a`, token_endpoint: `${origin}/t` }
      if (req.url === '/.well-known/oauth-authorization-server/as') sendJson(res, 200, { issuer: 'https://evil.example/as?x=1', ...endpoints })
      else if (req.url === '/.well-known/openid-configuration/as') sendJson(res, 200, { issuer: 'evil\nissuer', ...endpoints })
      else sendJson(res, 200, { issuer: `${origin}/as`, authorization_endpoint: `${origin}/a` })
    })
    const { upstream } = make(t, { resourceUrl: 'https://rs.example/mcp', issuerUrl: `${as.origin}/as`, clientId: 'id' })
    const err = await rejection(upstream.resolve())
    t.equal(err.kind, 'discovery')
    t.match(err.message, 'names issuer https://evil.example/as)')
    t.match(err.message, 'names issuer evil?issuer)', 'upstream text is made printable')
    t.match(err.message, 'no authorization_endpoint or token_endpoint')
    t.match(err.message, 'Pass both upstream endpoints')
  })

  t.test('discovery follows a few redirects, and not a loop', async (t) => {
    const as = await tiny(t, (req, res, _body, origin) => {
      if (req.url === '/.well-known/oauth-authorization-server/moved') res.writeHead(301, { location: '/.well-known/oauth-authorization-server/moved/' }).end()
      else if (req.url === '/.well-known/oauth-authorization-server/moved/') res.writeHead(308, { location: `${origin}/final` }).end()
      else if (req.url === '/final') sendJson(res, 200, { issuer: `${origin}/moved`, authorization_endpoint: `${origin}/a`, token_endpoint: `${origin}/t` })
      else if (req.url === '/.well-known/oauth-authorization-server/broken') res.writeHead(302, { location: 'http://[::1' }).end()
      else if (req.url === '/.well-known/oauth-authorization-server/loop') res.writeHead(307, { location: '/.well-known/oauth-authorization-server/loop' }).end()
      else if (req.url === '/.well-known/openid-configuration/loop') res.writeHead(302, { location: 'ftp://example.com/' }).end()
      else if (req.url?.includes('broken') === true) res.writeHead(404).end()
      else res.writeHead(303).end()
    })
    const moved = make(t, { resourceUrl: 'https://rs.example/mcp', issuerUrl: `${as.origin}/moved`, clientId: 'id' })
    t.equal((await moved.upstream.resolve()).endpoints.tokenEndpoint, `${as.origin}/t`)
    t.same(paths(as.requests), ['GET /.well-known/oauth-authorization-server/moved', 'GET /.well-known/oauth-authorization-server/moved/', 'GET /final'])

    const looping = make(t, { resourceUrl: 'https://rs.example/mcp', issuerUrl: `${as.origin}/loop`, clientId: 'id' })
    const err = await rejection(looping.upstream.resolve())
    t.match(err.message, `${as.origin}/.well-known/oauth-authorization-server/loop (too many redirects)`)
    t.match(err.message, `${as.origin}/.well-known/openid-configuration/loop (bad redirect)`, 'only http(s) redirects')
    t.match(err.message, `${as.origin}/loop/.well-known/openid-configuration (HTTP 303)`, 'a redirect without a location is a plain failure')

    const broken = make(t, { resourceUrl: 'https://rs.example/mcp', issuerUrl: `${as.origin}/broken`, clientId: 'id' })
    t.match((await rejection(broken.upstream.resolve())).message, `${as.origin}/.well-known/oauth-authorization-server/broken (bad redirect)`)
    t.equal(as.requests.filter((r) => r.path === '/.well-known/oauth-authorization-server/loop').length, 4, 'three redirects followed, then given up')
  })

  t.test('direct endpoints skip discovery entirely (the original README requirement)', async (t) => {
    const fake = await github(t)
    const { upstream } = make(t, {
      resourceUrl: fake.resourceUrl,
      clientId: fake.clientId,
      clientSecret: fake.clientSecret,
      authorizeEndpoint: `${fake.authorizeEndpoint}?allow_signup=false&scope=ignored`,
      tokenEndpoint: fake.tokenEndpoint,
      scopes: ['repo', 'read:org']
    })
    const resolved = await upstream.resolve()
    t.same(resolved.endpoints, { authorizationEndpoint: `${fake.authorizeEndpoint}?allow_signup=false&scope=ignored`, tokenEndpoint: fake.tokenEndpoint })
    t.same(resolved.scopes, ['repo', 'read:org'])
    const { code, verifier, callback } = await authorize(upstream)
    t.equal(callback.searchParams.get('state'), 'st-1')
    const tokens = await upstream.exchangeCode({ code, codeVerifier: verifier })
    t.same(tokens.scopes, ['repo', 'read:org'])
    t.same(paths(fake.requests), ['GET /login/oauth/authorize', 'POST /login/oauth/access_token'], 'no metadata or RS request at all')
    t.equal(upstream.displayName, new URL(fake.origin).host, 'named after the authorize endpoint host')
    t.equal(new URL(`http://x${fake.requests[0]?.path ?? ''}`).searchParams.get('allow_signup'), 'false', 'the endpoint query is kept')
  })

  t.test('direct endpoints with --upstream-as keep it as the issuer', async (t) => {
    const { upstream } = make(t, {
      resourceUrl: 'https://api.githubcopilot.com/mcp/',
      issuerUrl: 'https://github.com/login/oauth',
      authorizeEndpoint: 'https://github.com/login/oauth/authorize',
      tokenEndpoint: 'https://github.com/login/oauth/access_token',
      clientId: 'id'
    })
    t.equal((await upstream.resolve()).endpoints.issuer, 'https://github.com/login/oauth')
    t.equal(upstream.displayName, 'github.com')
  })

  t.test('one configured endpoint overrides the discovered one', async (t) => {
    const fake = await github(t)
    const a = forGithub(t, fake, { tokenEndpoint: `${fake.origin}/elsewhere/token` })
    const ra = await a.upstream.resolve()
    t.equal(ra.endpoints.tokenEndpoint, `${fake.origin}/elsewhere/token`)
    t.equal(ra.endpoints.authorizationEndpoint, fake.authorizeEndpoint)
    const b = forGithub(t, fake, { authorizeEndpoint: `${fake.origin}/elsewhere/authorize` })
    t.equal((await b.upstream.resolve()).endpoints.authorizationEndpoint, `${fake.origin}/elsewhere/authorize`)
  })

  t.test('configured URLs must be http(s)', async (t) => {
    for (const settings of [
      { resourceUrl: 'ftp://rs.example/mcp' },
      { resourceUrl: 'https://rs.example/mcp', issuerUrl: 'github.com/login/oauth' },
      { resourceUrl: 'https://rs.example/mcp', authorizeEndpoint: 'javascript:alert(1)', tokenEndpoint: 'https://as.example/t' },
      { resourceUrl: 'https://rs.example/mcp', authorizeEndpoint: 'https://as.example/a', tokenEndpoint: '/token' }
    ]) {
      const err = await rejection(make(t, settings).upstream.resolve())
      t.equal(err.kind, 'discovery')
      t.match(err.message, /is not an http\(s\) URL/)
    }
  })

  t.test('resolve is memoised, and concurrent callers share one discovery', async (t) => {
    const fake = await github(t)
    const { upstream } = forGithub(t, fake)
    const [a, b] = await Promise.all([upstream.resolve(), upstream.resolve()])
    t.same(a, b)
    await upstream.resolve()
    t.equal(fake.requests.length, 1)
  })

  t.test('issue 15 finding 12: a failed resolve is remembered for a while (callers share it, nothing is sent), then retried', async (t) => {
    let up = false
    const as = await tiny(t, (_req, res, _body, origin) => {
      if (up) sendJson(res, 200, { issuer: origin, authorization_endpoint: `${origin}/a`, token_endpoint: `${origin}/t` })
      else res.writeHead(503).end()
    })
    const { upstream, clock } = make(t, { resourceUrl: 'https://rs.example/mcp', issuerUrl: as.origin, clientId: 'id' })
    const concurrent = await Promise.all([1, 2, 3].map(async () => await rejection(upstream.resolve())))
    t.same(concurrent.map((err) => err.kind), ['discovery', 'discovery', 'discovery'], 'concurrent callers share the failure')
    const attempt = as.requests.length
    t.equal(attempt, 2, 'one attempt: the two metadata locations of an issuer without a path')

    up = true
    for (let i = 0; i < 20; i++) t.equal((await rejection(upstream.resolve())).kind, 'discovery')
    clock.advance(9_999)
    t.equal((await rejection(upstream.resolve())).kind, 'discovery', 'still remembered just before the retry time')
    t.equal(as.requests.length, attempt, 'no request while the failure is remembered')

    clock.advance(1)
    t.equal((await upstream.resolve()).endpoints.tokenEndpoint, `${as.origin}/t`, 'then the next call retries, and succeeds')
    t.equal(as.requests.length, attempt + 1)
  })
})

t.test('client registration', async (t) => {
  t.test('registers at the advertised registration_endpoint, once per shared store (landscape bugs 15 and §4.3)', async (t) => {
    const fake = await github(t, { dcr: true })
    const first = make(t, { resourceUrl: fake.resourceUrl, issuerUrl: fake.issuer })
    const { client } = await first.upstream.resolve()
    t.equal(client.authMethod, 'client_secret_post')
    t.ok(client.clientSecret)
    const registrations = fake.requests.filter((r) => r.path === '/login/oauth/register')
    t.equal(registrations.length, 1)
    t.same(JSON.parse(registrations[0]?.body ?? '{}'), {
      client_name: 'mcp-oauth-gateway',
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post'
    })
    const key = 'upstream:client:' + hashSecret(`${fake.issuer}/register ${REDIRECT_URI}`)
    const stored = await first.store.get<Record<string, unknown>>(key)
    t.match(stored, { clientId: client.clientId, authMethod: 'client_secret_post', sealedSecret: /^v1\./ }, 'persisted under a key hashed from the endpoint and redirect URI')
    t.notOk(JSON.stringify(stored).includes(client.clientSecret ?? '?'), 'the secret is sealed at rest, never in the clear')

    const { code, verifier } = await authorize(first.upstream)
    const tokens = await first.upstream.exchangeCode({ code, codeVerifier: verifier })
    t.ok(fake.isValidAccessToken(tokens.accessToken), 'the registered client can exchange a code')

    const second = make(t, { resourceUrl: fake.resourceUrl, issuerUrl: fake.issuer }, first.store)
    t.same((await second.upstream.resolve()).client, client, 'a restarted instance reuses the registration')
    t.equal(fake.requests.filter((r) => r.path === '/login/oauth/register').length, 1, 'no second registration')
  })

  t.test('a stored registration that no configured secret opens, or kept in the clear by an older build, is replaced', async (t) => {
    const fake = await github(t, { dcr: true })
    const settings = { resourceUrl: fake.resourceUrl, issuerUrl: fake.issuer }
    const registrations = (): number => fake.requests.filter((r) => r.path === '/login/oauth/register').length
    const first = make(t, settings)
    const original = (await first.upstream.resolve()).client
    const key = 'upstream:client:' + hashSecret(`${fake.issuer}/register ${REDIRECT_URI}`)

    const rotated = deriveKey('the-next-operator-secret-of-32-chars!', 'upstream-client-seal')
    const duringRotation = make(t, settings, first.store, [rotated, SEAL_KEY])
    t.same((await duringRotation.upstream.resolve()).client, original, 'an older secret still listed opens it')
    t.equal(registrations(), 1)

    const afterRotation = make(t, settings, first.store, [rotated])
    const renewed = (await afterRotation.upstream.resolve()).client
    t.equal(registrations(), 2, 'the old secret dropped: registers again')
    t.not(renewed.clientId, original.clientId)
    const resealed = await first.store.get<Record<string, unknown>>(key)
    t.equal(resealed?.['clientId'], renewed.clientId, 'and the new registration replaces the record')

    const tampered = { ...resealed, sealedSecret: String(resealed?.['sealedSecret']).slice(0, -4) + 'AAAA' }
    await first.store.set(key, tampered, 60_000)
    await make(t, settings, first.store, [rotated]).upstream.resolve()
    t.equal(registrations(), 3, 'a record that does not authenticate is not used')

    await first.store.set(key, { clientId: 'legacy', clientSecret: 'in-the-clear', authMethod: 'client_secret_post' }, 60_000)
    const legacy = (await make(t, settings, first.store).upstream.resolve()).client
    t.equal(registrations(), 4, 'a record from before sealing is not trusted')
    t.not(legacy.clientId, 'legacy')
    t.notOk(JSON.stringify(await first.store.get(key)).includes('in-the-clear'), 'the secret in the clear is overwritten')
  })

  t.test('GitHub has no DCR: a registration error that says to pass --upstream-client-id (github/github-mcp-server#1404)', async (t) => {
    const fake = await github(t)
    const { upstream } = make(t, { resourceUrl: fake.resourceUrl, issuerUrl: fake.issuer })
    const err = await rejection(upstream.resolve())
    t.equal(err.kind, 'registration')
    t.match(err.message, '--upstream-client-id')
    t.match(err.message, new URL(fake.origin).host)
    const direct = make(t, { resourceUrl: 'https://rs.example/mcp', authorizeEndpoint: 'https://github.com/login/oauth/authorize', tokenEndpoint: 'https://github.com/login/oauth/access_token' })
    const directErr = await rejection(direct.upstream.resolve())
    t.equal(directErr.kind, 'registration', 'direct endpoints without a client id (the original asserted here)')
    t.match(directErr.message, 'github.com')
  })

  t.test('registration refused, or answered without a client_id', async (t) => {
    let reply: [number, unknown] = [400, { error: 'invalid_client_metadata', error_description: 'nope' }]
    const as = await tiny(t, (req, res, _body, origin) => {
      if (req.url === '/.well-known/oauth-authorization-server') {
        sendJson(res, 200, { issuer: origin, authorization_endpoint: `${origin}/a`, token_endpoint: `${origin}/t`, registration_endpoint: `${origin}/register` })
      } else sendJson(res, reply[0], reply[1])
    })
    const settings = { resourceUrl: 'https://rs.example/mcp', issuerUrl: as.origin }
    const refused = await rejection(make(t, settings).upstream.resolve())
    t.equal(refused.kind, 'registration')
    t.equal(refused.status, 400)
    t.equal(refused.oauthError, 'invalid_client_metadata')
    t.match(refused.message, 'HTTP 400 (invalid_client_metadata)')

    reply = [500, 'oops']
    const broken = await rejection(make(t, settings).upstream.resolve())
    t.equal(broken.status, 500)
    t.equal(broken.oauthError, undefined)

    reply = [200, { client_secret: 'x' }]
    const noId = await rejection(make(t, settings).upstream.resolve())
    t.equal(noId.kind, 'registration')
    t.match(noId.message, 'no client_id')
  })

  t.test('a registration with Basic auth and an expiring secret; a public registration', async (t) => {
    let registered: Record<string, unknown> = {}
    const tokenRequests: Recorded[] = []
    const as = await tiny(t, (req, res, body, origin) => {
      if (req.url === '/.well-known/oauth-authorization-server') {
        sendJson(res, 200, { issuer: origin, authorization_endpoint: `${origin}/a`, token_endpoint: `${origin}/t`, registration_endpoint: `${origin}/register` })
      } else if (req.url === '/register') sendJson(res, 200, registered)
      else {
        tokenRequests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body })
        sendJson(res, 200, { access_token: 'at', token_type: 'Bearer' })
      }
    })
    const settings = { resourceUrl: 'https://rs.example/mcp', issuerUrl: as.origin }
    registered = { client_id: 'c 1', client_secret: 'p&ss:word', token_endpoint_auth_method: 'client_secret_basic', client_secret_expires_at: NOW / 1000 + 3600 }
    const basic = make(t, settings)
    t.same((await basic.upstream.resolve()).client, { clientId: 'c 1', clientSecret: 'p&ss:word', authMethod: 'client_secret_basic' })
    const tokens = await basic.upstream.exchangeCode({ code: 'the-code', codeVerifier: 'v'.repeat(43) })
    t.equal(tokens.tokenType, 'Bearer')
    t.equal(tokenRequests[0]?.headers.authorization, `Basic ${Buffer.from('c+1:p%26ss%3Aword').toString('base64')}`, 'RFC 6749 §2.3.1 form-encodes each part')
    const form = new URLSearchParams(tokenRequests[0]?.body)
    t.equal(form.get('client_id'), null, 'one authentication method only')
    t.equal(form.get('client_secret'), null)
    const key = 'upstream:client:' + hashSecret(`${as.origin}/register ${REDIRECT_URI}`)
    basic.clock.advance(3600 * 1000)
    t.equal(await basic.store.get(key), undefined, 'stored no longer than the secret lives')

    registered = { client_id: 'c2', client_secret: 'old', token_endpoint_auth_method: 'private_key_jwt', client_secret_expires_at: NOW / 1000 - 1 }
    const expired = make(t, settings)
    t.same((await expired.upstream.resolve()).client, { clientId: 'c2', clientSecret: 'old', authMethod: 'client_secret_post' }, 'an unknown method falls back to post')
    t.equal(await expired.store.get(key), undefined, 'an already expired secret is not stored')

    registered = { client_id: 'c3', token_endpoint_auth_method: 'none' }
    const open = make(t, settings)
    t.same((await open.upstream.resolve()).client, { clientId: 'c3', authMethod: 'none' })
    registered = { client_id: 'c4', token_endpoint_auth_method: 'none' }
    t.same((await make(t, settings, open.store).upstream.resolve()).client, { clientId: 'c3', authMethod: 'none' }, 'a public registration is reused')
    await open.upstream.exchangeCode({ code: 'the-code', codeVerifier: 'v'.repeat(43) })
    const publicForm = new URLSearchParams(tokenRequests[1]?.body)
    t.equal(publicForm.get('client_id'), 'c3')
    t.equal(publicForm.get('client_secret'), null)
    t.equal(tokenRequests[1]?.headers.authorization, undefined)
  })

  t.test('an AS that forgot our registration (invalid_client) makes the next resolve register again', async (t) => {
    let registrations = 0
    const as = await tiny(t, (req, res, _body, origin) => {
      if (req.url === '/.well-known/oauth-authorization-server') {
        sendJson(res, 200, { issuer: origin, authorization_endpoint: `${origin}/a`, token_endpoint: `${origin}/t`, registration_endpoint: `${origin}/register` })
      } else if (req.url === '/register') sendJson(res, 201, { client_id: `c${++registrations}`, client_secret: 's' })
      else sendJson(res, 401, { error: 'invalid_client' })
    })
    const { upstream } = make(t, { resourceUrl: 'https://rs.example/mcp', issuerUrl: as.origin })
    t.equal((await upstream.resolve()).client.clientId, 'c1')
    const err = await rejection(upstream.exchangeCode({ code: 'c', codeVerifier: 'v' }))
    t.equal(err.oauthError, 'invalid_client')
    t.equal((await upstream.resolve()).client.clientId, 'c2')

    const stat = make(t, { resourceUrl: 'https://rs.example/mcp', issuerUrl: as.origin, clientId: 'static', clientSecret: 's' })
    await rejection(stat.upstream.exchangeCode({ code: 'c', codeVerifier: 'v' }))
    t.equal((await stat.upstream.resolve()).client.clientId, 'static', 'a configured client is kept')
  })
})

t.test('authorize URL', async (t) => {
  const fake = await github(t)
  const { upstream } = forGithub(t, fake)
  const url = new URL(await upstream.authorizeUrl({ state: 's t&=+#', codeChallenge: 'c'.repeat(43) }))
  t.equal(url.origin + url.pathname, fake.authorizeEndpoint)
  t.same(Object.fromEntries(url.searchParams), {
    response_type: 'code',
    client_id: fake.clientId,
    redirect_uri: REDIRECT_URI,
    state: 's t&=+#',
    code_challenge: 'c'.repeat(43),
    code_challenge_method: 'S256',
    scope: 'repo read:org gist notifications user user:email'
  }, 'a state with URL metacharacters survives (landscape bug 6)')
  const own = new URL(await upstream.authorizeUrl({ state: 's', codeChallenge: 'c', scopes: ['repo,gist', 'repo'] }))
  t.equal(own.searchParams.get('scope'), 'repo gist', 'space-separated upstream scopes (landscape bug 16)')
  const none = new URL(await upstream.authorizeUrl({ state: 's', codeChallenge: 'c', scopes: [] }))
  t.notOk(none.searchParams.has('scope'), 'scope is omitted when empty')
})

t.test('code exchange and refresh against the GitHub fake', async (t) => {
  t.test('OAuth App: gho_ token that never expires, no refresh token, comma scopes (github docs; rust-sdk#594)', async (t) => {
    const fake = await github(t)
    const { upstream } = forGithub(t, fake)
    const { code, verifier } = await authorize(upstream, ['repo', 'gist'])
    const tokens = await upstream.exchangeCode({ code, codeVerifier: verifier })
    t.match(tokens.accessToken, /^gho_/)
    t.equal(tokens.expiresAt, undefined)
    t.equal(tokens.refreshToken, undefined)
    t.same(tokens.scopes, ['repo', 'gist'])
    t.equal(tokens.tokenType, 'bearer')
    t.ok(fake.isValidAccessToken(tokens.accessToken))

    const sent = fake.requests.find((r) => r.path === '/login/oauth/access_token')
    t.equal(sent?.headers.accept, 'application/json', 'JSON asked for: GitHub answers form-encoded otherwise')
    t.equal(sent?.headers['content-type'], 'application/x-www-form-urlencoded')
    t.same(Object.fromEntries(new URLSearchParams(sent?.body)), {
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: verifier,
      client_id: fake.clientId,
      client_secret: fake.clientSecret
    })

    const mcp = await request(fake.resourceUrl, { headers: { authorization: `Bearer ${tokens.accessToken}` } })
    t.same(await mcp.body.json(), { ok: true }, 'the token works at the RS')
  })

  t.test('a code is single use: the replay is an error with HTTP 200 (landscape bug 12)', async (t) => {
    const fake = await github(t)
    const { upstream } = forGithub(t, fake)
    const { code, verifier } = await authorize(upstream)
    await upstream.exchangeCode({ code, codeVerifier: verifier })
    const err = await rejection(upstream.exchangeCode({ code, codeVerifier: verifier }))
    t.equal(err.kind, 'oauth_error')
    t.equal(err.oauthError, 'bad_verification_code')
    t.equal(err.status, 200)
    t.match(err.message, 'The code passed is incorrect or expired.')
    t.notMatch(err.message, code)
    t.notMatch(err.message, verifier)
    t.notMatch(err.message, fake.clientSecret)
  })

  t.test('PKCE is verified upstream, and a redirect_uri mismatch is reported', async (t) => {
    const fake = await github(t)
    const { upstream } = forGithub(t, fake)
    const first = await authorize(upstream)
    const wrong = await rejection(upstream.exchangeCode({ code: first.code, codeVerifier: createPkcePair().verifier }))
    t.equal(wrong.oauthError, 'bad_verification_code')
    const other = forGithub(t, fake, { redirectUri: 'https://other.example/cb' })
    const mismatch = await rejection(other.upstream.exchangeCode({ code: first.code, codeVerifier: first.verifier }))
    t.equal(mismatch.oauthError, 'redirect_uri_mismatch')
    t.ok(await upstream.exchangeCode({ code: first.code, codeVerifier: first.verifier }), 'failed attempts do not burn the code')
  })

  t.test('wrong client credentials', async (t) => {
    const fake = await github(t)
    const { upstream } = forGithub(t, fake, { clientSecret: 'wrong-secret-value' })
    const err = await rejection(upstream.exchangeCode({ code: 'x', codeVerifier: 'y' }))
    t.equal(err.oauthError, 'incorrect_client_credentials')
    t.notMatch(err.message, 'wrong-secret-value')
  })

  t.test('expiring tokens: expires_in as a string, refresh rotation (landscape bug 13; GitHub "Refreshing user access tokens")', async (t) => {
    const fake = await github(t, { mode: 'expiring', expiresIn: 600 })
    const { upstream, clock } = forGithub(t, fake)
    const { code, verifier } = await authorize(upstream, ['repo'])
    const tokens = await upstream.exchangeCode({ code, codeVerifier: verifier })
    t.match(tokens.accessToken, /^ghu_/)
    t.match(tokens.refreshToken, /^ghr_/)
    t.equal(tokens.expiresAt, NOW + 600_000)

    clock.advance(1000)
    const refreshed = await upstream.refresh(tokens.refreshToken ?? '')
    t.match(refreshed.accessToken, /^ghu_/)
    t.not(refreshed.accessToken, tokens.accessToken)
    t.not(refreshed.refreshToken, tokens.refreshToken, 'rotated')
    t.equal(refreshed.expiresAt, NOW + 1000 + 600_000)
    t.same(refreshed.scopes, ['repo'])
    t.notOk(fake.isValidAccessToken(tokens.accessToken), 'the old access token stopped working')
    t.ok(fake.isValidAccessToken(refreshed.accessToken))
    const refreshBody = Object.fromEntries(new URLSearchParams(fake.requests.at(-1)?.body))
    t.same(refreshBody, { grant_type: 'refresh_token', refresh_token: tokens.refreshToken, client_id: fake.clientId, client_secret: fake.clientSecret })

    const replay = await rejection(upstream.refresh(tokens.refreshToken ?? ''))
    t.equal(replay.oauthError, 'bad_refresh_token', 'the old refresh token stopped working')
    t.notMatch(replay.message, tokens.refreshToken ?? '')

    fake.revokeAll()
    t.equal((await rejection(upstream.refresh(refreshed.refreshToken ?? ''))).oauthError, 'bad_refresh_token')
  })

  t.test('a refresh without a new refresh token keeps the old one (RFC 6749 §6)', async (t) => {
    const as = await tiny(t, (_req, res) => { sendJson(res, 200, { access_token: 'new', expires_in: 3600, token_type: 'bearer', scope: 'a b' }) })
    const { upstream } = make(t, { resourceUrl: 'https://rs.example/mcp', authorizeEndpoint: `${as.origin}/a`, tokenEndpoint: `${as.origin}/t`, clientId: 'id', clientSecret: 's' })
    const tokens = await upstream.refresh('old-refresh')
    t.same(tokens, { accessToken: 'new', refreshToken: 'old-refresh', expiresAt: NOW + 3600_000, scopes: ['a', 'b'], tokenType: 'bearer' })
  })

  t.test('a form-encoded reply even to Accept: application/json, with a lying content-type', async (t) => {
    const as = await tiny(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('access_token=gho_abc&scope=repo%2Cgist&token_type=bearer')
    })
    const { upstream } = make(t, { resourceUrl: 'https://rs.example/mcp', authorizeEndpoint: `${as.origin}/a`, tokenEndpoint: `${as.origin}/t`, clientId: 'id', clientSecret: 's' })
    t.same(await upstream.exchangeCode({ code: 'c', codeVerifier: 'v' }), { accessToken: 'gho_abc', scopes: ['repo', 'gist'], tokenType: 'bearer' })
  })

  t.test('a duplicated content-type is joined, as GitHub sends it', async (t) => {
    const as = await tiny(t, (_req, res) => {
      res.writeHead(502, { 'content-type': ['text/html', 'text/html'] }).end('<html>Bad Gateway</html>')
    })
    const { upstream } = make(t, { resourceUrl: 'https://rs.example/mcp', authorizeEndpoint: `${as.origin}/a`, tokenEndpoint: `${as.origin}/t`, clientId: 'id' })
    const err = await rejection(upstream.exchangeCode({ code: 'c', codeVerifier: 'v' }))
    t.equal(err.kind, 'bad_response')
    t.match(err.message, '(text/html, text/html)')
  })

  t.test('injected failures at the token endpoint', async (t) => {
    const fake = await github(t)
    const { upstream } = forGithub(t, fake, { timeoutMs: 300 })
    fake.tokenFailure = 'error200'
    const error200 = await rejection(upstream.exchangeCode({ code: 'c', codeVerifier: 'v' }))
    t.equal(error200.kind, 'oauth_error')
    t.equal(error200.status, 200)

    fake.tokenFailure = 'http500'
    const http500 = await rejection(upstream.exchangeCode({ code: 'c', codeVerifier: 'v' }))
    t.equal(http500.kind, 'bad_response', 'an HTML 500 is not an OAuth error')
    t.equal(http500.status, 500)
    t.match(http500.message, 'text/html')

    fake.tokenFailure = 'hang'
    const started = Date.now()
    const hang = await rejection(upstream.exchangeCode({ code: 'c', codeVerifier: 'v' }))
    t.equal(hang.kind, 'timeout')
    t.match(hang.message, 'within 300 ms')
    t.ok(Date.now() - started < 2000, 'bounded by timeoutMs')
  })
})

t.test('network failures', async (t) => {
  t.test('a closed port is unreachable, in discovery and at the token endpoint', async (t) => {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as AddressInfo).port
    await new Promise<void>((resolve) => server.close(() => resolve()))
    const dead = `http://127.0.0.1:${port}`

    const discovery = await rejection(make(t, { resourceUrl: `${dead}/mcp`, clientId: 'id' }).upstream.resolve())
    t.equal(discovery.kind, 'unreachable')
    t.match(discovery.message, `upstream MCP server ${dead}/mcp is unreachable (ECONNREFUSED)`)

    const { upstream } = make(t, { resourceUrl: `${dead}/mcp`, authorizeEndpoint: `${dead}/a`, tokenEndpoint: `${dead}/t`, clientId: 'id', clientSecret: 'secret-value' })
    const token = await rejection(upstream.exchangeCode({ code: 'code-value', codeVerifier: 'verifier-value' }))
    t.equal(token.kind, 'unreachable')
    t.notMatch(token.message, /secret-value|code-value|verifier-value/)
  })

  t.test('a body that stalls times out', async (t) => {
    const as = await tiny(t, (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).write('{"access_token":') })
    const { upstream } = make(t, { resourceUrl: 'https://rs.example/mcp', authorizeEndpoint: `${as.origin}/a`, tokenEndpoint: `${as.origin}/t`, clientId: 'id', timeoutMs: 200 })
    t.equal((await rejection(upstream.exchangeCode({ code: 'c', codeVerifier: 'v' }))).kind, 'timeout')
  })

  t.test('a dispatcher failing in an unexpected way is reported as unreachable', async (t) => {
    for (const [thrown, reason] of [[new Error('boom'), '(Error)'], [{}, '(error)']] as const) {
      class Failing extends Agent {
        override dispatch (): boolean {
          throw thrown
        }
      }
      const dispatcher = new Failing()
      t.teardown(() => dispatcher.close())
      const err = await rejection(make(t, { resourceUrl: 'http://127.0.0.1:9/mcp', issuerUrl: 'http://127.0.0.1:9', dispatcher }).upstream.resolve())
      t.equal(err.kind, 'unreachable')
      t.match(err.message, reason)
    }
  })

  t.test('a reply over 1 MiB is cut off', async (t) => {
    const as = await tiny(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(`{"access_token":"${'a'.repeat(2 * 1024 * 1024)}"}`)
    })
    const { upstream } = make(t, { resourceUrl: 'https://rs.example/mcp', authorizeEndpoint: `${as.origin}/a`, tokenEndpoint: `${as.origin}/t`, clientId: 'id' })
    const err = await rejection(upstream.exchangeCode({ code: 'c', codeVerifier: 'v' }))
    t.equal(err.kind, 'bad_response')
    t.match(err.message, 'larger than 1048576 bytes')
  })

  t.test('a custom dispatcher is used', async (t) => {
    const fake = await github(t)
    let dispatched = 0
    class Counting extends Agent {
      override dispatch (options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
        dispatched++
        return super.dispatch(options, handler)
      }
    }
    const dispatcher = new Counting()
    t.teardown(() => dispatcher.close())
    const { upstream } = forGithub(t, fake, { dispatcher })
    await upstream.resolve()
    t.equal(dispatched, 1)
  })
})

t.test('an upstream echoing our secrets in its error does not get them into messages', async (t) => {
  const as = await tiny(t, (_req, res, body) => {
    const sent = new URLSearchParams(body)
    if (sent.get('code') === 'echo-in-content-type') {
      res.writeHead(502, { 'content-type': `text/plain; x=${sent.get('client_secret') ?? ''}` }).end('')
    } else {
      sendJson(res, 400, { error: sent.get('code') ?? 'invalid_grant', error_description: `bad ${sent.get('code_verifier') ?? ''} / ${sent.get('refresh_token') ?? ''} / ${sent.get('client_secret') ?? ''}` })
    }
  })
  const { upstream } = make(t, { resourceUrl: 'https://rs.example/mcp', authorizeEndpoint: `${as.origin}/a`, tokenEndpoint: `${as.origin}/t`, clientId: 'id', clientSecret: 'client-secret-xyz' })
  const exchange = await rejection(upstream.exchangeCode({ code: 'code-xyz', codeVerifier: 'verifier-xyz' }))
  t.equal(exchange.kind, 'oauth_error')
  t.equal(exchange.status, 400)
  t.equal(exchange.oauthError, '[redacted]')
  t.notMatch(exchange.message, /xyz/)
  t.notOk('cause' in exchange, 'no cause carrying the original message')
  const refresh = await rejection(upstream.refresh('refresh-xyz'))
  t.notMatch(refresh.message, /xyz/)
  const header = await rejection(upstream.exchangeCode({ code: 'echo-in-content-type', codeVerifier: 'v' }))
  t.equal(header.kind, 'bad_response')
  t.equal(header.status, 502)
  t.notMatch(header.message, /xyz/)
})

t.test('parseTokenResponse', async (t) => {
  const parse = (status: number, body: string, contentType: string | undefined = 'application/json') =>
    parseTokenResponse(status, contentType, body, NOW)
  const fail = (status: number, body: string, contentType?: string): UpstreamError => {
    try {
      parse(status, body, contentType)
    } catch (err) {
      if (err instanceof UpstreamError) return err
      throw err
    }
    throw new Error('expected a failure')
  }

  t.test('expires_in: number, numeric string, absent (landscape bug 13)', async (t) => {
    t.equal(parse(200, '{"access_token":"a","expires_in":28800}').expiresAt, NOW + 28_800_000)
    t.equal(parse(200, '{"access_token":"a","expires_in":"28800"}').expiresAt, NOW + 28_800_000)
    t.equal(parse(200, 'access_token=a&expires_in=28800', 'application/x-www-form-urlencoded').expiresAt, NOW + 28_800_000)
    t.equal(parse(200, '{"access_token":"a","expires_in":" 1.5 "}').expiresAt, NOW + 1500)
    t.notOk('expiresAt' in parse(200, '{"access_token":"a"}'), 'absent: never expires (GitHub OAuth App)')
  })

  t.test('expires_in 0 or negative is already expired, never "no expiry" (landscape bug 14)', async (t) => {
    t.equal(parse(200, '{"access_token":"a","expires_in":0}').expiresAt, NOW)
    t.equal(parse(200, '{"access_token":"a","expires_in":"-5"}').expiresAt, NOW)
  })

  t.test('garbage expires_in counts as absent', async (t) => {
    for (const value of ['"soon"', '""', 'null', 'true', '1e400', '{}']) {
      t.equal(parse(200, `{"access_token":"a","expires_in":${value}}`).expiresAt, undefined, value)
    }
  })

  t.test('an error is a failure whatever the HTTP status (GitHub answers errors with 200; golang/oauth2#274)', async (t) => {
    const json = fail(200, '{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired."}')
    t.equal(json.kind, 'oauth_error')
    t.equal(json.oauthError, 'bad_verification_code')
    t.equal(json.status, 200)
    const form = fail(200, 'error=redirect_uri_mismatch&error_description=The+redirect_uri+MUST+match', 'application/x-www-form-urlencoded')
    t.equal(form.oauthError, 'redirect_uri_mismatch')
    t.match(form.message, 'The redirect_uri MUST match')
    const withToken = fail(200, '{"error":"invalid_grant","access_token":"a"}')
    t.equal(withToken.oauthError, 'invalid_grant', 'an error wins over an access_token')
    t.equal(fail(400, '{"error":{"message":"x"}}').oauthError, 'unknown_error')
    const noisy = fail(400, JSON.stringify({ error: 'e\n\u001b[31m', error_description: 'line\r\nforged: ' + 'x'.repeat(300) }))
    t.equal(noisy.oauthError, 'e??[31m', 'control characters cannot forge log lines')
    t.notMatch(noisy.message, /[\r\n]/)
    t.ok(noisy.message.length < 320, 'the description is bounded')
  })

  t.test('non-2xx without a parsable error, unreadable bodies, missing access_token', async (t) => {
    t.equal(fail(502, '{"message":"bad gateway"}').kind, 'bad_response')
    t.equal(fail(502, '{"message":"bad gateway"}').status, 502)
    t.equal(fail(500, 'Internal Server Error', 'text/plain').kind, 'bad_response')
    t.equal(fail(200, '<html></html>', 'text/html').kind, 'bad_response')
    t.throws(() => parseTokenResponse(200, undefined, '', NOW), { kind: 'bad_response', message: /no content-type/ })
    t.equal(fail(200, '{"access_token":').kind, 'bad_response')
    t.equal(fail(200, '["access_token"]').kind, 'bad_response')
    t.match(fail(200, '{"token_type":"bearer"}').message, 'without an access_token')
    t.equal(fail(200, '{"access_token":""}').kind, 'bad_response')
    t.equal(fail(200, '{"access_token":42}').kind, 'bad_response')
    t.equal(fail(200, '{"error":null}').kind, 'bad_response', 'a null error is no error, and then there is no token')
  })

  t.test('fields: comma scopes, token_type default, refresh token', async (t) => {
    t.same(parse(200, 'access_token=gho_x&scope=repo%2Cgist&token_type=bearer', 'application/x-www-form-urlencoded'),
      { accessToken: 'gho_x', scopes: ['repo', 'gist'], tokenType: 'bearer' })
    t.same(parse(200, '{"access_token":"a","refresh_token":"r","scope":["read:org"],"token_type":""}'),
      { accessToken: 'a', refreshToken: 'r', scopes: ['read:org'], tokenType: 'bearer' })
    t.notOk('refreshToken' in parse(200, '{"access_token":"a","refresh_token":""}'))
    t.same(parse(200, '{"access_token":"a","scope":""}').scopes, [], 'GitHub App tokens: scope is always ""')
  })
})

t.test('UpstreamError', async (t) => {
  const plain = new UpstreamError('timeout', 'slow')
  t.equal(plain.name, 'UpstreamError')
  t.ok(plain instanceof Error)
  t.equal(plain.oauthError, undefined)
  t.equal(plain.status, undefined)
  const cause = new Error('root')
  t.equal(new UpstreamError('unreachable', 'x', { cause }).cause, cause)
})
