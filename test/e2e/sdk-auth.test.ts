import { createHash } from 'node:crypto'
import { auth } from '@modelcontextprotocol/sdk/client/auth.js'
import type { OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js'
import t from 'tap'
import { request } from 'undici'
import type { ManualClock } from '../../lib/clock.js'
import { CookieBrowser, loginForm } from '../helpers/cookie-browser.js'
import { startFakeGithub, type FakeGithub, type FakeGithubOptions } from '../helpers/fake-github.js'
import { hiddenField, startLiveGateway, testStore, visitUpstream } from '../helpers/gateway.js'
import { recordingFetch } from '../helpers/recording-fetch.js'
import { MemoryProvider } from '../helpers/sdk-provider.js'
import type { Teardown } from '../helpers/teardown.js'

/*
 * The official MCP TypeScript SDK client (`auth()` from @modelcontextprotocol/sdk) against the
 * gateway over real HTTP: discovery, registration, the authorization request, the code exchange and
 * refresh are all the SDK's own requests; the test only plays the person in the browser.
 */

const REDIRECT_URL = 'http://127.0.0.1:33419/callback'
const UPSTREAM_TOKEN = /\bgh[oupr]_/

interface Started {
  origin: string
  github: FakeGithub
  clock: ManualClock
}

/**
 * A fresh fake GitHub, and the gateway in front of it on a real socket (memory, or Redis when
 * test/redis/sdk-auth.test.ts runs this suite again).
 */
async function startGateway (t: Teardown, fake: FakeGithubOptions): Promise<Started> {
  const github = await startFakeGithub(fake)
  t.teardown(() => github.close())
  const { origin, clock } = await startLiveGateway(t, github, testStore())
  return { origin, github, clock }
}

/** A raw token request, as any client (or attacker) could send it. */
async function postToken (
  origin: string,
  form: Record<string, string>
): Promise<{ status: number, json: Record<string, unknown> }> {
  const res = await request(`${origin}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams(form).toString()
  })
  return { status: res.statusCode, json: await res.body.json() as Record<string, unknown> }
}

/** The form fields of the gateway's requests to the fake GitHub's token endpoint. */
function upstreamTokenRequests (github: FakeGithub): URLSearchParams[] {
  return github.requests
    .filter((r) => r.method === 'POST' && r.path.startsWith('/login/oauth/access_token'))
    .map((r) => new URLSearchParams(r.body))
}

interface Variant {
  name: string
  fake: FakeGithubOptions
  /** Seconds the upstream access token lives; undefined when it never expires. */
  upstreamLifetime: number | undefined
}

const variants: Variant[] = [
  { name: 'GitHub OAuth App upstream (tokens never expire, no refresh token)', fake: { mode: 'oauth-app' }, upstreamLifetime: undefined },
  { name: 'GitHub App upstream (expiring tokens, rotating refresh tokens)', fake: { mode: 'expiring', expiresIn: 120 }, upstreamLifetime: 120 }
]

for (const variant of variants) {
  t.test(`MCP SDK auth() end to end: ${variant.name}`, async (t) => {
    const { origin, github, clock } = await startGateway(t, variant.fake)
    const serverUrl = `${origin}/mcp`
    const provider = new MemoryProvider(REDIRECT_URL, 'SDK e2e client')
    const { fetchFn, log } = recordingFetch({ readBodies: true })
    let authorizationUrl: URL | undefined
    let code = ''
    let first: OAuthTokens | undefined
    let second: OAuthTokens | undefined

    await t.test('RFC 9728 discovery, RFC 8414 metadata, RFC 7591 DCR and a PKCE S256 authorization request: auth() → REDIRECT', async (t) => {
      t.equal(await auth(provider, { serverUrl, fetchFn }), 'REDIRECT')

      const prm = log.find((e) => e.url.pathname.startsWith('/.well-known/oauth-protected-resource'))
      t.equal(prm?.url.href, `${origin}/.well-known/oauth-protected-resource/mcp`, 'RFC 9728 §3.1: the path-suffixed PRM is asked first')
      t.equal(prm?.status, 200)
      t.same(provider.discovery?.resourceMetadata?.authorization_servers, [origin], 'the PRM names the gateway as the authorization server')
      t.equal(provider.discovery?.resourceMetadata?.resource, serverUrl, 'RFC 9728 §3.3: resource is the URL the client asked about')
      const asMeta = log.find((e) => e.url.pathname.startsWith('/.well-known/oauth-authorization-server') || e.url.pathname.startsWith('/.well-known/openid-configuration'))
      t.equal(asMeta?.url.href, `${origin}/.well-known/oauth-authorization-server`, 'RFC 8414 metadata found at the well-known URL')
      t.equal(provider.discovery?.authorizationServerMetadata?.issuer, origin, 'RFC 8414 §3.3: issuer equals the URL the metadata was derived from')

      const registrations = log.filter((e) => e.method === 'POST' && e.url.pathname === '/register')
      t.equal(registrations.length, 1, 'RFC 7591: the SDK registered once')
      t.equal(registrations[0]?.status, 201)
      t.match(JSON.parse(registrations[0]?.body ?? '{}'), { redirect_uris: [REDIRECT_URL], token_endpoint_auth_method: 'none' })
      t.match(provider.client, { client_id: String, token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT_URL], issuer: origin })
      t.equal(provider.client?.client_secret, undefined, 'a public client gets no secret')

      t.equal(provider.authorizationUrls.length, 1, 'redirectToAuthorization was called once')
      authorizationUrl = provider.authorizationUrls[0]
      const q = authorizationUrl?.searchParams
      t.equal(authorizationUrl === undefined ? undefined : authorizationUrl.origin + authorizationUrl.pathname, `${origin}/authorize`)
      t.equal(q?.get('response_type'), 'code')
      t.equal(q?.get('client_id'), provider.client?.client_id)
      t.equal(q?.get('redirect_uri'), REDIRECT_URL)
      t.equal(q?.get('code_challenge_method'), 'S256', 'PKCE S256 (OAuth 2.1 §4.1.1)')
      t.equal(q?.get('code_challenge'), createHash('sha256').update(provider.verifier ?? '').digest('base64url'), 'the challenge is the S256 of the saved verifier')
      t.equal(q?.get('resource'), serverUrl, 'RFC 8707 resource indicator from the PRM')
      t.equal(q?.get('scope'), 'mcp', 'scope from the PRM scopes_supported (SEP-835)')
      t.equal(q?.get('state'), provider.states[0])
    })

    await t.test('the two screens (login, consent) and the upstream leg end at the client with code, state and RFC 9207 iss', async (t) => {
      if (authorizationUrl === undefined) return t.fail('no authorization URL')
      const browser = new CookieBrowser()
      const authorize = await browser.get(authorizationUrl.href)
      t.equal(authorize.status, 302, authorize.body)
      t.match(authorize.location, `${origin}/login?flow=`)
      t.ok(browser.cookies.size > 0, 'the flow is bound to this browser by a cookie')

      const loginPage = await browser.get(authorize.location ?? '')
      t.equal(loginPage.status, 200)
      const login = await browser.post(`${origin}/login`, loginForm(loginPage.body))
      t.equal(login.status, 303, login.body)
      t.match(login.location, `${origin}/consent?flow=`, 'screen 1 done: consent comes next')

      const consentPage = await browser.get(login.location ?? '')
      t.equal(consentPage.status, 200)
      const consent = await browser.post(`${origin}/consent`, {
        flow: hiddenField(consentPage.body, 'flow'),
        csrf: hiddenField(consentPage.body, 'csrf'),
        decision: 'approve'
      })
      t.equal(consent.status, 303, consent.body)
      const upstream = new URL(consent.location ?? 'about:blank')
      t.equal(upstream.origin + upstream.pathname, github.authorizeEndpoint, 'screen 2: the upstream authorize page')
      t.equal(upstream.searchParams.get('code_challenge_method'), 'S256', 'the gateway uses PKCE upstream too')
      t.not(upstream.searchParams.get('code_challenge'), authorizationUrl.searchParams.get('code_challenge'), 'with its own PKCE pair, not the client\'s')
      t.not(upstream.searchParams.get('state'), authorizationUrl.searchParams.get('state'), 'and its own state')

      const callback = await visitUpstream(upstream.href)
      t.match(callback, `${origin}/upstream/callback?`)
      const done = await browser.get(callback)
      t.equal(done.status, 302, done.body)
      const redirect = new URL(done.location ?? 'about:blank')
      t.equal(redirect.origin + redirect.pathname, REDIRECT_URL, 'back at the redirect URI the client registered')
      t.equal(redirect.searchParams.get('state'), provider.states[0], 'state echoed (OAuth 2.1 §4.1.2)')
      t.equal(redirect.searchParams.get('iss'), provider.discovery?.authorizationServerMetadata?.issuer, 'RFC 9207 iss equals the metadata issuer')
      t.equal(redirect.searchParams.get('iss'), origin)
      code = redirect.searchParams.get('code') ?? ''
      t.match(code, /^gwo_/, 'a gateway code, not the upstream one')
      t.equal(upstreamTokenRequests(github).length, 1, 'the gateway exchanged the upstream code itself')
    })

    await t.test('code exchange with the PKCE verifier: auth(authorizationCode) → AUTHORIZED with gateway tokens only', async (t) => {
      t.equal(await auth(provider, { serverUrl, authorizationCode: code, fetchFn }), 'AUTHORIZED')
      const exchange = log.find((e) => e.method === 'POST' && e.url.pathname === '/token')
      const form = new URLSearchParams(exchange?.body ?? '')
      t.equal(form.get('grant_type'), 'authorization_code')
      t.equal(form.get('code_verifier'), provider.verifier, 'PKCE verifier sent (RFC 7636 §4.5)')
      t.equal(form.get('resource'), serverUrl, 'RFC 8707 resource sent with the code')
      t.equal(form.get('client_id'), provider.client?.client_id, 'public client identified by client_id')
      t.equal(exchange?.headers.get('authorization'), null, 'no client authentication: token_endpoint_auth_method none')

      first = provider.saved
      t.match(first, { token_type: 'Bearer', scope: 'mcp', issuer: origin })
      t.match(first?.access_token, /^gwa_/, 'a gateway access token')
      t.match(first?.refresh_token, /^gwr_/, 'a gateway refresh token')
      t.type(first?.expires_in, 'number')
      // Issue 22 finding 2: an upstream token the gateway can refresh does not shorten the client's.
      t.equal(first?.expires_in, 3600, 'the gateway TTL, whether the upstream token never expires or is refreshable')
      t.notMatch(JSON.stringify(first), UPSTREAM_TOKEN, 'no upstream token in what the client holds')
    })

    await t.test('refresh rotation (OAuth 2.1 §4.3.1): auth() again refreshes and rotates both tokens', async (t) => {
      if (variant.upstreamLifetime !== undefined) {
        // Past the upstream token's end: the client's refresh renews it.
        clock.advance((variant.upstreamLifetime + 1) * 1000)
      }
      const before = upstreamTokenRequests(github).length
      t.equal(await auth(provider, { serverUrl, fetchFn }), 'AUTHORIZED', 'stored refresh token used, no new authorization')
      t.equal(provider.authorizationUrls.length, 1, 'no second redirect to the authorization page')
      const refresh = log.filter((e) => e.method === 'POST' && e.url.pathname === '/token').at(-1)
      const form = new URLSearchParams(refresh?.body ?? '')
      t.equal(form.get('grant_type'), 'refresh_token')
      t.equal(form.get('refresh_token'), first?.refresh_token)
      t.equal(refresh?.status, 200, refresh?.responseBody ?? '')

      second = provider.saved
      t.match(second?.access_token, /^gwa_/)
      t.match(second?.refresh_token, /^gwr_/)
      t.not(second?.access_token, first?.access_token, 'a new access token')
      t.not(second?.refresh_token, first?.refresh_token, 'a new refresh token: rotated')
      t.notMatch(JSON.stringify(second), UPSTREAM_TOKEN, 'no upstream token in what the client holds')

      const upstreamRefreshes = upstreamTokenRequests(github).slice(before).filter((f) => f.get('grant_type') === 'refresh_token')
      if (variant.upstreamLifetime === undefined) {
        t.equal(upstreamRefreshes.length, 0, 'a never-expiring upstream token is reused, not refreshed')
        t.equal(second?.expires_in, 3600)
      } else {
        t.equal(upstreamRefreshes.length, 1, 'the expired upstream token was refreshed during the client\'s refresh')
        t.match(upstreamRefreshes[0]?.get('refresh_token'), /^ghr_/, 'with the upstream refresh token')
        t.equal(second?.expires_in, 3600, 'the gateway TTL again')
      }
    })

    await t.test('refresh token reuse (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2): the old token gets invalid_grant and revokes the grant', async (t) => {
      const clientId = provider.client?.client_id ?? ''
      // Past the default --refresh-grace (30 s), in which the old token would get the same answer again.
      clock.advance(30_000)
      const reused = await postToken(origin, { grant_type: 'refresh_token', refresh_token: first?.refresh_token ?? '', client_id: clientId })
      t.equal(reused.status, 400)
      t.equal(reused.json['error'], 'invalid_grant', 'the rotated refresh token is refused')

      const current = await postToken(origin, { grant_type: 'refresh_token', refresh_token: second?.refresh_token ?? '', client_id: clientId })
      t.equal(current.status, 400)
      t.equal(current.json['error'], 'invalid_grant', 'the whole grant is revoked: the newest refresh token fails too')

      // The SDK, holding the revoked token, drops it and starts a new authorization (same registration).
      t.equal(await auth(provider, { serverUrl, fetchFn }), 'REDIRECT', 'the SDK recovers from invalid_grant by authorizing again')
      t.same(provider.invalidated, ['tokens'], 'only the tokens were invalidated')
      t.equal(provider.authorizationUrls.length, 2)
      t.equal(provider.authorizationUrls[1]?.searchParams.get('client_id'), clientId, 'the registration is kept')
      t.equal(log.filter((e) => e.url.pathname === '/register').length, 1, 'no second registration')
    })

    await t.test('no upstream token ever reached the SDK', async (t) => {
      t.ok(log.length > 0)
      for (const e of log) t.notMatch(e.responseBody, UPSTREAM_TOKEN, `${e.method} ${e.url.pathname}`)
    })
  })
}
