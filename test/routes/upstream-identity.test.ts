import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { ConfigError, parseGatewayOptions } from '../../lib/config.js'
import { createPkcePair } from '../../lib/pkce.js'
import { PLUGIN } from '../helpers/config.js'
import type { FakeGithub } from '../helpers/fake-github.js'
import { Browser, pathOf, registerClient, signInAndApprove, startFlow, visitUpstream } from '../helpers/gateway.js'
import { loggedGateway } from '../helpers/logged-gateway.js'

/*
 * Issue 19, who is upstream: right after the upstream code exchange the gateway asks GitHub's GET /user (and
 * GET /user/orgs when organisations are restricted) with the token it just got, keeps the answer with the grant
 * and in the code_issued line, and refuses anyone the allow-lists leave out: a page, and no gateway code.
 */

const REDIRECT = 'http://127.0.0.1:33418/callback'
const WARN = 40

/** The whole chain up to the upstream callback; the callback's answer. */
async function signIn (app: FastifyInstance): Promise<LightMyRequestResponse> {
  const client = await registerClient(app, { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' })
  const browser = new Browser()
  const flow = await startFlow(app, browser, client, { challenge: createPkcePair().challenge })
  const upstream = await signInAndApprove(app, browser, flow)
  return await browser.get(app, pathOf(await visitUpstream(upstream)))
}

const restCalls = (github: FakeGithub): string[] =>
  github.requests.filter((r) => r.path.startsWith('/user')).map((r) => `${r.method} ${r.path}`)

t.test('the upstream user is asked for with the new token and kept: octocat in the code_issued line', async (t) => {
  const { app, github, logs } = await loggedGateway(t, (gh) => ({ upstreamUserEndpoint: `${gh.origin}/user` }))
  const res = await signIn(app)
  t.equal(res.statusCode, 302)
  t.match(res.headers.location, `${REDIRECT}?code=`)
  t.same(restCalls(github), ['GET /user'], 'no organisations asked for when none are restricted')
  const asked = github.requests.find((r) => r.path === '/user')
  t.match(asked?.headers.authorization, /^Bearer gho_/, 'with the upstream token just obtained')
  t.equal(asked?.headers['user-agent'], 'mcp-oauth-gateway', 'and a User-Agent, which GitHub requires')
  t.match(logs.find((line) => line.event === 'code_issued'), { userId: 'gateway_user', upstreamUser: 'octocat' })
})

t.test('--upstream-allowed-users: a listed login (any case) signs in; anyone else gets a page and no code', async (t) => {
  const { app, github, logs } = await loggedGateway(t, (gh) => ({
    upstreamUserEndpoint: `${gh.origin}/user`,
    upstreamAllowedUsers: ['OctoCat', 'hubot']
  }))
  t.equal((await signIn(app)).statusCode, 302, 'octocat is allowed')
  github.user = { login: 'mallory', id: 9, orgs: ['octo-org'] }
  const refused = await signIn(app)
  t.equal(refused.statusCode, 403)
  t.equal(refused.headers.location, undefined, 'no redirect: the client gets no code')
  t.match(refused.body, '<h1>Not allowed</h1>')
  t.match(refused.body, 'as mallory, who may not use this gateway')
  t.notOk(restCalls(github).includes('GET /user/orgs?per_page=100'), 'organisations are not asked for')
  t.match(logs.find((line) => line.msg === 'upstream user not allowed'),
    { level: WARN, upstreamUser: 'mallory', upstreamTokenRevoked: true })
  const revoked = github.requests.filter((r) => r.method === 'DELETE')
  t.same(revoked.map((r) => r.path), [`/applications/${github.clientId}/token`], 'the token was revoked at GitHub')
  const token = (JSON.parse(revoked[0]?.body ?? '{}') as { access_token: string }).access_token
  t.notOk(github.isValidAccessToken(token), 'and no longer works')
  t.equal(logs.filter((line) => line.event === 'code_issued').length, 1, 'only octocat got a code')
})

t.test('--upstream-allowed-orgs: members sign in, others do not; with users too, either list is enough', async (t) => {
  const { app, github } = await loggedGateway(t, (gh) => ({
    upstreamUserEndpoint: `${gh.origin}/user`,
    upstreamAllowedOrgs: ['Octo-Org'],
    upstreamAllowedUsers: ['hubot']
  }))
  t.equal((await signIn(app)).statusCode, 302, 'a member of octo-org')
  t.ok(restCalls(github).includes('GET /user/orgs?per_page=100'))
  github.user = { login: 'outsider', id: 10, orgs: ['other-org'] }
  t.equal((await signIn(app)).statusCode, 403, 'a member of another org only')
  github.user = { login: 'hubot', id: 11, orgs: [] }
  t.equal((await signIn(app)).statusCode, 302, 'no org, but a listed user')
})

t.test('an upstream that cannot say who signed in: refused with allow-lists, let in (with a warning) without', async (t) => {
  const open = await loggedGateway(t, (gh) => ({ upstreamUserEndpoint: `${gh.origin}/no-such-api` }))
  const res = await signIn(open.app)
  t.equal(res.statusCode, 302, 'no allow-lists: the sign-in goes on')
  t.match(open.logs.find((line) => line.msg === 'upstream identity unavailable'), { level: WARN })
  t.notMatch(JSON.stringify(open.logs), /gho_/, 'the upstream token is in no log line')

  const strict = await loggedGateway(t, (gh) => ({
    upstreamUserEndpoint: `${gh.origin}/no-such-api`,
    upstreamAllowedUsers: ['octocat']
  }))
  const refused = await signIn(strict.app)
  t.equal(refused.statusCode, 502)
  t.match(refused.body, 'Could not check who you are')
  t.equal(refused.headers.location, undefined)
})

t.test('an OpenID Connect upstream: its userinfo names the person (sub, shown as preferred_username), and the allow-list matches it', async (t) => {
  let person = { sub: 'u-1', preferred_username: 'Jane' }
  const seen: string[] = []
  const userinfo = createServer((req, res) => {
    seen.push(req.headers.authorization ?? '')
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(person))
  })
  await new Promise<void>((resolve) => userinfo.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { userinfo.close() })
  const endpoint = `http://127.0.0.1:${(userinfo.address() as AddressInfo).port}/userinfo`
  const { app, logs } = await loggedGateway(t, { upstreamUserEndpoint: endpoint, upstreamAllowedUsers: ['jane'] })
  t.equal((await signIn(app)).statusCode, 302, 'jane is allowed')
  t.match(seen, [/^Bearer gho_/], 'asked with the upstream token')
  t.match(logs.find((line) => line.event === 'code_issued'), { upstreamUser: 'Jane' })
  person = { sub: 'u-2', preferred_username: 'mallory' }
  const refused = await signIn(app)
  t.equal(refused.statusCode, 403)
  t.match(refused.body, 'as mallory, who may not use this gateway')
  t.match(logs.find((line) => line.msg === 'upstream user not allowed'), { upstreamTokenRevoked: false },
    'no GitHub API to revoke it with')
})

t.test('configuration: GitHub upstreams ask api.github.com; allow-lists elsewhere need the endpoint', async (t) => {
  const github = parseGatewayOptions({ ...PLUGIN, upstreamRs: 'https://api.githubcopilot.com/mcp' }).options
  t.equal(github.upstreamUserEndpoint, 'https://api.github.com/user')
  const enterprise = parseGatewayOptions({
    ...PLUGIN,
    upstreamRs: 'https://mcp.example.com/mcp',
    upstreamAuthorizeEndpoint: 'https://github.com/login/oauth/authorize',
    upstreamTokenEndpoint: 'https://github.com/login/oauth/access_token'
  }).options
  t.equal(enterprise.upstreamUserEndpoint, 'https://api.github.com/user', 'github.com endpoints are GitHub too')
  const other = parseGatewayOptions({ ...PLUGIN, upstreamRs: 'https://mcp.example.com/mcp' }).options
  t.equal(other.upstreamUserEndpoint, undefined, 'another upstream: not asked')
  t.same([other.upstreamAllowedUsers, other.upstreamAllowedOrgs], [[], []])
  t.throws(() => parseGatewayOptions({ ...PLUGIN, upstreamRs: 'https://mcp.example.com/mcp', upstreamAllowedOrgs: 'acme' }),
    new ConfigError(['upstreamUserEndpoint: is required with upstream allow-lists when the upstream is not GitHub\'s']))
  t.throws(() => parseGatewayOptions({ ...PLUGIN, upstreamAllowedUsers: 'not a login!' }),
    { message: /^upstreamAllowedUsers: must be at most 64 comma-separated upstream user names$/ })
  t.same(parseGatewayOptions({ ...PLUGIN, upstreamAllowedUsers: 'OctoCat, hubot' }).options.upstreamAllowedUsers,
    ['octocat', 'hubot'])
})
