import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import type { Test } from 'tap'
import gateway, { type GatewayPluginOptions } from '../../app.js'
import { ManualClock } from '../../lib/clock.js'
import { hashSecret } from '../../lib/crypto.js'
import { MemoryStore } from '../../lib/stores/memory.js'
import { startFakeGithub, type FakeGithub, type FakeGithubOptions } from '../helpers/fake-github.js'
import { PUBLIC_URL, authorizeFully, exchangeCode, gatewayOptions, registerClient, tokenRequest } from '../helpers/gateway.js'

const OLD = 'old-secret-old-secret-old-secret-0001'
const NEW = 'new-secret-new-secret-new-secret-0002'

interface Restarts { github: FakeGithub, store: MemoryStore, start: (secret: string[]) => Promise<FastifyInstance> }

/**
 * Gateways started one after another on one store, each with its own secrets: what restarts
 * with a persistent store look like.
 */
async function restartsOnOneStore (
  t: Test,
  fake: FakeGithubOptions = {},
  overrides: (github: FakeGithub) => Partial<GatewayPluginOptions> = () => ({})
): Promise<Restarts> {
  const github = await startFakeGithub(fake)
  t.teardown(() => github.close())
  const clock = new ManualClock(Date.now())
  const store = new MemoryStore({ clock })
  t.teardown(() => store.close())
  const start = async (secret: string[]): Promise<FastifyInstance> => {
    const app = Fastify({ logger: false })
    await app.register(gateway, gatewayOptions(github, clock, { ...overrides(github), store, secret }))
    t.teardown(() => app.close())
    return app
  }
  return { github, store, start }
}

t.test('secrets rotate without logging anyone out: put the new one first, keep the old one after it', async (t) => {
  const { start } = await restartsOnOneStore(t)

  const before = await start([OLD])
  const client = await registerClient(before)
  const done = await authorizeFully(before, client)
  const tokens = (await exchangeCode(before, client, done.code, done.verifier)).json()

  const after = await start([NEW, OLD])
  const refreshed = await tokenRequest(after, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.client_id })
  t.equal(refreshed.statusCode, 200, 'a refresh token wrapped under the old secret still opens its grant')
  const next = await tokenRequest(after, { grant_type: 'refresh_token', refresh_token: refreshed.json().refresh_token, client_id: client.client_id })
  t.equal(next.statusCode, 200, 'and the tokens issued after the rotation work')

  const onlyNew = await start([NEW])
  const lost = await tokenRequest(onlyNew, { grant_type: 'refresh_token', refresh_token: next.json().refresh_token, client_id: client.client_id })
  t.equal(lost.statusCode, 200, 'once every grant has been refreshed under the new secret, the old one can go')
  const stale = await start([NEW])
  const cold = await authorizeFully(before, client)
  const unreadable = await exchangeCode(stale, client, cold.code, cold.verifier)
  t.equal(unreadable.json().error, 'invalid_grant', 'a code sealed under a secret that was dropped is as good as expired (not a 500)')
  const access = await onlyNew.inject({ method: 'POST', url: '/mcp', headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/json' }, payload: '{}' })
  t.equal(access.statusCode, 401, 'an access token wrapped under a dropped secret is invalid, not an error')
})

t.test('an upstream with DCR: the gateway registers once per store, its secret sealed under --secret', async (t) => {
  // No client id and no endpoints: the gateway discovers the upstream from --upstream-as and registers there.
  const { github, store, start } = await restartsOnOneStore(t, { dcr: true }, (github) => ({
    upstreamAs: github.issuer,
    upstreamClientId: undefined,
    upstreamClientSecret: undefined,
    upstreamAuthorizeEndpoint: undefined,
    upstreamTokenEndpoint: undefined
  }))
  const registrations = (): number => github.requests.filter((r) => r.path === '/login/oauth/register').length
  const signIn = async (app: FastifyInstance): Promise<number> => {
    const client = await registerClient(app)
    const done = await authorizeFully(app, client)
    return (await exchangeCode(app, client, done.code, done.verifier)).statusCode
  }

  t.equal(await signIn(await start([OLD])), 200, 'a sign-in through the registered upstream client')
  t.equal(registrations(), 1)
  const stored = await store.get<Record<string, unknown>>('upstream:client:' + hashSecret(`${github.issuer}/register ${PUBLIC_URL}/upstream/callback`))
  t.match(stored, { clientId: String, sealedSecret: /^v1\./ }, 'the registration is kept, its secret sealed')
  t.notOk(stored !== undefined && 'clientSecret' in stored, 'and not in the clear')
  t.equal(await signIn(await start([NEW, OLD])), 200, 'a restart with the secret still listed reuses it')
  t.equal(registrations(), 1)
  t.equal(await signIn(await start([NEW])), 200, 'a restart without it registers again, and sign-in works')
  t.equal(registrations(), 2)
})
