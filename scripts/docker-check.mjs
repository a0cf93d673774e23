#!/usr/bin/env node
/**
 * `npm run docker-check`: the Dockerfile's build and run steps, replayed outside Docker (no engine runs on
 * our machines). Each stage gets a temporary directory standing for its WORKDIR; COPY copies from the
 * repository (or from an earlier stage's directory), RUN runs the same command there with the stage's ENV,
 * and then the image's CMD is started with configuration from the environment only, its HEALTHCHECK command
 * is run against it, and it is stopped the way `docker stop` stops it (SIGTERM).
 *
 * What cannot be replayed is said so: the base image is the Node that runs this script (its version is compared:
 * .ci/run runs it with the image's Node on PATH),
 * USER is only applied when this runs as root and the user exists, and `npm cache clean --force` is skipped
 * (in the image it trims a layer; here it would empty this machine's npm cache). npm runs with
 * --prefer-offline so a warm cache makes it quick.
 *
 *   node scripts/docker-check.mjs [--keep]     --keep leaves the temporary directories for a look
 *
 * Prints one `ok`/`FAIL` line per check and ends with "N passed, M failed"; exits 1 on any failure.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises'
import { createServer } from 'node:net'
import { networkInterfaces, tmpdir } from 'node:os'
import { basename, isAbsolute, join, posix, relative, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseDockerfile } from './dockerfile.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const keep = process.argv.includes('--keep')
const started = Date.now()
let passed = 0
let failed = 0

function check (ok, what, detail) {
  if (ok) passed++
  else failed++
  const shown = !ok && detail !== undefined ? `\n  ${String(detail).trim().split('\n').slice(-15).join('\n  ')}` : ''
  console.log(`${ok ? 'ok' : 'FAIL'} - ${what}${shown}`)
  return ok
}
const note = (text) => console.log(`# ${text}`)

/** This machine's environment without what would leak into the replay: our settings, npm's and loaders. */
function baseEnv () {
  const env = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (
      name.startsWith('MCP_GATEWAY_') ||
      name.startsWith('npm_') ||
      name === 'NODE_ENV' ||
      name === 'NODE_OPTIONS' ||
      name.startsWith('TAP')
    ) continue
    env[name] = value
  }
  return { ...env, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' }
}

async function exists (path) {
  return await stat(path).then(() => true, () => false)
}

/** `*` and `?` in the last segment only, which is all our Dockerfile uses. */
async function expand (pattern) {
  if (!/[*?]/.test(pattern)) return [join(ROOT, pattern)]
  if (pattern.includes('/')) throw new Error(`COPY ${pattern}: globs are replayed in the last segment only`)
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`)
  const names = (await readdir(ROOT)).filter((name) => re.test(name)).sort()
  if (names.length === 0) throw new Error(`COPY ${pattern}: nothing matches`)
  return names.map((name) => join(ROOT, name))
}

/** A path inside a stage's image, as a path in that stage's directory. */
function inStage (state, path) {
  const full = posix.resolve(state.workdir ?? '/', path)
  const rel = posix.relative(state.workdir ?? '/', full)
  if (rel.startsWith('..') || state.workdir === undefined) {
    throw new Error(`${path} is outside WORKDIR ${String(state.workdir)}: not replayed`)
  }
  return join(state.dir, rel)
}

async function copy (state, step, stages) {
  const sources = []
  if (step.from === undefined) {
    for (const source of step.sources) {
      if (isAbsolute(source) || source.split('/').includes('..')) {
        throw new Error(`COPY ${source}: outside the build context`)
      }
      sources.push(...await expand(source))
    }
  } else {
    const from = stages.get(step.from)
    if (from === undefined) throw new Error(`COPY --from=${step.from}: no such stage before this one`)
    for (const source of step.sources) sources.push(inStage(from, source))
  }
  const dest = inStage(state, step.dest)
  const intoDir = step.dest.endsWith('/') || sources.length > 1
  for (const source of sources) {
    if (!await exists(source)) throw new Error(`COPY: ${relative(ROOT, source)} does not exist`)
    const isDir = (await stat(source)).isDirectory()
    // Docker copies a directory's contents, and a file into a destination ending in /.
    const target = isDir ? dest : intoDir ? join(dest, basename(source)) : dest
    await mkdir(isDir ? target : resolve(target, '..'), { recursive: true })
    await cp(source, target, { recursive: true })
  }
}

/** The uid/gid of a user in /etc/passwd, when this runs as root and the user exists; otherwise undefined. */
async function userIds (user) {
  if (process.getuid?.() !== 0) return undefined
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '')
  const entry = passwd.split('\n').map((line) => line.split(':')).find((f) => f[0] === user || f[2] === user)
  return entry === undefined ? undefined : { uid: Number(entry[2]), gid: Number(entry[3]) }
}

function run (argv, options) {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit'], ...options })
  return once(child, 'exit').then(([code, signal]) => ({ code, signal }))
}

/** Spawns a command, keeping what it writes; `exit` settles when it ends. */
function start (argv, options) {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], ...options })
  let output = ''
  child.stdout.on('data', (chunk) => { output += chunk })
  child.stderr.on('data', (chunk) => { output += chunk })
  const exit = once(child, 'exit').then(([code, signal]) => ({ code, signal }))
  return { child, exit, output: () => output }
}

async function within (promise, ms) {
  let timer
  const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve(undefined), ms) })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

async function freePort () {
  const server = createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function replayStages (tmp, dockerfileStages) {
  const stages = new Map()
  let state
  for (const [index, stage] of dockerfileStages.entries()) {
    state = {
      name: stage.name ?? String(index),
      image: stage.image,
      dir: join(tmp, stage.name ?? `stage-${index}`),
      workdir: undefined,
      env: {},
      user: undefined,
      ports: [],
      healthcheck: undefined,
      cmd: undefined
    }
    await mkdir(state.dir)
    note(`stage ${state.name} (FROM ${stage.image}) in ${state.dir}`)
    for (const step of stage.steps) {
      if (step.instruction === 'WORKDIR') {
        if (state.workdir !== undefined || !posix.isAbsolute(step.path)) {
          throw new Error(`WORKDIR ${step.path}: one absolute WORKDIR per stage is replayed`)
        }
        state.workdir = step.path
      } else if (step.instruction === 'ENV') {
        Object.assign(state.env, step.env)
      } else if (step.instruction === 'COPY') {
        await copy(state, step, stages)
      } else if (step.instruction === 'RUN') {
        const argv = step.argv[0] === '/bin/sh' && step.argv[2].includes('npm cache clean --force')
          ? ['/bin/sh', '-c', step.argv[2].replaceAll('npm cache clean --force', 'true')]
          : step.argv
        if (argv !== step.argv) note('`npm cache clean --force` skipped: it would empty this machine\'s npm cache')
        note(`RUN ${step.text}`)
        const t0 = Date.now()
        const ids = state.user === undefined ? undefined : await userIds(state.user)
        const result = await run(argv, { cwd: inStage(state, '.'), env: { ...baseEnv(), ...state.env }, ...ids })
        const seconds = Math.round((Date.now() - t0) / 1000)
        const ran = check(
          result.code === 0,
          `stage ${state.name}: RUN ${step.text} (${seconds} s)`,
          `exit ${result.code ?? result.signal}`
        )
        if (!ran) {
          throw new Error('a RUN step failed')
        }
      } else if (step.instruction === 'USER') {
        state.user = step.user
      } else if (step.instruction === 'EXPOSE') {
        state.ports.push(...step.ports)
      } else if (step.instruction === 'HEALTHCHECK') {
        state.healthcheck = step
      } else {
        state.cmd = step
      }
    }
    stages.set(state.name, state)
  }
  return state
}

async function checkImage (final) {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8'))
  // The image's Node: an exact release (node:24.22.3-slim) must be the one this runs on, a major alone (node:24-slim)
  // that major. .ci/run puts that Node first on PATH (installed from the npm registry) before it runs this.
  const [, imageVersion = '', exact] = /^node:(\d+(\.\d+\.\d+)?)/.exec(final.image) ?? []
  const here = exact === undefined ? process.versions.node.split('.')[0] : process.versions.node
  check(
    imageVersion === here,
    `the base image (${final.image}) is the Node this replay runs on (${process.versions.node}), so the replay means something`,
    `run it with Node ${imageVersion} first on PATH, as .ci/run does`
  )
  check(
    final.user !== undefined && final.user !== 'root' && final.user !== '0',
    `runs as a non-root user (USER ${String(final.user)})`
  )
  check(final.env.MCP_GATEWAY_HOST === '0.0.0.0', 'listens on 0.0.0.0 inside the container (ENV MCP_GATEWAY_HOST)')
  check(
    final.ports.includes(Number(final.env.MCP_GATEWAY_PORT)),
    `EXPOSE ${final.ports.join(' ')} is the port it listens on (ENV MCP_GATEWAY_PORT=${String(final.env.MCP_GATEWAY_PORT)})`
  )
  check(final.healthcheck !== undefined, 'has a HEALTHCHECK')
  check(
    final.cmd?.exec === true,
    `CMD in exec form, so node is PID 1 and gets docker stop's SIGTERM (${JSON.stringify(final.cmd?.argv)})`
  )
  const modules = join(final.dir, 'node_modules')
  const devPresent = []
  for (const name of Object.keys(pkg.devDependencies ?? {})) {
    if (await exists(join(modules, name))) devPresent.push(name)
  }
  check(devPresent.length === 0, 'no dev dependency in the runtime stage', devPresent.join(', '))
  const prodMissing = []
  for (const name of Object.keys(pkg.dependencies ?? {})) if (!await exists(join(modules, name))) prodMissing.push(name)
  check(prodMissing.length === 0, 'every production dependency in the runtime stage', prodMissing.join(', '))
  const entry = final.cmd?.argv.find((a) => a.endsWith('.js'))
  check(
    entry !== undefined && await exists(join(final.dir, entry)),
    `the CMD's script (${String(entry)}) was built and copied`
  )
  const runtimeFiles = ['dist', 'node_modules', 'package.json', 'package-lock.json']
  const leftovers = (await readdir(final.dir)).filter((name) => !runtimeFiles.includes(name))
  check(
    leftovers.length === 0,
    'the runtime stage holds dist, node_modules and the package files only',
    leftovers.join(', ')
  )
}

async function runImage (final) {
  const cwd = inStage(final, '.')
  // USER: that user when it exists here; else, as root, `nobody` stands in (unprivileged, owns none of the files).
  let ids = final.user === undefined ? undefined : await userIds(final.user)
  if (final.user !== undefined && ids === undefined) {
    ids = await userIds('nobody')
    note(
      `USER ${final.user}: no such user here, ${ids === undefined ? 'running as this user (not root, or no nobody)' : 'running as nobody instead'}`
    )
  }
  if (ids !== undefined) note(`CMD and HEALTHCHECK run as uid ${ids.uid}, which owns none of the files`)
  const port = await freePort()
  // The image's environment, plus what an operator passes with -e: the port is free one here, not 8002.
  const image = { ...baseEnv(), ...final.env, MCP_GATEWAY_PORT: String(port), MCP_GATEWAY_UPSTREAM_RS: 'https://api.githubcopilot.com/mcp' }
  const healthcheck = async (env = image) => await run(final.healthcheck.argv, { cwd, env, stdio: 'ignore', ...ids })

  // 1. Only the upstream set: on 0.0.0.0 the published default credentials are refused.
  const refused = start(final.cmd.argv, { cwd, env: image, ...ids })
  const refusedExit = await within(refused.exit, 30_000)
  if (refusedExit === undefined) refused.child.kill('SIGKILL')
  check(refusedExit?.code === 1 && /default credentials .* refused/.test(refused.output()),
    'on 0.0.0.0 without MCP_GATEWAY_USERNAME/PASSWORD it refuses to start (exit 1, says why)', refused.output())

  // 2. Configured by environment only, as `docker run -e …` would.
  const env = {
    ...image,
    MCP_GATEWAY_USERNAME: 'docker-check',
    MCP_GATEWAY_PASSWORD: randomBytes(18).toString('base64url'),
    MCP_GATEWAY_SECRET: randomBytes(32).toString('base64url')
  }
  const gateway = start(final.cmd.argv, { cwd, env, ...ids })
  try {
    let healthy = false
    const deadline = Date.now() + 30_000
    while (!healthy && Date.now() < deadline && gateway.child.exitCode === null) {
      healthy = (await healthcheck(env)).code === 0
      if (!healthy) await sleep(250)
    }
    check(
      healthy,
      `CMD ${final.cmd.argv.join(' ')} starts with env-only configuration and the HEALTHCHECK command exits 0`,
      gateway.output()
    )
    check(/"level":/.test(gateway.output()) && !gateway.output().includes('\u001b['), 'logs JSON lines (stdout is not a terminal)', gateway.output())

    const external = Object.values(networkInterfaces())
      .flat()
      .find((i) => i !== undefined && i.family === 'IPv4' && !i.internal)
    if (external === undefined) {
      note('no non-loopback IPv4 address here: the 0.0.0.0 bind is not checked from outside')
    } else {
      const res = await fetch(`http://${external.address}:${port}/healthz`).then((r) => r.status, (err) => String(err))
      check(res === 200, `reachable on a non-loopback address (${external.address}): it listens on 0.0.0.0`, res)
    }

    // 3. `docker stop`: SIGTERM, then a clean exit 0 well before its 10 s SIGKILL.
    const stopAt = Date.now()
    gateway.child.kill('SIGTERM')
    const stopped = await within(gateway.exit, 15_000)
    check(
      stopped?.code === 0 && Date.now() - stopAt < 10_000,
      `SIGTERM (docker stop): exit 0 in ${Date.now() - stopAt} ms`,
      gateway.output()
    )
    check((await healthcheck(env)).code !== 0, 'the HEALTHCHECK command fails once the gateway is gone')
  } finally {
    if (gateway.child.exitCode === null && gateway.child.signalCode === null) gateway.child.kill('SIGKILL')
  }
}

const tmp = await mkdtemp(join(tmpdir(), 'mcp-gateway-docker-check-'))
// Readable by the unprivileged user the CMD runs as, as /app is in the image; writable by root only.
await chmod(tmp, 0o755)
try {
  const stages = parseDockerfile(await readFile(join(ROOT, 'Dockerfile'), 'utf8'))
  check(stages.length >= 2, `multi-stage (${stages.length} stages: ${stages.map((s) => s.name ?? s.image).join(', ')})`)
  const final = await replayStages(tmp, stages)
  await checkImage(final)
  if (final.cmd !== undefined && final.healthcheck !== undefined) await runImage(final)
} catch (err) {
  check(false, 'replay', err instanceof Error ? err.message : String(err))
} finally {
  if (keep) note(`kept ${tmp}`)
  else await rm(tmp, { recursive: true, force: true })
}
note(`${Math.round((Date.now() - started) / 1000)} s`)
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
