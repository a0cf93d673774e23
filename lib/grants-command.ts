import { isClientIdUrl } from './client-metadata-document.js'
import { systemClock, type Clock } from './clock.js'
import { ConfigError, loadConfig } from './config.js'
import { GrantService, type GrantSummary } from './grants.js'
import { openStore } from './stores/index.js'
import { checkedStore } from './stores/records.js'
import type { Store } from './stores/types.js'

/*
 * `mcp-oauth-gateway grants list [--user U] [--json]` and `grants revoke <grant-id> | --user U`: the operator's
 * view of who connected which client, on the store the gateway uses. It reads the gateway's own configuration
 * (the same flags and MCP_GATEWAY_* variables, notably --store and --store-prefix) and opens the store directly;
 * a revocation is the gateway's own (GrantService.revokeGrant, reason operator_revoked), announced to every
 * replica. Exit 0 when done; 1 for bad usage, an unknown grant, or a store that cannot be used, with why on stderr.
 */

export const GRANTS_USAGE = `Usage: mcp-oauth-gateway grants list [--user <name>] [--json] [gateway options]
       mcp-oauth-gateway grants revoke <grant-id> [gateway options]
       mcp-oauth-gateway grants revoke --user <name> [gateway options]

Lists or revokes the grants (connected clients) in the gateway's store. Give it the gateway's own
configuration (flags or MCP_GATEWAY_* variables), at least --store and --store-prefix: an in-memory
gateway's grants live in its own process, out of reach.
`

export interface GrantsCommandIo {
  env: Record<string, string | undefined>
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream
  /** A store already open (tests, an embedding host's): used instead of the configured one, and left open. */
  store?: Store
  clock?: Clock
}

interface Command {
  action: 'list' | 'revoke'
  user: string | undefined
  grantId: string | undefined
  json: boolean
  /** Everything else: the gateway's own flags. */
  rest: string[]
}

/** The command after `grants`; resolves to the exit code. */
export async function grantsCommand (argv: string[], io: GrantsCommandIo): Promise<number> {
  const fail = (message: string): number => {
    io.stderr.write(`grants: ${message}\n`)
    return 1
  }
  if (argv[0] === undefined || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    ;(argv[0] === undefined ? io.stderr : io.stdout).write(GRANTS_USAGE)
    return argv[0] === undefined ? 1 : 0
  }
  const parsed = parse(argv)
  if (typeof parsed === 'string') return fail(`${parsed}\n\n${GRANTS_USAGE}`)

  let store = io.store
  const clock = io.clock ?? systemClock
  if (store === undefined) {
    let options
    try {
      const config = loadConfig(parsed.rest, io.env)
      if ('help' in config) return fail('--help is the gateway\'s own; see `mcp-oauth-gateway grants --help`')
      options = config.gateway
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      return fail(`invalid configuration\n${err.message}`)
    }
    if (options.store === 'memory') {
      return fail('the store is memory (the default): grants live in the gateway\'s own process, out of reach. ' +
        'Give this command the gateway\'s --store (MCP_GATEWAY_STORE) and --store-prefix (MCP_GATEWAY_STORE_PREFIX).')
    }
    try {
      store = await openStore(options.store, { keyPrefix: options.storePrefix, clock })
    } catch (err) {
      // Never the URL: it may carry a password.
      return fail(`cannot open the store (${(err as Error).message})`)
    }
  }
  const opened = io.store === undefined ? store : undefined
  try {
    const log = { warn: (_details: unknown, message: string) => { io.stderr.write(`grants: ${message}\n`) } }
    const grants = service(checkedStore(store, log), clock)
    return parsed.action === 'list'
      ? await list(grants, parsed, io)
      : await revoke(grants, parsed, io, fail)
  } catch (err) {
    return fail((err as Error).message)
  } finally {
    await opened?.close()
  }
}

function parse (argv: string[]): Command | string {
  const [action, ...args] = argv
  if (action !== 'list' && action !== 'revoke') return `unknown command ${JSON.stringify(action)}: list or revoke`
  const command: Command = { action, user: undefined, grantId: undefined, json: false, rest: [] }
  // The grant id comes right after `revoke`: anything later that is not a flag is a gateway flag's value.
  if (action === 'revoke' && args[0] !== undefined && !args[0].startsWith('-')) command.grantId = args.shift()
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string
    if (arg === '--user' || arg.startsWith('--user=')) {
      const user = arg === '--user' ? args[++i] : arg.slice('--user='.length)
      if (user === undefined || user === '') return '--user needs a name'
      if (command.user !== undefined) return '--user given twice'
      command.user = user
    } else if (arg === '--json' && action === 'list') {
      command.json = true
    } else {
      command.rest.push(arg)
    }
  }
  if (action === 'revoke' && (command.grantId === undefined) === (command.user === undefined)) {
    return 'revoke takes a grant id or --user <name>, not both'
  }
  return command
}

/** The grant service over the store, for what this command does: listing and revoking, never issuing. */
function service (store: Store, clock: Clock): GrantService {
  return new GrantService({
    store,
    clock,
    // Never called: listing and revoking refresh nothing upstream.
    /* c8 ignore next */
    upstream: { refresh: async () => { throw new Error('the grants command refreshes nothing upstream') } },
    sealKeys: [],
    codeTtlMs: 1,
    accessTtlMs: 1,
    refreshTtlMs: 1,
    refreshGraceMs: 0,
    tokenCacheTtlMs: 0
  })
}

async function list (grants: GrantService, command: Command, io: GrantsCommandIo): Promise<number> {
  const users = command.user === undefined ? await grants.grantHolders() : [command.user]
  const found: GrantSummary[] = []
  for (const user of users) found.push(...await grants.grantsOf(user))
  if (command.json) {
    io.stdout.write(`${JSON.stringify(found, null, 2)}\n`)
    return 0
  }
  if (found.length === 0) {
    io.stdout.write(command.user === undefined ? 'No grants.\n' : `No grants for ${printable(command.user)}.\n`)
    return 0
  }
  const rows = [
    ['GRANT', 'USER', 'CLIENT', 'SCOPES', 'UPSTREAM', 'CREATED', 'LAST USED'],
    ...found.map((g) => [
      g.id,
      g.userId,
      clientLabel(g),
      [g.scope, ...g.upstreamScopes].join(' '),
      g.upstreamLogin ?? '-',
      time(g.createdAt),
      time(g.lastUsedAt)
    ].map(printable))
  ]
  const widths = (rows[0] as string[]).map((_c, i) => Math.max(...rows.map((row) => (row[i] as string).length)))
  for (const row of rows) {
    const cells = row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i] as number))
    io.stdout.write(`${cells.join('  ')}\n`)
  }
  return 0
}

async function revoke (
  grants: GrantService,
  command: Command,
  io: GrantsCommandIo,
  fail: (message: string) => number
): Promise<number> {
  if (command.grantId !== undefined) {
    const grant = await grants.findGrant(command.grantId)
    if (grant === undefined || !await grants.revokeGrant(grant.id, 'operator_revoked')) {
      return fail(`no grant ${printable(command.grantId)} (unknown, expired or revoked already)`)
    }
    io.stdout.write(`Revoked ${grant.id} (user ${printable(grant.userId)}, client ${printable(clientLabel(grant))}).\n`)
    return 0
  }
  const user = command.user as string
  let count = 0
  for (const grant of await grants.grantsOf(user)) {
    if (await grants.revokeGrant(grant.id, 'operator_revoked')) count++
  }
  io.stdout.write(`Revoked ${count} grant${count === 1 ? '' : 's'} of ${printable(user)}.\n`)
  return 0
}

/** The client's name as approved, and where it is from: the host of a metadata document's URL, or its id. */
function clientLabel (grant: GrantSummary): string {
  const name = grant.clientName === undefined || grant.clientName.trim() === '' ? '(unnamed)' : grant.clientName
  return `${name} (${isClientIdUrl(grant.clientId) ? new URL(grant.clientId).host : grant.clientId})`
}

function time (ms: number | undefined): string {
  return ms === undefined ? '-' : `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')}Z`
}

/**
 * Text a client chose (its name) or a person typed, safe on a terminal: control characters (escape sequences
 * that could rewrite the screen or the title) become '?'.
 */
function printable (text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
}
