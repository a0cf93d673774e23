import { readFileSync, statSync } from 'node:fs'
import { safeEqual } from './crypto.js'
import { isPasswordHash, UNMATCHABLE_HASH, verifyPassword } from './passwords.js'

/*
 * Who may pass screen 1. Either the one account of MCP_GATEWAY_USERNAME / MCP_GATEWAY_PASSWORD (the default), or
 * the accounts of a users file: one `name:hash` a line, hashes made by `mcp-oauth-gateway hash-password`. The
 * file is re-read when it changes, so accounts are added and removed without a restart.
 */

export interface Accounts {
  /** Whether `password` is `username`'s; takes as long for a name that does not exist. */
  verify (username: string, password: string): Promise<boolean>
  /** Whether the name exists now: only existing names are counted by the login limits. */
  knows (username: string): boolean
  /** Stops watching the users file, if there is one. */
  close (): void
}

/** The seed's single account, its password given in the environment. */
export function singleAccount (username: string, password: string): Accounts {
  return {
    // Both comparisons always run, so the timing does not tell which one failed.
    verify: async (name, given) => [safeEqual(name, username), safeEqual(given, password)].every(Boolean),
    knows: (name) => safeEqual(name, username),
    close: () => {}
  }
}

/** Nobody signs in by password (single sign-on only); a try takes as long as a wrong password. */
export function noAccounts (): Accounts {
  return {
    verify: async (_name, password) => await verifyPassword(password, UNMATCHABLE_HASH),
    knows: () => false,
    close: () => {}
  }
}

/** A users file that cannot be used: the message names the file and the line, never a hash. */
export class UsersFileError extends Error {
  constructor (message: string, options?: { cause: unknown }) {
    super(message, options)
    this.name = 'UsersFileError'
  }
}

// A user name as the login form takes it (1 to 256 characters), without the separator or whitespace.
const NAME = /^[^\s:]{1,256}$/
const MAX_USERS = 100_000

/**
 * The accounts of a users file: blank lines and lines starting with `#` are skipped; every other line is
 * `name:hash`. Throws a UsersFileError for a malformed line or a name given twice.
 */
export function parseUsersFile (text: string, path: string): Map<string, string> {
  const users = new Map<string, string>()
  const lines = text.split(/\r?\n/)
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const where = `${path} line ${index + 1}`
    const colon = line.indexOf(':')
    const name = line.slice(0, colon)
    if (colon === -1 || !NAME.test(name)) {
      throw new UsersFileError(`${where}: expected name:hash, with a name of 1 to 256 characters without spaces or ':'`)
    }
    if (!isPasswordHash(line.slice(colon + 1))) {
      throw new UsersFileError(`${where}: the hash of ${name} is not one \`mcp-oauth-gateway hash-password\` makes`)
    }
    if (users.has(name)) throw new UsersFileError(`${where}: ${name} is listed twice`)
    users.set(name, line.slice(colon + 1))
  }
  if (users.size === 0) throw new UsersFileError(`${path} lists no users`)
  if (users.size > MAX_USERS) throw new UsersFileError(`${path} lists more than ${MAX_USERS} users`)
  return users
}

function readUsersFile (path: string): Map<string, string> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as { code?: unknown }).code
    throw new UsersFileError(`${path} cannot be read (${typeof code === 'string' ? code : 'error'})`, { cause: err })
  }
  return parseUsersFile(text, path)
}

export interface UsersFileLog {
  info (details: object, message: string): void
  error (details: object, message: string): void
}

/** How often the file's modification time is looked at; polling also sees Kubernetes' swapped secret mounts. */
const WATCH_INTERVAL_MS = 2000

/**
 * The accounts of the users file at `path`, read now (a UsersFileError if it cannot be used: the gateway does
 * not start) and again whenever it changes. A changed file that cannot be used is logged once as an error and
 * the accounts read last stay in force, so a half-written file never locks everyone out.
 */
export function usersFileAccounts (path: string, log: UsersFileLog, intervalMs = WATCH_INTERVAL_MS): Accounts {
  // Polled by hand rather than with fs.watchFile, whose first look may come after a change and miss it.
  let seen = versionOf(path)
  let users = readUsersFile(path)
  const poll = (): void => {
    const now = versionOf(path)
    if (now === seen) return
    seen = now
    try {
      users = readUsersFile(path)
      log.info({ users: users.size }, 'users file reloaded')
    } catch (err) {
      log.error({ detail: (err as Error).message }, 'users file not reloaded: the accounts read before stay in force')
    }
  }
  const timer = setInterval(poll, intervalMs).unref()
  return {
    verify: async (name, password) => await verifyPassword(password, users.get(name) ?? UNMATCHABLE_HASH) &&
      users.has(name),
    knows: (name) => users.has(name),
    close: () => { clearInterval(timer) }
  }
}

/** What changes when the file does (a rewrite, or a new file swapped in, as Kubernetes does with secrets). */
function versionOf (path: string): string {
  try {
    const { mtimeMs, size, ino } = statSync(path)
    return `${mtimeMs}:${size}:${ino}`
  } catch {
    return 'unreadable'
  }
}
