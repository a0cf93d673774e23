import { Writable } from 'node:stream'
import { serializeRequest } from '../../lib/log.js'
import { buildGateway, type GatewayOverrides, type TestGateway } from './gateway.js'
import type { Teardown } from './teardown.js'

/** One parsed pino line. */
export interface LogLine {
  level: number
  msg: string
  err?: { stack?: string, message?: string }
  [key: string]: unknown
}

export const ERROR_LEVEL = 50

/**
 * A gateway whose log lines (level info and up) are captured through a pino stream, for tests that assert
 * what is logged and at which level.
 */
export async function loggedGateway (
  t: Teardown,
  overrides: GatewayOverrides = {}
): Promise<TestGateway & { logs: LogLine[] }> {
  const logs: LogLine[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line) as LogLine)
      done()
    }
  })
  const built = await buildGateway(t, overrides, {}, { level: 'info', stream, serializers: { req: serializeRequest } })
  return { ...built, logs }
}
