import type { FastifyInstance } from 'fastify'
import t from 'tap'
import type { FakeGithub } from '../helpers/fake-github.js'
import { authorizeFully, buildGateway, exchangeCode, registerClient, tokenRequest, type GatewayOverrides } from '../helpers/gateway.js'

/*
 * Issue 19 part 3, one upstream token per person: GitHub keeps at most 10 tokens per user, app and scope set and
 * silently revokes the oldest. The grants of one gateway user and one GitHub user with the same scopes hold one
 * set of upstream tokens: every sign-in moves them all to its new token, a refresh renews it once for all, and it
 * is revoked at GitHub only when the last of them is revoked.
 */

interface Connected { accessToken: string, refreshToken: string, clientId: string }

/** A new client's whole sign-in (both screens), then its code exchange. */
async function connect (app: FastifyInstance): Promise<Connected> {
  const client = await registerClient(app, { redirect_uris: ['http://127.0.0.1:33418/callback'], token_endpoint_auth_method: 'none' })
  const { code, verifier } = await authorizeFully(app, client)
  const exchanged = await exchangeCode(app, client, code, verifier)
  const tokens = exchanged.json<{ access_token: string, refresh_token: string }>()
  return { accessToken: tokens.access_token, refreshToken: tokens.refresh_token, clientId: client.client_id }
}

/** A gateway whose fake GitHub MCP server records the upstream token of every request it serves. */
async function gatewayWithSeenTokens (t: Parameters<typeof buildGateway>[0], overrides: GatewayOverrides, mode: 'oauth-app' | 'expiring' = 'oauth-app') {
  const seen: string[] = []
  const built = await buildGateway(t, overrides, {
    mode,
    mcpHandler: (_req, res, token) => {
      seen.push(token as string)
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
    }
  })
  return { ...built, seen }
}

const withIdentity: GatewayOverrides = (gh) => ({ upstreamUserEndpoint: `${gh.origin}/user` })

async function callMcp (app: FastifyInstance, accessToken: string): Promise<number> {
  const res = await app.inject({ method: 'GET', url: '/mcp', headers: { authorization: `Bearer ${accessToken}` } })
  return res.statusCode
}

const revocations = (github: FakeGithub): string[] =>
  github.requests.filter((r) => r.method === 'DELETE').map((r) => (JSON.parse(r.body) as { access_token: string }).access_token)

t.test('issue 19 part 3: two clients of one person hold one upstream token; the last revocation revokes it at GitHub', async (t) => {
  const { app, github, seen } = await gatewayWithSeenTokens(t, withIdentity)
  const first = await connect(app)
  const second = await connect(app)
  t.equal(github.tokensIssued, 2, 'each sign-in went through GitHub')
  t.equal(await callMcp(app, first.accessToken), 200)
  t.equal(await callMcp(app, second.accessToken), 200)
  t.equal(seen.length, 2)
  t.equal(seen[0], seen[1], 'both clients use one upstream token')
  t.match(seen[0], /^gho_/)

  const revoke = async (c: Connected, token: string) => await app.inject({
    method: 'POST',
    url: '/revoke',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ token, client_id: c.clientId }).toString()
  })
  t.equal((await revoke(first, first.refreshToken)).statusCode, 200)
  t.equal(await callMcp(app, first.accessToken), 401, 'the revoked client is out')
  t.equal(await callMcp(app, second.accessToken), 200, 'the other client keeps working')
  t.same(revocations(github), [], 'and the upstream token is not revoked while a grant holds it')
  t.ok(github.isValidAccessToken(seen[0] as string))

  t.equal((await revoke(second, second.accessToken)).statusCode, 200)
  t.same(revocations(github), [seen[0]], 'the last revocation revokes the token at GitHub')
  t.notOk(github.isValidAccessToken(seen[0] as string))
})

t.test('issue 19 part 3: GitHub\'s 10-token limit: the 11th sign-in kills the first grant without sharing, not with it', async (t) => {
  const unshared = await gatewayWithSeenTokens(t, {})
  const alone = [await connect(unshared.app)]
  for (let i = 1; i < 11; i++) alone.push(await connect(unshared.app))
  t.equal(unshared.github.tokensIssued, 11)
  t.equal(await callMcp(unshared.app, (alone[0] as Connected).accessToken), 401,
    'without the upstream identity no grant is shared: GitHub revoked the first one\'s token')
  t.equal(await callMcp(unshared.app, (alone[10] as Connected).accessToken), 200)

  const shared = await gatewayWithSeenTokens(t, withIdentity)
  const together = [await connect(shared.app)]
  for (let i = 1; i < 11; i++) together.push(await connect(shared.app))
  t.equal(shared.github.tokensIssued, 11)
  for (const [i, c] of together.entries()) t.equal(await callMcp(shared.app, c.accessToken), 200, `client ${i + 1} still works`)
  t.equal(new Set(shared.seen).size, 1, 'all on the newest token')
})

t.test('issue 19 part 3: different GitHub users behind one gateway user do not share', async (t) => {
  const { app, github, seen } = await gatewayWithSeenTokens(t, withIdentity)
  const octocat = await connect(app)
  github.user = { login: 'hubot', id: 11, orgs: [] }
  const hubot = await connect(app)
  await callMcp(app, octocat.accessToken)
  await callMcp(app, hubot.accessToken)
  t.not(seen[0], seen[1], 'each GitHub user keeps their own token')
})

t.test('issue 19 part 3: an expiring token is refreshed once for all the grants that hold it', async (t) => {
  const { app, github, clock, seen } = await gatewayWithSeenTokens(t, withIdentity, 'expiring')
  const first = await connect(app)
  const second = await connect(app)
  clock.advance(8 * 3600_000 - 60_000)
  const refreshesBefore = github.requests.filter((r) => r.body.includes('grant_type=refresh_token')).length
  // Both clients renew their own tokens (the gateway's access tokens lasted an hour), then call at once.
  const renewed = await Promise.all([first, second].map(async (c) =>
    (await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: c.refreshToken, client_id: c.clientId }))
      .json<{ access_token: string }>().access_token))
  const statuses = await Promise.all(renewed.map(async (token) => await callMcp(app, token)))
  t.same(statuses, [200, 200])
  const refreshes = github.requests.filter((r) => r.body.includes('grant_type=refresh_token')).length - refreshesBefore
  t.equal(refreshes, 1, 'one upstream refresh for both grants')
  t.equal(seen.at(-1), seen.at(-2), 'both use the refreshed token')
})
