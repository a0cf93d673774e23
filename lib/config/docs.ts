/**
 * The settings table as people read it: `--help`, and the README's options table (scripts/readme-options.mjs
 * writes it, test/ops/readme-options.test.ts fails when the README is stale).
 */
import { SETTINGS, type Setting } from './settings.js'

const ALL_SETTINGS = Object.values(SETTINGS as Record<string, Setting>)

/** The default as the help says it: its own text, or the value the schema fills in. */
function defaultText (s: Setting): string | undefined {
  return s.defaultText ?? (s.default === undefined ? undefined : String(s.default))
}

/** Usage text: every flag with its variable and default, then the environment-only settings. */
export function helpText (): string {
  const rows = ALL_SETTINGS.filter((s) => s.flag !== undefined)
    .map((s) => [`--${s.flag as string}${s.arg === '' ? '' : ` ${s.arg}`}`, s.env, s] as const)
  const width = Math.max(...rows.map(([flag]) => flag.length))
  const envWidth = Math.max(...ALL_SETTINGS.map((s) => s.env.length))
  const describe = (s: Setting) => {
    const text = defaultText(s)
    return s.help + (text === undefined ? '' : ` [default: ${text}]`)
  }
  return [
    'Usage: mcp-oauth-gateway --upstream-rs <url> [options]',
    '       mcp-oauth-gateway hash-password   (reads a password from stdin, prints its hash for --users-file)',
    '       mcp-oauth-gateway grants list [--user <name>] [--json] | revoke <grant-id> | revoke --user <name>',
    '',
    'An OAuth 2.1 gateway in front of a remote MCP server that has its own OAuth (GitHub first).',
    'Flags win over environment variables, which win over defaults. An empty variable counts as unset.',
    '',
    'Options:',
    ...rows.map(([flag, envName, s]) => `  ${flag.padEnd(width)}  ${envName.padEnd(envWidth)}  ${describe(s)}`),
    `  ${'-h, --help'.padEnd(width)}  ${''.padEnd(envWidth)}  Show this help`,
    '',
    'Environment only (a password given as a flag would be visible to every user in `ps`):',
    ...ALL_SETTINGS.filter((s) => s.flag === undefined).map((s) => `  ${s.env.padEnd(envWidth)}  ${describe(s)}`),
    '',
    'The default credentials are accepted only when --host and the public URL are loopback; anywhere else the gateway refuses to start.',
    'Secrets (MCP_GATEWAY_SECRET, MCP_GATEWAY_PASSWORD, MCP_GATEWAY_UPSTREAM_CLIENT_SECRET) may instead be read from the file a <VARIABLE>_FILE names.',
    ''
  ].join('\n')
}

/** The default as the README says it: its own text, the value in backticks, or the help's words. */
function readmeDefault (s: Setting): string {
  if (s.docDefault !== undefined) return s.docDefault
  const isValue = s.default !== undefined && typeof s.default !== 'object'
  return isValue ? `\`${String(s.default)}\`` : s.defaultText ?? ''
}

/** The README's options table: one Markdown row per setting, flags first, environment-only settings last. */
export function readmeOptionsTable (): string {
  const cell = (text: string) => text.replaceAll('|', '\\|')
  const row = (s: Setting) => {
    const flag = s.flag === undefined ? ' ' : ` \`--${s.flag}\` `
    return `|${flag}| \`${s.env}\` | ${cell(readmeDefault(s))} | ${cell(s.doc ?? s.help)} |`
  }
  return [
    '| Flag | Environment variable | Default | Meaning |',
    '|---|---|---|---|',
    ...ALL_SETTINGS.filter((s) => s.flag !== undefined).map(row),
    ...ALL_SETTINGS.filter((s) => s.flag === undefined).map(row)
  ].join('\n')
}
