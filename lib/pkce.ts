import { createHash, randomBytes } from 'node:crypto'
import { safeEqual } from './crypto.js'

/** RFC 7636 §4.1: 43 to 128 characters of [A-Z a-z 0-9 - . _ ~]. */
export const CODE_VERIFIER_PATTERN = '^[A-Za-z0-9._~-]{43,128}$'
/** An S256 challenge is the base64url (no padding) of a SHA-256: exactly 43 characters. */
export const S256_CHALLENGE_PATTERN = '^[A-Za-z0-9_-]{43}$'

const verifierFormat = new RegExp(CODE_VERIFIER_PATTERN)

export function s256 (verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url')
}

/** True only when `verifier` is well formed and hashes to `challenge` (compared in constant time). */
export function verifyS256 (verifier: string, challenge: string): boolean {
  return verifierFormat.test(verifier) && safeEqual(s256(verifier), challenge)
}

/** A fresh pair for the gateway's own leg to the upstream. */
export function createPkcePair (): { verifier: string, challenge: string } {
  const verifier = randomBytes(48).toString('base64url')
  return { verifier, challenge: s256(verifier) }
}
