import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Redis } from 'ioredis'
import t from 'tap'
import { SECRET } from '../helpers/gateway.js'
import { JOURNEY_OK, signInRefreshRevoke } from '../helpers/process.js'
import { CLUSTER_REDIS_URL, deletePrefix, testPrefix } from '../helpers/redis.js'

/*
 * Issue 16, Redis as teams run it: managed services hand out ACL users. The README's ACL line, as written there,
 * must be enough for a real gateway process (store, rate limiter, revocation messages) and deny it nothing.
 */

const README_ACL = readFileSync(new URL('../../README.md', import.meta.url), 'utf8').split('\n').filter((line) => line.startsWith('ACL SETUSER '))

const targets: Array<[string, string, number[]]> = [
  ['one server', 'redis://127.0.0.1:6379/0', [6379]],
  ['the test cluster', CLUSTER_REDIS_URL, CLUSTER_REDIS_URL.slice('redis-cluster://'.length).split(',').map((node) => Number(node.split(':')[1]))]
]

t.test('the README gives one ACL line, for the user `gateway` under the default prefix', async (t) => {
  t.equal(README_ACL.length, 1)
  t.match(README_ACL[0], /^ACL SETUSER gateway on >change-me .*~mcp-gateway:\* &mcp-gateway:\* /)
})

for (const [name, url, ports] of targets) {
  t.test(`issue 16: with the README's ACL user on ${name}, a gateway signs in, refreshes and revokes, and is denied nothing`, async (t) => {
    const user = `gw-acl-${randomBytes(4).toString('hex')}`
    const password = randomBytes(16).toString('hex')
    const prefix = testPrefix(import.meta.url)
    const rule = (README_ACL[0] as string).split(' ').slice(2)
      .map((word) => word === 'gateway' ? user : word === '>change-me' ? `>${password}` : word.replace('mcp-gateway:', prefix))
    // ACL users are per server: on a cluster, one on every node.
    const admins = ports.map((port) => new Redis({ host: '127.0.0.1', port }))
    t.teardown(async () => {
      for (const admin of admins) { await admin.call('ACL', 'DELUSER', user); admin.disconnect() }
      await deletePrefix(url, prefix)
    })
    for (const admin of admins) await admin.call('ACL', 'SETUSER', ...rule)

    const asUser = url.replace('://', `://${user}:${password}@`)
    const journey = await signInRefreshRevoke(t, asUser, prefix, SECRET)
    t.same(
      journey,
      { ...JOURNEY_OK, output: journey.output },
      'signed in, called a tool, refreshed, revoked: the revoked grant is refused',
      { output: journey.output }
    )

    // The rate limiter steps aside when Redis refuses it, so a missing command would go unseen but for Redis's log.
    const denied: unknown[] = []
    for (const admin of admins) denied.push(...(await admin.call('ACL', 'LOG', '1000') as unknown[]).filter((entry) => JSON.stringify(entry).includes(`"${user}"`)))
    t.same(denied, [], 'Redis denied the gateway no command, key or channel')

    const outside = new Redis({ host: '127.0.0.1', port: ports[0], username: user, password })
    t.teardown(() => outside.disconnect())
    await t.rejects(outside.get('not-the-gateway:key'), /NOPERM/, 'and the user reaches nothing outside its prefix')
  })
}
