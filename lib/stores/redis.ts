import { Redis, type RedisOptions } from 'ioredis'
import { StoreUnavailableError } from './errors.js'
import type { Store } from './types.js'

export interface RedisStoreOptions {
  /** `redis://[:password@]host:port/db` or `rediss://…` for TLS. */
  url: string
  /** Put before every key, so several gateways (or test files) can share one Redis. */
  keyPrefix: string
  /** Bound on every command, milliseconds. */
  commandTimeoutMs?: number
}

/**
 * The store on Redis, one command per method: GET, SET PX, GETDEL and SET … PX … GET are atomic on
 * the server, so single use holds across replicas. Expiry is Redis's own. When Redis is down, commands
 * fail at once (no offline queue) or after the command timeout, as StoreUnavailableError; ioredis
 * reconnects by itself and service resumes when Redis is back.
 */
/** INCR, and the window's expiry set by the increment that created the counter: one round trip, atomic. */
const INCREMENT = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`

export class RedisStore implements Store {
  readonly client: Redis

  constructor (options: RedisStoreOptions) {
    const settings: RedisOptions = {
      keyPrefix: options.keyPrefix,
      commandTimeout: options.commandTimeoutMs ?? 2000,
      connectTimeout: options.commandTimeoutMs ?? 2000,
      // Fail fast while disconnected instead of queueing requests behind a dead connection.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
      lazyConnect: true
    }
    this.client = new Redis(options.url, settings)
    // Connection errors surface through the commands; unhandled 'error' events would crash the process.
    this.client.on('error', () => {})
  }

  /** Connects (or fails within the connect timeout). */
  async connect (): Promise<void> {
    await this.#run(async () => { await this.client.connect() })
  }

  async ping (): Promise<boolean> {
    try {
      return await this.client.ping() === 'PONG'
    } catch {
      return false
    }
  }

  async get<T> (key: string): Promise<T | undefined> {
    return parse<T>(await this.#run(async () => await this.client.get(key)))
  }

  async set<T> (key: string, value: T, ttlMs: number): Promise<void> {
    if (!(ttlMs > 0)) throw new RangeError(`store TTL must be positive, got ${ttlMs}`)
    await this.#run(async () => await this.client.set(key, JSON.stringify(value), 'PX', Math.ceil(ttlMs)))
  }

  async take<T> (key: string): Promise<T | undefined> {
    return parse<T>(await this.#run(async () => await this.client.getdel(key)))
  }

  async swap<T> (key: string, value: T, ttlMs: number): Promise<T | undefined> {
    if (!(ttlMs > 0)) throw new RangeError(`store TTL must be positive, got ${ttlMs}`)
    return parse<T>(await this.#run(async () => await this.client.set(key, JSON.stringify(value), 'PX', Math.ceil(ttlMs), 'GET')))
  }

  async increment (key: string, ttlMs: number): Promise<number> {
    if (!(ttlMs > 0)) throw new RangeError(`store TTL must be positive, got ${ttlMs}`)
    return await this.#run(async () => await this.client.eval(INCREMENT, 1, key, Math.ceil(ttlMs)) as number)
  }

  async delete (key: string): Promise<void> {
    await this.#run(async () => await this.client.del(key))
  }

  async close (): Promise<void> {
    try {
      await this.client.quit()
    } catch {
      this.client.disconnect()
    }
  }

  async #run<R> (command: () => Promise<R>): Promise<R> {
    try {
      return await command()
    } catch (err) {
      throw new StoreUnavailableError(err)
    }
  }
}

function parse<T> (raw: string | null): T | undefined {
  return raw === null ? undefined : JSON.parse(raw) as T
}
