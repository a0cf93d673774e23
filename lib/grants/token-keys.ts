import { createHmac } from 'node:crypto'
import { seal, unseal } from '../crypto.js'

/*
 * Sealing for a token's holder: the key is an HMAC of the token under the operator's secret, so only
 * whoever presents the token (to a gateway that has the secret) can open what was sealed for it.
 */

/** Seals `plaintext` under the key the holder of `token` can derive with the operator's (first) secret. */
export function sealForToken (sealKeys: readonly Buffer[], token: string, plaintext: string, aad: string): string {
  // The configuration guarantees at least one secret, and so one key.
  return seal(tokenKey(sealKeys[0] as Buffer, token), plaintext, aad)
}

/**
 * Opens what sealForToken() sealed, trying every configured secret, newest first. A value no configured
 * secret opens (one since dropped) reads as absent rather than as an error.
 */
export function openWithToken (
  sealKeys: readonly Buffer[],
  token: string,
  sealed: string,
  aad: string
): string | undefined {
  try {
    return unseal(sealKeys.map((secret) => tokenKey(secret, token)), sealed, aad)
  } catch {
    return undefined
  }
}

function tokenKey (secret: Buffer, token: string): Buffer {
  return createHmac('sha256', secret).update(token).digest()
}
