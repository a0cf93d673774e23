import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { createPkcePair } from '../../lib/pkce.js'
import { startFakeGithub } from '../helpers/fake-github.js'
import { startFakeMcp } from '../helpers/fake-mcp.js'
import { hiddenField, visitUpstream } from '../helpers/gateway.js'
import { GatewayProcess, HttpBrowser, freePort, mcpClient, pathOf, textOf, type Tokens } from '../helpers/process.js'

/*
 * Issue: "A test runs a full flow with logging at `debug`, captures everything logged, and finds none of the
 * secret values in it (passwords, client secrets, codes, tokens in either direction, upstream codes in
 * callback query strings, cookies)." And: "one line per OAuth event with client id and grant id but no
 * secret". The gateway is the real server.ts process; everything it writes (stdout and stderr) is searched.
 */

// One gateway process and a long flow: more than the default 60 s on a loaded machine.
t.setTimeout(120_000)

const random = (): string => randomBytes(18).toString('base64url')
// Characters that form and URL encoding change, so the encoded forms are searched for too.
const PASSWORD = `pass word+${random()}/ü&=`
const WRONG_PASSWORD = `wrong pass ${random()}`
const USERNAME = 'ops-admin'
const GATEWAY_SECRET = `gateway-secret-${random()}${random()}`
const UPSTREAM_CLIENT_SECRET = `upstream-client-secret-${random()}`
const REDIRECT_URI = 'http://127.0.0.1:33418/callback'

// GitHub App style: expiring upstream tokens with rotating refresh tokens, and an expiry (30 s) inside the
// gateway's refresh margin, so every use refreshes upstream and upstream refresh tokens travel too.
const github = await startFakeGithub({ mode: 'expiring', expiresIn: 30, clientSecret: UPSTREAM_CLIENT_SECRET })
t.teardown(() => github.close())
const mcp = await startFakeMcp({ isValidToken: (token) => github.isValidAccessToken(token) })
t.teardown(() => mcp.close())

interface LogLine {
  level: number
  msg: string
  reqId?: string
  event?: string
  clientId?: string
  grantId?: string
  grantType?: string
  reason?: string
  url?: string
  statusCode?: number
  responseTime?: number
  [key: string]: unknown
}

const basic = (id: string, secret: string): string =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`

t.test('a full flow at debug level logs every OAuth event and none of the secrets', async (t) => {
  const port = await freePort()
  const origin = `http://127.0.0.1:${port}`
  const flags = [
    '--host', '127.0.0.1',
    '--port', String(port),
    '--public-url', origin,
    '--upstream-rs', mcp.url,
    '--upstream-client-id', github.clientId,
    '--upstream-authorize-endpoint', github.authorizeEndpoint,
    '--upstream-token-endpoint', github.tokenEndpoint,
    '--upstream-scopes', 'repo,read:org',
    '--log-level', 'debug'
  ]
  const gw = await GatewayProcess.start(t, port, flags, {
    MCP_GATEWAY_SECRET: GATEWAY_SECRET,
    MCP_GATEWAY_USERNAME: USERNAME,
    MCP_GATEWAY_PASSWORD: PASSWORD,
    MCP_GATEWAY_UPSTREAM_CLIENT_SECRET: UPSTREAM_CLIENT_SECRET
  }, 30_000)
  const secrets = new Map<string, string>([
    ['the login password', PASSWORD],
    ['a wrong password typed', WRONG_PASSWORD],
    ['MCP_GATEWAY_SECRET', GATEWAY_SECRET],
    ['the upstream client secret', UPSTREAM_CLIENT_SECRET]
  ])

  // A confidential client.
  const browser = new HttpBrowser()
  const registered = await browser.postJson(`${origin}/register`, {
    client_name: 'Logs Test Client',
    redirect_uris: [REDIRECT_URI],
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token']
  })
  t.equal(registered.status, 201, 'registered', { body: registered.body })
  const client = registered.json<{ client_id: string, client_secret: string }>()
  secrets.set('the client secret', client.client_secret)
  secrets.set('the client\'s Basic credentials', basic(client.client_id, client.client_secret).slice(6))

  // Screen 1: authorize, a wrong password, the right one, consent.
  const { verifier, challenge } = createPkcePair()
  secrets.set('the client\'s PKCE verifier', verifier)
  const authorize = await browser.get(`${origin}/authorize?${new URLSearchParams({
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: REDIRECT_URI,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: 'logs-state',
    resource: `${origin}/mcp`
  }).toString()}`)
  t.equal(authorize.status, 302, 'authorize')
  const loginPage = await browser.get(`${origin}${pathOf(authorize.headers.location as string)}`)
  const form = { flow: hiddenField(loginPage.body, 'flow'), csrf: hiddenField(loginPage.body, 'csrf') }
  secrets.set('the flow id', form.flow)
  secrets.set('the CSRF token', form.csrf)
  for (const [name, value] of browser.cookies) secrets.set(`the cookie ${name}`, value)

  const wrong = await browser.postForm(`${origin}/login`, { ...form, username: USERNAME, password: WRONG_PASSWORD })
  t.equal(wrong.status, 401, 'a wrong password is refused')
  const login = await browser.postForm(`${origin}/login`, { ...form, username: USERNAME, password: PASSWORD })
  t.equal(login.status, 303, 'signed in with the configured password', { body: login.body })
  const consent = await browser.postForm(`${origin}/consent`, { ...form, decision: 'approve' })
  t.equal(consent.status, 303, 'consent given')

  // Screen 2: the fake GitHub sends the browser back with its code in the callback's query string.
  const upstreamAuthorize = new URL(consent.headers.location as string)
  secrets.set('the upstream state', upstreamAuthorize.searchParams.get('state') ?? 'missing state')
  const callback = new URL(await visitUpstream(upstreamAuthorize.href))
  const upstreamCode = callback.searchParams.get('code')
  t.type(upstreamCode, 'string', 'the upstream code is in the callback URL')
  secrets.set('the upstream code', upstreamCode ?? '')
  const back = await browser.get(`${origin}${callback.pathname}${callback.search}`)
  t.equal(back.status, 302, 'callback')
  const code = new URL(back.headers.location as string).searchParams.get('code') ?? ''
  secrets.set('the gateway\'s authorization code', code)
  for (const [name, value] of browser.cookies) secrets.set(`the cookie ${name}`, value)

  // Tokens: the code with Basic authentication, a refresh with the secret in the body.
  const exchanged = await new HttpBrowser().postForm(`${origin}/token`, {
    grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT_URI
  }, { authorization: basic(client.client_id, client.client_secret) })
  t.equal(exchanged.status, 200, 'code exchanged', { body: exchanged.body })
  const first = exchanged.json<Tokens>()
  secrets.set('the first access token', first.access_token)
  secrets.set('the first refresh token', first.refresh_token)
  const refreshed = await new HttpBrowser().postForm(`${origin}/token`, {
    grant_type: 'refresh_token', refresh_token: first.refresh_token, client_id: client.client_id, client_secret: client.client_secret
  })
  t.equal(refreshed.status, 200, 'refreshed', { body: refreshed.body })
  const second = refreshed.json<Tokens>()
  secrets.set('the refreshed access token', second.access_token)
  secrets.set('the refreshed refresh token', second.refresh_token)

  // A proxied tool call with the token.
  const { client: sdk } = await mcpClient(t, origin, second.access_token)
  t.equal(textOf(await sdk.callTool({ name: 'echo', arguments: { text: 'logged?' } })), 'logged?', 'a tool call through the gateway')
  await sdk.close()

  // Requests that put secrets where they do not belong: unknown paths and query strings.
  const strayCode = `stray-code-${random()}`
  const strayToken = `stray-token-${random()}`
  secrets.set('a code sent to an unknown path', strayCode)
  secrets.set('a token sent in a query string', strayToken)
  const stray = new HttpBrowser()
  const misdirected = await stray.get(`${origin}/callback?code=${strayCode}&state=x`)
  t.equal(misdirected.status, 404, 'a misdirected callback: 404')
  t.notMatch(misdirected.body, strayCode, 'whose body names the path, not the code in its query')
  t.equal((await stray.get(`${origin}/upstream/callback/extra?code=${strayCode}`)).status, 404, 'a callback below the callback path: 404')
  t.equal((await stray.get(`${origin}/mcp?access_token=${strayToken}`)).status, 401, 'a token in the query is not accepted')
  t.equal((await stray.get(`${origin}/upstream/callback?code=${strayCode}&state=${strayToken}`)).status >= 400, true, 'a callback without a flow is refused')

  // Revocation, then the revoked refresh token once more.
  const revoked = await new HttpBrowser().postForm(`${origin}/revoke`, {
    token: second.refresh_token, token_type_hint: 'refresh_token', client_id: client.client_id, client_secret: client.client_secret
  })
  t.equal(revoked.status, 200, 'revoked')
  const afterRevoke = await new HttpBrowser().postForm(`${origin}/token`, {
    grant_type: 'refresh_token', refresh_token: second.refresh_token, client_id: client.client_id, client_secret: client.client_secret
  })
  t.equal(afterRevoke.status, 400, 'the revoked refresh token is refused')

  // What went upstream and came back: the gateway's own PKCE verifier and upstream tokens, as the fakes saw them.
  for (const request of github.requests.filter((r) => r.path.startsWith('/login/oauth/access_token'))) {
    const body = new URLSearchParams(request.body)
    for (const field of ['code', 'code_verifier', 'refresh_token']) {
      const value = body.get(field)
      if (value !== null) secrets.set(`the upstream ${field} ${value.slice(0, 6)}…`, value)
    }
  }
  for (const request of mcp.requests) {
    const bearer = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1]
    if (bearer !== undefined) secrets.set(`the upstream access token ${bearer.slice(0, 6)}…`, bearer)
  }
  t.ok([...secrets.keys()].some((name) => name.startsWith('the upstream refresh_token')), 'upstream refresh tokens travelled (and are searched for)')
  t.ok([...secrets.keys()].some((name) => name.startsWith('the upstream access token')), 'upstream access tokens travelled (and are searched for)')

  // Everything is written once the process has stopped.
  gw.child.kill('SIGTERM')
  await once(gw.child, 'exit')
  const output = gw.output
  t.teardown(() => { if (t.passing() === false) t.comment(output) })

  t.test('none of the secret values is in the output, raw or encoded', async (t) => {
    for (const [name, value] of secrets) {
      t.not(value, '', `${name} was captured`)
      const forms = new Set([value, encodeURIComponent(value), new URLSearchParams({ v: value }).toString().slice(2)])
      const found = [...forms].find((form) => output.includes(form))
      const line = found === undefined ? undefined : output.split('\n').find((l) => l.includes(found))
      t.equal(line, undefined, `${name} is not logged`)
    }
    // Belt and braces: nothing shaped like a gateway or GitHub secret (gwo_ codes, gwa_/gwr_ tokens, gws_
    // client secrets, gho_/ghu_/ghr_ GitHub tokens), including ones the test never saw.
    const shaped = output.match(/\b(?:gwo|gwa|gwr|gws|gho|ghu|ghr)_[A-Za-z0-9_-]{8,}/g) ?? []
    t.same(shaped, [], 'no token-shaped value at all')
    t.notMatch(output, /\?[^"\s]*(?:code|token|flow|state)=/, 'no query string with a code, token, flow or state')
  })

  const lines: LogLine[] = output.split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return []
    try {
      return [JSON.parse(line) as LogLine]
    } catch {
      return []
    }
  })

  t.test('JSON lines with request ids that come from the gateway, paths without query strings', async (t) => {
    t.ok(lines.length > 20, `${lines.length} JSON log lines`)
    t.ok(lines.some((l) => l.level === 20), 'debug level is on (debug lines were written)')
    const requests = lines.filter((l) => l.msg === 'request completed')
    t.ok(requests.length > 10, 'every request is logged')
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
    t.ok(requests.every((l) => typeof l.reqId === 'string' && uuid.test(l.reqId)), 'each with a random request id (UUID)')
    t.equal(new Set(requests.map((l) => l.reqId)).size, requests.length, 'one access line per request')
    t.notOk(lines.some((l) => l.msg === 'incoming request'), 'and no second line when the request comes in')
    t.ok(requests.every((l) => typeof l.url === 'string' && !l.url.includes('?')), 'access lines carry the path only')
    t.ok(requests.every((l) => typeof l.statusCode === 'number' && typeof l.responseTime === 'number'),
      'with the status and the time taken')
    t.ok(requests.some((l) => l.url === '/upstream/callback'), 'the callback is logged by its path')
    t.ok(requests.some((l) => l.url === '/callback' && l.statusCode === 404), 'an unknown path by its path, as a 404')
    const proxied = requests.filter((l) => l.url === '/mcp' && l.statusCode === 200)
    t.ok(proxied.length > 0 && proxied.every((l) => typeof l.clientId === 'string' && typeof l.grantId === 'string'),
      'a proxied request names its client and grant')
  })

  t.test('one line per OAuth event, with client id and grant id', async (t) => {
    const event = (name: string, match: (l: LogLine) => boolean = () => true): LogLine[] =>
      lines.filter((l) => l.event === name && l.clientId === client.client_id && match(l))
    const one = (name: string, what: string, match?: (l: LogLine) => boolean): LogLine | undefined => {
      const found = event(name, match)
      t.equal(found.length, 1, `${what}: one line (${name}) with the client id`)
      t.type(found[0]?.reqId, 'string', `${what}: with its request id`)
      return found[0]
    }
    const registeredLine = one('client_registered', 'client registered')
    t.equal(registeredLine?.reqId, registered.headers['x-request-id'], 'the request id is the one the client got back in X-Request-Id')
    one('login_failed', 'the wrong password')
    one('login_succeeded', 'login')
    one('consent_given', 'consent')
    one('code_issued', 'authorization code issued')
    const issued = one('tokens_issued', 'tokens issued for the code', (l) => l.grantType === 'authorization_code')
    t.match(issued?.grantId, /^gwg_/, 'tokens issued: with the grant id')
    const refreshed = one('tokens_issued', 'tokens refreshed', (l) => l.grantType === 'refresh_token')
    t.equal(refreshed?.grantId, issued?.grantId, 'refreshed: the same grant id')
    const revokedLine = one('grant_revoked', 'grant revoked', (l) => l.reason === 'client_revoked')
    t.equal(revokedLine?.grantId, issued?.grantId, 'revoked: the same grant id')
  })
})
