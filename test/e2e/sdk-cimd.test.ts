import { createHash } from 'node:crypto'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { auth } from '@modelcontextprotocol/sdk/client/auth.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js'
import t from 'tap'
import { CookieBrowser, loginForm } from '../helpers/cookie-browser.js'
import { clientDocument, startDocumentServer, TEST_CA } from '../helpers/document-server.js'
import { startFakeGithub } from '../helpers/fake-github.js'
import { startFakeMcp } from '../helpers/fake-mcp.js'
import { hiddenField, startLiveGateway, testStore, visitUpstream } from '../helpers/gateway.js'
import { recordingFetch, type Exchange } from '../helpers/recording-fetch.js'
import { MemoryProvider } from '../helpers/sdk-provider.js'

/*
 * The official MCP TypeScript SDK (`auth()`, `Client`, `StreamableHTTPClientTransport`) signing in to the gateway
 * over real HTTP with a Client ID Metadata Document (CIMD) instead of registering: spec-checklist §1.5 item 32
 * (a client uses CIMD when the AS advertises it, before DCR) and item 33 (the AS supports CIMD: it fetches the
 * document at the client id URL, checks it, caches it, and shows the document's host). The document is served
 * over HTTPS on localhost by a certificate of the test CA (test/helpers/document-server.ts), so the gateway runs
 * with `cimdAllowPrivate` and `clientDocumentCa`. Run again on Redis by test/redis/sdk-cimd.test.ts.
 */

const REDIRECT_URL = 'http://127.0.0.1:33421/callback'
const DOCUMENT_PATH = '/oauth/sdk-client.json'
const CLIENT_NAME = 'SDK CIMD client'
const UPSTREAM_TOKEN = /\bgh[oupr]_/

/** A MemoryProvider that names its metadata document: what makes auth() use the URL as its client id (SEP-991). */
class DocumentProvider extends MemoryProvider {
  readonly clientMetadataUrl: string

  constructor (clientMetadataUrl: string) {
    super(REDIRECT_URL, CLIENT_NAME)
    this.clientMetadataUrl = clientMetadataUrl
  }
}

t.test('MCP SDK client with a Client ID Metadata Document: discovery, no registration, sign-in, tool call, refresh', async (t) => {
  const documents = await startDocumentServer(t)
  const clientId = `${documents.origin}${DOCUMENT_PATH}`
  // A day of caching: the gateway keeps it (it bounds the lifetime to 5 min–24 h) past the access token's hour.
  documents.serve(DOCUMENT_PATH, {
    headers: { 'cache-control': 'public, max-age=86400' },
    body: clientDocument(clientId, [REDIRECT_URL], {
      client_name: CLIENT_NAME,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none'
    })
  })

  const github = await startFakeGithub({ mode: 'oauth-app' })
  t.teardown(() => github.close())
  const mcp = await startFakeMcp({ isValidToken: (token) => github.isValidAccessToken(token) })
  t.teardown(() => mcp.close())
  const { app, origin, clock } = await startLiveGateway(t, github, {
    upstreamRs: mcp.url,
    cimdAllowPrivate: true,
    clientDocumentCa: TEST_CA,
    ...testStore()
  })
  // Every request the gateway's socket receives, whoever sends it (the SDK, the browser, anyone).
  const gatewayRequests: Array<{ method: string, path: string }> = []
  app.server.on('request', (req) => {
    gatewayRequests.push({ method: req.method ?? '', path: new URL(req.url ?? '/', origin).pathname })
  })
  const registrations = (): number => gatewayRequests.filter((r) => r.path === '/register').length

  const serverUrl = `${origin}/mcp`
  const provider = new DocumentProvider(clientId)
  // The SDK's fetch, recorded (bodies of responses are not read: the transport's event streams never end).
  const { fetchFn, log } = recordingFetch({ readBodies: false })
  const tokenRequests = (): Exchange[] => log.filter((e) => e.method === 'POST' && e.url.pathname === '/token')

  let authorizationUrl: URL | undefined
  let code = ''
  let first: OAuthTokens | undefined
  let client: Client | undefined
  // The client lives across the last two subtests: closed with the whole test, not the subtest that connects it.
  t.teardown(async () => { await client?.close().catch(() => {}) })

  await t.test('§1.5 item 32: discovery (PRM, then AS metadata advertising CIMD) and auth() uses the document URL, not /register', async (t) => {
    t.equal(await auth(provider, { serverUrl, fetchFn }), 'REDIRECT')

    const prm = log.findIndex((e) => e.url.pathname.startsWith('/.well-known/oauth-protected-resource'))
    const asMeta = log.findIndex((e) => e.url.pathname.startsWith('/.well-known/oauth-authorization-server'))
    t.ok(prm >= 0 && asMeta > prm, 'RFC 9728 PRM first, then RFC 8414 AS metadata')
    t.equal(log[prm]?.url.href, `${origin}/.well-known/oauth-protected-resource/mcp`)
    t.equal(log[prm]?.status, 200)
    t.equal(log[asMeta]?.url.href, `${origin}/.well-known/oauth-authorization-server`)
    t.equal(log[asMeta]?.status, 200)
    const metadata = provider.discovery?.authorizationServerMetadata
    t.equal(metadata?.issuer, origin)
    t.equal(metadata?.client_id_metadata_document_supported, true, 'the AS advertises CIMD')
    t.ok(metadata?.token_endpoint_auth_methods_supported?.includes('none'), 'and public clients (auth method none)')
    t.equal(metadata?.registration_endpoint, `${origin}/register`, 'DCR is offered too, so choosing CIMD was the SDK\'s preference')

    t.equal(log.filter((e) => e.url.pathname === '/register').length, 0, 'the SDK never called /register')
    t.equal(registrations(), 0, 'and the gateway never received a request to /register')
    t.match(provider.client, { client_id: clientId }, 'the client id is the document URL')
    t.equal((provider.client as { client_secret?: string } | undefined)?.client_secret, undefined, 'no secret')
    t.equal(documents.hits(DOCUMENT_PATH), 0, 'nothing fetched the document yet: the SDK does not, the gateway has not been asked')

    authorizationUrl = provider.authorizationUrls[0]
    t.equal(provider.authorizationUrls.length, 1)
    const q = authorizationUrl?.searchParams
    t.equal(authorizationUrl === undefined ? undefined : authorizationUrl.origin + authorizationUrl.pathname, `${origin}/authorize`)
    t.equal(q?.get('client_id'), clientId, 'client_id at /authorize is the document URL')
    t.equal(q?.get('redirect_uri'), REDIRECT_URL)
    t.equal(q?.get('code_challenge_method'), 'S256')
    t.equal(q?.get('code_challenge'), createHash('sha256').update(provider.verifier ?? '').digest('base64url'))
    t.equal(q?.get('resource'), serverUrl)
    t.equal(q?.get('state'), provider.states[0])
  })

  await t.test('§1.5 item 33: the gateway fetches the document once and the pages name its host', async (t) => {
    if (authorizationUrl === undefined) return t.fail('no authorization URL')
    const host = new URL(clientId).host
    const browser = new CookieBrowser()
    const authorize = await browser.get(authorizationUrl.href)
    t.equal(authorize.status, 302, authorize.body)
    t.match(authorize.location, `${origin}/login?flow=`)
    t.equal(documents.hits(DOCUMENT_PATH), 1, '/authorize fetched the document')

    const loginPage = await browser.get(authorize.location ?? '')
    t.equal(loginPage.status, 200)
    t.match(loginPage.body, `<strong>${CLIENT_NAME}</strong> from <span class="host">${host}</span>`, 'the login page names the document\'s host')
    const login = await browser.post(`${origin}/login`, loginForm(loginPage.body))
    t.equal(login.status, 303, login.body)
    t.match(login.location, `${origin}/consent?flow=`)

    const consentPage = await browser.get(login.location ?? '')
    t.equal(consentPage.status, 200)
    t.match(consentPage.body, `<h1>${CLIENT_NAME} from <span class="host">${host}</span> wants to use`, 'the consent heading names the document\'s host')
    t.match(consentPage.body, `<dt>Client published by</dt>\n<dd><span class="host">${host}</span><br><code>${clientId}</code>`, 'and says who published the client')
    t.match(consentPage.body, '<span class="host">127.0.0.1:33421</span>', 'the redirect URI\'s host is shown too')
    const consent = await browser.post(`${origin}/consent`, {
      flow: hiddenField(consentPage.body, 'flow'),
      csrf: hiddenField(consentPage.body, 'csrf'),
      decision: 'approve'
    })
    t.equal(consent.status, 303, consent.body)
    t.equal(new URL(consent.location ?? 'about:blank').origin, github.origin, 'on to the upstream')

    const done = await browser.get(await visitUpstream(consent.location ?? ''))
    t.equal(done.status, 302, done.body)
    const redirect = new URL(done.location ?? 'about:blank')
    t.equal(redirect.origin + redirect.pathname, REDIRECT_URL, 'back at the redirect URI the document lists')
    t.equal(redirect.searchParams.get('state'), provider.states[0])
    t.equal(redirect.searchParams.get('iss'), origin)
    code = redirect.searchParams.get('code') ?? ''
    t.match(code, /^gwo_/)
  })

  await t.test('code exchange: client_id at /token is the document URL; one fetch for the whole sign-in', async (t) => {
    t.equal(await auth(provider, { serverUrl, authorizationCode: code, fetchFn }), 'AUTHORIZED')
    const exchange = tokenRequests().at(-1)
    t.equal(exchange?.status, 200)
    const form = new URLSearchParams(exchange?.body ?? '')
    t.equal(form.get('grant_type'), 'authorization_code')
    t.equal(form.get('client_id'), clientId, 'client_id at /token is the document URL')
    t.equal(form.get('code_verifier'), provider.verifier)
    t.equal(form.get('client_secret'), null)
    t.equal(exchange?.headers.get('authorization'), null, 'no client authentication: a public client')

    first = provider.saved
    t.match(first, { token_type: 'Bearer', scope: 'mcp', access_token: /^gwa_/, refresh_token: /^gwr_/, expires_in: 3600 })
    t.notMatch(JSON.stringify(first), UPSTREAM_TOKEN, 'no upstream token in what the client holds')
    t.equal(documents.hits(DOCUMENT_PATH), 1, 'the document was fetched once across /authorize, the two screens and /token')
    t.equal(registrations(), 0, 'still no /register')
  })

  await t.test('a tool call through the gateway with the SDK Client and Streamable HTTP transport', async (t) => {
    const before = log.length
    client = new Client({ name: 'sdk-cimd-e2e', version: '1.0.0' })
    const transport = new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider, fetch: fetchFn })
    await client.connect(transport)
    const echoed = await client.callTool({ name: 'echo', arguments: { text: 'signed in with a metadata document' } })
    t.same(echoed.content, [{ type: 'text', text: 'signed in with a metadata document' }])
    const mcpCalls = log.slice(before).filter((e) => e.url.pathname === '/mcp')
    t.ok(mcpCalls.length > 0)
    t.ok(mcpCalls.every((e) => e.headers.get('authorization') === `Bearer ${first?.access_token ?? ''}`), 'every /mcp request carried the gateway token')
    t.notOk(mcpCalls.some((e) => e.status === 401), 'no challenge')
    const upstream = mcp.requests.filter((r) => r.method === 'POST')
    t.ok(upstream.length > 0)
    t.ok(upstream.every((r) => /^Bearer gh[ou]_/.test(String(r.headers.authorization))), 'the upstream got the GitHub token, never the gateway\'s')
  })

  await t.test('refresh after the access token expires: auth() again returns new tokens that work', async (t) => {
    if (client === undefined) return t.fail('no client')
    // Past the access token's hour, inside the document's day in the cache.
    clock.advance(3601_000)
    t.equal(await auth(provider, { serverUrl, fetchFn }), 'AUTHORIZED', 'the stored refresh token is used, no new authorization')
    t.equal(provider.authorizationUrls.length, 1, 'no second sign-in')
    const refresh = tokenRequests().at(-1)
    t.equal(refresh?.status, 200)
    const form = new URLSearchParams(refresh?.body ?? '')
    t.equal(form.get('grant_type'), 'refresh_token')
    t.equal(form.get('refresh_token'), first?.refresh_token)
    t.equal(form.get('client_id'), clientId, 'client_id at the refresh is the document URL')
    const second = provider.saved
    t.match(second, { token_type: 'Bearer', access_token: /^gwa_/, refresh_token: /^gwr_/ })
    t.not(second?.access_token, first?.access_token, 'a new access token')
    t.not(second?.refresh_token, first?.refresh_token, 'a new refresh token (rotated)')
    t.notMatch(JSON.stringify(second), UPSTREAM_TOKEN)

    // The connected client reads the provider's tokens on each request: the new token, accepted at once.
    const before = log.length
    const again = await client.callTool({ name: 'echo', arguments: { text: 'after the refresh' } })
    t.same(again.content, [{ type: 'text', text: 'after the refresh' }], 'a tool call with the refreshed token works')
    const mcpCalls = log.slice(before).filter((e) => e.url.pathname === '/mcp')
    t.ok(mcpCalls.length > 0)
    t.ok(mcpCalls.every((e) => e.headers.get('authorization') === `Bearer ${second?.access_token ?? ''}` && e.status === 200), 'with the new access token, not challenged')

    t.equal(documents.hits(DOCUMENT_PATH), 1, 'the cached document served the refresh too')
    t.equal(registrations(), 0, 'no /register, ever')
    t.equal(gatewayRequests.filter((r) => r.path === '/token').length, 2, 'the gateway saw exactly the code exchange and the refresh at /token')
  })
})
