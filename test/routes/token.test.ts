import t from 'tap'
import { createPkcePair } from '../../lib/pkce.js'
import { authorizeFully, buildGateway, exchangeCode, registerClient, tokenRequest, type RegisteredClient } from '../helpers/gateway.js'
import type { FastifyInstance } from 'fastify'

async function tokensFor (
  app: FastifyInstance,
  client: RegisteredClient,
  extra: Record<string, string> = {}
): Promise<Record<string, string>> {
  const done = await authorizeFully(app, client)
  const res = await exchangeCode(app, client, done.code, done.verifier, extra)
  if (res.statusCode !== 200) throw new Error(res.body)
  return res.json()
}

/** A proxied MCP call with `accessToken` (the fake GitHub serves /mcp): 200 while the token is live. */
const callEcho = async (app: FastifyInstance, accessToken: string) => await app.inject({
  method: 'POST', url: '/mcp', headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' }, payload: '{}'
})

const refresh = (app: FastifyInstance, client: RegisteredClient, refreshToken: string) =>
  tokenRequest(app, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: client.client_id })

t.test('authorization_code: a replayed code fails and revokes what the first use issued (OAuth 2.1 §4.1.3)', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app)
  const done = await authorizeFully(app, client)
  const first = await exchangeCode(app, client, done.code, done.verifier)
  t.equal(first.statusCode, 200)
  const replay = await exchangeCode(app, client, done.code, done.verifier)
  t.equal(replay.statusCode, 400)
  t.same(replay.json(), { error: 'invalid_grant', error_description: 'the grant is invalid, expired or revoked' })
  t.equal(replay.headers['cache-control'], 'no-store')
  const afterwards = await refresh(app, client, first.json().refresh_token)
  t.equal(afterwards.json().error, 'invalid_grant', 'the first tokens are revoked')
})

t.test('authorization_code: a wrong verifier fails and does not burn the code (no DoS by invalid replay)', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app)
  const done = await authorizeFully(app, client)
  const wrong = await exchangeCode(app, client, done.code, createPkcePair().verifier)
  t.equal(wrong.json().error, 'invalid_grant')
  const right = await exchangeCode(app, client, done.code, done.verifier)
  t.equal(right.statusCode, 200)
})

t.test('authorization_code: PKCE downgrade, wrong client, redirect_uri, resource and expiry', async (t) => {
  const { app, clock } = await buildGateway(t)
  const client = await registerClient(app)
  const other = await registerClient(app)
  const done = await authorizeFully(app, client)

  const noVerifier = await tokenRequest(app, { grant_type: 'authorization_code', code: done.code, client_id: client.client_id })
  t.same(noVerifier.json(), { error: 'invalid_request', error_description: 'code_verifier is required' }, 'no verifier: PKCE downgrade refused')
  const badFormat = await exchangeCode(app, client, done.code, 'short')
  t.equal(badFormat.json().error, 'invalid_request', 'a verifier outside RFC 7636 §4.1 is malformed')
  const otherClient = await exchangeCode(app, other, done.code, done.verifier)
  t.equal(otherClient.json().error, 'invalid_grant', 'a code is bound to its client')
  const redirect = await exchangeCode(app, client, done.code, done.verifier, { redirect_uri: 'http://127.0.0.1:33418/other' })
  t.equal(redirect.json().error, 'invalid_grant', 'redirect_uri must match the authorization request')
  const resource = await exchangeCode(app, client, done.code, done.verifier, { resource: 'https://elsewhere.example/mcp' })
  t.equal(resource.json().error, 'invalid_target', 'RFC 8707 resource must be the one granted')
  const noCode = await tokenRequest(app, { grant_type: 'authorization_code', client_id: client.client_id, code_verifier: done.verifier })
  t.equal(noCode.json().error, 'invalid_request')

  clock.advance(301_000)
  const expired = await exchangeCode(app, client, done.code, done.verifier)
  t.equal(expired.json().error, 'invalid_grant', 'codes live 5 minutes')
})

t.test('client authentication at /token (OAuth 2.1 §2.4, §3.2.1)', async (t) => {
  const { app } = await buildGateway(t)
  const unknown = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: 'x', client_id: 'nobody' })
  t.equal(unknown.statusCode, 401)
  t.equal(unknown.json().error, 'invalid_client', 'unknown client: invalid_client, so SDK clients register again')
  const anonymous = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: 'x' })
  t.equal(anonymous.statusCode, 401)

  const confidential = await registerClient(app, { token_endpoint_auth_method: 'client_secret_basic' })
  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`
  const tokens = await tokensFor(app, confidential, { client_secret: confidential.client_secret as string })
  t.ok(tokens.access_token, 'client_secret_post works')
  const viaBasic = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token as string }, { authorization: basic(confidential.client_id, confidential.client_secret as string) })
  t.equal(viaBasic.statusCode, 200, 'client_secret_basic works')

  const wrongSecret = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: 'x' }, { authorization: basic(confidential.client_id, 'wrong') })
  t.equal(wrongSecret.statusCode, 401)
  t.match(wrongSecret.headers['www-authenticate'], /^Basic/, 'a Basic challenge for a client that tried Basic')
  const noSecret = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: 'x', client_id: confidential.client_id })
  t.equal(noSecret.statusCode, 401, 'a confidential client must authenticate')
  const both = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: 'x', client_secret: 'a' }, { authorization: basic(confidential.client_id, confidential.client_secret as string) })
  t.equal(both.json().error, 'invalid_request', 'two authentication methods at once')
  const mismatch = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: 'x', client_id: 'other' }, { authorization: basic(confidential.client_id, confidential.client_secret as string) })
  t.equal(mismatch.json().error, 'invalid_request', 'client_id differs from the Basic user')
  const garbage = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: 'x' }, { authorization: 'Basic !!!' })
  t.equal(garbage.statusCode, 401)
  const noColon = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: 'x' }, { authorization: `Basic ${Buffer.from('nocolon').toString('base64')}` })
  t.equal(noColon.statusCode, 401)

  const publicClient = await registerClient(app)
  const publicWithSecret = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: 'x', client_id: publicClient.client_id, client_secret: 'made-up' })
  t.equal(publicWithSecret.statusCode, 401, 'a public client has no secret to send')
})

t.test('malformed token requests are RFC 6749 errors, never a 500', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app)
  const dup = await app.inject({ method: 'POST', url: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `grant_type=refresh_token&refresh_token=a&refresh_token=b&client_id=${client.client_id}` })
  t.same(dup.json(), { error: 'invalid_request', error_description: 'malformed request' }, 'repeated parameter (OAuth 2.1 §3.2)')
  const grant = await tokenRequest(app, { grant_type: 'password', client_id: client.client_id })
  t.equal(grant.json().error, 'unsupported_grant_type', 'no ROPC')
  const json = await app.inject({ method: 'POST', url: '/token', payload: { grant_type: 'refresh_token' } })
  t.equal(json.statusCode, 415)
  t.equal(json.json().error, 'invalid_request', 'a JSON body is not a token request')
  const empty = await app.inject({ method: 'POST', url: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: '' })
  t.equal(empty.json().error, 'invalid_request')
  const noRefresh = await tokenRequest(app, { grant_type: 'refresh_token', client_id: client.client_id })
  t.equal(noRefresh.json().error, 'invalid_request')
})

t.test('refresh: rotation, and reuse of a rotated token after the grace period revokes the whole grant (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2)', async (t) => {
  const { app, clock } = await buildGateway(t)
  const client = await registerClient(app)
  const tokens = await tokensFor(app, client)
  const second = await refresh(app, client, tokens.refresh_token as string)
  t.equal(second.statusCode, 200)
  t.not(second.json().refresh_token, tokens.refresh_token)
  clock.advance(30_000)
  const reuse = await refresh(app, client, tokens.refresh_token as string)
  t.equal(reuse.json().error, 'invalid_grant', 'the old token is refused once the default 30 s have passed')
  const afterReuse = await refresh(app, client, second.json().refresh_token)
  t.equal(afterReuse.json().error, 'invalid_grant', 'and the family is revoked: the new one too')
})

t.test('refresh: --refresh-grace=0 makes any reuse revoke at once', async (t) => {
  const { app } = await buildGateway(t, { refreshGrace: 0 })
  const client = await registerClient(app)
  const tokens = await tokensFor(app, client)
  const second = await refresh(app, client, tokens.refresh_token as string)
  t.equal(second.statusCode, 200)
  t.equal((await refresh(app, client, tokens.refresh_token as string)).json().error, 'invalid_grant', 'no second answer')
  t.equal((await refresh(app, client, second.json().refresh_token)).json().error, 'invalid_grant', 'the family is revoked')
})

t.test('issue 22 finding 3: within the grace period a repeated refresh gets the same tokens, so either answer stays valid', async (t) => {
  const { app, clock } = await buildGateway(t, { refreshGrace: 30 })
  const client = await registerClient(app)
  const tokens = await tokensFor(app, client)
  const lost = await refresh(app, client, tokens.refresh_token as string)
  t.equal(lost.statusCode, 200)
  clock.advance(10_000)
  const retry = await refresh(app, client, tokens.refresh_token as string)
  t.equal(retry.statusCode, 200, 'within the grace period the old token is answered again')
  t.equal(retry.json().access_token, lost.json().access_token, 'with the same access token')
  t.equal(retry.json().refresh_token, lost.json().refresh_token, 'and the same refresh token: one live pair per grant')
  t.ok(retry.json().expires_in <= lost.json().expires_in - 10, 'expires_in counts down from the first answer')
  const next = await refresh(app, client, retry.json().refresh_token)
  t.equal(next.statusCode, 200, 'the pair goes on refreshing')
  clock.advance(31_000)
  const late = await refresh(app, client, tokens.refresh_token as string)
  t.equal(late.json().error, 'invalid_grant', 'after the grace period it is reuse')
  const revoked = await refresh(app, client, next.json().refresh_token)
  t.equal(revoked.json().error, 'invalid_grant', 'and the grant is revoked')
})

t.test('issue 22 finding 1: two refreshes with one refresh token sent together both succeed, and the client goes on with either answer', async (t) => {
  const { app, clock } = await buildGateway(t)
  const client = await registerClient(app)
  for (const keep of [0, 1]) {
    let current = (await tokensFor(app, client)).refresh_token as string
    for (let cycle = 0; cycle < 5; cycle++) {
      const answers = await Promise.all([refresh(app, client, current), refresh(app, client, current)])
      t.same(answers.map((a) => a.statusCode), [200, 200], `cycle ${cycle}: both answered`)
      t.equal(answers[0]?.json().refresh_token, answers[1]?.json().refresh_token, `cycle ${cycle}: the same pair`)
      const kept = answers[keep]?.json()
      t.equal((await callEcho(app, kept.access_token)).statusCode, 200, `cycle ${cycle}: the kept access token works`)
      current = kept.refresh_token
      clock.advance(60_000)
    }
  }
})

t.test('refresh: bound to its client, its scope and its resource; expires', async (t) => {
  const { app, clock } = await buildGateway(t, { refreshTokenTtl: 3600 })
  const client = await registerClient(app)
  const other = await registerClient(app)
  const tokens = await tokensFor(app, client)
  t.equal((await refresh(app, other, tokens.refresh_token as string)).json().error, 'invalid_grant', 'another client\'s token')
  const wider = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token as string, client_id: client.client_id, scope: 'mcp admin' })
  t.equal(wider.json().error, 'invalid_scope', 'no wider scope than granted (OAuth 2.1 §4.3.1)')
  const target = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token as string, client_id: client.client_id, resource: 'https://other.example/mcp' })
  t.equal(target.json().error, 'invalid_target')
  const same = await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token as string, client_id: client.client_id, scope: 'mcp', resource: 'http://localhost:8002/mcp' })
  t.equal(same.statusCode, 200, 'the same scope and resource are fine; failed attempts did not spend the token')
  clock.advance(3601_000)
  t.equal((await refresh(app, client, same.json().refresh_token)).json().error, 'invalid_grant', 'refresh TTL')
})

t.test('a client registered without refresh_token gets no refresh token and may not refresh', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app, { grant_types: ['authorization_code'] })
  const tokens = await tokensFor(app, client)
  t.equal(tokens.refresh_token, undefined)
  t.equal((await refresh(app, client, 'gwr_anything')).json().error, 'unauthorized_client')
})

t.test('expires_in is the gateway TTL when the upstream token never expires (GitHub OAuth App) or can be refreshed (GitHub App)', async (t) => {
  const oauthApp = await buildGateway(t)
  const c1 = await registerClient(oauthApp.app)
  t.equal((await tokensFor(oauthApp.app, c1)).expires_in, 3600, 'no upstream expiry: the gateway TTL')

  const expiring = await buildGateway(t, {}, { mode: 'expiring', expiresIn: 600 })
  const c2 = await registerClient(expiring.app)
  t.equal((await tokensFor(expiring.app, c2)).expires_in, 3600, 'a 10-minute upstream token the gateway renews itself does not shorten it')
})

t.test('refresh renews an expiring upstream token, one upstream refresh at a time per grant', async (t) => {
  const { app, github, clock } = await buildGateway(t, { refreshGrace: 10 }, { mode: 'expiring', expiresIn: 600 })
  const client = await registerClient(app)
  const tokens = await tokensFor(app, client)
  const upstreamRefreshes = () => github.requests.filter((r) => r.body.includes('grant_type=refresh_token')).length

  const early = await refresh(app, client, tokens.refresh_token as string)
  t.equal(early.statusCode, 200)
  t.equal(upstreamRefreshes(), 0, 'an upstream token with time left is reused')

  clock.advance(590_000)
  const [a, b] = await Promise.all([
    refresh(app, client, early.json().refresh_token),
    refresh(app, client, early.json().refresh_token)
  ])
  t.equal(a.statusCode, 200, a.body)
  t.equal(b.statusCode, 200, b.body)
  t.equal(upstreamRefreshes(), 1, 'two concurrent refreshes, one upstream refresh (GitHub rotates its refresh tokens)')
  t.notMatch(a.body + b.body, /gh[ur]_/, 'no upstream token reaches the client')
})

t.test('issue 22 finding 2: the upstream token is renewed ahead, so no client token is born short because of it', async (t) => {
  /** A client that refreshes every `everyMs` for `forMs`: the expires_in values it saw, and the upstream refreshes. */
  async function refreshFor (upstreamExpiresIn: number, everyMs: number, forMs: number) {
    const { app, github, clock } = await buildGateway(t, { rateLimitToken: 10_000 }, { mode: 'expiring', expiresIn: upstreamExpiresIn })
    const client = await registerClient(app)
    let tokens = await tokensFor(app, client)
    const lifetimes = new Set<number>([Number(tokens.expires_in)])
    for (let elapsed = everyMs; elapsed <= forMs; elapsed += everyMs) {
      clock.advance(everyMs)
      const res = await refresh(app, client, tokens.refresh_token as string)
      t.equal(res.statusCode, 200)
      tokens = res.json()
      lifetimes.add(Number(tokens.expires_in))
    }
    const upstreamRefreshes = github.requests.filter((r) => r.body.includes('grant_type=refresh_token')).length
    return { lifetimes: [...lifetimes], upstreamRefreshes }
  }

  // A GitHub App: 8-hour tokens, and a client refreshing every 10 minutes for 24 hours.
  const githubApp = await refreshFor(8 * 3600, 600_000, 24 * 3600_000)
  t.same(githubApp.lifetimes, [3600], 'every expires_in is the access token TTL, never what is left of the upstream token')
  t.equal(githubApp.upstreamRefreshes, 3, 'the upstream token renewed once per 7 hours, an hour before it expires')

  // Upstream tokens of 2 minutes, and a client refreshing every 10 s for 10 minutes.
  const shortLived = await refreshFor(120, 10_000, 600_000)
  t.same(shortLived.lifetimes, [3600], 'a refreshable upstream token, however short, never shortens the client\'s')
  t.equal(shortLived.upstreamRefreshes, 10, 'renewed past the middle of its life (once a minute), not on every request')
})

t.test('upstream refresh refused → invalid_grant and the grant is revoked; upstream down → 503 and the client may retry', async (t) => {
  const { app, github, clock } = await buildGateway(t, { upstreamTimeout: 300 }, { mode: 'expiring', expiresIn: 120 })
  const client = await registerClient(app)
  const tokens = await tokensFor(app, client)
  clock.advance(100_000)

  github.tokenFailure = 'http500'
  const down = await refresh(app, client, tokens.refresh_token as string)
  t.equal(down.statusCode, 503)
  t.equal(down.json().error, 'temporarily_unavailable')
  t.ok(down.headers['retry-after'])
  github.tokenFailure = null
  const retried = await refresh(app, client, tokens.refresh_token as string)
  t.equal(retried.statusCode, 200, 'the refresh token was not spent by the failed attempt')

  clock.advance(200_000)
  github.revokeAll()
  const refused = await refresh(app, client, retried.json().refresh_token)
  t.equal(refused.json().error, 'invalid_grant', 'the upstream refused: the user must authorize again')
})

t.test('an expired upstream token without a refresh token ends the grant at the next refresh', async (t) => {
  const { app, github, clock } = await buildGateway(t, {}, { mode: 'expiring', expiresIn: 120 })
  const client = await registerClient(app)
  const tokens = await tokensFor(app, client)
  github.revokeAll()
  clock.advance(121_000)
  const res = await refresh(app, client, tokens.refresh_token as string)
  t.equal(res.json().error, 'invalid_grant')
})

t.test('/revoke (RFC 7009): either token revokes the grant; unknown and foreign tokens answer 200 and change nothing', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app)
  const other = await registerClient(app)
  const revoke = (c: RegisteredClient, token: string, hint?: string) => app.inject({
    method: 'POST',
    url: '/revoke',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({
      token,
      client_id: c.client_id,
      ...(hint === undefined ? {} : { token_type_hint: hint })
    }).toString()
  })

  const a = await tokensFor(app, client)
  t.equal((await revoke(client, 'gwr_unknown')).statusCode, 200, 'unknown token: 200')
  t.equal((await revoke(other, a.refresh_token as string)).statusCode, 200, 'another client\'s token: 200 …')
  t.equal((await refresh(app, client, a.refresh_token as string)).statusCode, 200, '… and not revoked')

  const b = await tokensFor(app, client)
  const res = await revoke(client, b.refresh_token as string, 'refresh_token')
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal((await refresh(app, client, b.refresh_token as string)).json().error, 'invalid_grant', 'refresh token revoked')

  const c = await tokensFor(app, client)
  t.equal((await revoke(client, c.access_token as string, 'refresh_token')).statusCode, 200, 'a wrong hint is ignored')
  t.equal((await refresh(app, client, c.refresh_token as string)).json().error, 'invalid_grant', 'revoking the access token revokes the grant')

  const anonymous = await app.inject({ method: 'POST', url: '/revoke', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'token=x' })
  t.equal(anonymous.statusCode, 401)
  const missing = await app.inject({ method: 'POST', url: '/revoke', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `client_id=${client.client_id}` })
  t.equal(missing.json().error, 'invalid_request')
})
