import Fastify, { type FastifyInstance } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import gateway from '../../app.js'
import { ManualClock } from '../../lib/clock.js'
import { createPkcePair } from '../../lib/pkce.js'
import { startFakeGithub } from '../helpers/fake-github.js'
import {
  Browser, exchangeCode, gatewayOptions, hiddenField, pathOf, registerClient, startFlow, visitUpstream
} from '../helpers/gateway.js'
import { SHARED_REDIS_URL, deletePrefix, testPrefix } from '../helpers/redis.js'

/*
 * Issue 19 part 4: "a revoke button each (CSRF-protected, revokes the grant on every replica)". Two gateways on one
 * Redis, each caching validated tokens for a minute: a revocation on A's account page reaches B's cache through
 * the store's revocation channel, so B refuses the token at once, not a minute later.
 */

const REDIRECT = 'http://127.0.0.1:33418/callback'

t.test('account page: a revocation on one replica is refused at once by the other, which had the token cached', async (t) => {
  const github = await startFakeGithub()
  t.teardown(() => github.close())
  const prefix = testPrefix('account-revoke')
  t.teardown(async () => { await deletePrefix(SHARED_REDIS_URL, prefix) })
  const replica = async (): Promise<FastifyInstance> => {
    const app = Fastify()
    const options = { store: SHARED_REDIS_URL, storePrefix: prefix, tokenCacheTtl: 60_000 }
    await app.register(gateway, gatewayOptions(github, new ManualClock(Date.now()), options))
    await app.ready()
    t.teardown(async () => { await app.close() })
    return app
  }
  const [a, b] = [await replica(), await replica()]
  const mcpStatus = async (app: FastifyInstance, token: string): Promise<number> => (await app.inject({
    method: 'POST',
    url: '/mcp',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    payload: '{}'
  })).statusCode

  const client = await registerClient(a, { client_name: 'Editor', redirect_uris: [REDIRECT] })
  const browser = new Browser()
  const { verifier, challenge } = createPkcePair()
  const flow = await startFlow(a, browser, client, { challenge })
  await browser.post(a, '/login', { ...flow, username: 'gateway_user', password: 'gateway_pass' })
  const consent = await browser.post(a, '/consent', { ...flow, decision: 'approve' })
  const callback = await browser.get(a, pathOf(await visitUpstream(consent.headers.location as string)))
  const code = new URL(callback.headers.location as string).searchParams.get('code') as string
  const token = (await exchangeCode(a, client, code, verifier)).json().access_token as string
  t.not(await mcpStatus(b, token), 401, 'B validated the token, and caches it for a minute')

  const person = new Browser()
  const form = await person.get(a, '/account')
  const login = await person.post(a, '/account/login', {
    csrf: hiddenField(form.body, 'csrf'),
    username: 'gateway_user',
    password: 'gateway_pass'
  })
  const page = await person.get(a, login.headers.location as string)
  const revoked = await person.post(a, '/account/revoke', {
    csrf: hiddenField(page.body, 'csrf'),
    grant: hiddenField(page.body, 'grant')
  })
  t.equal(revoked.statusCode, 303, 'revoked on A')
  let status = await mcpStatus(b, token)
  for (let i = 0; i < 100 && status !== 401; i++) {
    await sleep(20)
    status = await mcpStatus(b, token)
  }
  t.equal(status, 401, 'B refuses the token within moments (the revocation message), not after its cache TTL')
  t.equal(await mcpStatus(a, token), 401, 'and A at once')
  t.match((await person.get(b, '/account')).body, 'You have no MCP clients connected',
    'the session is in the store: B shows the same person the same (empty) list')
})
