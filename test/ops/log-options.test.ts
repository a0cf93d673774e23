import { Writable } from 'node:stream'
import Fastify from 'fastify'
import t from 'tap'
import { REDACT_PATHS, genReqId, loggerOptions, serializeRequest } from '../../lib/log.js'

/*
 * lib/log.ts on its own: what the standalone server's logger redacts and keeps, in one Fastify instance
 * whose log lines are collected in memory. test/ops/logs.test.ts checks the same through a whole flow.
 */

function collect (): { stream: Writable, lines: () => Array<Record<string, any>> } {
  const chunks: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString('utf8'))
      done()
    }
  })
  return { stream, lines: () => chunks.join('').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, any>) }
}

t.test('JSON lines: redacted secrets, err.code kept, the path without its query, our own request ids', async (t) => {
  const { stream, lines } = collect()
  const options = loggerOptions({ level: 'debug', pretty: false })
  t.equal(options.requestIdHeader, false, 'no request id header is trusted')
  const app = Fastify({ ...options, logger: { ...(options.logger as object), stream } })
  app.get('/upstream/callback', async (req) => {
    req.log.info({
      body: { code: 'body-code', password: 'p4ss', client_secret: 'cs', code_verifier: 'cv', refresh_token: 'rt', access_token: 'at', token: 'tk' },
      query: { code: 'query-code' },
      grant: { upstreamToken: 'ut', refreshToken: 'rt2', accessToken: 'at2', secret: 's' },
      upstream: { tokens: { a: 'held-access', r: 'held-refresh' } },
      unlocked: { key: 'grant-key' },
      err: { code: 'UND_ERR_SOCKET', message: 'other side closed' },
      headers: { authorization: 'Bearer h', cookie: 'c=1' }
    }, 'probe')
    return { ok: true }
  })
  t.teardown(() => app.close())
  const res = await app.inject({
    url: '/upstream/callback?code=from-github&state=s1',
    headers: { authorization: 'Bearer in-header', cookie: 'mcp-gateway-browser=cookie-value', 'x-request-id': 'forged-id' }
  })
  t.equal(res.statusCode, 200)

  const text = lines().map((l) => JSON.stringify(l)).join('\n')
  for (const secret of ['body-code', 'query-code', 'p4ss', '"cs"', '"cv"', '"rt"', '"at"', '"tk"', '"ut"', 'rt2', 'at2', '"s"', 'Bearer', 'cookie-value', 'from-github', 's1', 'held-access', 'held-refresh', 'grant-key']) {
    t.notMatch(text, secret, `${secret} is not logged`)
  }
  const probe = lines().find((l) => l.msg === 'probe')
  t.equal(probe?.err?.code, 'UND_ERR_SOCKET', 'err.code survives (no *.code redaction)')
  t.equal(probe?.body?.password, '[Redacted]', 'redacted, not dropped: the field shows it was there')

  const access = lines().filter((l) => l.msg === 'request completed')
  t.equal(access.length, 1, 'one access line for the request')
  t.notOk(lines().some((l) => l.msg === 'incoming request'), 'none when it comes in')
  t.same(Object.keys(access[0] ?? {}).filter((k) => !['level', 'time', 'pid', 'hostname', 'msg'].includes(k)).sort(),
    ['method', 'remoteAddress', 'reqId', 'responseTime', 'statusCode', 'url'], 'method, path, status, time, address and id: no headers')
  t.equal(access[0]?.url, '/upstream/callback', 'the path without the query string')
  t.equal(access[0]?.statusCode, 200)
  t.not(access[0]?.reqId, 'forged-id', 'X-Request-Id from the client is ignored')
  t.match(access[0]?.reqId, /^[0-9a-f-]{36}$/, 'a UUID')
})

t.test('the access line: an error in the response\'s hooks is logged at error level with it; a 404 once', async (t) => {
  const { stream, lines } = collect()
  const options = loggerOptions({ level: 'info', pretty: false })
  const app = Fastify({ ...options, logger: { ...(options.logger as object), stream } })
  app.addHook('onResponse', async (req) => { if (req.url === '/fails') throw new Error('hook failed') })
  app.get('/fails', async () => ({ ok: true }))
  t.teardown(() => app.close())
  t.equal((await app.inject({ url: '/fails' })).statusCode, 200)
  t.equal((await app.inject({ url: '/nope?code=query-code' })).statusCode, 404)
  const failed = lines().find((l) => l.url === '/fails')
  t.equal(failed?.msg, 'request errored')
  t.equal(failed?.level, 50, 'error level')
  t.equal(failed?.err?.message, 'hook failed')
  const missing = lines().filter((l) => typeof l.reqId === 'string' && l.reqId === lines().find((m) => m.url === '/nope')?.reqId)
  t.equal(missing.length, 1, 'one line for a 404, not a second "route not found" one')
  t.equal(missing[0]?.statusCode, 404)
  t.notMatch(JSON.stringify(lines()), 'query-code', 'and never its query string')
})

t.test('pretty output only when asked (server.ts asks when stdout is a terminal)', async (t) => {
  const json = loggerOptions({ level: 'info', pretty: false }).logger as Record<string, unknown>
  t.equal(json.transport, undefined, 'JSON lines by default')
  t.equal(json.level, 'info')
  const pretty = loggerOptions({ level: 'warn', pretty: true }).logger as { transport?: { target?: string } }
  t.equal(pretty.transport?.target, 'pino-pretty', 'pino-pretty for a terminal')
})

t.test('serializeRequest: raw requests too, and nothing it cannot see', async (t) => {
  t.same(serializeRequest({ method: 'GET', url: '/a?b=c', socket: { remoteAddress: '10.0.0.1', remotePort: 5 } }),
    { method: 'GET', url: '/a', remoteAddress: '10.0.0.1', remotePort: 5 }, 'an IncomingMessage: address from the socket')
  t.same(serializeRequest({ url: '/x#frag' }), { url: '/x' }, 'no fragment either')
  t.same(serializeRequest({ id: 'r1', url: '/plain', ip: '::1' }), { id: 'r1', url: '/plain', remoteAddress: '::1' }, 'a path without a query as is')
  t.same(serializeRequest({}), {}, 'empty in, empty out')
})

t.test('the exported list and id generator hosts reuse', async (t) => {
  t.notOk(REDACT_PATHS.includes('*.code'), 'never *.code')
  t.ok(REDACT_PATHS.includes('req.headers.authorization') && REDACT_PATHS.includes('*.client_secret'), 'the essentials')
  const ids = new Set(Array.from({ length: 100 }, () => genReqId()))
  t.equal(ids.size, 100, 'unique ids')
})
