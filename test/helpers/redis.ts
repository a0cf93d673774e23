import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { basename } from 'node:path'

/** The project's Redis (every machine and CI has it on 127.0.0.1:6379). */
export const SHARED_REDIS_URL = process.env.MCP_GATEWAY_TEST_REDIS ?? 'redis://127.0.0.1:6379/0'

/** A key prefix unique to one test file and run, so files running in parallel never see each other's keys. */
export function testPrefix (file: string): string {
  return `test:${basename(file).replace(/\.test\.ts$/, '')}:${randomBytes(4).toString('hex')}:`
}

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/**
 * A Redis of the test's own, on a free loopback port, that the test may stop and start again (fault
 * tests must not take the shared Redis away from other test files running at the same time).
 */
export class PrivateRedis {
  readonly port: number
  #process: ChildProcess | undefined

  private constructor (port: number) {
    this.port = port
  }

  static async start (): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort())
    await redis.resume()
    return redis
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}/0`
  }

  async resume (): Promise<void> {
    this.#process = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
    for (let i = 0; i < 100; i++) {
      if (await this.#answers()) return
      await sleep(20)
    }
    throw new Error('private redis did not start')
  }

  async stop (): Promise<void> {
    const child = this.#process
    if (child === undefined || child.exitCode !== null) return
    await new Promise<void>((resolve) => { child.once('exit', () => resolve()); child.kill('SIGKILL') })
    this.#process = undefined
  }

  async #answers (): Promise<boolean> {
    const { Redis } = await import('ioredis')
    const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false })
    probe.on('error', () => {})
    try {
      await probe.connect()
      return await probe.ping() === 'PONG'
    } catch {
      return false
    } finally {
      probe.disconnect()
    }
  }
}

/** Removes every key under a test prefix: test runs must not leave state in the shared Redis. */
export async function deletePrefix (url: string, prefix: string): Promise<void> {
  const { Redis } = await import('ioredis')
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  try {
    await client.connect()
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
      if (keys.length > 0) await client.del(...keys)
      cursor = next
    } while (cursor !== '0')
  } finally {
    client.disconnect()
  }
}
