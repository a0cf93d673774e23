import { Writable } from 'node:stream'
import Fastify from 'fastify'
import t from 'tap'
import cors from '../../plugins/cors.js'
import type { LogLine } from '../helpers/logged-gateway.js'

t.test('issue 15 finding 13: a browser origin refused at CORS preflight is logged at info, with the origin truncated to 200 characters', async (t) => {
  const logs: LogLine[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      logs.push(JSON.parse(chunk.toString()) as LogLine)
      done()
    }
  })
  const app = Fastify({ logger: { level: 'info', stream } })
  await app.register(async (scope) => {
    await scope.register(cors, { origins: ['https://allowed.example'], methods: ['POST'], allowHeaders: ['Content-Type'], exposeHeaders: [], maxAgeSeconds: 60 })
    scope.post('/thing', async () => ({ ok: true }))
  })
  t.teardown(() => app.close())
  const preflight = async (origin: string) => await app.inject({ method: 'OPTIONS', url: '/thing', headers: { origin, 'access-control-request-method': 'POST' } })

  const allowed = await preflight('https://allowed.example')
  t.equal(allowed.headers['access-control-allow-origin'], 'https://allowed.example')
  t.notOk(logs.some((line) => line.msg.includes('CORS')), 'an allowed origin is not worth a line')

  const longOrigin = `https://${'a'.repeat(300)}.example`
  const refused = await preflight(longOrigin)
  t.equal(refused.statusCode, 204)
  t.equal(refused.headers['access-control-allow-origin'], undefined, 'refused the CORS way')
  const line = logs.find((l) => l.msg === 'CORS preflight refused: origin not allowed')
  t.ok(line, 'one line says so')
  t.equal(line?.level, 30, 'at info')
  t.equal(line?.origin, longOrigin.slice(0, 200), 'with the origin, truncated')
})
