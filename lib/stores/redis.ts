import { randomBytes } from 'node:crypto'
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import { MalformedRecordError, StoreUnavailableError } from './errors.js'
import { storeKind } from './records.js'
import { parseRedisUrl } from './redis-url.js'
import type { Store } from './types.js'

export interface RedisStoreOptions {
  /** A URL parseRedisUrl() takes: one server, Sentinels or a cluster, each with or without TLS. */
  url: string
  /** Put before every key, so several gateways (or test files) can share one Redis. */
  keyPrefix: string
  /** Bound on every command, milliseconds. */
  commandTimeoutMs?: number
}

/** INCR, and the window's expiry set by the increment that created the counter: one round trip, atomic. */
const INCREMENT = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`

// The count of a kind (add()) is a sorted set, KEYS[2], of its keys scored by expiry in Redis's own
// milliseconds, so replicas with skewed clocks agree. Members are keys as the store's callers name them
// (ARGV[1]), without the prefix, so release() can name them too.

/** Drops the expired, then writes and counts the record unless the kind is at its bound. 1 written, 0 full. */
const ADD = `local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1`

/** GETDEL that also uncounts the key. */
const TAKE = `local value = redis.call('GET', KEYS[1])
if value then redis.call('DEL', KEYS[1]) end
redis.call('ZREM', KEYS[2], ARGV[1])
return value`

/** DEL that also uncounts the key. */
const DELETE = `redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])`

/** SET only over a record whose version (0 when it has none) is ARGV[1]: 1 written, 0 changed or gone. */
const REPLACE = `local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local ok, record = pcall(cjson.decode, current)
if not ok or type(record) ~= 'table' then return 0 end
if (tonumber(record.version) or 0) ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`

/** DEL only while the lock holds the caller's token. */
const UNLOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

/** The sorted set counting the records of a key's kind (under the store's prefix, as every key). */
export const countKey = (key: string): string => `index:${storeKind(key)}`

// On a cluster a key's kind is its hash tag, `{kind}:rest` and `index:{kind}`, so a record and its kind's count
// share a slot and each script stays one atomic call (no grant operation spans two keys: per-grant tags buy nothing).
const slotted = (key: string): string => `{${storeKind(key)}}${key.slice(storeKind(key).length)}`
const slottedCountKey = (key: string): string => `index:{${storeKind(key)}}`

/**
 * The store on Redis, one round trip per method: GET, SET PX, SET … PX … GET and the scripts above are
 * atomic on the server, so single use and the bounds of add() hold across replicas. Expiry is Redis's
 * own. When Redis is down, commands fail at once (no offline queue) or after the command timeout, as
 * StoreUnavailableError; ioredis reconnects by itself and service resumes when Redis is back.
 */
export class RedisStore implements Store {
  readonly client: Redis | Cluster
  /** The key and count key as stored (before the prefix): tagged on a cluster, as written elsewhere. */
  readonly keyOf: (key: string) => string
  readonly countKeyOf: (key: string) => string
  /** Channels are not prefixed by ioredis as keys are: the store puts its prefix before them itself. */
  readonly #prefix: string
  readonly #subscribers = new Set<Redis | Cluster>()

  constructor (options: RedisStoreOptions) {
    this.#prefix = options.keyPrefix
    const target = parseRedisUrl(options.url)
    // Never the URL itself: it may carry a password.
    if (target === undefined) throw new TypeError('RedisStore: url is not a Redis URL the store takes')
    const timeoutMs = options.commandTimeoutMs ?? 2000
    const retry = (attempt: number): number => Math.min(attempt * 200, 2000)
    const connection = { commandTimeout: timeoutMs, connectTimeout: timeoutMs, maxRetriesPerRequest: 1 }
    // Fail fast while disconnected instead of queueing requests behind a dead connection.
    const settings: RedisOptions = {
      ...connection,
      keyPrefix: options.keyPrefix,
      enableOfflineQueue: false,
      retryStrategy: retry,
      lazyConnect: true
    }
    if (target.mode === 'cluster') {
      this.client = new Cluster(target.nodes, {
        keyPrefix: options.keyPrefix,
        enableOfflineQueue: false,
        clusterRetryStrategy: retry,
        slotsRefreshTimeout: timeoutMs,
        lazyConnect: true,
        // With TLS, nodes keep the host names given so certificates match them (ioredis's advice for ElastiCache).
        ...(target.redisOptions.tls !== undefined
          ? { dnsLookup: (address: string, callback: (err: null, address: string) => void) => callback(null, address) }
          : {}),
        redisOptions: { ...connection, ...target.redisOptions }
      })
    } else {
      // Each connection attempt asks every Sentinel once, then fails: retryStrategy spaces the attempts, and
      // connect() is bounded (ioredis's own Sentinel retries would never give up).
      this.client = target.mode === 'sentinel'
        ? new Redis({ ...settings, ...target.options, sentinelRetryStrategy: () => null })
        : new Redis(target.url, settings)
    }
    this.keyOf = target.mode === 'cluster' ? slotted : (key) => key
    this.countKeyOf = target.mode === 'cluster' ? slottedCountKey : countKey
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
    return parse<T>(await this.#run(async () => await this.client.get(this.keyOf(key))))
  }

  async set<T> (key: string, value: T, ttlMs: number): Promise<void> {
    if (!(ttlMs > 0)) throw new RangeError(`store TTL must be positive, got ${ttlMs}`)
    await this.#run(async () => await this.client.set(this.keyOf(key), JSON.stringify(value), 'PX', Math.ceil(ttlMs)))
  }

  async take<T> (key: string): Promise<T | undefined> {
    return parse<T>(await this.#run(async () =>
      await this.client.eval(TAKE, 2, this.keyOf(key), this.countKeyOf(key), key) as string | null))
  }

  async swap<T> (key: string, value: T, ttlMs: number): Promise<T | undefined> {
    if (!(ttlMs > 0)) throw new RangeError(`store TTL must be positive, got ${ttlMs}`)
    return parse<T>(await this.#run(async () =>
      await this.client.set(this.keyOf(key), JSON.stringify(value), 'PX', Math.ceil(ttlMs), 'GET')))
  }

  async replace<T> (key: string, expectedVersion: number, value: T, ttlMs: number): Promise<boolean> {
    if (!(ttlMs > 0)) throw new RangeError(`store TTL must be positive, got ${ttlMs}`)
    const written = await this.#run(async () =>
      await this.client.eval(REPLACE, 1, this.keyOf(key), expectedVersion, JSON.stringify(value), Math.ceil(ttlMs)))
    return written === 1
  }

  async lock (key: string, ttlMs: number): Promise<string | undefined> {
    const token = randomBytes(16).toString('base64url')
    const taken = await this.#run(async () =>
      await this.client.set(this.keyOf(key), JSON.stringify(token), 'PX', Math.ceil(ttlMs), 'NX'))
    return taken === 'OK' ? token : undefined
  }

  async unlock (key: string, token: string): Promise<void> {
    await this.#run(async () => await this.client.eval(UNLOCK, 1, this.keyOf(key), JSON.stringify(token)))
  }

  async publish (channel: string, message: string): Promise<void> {
    await this.#run(async () => await this.client.publish(this.#prefix + channel, message))
  }

  /**
   * Subscribes on a second connection (a subscribed connection can run nothing else), opened on first
   * use. A message published while that connection was down is lost: callers keep a bound of their own.
   */
  async subscribe (channel: string, listener: (message: string) => void): Promise<() => Promise<void>> {
    const name = this.#prefix + channel
    // On a cluster a plain SUBSCRIBE is enough: Redis Cluster carries PUBLISH to every node.
    const subscriber = this.client instanceof Cluster
      ? this.client.duplicate()
      : this.client.duplicate({ keyPrefix: '' })
    subscriber.on('error', () => {})
    subscriber.on('message', (from: string, message: string) => { if (from === name) listener(message) })
    this.#subscribers.add(subscriber)
    // ioredis subscribes again by itself after a reconnection (autoResubscribe).
    await this.#run(async () => { await subscriber.connect(); await subscriber.subscribe(name) })
    return async () => {
      this.#subscribers.delete(subscriber)
      subscriber.removeAllListeners('message')
      // Nothing to flush on a subscriber: disconnect at once, even while Redis is away (quit would wait for it).
      subscriber.disconnect()
    }
  }

  async increment (key: string, ttlMs: number): Promise<number> {
    if (!(ttlMs > 0)) throw new RangeError(`store TTL must be positive, got ${ttlMs}`)
    return await this.#run(async () =>
      await this.client.eval(INCREMENT, 1, this.keyOf(key), Math.ceil(ttlMs)) as number)
  }

  async add<T> (key: string, value: T, ttlMs: number, max: number): Promise<boolean> {
    if (!(ttlMs > 0)) throw new RangeError(`store TTL must be positive, got ${ttlMs}`)
    const added = await this.#run(async () =>
      await this.client.eval(
        ADD,
        2,
        this.keyOf(key),
        this.countKeyOf(key),
        key,
        JSON.stringify(value),
        Math.ceil(ttlMs),
        max
      ))
    return added === 1
  }

  async release (key: string): Promise<void> {
    await this.#run(async () => await this.client.zrem(this.countKeyOf(key), key))
  }

  async delete (key: string): Promise<void> {
    await this.#run(async () => await this.client.eval(DELETE, 2, this.keyOf(key), this.countKeyOf(key), key))
  }

  async close (): Promise<void> {
    for (const subscriber of this.#subscribers) subscriber.disconnect()
    this.#subscribers.clear()
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
  if (raw === null) return undefined
  try {
    return JSON.parse(raw) as T
  } catch (err) {
    throw new MalformedRecordError(err)
  }
}
