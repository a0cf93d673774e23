import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'

/*
 * Password hashes for the users file: Node's built-in scrypt, its parameters inside the hash so that stronger
 * ones can come later without invalidating what is written. The form is PHC-like:
 *   $scrypt$ln=15,r=8,p=1$<salt, base64url>$<key, base64url>
 * ln=15 (N = 32768) with r=8 takes 32 MiB and some tens of milliseconds: costly to guess offline, affordable
 * for a sign-in, which the login limits already make rare.
 */

const LOG_N = 15
const BLOCK_SIZE = 8
const PARALLELISM = 1
const SALT_BYTES = 16
const KEY_BYTES = 32
// Parameters read from a file are bounded, so a typo cannot make each sign-in take gigabytes or minutes.
const MAX_LOG_N = 20
const MAX_BLOCK_SIZE = 32
const MAX_PARALLELISM = 16
const HASH_FORMAT = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9_-]{16,128})\$([A-Za-z0-9_-]{32,128})$/

interface ParsedHash {
  options: ScryptOptions
  salt: Buffer
  key: Buffer
}

export async function hashPassword (password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES)
  const options = scryptOptions(LOG_N, BLOCK_SIZE, PARALLELISM)
  const key = await derive(password, salt, KEY_BYTES, options)
  return `$scrypt$ln=${LOG_N},r=${BLOCK_SIZE},p=${PARALLELISM}$${salt.toString('base64url')}$${key.toString('base64url')}`
}

/** True when `hash` is one hashPassword could have written, with parameters within the bounds. */
export function isPasswordHash (hash: string): boolean {
  return parseHash(hash) !== undefined
}

/** Whether `password` is the one `hash` was made from; the comparison takes the same time wherever they differ. */
export async function verifyPassword (password: string, hash: string): Promise<boolean> {
  const parsed = parseHash(hash)
  if (parsed === undefined) return false
  const key = await derive(password, parsed.salt, parsed.key.length, parsed.options)
  return timingSafeEqual(key, parsed.key)
}

/**
 * A hash no password matches, with the default parameters: checked for a user name that does not exist, so a
 * wrong name takes as long as a wrong password and the timing does not tell which names exist.
 */
export const UNMATCHABLE_HASH =
  `$scrypt$ln=${LOG_N},r=${BLOCK_SIZE},p=${PARALLELISM}$${'A'.repeat(22)}$${'A'.repeat(43)}`

function parseHash (hash: string): ParsedHash | undefined {
  const match = HASH_FORMAT.exec(hash)
  if (match === null) return undefined
  const [logN, blockSize, parallelism] = [Number(match[1]), Number(match[2]), Number(match[3])]
  if (logN < 1 || logN > MAX_LOG_N || blockSize < 1 || blockSize > MAX_BLOCK_SIZE ||
    parallelism < 1 || parallelism > MAX_PARALLELISM) {
    return undefined
  }
  return {
    options: scryptOptions(logN, blockSize, parallelism),
    salt: Buffer.from(match[4] as string, 'base64url'),
    key: Buffer.from(match[5] as string, 'base64url')
  }
}

function scryptOptions (logN: number, blockSize: number, parallelism: number): ScryptOptions {
  const N = 2 ** logN
  // scrypt needs 128 · N · r bytes; Node refuses above maxmem (32 MiB by default), so say what is needed.
  return { N, r: blockSize, p: parallelism, maxmem: 128 * N * blockSize + 1024 * 1024 }
}

async function derive (password: string, salt: Buffer, length: number, options: ScryptOptions): Promise<Buffer> {
  return await new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, length, options, (err, key) => {
      if (err === null) resolve(key)
      else reject(err)
    })
  })
}
