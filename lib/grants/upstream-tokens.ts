import { createHmac } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Clock } from '../clock.js'
import { hashSecret, holderPublicKey, openSealedTo, randomToken, safeEqual, sealTo, unseal } from '../crypto.js'
import { temporarilyUnavailable } from '../oauth-errors.js'
import type { Store } from '../stores/types.js'
import type { UpstreamTokens } from '../upstream-as/token-endpoint.js'
import {
  storeKey, type GrantRecord, type HeldUpstream, type SealedUpstream, type UnlockedGrant, type UpstreamTokenRecord
} from './records.js'

export interface UpstreamTokenSharesOptions {
  store: Store
  clock: Clock
  /** The operator's keys (the grant service's sealKeys): the first vouches for each holder's public key, all check. */
  sealKeys: readonly Buffer[]
  /** How long a writer may hold a share's lock: the upstream request timeout, as a refresh holds it too. */
  lockTtlMs: number
  /** When an upstream token that expires at `expiresAt` is renewed (UpstreamRefreshes.renewAt). */
  renewAt: (expiresAt: number) => number
}

/**
 * Grants of one share at most. Past it a new grant gets tokens of its own, as every grant did before
 * sharing: nothing is refused and no grant is dropped, so there is nothing for an operator to tune.
 */
const MAX_HOLDERS = 50
/** A holder whose grant is gone is dropped only this long after it joined: its grant may not be stored yet. */
const PRUNE_AFTER_MS = 60_000
const WRITE_ATTEMPTS = 5
const LOCK_POLL_MS = 20

/**
 * One set of upstream tokens per person (issue 19 part 3): GitHub keeps at most 10 tokens per user, app
 * and scope set and silently revokes the oldest, so a person who signs in from several clients, or
 * again, would lose grants without warning. The grants of one gateway user, one upstream user and one
 * scope set therefore hold one shared record: refreshed once for all of them, and ended upstream only
 * with the last.
 *
 * Secrets at rest stay as they were: each grant's copy of the tokens is sealed to a public key derived
 * from the grant's own key (lib/crypto.ts sealTo), which only its tokens unwrap. Whoever renews the
 * tokens (a new sign-in, a refresh) seals them for every holder, without being able to open anyone's copy.
 * Each public key is vouched for by an HMAC under the operator's secret, so that someone who can write to
 * the store, but lacks the secret, cannot slip in a key of their own and have the next renewal sealed to it.
 */
export class UpstreamTokenShares {
  readonly #o: UpstreamTokenSharesOptions
  readonly #macKeys: readonly Buffer[]

  constructor (options: UpstreamTokenSharesOptions) {
    this.#o = options
    this.#macKeys = options.sealKeys.map((key) => createHmac('sha256', key).update('upstream-tokens holder').digest())
  }

  /** The grant with its copy of the upstream tokens opened; undefined when its share no longer holds it. */
  async unlock (grant: GrantRecord, key: Buffer): Promise<UnlockedGrant | undefined> {
    if (grant.upstreamTokens === undefined) return await this.#adopt(grant, key)
    const record = await this.#o.store.get<UpstreamTokenRecord>(storeKey.upstreamTokens(grant.upstreamTokens))
    const held = record === undefined ? undefined : open(record, grant.id, key)
    return held === undefined ? undefined : { grant, key, upstream: held }
  }

  /** The share's current record, opened for the grant again (another grant, replica or sign-in may have renewed it). */
  async reread ({ grant, key }: UnlockedGrant): Promise<UnlockedGrant | undefined> {
    const stored = await this.#o.store.get<GrantRecord>(storeKey.grant(grant.id))
    return stored === undefined ? undefined : await this.unlock(stored, key)
  }

  /**
   * Gives a new grant (`grant.upstreamTokens` names its share) the tokens its sign-in just obtained, and moves
   * every grant of the share to them: the newest sign-in's tokens are the ones the upstream has just vouched
   * for (an older set may have been revoked there, which is often why the person signed in again).
   * The grant's share when it was full: one of its own.
   */
  async hold (
    grant: GrantRecord & { upstreamTokens: string },
    key: Buffer,
    tokens: UpstreamTokens
  ): Promise<UnlockedGrant> {
    const publicKey = holderPublicKey(key)
    const shareId = grant.upstreamTokens
    const record = await this.#locked(shareId, async () => await this.#write(shareId, true, (current) => {
      const holders = current === undefined ? {} : current.holders
      if (Object.keys(holders).length >= MAX_HOLDERS) return undefined
      const holder = { publicKey, sealed: '', since: this.#o.clock.now(), mac: this.#mac(shareId, grant.id, publicKey) }
      const joined = { ...holders, [grant.id]: holder }
      return this.#sealed(current, shareId, joined, tokens, grant.expiresAt)
    }))
    if (record === undefined) return await this.hold({ ...grant, upstreamTokens: randomToken() }, key, tokens)
    return { grant, key, upstream: open(record, grant.id, key) as HeldUpstream }
  }

  /**
   * Writes renewed tokens (a refresh) for every holder, over the record read: the new record, or undefined
   * when the record changed or went meanwhile (the caller reads it again).
   */
  async renew (read: UpstreamTokenRecord, tokens: UpstreamTokens): Promise<UpstreamTokenRecord | undefined> {
    const renewed = this.#sealed(read, read.id, read.holders, tokens, read.expiresAt)
    const ttl = Math.max(1, renewed.expiresAt - this.#o.clock.now())
    const written = await this.#o.store.replace(storeKey.upstreamTokens(read.id), read.version, renewed, ttl)
    return written ? renewed : undefined
  }

  /** Keeps the share at least as long as a grant that holds it now lasts (after a client's refresh). */
  async outlast (shareId: string, until: number): Promise<void> {
    await this.#write(shareId, false, (current) => current === undefined || current.expiresAt >= until
      ? undefined
      : { ...current, expiresAt: until, version: current.version + 1 })
  }

  /**
   * Takes a revoked grant out of its share: the share's record when that was its last holder (the caller
   * may then revoke the tokens upstream), or undefined.
   */
  async release (shareId: string, grantId: string): Promise<UpstreamTokenRecord | undefined> {
    let last: UpstreamTokenRecord | undefined
    await this.#write(shareId, false, (current) => {
      if (current?.holders[grantId] === undefined) return undefined
      const { [grantId]: _gone, ...holders } = current.holders
      if (Object.keys(holders).length === 0) last = current
      return { ...current, holders, version: current.version + 1 }
    })
    if (last !== undefined) await this.#o.store.delete(storeKey.upstreamTokens(shareId))
    return last
  }

  /**
   * The share's record with `tokens` sealed for each of `holders`, as a new generation. A holder whose public key
   * no configured secret vouches for was not written by a gateway: it is dropped, and gets nothing.
   */
  #sealed (
    current: UpstreamTokenRecord | undefined,
    id: string,
    holders: UpstreamTokenRecord['holders'],
    tokens: UpstreamTokens,
    expiresAt: number
  ): UpstreamTokenRecord {
    const payload = packUpstream(tokens)
    const sealedHolders: UpstreamTokenRecord['holders'] = {}
    for (const [grantId, holder] of Object.entries(holders)) {
      const vouched = this.#macKeys.some((key) => safeEqual(this.#mac(id, grantId, holder.publicKey, key), holder.mac))
      if (!vouched) continue
      sealedHolders[grantId] = {
        ...holder,
        sealed: sealTo(holder.publicKey, payload, holderLabel(id, grantId)),
        // Under the newest secret, so a retired one can be dropped.
        mac: this.#mac(id, grantId, holder.publicKey)
      }
    }
    return {
      id,
      generation: randomToken(),
      holders: sealedHolders,
      upstreamScopes: tokens.scopes.length > 0 ? tokens.scopes : current?.upstreamScopes ?? [],
      ...(tokens.expiresAt === undefined
        ? {}
        : { upstreamExpiresAt: tokens.expiresAt, upstreamRenewAt: this.#o.renewAt(tokens.expiresAt) }),
      expiresAt: Math.max(expiresAt, current?.expiresAt ?? 0),
      version: (current?.version ?? 0) + 1
    }
  }

  /** The operator's word (an HMAC under its secret) that `publicKey` is grant `grantId`'s key in share `shareId`. */
  #mac (shareId: string, grantId: string, publicKey: string, key = this.#macKeys[0] as Buffer): string {
    return createHmac('sha256', key).update(`${shareId}\n${grantId}\n${publicKey}`).digest('base64url')
  }

  /**
   * A conditional write of the share: `change` gets the stored record (undefined: none; with `prune`, without
   * the holders whose grant is gone) and returns the one to write, or undefined to write nothing. Repeated over
   * whatever another writer wrote in between.
   */
  async #write (
    id: string,
    prune: boolean,
    change: (current: UpstreamTokenRecord | undefined) => UpstreamTokenRecord | undefined
  ): Promise<UpstreamTokenRecord | undefined> {
    const key = storeKey.upstreamTokens(id)
    for (let attempt = 1; attempt <= WRITE_ATTEMPTS; attempt++) {
      const current = await this.#o.store.get<UpstreamTokenRecord>(key)
      const next = change(current === undefined || !prune ? current : await this.#pruned(current))
      if (next === undefined) return undefined
      const ttl = Math.max(1, next.expiresAt - this.#o.clock.now())
      // Only hold() creates a share, under the share's lock, so no two creations race.
      if (current === undefined) {
        await this.#o.store.set(key, next, ttl)
        return next
      }
      if (await this.#o.store.replace(key, current.version, next, ttl)) return next
    }
    throw temporarilyUnavailable('the upstream tokens kept changing')
  }

  /** The record without holders whose grant is gone (revoked, or expired) for a while. */
  async #pruned (record: UpstreamTokenRecord): Promise<UpstreamTokenRecord> {
    const now = this.#o.clock.now()
    const holders = { ...record.holders }
    for (const [grantId, holder] of Object.entries(record.holders)) {
      if (now - holder.since < PRUNE_AFTER_MS) continue
      if (await this.#o.store.get(storeKey.grant(grantId)) === undefined) delete holders[grantId]
    }
    return { ...record, holders }
  }

  /** Runs `work` under the share's lock, which an upstream refresh of the share holds too (lib/upstream-refresh.ts). */
  async #locked<T> (shareId: string, work: () => Promise<T>): Promise<T> {
    const lockKey = shareLockKey(shareId)
    // Real time, not the service's clock: the wait is for another process's HTTP request.
    const deadline = Date.now() + this.#o.lockTtlMs
    for (;;) {
      const token = await this.#o.store.lock(lockKey, this.#o.lockTtlMs)
      if (token !== undefined) {
        try {
          return await work()
        } finally {
          await this.#o.store.unlock(lockKey, token)
        }
      }
      if (Date.now() > deadline) throw temporarilyUnavailable('the upstream tokens are being renewed, try again')
      await sleep(LOCK_POLL_MS)
    }
  }

  /**
   * A grant written before tokens were shared holds its upstream tokens itself, sealed under its key: they
   * move to a share of the grant's own, so it stays signed in across the upgrade.
   */
  async #adopt (grant: GrantRecord, key: Buffer): Promise<UnlockedGrant | undefined> {
    if (grant.sealedUpstream === undefined) return undefined
    const tokens = JSON.parse(unseal([key], grant.sealedUpstream, grant.id)) as SealedUpstream
    const { sealedUpstream: _s, upstreamExpiresAt, upstreamRenewAt: _r, upstreamScopes, ...rest } = grant
    const adopted: GrantRecord & { upstreamTokens: string } = {
      ...rest,
      upstreamTokens: randomToken(),
      version: (grant.version ?? 0) + 1
    }
    const unlocked = await this.hold(adopted, key, {
      accessToken: tokens.a,
      ...(tokens.r === undefined ? {} : { refreshToken: tokens.r }),
      ...(upstreamExpiresAt === undefined ? {} : { expiresAt: upstreamExpiresAt }),
      scopes: upstreamScopes ?? [],
      tokenType: 'bearer'
    })
    const ttl = Math.max(1, grant.expiresAt - this.#o.clock.now())
    if (await this.#o.store.replace(storeKey.grant(grant.id), grant.version ?? 0, adopted, ttl)) return unlocked
    // Someone else adopted it (or revoked it) first: theirs stands.
    await this.release(adopted.upstreamTokens, grant.id)
    return await this.reread({ grant, key, upstream: unlocked.upstream })
  }
}

/**
 * The share a new grant's upstream tokens go to: the same for one gateway user, upstream user and upstream
 * scope set; a grant whose upstream user the gateway could not learn gets one of its own.
 */
export function shareIdFor (userId: string, upstreamUserId: string | undefined, scopes: readonly string[]): string {
  if (upstreamUserId === undefined) return randomToken()
  return hashSecret(JSON.stringify([userId, upstreamUserId, [...scopes].sort()]))
}

export function shareLockKey (shareId: string): string {
  return `lock:upstream-tokens:${shareId}`
}

/**
 * The grant's copy of the share's tokens, opened; undefined when the share does not hold the grant, or holds a copy
 * its key does not open (written by anyone but a gateway): as good as revoked, a 401 and not a 500.
 */
function open (record: UpstreamTokenRecord, grantId: string, key: Buffer): HeldUpstream | undefined {
  if (record.holders[grantId] === undefined) return undefined
  try {
    return { record, tokens: openHolder(record, grantId, key) }
  } catch {
    return undefined
  }
}

/** A holder's copy of the tokens, opened with its grant's key (which throws for any other key). */
export function openHolder (record: UpstreamTokenRecord, grantId: string, key: Buffer): SealedUpstream {
  const holder = record.holders[grantId] as UpstreamTokenRecord['holders'][string]
  const opened = openSealedTo(key, holder.publicKey, holder.sealed, holderLabel(record.id, grantId))
  return JSON.parse(opened) as SealedUpstream
}

/** The associated data of a holder's copy: it cannot be moved to another grant or share. */
function holderLabel (shareId: string, grantId: string): string {
  return `upstream-tokens:${shareId}:${grantId}`
}

export function packUpstream (tokens: { accessToken: string, refreshToken?: string }): string {
  const payload: SealedUpstream = tokens.refreshToken === undefined
    ? { a: tokens.accessToken }
    : { a: tokens.accessToken, r: tokens.refreshToken }
  return JSON.stringify(payload)
}
