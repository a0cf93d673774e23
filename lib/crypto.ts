import { createCipheriv, createDecipheriv, hash, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto'

/** 32 random bytes (256 bits, above the 2^-160 guessing bound of OAuth 2.1 §7.7), base64url. */
export function randomToken (prefix = ''): string {
  return prefix + randomBytes(32).toString('base64url')
}

/**
 * The id under which a secret (token, code, client secret) is stored: its SHA-256, never the secret.
 * One-shot `crypto.hash` (Node ≥ 20.12): a quarter of createHash's cost, and it runs on every /mcp request.
 */
export function hashSecret (secret: string): string {
  return hash('sha256', secret, 'base64url')
}

/**
 * Compares two strings in time that depends only on their lengths' hash, not on where they differ:
 * both sides are hashed first, so lengths leak nothing either.
 */
export function safeEqual (a: string, b: string): boolean {
  return timingSafeEqual(hash('sha256', a, 'buffer'), hash('sha256', b, 'buffer'))
}

/** Derives a purpose-bound 32-byte key from the operator's secret (HKDF-SHA256). */
export function deriveKey (secret: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'mcp-oauth-gateway', purpose, 32))
}

const SEALED_VERSION = 'v1'

/**
 * AES-256-GCM. The output is `v1.<iv>.<ciphertext+tag>`; `aad` binds the ciphertext to its record
 * (a grant id), so a sealed value cannot be moved to another record.
 */
export function seal (key: Buffer, plaintext: string, aad: string): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(Buffer.from(aad))
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()])
  return `${SEALED_VERSION}.${iv.toString('base64url')}.${body.toString('base64url')}`
}

/** Opens what `seal` made with one of `keys` (the first that authenticates). Throws when none does. */
export function unseal (keys: readonly Buffer[], sealed: string, aad: string): string {
  const [version, iv, body] = sealed.split('.')
  if (version !== SEALED_VERSION || iv === undefined || body === undefined) throw new Error('not a sealed value')
  const raw = Buffer.from(body, 'base64url')
  if (raw.length < 16) throw new Error('not a sealed value')
  for (const key of keys) {
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'))
      decipher.setAAD(Buffer.from(aad))
      decipher.setAuthTag(raw.subarray(raw.length - 16))
      return Buffer.concat([decipher.update(raw.subarray(0, raw.length - 16)), decipher.final()]).toString('utf8')
    } catch {
      // wrong key or tampered: try the next key
    }
  }
  throw new Error('sealed value does not authenticate')
}
