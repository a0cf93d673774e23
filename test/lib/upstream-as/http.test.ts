import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { Agent } from 'undici'
import type { Dispatcher } from 'undici'
import { forGithub, forTiny, github, make, rejection, tiny } from '../../helpers/upstream-as.js'

/** Bounded outbound HTTP (lib/upstream-as/http.ts): failures, deadlines and the body cap, seen through the client. */

t.test('network failures', async (t) => {
  t.test('a closed port is unreachable, in discovery and at the token endpoint', async (t) => {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as AddressInfo).port
    await new Promise<void>((resolve) => server.close(() => resolve()))
    const dead = `http://127.0.0.1:${port}`

    const discovery = await rejection(make(t, { resourceUrl: `${dead}/mcp`, clientId: 'id' }).upstream.resolve())
    t.equal(discovery.kind, 'unreachable')
    t.match(discovery.message, `upstream MCP server ${dead}/mcp is unreachable (ECONNREFUSED)`)

    const { upstream } = make(t, {
      resourceUrl: `${dead}/mcp`,
      authorizeEndpoint: `${dead}/a`,
      tokenEndpoint: `${dead}/t`,
      clientId: 'id',
      clientSecret: 'secret-value'
    })
    const token = await rejection(upstream.exchangeCode({ code: 'code-value', codeVerifier: 'verifier-value' }))
    t.equal(token.kind, 'unreachable')
    t.notMatch(token.message, /secret-value|code-value|verifier-value/)
  })

  t.test('a body that stalls times out', async (t) => {
    const as = await tiny(t,
      (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).write('{"access_token":') })
    const { upstream } = forTiny(t, as, { timeoutMs: 200 })
    t.equal((await rejection(upstream.exchangeCode({ code: 'c', codeVerifier: 'v' }))).kind, 'timeout')
  })

  t.test('a dispatcher failing in an unexpected way is reported as unreachable', async (t) => {
    for (const [thrown, reason] of [[new Error('boom'), '(Error)'], [{}, '(error)']] as const) {
      class Failing extends Agent {
        override dispatch (): boolean {
          throw thrown
        }
      }
      const dispatcher = new Failing()
      t.teardown(() => dispatcher.close())
      const settings = { resourceUrl: 'http://127.0.0.1:9/mcp', issuerUrl: 'http://127.0.0.1:9', dispatcher }
      const err = await rejection(make(t, settings).upstream.resolve())
      t.equal(err.kind, 'unreachable')
      t.match(err.message, reason)
    }
  })

  t.test('a reply over 1 MiB is cut off', async (t) => {
    const as = await tiny(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(`{"access_token":"${'a'.repeat(2 * 1024 * 1024)}"}`)
    })
    const { upstream } = forTiny(t, as)
    const err = await rejection(upstream.exchangeCode({ code: 'c', codeVerifier: 'v' }))
    t.equal(err.kind, 'bad_response')
    t.match(err.message, 'larger than 1048576 bytes')
  })

  t.test('a custom dispatcher is used', async (t) => {
    const fake = await github(t)
    let dispatched = 0
    class Counting extends Agent {
      override dispatch (options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
        dispatched++
        return super.dispatch(options, handler)
      }
    }
    const dispatcher = new Counting()
    t.teardown(() => dispatcher.close())
    const { upstream } = forGithub(t, fake, { dispatcher })
    await upstream.resolve()
    t.equal(dispatched, 1)
  })
})
