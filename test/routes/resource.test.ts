import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { createPkcePair } from '../../lib/pkce.js'
import { authorizeFully, authorizeUrl, buildGateway, exchangeCode, PUBLIC_URL, registerClient, tokenRequest, type RegisteredClient } from '../helpers/gateway.js'
import { challengeParams, echo, mcpStack } from '../helpers/mcp-stack.js'
import { rawRequest } from '../helpers/raw-http.js'

/*
 * RFC 8707 resource indicators across /authorize, /token and the proxy (issue 16 item 3): one policy
 * (lib/resource.ts) decides what a client may send and what its tokens are bound to.
 */

const GATEWAY = `${PUBLIC_URL}/mcp`
const REPOS = `${GATEWAY}/x/repos`

/** Sign-in with `resource` at /authorize, then the code exchange with `tokenResource` (omitted when undefined). */
async function signIn (
  app: FastifyInstance,
  client: RegisteredClient,
  resource: string,
  tokenResource: string | undefined = resource
): Promise<LightMyRequestResponse> {
  const done = await authorizeFully(app, client, { resource })
  const extra: Record<string, string> = tokenResource === undefined ? {} : { resource: tokenResource }
  return await exchangeCode(app, client, done.code, done.verifier, extra)
}

const refresh = async (
  app: FastifyInstance,
  client: RegisteredClient,
  refreshToken: string,
  resource?: string
): Promise<LightMyRequestResponse> =>
  await tokenRequest(app, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: client.client_id, ...(resource === undefined ? {} : { resource }) })

t.test('issue 16 item 3: a sub-path resource accepted at /authorize gets tokens at /token', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app)
  const res = await signIn(app, client, REPOS)
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json(), { access_token: /^gwa_/, refresh_token: /^gwr_/ })
  const omitted = await signIn(app, client, REPOS, undefined)
  t.equal(omitted.statusCode, 200, 'resource omitted at /token: the one bound at /authorize applies')
})

t.test('issue 16 item 3: case, trailing slash and default port are one resource at both steps', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app)
  for (const [atAuthorize, atToken] of [
    ['HTTP://LOCALHOST:8002/mcp', GATEWAY],
    [GATEWAY, 'HTTP://LOCALHOST:8002/mcp'],
    [`${GATEWAY}/`, `${GATEWAY}/`],
    ['http://LocalHost:8002/mcp/x/repos/', REPOS],
    [REPOS, 'HTTP://localhost:8002/mcp/x/repos/']
  ] as const) {
    const res = await signIn(app, client, atAuthorize, atToken)
    t.equal(res.statusCode, 200, `${atAuthorize} then ${atToken}: ${res.body}`)
  }
})

t.test('issue 16 item 3: the default port of an http public URL', async (t) => {
  const { app } = await buildGateway(t, { publicUrl: 'http://localhost' })
  const client = await registerClient(app)
  const res = await signIn(app, client, 'http://localhost:80/mcp/x/repos', 'HTTP://LOCALHOST/mcp/x/repos')
  t.equal(res.statusCode, 200, res.body)
  const back = await signIn(app, client, 'http://localhost/mcp', 'http://LOCALHOST:80/mcp/')
  t.equal(back.statusCode, 200, back.body)
})

t.test('issue 16 item 3: a resource outside the gateway is invalid_target at /authorize (redirect) and /token (400)', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app)
  const { challenge } = createPkcePair()
  const outside = [`${PUBLIC_URL}/other`, `${GATEWAY}/../x`, `${GATEWAY}/x/%2e%2e/%2e%2e/other`, `${GATEWAY}/x%2f..%2fy`, 'http://elsewhere.example/mcp', 'http://localhost:8003/mcp/x/repos', `${GATEWAY}?x=1`]
  for (const resource of outside) {
    const res = await app.inject(authorizeUrl(client, { challenge, resource }))
    t.equal(res.statusCode, 302, resource)
    const location = new URL(res.headers.location as string)
    t.equal(location.origin + location.pathname, client.redirect_uris[0], `${resource}: back to the client`)
    t.equal(location.searchParams.get('error'), 'invalid_target', resource)
  }
  const twoResources = await app.inject(`${authorizeUrl(client, { challenge, resource: GATEWAY })}&resource=${encodeURIComponent(REPOS)}`)
  t.equal(new URL(twoResources.headers.location as string).searchParams.get('error'), 'invalid_target', 'one grant, one resource')

  for (const resource of [...outside, REPOS]) {
    const res = await signIn(app, client, GATEWAY, resource)
    t.equal(res.statusCode, 400, resource)
    t.equal(res.json().error, 'invalid_target', `${resource}: not the resource bound at /authorize`)
  }
  const parent = await signIn(app, client, REPOS, GATEWAY)
  t.equal(parent.json().error, 'invalid_target', 'a code for /mcp/x/repos is not exchanged for /mcp tokens')
})

t.test('issue 16 item 3: refresh keeps the grant\'s resource, spelled any accepted way or omitted', async (t) => {
  const { app } = await buildGateway(t)
  const client = await registerClient(app)
  const tokens = (await signIn(app, client, REPOS)).json() as { refresh_token: string }
  for (const resource of [GATEWAY, `${GATEWAY}/x/y`, `${REPOS}/readonly`, 'http://elsewhere.example/mcp/x/repos']) {
    const res = await refresh(app, client, tokens.refresh_token, resource)
    t.equal(res.statusCode, 400, resource)
    t.equal(res.json().error, 'invalid_target', `${resource}: a different resource`)
  }
  const same = await refresh(app, client, tokens.refresh_token, 'HTTP://LOCALHOST:8002/mcp/x/repos/')
  t.equal(same.statusCode, 200, 'the same resource; the refused attempts did not spend the token')
  const omitted = await refresh(app, client, same.json().refresh_token)
  t.equal(omitted.statusCode, 200, 'omitted: the grant\'s')
})

t.test('issue 16 item 3: a token covers its bound resource and the paths below it, nothing else', async (t) => {
  const { app, client, mcp } = await mcpStack(t, {}, { mode: 'stateless' })
  const call = async (url: string, token: string): Promise<LightMyRequestResponse> => await app.inject({
    method: 'POST',
    url,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' },
    payload: echo(1, 'hi')
  })
  const repos = ((await signIn(app, client, REPOS)).json() as { access_token: string }).access_token
  for (const url of ['/mcp/x/repos', '/mcp/x/repos/', '/mcp/x/repos/readonly', '/mcp/x/repos?q=1']) {
    t.equal((await call(url, repos)).statusCode, 200, `a /mcp/x/repos token on ${url}`)
  }
  for (const url of ['/mcp/y', '/mcp', '/mcp/x', '/mcp/x/reposX', '/mcp/x/repos%2f..%2fy', '/mcp?x=/x/repos']) {
    const res = await call(url, repos)
    t.equal(res.statusCode, 401, `a /mcp/x/repos token on ${url}`)
    t.equal(challengeParams(res.headers['www-authenticate']).error, 'invalid_token', url)
  }
  // Over a socket, where nothing resolves the dot segments before the gateway sees them.
  await app.listen({ port: 0, host: '127.0.0.1' })
  const before = mcp.requests.length
  for (const target of ['/mcp/x/repos/../../y', '/mcp/x/repos/%2e%2e/%2E%2e/y']) {
    const res = await rawRequest(app, 'POST', target, { authorization: `Bearer ${repos}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, JSON.stringify(echo(1, 'hi')))
    t.notMatch(res.status, / 200 /, `${target}: refused`)
  }
  t.equal(mcp.requests.length, before, 'dot segments never reach the upstream')
  const prm = await rawRequest(app, 'GET', '/.well-known/oauth-protected-resource/mcp/%2e%2e/other', {})
  t.match(prm.status, / 404 /, 'and have no protected-resource metadata')

  const whole = ((await signIn(app, client, GATEWAY)).json() as { access_token: string }).access_token
  for (const url of ['/mcp', '/mcp/x/repos', '/mcp/y']) {
    t.equal((await call(url, whole)).statusCode, 200, `a /mcp token covers ${url}: every toolset view`)
  }
})
