import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import t from 'tap'
import gateway, { type GatewayPluginOptions } from '../../app.js'
import { ManualClock } from '../../lib/clock.js'
import { hashPassword } from '../../lib/passwords.js'
import { createPkcePair } from '../../lib/pkce.js'
import { StoreUnavailableError } from '../../lib/stores/errors.js'
import { MemoryStore } from '../../lib/stores/memory.js'
import { TEST_CA, clientDocument, startDocumentServer } from '../helpers/document-server.js'
import { delegatingStore } from '../helpers/failing-store.js'
import { startFakeGithub } from '../helpers/fake-github.js'
import { startFakeOidc, type FakeOidc } from '../helpers/fake-oidc.js'
import {
  Browser, buildGateway, exchangeCode, gatewayOptions, hiddenField, pathOf, registerClient, startFlow, tokenRequest,
  visitUpstream, type RegisteredClient, type TestGateway
} from '../helpers/gateway.js'
import { loggedGateway } from '../helpers/logged-gateway.js'
import type { Teardown } from '../helpers/teardown.js'
import { tempFile } from '../helpers/temp-file.js'

/*
 * Issue 19, part 4, "a page for the signed-in person": /account, behind screen 1's password check, lists the
 * clients the person connected (name, host of a CIMD client, scopes, upstream login, created, last used) and
 * revokes each with a CSRF-protected form; sign-out ends the session. Spec checklist: §2.8 item 44 (ending a grant
 * ends both of its tokens, here from the person's side); §1.7 item 44's rules for the consent page hold for this
 * page too (CSRF protection, no framing, __Host-/Secure/HttpOnly/SameSite=Lax cookies, server-side state).
 */

const REDIRECT = 'http://127.0.0.1:33418/callback'
const ALICE = await hashPassword('alice password')
const BOB = await hashPassword('bob password')

interface Tokens { access_token: string, refresh_token: string }

/** The two-screen chain as `username`, then the code's exchange: the client's tokens. */
async function connect (
  app: FastifyInstance,
  client: RegisteredClient,
  username: string,
  password: string
): Promise<Tokens> {
  const browser = new Browser()
  const { verifier, challenge } = createPkcePair()
  const flow = await startFlow(app, browser, client, { challenge })
  const login = await browser.post(app, '/login', { ...flow, username, password })
  if (login.statusCode !== 303) throw new Error(`login: ${login.statusCode}`)
  const consent = await browser.post(app, '/consent', { ...flow, decision: 'approve' })
  const callback = await browser.get(app, pathOf(await visitUpstream(consent.headers.location as string)))
  const code = new URL(callback.headers.location as string).searchParams.get('code') as string
  const res = await exchangeCode(app, client, code, verifier)
  if (res.statusCode !== 200) throw new Error(`token: ${res.statusCode} ${res.body}`)
  return res.json()
}

/** Signs in to /account in a fresh browser; the browser and the page it lands on. */
async function signIn (
  app: FastifyInstance,
  username: string,
  password: string
): Promise<{ browser: Browser, page: LightMyRequestResponse, login: LightMyRequestResponse }> {
  const browser = new Browser()
  const form = await browser.get(app, '/account')
  const login = await browser.post(app, '/account/login', { csrf: hiddenField(form.body, 'csrf'), username, password })
  const page = login.statusCode === 303 ? await browser.get(app, login.headers.location as string) : login
  return { browser, page, login }
}

async function mcpStatus (app: FastifyInstance, token: string): Promise<number> {
  const res = await app.inject({
    method: 'POST',
    url: '/mcp',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    payload: '{}'
  })
  return res.statusCode
}

async function teamGateway (t: Teardown): Promise<TestGateway> {
  return await buildGateway(t, (gh) => ({
    usersFile: tempFile(t, `alice:${ALICE}\nbob:${BOB}\n`),
    upstreamUserEndpoint: `${gh.origin}/user`,
    tokenCacheTtl: 0
  }))
}

t.test('account page: signed out, /account is the sign-in form, with security headers and a login cookie', async (t) => {
  const { app } = await teamGateway(t)
  const res = await app.inject({ method: 'GET', url: '/account' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], 'text/html')
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal(res.headers['x-frame-options'], 'DENY')
  t.match(res.body, '<form method="post" action="/account/login">')
  t.match(String(res.headers['set-cookie']), /^mcp-gateway-account-login=[^;]+; Max-Age=600; Path=\/; HttpOnly; SameSite=Lax$/)
})

t.test('account page: a wrong password is refused (401) and counted by the login limits', async (t) => {
  const { app, logs } = await loggedGateway(t, { usersFile: tempFile(t, `alice:${ALICE}\n`), loginFailuresPerUser: 2 })
  for (let i = 0; i < 2; i++) {
    const { login } = await signIn(app, 'alice', 'wrong')
    t.equal(login.statusCode, 401)
    t.match(login.body, 'Wrong username or password.')
    t.match(login.body, 'value="alice"', 'the name typed stays in the form')
  }
  const { login } = await signIn(app, 'alice', 'alice password')
  t.equal(login.statusCode, 429, 'the user name is backing off: even the right password waits')
  t.ok(Number(login.headers['retry-after']) >= 1)
  t.match(login.body, 'Too many failed sign-ins for this user name')
  t.notOk(logs.some((line) => JSON.stringify(line).includes('alice password')), 'no password in any log line')
})

t.test('account page: too many failures from one address refuse it whatever the name', async (t) => {
  const { app } = await buildGateway(t, { usersFile: tempFile(t, `alice:${ALICE}\n`), loginFailuresPerAddress: 1 })
  t.equal((await signIn(app, 'nobody', 'x')).login.statusCode, 401)
  const { login } = await signIn(app, 'alice', 'alice password')
  t.equal(login.statusCode, 429)
  t.match(login.body, 'too many failed sign-ins from your network')
})

t.test('account page: the sign-in form needs its CSRF cookie; a missing or wrong token is refused', async (t) => {
  const { app } = await teamGateway(t)
  const stranger = await app.inject({
    method: 'POST',
    url: '/account/login',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'csrf=forged&username=alice&password=alice+password'
  })
  t.equal(stranger.statusCode, 403, 'no login cookie')
  t.match(stranger.body, 'Request refused')
  const browser = new Browser()
  await browser.get(app, '/account')
  const wrong = await browser.post(app, '/account/login', { csrf: 'forged', username: 'alice', password: 'alice password' })
  t.equal(wrong.statusCode, 403, 'a token other than the cookie\'s')
  t.notOk(wrong.headers['set-cookie'], 'no session')
  const firstTab = await browser.get(app, '/account')
  await browser.get(app, '/account')
  const login = await browser.post(app, '/account/login', {
    csrf: hiddenField(firstTab.body, 'csrf'),
    username: 'alice',
    password: 'alice password'
  })
  t.equal(login.statusCode, 303, 'a form opened in another tab before still signs in')
})

t.test('account page: each person sees only their own clients, with name, scopes, upstream login and dates', async (t) => {
  const { app, github, clock } = await teamGateway(t)
  const editor = await registerClient(app, { client_name: 'Editor <b>X</b>', redirect_uris: [REDIRECT] })
  const chat = await registerClient(app, { client_name: 'Chat', redirect_uris: [REDIRECT] })
  github.user = { login: 'alice-gh', id: 1, orgs: [] }
  const aliceEditor = await connect(app, editor, 'alice', 'alice password')
  github.user = { login: 'bob-gh', id: 2, orgs: [] }
  await connect(app, chat, 'bob', 'bob password')
  clock.advance(60_000)
  t.not(await mcpStatus(app, aliceEditor.access_token), 401, 'the token works: its use is recorded')

  const alice = await signIn(app, 'alice', 'alice password')
  t.equal(alice.login.statusCode, 303)
  t.match(String(alice.login.headers['set-cookie']), /mcp-gateway-account=[^;]+; Max-Age=900; Path=\/; HttpOnly; SameSite=Lax/)
  const body = alice.page.body
  t.match(body, 'Signed in as <strong>alice</strong>')
  t.match(body, 'Editor &lt;b&gt;X&lt;/b&gt;', 'the client name, escaped')
  t.notMatch(body, 'Chat', 'not bob\'s client')
  t.match(body, 'alice-gh', 'the upstream login')
  t.notMatch(body, 'bob-gh')
  t.match(body, '<code>repo</code>, <code>read:org</code>', 'the upstream scopes')
  t.match(body, '<code>mcp</code> on this gateway')
  t.equal(body.match(/<time datetime=/g)?.length, 2, 'connected and last used')
  t.equal(body.match(/name="grant" value="gwg_/g)?.length, 1, 'one revoke button')

  const bob = await signIn(app, 'bob', 'bob password')
  t.match(bob.page.body, 'Chat')
  t.notMatch(bob.page.body, 'Editor')
  t.match(bob.page.body, 'not used yet')
})

t.test('account page: revoking a client ends its tokens at once (/mcp 401, refresh invalid_grant)', async (t) => {
  const { app, logs } = await loggedGateway(t, { usersFile: tempFile(t, `alice:${ALICE}\n`), tokenCacheTtl: 60_000 })
  const client = await registerClient(app, { client_name: 'Editor', redirect_uris: [REDIRECT] })
  const tokens = await connect(app, client, 'alice', 'alice password')
  t.not(await mcpStatus(app, tokens.access_token), 401, 'cached as valid on this replica')
  const { browser, page } = await signIn(app, 'alice', 'alice password')
  const revoke = await browser.post(app, '/account/revoke', {
    csrf: hiddenField(page.body, 'csrf'),
    grant: hiddenField(page.body, 'grant')
  })
  t.equal(revoke.statusCode, 303)
  t.equal(revoke.headers.location, '/account?done=revoked')
  const after = await browser.get(app, '/account?done=revoked')
  t.match(after.body, 'Access revoked.')
  t.match(after.body, 'You have no MCP clients connected')
  t.equal(await mcpStatus(app, tokens.access_token), 401, 'the access token is refused at once')
  const refreshed = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.client_id })
  t.equal(refreshed.statusCode, 400)
  t.equal(refreshed.json().error, 'invalid_grant')
  t.match(logs.find((line) => line.event === 'grant_revoked'), { reason: 'user_revoked', clientId: client.client_id })
})

t.test('account page: a missing or wrong CSRF token, or someone else\'s grant, revokes nothing', async (t) => {
  const { app } = await teamGateway(t)
  const client = await registerClient(app, { client_name: 'Editor', redirect_uris: [REDIRECT] })
  const aliceTokens = await connect(app, client, 'alice', 'alice password')
  const alice = await signIn(app, 'alice', 'alice password')
  const grant = hiddenField(alice.page.body, 'grant')
  const csrf = hiddenField(alice.page.body, 'csrf')

  const missing = await alice.browser.post(app, '/account/revoke', { grant })
  t.equal(missing.statusCode, 400, 'no CSRF token: a malformed form')
  t.match(missing.body, 'Invalid request')
  const wrong = await alice.browser.post(app, '/account/revoke', { csrf: `${csrf}x`, grant })
  t.equal(wrong.statusCode, 403, 'a wrong CSRF token')
  const bob = await signIn(app, 'bob', 'bob password')
  const foreign = await bob.browser.post(app, '/account/revoke', { csrf: hiddenField(bob.page.body, 'csrf'), grant })
  t.equal(foreign.statusCode, 404, 'alice\'s grant is unknown to bob')
  t.match(foreign.body, 'No such client')
  const crossed = await bob.browser.post(app, '/account/revoke', { csrf, grant })
  t.equal(crossed.statusCode, 403, 'alice\'s CSRF token in bob\'s session')
  const signedOut = await new Browser().post(app, '/account/revoke', { csrf, grant })
  t.equal(signedOut.statusCode, 401, 'no session')
  const odd = await alice.browser.post(app, '/account/revoke', { csrf, grant: '<script>' })
  t.equal(odd.statusCode, 400, 'a grant id that cannot be one')
  t.notMatch(odd.body, '<script>')
  t.not(await mcpStatus(app, aliceTokens.access_token), 401, 'the grant lives')
  t.match((await alice.browser.get(app, '/account')).body, 'Editor')
})

t.test('account page: sign-out ends the session; its cookie opens nothing afterwards', async (t) => {
  const { app } = await teamGateway(t)
  const { browser, page } = await signIn(app, 'alice', 'alice password')
  const stolen = new Map(browser.cookies)
  const wrong = await browser.post(app, '/account/logout', { csrf: 'nope' })
  t.equal(wrong.statusCode, 403, 'sign-out is CSRF-protected too')
  const out = await browser.post(app, '/account/logout', { csrf: hiddenField(page.body, 'csrf') })
  t.equal(out.statusCode, 303)
  t.equal(out.headers.location, '/account?done=signed-out')
  t.match(String(out.headers['set-cookie']), /^mcp-gateway-account=; Max-Age=0/)
  const replay = new Browser()
  for (const [name, value] of stolen) replay.cookies.set(name, value)
  const again = await replay.get(app, '/account?done=signed-out')
  t.match(again.body, 'You are signed out.')
  t.match(again.body, 'action="/account/login"', 'the old cookie shows the sign-in form')
})

t.test('account page: the session lasts 15 minutes', async (t) => {
  const { app, clock } = await teamGateway(t)
  const { browser } = await signIn(app, 'alice', 'alice password')
  clock.advance(15 * 60_000)
  t.match((await browser.get(app, '/account')).body, 'action="/account/login"')
})

t.test('account page: over https its cookies are __Host- and Secure', async (t) => {
  const { app } = await buildGateway(t, { publicUrl: 'https://gw.example', usersFile: tempFile(t, `alice:${ALICE}\n`) })
  const { login } = await signIn(app, 'alice', 'alice password')
  t.equal(login.statusCode, 303)
  const cookies = login.headers['set-cookie'] as string[]
  t.match(cookies[0], /^__Host-mcp-gateway-account=[^;]+; Max-Age=900; Path=\/; HttpOnly; SameSite=Lax; Secure$/)
  t.match(cookies[1], /^__Host-mcp-gateway-account-login=; Max-Age=0/)
})

/** A gateway whose screen 1 is single sign-on at a fake provider (with a users file too, if given). */
async function ssoGateway (
  t: Teardown,
  overrides: Partial<GatewayPluginOptions> = {}
): Promise<TestGateway & { oidc: FakeOidc }> {
  const oidc = await startFakeOidc()
  t.teardown(() => oidc.close())
  const gateway = await buildGateway(t, {
    loginOidcIssuer: oidc.issuer,
    loginOidcClientId: oidc.clientId,
    loginOidcClientSecret: oidc.clientSecret,
    loginAllowedDomains: ['example.com'],
    ...overrides
  })
  return { ...gateway, oidc }
}

/** The account page's sign-on button in `browser`: where it sends the browser (the provider). */
async function ssoButton (app: FastifyInstance, browser: Browser): Promise<URL> {
  const form = await browser.get(app, '/account')
  const button = await browser.post(app, '/account/sso', { csrf: hiddenField(form.body, 'csrf') })
  if (button.statusCode !== 303) throw new Error(`sso button: ${button.statusCode} ${button.body}`)
  return new URL(button.headers.location as string)
}

t.test('account page, single sign-on: the provider signs the person in, back at the page\'s own callback', async (t) => {
  const { app, oidc } = await ssoGateway(t)
  const client = await registerClient(app, { client_name: 'Editor', redirect_uris: [REDIRECT] })
  // A client connected by single sign-on on screen 1: its grant is alice@example.com's.
  const flowBrowser = new Browser()
  const { verifier, challenge } = createPkcePair()
  const flow = await startFlow(app, flowBrowser, client, { challenge })
  const viaFlow = await flowBrowser.post(app, '/login/sso', flow)
  const back = await flowBrowser.get(app, pathOf(await visitUpstream(viaFlow.headers.location as string)))
  const consent = await flowBrowser.post(app, '/consent', { ...flow, decision: 'approve' })
  t.equal(back.statusCode, 303)
  const callback = await flowBrowser.get(app, pathOf(await visitUpstream(consent.headers.location as string)))
  const code = new URL(callback.headers.location as string).searchParams.get('code') as string
  t.equal((await exchangeCode(app, client, code, verifier)).statusCode, 200)

  const browser = new Browser()
  const form = await browser.get(app, '/account')
  t.match(form.body, `Sign in with\n${new URL(oidc.issuer).host}`)
  t.notMatch(form.body, 'type="password"', 'single sign-on replaces the password form')
  const to = await ssoButton(app, browser)
  t.equal(to.origin + to.pathname, `${oidc.issuer}/authorize`)
  t.equal(to.searchParams.get('redirect_uri'), 'http://localhost:8002/account/sso/callback', 'the page\'s own callback')
  t.equal(to.searchParams.get('code_challenge_method'), 'S256')
  const returned = await browser.get(app, pathOf(await visitUpstream(to.href)))
  t.equal(returned.statusCode, 303, returned.body)
  t.equal(returned.headers.location, '/account')
  const page = await browser.get(app, '/account')
  t.match(page.body, 'Signed in as <strong>alice@example.com</strong>')
  t.match(page.body, '<h2 id="client-1">Editor</h2>', 'the client connected by single sign-on')
})

t.test('account page, single sign-on: another browser, a replay, a refusal or a stranger signs nobody in', async (t) => {
  const { app, oidc } = await ssoGateway(t, { usersFile: tempFile(t, `alice:${ALICE}\n`) })
  const form = await new Browser().get(app, '/account')
  t.match(form.body, 'type="password"', 'with a users file, passwords too')
  t.match(form.body, '<button type="submit" class="secondary">Sign in with')

  const browser = new Browser()
  const back = pathOf(await visitUpstream((await ssoButton(app, browser)).href))
  const thief = await new Browser().get(app, back)
  t.equal(thief.statusCode, 403, 'the callback in another browser')
  t.match(thief.body, 'Wrong browser')
  t.equal((await browser.get(app, back)).statusCode, 303, 'the browser that left is still let in')
  const replay = await browser.get(app, back)
  t.equal(replay.statusCode, 400, 'a state works once')
  t.match(replay.body, 'This sign-in has expired')
  t.equal((await browser.get(app, '/account/sso/callback')).statusCode, 400, 'no state')

  const refused = new Browser()
  const at = await ssoButton(app, refused)
  const denied = await refused.get(app, `/account/sso/callback?state=${at.searchParams.get('state') as string}&error=access_denied`)
  t.equal(denied.statusCode, 403)
  t.match(denied.body, 'Sign-in refused')

  oidc.user = { sub: 'u-mallory', email: 'mallory@elsewhere.example', emailVerified: true }
  const stranger = new Browser()
  const outside = await stranger.get(app, pathOf(await visitUpstream((await ssoButton(app, stranger)).href)))
  t.equal(outside.statusCode, 403)
  t.match(outside.body, 'mallory@elsewhere.example may not use this gateway')
  t.notOk(outside.headers['set-cookie'], 'no session')

  const forged = await new Browser().post(app, '/account/sso', { csrf: 'forged' })
  t.equal(forged.statusCode, 403, 'the button needs the sign-in form\'s token')
})

t.test('account page, single sign-on: states at the provider are bounded like sign-ins in progress', async (t) => {
  const { app } = await ssoGateway(t, { maxPendingSignIns: 1 })
  await ssoButton(app, new Browser())
  const browser = new Browser()
  const form = await browser.get(app, '/account')
  const full = await browser.post(app, '/account/sso', { csrf: hiddenField(form.body, 'csrf') })
  t.equal(full.statusCode, 503)
  t.match(full.body, 'The gateway is busy')
})

t.test('account page, single sign-on: a provider that cannot be reached is a 502 page', async (t) => {
  const { app } = await buildGateway(t, {
    loginOidcIssuer: 'http://127.0.0.1:1',
    loginOidcClientId: 'gw',
    loginAllowedDomains: ['example.com'],
    upstreamTimeout: 1000
  })
  const browser = new Browser()
  const form = await browser.get(app, '/account')
  const res = await browser.post(app, '/account/sso', { csrf: hiddenField(form.body, 'csrf') })
  t.equal(res.statusCode, 502)
  t.match(res.body, 'Single sign-on unavailable')
})

t.test('account page: bad input is an escaped HTML page, never a 500', async (t) => {
  const { app } = await teamGateway(t)
  const query = await app.inject({ method: 'GET', url: '/account?done=<x>' })
  t.equal(query.statusCode, 400)
  t.match(query.headers['content-type'], 'text/html')
  t.notMatch(query.body, '<x>')
  const json = await app.inject({ method: 'POST', url: '/account/login', headers: { 'content-type': 'application/json' }, payload: '{}' })
  t.equal(json.statusCode, 415)
  t.match(json.body, 'Unsupported request')
  const big = await app.inject({
    method: 'POST',
    url: '/account/login',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: `csrf=a&username=a&password=${'x'.repeat(20_000)}`
  })
  t.equal(big.statusCode, 413)
})

t.test('account page: sign-ins are bounded like sign-ins in progress: past the bound a 503 page, none evicted', async (t) => {
  const { app } = await buildGateway(t, { usersFile: tempFile(t, `alice:${ALICE}\n`), maxPendingSignIns: 1 })
  const first = await signIn(app, 'alice', 'alice password')
  t.equal(first.login.statusCode, 303)
  const second = await signIn(app, 'alice', 'alice password')
  t.equal(second.login.statusCode, 503)
  t.match(second.login.body, 'The gateway is busy')
  t.equal(second.login.headers['retry-after'], '5')
  t.match(first.page.body, 'Signed in as', 'the first session lives')
  t.match((await first.browser.get(app, '/account')).body, 'Signed in as')
})

t.test('account page: a store that fails is a 503 page; a bug is a 500 page that says nothing of it', async (t) => {
  const memory = new MemoryStore()
  t.teardown(async () => { await memory.close() })
  const failure: { error: Error | undefined } = { error: undefined }
  const store = delegatingStore(memory, {
    get: async <T>(key: string): Promise<T | undefined> => {
      if (failure.error !== undefined && key.startsWith('user-grants:')) throw failure.error
      return await memory.get<T>(key)
    }
  })
  const { app, logs } = await loggedGateway(t, { usersFile: tempFile(t, `alice:${ALICE}\n`), store })
  const { browser } = await signIn(app, 'alice', 'alice password')
  failure.error = new StoreUnavailableError(new Error('down'))
  const down = await browser.get(app, '/account')
  t.equal(down.statusCode, 503)
  t.match(down.body, 'Temporarily unavailable')
  t.match(down.body, '<a href="/account">Back to your account</a>')
  failure.error = new Error('secret detail')
  const bug = await browser.get(app, '/account')
  t.equal(bug.statusCode, 500)
  t.match(bug.body, 'Something went wrong')
  t.notMatch(bug.body, 'secret detail')
  t.ok(logs.some((line) => line.msg === 'account page failed' && line.level === 50), 'logged at error')
})

t.test('account page: a CIMD client shows the host its document came from; an unnamed client says so', async (t) => {
  const docs = await startDocumentServer(t)
  const { app } = await buildGateway(t, {
    usersFile: tempFile(t, `alice:${ALICE}\n`),
    cimdAllowPrivate: true,
    clientDocumentCa: TEST_CA,
    upstreamScopes: []
  })
  const clientId = `${docs.origin}/client.json`
  docs.serve('/client.json', { body: clientDocument(clientId, [REDIRECT], { client_name: 'Doc Editor' }) })
  await connect(app, { client_id: clientId, redirect_uris: [REDIRECT] }, 'alice', 'alice password')
  await connect(app, await registerClient(app, { client_name: undefined, redirect_uris: [REDIRECT] }), 'alice', 'alice password')
  const { page } = await signIn(app, 'alice', 'alice password')
  t.match(page.body, `Doc Editor <span class="muted">from</span> <span class="host">${new URL(docs.origin).host}</span>`)
  t.match(page.body, 'An unnamed client')
  t.match(page.body, 'upstream: none (public read-only access)')
})

t.test('account page: its routes are rate-limited per address like the sign-in chain (429 page, Retry-After)', async (t) => {
  const { app } = await buildGateway(t, { rateLimitSignIn: 2 })
  const get = async () => await app.inject({ method: 'GET', url: '/account', remoteAddress: '192.0.2.9' })
  t.equal((await get()).statusCode, 200)
  t.equal((await get()).statusCode, 200)
  const limited = await get()
  t.equal(limited.statusCode, 429)
  t.match(limited.headers['content-type'], 'text/html')
  t.match(limited.body, 'Too many attempts')
  t.ok(Number(limited.headers['retry-after']) > 0)
  const post = async () => await app.inject({
    method: 'POST',
    url: '/account/revoke',
    remoteAddress: '192.0.2.9',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'csrf=a&grant=b'
  })
  await post()
  await post()
  t.equal((await post()).statusCode, 429, 'each route counts on its own')
})

t.test('account page: under a prefix its forms and redirects stay under it', async (t) => {
  const github = await startFakeGithub()
  t.teardown(() => github.close())
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(gateway, gatewayOptions(github, new ManualClock(Date.now()), { prefix: '/gw' }))
  await app.ready()
  const browser = new Browser()
  const form = await browser.get(app, '/gw/account')
  t.match(form.body, 'action="/gw/account/login"')
  const login = await browser.post(app, '/gw/account/login', {
    csrf: hiddenField(form.body, 'csrf'),
    username: 'gateway_user',
    password: 'gateway_pass'
  })
  t.equal(login.headers.location, '/gw/account')
  const page = await browser.get(app, '/gw/account')
  t.match(page.body, 'action="/gw/account/logout"')
  const out = await browser.post(app, '/gw/account/logout', { csrf: hiddenField(page.body, 'csrf') })
  t.equal(out.headers.location, '/gw/account?done=signed-out')
})
