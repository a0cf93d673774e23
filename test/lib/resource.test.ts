import t from 'tap'
import { checkBoundResource, isDotSegment, isWithinResource, normaliseResource, resolveResource } from '../../lib/resource.js'
import { OAuthError } from '../../lib/oauth-errors.js'

const GATEWAY = 'http://localhost:8002/mcp'

const targetError = (fn: () => unknown): string | undefined => {
  try {
    fn()
  } catch (err) {
    return err instanceof OAuthError ? err.error : 'not an OAuthError'
  }
  return undefined
}

t.test('normaliseResource: one spelling per resource (RFC 3986 §6.2.2, §6.2.3; issue 16 item 3)', async (t) => {
  for (const [value, canonical] of [
    ['http://localhost:8002/mcp', GATEWAY],
    ['HTTP://LOCALHOST:8002/mcp', GATEWAY],
    ['http://localhost:8002/mcp/', GATEWAY],
    ['http://localhost:8002/mcp/x/repos', `${GATEWAY}/x/repos`],
    ['Http://LocalHost:8002/mcp/x/repos/', `${GATEWAY}/x/repos`],
    ['http://gw.example:80/mcp', 'http://gw.example/mcp'],
    ['https://gw.example:443/mcp', 'https://gw.example/mcp'],
    ['https://gw.example', 'https://gw.example'],
    ['https://gw.example/mcp/x/%72epos', 'https://gw.example/mcp/x/%72epos']
  ] as const) t.equal(normaliseResource(value), canonical, value)
})

t.test('normaliseResource: refuses what is not one resource URL, or could be read as another path', async (t) => {
  for (const value of [
    'not a url', '/mcp', 'urn:x:mcp', 'ftp://localhost:8002/mcp', 'http://[bad/mcp',
    `${GATEWAY}?q=1`, `${GATEWAY}#f`, 'http://user:pw@localhost:8002/mcp',
    `${GATEWAY}//`, `${GATEWAY}//x`, `${GATEWAY}/../x`, `${GATEWAY}/x/..`, `${GATEWAY}/%2e%2E/x`, `${GATEWAY}/./x`,
    `${GATEWAY}/x%2f..%2fy`, `${GATEWAY}/x%5Cy`, 'http://localhost:8002\\mcp', `${GATEWAY}\\x`, `${GATEWAY}/x y`, `${GATEWAY}/%zz`
  ]) t.equal(normaliseResource(value), undefined, value)
})

t.test('isDotSegment: plain and percent-encoded dots only', async (t) => {
  for (const segment of ['.', '..', '%2e', '%2E.', '%2e%2e']) t.ok(isDotSegment(segment), segment)
  for (const segment of ['', '...', 'x.', '.x', '%2f']) t.notOk(isDotSegment(segment), segment)
})

t.test('isWithinResource: a resource covers itself and the paths below it, at a segment boundary', async (t) => {
  t.ok(isWithinResource(GATEWAY, GATEWAY))
  t.ok(isWithinResource(`${GATEWAY}/x/repos`, GATEWAY), 'a token for /mcp covers every toolset view')
  t.ok(isWithinResource(`${GATEWAY}/x/repos/readonly`, `${GATEWAY}/x/repos`))
  t.notOk(isWithinResource(`${GATEWAY}/x/y`, `${GATEWAY}/x/repos`), 'a sibling view')
  t.notOk(isWithinResource(`${GATEWAY}/x/reposX`, `${GATEWAY}/x/repos`), 'not a path below it')
  t.notOk(isWithinResource(GATEWAY, `${GATEWAY}/x/repos`), 'not the parent')
})

t.test('resolveResource (/authorize): the resource the grant is bound to (RFC 8707 §2; issue 16 item 3)', async (t) => {
  t.equal(resolveResource(undefined, GATEWAY), GATEWAY, 'omitted: the gateway\'s own')
  t.equal(resolveResource([], GATEWAY), GATEWAY)
  t.equal(resolveResource(undefined, 'HTTP://LOCALHOST:8002/mcp/'), GATEWAY, 'the default is canonical too')
  t.equal(resolveResource(undefined, 'not a url'), 'not a url', 'a gateway resource that does not normalise is kept as given')
  t.equal(resolveResource('HTTP://LOCALHOST:8002/mcp/', GATEWAY), GATEWAY)
  t.equal(resolveResource(`${GATEWAY}/x/repos`, GATEWAY), `${GATEWAY}/x/repos`, 'a sub-path is bound as itself')
  t.equal(resolveResource([`${GATEWAY}/x/repos`, 'http://LOCALHOST:8002/mcp/x/repos/'], GATEWAY), `${GATEWAY}/x/repos`, 'one resource, spelled twice')
  t.equal(resolveResource('http://gw.example:80/mcp', 'http://gw.example/mcp'), 'http://gw.example/mcp', 'default port')
  for (const value of ['http://localhost:8002/other', `${GATEWAY}/../x`, 'http://localhost:8002/mcpx', 'https://localhost:8002/mcp', 'http://elsewhere.example/mcp', 'http://localhost:8003/mcp', `${GATEWAY}?x=1`]) {
    t.equal(targetError(() => resolveResource(value, GATEWAY)), 'invalid_target', value)
  }
  t.equal(targetError(() => resolveResource([GATEWAY, `${GATEWAY}/x/repos`], GATEWAY)), 'invalid_target', 'two different resources: a grant has one audience')
  t.equal(targetError(() => resolveResource([GATEWAY, 'http://elsewhere.example/mcp'], GATEWAY)), 'invalid_target')
})

t.test('checkBoundResource (/token): a resource sent again names the bound one, however spelled', async (t) => {
  t.equal(targetError(() => checkBoundResource(undefined, GATEWAY)), undefined, 'omitted')
  t.equal(targetError(() => checkBoundResource(['HTTP://localhost:8002/mcp/', GATEWAY], GATEWAY)), undefined)
  t.equal(targetError(() => checkBoundResource(`${GATEWAY}/x/repos/`, `${GATEWAY}/x/repos`)), undefined, 'issue 16 item 3: a sub-path')
  t.equal(targetError(() => checkBoundResource('http://gw.example:80/mcp', 'http://gw.example/mcp')), undefined)
  t.equal(targetError(() => checkBoundResource(`${GATEWAY}/x/repos`, GATEWAY)), 'invalid_target', 'not another resource, even one below')
  t.equal(targetError(() => checkBoundResource(GATEWAY, `${GATEWAY}/x/repos`)), 'invalid_target', 'nor the one above')
  t.equal(targetError(() => checkBoundResource([GATEWAY, 'http://elsewhere.example/mcp'], GATEWAY)), 'invalid_target', 'every value counts')
  t.equal(targetError(() => checkBoundResource(`${GATEWAY}/x/../..`, GATEWAY)), 'invalid_target')
  t.equal(targetError(() => checkBoundResource(GATEWAY, 'not a url')), 'invalid_target', 'a bound value that never normalises matches nothing')
})
