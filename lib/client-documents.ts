import { ClientDocumentError, type FetchedDocument } from './client-document-fetch.js'
import { clientFromDocument, documentLifetimeMs, hostAllowed } from './client-metadata-document.js'
import type { ClientRecord } from './clients.js'
import type { Clock } from './clock.js'
import { hashSecret } from './crypto.js'
import { StoreFullError } from './stores/errors.js'
import type { Store } from './stores/types.js'
import { describe } from './upstream-as/http.js'

// CIMD §4.4: honour the document's caching, within bounds. A few minutes at least, so a burst of sign-ins
// fetches once; a day at most, so a changed or withdrawn document is seen within a day.
const MIN_LIFETIME_MS = 5 * 60 * 1000
const MAX_LIFETIME_MS = 24 * 60 * 60 * 1000

interface CachedDocument {
  fetchedAt: number
  document: Record<string, unknown>
}

export interface ClientDocumentsOptions {
  store: Store
  clock: Clock
  /** Gets the document at a client id URL, or throws ClientDocumentError (lib/client-document-fetch.ts). */
  fetch: (url: string) => Promise<FetchedDocument>
  /** `--cimd-allowed-hosts`; empty: any host. */
  allowedHosts: readonly string[]
  /** `--redirect-uri-allow`; empty: any redirect URI the rules accept. */
  redirectUriAllow: readonly string[]
  /** Documents cached at once, across replicas; past it a document is used without being cached. */
  maxCached: number
  /** Fetches at once in this process; past it a sign-in is refused (StoreFullError, a 503) rather than queued. */
  maxFetches: number
}

/**
 * The clients whose id is the URL of their metadata document (CIMD): each is read from the store's cache or
 * fetched, then checked on every use against the operator's current policy, so a changed policy applies at
 * once. Only valid documents are cached (CIMD §4.4), and a burst of sign-ins of one client shares one fetch.
 */
export class ClientDocuments {
  readonly #options: ClientDocumentsOptions
  readonly #fetching = new Map<string, Promise<CachedDocument>>()

  constructor (options: ClientDocumentsOptions) {
    this.#options = options
  }

  /** The client `url` names, or a ClientDocumentError that says why there is none. */
  async find (url: string): Promise<ClientRecord> {
    const { allowedHosts, redirectUriAllow, clock } = this.#options
    if (!hostAllowed(url, allowedHosts)) {
      throw new ClientDocumentError(`This gateway does not accept clients from ${new URL(url).host}.`, 400)
    }
    const { fetchedAt, document } = await this.#cachedOrFetched(url)
    const verdict = clientFromDocument(url, document, redirectUriAllow)
    if (!verdict.ok) {
      throw new ClientDocumentError(`The client metadata document ${describe(url)} is refused: ${verdict.reason}.`, 400)
    }
    return { clientId: url, issuedAt: fetchedAt, lastSeenAt: clock.now(), metadata: verdict.value }
  }

  async #cachedOrFetched (url: string): Promise<CachedDocument> {
    const key = `client-document:${hashSecret(url)}`
    const cached = await this.#options.store.get<CachedDocument>(key)
    if (cached !== undefined) return cached
    const pending = this.#fetching.get(url)
    if (pending !== undefined) return await pending
    if (this.#fetching.size >= this.#options.maxFetches) {
      throw new StoreFullError('client-document-fetch')
    }
    const fetching = this.#fetchAndCache(url, key).finally(() => this.#fetching.delete(url))
    this.#fetching.set(url, fetching)
    return await fetching
  }

  async #fetchAndCache (url: string, key: string): Promise<CachedDocument> {
    const { store, clock, fetch, maxCached } = this.#options
    const { document, cacheControl } = await fetch(url)
    const fetched = { fetchedAt: clock.now(), document }
    // Valid by the rules alone (the policy is applied on every read): an invalid document is fetched again next time.
    if (clientFromDocument(url, document).ok) {
      const lifetimeMs = documentLifetimeMs(cacheControl, { minMs: MIN_LIFETIME_MS, maxMs: MAX_LIFETIME_MS })
      await store.add(key, fetched, lifetimeMs, maxCached)
    }
    return fetched
  }
}
