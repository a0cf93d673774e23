// Who signed in upstream (issue 19): GitHub's /user and /user/orgs, or OIDC userinfo, read defensively; allow-lists.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { fetchUpstreamIdentity, identityAllowed, restricts, revokeGithubToken } from '../../lib/upstream-identity.js'

const octocat = { login: 'OctoCat', id: '583231', orgs: ['octo-org', 'github'] }

t.test('allow-lists: none lets anyone in; otherwise a listed login or a listed org, compared lowercase', async (t) => {
  const none = { allowedUsers: [], allowedOrgs: [] }
  t.notOk(restricts(none))
  t.ok(identityAllowed(octocat, none))
  t.ok(identityAllowed(octocat, { allowedUsers: ['octocat'], allowedOrgs: [] }))
  t.ok(identityAllowed(octocat, { allowedUsers: [], allowedOrgs: ['github'] }))
  t.ok(identityAllowed(octocat, { allowedUsers: ['hubot'], allowedOrgs: ['octo-org'] }), 'either list')
  t.notOk(identityAllowed(octocat, { allowedUsers: ['hubot'], allowedOrgs: ['acme'] }))
  t.notOk(identityAllowed({ login: 'x', id: '1' }, { allowedUsers: [], allowedOrgs: ['acme'] }), 'orgs unknown: none')
})

t.test('what the user endpoint answers is checked: a login and an id, JSON, HTTP 200', async (t) => {
  const answers = new Map<string, [number, string]>([
    ['/ok', [200, '{"login":"octocat","id":583231}']],
    ['/ok/orgs', [200, '[{"login":"Octo-Org"},{"id":5},null]']],
    ['/noid', [200, '{"login":"octocat"}']],
    ['/text', [200, 'not json']],
    ['/text-orgs', [200, '{"login":"octocat","id":"u1"}']],
    ['/text-orgs/orgs', [200, '<html>']],
    ['/object-orgs', [200, '{"login":"octocat","id":1}']],
    ['/object-orgs/orgs', [200, '{"message":"odd"}']],
    ['/oidc', [200, '{"sub":"248289761001","preferred_username":"jane","email":"jane@example.com"}']],
    ['/oidc-email', [200, '{"sub":"248289761001","preferred_username":"","email":"jane@example.com"}']],
    ['/oidc-sub', [200, '{"sub":"248289761001"}']],
    ['/oidc-empty', [200, '{"sub":""}']]
  ])
  const server = createServer((req, res) => {
    const [status, body] = answers.get(new URL(req.url ?? '/', 'http://x').pathname) ?? [401, '{"message":"Bad credentials"}']
    res.writeHead(status, { 'content-type': 'application/json' }).end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const options = { withOrgs: true, timeoutMs: 2000 }
  t.same(await fetchUpstreamIdentity(`${base}/ok`, 'tok', options), { login: 'octocat', id: '583231', orgs: ['octo-org'] })
  t.same(await fetchUpstreamIdentity(`${base}/ok`, 'tok', { ...options, withOrgs: false }), { login: 'octocat', id: '583231' })
  t.same(await fetchUpstreamIdentity(`${base}/object-orgs`, 'tok', options), { login: 'octocat', id: '1', orgs: [] },
    'orgs that are not a list: none')
  await t.rejects(fetchUpstreamIdentity(`${base}/noid`, 'tok', options), { kind: 'bad_response', message: /without a login and an id/ })
  const oidc = { withOrgs: false, timeoutMs: 2000 }
  t.same(await fetchUpstreamIdentity(`${base}/oidc`, 'tok', oidc), { login: 'jane', id: '248289761001' }, 'OIDC userinfo: sub, shown as preferred_username')
  t.same(await fetchUpstreamIdentity(`${base}/oidc-email`, 'tok', oidc), { login: 'jane@example.com', id: '248289761001' }, 'else the email')
  t.same(await fetchUpstreamIdentity(`${base}/oidc-sub`, 'tok', oidc), { login: '248289761001', id: '248289761001' }, 'else the sub itself')
  await t.rejects(fetchUpstreamIdentity(`${base}/oidc-empty`, 'tok', oidc), { message: /or a sub/ })
  await t.rejects(fetchUpstreamIdentity(`${base}/text`, 'tok', options), { message: /not JSON/ })
  await t.rejects(fetchUpstreamIdentity(`${base}/text-orgs`, 'tok', options), { message: /not JSON/ })
  await t.rejects(fetchUpstreamIdentity(`${base}/missing`, 'tok', options), { status: 401, message: /answered HTTP 401/ })
})

t.test('revoking a refused person\'s GitHub token: with the app\'s credentials, only where GitHub\'s API is', async (t) => {
  const seen: string[] = []
  const server = createServer((req, res) => {
    seen.push(`${req.method ?? ''} ${req.url ?? ''} ${req.headers.authorization ?? ''}`)
    res.writeHead(req.url === '/applications/app%2F1/token' ? 204 : 404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const app = { clientId: 'app/1', clientSecret: 's3cret', authMethod: 'client_secret_post' as const }
  t.ok(await revokeGithubToken(`${base}/user`, app, 'gho_x', 2000))
  t.same(seen, [`DELETE /applications/app%2F1/token Basic ${Buffer.from('app/1:s3cret').toString('base64')}`])
  t.notOk(await revokeGithubToken(`${base}/user`, { ...app, clientId: 'other' }, 'gho_x', 2000), 'not 204: false')
  t.notOk(await revokeGithubToken(`${base}/me`, app, 'gho_x', 2000), 'not GitHub\'s shape: not asked')
  t.notOk(await revokeGithubToken(`${base}/user`, { clientId: 'app', authMethod: 'none' }, 'gho_x', 2000), 'no secret')
  t.equal(seen.length, 2)
})
