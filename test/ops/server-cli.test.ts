import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { verifyPassword } from '../../lib/passwords.js'

/*
 * server.ts's own exits, besides shutdown (shutdown.test.ts): --help, and a port it cannot listen on.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
t.setTimeout(120_000)

interface Run { code: number | null, stdout: string, stderr: string }

async function runServer (args: string[], input?: string): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('MCP_GATEWAY_')))
  const child = spawn(process.execPath, [...process.execArgv, 'server.ts', ...args], { cwd: ROOT, env })
  child.stdin.end(input)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8') })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const [code] = await once(child, 'exit') as [number | null]
  clearTimeout(timer)
  return { code, stdout, stderr }
}

t.test('--help: the usage on stdout, exit 0, nothing started', async (t) => {
  const { code, stdout } = await runServer(['--help'])
  t.equal(code, 0)
  t.match(stdout, /^Usage: mcp-oauth-gateway/)
})

t.test('a port already taken: a fatal log line and exit 1', async (t) => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { blocker.close() })
  const port = (blocker.address() as AddressInfo).port
  const { code, stdout } = await runServer(['--host', '127.0.0.1', '--port', String(port), '--upstream-rs', 'https://api.githubcopilot.com/mcp'])
  t.equal(code, 1)
  t.match(stdout, /"level":60.*"msg":"could not start"/, 'logged at fatal')
  t.match(stdout, /EADDRINUSE/, 'with the cause')
})

t.test('each start-up warning is logged once, with the flag and variable names (not again by the plugin)', async (t) => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { blocker.close() })
  const port = (blocker.address() as AddressInfo).port
  // Default credentials on loopback, no secret, both upstream endpoints without scopes: three warnings.
  const { stdout } = await runServer(['--host', '127.0.0.1', '--port', String(port), '--upstream-rs', 'https://api.githubcopilot.com/mcp',
    '--upstream-authorize-endpoint', 'https://github.com/login/oauth/authorize', '--upstream-token-endpoint', 'https://github.com/login/oauth/access_token', '--upstream-client-id', 'Iv1.x'])
  const warnings = stdout.split('\n').filter((line) => line.includes('"level":40')).map((line) => JSON.parse(line).msg as string)
  t.equal(warnings.filter((w) => w.includes('published defaults')).length, 1, 'default credentials')
  t.equal(warnings.filter((w) => w.includes('secret')).length, 1, 'generated secret')
  t.equal(warnings.filter((w) => w.includes('upstream endpoints are set')).length, 1, 'no upstream scopes')
  t.match(warnings.join('\n'), /--upstream-scopes \(MCP_GATEWAY_UPSTREAM_SCOPES\)/, 'named as the operator sets it')
  t.equal(warnings.length, 3)
})

t.test('a store that cannot be reached at start: a fatal log line (no password in it) and exit 1', async (t) => {
  const { code, stdout, stderr } = await runServer(['--host', '127.0.0.1', '--port', '0', '--upstream-rs', 'https://api.githubcopilot.com/mcp',
    '--store', 'redis://:store-password-1234@127.0.0.1:1', '--secret', 'a-secret-of-at-least-32-characters-long!'])
  t.equal(code, 1)
  t.match(stdout, /"level":60.*"msg":"could not start"/, 'logged at fatal, as JSON')
  t.match(stdout, /the store is unavailable/, 'with the cause')
  t.equal(stderr, '', 'no uncaught rejection on stderr')
  t.notMatch(stdout + stderr, /store-password-1234/, 'the store password is not in the output')
})

t.test('hash-password: the first line of stdin in, a users-file hash out; never a password as an argument', async (t) => {
  const { code, stdout } = await runServer(['hash-password'], 'pass word ü\nignored second line\n')
  t.equal(code, 0)
  const hash = stdout.trim()
  t.match(hash, /^\$scrypt\$ln=15,r=8,p=1\$/)
  t.ok(await verifyPassword('pass word ü', hash), 'the hash is of the first line, as typed')
  const empty = await runServer(['hash-password'], '\n')
  t.equal(empty.code, 1)
  t.match(empty.stderr, 'hash-password: no password given')
  const argument = await runServer(['hash-password', 'secret'])
  t.equal(argument.code, 1, 'a password given as an argument is not taken')
  t.notMatch(argument.stderr + argument.stdout, 'secret')
})
