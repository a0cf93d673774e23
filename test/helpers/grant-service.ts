import type { ClientRecord } from '../../lib/clients.js'
import type { GrantService, TokenResponse } from '../../lib/grants.js'
import { createPkcePair } from '../../lib/pkce.js'
import type { UpstreamTokens } from '../../lib/upstream-as/token-endpoint.js'

/*
 * A sign-in straight on a GrantService, without HTTP: for the unit tests of lib/grants.ts and
 * lib/upstream-refresh.ts, which stand two services on one store for two replicas.
 */

/** A public client registered for both grants, as the unit tests' services know it. */
export const TEST_CLIENT = { clientId: 'c1', issuedAt: 0, lastSeenAt: 0, metadata: { grant_types: ['authorization_code', 'refresh_token'] } } as unknown as ClientRecord

/** A code for TEST_CLIENT's finished flow, with the upstream's tokens, and the PKCE verifier that redeems it. */
export async function codeFor (
  grants: GrantService,
  upstream: UpstreamTokens
): Promise<{ code: string, verifier: string }> {
  const pkce = createPkcePair()
  const code = await grants.createCode({
    clientId: TEST_CLIENT.clientId,
    redirectUri: 'http://127.0.0.1/cb',
    codeChallenge: pkce.challenge,
    resource: 'https://gw.example/mcp',
    scope: 'mcp',
    userId: 'u1',
    upstream
  })
  return { code, verifier: pkce.verifier }
}

/** codeFor(), then its exchange: TEST_CLIENT's first tokens. */
export async function signInDirect (grants: GrantService, upstream: UpstreamTokens): Promise<TokenResponse> {
  const { code, verifier } = await codeFor(grants, upstream)
  return await grants.exchangeCode(TEST_CLIENT, { code, codeVerifier: verifier })
}
