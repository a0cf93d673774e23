import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import gateway, { type GatewayPluginOptions } from '../../app.js'
import { ManualClock } from '../../lib/clock.js'
import { serializeRequest } from '../../lib/log.js'
import { startFakeGithub, type FakeGithub } from './fake-github.js'
import { SHARED_REDIS_URL, deletePrefix } from './redis.js'
import { gatewayOptions, testStore } from './gateway.js'

interface Teardown { teardown (fn: () => unknown): void }

/** One parsed pino line. */
export interface LogLine { level: number, msg: string, err?: { stack?: string, message?: string }, [key: string]: unknown }

export const ERROR_LEVEL = 50

/**
 * A gateway whose log lines (level info and up) are captured through a pino stream, for tests that assert
 * what is logged and at which level.
 */
export async function loggedGateway (t: Teardown, overrides: Partial<GatewayPluginOptions> = {}): Promise<{ app: FastifyInstance, github: FakeGithub, clock: ManualClock, logs: LogLine[] }> {
  const github = await startFakeGithub()
  t.teardown(() => github.close())
  const logs: LogLine[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line) as LogLine)
      done()
    }
  })
  const clock = new ManualClock(Date.now())
  const app = Fastify({ logger: { level: 'info', stream, serializers: { req: serializeRequest } } })
  const store = testStore()
  await app.register(gateway, gatewayOptions(github, clock, { ...store, ...overrides }))
  t.teardown(async () => {
    await app.close()
    if (store.storePrefix !== undefined) await deletePrefix(SHARED_REDIS_URL, store.storePrefix)
  })
  await app.ready()
  return { app, github, clock, logs }
}
