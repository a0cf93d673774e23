import t from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { loginWindow } from '../../lib/login-limits.js'
import { createPkcePair } from '../../lib/pkce.js'
import { Browser, authorizeUrl, buildGateway, pathOf, registerClient, tokenRequest, type RegisteredClient } from '../helpers/gateway.js'
import { loggedGateway } from '../helpers/logged-gateway.js'

/*
 * Issue 15 finding 9: every unauthenticated route is rate limited per client address, and the sign-in
 * limit counts failures only: per address, and per existing user name with a doubling wait.
 */

const { challenge } = createPkcePair()
const RIGHT = { username: 'gateway_user', password: 'gateway_pass' }

/** A browser at one client address. */
class AddressedBrowser extends Browser {
  readonly address: string

  constructor (address: string) {
    super()
    this.address = address
  }

  async open (app: FastifyInstance, url: string): Promise<LightMyRequestResponse> {
    return await this.#send(app, { method: 'GET', url })
  }

  async submit (
    app: FastifyInstance,
    url: string,
    form: Record<string, string>,
    address = this.address
  ): Promise<LightMyRequestResponse> {
    return await this.#send(app, { method: 'POST', url, form }, address)
  }

  /** /authorize, then the login page: the flow id and CSRF token of a new sign-in. */
  async begin (app: FastifyInstance, client: RegisteredClient): Promise<{ flow: string, csrf: string }> {
    const start = await this.open(app, authorizeUrl(client, { challenge }))
    if (start.statusCode !== 302) throw new Error(`authorize: ${start.statusCode}`)
    const login = await this.open(app, pathOf(start.headers.location as string))
    const field = (name: string): string => new RegExp(`name="${name}" value="([^"]*)"`).exec(login.body)?.[1] ?? ''
    return { flow: field('flow'), csrf: field('csrf') }
  }

  async #send (app: FastifyInstance, request: { method: 'GET' | 'POST', url: string, form?: Record<string, string> }, address = this.address): Promise<LightMyRequestResponse> {
    const cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
    const res = await app.inject({
      method: request.method,
      url: request.url,
      remoteAddress: address,
      headers: { ...(cookie === '' ? {} : { cookie }), ...(request.form === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }) },
      ...(request.form === undefined ? {} : { payload: new URLSearchParams(request.form).toString() })
    })
    for (const c of res.cookies as Array<{ name: string, value: string }>) this.cookies.set(c.name, c.value)
    return res
  }
}

/** A clock at the start of a login window: a test's few simulated seconds never cross into the next one. */
async function gatewayAtWindowStart (
  t: Parameters<typeof buildGateway>[0],
  overrides: Parameters<typeof buildGateway>[1] = {}
): Promise<Awaited<ReturnType<typeof buildGateway>>> {
  const built = await buildGateway(t, overrides)
  built.clock.advance(loginWindow(built.clock.now()).endsAt - built.clock.now())
  return built
}

t.test('issue 15 finding 9: 12 good sign-ins from one address (an office NAT) lock nobody out', async (t) => {
  const { app } = await gatewayAtWindowStart(t)
  const client = await registerClient(app)
  const statuses: number[] = []
  for (let i = 0; i < 12; i++) {
    const browser = new AddressedBrowser('198.51.100.7')
    const flow = await browser.begin(app, client)
    statuses.push((await browser.submit(app, '/login', { ...flow, ...RIGHT })).statusCode)
  }
  t.same(statuses, Array(12).fill(303), 'every one signs in')
})

t.test('issue 15 finding 9: 10 failed sign-ins from one address → that address gets "Too many failed sign-ins" (429), even with the right password; others do not', async (t) => {
  const { app } = await gatewayAtWindowStart(t)
  const client = await registerClient(app)
  const browser = new AddressedBrowser('198.51.100.8')
  const flow = await browser.begin(app, client)
  const statuses: number[] = []
  // A user name that does not exist: only the address counts.
  for (let i = 0; i < 10; i++) statuses.push((await browser.submit(app, '/login', { ...flow, username: 'intruder', password: `guess-${i}` })).statusCode)
  t.same(statuses, Array(10).fill(401), 'ten wrong answers, each re-rendering the form')
  const refused = await browser.submit(app, '/login', { ...flow, ...RIGHT })
  t.equal(refused.statusCode, 429)
  t.match(refused.body, /Too many failed sign-ins/)
  t.match(refused.body, /15 minutes/, 'the page says how long')
  t.equal(refused.headers['retry-after'], String(15 * 60))
  t.match(refused.headers['content-type'], /^text\/html/)
  const elsewhere = await browser.submit(app, '/login', { ...flow, ...RIGHT }, '198.51.100.9')
  t.equal(elsewhere.statusCode, 303, 'the same person from another address signs in')
})

t.test('issue 15 finding 9: 5 failures on an existing user name from 5 addresses → the next attempt from a 6th waits 1 s, then 2 s, even with the right password', async (t) => {
  const { app, clock } = await gatewayAtWindowStart(t)
  const client = await registerClient(app)
  const browser = new AddressedBrowser('203.0.113.1')
  const flow = await browser.begin(app, client)
  for (let i = 1; i <= 5; i++) {
    const res = await browser.submit(app, '/login', { ...flow, username: RIGHT.username, password: `guess-${i}` }, `203.0.113.${i}`)
    t.equal(res.statusCode, 401, `failure ${i} from address ${i}`)
  }
  const waiting = await browser.submit(app, '/login', { ...flow, ...RIGHT }, '203.0.113.6')
  t.equal(waiting.statusCode, 429, 'a sixth address, the right password: wait')
  t.match(waiting.body, /Too many failed sign-ins/)
  t.match(waiting.body, /1 second\b/, 'the page says how long')
  t.equal(waiting.headers['retry-after'], '1')
  t.match(waiting.body, /name="password"/, 'the form is still there, to try again after the wait')
  clock.advance(1000)
  const sixth = await browser.submit(app, '/login', { ...flow, username: RIGHT.username, password: 'guess-6' }, '203.0.113.7')
  t.equal(sixth.statusCode, 401, 'after the wait the attempt is checked (and fails)')
  const doubled = await browser.submit(app, '/login', { ...flow, ...RIGHT }, '203.0.113.8')
  t.equal(doubled.statusCode, 429)
  t.match(doubled.body, /2 seconds/, 'the wait doubled')
  clock.advance(2000)
  const right = await browser.submit(app, '/login', { ...flow, ...RIGHT }, '203.0.113.9')
  t.equal(right.statusCode, 303, 'after the wait, the right password signs in')
})

t.test('issue 15 finding 9: refusals are logged at warn with reason and wait; no password is ever logged', async (t) => {
  const { app, logs, clock } = await loggedGateway(t, { loginFailuresPerAddress: 2 })
  clock.advance(loginWindow(clock.now()).endsAt - clock.now())
  const client = await registerClient(app)
  const browser = new AddressedBrowser('192.0.2.50')
  const flow = await browser.begin(app, client)
  for (let i = 0; i < 2; i++) await browser.submit(app, '/login', { ...flow, username: 'intruder', password: 'secret-guess-value' })
  const refused = await browser.submit(app, '/login', { ...flow, username: 'intruder', password: 'secret-guess-value' })
  t.equal(refused.statusCode, 429)
  const line = logs.find((l) => l.event === 'login_refused')
  t.match(line, { level: 40, msg: 'login refused', reason: 'address', retryAfterSeconds: 900, clientId: client.client_id })
  t.equal(logs.filter((l) => l.event === 'login_failed').length, 2, 'each failure is one line')
  t.notMatch(JSON.stringify(logs), /secret-guess-value|intruder/, 'neither the password nor the typed user name is logged')
})

t.test('issue 15 finding 9: the 61st /authorize in a minute from one address → 429 page; another address is unaffected', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app)
  const url = authorizeUrl(client, { challenge })
  const statuses: number[] = []
  for (let i = 0; i < 61; i++) statuses.push((await app.inject({ url, remoteAddress: '198.51.100.60' })).statusCode)
  t.same(statuses.slice(0, 60), Array(60).fill(302))
  t.equal(statuses[60], 429)
  const limited = await app.inject({ url, remoteAddress: '198.51.100.60' })
  t.match(limited.headers['content-type'], /^text\/html/)
  t.match(limited.body, /Too many attempts/)
  t.ok(Number(limited.headers['retry-after']) > 0, 'Retry-After')
  t.equal((await app.inject({ url, remoteAddress: '198.51.100.61' })).statusCode, 302, 'another address')
})

t.test('issue 15 finding 9: every sign-in route has its own limit (options.rateLimitSignIn) per address', async (t) => {
  const { app } = await buildGateway(t, { rateLimitSignIn: 3 })
  const client = await registerClient(app)
  const browser = new AddressedBrowser('198.51.100.70')
  const flow = await browser.begin(app, client)
  const paths: Array<[string, () => Promise<LightMyRequestResponse>]> = [
    ['GET /login', async () => await browser.open(app, `/login?flow=${flow.flow}`)],
    ['POST /login', async () => await browser.submit(app, '/login', { ...flow, username: 'intruder', password: 'x' })],
    ['GET /consent', async () => await browser.open(app, `/consent?flow=${flow.flow}`)],
    ['POST /consent', async () => await browser.submit(app, '/consent', { ...flow, decision: 'deny', csrf: 'wrong' })],
    ['GET /upstream/callback', async () => await browser.open(app, '/upstream/callback?state=unknown')]
  ]
  for (const [name, send] of paths) {
    // begin() already used one GET /login.
    const allowed = name === 'GET /login' ? 2 : 3
    for (let i = 0; i < allowed; i++) t.not((await send()).statusCode, 429, `${name} #${i + 1}`)
    const limited = await send()
    t.equal(limited.statusCode, 429, `${name}: limited`)
    t.match(limited.headers['content-type'], /^text\/html/, `${name}: a page`)
  }
})

t.test('issue 15 finding 9: /token and /revoke (options.rateLimitToken) and /register (options.rateLimitRegister) are limited per address, in RFC 6749 JSON', async (t) => {
  const { app } = await buildGateway(t, { rateLimitToken: 2, rateLimitRegister: 2 })
  const client = await registerClient(app)
  const form = { grant_type: 'refresh_token', refresh_token: 'nope', client_id: client.client_id }
  for (const url of ['/token', '/revoke']) {
    const send = async (remoteAddress: string): Promise<LightMyRequestResponse> => await app.inject({
      method: 'POST', url, remoteAddress, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ ...form, token: 'nope' }).toString()
    })
    for (let i = 0; i < 2; i++) t.not((await send('198.51.100.80')).statusCode, 429, `${url} #${i + 1}`)
    const limited = await send('198.51.100.80')
    t.equal(limited.statusCode, 429, url)
    t.same(limited.json(), { error: 'temporarily_unavailable', error_description: 'too many requests, slow down' })
    t.ok(Number(limited.headers['retry-after']) > 0, `${url}: Retry-After`)
    t.not((await send('198.51.100.81')).statusCode, 429, `${url}: another address`)
  }
  const register = async (): Promise<number> => (await app.inject({ method: 'POST', url: '/register', remoteAddress: '198.51.100.82', payload: { redirect_uris: ['http://127.0.0.1:1/cb'], token_endpoint_auth_method: 'none' } })).statusCode
  t.same([await register(), await register(), await register()], [201, 201, 429])
  t.equal((await tokenRequest(app, form)).statusCode, 400, 'the default test address is not limited by the others')
})
