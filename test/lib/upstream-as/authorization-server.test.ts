import t from 'tap'
import { REDIRECT_URI, tiny, sendJson, github, make, forGithub, rejection } from '../../helpers/upstream-as.js'

/**
 * The client of the upstream AS (lib/upstream-as/authorization-server.ts):
 * one shared resolution, and the authorize URL.
 */

t.test('resolve is memoised, and concurrent callers share one discovery', async (t) => {
  const fake = await github(t)
  const { upstream } = forGithub(t, fake)
  const [a, b] = await Promise.all([upstream.resolve(), upstream.resolve()])
  t.same(a, b)
  await upstream.resolve()
  t.equal(fake.requests.length, 1)
})

t.test('issue 15 finding 12: a failed resolve is remembered for a while ' +
  '(callers share it, nothing is sent), then retried', async (t) => {
  let up = false
  const as = await tiny(t, (_req, res, _body, origin) => {
    if (up) sendJson(res, 200, { issuer: origin, authorization_endpoint: `${origin}/a`, token_endpoint: `${origin}/t` })
    else res.writeHead(503).end()
  })
  const { upstream, clock } = make(t, { resourceUrl: 'https://rs.example/mcp', issuerUrl: as.origin, clientId: 'id' })
  const concurrent = await Promise.all([1, 2, 3].map(async () => await rejection(upstream.resolve())))
  t.same(concurrent.map((err) => err.kind), ['discovery', 'discovery', 'discovery'],
    'concurrent callers share the failure')
  const attempt = as.requests.length
  t.equal(attempt, 2, 'one attempt: the two metadata locations of an issuer without a path')

  up = true
  for (let i = 0; i < 20; i++) t.equal((await rejection(upstream.resolve())).kind, 'discovery')
  clock.advance(9_999)
  t.equal((await rejection(upstream.resolve())).kind, 'discovery', 'still remembered just before the retry time')
  t.equal(as.requests.length, attempt, 'no request while the failure is remembered')

  clock.advance(1)
  t.equal((await upstream.resolve()).endpoints.tokenEndpoint, `${as.origin}/t`,
    'then the next call retries, and succeeds')
  t.equal(as.requests.length, attempt + 1)
})

t.test('authorize URL', async (t) => {
  const fake = await github(t)
  const { upstream } = forGithub(t, fake)
  const url = new URL(await upstream.authorizeUrl({ state: 's t&=+#', codeChallenge: 'c'.repeat(43) }))
  t.equal(url.origin + url.pathname, fake.authorizeEndpoint)
  t.same(Object.fromEntries(url.searchParams), {
    response_type: 'code',
    client_id: fake.clientId,
    redirect_uri: REDIRECT_URI,
    state: 's t&=+#',
    code_challenge: 'c'.repeat(43),
    code_challenge_method: 'S256',
    scope: 'repo read:org gist notifications user user:email'
  }, 'a state with URL metacharacters survives (landscape bug 6)')
  const own = new URL(await upstream.authorizeUrl({ state: 's', codeChallenge: 'c', scopes: ['repo,gist', 'repo'] }))
  t.equal(own.searchParams.get('scope'), 'repo gist', 'space-separated upstream scopes (landscape bug 16)')
  const none = new URL(await upstream.authorizeUrl({ state: 's', codeChallenge: 'c', scopes: [] }))
  t.notOk(none.searchParams.has('scope'), 'scope is omitted when empty')
})
