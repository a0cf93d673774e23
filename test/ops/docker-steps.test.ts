import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { command, parseDockerfile, parseInstructions, words, type Stage, type Step } from '../../scripts/dockerfile.mjs'
import { startFakeGithub } from '../helpers/fake-github.js'
import { SECRET } from '../helpers/gateway.js'
import { GatewayProcess, freePort, gatewayFlags } from '../helpers/process.js'

/*
 * Issue: "A multi-stage Dockerfile (build with dev dependencies, run with production ones only, non-root
 * user, HEALTHCHECK on /healthz, listens on 0.0.0.0 inside the container, all configuration by env). No
 * Docker engine runs on our machines: … check its build and run steps by running the same commands outside
 * Docker in a test or script."
 *
 * The full replay (two `npm ci`, the build, the built server started from env only, its HEALTHCHECK, a
 * SIGTERM) takes one to two minutes: that is `npm run docker-check` (scripts/docker-check.mjs), run by CI.
 * This file is the fast part, in every `npm test`: what the Dockerfile says, read with the same parser, and
 * its HEALTHCHECK command run against a real gateway process.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const stages = parseDockerfile(readFileSync(`${ROOT}Dockerfile`, 'utf8'))
const build = stages[0] as Stage
const runtime = stages.at(-1) as Stage

const stepsOf = <K extends Step['instruction']>(stage: Stage, instruction: K) =>
  stage.steps.filter((s): s is Extract<Step, { instruction: K }> => s.instruction === instruction)
const envOf = (stage: Stage): Record<string, string> => Object.assign({}, ...stepsOf(stage, 'ENV').map((s) => s.env))

t.test('Dockerfile: build with dev dependencies, run with production ones only', async (t) => {
  t.ok(stages.length >= 2, 'multi-stage')
  // A maintained LTS (an even major from 24 on), pinned to the exact release .ci/run installs and runs the suite on.
  const [, major = '0'] = /^node:(\d+)\.\d+\.\d+-slim$/.exec(build.image) ?? []
  t.ok(Number(major) >= 24 && Number(major) % 2 === 0, `an exact Node LTS release, slim (${build.image})`)
  const oldest = (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { engines: { node: string } }).engines.node
  t.match(oldest, /^>=\d+\.\d+\.\d+$/, 'package.json engines names one oldest release, the one .ci/run tests')
  t.ok(Number(oldest.slice(2).split('.')[0]) <= Number(major), `the image's Node is within engines (${oldest})`)
  t.equal(build.image, runtime.image, 'the same base image for both stages')
  const buildRuns = stepsOf(build, 'RUN').map((s) => s.text)
  t.ok(buildRuns.some((r) => /^npm ci\b/.test(r) && !r.includes('--omit')), 'build stage: npm ci with dev dependencies')
  t.ok(buildRuns.includes('npm run build'), 'build stage: npm run build')
  const runtimeRuns = stepsOf(runtime, 'RUN').map((s) => s.text)
  t.ok(runtimeRuns.some((r) => /^npm ci --omit=dev\b/.test(r)), 'runtime stage: npm ci --omit=dev')
  t.same(stepsOf(runtime, 'COPY').find((c) => c.from !== undefined), { instruction: 'COPY', from: build.name, sources: ['/app/dist'], dest: './dist' }, 'runtime stage: only dist from the build stage')
  t.equal(envOf(runtime).NODE_ENV, 'production', 'NODE_ENV=production for npm and dependencies')
})

t.test('Dockerfile: every COPY source exists and the build sees everything tsconfig.build.json compiles', async (t) => {
  const copied = new Set<string>()
  for (const copy of [...stepsOf(build, 'COPY'), ...stepsOf(runtime, 'COPY')].filter((c) => c.from === undefined)) {
    for (const source of copy.sources) {
      if (source.includes('*')) {
        const re = new RegExp(`^${source.replace(/\./g, '\\.').replace(/\*/g, '[^/]*')}$`)
        t.ok(readdirSync(ROOT).some((name) => re.test(name)), `${source} matches files`)
      } else {
        t.ok(existsSync(`${ROOT}${source}`), `${source} exists`)
      }
      copied.add(source)
    }
  }
  const include = (JSON.parse(readFileSync(`${ROOT}tsconfig.build.json`, 'utf8')) as { include: string[] }).include
  for (const entry of include) t.ok(copied.has(entry), `tsconfig.build.json's ${entry} is copied into the build stage`)
  for (const file of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) t.ok(copied.has(file), `${file} is copied`)
})

t.test('Dockerfile: non-root, 0.0.0.0, configured by env, healthcheck, exec-form CMD', async (t) => {
  const env = envOf(runtime)
  const user = stepsOf(runtime, 'USER').at(-1)?.user
  t.ok(user !== undefined && user !== 'root' && user !== '0', `USER ${String(user)}`)
  t.equal(env.MCP_GATEWAY_HOST, '0.0.0.0', 'listens on every interface inside the container')
  t.same(stepsOf(runtime, 'EXPOSE').flatMap((e) => e.ports), [Number(env.MCP_GATEWAY_PORT)], 'EXPOSE is the port it listens on')
  t.ok(Number(env.MCP_GATEWAY_SHUTDOWN_GRACE) > 0 && Number(env.MCP_GATEWAY_SHUTDOWN_GRACE) < 10, 'the shutdown grace ends before docker stop\'s SIGKILL (10 s)')
  t.same(Object.keys(env).filter((name) => /USERNAME|PASSWORD|SECRET|CLIENT_SECRET/.test(name)), [], 'no credential baked into the image')
  t.same(stepsOf(runtime, 'CMD').at(-1), { instruction: 'CMD', argv: ['node', 'dist/server.js'], exec: true }, 'exec-form CMD: node is PID 1 and gets SIGTERM')
  const health = stepsOf(runtime, 'HEALTHCHECK').at(-1)
  t.equal(health?.argv[0], 'node', 'HEALTHCHECK with node (the slim image has no curl)')
  t.match(health?.argv.join(' '), /\/healthz/, 'on /healthz')
  t.ok(health?.options.timeout !== undefined && health.options['start-period'] !== undefined, 'with a timeout and a start period')
})

t.test('the HEALTHCHECK command: exit 0 against a running gateway, 1 once it is gone', async (t) => {
  const health = stepsOf(runtime, 'HEALTHCHECK').at(-1)
  if (health === undefined) throw new Error('no HEALTHCHECK')
  const github = await startFakeGithub()
  t.teardown(() => github.close())
  const port = await freePort()
  const gw = await GatewayProcess.start(t, port, gatewayFlags({ port, publicUrl: `http://127.0.0.1:${port}`, store: 'memory', storePrefix: 'mcp-gateway:', secret: SECRET, github, upstreamRs: github.resourceUrl }), {}, 30_000)
  // As Docker runs it: the image's environment (its port here is a free one), plain node, no loader.
  const env = { PATH: process.env.PATH ?? '', ...envOf(runtime), MCP_GATEWAY_PORT: String(port) }
  const healthcheck = async (): Promise<number | null> => {
    const child = spawn(health.argv[0] === 'node' ? process.execPath : health.argv[0] as string, health.argv.slice(1), { env, stdio: 'ignore' })
    const [code] = await once(child, 'exit') as [number | null]
    return code
  }
  t.equal(await healthcheck(), 0, 'healthy')
  await gw.kill()
  t.equal(await healthcheck(), 1, 'unhealthy once nothing answers')
})

t.test('scripts/dockerfile.mjs reads what it knows and refuses the rest by name', async (t) => {
  t.same(parseInstructions('# c\n\nFROM a\nRUN x \\\n  # inside\n  y\n'), [
    { instruction: 'FROM', args: 'a', line: 3 },
    { instruction: 'RUN', args: 'x y', line: 4 }
  ], 'comments, blank lines and continuations')
  t.throws(() => parseInstructions('FROM a\nADD x y\n'), /line 2: ADD is not an instruction docker-check knows/)
  t.throws(() => parseInstructions('FROM a\nRUN x \\\n'), /continuation/)
  t.same(parseInstructions('FROM a\nRUN x \\\n\n  y\n'), [{ instruction: 'FROM', args: 'a', line: 1 }, { instruction: 'RUN', args: 'x y', line: 2 }], 'a blank line inside a continuation')

  t.same(words('a "b c" \'d e\' "f\\"g" h\\i'), ['a', 'b c', 'd e', 'f"g', 'h\\i'], 'quotes group, backslash escapes in double quotes')
  t.same(words('""'), [''], 'an empty quoted word')
  t.throws(() => words('"open'), /unterminated quote/)
  t.same(command('["a", "b"]'), { exec: true, argv: ['a', 'b'] }, 'exec form')
  t.same(command('a b'), { exec: false, argv: ['/bin/sh', '-c', 'a b'] }, 'shell form')
  t.throws(() => command('[1]'), /not an exec-form command/)

  t.same(parseDockerfile('FROM a\nENV A 1 2\nCMD run it\nHEALTHCHECK CMD x\nCOPY ["s", "d/"]\n')[0]?.steps, [
    { instruction: 'ENV', env: { A: '1 2' } },
    { instruction: 'CMD', argv: ['/bin/sh', '-c', 'run it'], exec: false },
    { instruction: 'HEALTHCHECK', options: {}, argv: ['/bin/sh', '-c', 'x'] },
    { instruction: 'COPY', sources: ['s'], dest: 'd/' }
  ], 'legacy ENV, shell-form CMD and HEALTHCHECK, exec-form COPY')
  t.throws(() => parseDockerfile(''), /no FROM/)
  t.throws(() => parseDockerfile('RUN x\n'), /line 1: RUN before FROM/)
  t.throws(() => parseDockerfile('FROM a b\n'), /not "image \[AS name\]"/)
  t.throws(() => parseDockerfile('FROM a AS\n'), /not "image \[AS name\]"/)
  t.throws(() => parseDockerfile('FROM a AS b c\n'), /not "image \[AS name\]"/)
  t.throws(() => parseDockerfile('FROM a\nENV A=1 =2\n'), /ENV =2 is not NAME=value/)
  t.throws(() => parseDockerfile('FROM a\nCOPY x\n'), /a source and a destination/)
  t.throws(() => parseDockerfile('FROM a\nCOPY --chown=1 x y\n'), /COPY chown: only --from is replayed/)
  t.throws(() => parseDockerfile('FROM a\nHEALTHCHECK NONE\n'), /HEALTHCHECK must be/)
})
