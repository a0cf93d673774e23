import t from 'tap'
import { createPkcePair } from '../../lib/pkce.js'
import {
  Browser, PUBLIC_URL, authorizeFully, authorizeUrl, buildGateway, hiddenField, pathOf, registerClient,
  signInAndApprove, startFlow, visitUpstream
} from '../helpers/gateway.js'
import { failingStore } from '../helpers/failing-store.js'

const { challenge } = createPkcePair()

t.test('GET /authorize: unknown client → escaped error page, never a redirect (OAuth 2.1 §4.1.2.1)', async (t) => {
  const { app } = await buildGateway(t)
  const res = await app.inject(`/authorize?client_id=%3Cscript%3Enope&redirect_uri=https://evil.example/cb&response_type=code&code_challenge=${challenge}&code_challenge_method=S256`)
  t.equal(res.statusCode, 400)
  t.equal(res.headers.location, undefined)
  t.match(res.headers['content-type'], /text\/html/)
  t.match(res.body, /Unknown client/)
  t.notMatch(res.body, /<script>nope/)
  t.match(res.headers['content-security-policy'], /frame-ancestors 'none'/)
  t.equal(res.headers['x-frame-options'], 'DENY')
})

t.test('GET /authorize: redirect_uri variants not registered → error page, never a redirect (OAuth 2.1 §2.3.1 exact match)', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app, { redirect_uris: ['https://app.example/cb', 'https://app.example/other'] })
  for (const uri of ['https://app.example/cb/extra', 'https://app.example/c', 'https://APP.example/cb', 'https://app.example/%63b', 'https://app.example@evil.example/cb', 'https://app.example/cb#x', 'https://app.example:444/cb', 'https://app.example/cb/']) {
    const res = await app.inject(authorizeUrl(client, { challenge, redirectUri: uri }))
    t.equal(res.statusCode, 400, uri)
    t.equal(res.headers.location, undefined, uri)
  }
  const missing = await app.inject(authorizeUrl(client, { challenge, redirectUri: '' }).replace('redirect_uri=&', ''))
  t.equal(missing.statusCode, 400, 'several registered and none sent: no guess (OAuth 2.1 §4.1.1)')
})

t.test('GET /authorize: malformed queries get an error page (duplicates, missing client_id), not a 500', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app)
  for (const url of ['/authorize', `/authorize?client_id=${client.client_id}&client_id=other`, `/authorize?client_id=${'x'.repeat(300)}`]) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 400, url)
    t.match(res.headers['content-type'], /text\/html/)
  }
})

t.test('GET /authorize: once client and redirect URI are trusted, errors go back to the client with state and iss', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app)
  const cases: Array<[string, Record<string, string>, string]> = [
    ['unsupported_response_type', { response_type: 'token' }, 'implicit grant refused (OAuth 2.1 §4.1.1)'],
    ['invalid_request', { code_challenge_method: 'plain' }, 'PKCE plain refused'],
    ['invalid_request', { code_challenge: 'short' }, 'malformed challenge refused'],
    ['invalid_target', { resource: 'https://other.example/mcp' }, 'RFC 8707 unknown resource']
  ]
  for (const [error, extra, why] of cases) {
    const res = await app.inject(authorizeUrl(client, { challenge, state: 'st<ate>', extra }))
    t.equal(res.statusCode, 302, why)
    const location = new URL(res.headers.location as string)
    t.equal(location.origin + location.pathname, 'http://127.0.0.1:33418/callback', why)
    t.equal(location.searchParams.get('error'), error, why)
    t.equal(location.searchParams.get('state'), 'st<ate>', why)
    t.equal(location.searchParams.get('iss'), PUBLIC_URL, `${why}: RFC 9207 iss on errors too`)
  }
  const noChallenge = await app.inject(authorizeUrl(client, { challenge }).replace(/code_challenge=[^&]*&/, ''))
  t.equal(new URL(noChallenge.headers.location as string).searchParams.get('error'), 'invalid_request', 'missing PKCE challenge refused')
})

t.test('GET /authorize: resource spelled with a trailing slash or omitted is the gateway (Claude Code sends both)', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app)
  for (const resource of [`${PUBLIC_URL}/mcp/`, 'HTTP://LOCALHOST:8002/mcp']) {
    const res = await app.inject(authorizeUrl(client, { challenge, resource }))
    t.equal(res.statusCode, 302)
    t.match(res.headers.location, /^\/login\?flow=/, resource)
  }
  const omitted = await app.inject(authorizeUrl(client, { challenge }).replace(/resource=[^&]*&?/, ''))
  t.match(omitted.headers.location, /^\/login\?flow=/)
})

t.test('loopback redirect URI: any port at authorize, and the code goes to the port asked for (RFC 8252 §7.3)', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app, { redirect_uris: ['http://127.0.0.1/callback'] })
  const done = await authorizeFully(app, client, { redirectUri: 'http://127.0.0.1:49152/callback' })
  t.equal(done.redirect.host, '127.0.0.1:49152')
  t.ok(done.code)
})

t.test('the flow cookie is signed, HttpOnly, SameSite=Lax, and binds the flow to its browser', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app)
  const res = await app.inject(authorizeUrl(client, { challenge }))
  const cookie = res.cookies[0] as { name: string, value: string, httpOnly: boolean, sameSite: string, path: string }
  t.equal(cookie.name, 'mcp-gateway-browser')
  t.equal(cookie.httpOnly, true)
  t.equal(cookie.sameSite, 'Lax')
  t.equal(cookie.path, '/')
  const login = pathOf(res.headers.location as string)

  const noCookie = await app.inject(login)
  t.equal(noCookie.statusCode, 403, 'no cookie: another browser')
  const forged = await app.inject({ url: login, headers: { cookie: `mcp-gateway-browser=${cookie.value.replace(/\.[^.]*$/, '.forged')}` } })
  t.equal(forged.statusCode, 403, 'a cookie with a bad signature is no cookie')
  const otherBrowser = new Browser()
  await otherBrowser.get(app, authorizeUrl(client, { challenge }))
  const swapped = await otherBrowser.get(app, login)
  t.equal(swapped.statusCode, 403, 'another browser\'s valid cookie does not open this flow')
  t.match(swapped.body, /another browser/)
})

t.test('an https gateway names its cookie __Host- and marks it Secure', async (t) => {
  // Not loopback: the published default credentials are refused there.
  const { app } = await buildGateway(t, { publicUrl: 'https://gateway.example', username: 'operator', password: 'a-password-of-its-own' })
  const client = await registerClient(app)
  const res = await app.inject(authorizeUrl(client, { challenge, resource: 'https://gateway.example/mcp' }))
  const cookie = res.cookies[0] as { name: string, secure: boolean }
  t.equal(cookie.name, '__Host-mcp-gateway-browser')
  t.equal(cookie.secure, true)
})

t.test('POST /login: wrong credentials re-render the form (401) without echoing the password; CSRF checked', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app, { client_name: '<script>alert(1)</script>' })
  const browser = new Browser()
  const flow = await startFlow(app, browser, client, { challenge })
  const page = await browser.get(app, `/login?flow=${flow.flow}`)
  t.notMatch(page.body, /<script>alert/, 'client_name is escaped on the login page')
  t.match(page.body, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/)
  t.notMatch(page.body, /gateway_pass|gateway_user/, 'no credentials on the page (the original showed them)')

  const wrong = await browser.post(app, '/login', { ...flow, username: 'gateway_user', password: 'wrong-password-value' })
  t.equal(wrong.statusCode, 401)
  t.match(wrong.body, /Wrong username or password/)
  t.notMatch(wrong.body, /wrong-password-value/)
  t.equal(hiddenField(wrong.body, 'csrf'), flow.csrf)

  const csrf = await browser.post(app, '/login', { ...flow, csrf: 'not-the-token', username: 'gateway_user', password: 'gateway_pass' })
  t.equal(csrf.statusCode, 403, 'CSRF token mismatch')
  const malformed = await browser.post(app, '/login', { flow: flow.flow })
  t.equal(malformed.statusCode, 400, 'missing fields: error page, not a 500')
})

t.test('POST /login is rate limited per address (credential guessing, OAuth 2.1 §2.4)', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app)
  const browser = new Browser()
  const flow = await startFlow(app, browser, client, { challenge })
  const statuses = []
  for (let i = 0; i < 12; i++) statuses.push((await browser.post(app, '/login', { ...flow, username: 'x', password: 'y' })).statusCode)
  t.same(statuses.slice(0, 10), Array(10).fill(401))
  t.equal(statuses[11], 429)
})

t.test('consent: deny sends access_denied to the client with state and iss; the flow is over', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app)
  const browser = new Browser()
  const flow = await startFlow(app, browser, client, { challenge, state: 'deny-state' })
  const login = await browser.post(app, '/login', { ...flow, username: 'gateway_user', password: 'gateway_pass' })
  t.equal(login.statusCode, 303, 'the POST answers 303 (OAuth 2.1 §7.5.4)')
  t.equal(login.headers.location, `/consent?flow=${flow.flow}`)
  const page = await browser.get(app, login.headers.location as string)
  t.match(page.body, /127\.0\.0\.1:33418/, 'consent shows the redirect host')
  t.match(page.body, /repo/, 'consent shows the upstream scopes')
  const denied = await browser.post(app, '/consent', { ...flow, decision: 'deny' })
  t.equal(denied.statusCode, 303)
  const location = new URL(denied.headers.location as string)
  t.equal(location.searchParams.get('error'), 'access_denied')
  t.equal(location.searchParams.get('state'), 'deny-state')
  t.equal(location.searchParams.get('iss'), PUBLIC_URL)
  const again = await browser.post(app, '/consent', { ...flow, decision: 'approve' })
  t.equal(again.statusCode, 400, 'the denied flow cannot be approved afterwards')
})

t.test('consent before login is not possible; the consent page sends an anonymous browser to sign in', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app)
  const browser = new Browser()
  const flow = await startFlow(app, browser, client, { challenge })
  const page = await browser.get(app, `/consent?flow=${flow.flow}`)
  t.equal(page.statusCode, 303)
  const post = await browser.post(app, '/consent', { ...flow, decision: 'approve' })
  t.equal(post.statusCode, 303)
  t.equal(post.headers.location, `/login?flow=${flow.flow}`, 'nothing goes upstream before the user signed in')
})

t.test('remembered consent skips the question, never the sign-in (MCP confused-deputy mitigation)', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app)
  const first = new Browser()
  const flow1 = await startFlow(app, first, client, { challenge })
  const upstream1 = await signInAndApprove(app, first, flow1, true)
  t.match(upstream1, /\/login\/oauth\/authorize\?/)

  const second = new Browser()
  const flow2 = await startFlow(app, second, client, { challenge })
  const login = await second.post(app, '/login', { ...flow2, username: 'gateway_user', password: 'gateway_pass' })
  t.equal(login.statusCode, 303)
  t.match(login.headers.location, /\/login\/oauth\/authorize\?/, 'straight upstream after sign-in')

  const other = await registerClient(app)
  const flow3 = await startFlow(app, second, other, { challenge })
  const login3 = await second.post(app, '/login', { ...flow3, username: 'gateway_user', password: 'gateway_pass' })
  t.equal(login3.headers.location, `/consent?flow=${flow3.flow}`, 'consent is per client')
})

t.test('the upstream leg: PKCE S256, a fresh state, the configured scopes and the gateway callback', async (t) => {
  const { app, github } = await buildGateway(t)
  const client = await registerClient(app)
  const browser = new Browser()
  const flow = await startFlow(app, browser, client, { challenge, state: 'client-state' })
  const upstream = new URL(await signInAndApprove(app, browser, flow))
  t.equal(upstream.origin + upstream.pathname, github.authorizeEndpoint)
  t.equal(upstream.searchParams.get('client_id'), github.clientId)
  t.equal(upstream.searchParams.get('redirect_uri'), `${PUBLIC_URL}/upstream/callback`)
  t.equal(upstream.searchParams.get('code_challenge_method'), 'S256')
  t.not(upstream.searchParams.get('code_challenge'), challenge, 'the gateway\'s own PKCE pair, not the client\'s')
  t.not(upstream.searchParams.get('state'), 'client-state', 'a fresh state, not the client\'s')
  t.equal(upstream.searchParams.get('scope'), 'repo read:org')
})

t.test('/upstream/callback: only the right state, once, from the right browser', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app)
  const browser = new Browser()
  const flow = await startFlow(app, browser, client, { challenge })
  const callback = pathOf(await visitUpstream(await signInAndApprove(app, browser, flow)))

  const unknown = await browser.get(app, '/upstream/callback?code=x&state=unknown')
  t.equal(unknown.statusCode, 400)
  const nostate = await browser.get(app, '/upstream/callback?code=x')
  t.equal(nostate.statusCode, 400)
  const thief = await new Browser().get(app, callback)
  t.equal(thief.statusCode, 403, 'another browser cannot finish the flow')
  const ok = await browser.get(app, callback)
  t.equal(ok.statusCode, 302, 'and the state was not used up by the failed attempt')
  const replay = await browser.get(app, callback)
  t.equal(replay.statusCode, 400, 'single use')
  t.match(replay.body, /expired/)
})

t.test('/upstream/callback: upstream denial becomes access_denied at the client', async (t) => {
  const { app, github } = await buildGateway(t)
  github.decision = 'deny'
  const client = await registerClient(app)
  const browser = new Browser()
  const flow = await startFlow(app, browser, client, { challenge, state: 's1' })
  const res = await browser.get(app, pathOf(await visitUpstream(await signInAndApprove(app, browser, flow))))
  t.equal(res.statusCode, 302)
  const location = new URL(res.headers.location as string)
  t.equal(location.searchParams.get('error'), 'access_denied')
  t.equal(location.searchParams.get('state'), 's1')
})

t.test('/upstream/callback: other upstream errors and a missing code become server_error at the client', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app)
  for (const query of ['error=application_suspended', '']) {
    const browser = new Browser()
    const flow = await startFlow(app, browser, client, { challenge })
    const upstream = new URL(await signInAndApprove(app, browser, flow))
    const state = upstream.searchParams.get('state') as string
    const res = await browser.get(app, `/upstream/callback?state=${state}${query === '' ? '' : '&' + query}`)
    t.equal(res.statusCode, 302)
    t.equal(new URL(res.headers.location as string).searchParams.get('error'), 'server_error', query)
  }
})

t.test('/upstream/callback: a failing upstream token endpoint is an error at the client, never a 500 or a hang', async (t) => {
  const { app, github } = await buildGateway(t, { upstreamTimeout: 300 })
  const client = await registerClient(app)
  const expected = { error200: 'server_error', http500: 'server_error', hang: 'temporarily_unavailable' } as const
  for (const failure of ['error200', 'http500', 'hang'] as const) {
    github.tokenFailure = failure
    const browser = new Browser()
    const flow = await startFlow(app, browser, client, { challenge })
    const res = await browser.get(app, pathOf(await visitUpstream(await signInAndApprove(app, browser, flow))))
    t.equal(res.statusCode, 302, failure)
    t.equal(new URL(res.headers.location as string).searchParams.get('error'), expected[failure], failure)
  }
})

t.test('an expired flow cannot be continued (flow TTL)', async (t) => {
  const { app, clock } = await buildGateway(t, { flowTtl: 60 })
  const client = await registerClient(app)
  const browser = new Browser()
  const flow = await startFlow(app, browser, client, { challenge })
  clock.advance(61_000)
  const res = await browser.post(app, '/login', { ...flow, username: 'gateway_user', password: 'gateway_pass' })
  t.equal(res.statusCode, 400)
  t.match(res.body, /expired/)
})

t.test('an unreachable upstream gives a clear page at sign-in, not a 500', async (t) => {
  const { app } = await buildGateway(t, {
    upstreamRs: 'http://127.0.0.1:9/mcp',
    upstreamAuthorizeEndpoint: undefined,
    upstreamTokenEndpoint: undefined,
    upstreamTimeout: 500
  })
  const client = await registerClient(app)
  const browser = new Browser()
  const flow = await startFlow(app, browser, client, { challenge })
  const res = await browser.post(app, '/login', { ...flow, username: 'gateway_user', password: 'gateway_pass' })
  t.equal(res.statusCode, 502)
  t.match(res.body, /unavailable/)
})

t.test('the store failing after sign-in is a 503 page, not "the upstream is unavailable" (502)', async (t) => {
  // A store whose step-up scope records cannot be read, as if Redis went away between two calls.
  const { store, failing } = failingStore(t)
  const { app, github } = await buildGateway(t, { store })
  const client = await registerClient(app)
  const browser = new Browser()
  const flow = await startFlow(app, browser, client, { challenge })
  failing.prefix = 'upstream-scope-needs:'
  const login = await browser.post(app, '/login', { ...flow, username: 'gateway_user', password: 'gateway_pass' })
  t.equal(login.statusCode, 503)
  t.equal(login.headers['retry-after'], '5')
  t.match(login.body, /cannot reach its storage/)
  t.notMatch(login.body, /upstream service is unavailable/)
  t.equal(github.requests.length, 0, 'the upstream was never blamed, nor asked')
})
