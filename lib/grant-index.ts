import { setTimeout as sleep } from 'node:timers/promises'
import type { Clock } from './clock.js'
import { hashSecret } from './crypto.js'
import { StoreUnavailableError } from './stores/errors.js'
import { storeKind } from './stores/records.js'
import type { Store } from './stores/types.js'
import { BoundedTtlCache } from './ttl-cache.js'

/*
 * Who holds which grants, for the account page (/account) and the operator's `grants` command: the store is a
 * key-value store without scans, so each person's grant ids are kept under one key, and the people who hold any
 * under another. Both are indexes, never the truth: a grant is live only while its own record is, so an id whose
 * grant is gone is dropped when it is next listed, and an index that holds a dead id costs nothing but that.
 */

/** An index: each member's id, with when its lease ends (epoch ms); expired members are as good as absent. */
export interface IndexRecord {
  version: number
  members: Record<string, number>
}

/** The people an index of people holds at most: a users file's own bound. */
export const MAX_INDEXED_USERS = 100_000
/** How often one process writes a grant's "last used" time at most. */
export const USED_EVERY_MS = 5 * 60_000
/** Conditional writes lost to other writers before an index update gives up (503). */
const MAX_ATTEMPTS = 30
/** The most a writer that lost waits, times its attempts, before it reads again (real time: it waits for writers). */
const BACKOFF_MS = 4
const USED_CACHE_MAX = 10_000

export const indexKey = {
  /** One person's grants, under a hash of their name: user names are not secret, but keys stay uniform. */
  user: (userId: string): string => `user-grants:${hashSecret(userId)}`,
  /** Everyone who holds a grant: the operator's `grants list` without --user. */
  users: 'grant-users',
  /** When a grant's tokens were last used, to USED_EVERY_MS: apart from the grant, so it never races its writes. */
  used: (grantId: string): string => `grant-used:${grantId}`
}

export interface GrantIndexOptions {
  store: Store
  clock: Clock
  /** Grants one person may hold at once; past it new ones are refused, and none is evicted. */
  maxPerUser: number
  /** People the index of people holds at once (MAX_INDEXED_USERS unless a test says otherwise). */
  maxUsers?: number
}

/** The index behind the account page and the operator's commands: lib/grants.ts keeps it as grants come and go. */
export class GrantIndex {
  readonly #store: Store
  readonly #clock: Clock
  readonly #maxPerUser: number
  readonly #maxUsers: number
  /** Grants whose use this process wrote lately: a proxied request costs no store write. */
  readonly #used: BoundedTtlCache<true>

  constructor (options: GrantIndexOptions) {
    this.#store = options.store
    this.#clock = options.clock
    this.#maxPerUser = options.maxPerUser
    this.#maxUsers = options.maxUsers ?? MAX_INDEXED_USERS
    this.#used = new BoundedTtlCache(USED_CACHE_MAX, options.clock)
  }

  /**
   * Records that `userId` holds the grant until `expiresAt` (or later, if it said so before). False, writing
   * nothing for this grant, when the person already holds `maxPerUser` live grants (or the index of people is full):
   * the caller refuses the grant rather than let it live where its holder cannot see or revoke it.
   */
  async put (userId: string, grantId: string, expiresAt: number): Promise<boolean> {
    const held = await this.#update(indexKey.user(userId), (members) => {
      if (!(grantId in members) && Object.keys(members).length >= this.#maxPerUser) return undefined
      members[grantId] = Math.max(members[grantId] ?? 0, expiresAt)
      return members
    })
    if (!held) return false
    const listed = await this.#update(indexKey.users, (members) => {
      if (!(userId in members) && Object.keys(members).length >= this.#maxUsers) return undefined
      members[userId] = Math.max(members[userId] ?? 0, expiresAt)
      return members
    })
    if (!listed) await this.remove(userId, [grantId])
    return listed
  }

  /**
   * Drops grants from a person's index (revoked, or found gone). The person stays in the index of people until
   * their latest lease ends: taking them out here could race a new grant of theirs, and an extra name lists nothing.
   */
  async remove (userId: string, grantIds: readonly string[]): Promise<void> {
    await this.#update(indexKey.user(userId), (members) => {
      for (const id of grantIds) delete members[id]
      return members
    })
  }

  /** The ids of the grants the person holds, as far as the index knows (their records may be gone since). */
  async grantIds (userId: string): Promise<string[]> {
    return Object.keys(live(await this.#store.get<IndexRecord>(indexKey.user(userId)), this.#clock.now()))
  }

  /** Everyone who holds a grant, as far as the index knows, sorted. */
  async users (): Promise<string[]> {
    return Object.keys(live(await this.#store.get<IndexRecord>(indexKey.users), this.#clock.now())).sort()
  }

  /**
   * A token of the grant was just used: written at most once every USED_EVERY_MS by this process, under a key of
   * its own that lives as long as the grant may. Never throws: a lost "last used" must not fail a request.
   */
  async markUsed (grantId: string, grantExpiresAt: number): Promise<void> {
    const now = this.#clock.now()
    if (this.#used.get(grantId) !== undefined || grantExpiresAt <= now) return
    this.#used.set(grantId, true, now + USED_EVERY_MS)
    await this.#store.set(indexKey.used(grantId), { at: now }, grantExpiresAt - now).catch(() => {
      this.#used.delete(grantId)
    })
  }

  /** When the grant was last used, to USED_EVERY_MS; undefined when never (since this was recorded). */
  async lastUsed (grantId: string): Promise<number | undefined> {
    return (await this.#store.get<{ at: number }>(indexKey.used(grantId)))?.at
  }

  /** Forgets the grant's use (revoked): nothing is left of it. */
  async forgetUse (grantId: string): Promise<void> {
    this.#used.delete(grantId)
    await this.#store.delete(indexKey.used(grantId))
  }

  /**
   * Changes an index with conditional writes: `change` gets the live members (to change in place) and returns
   * them, or undefined to refuse (false). It may run more than once, so it must give the same answer again.
   * The first writer creates the record with swap(); one that finds it created meanwhile puts back what it
   * replaced, so concurrent creations lose no member.
   */
  async #update (
    key: string,
    change: (members: Record<string, number>) => Record<string, number> | undefined
  ): Promise<boolean> {
    let carried: Record<string, number> = {}
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const now = this.#clock.now()
      const current = await this.#store.get<IndexRecord>(key)
      const members = change(merge(live(current, now), live({ version: 0, members: carried }, now)))
      if (members === undefined) return false
      const leaseEnd = Math.max(now + 1, ...Object.values(members))
      const record: IndexRecord = { version: (current?.version ?? 0) + 1, members }
      if (current === undefined) {
        if (Object.keys(members).length === 0) return true
        const previous = await this.#store.swap<IndexRecord>(key, record, leaseEnd - now)
        if (previous === undefined) return true
        carried = merge(carried, previous.members)
      } else if (await this.#store.replace(key, current.version, record, leaseEnd - now)) {
        return true
      }
      // Spread the writers that lost, so that one of them wins each round.
      await sleep(Math.random() * BACKOFF_MS * (attempt + 1))
    }
    throw new StoreUnavailableError(new Error(`${storeKind(key)}: too many concurrent writers`))
  }
}

/** The members whose lease has not ended. */
function live (record: IndexRecord | undefined, now: number): Record<string, number> {
  const members: Record<string, number> = {}
  for (const [id, until] of Object.entries(record?.members ?? {})) if (until > now) members[id] = until
  return members
}

/** Both sets of members, each with the later of its leases. */
function merge (a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const merged = { ...a }
  for (const [id, until] of Object.entries(b)) merged[id] = Math.max(merged[id] ?? 0, until)
  return merged
}
