import { ClientDocumentError } from './client-document-fetch.js'
import type { ClientDocuments } from './client-documents.js'
import { isClientIdUrl } from './client-metadata-document.js'
import type { Clock } from './clock.js'
import { hashSecret, randomToken, safeEqual } from './crypto.js'
import { invalidClient, invalidRequest } from './oauth-errors.js'
import { StoreFullError } from './stores/errors.js'
import type { Store } from './stores/types.js'

export type ClientAuthMethod = 'none' | 'client_secret_post' | 'client_secret_basic'

/** The metadata a client registered (RFC 7591 §2), as echoed back to it. */
export interface ClientMetadata {
  redirect_uris: string[]
  token_endpoint_auth_method: ClientAuthMethod
  grant_types: string[]
  response_types: string[]
  client_name?: string
  client_uri?: string
  logo_uri?: string
  scope?: string
  contacts?: string[]
  tos_uri?: string
  policy_uri?: string
  software_id?: string
  software_version?: string
  application_type?: string
}

export interface ClientRecord {
  clientId: string
  /** SHA-256 of the secret; the secret itself is shown once, at registration. */
  secretHash?: string
  issuedAt: number
  lastSeenAt: number
  /**
   * True from registration until one of the client's codes is exchanged for tokens: until then it expires
   * `unusedTtlMs` after registration, never pushed back, and counts against `maxUnused`. Records without
   * it are used clients (those stored before it existed included).
   */
  unused?: boolean
  metadata: ClientMetadata
}

/** What the token and revocation endpoints received that may identify a client (RFC 6749 §2.3). */
export interface ClientCredentials {
  basic?: string
  clientId?: string
  clientSecret?: string
}

// Writing the client back on every request would cost a store write per /token call; once an hour is
// precise enough for an idle expiry counted in days.
const TOUCH_AFTER_MS = 60 * 60 * 1000

export interface ClientRegistryOptions {
  store: Store
  clock: Clock
  /** How long a used client lives without being seen. */
  idleTtlMs: number
  /** How long a client lives after registration until it completes a sign-in. */
  unusedTtlMs: number
  /** Unused clients at once; registrations past it are refused (StoreFullError). */
  maxUnused: number
  /** Clients whose id is their metadata document's URL; undefined when the operator turned CIMD off. */
  documents?: ClientDocuments | undefined
}

/**
 * Registered clients. Registration is open, so a new client lives `unusedTtlMs` (short) and at most
 * `maxUnused` such clients exist at once; once a code of its is exchanged for tokens it is used, and lives
 * until `idleTtlMs` pass without it being seen. A flood of registrations is refused, never evicting anyone.
 */
export class ClientRegistry {
  readonly #store: Store
  readonly #clock: Clock
  readonly #idleTtlMs: number
  readonly #unusedTtlMs: number
  readonly #maxUnused: number
  readonly #documents: ClientDocuments | undefined

  constructor (deps: ClientRegistryOptions) {
    this.#store = deps.store
    this.#clock = deps.clock
    this.#idleTtlMs = deps.idleTtlMs
    this.#unusedTtlMs = deps.unusedTtlMs
    this.#maxUnused = deps.maxUnused
    this.#documents = deps.documents
  }

  async register (metadata: ClientMetadata): Promise<{ client: ClientRecord, secret?: string }> {
    const now = this.#clock.now()
    const secret = metadata.token_endpoint_auth_method === 'none' ? undefined : randomToken('gws_')
    const client: ClientRecord = {
      clientId: randomToken('gwc_').slice(0, 36),
      issuedAt: now,
      lastSeenAt: now,
      unused: true,
      metadata,
      ...(secret === undefined ? {} : { secretHash: hashSecret(secret) })
    }
    if (!await this.#store.add(key(client.clientId), client, this.#unusedTtlMs, this.#maxUnused)) {
      throw new StoreFullError('client')
    }
    return secret === undefined ? { client } : { client, secret }
  }

  /**
   * The client, if registered and not expired; each use of a used client pushes its idle expiry back. An
   * unused one keeps the expiry it was registered with: only a completed sign-in makes a client last. A client id
   * that is a URL is a metadata document's (CIMD): that client, or a ClientDocumentError saying why there is none.
   */
  async find (clientId: string): Promise<ClientRecord | undefined> {
    if (isClientIdUrl(clientId)) {
      if (this.#documents === undefined) {
        throw new ClientDocumentError('This gateway does not accept client metadata documents: the client must ' +
          'register instead.', 400)
      }
      return await this.#documents.find(clientId)
    }
    const client = await this.#store.get<ClientRecord>(key(clientId))
    if (client === undefined) return undefined
    const now = this.#clock.now()
    if (client.unused !== true && now - client.lastSeenAt > TOUCH_AFTER_MS) {
      client.lastSeenAt = now
      await this.#store.set(key(clientId), client, this.#idleTtlMs)
    }
    return client
  }

  /**
   * The client completed a sign-in (a code of its was exchanged for tokens): from now on it lives
   * `idleTtlMs` idle and no longer counts as unused. Does nothing for a client already used.
   */
  async markUsed (client: ClientRecord): Promise<void> {
    if (client.unused !== true) return
    const used: ClientRecord = { ...client, lastSeenAt: this.#clock.now() }
    delete used.unused
    // Written first, then uncounted: whatever fails in between, the client is never missing.
    await this.#store.set(key(client.clientId), used, this.#idleTtlMs)
    await this.#store.release(key(client.clientId))
  }

  /**
   * Client authentication at /token and /revoke (OAuth 2.1 §2.4, §3.2.1): Basic or the body for
   * confidential clients, `client_id` alone for public ones, never two methods at once. An unknown
   * client gets `invalid_client`, which tells MCP SDK clients to register again (after a restart with
   * the in-memory store, say).
   */
  async authenticate (credentials: ClientCredentials): Promise<ClientRecord> {
    let clientId = credentials.clientId
    let secret = credentials.clientSecret
    const triedBasic = credentials.basic !== undefined
    if (credentials.basic !== undefined) {
      if (secret !== undefined) {
        throw invalidRequest('use one client authentication method', 'secret both in Basic and in the body')
      }
      const basic = parseBasic(credentials.basic)
      if (basic === undefined) throw invalidClient('malformed Basic credentials', true)
      if (clientId !== undefined && clientId !== basic.id) {
        throw invalidRequest('client_id does not match the Basic credentials')
      }
      clientId = basic.id
      secret = basic.secret
    }
    if (clientId === undefined) throw invalidClient('no client identification', triedBasic)
    const client = await this.find(clientId).catch((err: unknown) => {
      // Said to the client: its own document is the problem, and it is the one that can fix it.
      if (err instanceof ClientDocumentError) throw invalidClient(err.message, triedBasic, err.message)
      throw err
    })
    if (client === undefined) throw invalidClient('unknown client', triedBasic)
    if (client.secretHash === undefined) {
      if (secret !== undefined && secret !== '') throw invalidClient('a public client sent a secret', triedBasic)
      return client
    }
    if (secret === undefined || !safeEqual(hashSecret(secret), client.secretHash)) {
      throw invalidClient('wrong or missing client secret', triedBasic)
    }
    return client
  }
}

function key (clientId: string): string {
  return `client:${clientId}`
}

/** RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined and base64-encoded. */
function parseBasic (header: string): { id: string, secret: string } | undefined {
  const match = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header)
  if (match?.[1] === undefined) return undefined
  const decoded = Buffer.from(match[1], 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 1) return undefined
  try {
    return {
      id: decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' ')),
      secret: decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '))
    }
  } catch {
    return undefined
  }
}
