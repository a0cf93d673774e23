import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t from 'tap'
import type { GatewayPluginOptions } from '../../app.js'
import { ConfigError, parseGatewayOptions } from '../../lib/config.js'
import { createPkcePair } from '../../lib/pkce.js'
import { PLUGIN } from '../helpers/config.js'
import { startFakeOidc, type FakeOidc } from '../helpers/fake-oidc.js'
import { Browser, pathOf, registerClient, startFlow, visitUpstream, type TestGateway } from '../helpers/gateway.js'
import { loggedGateway } from '../helpers/logged-gateway.js'
import type { LogLine } from '../helpers/logged-gateway.js'
import type { Teardown } from '../helpers/teardown.js'

/*
 * Issue 19, single sign-on for screen 1: the login page's button sends the browser to an OpenID Connect provider
 * (discovery, PKCE, state, nonce and the ID token checked by openid-client), and the verified email address the
 * provider gives is the person, if the allow-lists let them in. The provider is a fake with its own RSA keys.
 */

const REDIRECT = 'http://127.0.0.1:33418/callback'

interface SsoSetup extends TestGateway {
  oidc: FakeOidc
  logs: LogLine[]
}

async function setUp (t: Teardown, overrides: Partial<GatewayPluginOptions> = {}): Promise<SsoSetup> {
  const oidc = await startFakeOidc()
  t.teardown(() => oidc.close())
  const gateway = await loggedGateway(t, {
    loginOidcIssuer: oidc.issuer,
    loginOidcClientId: oidc.clientId,
    loginOidcClientSecret: oidc.clientSecret,
    loginAllowedDomains: ['example.com'],
    ...overrides
  })
  return { ...gateway, oidc }
}

interface Visit { browser: Browser, flow: { flow: string, csrf: string }, login: LightMyRequestResponse }

/** /authorize to the login page, in a fresh browser. */
async function atLogin (app: FastifyInstance): Promise<Visit> {
  const client = await registerClient(app, { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' })
  const browser = new Browser()
  const flow = await startFlow(app, browser, client, { challenge: createPkcePair().challenge })
  const login = await browser.get(app, `/login?flow=${flow.flow}`)
  return { browser, flow, login }
}

/** The button, the provider (which signs in its current user at once), and the gateway's callback: its answer. */
async function viaProvider (app: FastifyInstance, visit: Visit): Promise<LightMyRequestResponse> {
  const button = await visit.browser.post(app, '/login/sso', visit.flow)
  if (button.statusCode !== 303) throw new Error(`sso button: ${button.statusCode} ${button.body}`)
  const back = await visitUpstream(button.headers.location as string)
  return await visit.browser.get(app, pathOf(back))
}

t.test('SSO: the button, the provider, back with a verified address of an allowed domain, then consent', async (t) => {
  const { app, oidc, logs } = await setUp(t)
  const visit = await atLogin(app)
  t.match(visit.login.body, `Sign in with\n${new URL(oidc.issuer).host}`)
  t.notMatch(visit.login.body, 'type="password"', 'single sign-on replaces the password form')
  const button = await visit.browser.post(app, '/login/sso', visit.flow)
  t.equal(button.statusCode, 303)
  const to = new URL(button.headers.location as string)
  t.equal(to.origin + to.pathname, `${oidc.issuer}/authorize`)
  t.equal(to.searchParams.get('redirect_uri'), 'http://localhost:8002/login/sso/callback')
  t.equal(to.searchParams.get('code_challenge_method'), 'S256', 'PKCE')
  t.match(to.searchParams.get('nonce'), /^\S{20,}$/, 'a nonce')
  t.match(to.searchParams.get('scope'), /\bopenid\b.*\bemail\b/)
  const callback = await visit.browser.get(app, pathOf(await visitUpstream(to.href)))
  t.equal(callback.statusCode, 303, callback.body)
  t.match(callback.headers.location, '/consent?flow=')
  const consent = await visit.browser.get(app, callback.headers.location as string)
  t.match(consent.body, 'Signed in to the gateway as <strong>alice@example.com</strong>')
  t.match(logs.find((line) => line.event === 'login_succeeded'), { userId: 'alice@example.com' })

  const replay = await visit.browser.get(app, pathOf(await visitUpstream(to.href)))
  t.equal(replay.statusCode, 400, 'a state works once')
})

t.test('SSO: addresses outside the lists, unverified, or missing are refused with a page', async (t) => {
  const { app, oidc } = await setUp(t, { loginAllowedEmails: ['eve@partner.example'] })
  for (const [user, text] of [
    [{ sub: 'u-mallory', email: 'mallory@evil.example', emailVerified: true }, 'mallory@evil.example may not use this gateway'],
    [{ sub: 'u-sub', email: 'alice@sub.example.com', emailVerified: true }, 'alice@sub.example.com may not use this gateway'],
    [{ sub: 'u-bob', email: 'bob@example.com', emailVerified: false }, 'did not give a verified email address'],
    [{ sub: 'u-none' }, 'did not give a verified email address']
  ] as const) {
    oidc.user = user
    const res = await viaProvider(app, await atLogin(app))
    t.equal(res.statusCode, 403, user.sub)
    t.match(res.body, '<h1>Not allowed</h1>')
    t.match(res.body, text)
    t.equal(res.headers.location, undefined, 'nothing goes on')
  }
  oidc.user = { sub: 'u-eve', email: 'Eve@Partner.example', emailVerified: true }
  t.equal((await viaProvider(app, await atLogin(app))).statusCode, 303, 'a listed address, in any case')
})

t.test('SSO: a tampered ID token (signature, nonce, audience, issuer, expiry) signs nobody in', async (t) => {
  const { app, oidc } = await setUp(t)
  for (const tamper of ['signature', 'nonce', 'audience', 'issuer', 'expired'] as const) {
    oidc.tamper = tamper
    const res = await viaProvider(app, await atLogin(app))
    t.equal(res.statusCode, 502, tamper)
    t.match(res.body, 'could not be completed')
  }
  oidc.tamper = undefined
  t.equal((await viaProvider(app, await atLogin(app))).statusCode, 303, 'untampered: signed in')
})

t.test('SSO: the provider refusing, or unreachable, is a page; passwords no longer sign in', async (t) => {
  const { app } = await setUp(t)
  const visit = await atLogin(app)
  const button = await visit.browser.post(app, '/login/sso', visit.flow)
  const state = new URL(button.headers.location as string).searchParams.get('state') ?? ''
  const denied = await visit.browser.get(app, `/login/sso/callback?error=access_denied&state=${state}`)
  t.equal(denied.statusCode, 403)
  t.match(denied.body, 'did not sign you in')
  const password = await visit.browser.post(app, '/login', { ...visit.flow, username: 'gateway_user', password: 'gateway_pass' })
  t.equal(password.statusCode, 401, 'the one account is not used with single sign-on')

  const down = await (await atLogin(app)).browser.post(app, '/login/sso', visit.flow)
  t.equal(down.statusCode, 403, 'another browser\'s flow is refused first')

  // A provider down before its metadata was ever read: nothing to send the browser to.
  const never = await setUp(t)
  await never.oidc.close()
  const fresh = await atLogin(never.app)
  const unreachable = await fresh.browser.post(never.app, '/login/sso', fresh.flow)
  t.equal(unreachable.statusCode, 502)
  t.match(unreachable.body, 'Single sign-on unavailable')
})

t.test('SSO with a users file: both the password form and the button', async (t) => {
  const { tempFile } = await import('../helpers/temp-file.js')
  const { hashPassword } = await import('../../lib/passwords.js')
  const usersFile = tempFile(t, `alice:${await hashPassword('pw')}\n`)
  const { app } = await setUp(t, { usersFile })
  const visit = await atLogin(app)
  t.match(visit.login.body, 'type="password"')
  t.match(visit.login.body, 'class="secondary">Sign in with')
  const res = await visit.browser.post(app, '/login', { ...visit.flow, username: 'alice', password: 'pw' })
  t.equal(res.statusCode, 303)
})

t.test('SSO configuration: a client id and an allow-list are required; the default password is then not used', async (t) => {
  const sso = { ...PLUGIN, loginOidcIssuer: 'https://login.example.com' }
  t.throws(() => parseGatewayOptions(sso), new ConfigError([
    'loginOidcClientId: is required with single sign-on',
    'loginAllowedEmails: or loginAllowedDomains is required with single sign-on'
  ]))
  const { options } = parseGatewayOptions({
    ...sso,
    loginOidcClientId: 'gw',
    loginAllowedEmails: 'Alice@Example.com',
    loginAllowedDomains: ['Example.org'],
    password: 'gateway_pass',
    publicUrl: 'https://gw.example.com'
  })
  t.same([options.loginAllowedEmails, options.loginAllowedDomains], [['alice@example.com'], ['example.org']])
  t.throws(() => parseGatewayOptions({ ...sso, loginOidcClientId: 'gw', loginAllowedDomains: '*.example.com' }),
    { message: /^loginAllowedDomains: must be/ })
})
