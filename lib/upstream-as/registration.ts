import type { Clock } from '../clock.js'
import { hashSecret, seal, unseal } from '../crypto.js'
import type { Store } from '../stores/types.js'
import type { UpstreamEndpoints } from './discovery.js'
import { UpstreamError } from './errors.js'
import { describe, hostOf, parseJsonObject, printable, send } from './http.js'
import type { HttpLimits } from './http.js'

/**
 * The gateway's own client at the upstream authorization server: configured, or registered dynamically
 * (RFC 7591) once per shared store, the registration kept in the store with its secret sealed.
 */

export interface UpstreamClientCredentials {
  clientId: string
  clientSecret?: string
  authMethod: 'client_secret_post' | 'client_secret_basic' | 'none'
}

export interface RegistrationSettings extends HttpLimits {
  clientId?: string | undefined
  clientSecret?: string | undefined
  /** The gateway's own /upstream/callback. */
  redirectUri: string
  clientName: string
}

export interface RegistrationDeps {
  store: Store
  clock: Clock
  /** Seal a registered client's secret at rest; the first seals, any of them opens (secret rotation). */
  sealKeys: readonly Buffer[]
}

export interface UpstreamClient {
  client: UpstreamClientCredentials
  /** Store key of dynamically registered credentials, so they can be dropped when the AS forgets them. */
  clientKey?: string
}

/** A dynamically registered client as stored: the secret sealed, with the record's key as associated data. */
interface StoredClient {
  clientId: string
  authMethod: UpstreamClientCredentials['authMethod']
  sealedSecret?: string
}

const CLIENT_TTL_MS = 365 * 24 * 60 * 60 * 1000
const CLIENT_KEY_PREFIX = 'upstream:client:'
const SECRET_AUTH_METHODS = new Set<string>(['client_secret_post', 'client_secret_basic'])

/** The configured client, else the stored registration, else a new registration at the AS. */
export async function upstreamClient (
  endpoints: UpstreamEndpoints,
  s: RegistrationSettings,
  deps: RegistrationDeps
): Promise<UpstreamClient> {
  if (s.clientId !== undefined) {
    return {
      client: s.clientSecret === undefined
        ? { clientId: s.clientId, authMethod: 'none' }
        : { clientId: s.clientId, clientSecret: s.clientSecret, authMethod: 'client_secret_post' }
    }
  }
  const registrationEndpoint = endpoints.registrationEndpoint
  if (registrationEndpoint === undefined) {
    const host = hostOf(endpoints.issuer ?? endpoints.authorizationEndpoint)
    throw new UpstreamError('registration',
      `the upstream authorization server ${host} offers no dynamic client registration ` +
      '(GitHub has none): register an OAuth app there and pass --upstream-client-id and --upstream-client-secret')
  }
  const clientKey = CLIENT_KEY_PREFIX + hashSecret(registrationEndpoint + ' ' + s.redirectUri)
  const stored = openClient(deps.sealKeys, clientKey, await deps.store.get<StoredClient>(clientKey))
  if (stored !== undefined) return { client: stored, clientKey }

  const reply = await send(registrationEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({
      client_name: s.clientName,
      redirect_uris: [s.redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post'
    })
  }, 'upstream registration endpoint', s)
  const doc = parseJsonObject(reply.body)
  const where = `dynamic registration at ${describe(registrationEndpoint)}`
  if (reply.status !== 200 && reply.status !== 201) {
    const code = typeof doc?.['error'] === 'string' ? printable(doc['error'], 64) : undefined
    throw new UpstreamError('registration',
      `${where} failed: HTTP ${reply.status}${code === undefined ? '' : ` (${code})`}`,
      code === undefined ? { status: reply.status } : { status: reply.status, oauthError: code })
  }
  const clientId = doc?.['client_id']
  if (typeof clientId !== 'string' || clientId === '') {
    throw new UpstreamError('registration', `${where} returned no client_id`, { status: reply.status })
  }
  const secret = doc?.['client_secret']
  const client: UpstreamClientCredentials = typeof secret === 'string' && secret !== ''
    ? { clientId, clientSecret: secret, authMethod: secretAuthMethod(doc?.['token_endpoint_auth_method']) }
    : { clientId, authMethod: 'none' }
  // Stored so that restarts and other instances reuse the registration; the secret sealed, as every secret at rest.
  const expiresAt = doc?.['client_secret_expires_at']
  const ttl = typeof expiresAt === 'number' && expiresAt > 0
    ? Math.min(CLIENT_TTL_MS, expiresAt * 1000 - deps.clock.now())
    : CLIENT_TTL_MS
  if (ttl > 0) await deps.store.set(clientKey, sealClient(deps.sealKeys, clientKey, client), ttl)
  return { client, clientKey }
}

function sealClient (sealKeys: readonly Buffer[], clientKey: string, client: UpstreamClientCredentials): StoredClient {
  const { clientId, clientSecret, authMethod } = client
  if (clientSecret === undefined) return { clientId, authMethod }
  return { clientId, authMethod, sealedSecret: seal(sealKeys[0] as Buffer, clientSecret, clientKey) }
}

/**
 * Undefined, so that the gateway registers again, when the record is absent, when no configured secret
 * opens it any more, or when it is a secret-bearing record without a sealed secret (a secret in the clear:
 * registering again overwrites it).
 */
function openClient (
  sealKeys: readonly Buffer[],
  clientKey: string,
  stored: StoredClient | undefined
): UpstreamClientCredentials | undefined {
  if (stored === undefined) return undefined
  const { clientId, authMethod, sealedSecret } = stored
  if (authMethod === 'none') return { clientId, authMethod }
  if (sealedSecret === undefined) return undefined
  try {
    return { clientId, clientSecret: unseal(sealKeys, sealedSecret, clientKey), authMethod }
  } catch {
    return undefined
  }
}

/** The AS may replace the method we asked for (RFC 7591 §3.2.1); with a secret, post is our default. */
function secretAuthMethod (value: unknown): 'client_secret_post' | 'client_secret_basic' {
  return typeof value === 'string' && SECRET_AUTH_METHODS.has(value)
    ? value as 'client_secret_basic'
    : 'client_secret_post'
}
