import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import type { Cluster, Redis } from 'ioredis'

/** The three-node cluster scripts/redis-cluster.mjs starts before the tests (tap's `before`, .ci/run). */
export const CLUSTER_REDIS_URL = `redis-cluster://${(process.env.MCP_GATEWAY_TEST_CLUSTER_PORTS ?? '7101,7102,7103')
  .split(',').map((port) => `127.0.0.1:${port.trim()}`).join(',')}`

/**
 * The project's Redis (every machine and CI has it on 127.0.0.1:6379), or the test cluster in a file that
 * re-runs a suite on it (MCP_GATEWAY_TEST_REDIS=cluster, set before the suite is imported).
 */
export const SHARED_REDIS_URL = process.env.MCP_GATEWAY_TEST_REDIS === 'cluster'
  ? CLUSTER_REDIS_URL
  : process.env.MCP_GATEWAY_TEST_REDIS ?? 'redis://127.0.0.1:6379/0'

/** True in a re-run on the test cluster. */
export const ON_CLUSTER = SHARED_REDIS_URL.startsWith('redis-cluster://')

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
    const probe = new Redis(this.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      enableOfflineQueue: false
    })
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

/**
 * One Sentinel watching a PrivateRedis master, both on free loopback ports and stopped at teardown: a gateway
 * given only the Sentinel's address must find the master through it.
 */
export class PrivateSentinel {
  readonly master: PrivateRedis
  readonly port: number
  readonly name = 'gateway-test'
  readonly #process: ChildProcess
  readonly #dir: string

  private constructor (master: PrivateRedis, port: number, dir: string) {
    this.master = master
    this.port = port
    this.#dir = dir
    // Sentinel rewrites its configuration file, so it gets one of its own in a temporary directory.
    const config = join(dir, 'sentinel.conf')
    writeFileSync(config, `port ${port}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor ${this.name} 127.0.0.1 ${master.port} 1\n`)
    this.#process = spawn('redis-server', [config, '--sentinel'], { stdio: 'ignore' })
  }

  static async start (): Promise<PrivateSentinel> {
    const sentinel = new PrivateSentinel(await PrivateRedis.start(), await freePort(), mkdtempSync(join(tmpdir(), 'mcp-gateway-sentinel-')))
    const { Redis } = await import('ioredis')
    for (let i = 0; i < 100; i++) {
      const probe = new Redis({ port: sentinel.port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, enableOfflineQueue: false })
      probe.on('error', () => {})
      const named = await probe.connect().then(async () => await probe.call('SENTINEL', 'get-master-addr-by-name', sentinel.name), () => null)
      probe.disconnect()
      if (Array.isArray(named) && named[1] === String(sentinel.master.port)) return sentinel
      await sleep(50)
    }
    await sentinel.stop()
    throw new Error('private sentinel did not name its master')
  }

  /** The store URL of the master through this Sentinel. */
  get url (): string {
    return `redis-sentinel://127.0.0.1:${this.port}#${this.name}`
  }

  async stop (): Promise<void> {
    if (this.#process.exitCode === null && this.#process.signalCode === null) {
      await new Promise<void>((resolve) => { this.#process.once('exit', () => resolve()); this.#process.kill('SIGKILL') })
    }
    await this.master.stop()
    rmSync(this.#dir, { recursive: true, force: true })
  }
}

/** A connected client without a key prefix, to look at keys as they are stored (a cluster client on a cluster URL). */
export async function rawRedis (url: string): Promise<Redis | Cluster> {
  const { Cluster, Redis } = await import('ioredis')
  const { parseRedisUrl } = await import('../../lib/stores/redis-url.js')
  const target = parseRedisUrl(url)
  const client = target?.mode === 'cluster'
    ? new Cluster(target.nodes, {
      lazyConnect: true,
      redisOptions: { ...target.redisOptions, maxRetriesPerRequest: 1 }
    })
    : new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  await client.connect()
  return client
}

/** Removes every key under a test prefix: test runs must not leave state in the shared Redis. */
export async function deletePrefix (url: string, prefix: string): Promise<void> {
  const client = await rawRedis(url)
  try {
    // SCAN walks one server: on a cluster, walk each master, deleting key by key (one DEL may not span slots).
    for (const node of client.isCluster ? (client as Cluster).nodes('master') : [client as Redis]) {
      let cursor = '0'
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
        await Promise.all(keys.map(async (key) => await node.del(key)))
        cursor = next
      } while (cursor !== '0')
    }
  } finally {
    client.disconnect()
  }
}
