import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import type { GatewayPluginOptions } from '../../app.js'
import { createPkcePair } from '../../lib/pkce.js'
import { TEST_CA, clientDocument, startDocumentServer, type DocumentServer } from '../helpers/document-server.js'
import {
  Browser, authorizeFully, authorizeUrl, buildGateway, exchangeCode, pathOf, registerClient, startFlow, tokenRequest,
  visitUpstream, type RegisteredClient, type TestGateway
} from '../helpers/gateway.js'
import type { Teardown } from '../helpers/teardown.js'

/*
 * Client ID Metadata Documents (CIMD) through HTTP: a client whose client_id is an https URL, its document served
 * by a local HTTPS server (test/helpers/document-server.ts), the gateway told to trust that server's CA and to
 * fetch from loopback. Spec checklist §1.5 item 33 is what each test names; every refusal is a page (never a
 * redirect to a redirect URI nobody verified, never a 500), or at /token a 401 invalid_client.
 */

/** What lets the gateway fetch from the local document server. */
const LOCAL: Partial<GatewayPluginOptions> = { cimdAllowPrivate: true, clientDocumentCa: TEST_CA }
const REDIRECT = 'http://127.0.0.1:33418/callback'
const USER = { username: 'gateway_user', password: 'gateway_pass' }

interface CimdSetup extends TestGateway {
  docs: DocumentServer
}

async function setUp (t: Teardown, overrides: Partial<GatewayPluginOptions> = {}): Promise<CimdSetup> {
  const docs = await startDocumentServer(t)
  const gateway = await buildGateway(t, { ...LOCAL, ...overrides })
  return { ...gateway, docs }
}

/** Serves a valid document at `path`; the client as the gateway helpers take it (its id is the document's URL). */
function publish (
  docs: DocumentServer,
  path: string,
  redirectUris: string[] = [REDIRECT],
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {}
): RegisteredClient {
  const clientId = docs.origin + path
  docs.serve(path, { headers, body: clientDocument(clientId, redirectUris, extra) })
  return { client_id: clientId, redirect_uris: redirectUris }
}

/** A client that is only a URL: what /authorize gets before the gateway has seen any document. */
function urlClient (docs: DocumentServer, path: string, redirectUris: string[] = [REDIRECT]): RegisteredClient {
  return { client_id: docs.origin + path, redirect_uris: redirectUris }
}

/** GET /authorize with PKCE S256, as an MCP client sends it. */
async function authorize (
  app: FastifyInstance,
  client: RegisteredClient,
  redirectUri?: string
): Promise<LightMyRequestResponse> {
  const { challenge } = createPkcePair()
  const url = authorizeUrl(client, redirectUri === undefined ? { challenge } : { challenge, redirectUri })
  return await app.inject({ method: 'GET', url })
}

/** An error page: the status, HTML, no redirect anywhere, the texts, and nothing unescaped. */
function assertPage (
  t: Test,
  res: LightMyRequestResponse,
  status: number,
  title: string,
  ...texts: Array<string | RegExp>
): void {
  t.equal(res.statusCode, status, `HTTP ${status}`)
  t.match(res.headers['content-type'], /^text\/html/, 'an HTML page')
  t.equal(res.headers.location, undefined, 'no redirect: the redirect URI is not trusted yet')
  t.match(res.body, `<h1>${title}</h1>`, `titled ${title}`)
  for (const text of texts) t.match(res.body, text)
  t.notMatch(res.body, /<script/i, 'no raw <script')
}

/** The page escapes what it shows: an apostrophe is &#39; there. */
const esc = (text: string): string => text.replace(/'/g, '&#39;')

t.test('§1.5 item 33: a valid document is the registration: /authorize, login, consent, callback, /token and refresh with no /register', async (t) => {
  const { app, docs } = await setUp(t)
  const client = publish(docs, '/clients/app.json', [REDIRECT], {
    grant_types: ['authorization_code', 'refresh_token'],
    client_name: 'Document Client'
  })
  const host = new URL(docs.origin).host
  const browser = new Browser()
  const { verifier, challenge } = createPkcePair()

  const start = await browser.get(app, authorizeUrl(client, { challenge }))
  t.equal(start.statusCode, 302, 'to the login page')
  t.match(start.headers.location, /^\/login\?flow=/)
  const loginPage = await browser.get(app, pathOf(start.headers.location as string))
  t.equal(loginPage.statusCode, 200)
  t.match(loginPage.body, `<strong>Document Client</strong> from <span class="host">${host}</span>`,
    'the login page names the host the document came from (CIMD §6.4)')
  const flow = await startFlow(app, browser, client, { challenge })

  const login = await browser.post(app, '/login', { ...flow, ...USER })
  t.equal(login.statusCode, 303)
  t.match(login.headers.location, /^\/consent\?flow=/, 'a CIMD client gets the consent step too (§1.7 item 42)')
  const consent = await browser.get(app, pathOf(login.headers.location as string))
  t.equal(consent.statusCode, 200)
  t.match(consent.body, 'Client published by', 'the consent page says who published the client')
  t.match(consent.body, `<span class="host">${host}</span>`, 'and shows the document host')
  t.match(consent.body, client.client_id, 'and the client id URL')
  t.match(consent.body, `from <span class="host">${host}</span> wants to use`)
  t.notMatch(consent.body, 'chose its name itself', 'not the self-chosen-name note of a registered client')
  t.match(consent.body, '127.0.0.1:33418', 'the redirect URI host is shown (§1.5 item 33, localhost impersonation)')

  const approve = await browser.post(app, '/consent', { ...flow, decision: 'approve' })
  t.equal(approve.statusCode, 303)
  const callback = await visitUpstream(approve.headers.location as string)
  const back = await browser.get(app, pathOf(callback))
  t.equal(back.statusCode, 302)
  const redirect = new URL(back.headers.location as string)
  t.equal(redirect.origin + redirect.pathname, REDIRECT, 'the code goes to the document\'s redirect URI')
  const code = redirect.searchParams.get('code') ?? ''
  t.ok(code, 'a code')

  const tokens = await exchangeCode(app, client, code, verifier)
  t.equal(tokens.statusCode, 200, '/token with the URL as client_id and no secret')
  const body = tokens.json()
  t.type(body.access_token, 'string')
  t.type(body.refresh_token, 'string')
  t.equal(body.token_type, 'Bearer')

  const refreshed = await tokenRequest(app, {
    grant_type: 'refresh_token', refresh_token: body.refresh_token, client_id: client.client_id
  })
  t.equal(refreshed.statusCode, 200, 'the refresh_token grant works for the document client')
  t.type(refreshed.json().access_token, 'string')
  t.not(refreshed.json().refresh_token, body.refresh_token, 'rotated (public client, §1.6 item 40)')

  t.equal(docs.hits('/clients/app.json'), 1, 'the whole chain fetched the document once')
})

t.test('consent for a registered (DCR) client says its name is self-chosen, with no "published by"', async (t) => {
  const { app } = await setUp(t)
  const client = await registerClient(app)
  const browser = new Browser()
  const flow = await startFlow(app, browser, client, { challenge: createPkcePair().challenge })
  const login = await browser.post(app, '/login', { ...flow, ...USER })
  const consent = await browser.get(app, pathOf(login.headers.location as string))
  t.equal(consent.statusCode, 200)
  t.match(consent.body, 'The client chose its name itself when it registered')
  t.notMatch(consent.body, 'Client published by')
})

t.test('§1.5 item 33 (redirect URIs) + RFC 8252 §7.3: port-less loopback URIs in the document match any port; others get a page', async (t) => {
  const { app, docs } = await setUp(t)
  const client = publish(docs, '/claude-code.json', ['http://127.0.0.1/callback', 'http://localhost/callback'])

  for (const ephemeral of ['http://127.0.0.1:54321/callback', 'http://localhost:60999/callback']) {
    const res = await authorize(app, client, ephemeral)
    t.equal(res.statusCode, 302, `${ephemeral} is accepted`)
    t.match(res.headers.location, /^\/login\?flow=/)
  }

  // The whole way with the ephemeral port: the code comes back to it, and /token takes it.
  const ephemeral = 'http://127.0.0.1:54321/callback'
  const done = await authorizeFully(app, client, { redirectUri: ephemeral })
  t.equal(done.redirect.origin, 'http://127.0.0.1:54321', 'redirected to the port the client asked for')
  const tokens = await exchangeCode(app, client, done.code, done.verifier, { redirect_uri: ephemeral })
  t.equal(tokens.statusCode, 200)

  for (const other of ['http://127.0.0.1:54321/other', 'https://evil.example/callback', 'http://127.0.0.2:54321/callback']) {
    const res = await authorize(app, client, other)
    assertPage(t, res, 400, 'Invalid redirect URI', 'not one it registered')
  }
})

t.test('§1.5 item 33: invalid documents and failed fetches are pages: 400 refused, 502 unavailable', async (t) => {
  const { app, docs } = await setUp(t)
  const origin = docs.origin

  docs.serve('/mismatch', { body: clientDocument(`${origin}/someone-else`, [REDIRECT]) })
  assertPage(t, await authorize(app, urlClient(docs, '/mismatch')), 400, 'Client not accepted',
    `${origin}/mismatch`, esc('the document\'s client_id is not the URL it was fetched from'))

  docs.serve('/redirects', { status: 302, headers: { location: `${origin}/elsewhere` } })
  assertPage(t, await authorize(app, urlClient(docs, '/redirects')), 502, 'Client unavailable',
    `${origin}/redirects`, 'redirects are not followed')
  t.equal(docs.hits('/elsewhere'), 0, 'the redirect was not followed')

  const bigUrl = `${origin}/big`
  docs.serve('/big', { body: clientDocument(bigUrl, [REDIRECT], { padding: 'x'.repeat(6 * 1024) }) })
  assertPage(t, await authorize(app, urlClient(docs, '/big')), 502, 'Client unavailable', `${origin}/big`)

  assertPage(t, await authorize(app, urlClient(docs, '/missing')), 502, 'Client unavailable',
    `${origin}/missing`, 'answered HTTP 404')

  docs.serve('/not-json', { headers: { 'content-type': 'text/html' }, body: '<html>hello</html>' })
  assertPage(t, await authorize(app, urlClient(docs, '/not-json')), 400, 'Client not accepted',
    `${origin}/not-json`, 'is not a JSON object')

  docs.serve('/array', { body: '[1, 2]' })
  assertPage(t, await authorize(app, urlClient(docs, '/array')), 400, 'Client not accepted', 'is not a JSON object')

  publish(docs, '/basic', [REDIRECT], { token_endpoint_auth_method: 'client_secret_basic' })
  assertPage(t, await authorize(app, urlClient(docs, '/basic')), 400, 'Client not accepted',
    'cannot use a shared secret')

  publish(docs, '/secret', [REDIRECT], { client_secret: 'shh' })
  assertPage(t, await authorize(app, urlClient(docs, '/secret')), 400, 'Client not accepted',
    'must not contain a client secret')

  publish(docs, '/no-redirects', [])
  assertPage(t, await authorize(app, urlClient(docs, '/no-redirects')), 400, 'Client not accepted',
    'redirect_uris must be a non-empty list')

  publish(docs, '/http-redirect', ['http://app.example/callback'])
  assertPage(t, await authorize(app, urlClient(docs, '/http-redirect', ['http://app.example/callback'])), 400,
    'Client not accepted', 'http redirect URIs are allowed only on loopback')
})

t.test('§1.5 item 33 (CIMD §6.6): a document server slower than 5 s is a 502 page within about 7 s', { timeout: 20_000 }, async (t) => {
  const { app, docs } = await setUp(t)
  const url = `${docs.origin}/slow`
  docs.serve('/slow', { delayMs: 6000, body: clientDocument(url, [REDIRECT]) })
  const startedAt = performance.now()
  const res = await authorize(app, urlClient(docs, '/slow'))
  const elapsedMs = performance.now() - startedAt
  assertPage(t, res, 502, 'Client unavailable', url)
  t.ok(elapsedMs < 7000, `answered in ${Math.round(elapsedMs)} ms`)
  t.ok(elapsedMs >= 4500, 'after the 5 s timeout, not before')
})

t.test('§1.5 item 33 (SSRF, CIMD §6.5): a document on a private address is refused unless cimdAllowPrivate', async (t) => {
  const docs = await startDocumentServer(t)
  const client = publish(docs, '/private.json')
  const strict = await buildGateway(t, { clientDocumentCa: TEST_CA })
  assertPage(t, await authorize(strict.app, client), 400, 'Client not accepted',
    `${docs.origin}/private.json`, 'private or special address')
  t.equal(docs.hits('/private.json'), 0, 'nothing was sent to the private address')

  const allowed = await buildGateway(t, LOCAL)
  const res = await authorize(allowed.app, client)
  t.equal(res.statusCode, 302, 'with cimdAllowPrivate the same document is used')
  t.equal(docs.hits('/private.json'), 1)
})

t.test('§1.5 item 33 (caching, CIMD §4.4): cached at least 5 min even with no-store, refetched after the lifetime', async (t) => {
  const { app, docs, clock } = await setUp(t)
  // These tests move the gateway's ManualClock: the memory store reads its TTLs from that clock (lib/stores/memory.ts).
  const plain = publish(docs, '/plain.json')
  t.equal((await authorize(app, plain)).statusCode, 302)
  t.equal((await authorize(app, plain)).statusCode, 302)
  t.equal(docs.hits('/plain.json'), 1, 'two sign-ins, one fetch')

  const noStore = publish(docs, '/no-store.json', [REDIRECT], {}, { 'cache-control': 'no-store' })
  t.equal((await authorize(app, noStore)).statusCode, 302)
  t.equal((await authorize(app, noStore)).statusCode, 302)
  t.equal(docs.hits('/no-store.json'), 1, 'no-store is still kept for the 5 minute floor')

  const hour = publish(docs, '/hour.json', [REDIRECT], {}, { 'cache-control': 'public, max-age=3600' })
  t.equal((await authorize(app, hour)).statusCode, 302)

  clock.advance(5 * 60 * 1000 - 1000)
  await authorize(app, plain)
  await authorize(app, noStore)
  t.equal(docs.hits('/plain.json'), 1, 'still cached just before 5 minutes')
  t.equal(docs.hits('/no-store.json'), 1)

  clock.advance(2000)
  t.equal((await authorize(app, plain)).statusCode, 302)
  t.equal((await authorize(app, noStore)).statusCode, 302)
  t.equal(docs.hits('/plain.json'), 2, 'fetched again after the 5 minute floor')
  t.equal(docs.hits('/no-store.json'), 2)
  await authorize(app, hour)
  t.equal(docs.hits('/hour.json'), 1, 'max-age=3600 keeps it past 5 minutes')

  clock.advance(60 * 60 * 1000)
  await authorize(app, hour)
  t.equal(docs.hits('/hour.json'), 2, 'and not past its max-age')
})

t.test('§1.5 item 33 (CIMD §4.4): invalid documents and error answers are not cached', async (t) => {
  const { app, docs } = await setUp(t)
  docs.serve('/invalid.json', { body: clientDocument(`${docs.origin}/not-me`, [REDIRECT]) })
  t.equal((await authorize(app, urlClient(docs, '/invalid.json'))).statusCode, 400)
  t.equal((await authorize(app, urlClient(docs, '/invalid.json'))).statusCode, 400)
  t.equal(docs.hits('/invalid.json'), 2, 'an invalid document is fetched again each time')

  // Fixed at its URL: the next sign-in uses it at once.
  const fixed = publish(docs, '/invalid.json')
  t.equal((await authorize(app, fixed)).statusCode, 302, 'the corrected document is used at once')
  t.equal(docs.hits('/invalid.json'), 3)

  docs.serve('/flaky.json', { status: 500, body: 'oops' })
  t.equal((await authorize(app, urlClient(docs, '/flaky.json'))).statusCode, 502)
  const recovered = publish(docs, '/flaky.json')
  t.equal((await authorize(app, recovered)).statusCode, 302, 'a 500 answer was not cached')
  t.equal(docs.hits('/flaky.json'), 2)
})

t.test('§1.5 item 33 (caching) + maxClientDocuments: past the bound a document is used uncached, none is evicted', async (t) => {
  const { app, docs } = await setUp(t, { maxClientDocuments: 1 })
  const first = publish(docs, '/first.json')
  const second = publish(docs, '/second.json')
  for (let i = 0; i < 2; i++) {
    t.equal((await authorize(app, first)).statusCode, 302)
    t.equal((await authorize(app, second)).statusCode, 302, 'the document past the bound still signs in')
  }
  t.equal(docs.hits('/first.json'), 1, 'the cached one stays cached')
  t.equal(docs.hits('/second.json'), 2, 'the one past the bound is fetched each time')
})

// MCP 2025-11-25 makes client_name a required field of the document, and the AS MUST check the required fields.
t.test('§1.5 item 33 (required fields): a document without a string client_name is refused with a 400 page', async (t) => {
  const { app, docs } = await setUp(t)
  docs.serve('/nameless.json', { body: { client_id: `${docs.origin}/nameless.json`, redirect_uris: [REDIRECT] } })
  docs.serve('/numbered.json', { body: clientDocument(`${docs.origin}/numbered.json`, [REDIRECT], { client_name: 42 }) })
  for (const path of ['/nameless.json', '/numbered.json']) {
    const res = await authorize(app, urlClient(docs, path))
    t.equal(res.statusCode, 400, `${path}: 400`)
    t.match(res.body, 'client_name', `${path}: the page names client_name`)
    t.not(res.statusCode, 500, 'never a 500')
  }
})

t.test('§1.5 item 33 (trust policies): cimdAllowedHosts refuses other hosts before fetching', async (t) => {
  const docs = await startDocumentServer(t)
  const client = publish(docs, '/policy.json')
  const host = new URL(docs.origin).host

  const exampleOnly = await buildGateway(t, { ...LOCAL, cimdAllowedHosts: ['example.com'] })
  assertPage(t, await authorize(exampleOnly.app, client), 400, 'Client not accepted',
    `This gateway does not accept clients from ${host}.`)

  // *.localhost is any host below localhost, not localhost itself.
  const below = await buildGateway(t, { ...LOCAL, cimdAllowedHosts: ['*.localhost'] })
  assertPage(t, await authorize(below.app, client), 400, 'Client not accepted',
    `This gateway does not accept clients from ${host}.`)
  t.equal(docs.hits('/policy.json'), 0, 'a host not allowed is never fetched')

  const exact = await buildGateway(t, { ...LOCAL, cimdAllowedHosts: ['localhost'] })
  t.equal((await authorize(exact.app, client)).statusCode, 302, 'the host itself is allowed')
})

t.test('§1.5 item 33 + redirectUriAllow: the operator\'s redirect URI patterns apply to documents and to DCR alike', async (t) => {
  const docs = await startDocumentServer(t)
  const client = publish(docs, '/loopback.json')

  const claudeOnly = await buildGateway(t, { ...LOCAL, redirectUriAllow: ['https://claude.ai/*'] })
  assertPage(t, await authorize(claudeOnly.app, client), 400, 'Client not accepted',
    'accepts only the redirect URIs its operator allows')
  const registration = await claudeOnly.app.inject({
    method: 'POST',
    url: '/register',
    payload: { client_name: 'Local', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' }
  })
  t.equal(registration.statusCode, 400)
  t.equal(registration.json().error, 'invalid_redirect_uri', 'DCR of a loopback URI is refused too')
  const claude = publish(docs, '/claude.json', ['https://claude.ai/api/mcp/auth_callback'])
  t.equal((await authorize(claudeOnly.app, claude)).statusCode, 302, 'a document within the pattern is used')

  const loopback = await buildGateway(t, { ...LOCAL, redirectUriAllow: ['loopback'] })
  t.equal((await authorize(loopback.app, client)).statusCode, 302, 'loopback allows the document')
  const registered = await registerClient(loopback.app)
  t.equal(registered.redirect_uris[0], REDIRECT, 'and the registration')
})

t.test('§1.5 item 33: clientRegistration dcr only: a URL client_id gets a page saying documents are not accepted', async (t) => {
  const docs = await startDocumentServer(t)
  const client = publish(docs, '/dcr-only.json')
  const { app } = await buildGateway(t, { ...LOCAL, clientRegistration: 'dcr' })
  assertPage(t, await authorize(app, client), 400, 'Client not accepted',
    'does not accept client metadata documents')
  t.equal(docs.hits('/dcr-only.json'), 0)
  t.equal((await registerClient(app)).redirect_uris[0], REDIRECT, 'registration still works')
})

t.test('§1.5 item 33 at /token: a URL client_id whose document is invalid is 401 invalid_client naming the reason', async (t) => {
  const { app, docs, clock } = await setUp(t)

  // A fresh URL, so nothing is cached: its document names another client.
  docs.serve('/token-mismatch.json', { body: clientDocument(`${docs.origin}/other.json`, [REDIRECT]) })
  const res = await tokenRequest(app, {
    grant_type: 'authorization_code',
    code: 'whatever',
    code_verifier: createPkcePair().verifier,
    client_id: `${docs.origin}/token-mismatch.json`,
    redirect_uri: REDIRECT
  })
  t.equal(res.statusCode, 401)
  t.equal(res.json().error, 'invalid_client')
  t.match(res.json().error_description, 'client_id is not the URL it was fetched from')
  t.match(res.json().error_description, `${docs.origin}/token-mismatch.json`)

  const unavailable = await tokenRequest(app, {
    grant_type: 'refresh_token', refresh_token: 'whatever', client_id: `${docs.origin}/token-missing.json`
  })
  t.equal(unavailable.statusCode, 401, 'a document that cannot be fetched is invalid_client as well, not a 500')
  t.equal(unavailable.json().error, 'invalid_client')
  t.match(unavailable.json().error_description, 'answered HTTP 404')

  // The realistic case: a signed-in client whose publisher withdraws it; seen once the cached copy expires.
  const client = publish(docs, '/withdrawn.json', [REDIRECT], { grant_types: ['authorization_code', 'refresh_token'] })
  const done = await authorizeFully(app, client)
  const tokens = await exchangeCode(app, client, done.code, done.verifier)
  t.equal(tokens.statusCode, 200)
  docs.serve('/withdrawn.json', { body: clientDocument(client.client_id, [REDIRECT], { client_secret: 'oops' }) })
  clock.advance(6 * 60 * 1000)
  const refresh = await tokenRequest(app, {
    grant_type: 'refresh_token', refresh_token: tokens.json().refresh_token, client_id: client.client_id
  })
  t.equal(refresh.statusCode, 401)
  t.equal(refresh.json().error, 'invalid_client')
  t.match(refresh.json().error_description, 'must not contain a client secret')
})

t.test('§1.5 item 33 (abuse, maxClientDocumentFetches): past the bound a sign-in gets the 503 busy page; one URL is one fetch', async (t) => {
  const { app, docs } = await setUp(t, { maxClientDocumentFetches: 1 })
  const a = `${docs.origin}/slow-a.json`
  const b = `${docs.origin}/slow-b.json`
  docs.serve('/slow-a.json', { delayMs: 500, body: clientDocument(a, [REDIRECT]) })
  docs.serve('/slow-b.json', { delayMs: 500, body: clientDocument(b, [REDIRECT]) })

  const both = await Promise.all([authorize(app, urlClient(docs, '/slow-a.json')), authorize(app, urlClient(docs, '/slow-b.json'))])
  const statuses = both.map((res) => res.statusCode).sort()
  t.same(statuses, [302, 503], 'one is fetched, the other refused rather than queued')
  const busy = both.find((res) => res.statusCode === 503) as LightMyRequestResponse
  assertPage(t, busy, 503, 'The gateway is busy', 'Try again in a moment')
  t.equal(busy.headers['retry-after'], '5', 'with Retry-After')
  t.equal(docs.hits('/slow-a.json') + docs.hits('/slow-b.json'), 1, 'only one fetch was made')

  docs.serve('/slow-c.json', { delayMs: 500, body: clientDocument(`${docs.origin}/slow-c.json`, [REDIRECT]) })
  const same = await Promise.all([authorize(app, urlClient(docs, '/slow-c.json')), authorize(app, urlClient(docs, '/slow-c.json'))])
  t.same(same.map((res) => res.statusCode), [302, 302], 'the same URL twice at once: both are signed in')
  t.equal(docs.hits('/slow-c.json'), 1, 'single flight: one fetch for both')
})

t.test('pages escape what they show: markup in a client id URL or a document never reaches a page raw', async (t) => {
  const { app, docs } = await setUp(t)
  const origin = docs.origin

  // Refused by the URL shape check (CIMD §3): then it is no document URL, only an unknown registered client.
  for (const clientId of [
    'https://<script>alert(1)</script>/x',
    `${origin}/a/../<script>alert(1)</script>`,
    `${origin}/#<script>alert(1)</script>`,
    'https://user:<script>@localhost/x'
  ]) {
    const res = await authorize(app, { client_id: clientId, redirect_uris: [REDIRECT] })
    assertPage(t, res, 400, 'Unknown client')
  }

  // A valid URL shape with markup in its path or query: fetched (404 here), and the page shows the URL escaped.
  for (const clientId of [
    `${origin}/<script>alert(1)</script>`,
    `${origin}/doc?name=<script>alert(1)</script>`,
    `${origin}/"><img src=x onerror=alert(1)>`
  ]) {
    const res = await authorize(app, { client_id: clientId, redirect_uris: [REDIRECT] })
    t.ok([400, 502].includes(res.statusCode), `${clientId}: a page (${res.statusCode})`)
    t.notMatch(res.body, /<script|<img/i, 'no raw markup')
    t.equal(res.headers.location, undefined)
  }

  // A document whose name is markup: the login page escapes it.
  const client = publish(docs, '/markup.json', [REDIRECT], { client_name: '<script>alert("name")</script>' })
  const browser = new Browser()
  const flow = await startFlow(app, browser, client, { challenge: createPkcePair().challenge })
  const login = await browser.get(app, `/login?flow=${flow.flow}`)
  t.equal(login.statusCode, 200)
  t.notMatch(login.body, /<script/i)
  t.match(login.body, '&lt;script&gt;', 'the name is shown escaped')
})
