import { MalformedRecordError } from './errors.js'
import type { Store } from './types.js'

/** A record's kind: its key up to the first ':' (`flow:abc` → `flow`). add() bounds by it, the checks go by it. */
export function storeKind (key: string): string {
  const colon = key.indexOf(':')
  return colon === -1 ? key : key.slice(0, colon)
}

type Check = (value: unknown) => boolean

const isString: Check = (value) => typeof value === 'string'
const isNumber: Check = (value) => typeof value === 'number'
const isBoolean: Check = (value) => typeof value === 'boolean'
const isStringList: Check = (value) => Array.isArray(value) && value.every(isString)
const isNumberMap: Check = (value) => typeof value === 'object' && value !== null && !Array.isArray(value) &&
  Object.values(value).every(isNumber)
const optional = (check: Check): Check => (value) => value === undefined || check(value)

/** An object whose named fields pass their checks; fields not named are not looked at. */
function shape (fields: Record<string, Check>): Check {
  const checks = Object.entries(fields)
  return (value) => typeof value === 'object' && value !== null && !Array.isArray(value) &&
    checks.every(([name, check]) => check((value as Record<string, unknown>)[name]))
}

const UPSTREAM_USER = shape({ login: isString, id: isString })

/**
 * What the gateway relies on in each kind of record it stores (lib/clients.ts, flows.ts, grants.ts,
 * grant-index.ts, account-sessions.ts, consents.ts, sessions.ts, scope-needs.ts, client-documents.ts,
 * upstream-as/registration.ts): the fields it reads, with their types.
 */
const RECORD_CHECKS = new Map<string, Check>([
  ['client', shape({
    clientId: isString,
    secretHash: optional(isString),
    issuedAt: isNumber,
    lastSeenAt: isNumber,
    unused: optional(isBoolean),
    metadata: shape({
      redirect_uris: isStringList,
      token_endpoint_auth_method: isString,
      grant_types: isStringList,
      client_name: optional(isString)
    })
  })],
  ['flow', shape({
    id: isString,
    browserHash: isString,
    csrf: isString,
    clientId: isString,
    redirectUri: isString,
    state: optional(isString),
    codeChallenge: isString,
    resource: isString,
    scope: isString,
    userId: optional(isString),
    approved: optional(isBoolean),
    expiresAt: isNumber
  })],
  ['upstream-state', shape({ flowId: isString, verifier: isString })],
  ['sso-state', shape({ flowId: isString, verifier: isString, nonce: isString })],
  ['code', shape({
    clientId: isString,
    redirectUri: isString,
    codeChallenge: isString,
    resource: isString,
    scope: isString,
    userId: isString,
    upstreamUser: optional(UPSTREAM_USER),
    expiresAt: isNumber,
    sealedUpstream: isString,
    upstreamExpiresAt: optional(isNumber),
    upstreamRenewAt: optional(isNumber),
    upstreamScopes: isStringList,
    consumedBy: optional(isString)
  })],
  ['grant', shape({
    id: isString,
    clientId: isString,
    userId: isString,
    upstreamUser: optional(UPSTREAM_USER),
    scope: isString,
    resource: isString,
    upstreamTokens: optional(isString),
    sealedUpstream: optional(isString),
    upstreamExpiresAt: optional(isNumber),
    upstreamRenewAt: optional(isNumber),
    upstreamScopes: optional(isStringList),
    accessHash: isString,
    refreshHash: optional(isString),
    expiresAt: isNumber,
    createdAt: optional(isNumber),
    clientName: optional(isString),
    version: optional(isNumber)
  })],
  ['upstream-tokens', shape({
    id: isString,
    generation: isString,
    holders: (value) => typeof value === 'object' && value !== null && !Array.isArray(value) &&
      Object.values(value).every(shape({ publicKey: isString, sealed: isString, since: isNumber, mac: isString })),
    upstreamExpiresAt: optional(isNumber),
    upstreamRenewAt: optional(isNumber),
    upstreamScopes: isStringList,
    expiresAt: isNumber,
    version: isNumber
  })],
  // lib/grant-index.ts: who holds which grants, and when each was last used.
  ['user-grants', shape({ version: isNumber, members: isNumberMap })],
  ['grant-users', shape({ version: isNumber, members: isNumberMap })],
  ['grant-used', shape({ at: isNumber })],
  // lib/account-sessions.ts: a person signed in to the account page.
  ['account-session', shape({ userId: isString, csrf: isString, expiresAt: isNumber })],
  ['account-sso-state', shape({ browserHash: isString, verifier: isString, nonce: isString })],
  ['access', shape({
    grantId: isString,
    clientId: isString,
    scope: isString,
    resource: isString,
    expiresAt: isNumber,
    wrappedKey: isString
  })],
  ['refresh', shape({
    grantId: isString,
    clientId: isString,
    expiresAt: isNumber,
    wrappedKey: isString,
    rotatedAt: optional(isNumber),
    answer: optional(isString),
    version: optional(isNumber)
  })],
  ['consent', shape({ scopes: isStringList })],
  // The document inside is checked on every read, by clientFromDocument (lib/client-metadata-document.ts).
  ['client-document', shape({ fetchedAt: isNumber })],
  ['mcp-session', shape({ grantId: isString })],
  ['upstream-scope-needs', shape({ scopes: isStringList })],
  // upstream:client:…, the upstream registration of the gateway itself.
  ['upstream', shape({ clientId: isString, authMethod: isString, sealedSecret: optional(isString) })]
])

/** True when `value` has what the gateway reads from a record under `key`; kinds it does not know pass. */
export function isWellFormed (key: string, value: unknown): boolean {
  const check = RECORD_CHECKS.get(storeKind(key))
  return check === undefined || check(value)
}

/** Where a malformed record is reported: a logger's warn (pino's, Fastify's). */
export interface RecordLog {
  warn (details: { storeKind: string }, message: string): void
}

/**
 * A store whose reads check what they return: a record that is not JSON or lacks what the gateway reads
 * (written by an older or newer version, by hand, or corrupted) reads as missing, with a warning that
 * names its kind only (a value may hold secrets). Callers then answer as for an unknown or expired
 * record, a 4xx, instead of failing on a missing field with a 500.
 */
export class CheckedStore implements Store {
  readonly #store: Store
  readonly #log: RecordLog

  /** The store's own messaging, when it has any (Redis); absent otherwise, as on the store. */
  readonly publish?: Store['publish']
  readonly subscribe?: Store['subscribe']

  constructor (store: Store, log: RecordLog) {
    this.#store = store
    this.#log = log
    if (store.publish !== undefined && store.subscribe !== undefined) {
      this.publish = store.publish.bind(store)
      this.subscribe = store.subscribe.bind(store)
    }
  }

  async get<T> (key: string): Promise<T | undefined> {
    return await this.#checked(key, async () => await this.#store.get<T>(key))
  }

  async take<T> (key: string): Promise<T | undefined> {
    return await this.#checked(key, async () => await this.#store.take<T>(key))
  }

  async swap<T> (key: string, value: T, ttlMs: number): Promise<T | undefined> {
    return await this.#checked(key, async () => await this.#store.swap<T>(key, value, ttlMs))
  }

  async set<T> (key: string, value: T, ttlMs: number): Promise<void> {
    await this.#store.set(key, value, ttlMs)
  }

  async add<T> (key: string, value: T, ttlMs: number, max: number): Promise<boolean> {
    return await this.#store.add(key, value, ttlMs, max)
  }

  async replace<T> (key: string, expectedVersion: number, value: T, ttlMs: number): Promise<boolean> {
    return await this.#store.replace(key, expectedVersion, value, ttlMs)
  }

  async lock (key: string, ttlMs: number): Promise<string | undefined> {
    return await this.#store.lock(key, ttlMs)
  }

  async unlock (key: string, token: string): Promise<void> {
    await this.#store.unlock(key, token)
  }

  async release (key: string): Promise<void> {
    await this.#store.release(key)
  }

  async increment (key: string, ttlMs: number): Promise<number> {
    return await this.#store.increment(key, ttlMs)
  }

  async delete (key: string): Promise<void> {
    await this.#store.delete(key)
  }

  async ping (): Promise<boolean> {
    return await this.#store.ping()
  }

  async close (): Promise<void> {
    await this.#store.close()
  }

  async #checked<T> (key: string, read: () => Promise<T | undefined>): Promise<T | undefined> {
    let value: T | undefined
    try {
      value = await read()
    } catch (err) {
      // A host's store that parses JSON itself fails with a SyntaxError; ours say MalformedRecordError.
      if (!(err instanceof MalformedRecordError) && !(err instanceof SyntaxError)) throw err
      return this.#missing(key)
    }
    return value === undefined || isWellFormed(key, value) ? value : this.#missing(key)
  }

  #missing (key: string): undefined {
    this.#log.warn({ storeKind: storeKind(key) }, 'malformed store record read as missing')
    return undefined
  }
}

/** `store` with its reads checked (see CheckedStore); a store already checked is returned as it is. */
export function checkedStore (store: Store, log: RecordLog): Store {
  return store instanceof CheckedStore ? store : new CheckedStore(store, log)
}
