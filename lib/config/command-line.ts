/**
 * The command line of the standalone server (server.ts): flags, then `MCP_GATEWAY_*` variables and `_FILE`
 * secrets, then defaults, resolved as the plugin's options are, plus the checks only a listener can make.
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { helpText } from './docs.js'
import { resolveGateway, usesDefaultPassword } from './gateway.js'
import { ConfigError, type ResolvedGatewayOptions, type ServerSettings } from './options.js'
import { isLoopbackHost, parseTrustProxy } from './parsers.js'
import {
  DEFAULT_PASSWORD,
  DEFAULT_PORT,
  DEFAULT_USERNAME,
  GATEWAY_SETTINGS,
  SERVER_SETTINGS,
  SETTINGS,
  ruleOf,
  type Setting
} from './settings.js'
import { Problems, runSchema, validateServer } from './validate.js'

/** `--port (MCP_GATEWAY_PORT)`, or just the variable for environment-only settings. */
function cliLabel (key: string): string {
  const setting = (SETTINGS as Record<string, Setting>)[key] as Setting
  return setting.flag === undefined ? setting.env : `--${setting.flag} (${setting.env})`
}

type FlagOption = { type: 'string' | 'boolean', short?: string, multiple?: boolean }

const FLAG_OPTIONS: Record<string, FlagOption> = Object.fromEntries([
  ['help', { type: 'boolean', short: 'h' }],
  ...Object.values(SETTINGS as Record<string, Setting>).flatMap((s) => s.flag === undefined
    ? []
    : [[s.flag, s.kind === 'boolean' ? { type: 'boolean' } : { type: 'string', multiple: s.multiple === true }]])
])

const secretFlagWarning = (flag: string, env: string) =>
  `${flag} was given as a flag, which every user of this machine can read in \`ps\`: prefer ${env} or ${env}_FILE`

/**
 * Reads flags (first), then `MCP_GATEWAY_*` variables, then defaults. Returns `{ help }` for `--help`/`-h`, and
 * throws one `ConfigError` listing every bad flag or variable.
 */
export function loadConfig (argv: string[], env: Record<string, string | undefined>):
  { help: string } | { server: ServerSettings, gateway: ResolvedGatewayOptions, warnings: string[] } {
  const problems = new Problems(cliLabel)
  // strict: false so that unknown flags are reported by us, together with everything else, and without the
  // value parseArgs would otherwise quote (`--password=…` must not end up in a log).
  const { values, tokens } = parseArgs({
    args: argv,
    options: FLAG_OPTIONS,
    strict: false,
    allowPositionals: true,
    tokens: true
  })
  if (values.help !== undefined) return { help: helpText() }
  const warnings: string[] = []

  for (const token of tokens) {
    if (token.kind === 'positional') {
      problems.addLine(
        `argv${token.index}`,
        `unexpected argument #${token.index + 1} (not shown): every setting is a --flag, see --help`
      )
    } else if (token.kind === 'option' && !(token.name in FLAG_OPTIONS)) {
      const envOnly = token.name === 'username' || token.name === 'password'
      const variable = `MCP_GATEWAY_${token.name.toUpperCase()}`
      problems.addLine(`argv${token.index}`, envOnly
        ? `${token.rawName} is not a flag (it would show in \`ps\`): set ${variable} instead`
        : `${token.rawName} is not a known flag (see --help)`)
    }
  }

  const raw = (key: string, setting: Setting): unknown => {
    const flag = setting.flag === undefined ? undefined : values[setting.flag]
    // Without strict mode, a string flag given no value comes back as `true` (inside the array, if repeatable);
    // a boolean flag is `true` when present, or its string when written `--flag=value`.
    if (setting.kind !== 'boolean' && (flag === true || (Array.isArray(flag) && flag.includes(true)))) {
      problems.add(key, 'needs a value')
      return undefined
    }
    if (flag !== undefined) {
      if (setting.secret === true) warnings.push(secretFlagWarning(cliLabel(key), setting.env))
      return flag
    }
    // An empty variable counts as unset: compose files and shells often pass `VAR=` for "not configured".
    const fromEnv = env[setting.env] === '' ? undefined : env[setting.env]
    const file = setting.secret === true && env[`${setting.env}_FILE`] !== '' ? env[`${setting.env}_FILE`] : undefined
    if (file === undefined) return fromEnv
    if (fromEnv !== undefined) {
      problems.addLine(key, `${setting.env} and ${setting.env}_FILE are both set: set one`)
      return undefined
    }
    return secretFile(key, file, `${setting.env}_FILE`)
  }

  /** A Docker or Kubernetes secret file's content, without the newline editors end it with; never quoted back. */
  const secretFile = (key: string, path: string, name: string): string | undefined => {
    try {
      const content = readFileSync(path, 'utf8').replace(/\r?\n$/, '')
      if (content !== '') return content
      problems.addLine(key, `${name}: the file is empty`)
    } catch (err) {
      problems.addLine(key, `${name}: the file cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    }
    return undefined
  }

  const serverInput: Record<string, unknown> = {}
  for (const [key, setting] of Object.entries(SERVER_SETTINGS)) serverInput[key] = raw(key, setting)
  if (typeof serverInput.trustProxy === 'string') {
    serverInput.trustProxy = parseTrustProxy(serverInput.trustProxy)
    if (serverInput.trustProxy === undefined) problems.add('trustProxy', ruleOf(SERVER_SETTINGS.trustProxy))
  }
  const server = runSchema(validateServer, SERVER_SETTINGS, serverInput, problems) as unknown as ServerSettings

  const gatewayInput: Record<string, unknown> = {}
  for (const [key, setting] of Object.entries(GATEWAY_SETTINGS)) gatewayInput[key] = raw(key, setting)
  const hostOk = !problems.has('host')
  const loopback = hostOk && isLoopbackHost(server.host)
  if (gatewayInput.publicUrl === undefined && !problems.has('publicUrl')) {
    // http://localhost:<port> by default keeps the documented upstream callback URL working.
    const port = problems.has('port') ? DEFAULT_PORT : server.port
    gatewayInput.publicUrl = `http://localhost:${port}`
    if (hostOk && !loopback) {
      warnings.push(
        `${cliLabel('publicUrl')} is not set, so clients are sent to ${gatewayInput.publicUrl as string}; set it unless that is how they reach this gateway`
      )
    }
  }

  const resolved = resolveGateway(gatewayInput, problems, cliLabel)
  if (resolved !== undefined && usesDefaultPassword(resolved.options) && hostOk) {
    // Behind a TLS proxy the listener is loopback and the public URL is not: either one
    // reachable from elsewhere refuses.
    const publicHost = new URL(resolved.options.publicUrl).hostname
    if (!loopback) {
      problems.add(
        'password',
        `the published default credentials (${DEFAULT_USERNAME}/${DEFAULT_PASSWORD}) are refused on host ${server.host}, which other machines can reach: set MCP_GATEWAY_USERNAME and MCP_GATEWAY_PASSWORD`
      )
    } else if (!isLoopbackHost(publicHost)) {
      problems.add(
        'password',
        `the published default credentials (${DEFAULT_USERNAME}/${DEFAULT_PASSWORD}) are refused with public URL host ${publicHost}, which other machines can reach: set MCP_GATEWAY_USERNAME and MCP_GATEWAY_PASSWORD`
      )
    } else {
      warnings.push(
        `MCP_GATEWAY_USERNAME/MCP_GATEWAY_PASSWORD are the published defaults (${DEFAULT_USERNAME}/${DEFAULT_PASSWORD}): fine on ${server.host} for a try-out, never anywhere else`
      )
    }
  }
  if (resolved === undefined || problems.size > 0) throw new ConfigError(problems.list())
  return { server, gateway: resolved.options, warnings: [...warnings, ...resolved.warnings] }
}
