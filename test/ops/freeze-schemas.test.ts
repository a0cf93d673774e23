import { execFile } from 'node:child_process'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { frozenSource } from '../../scripts/freeze-schemas.mjs'

/*
 * `npm run build` rewrites every compiled *schema.js as the JSON its TypeBox schemas evaluate to, so the running
 * gateway never loads TypeBox (scripts/freeze-schemas.mjs). The tests run the TypeScript sources, not dist/: this
 * file holds that freezing each real schema module gives back exactly what it exports, and that the script
 * rewrites what it should, leaves the rest, and stops on what JSON cannot hold.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SCRIPT = join(ROOT, 'scripts/freeze-schemas.mjs')
const run = promisify(execFile)

/** The exports of a module whose source is `source`. */
const load = async (source: string): Promise<Record<string, unknown>> =>
  await import(`data:text/javascript,${encodeURIComponent(source)}`) as Record<string, unknown>

const schemaModules = ['lib', 'routes', 'plugins'].flatMap((dir) =>
  readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('schema.ts')).map((file) => `${dir}/${file}`))

t.test('every *schema.ts module freezes to exactly what it exports', async (t) => {
  // Fails if a schema module is renamed away from *schema.ts (the build would stop freezing it) or is added
  // without this list being read again.
  t.same(schemaModules.sort(), ['lib/config/schema.ts', 'routes/authorize/schema.ts', 'routes/discovery/schema.ts',
    'routes/register/schema.ts', 'routes/schema.ts', 'routes/token/schema.ts'])
  for (const file of schemaModules) {
    const exports = { ...await import(pathToFileURL(join(ROOT, file)).href) as Record<string, unknown> }
    const frozen = frozenSource(exports, file)
    t.notMatch(frozen, /\bimport\b/, `${file}: the frozen module imports nothing, TypeBox least of all`)
    t.strictSame({ ...await load(frozen) }, exports, `${file}: the same exports, value for value`)
  }
})

t.test('frozenSource refuses what JSON would change, naming the export', async (t) => {
  const refusals: Array<[string, unknown]> = [
    ['aFunction', () => 1],
    ['aPattern', { type: 'string', pattern: /x/ }],
    ['anUndefined', undefined],
    ['aNestedUndefined', { type: 'string', default: undefined }],
    ['aDate', new Date(0)],
    ['default', { type: 'string' }]
  ]
  for (const [name, value] of refusals) {
    t.throws(() => frozenSource({ [name]: value }, 'x-schema.js'), { message: new RegExp(`^x-schema\\.js: the export ${name} is not plain JSON data`) }, name)
  }
})

t.test('the script freezes *schema.js under the directory, and only those', async (t) => {
  const dir = t.testdir({
    'package.json': JSON.stringify({ type: 'module' }),
    'limits.js': 'export const MAX = 64\n',
    'other.js': "import { MAX } from './limits.js'\nexport const handler = () => MAX\n",
    routes: {
      'schema.js': "import { MAX } from '../limits.js'\nexport const Body = { type: 'object', properties: { name: { type: 'string', maxLength: MAX } } }\n//# sourceMappingURL=schema.js.map\n",
      'schema.js.map': '{}',
      'schema.d.ts': 'export declare const Body: unknown\n'
    },
    'config-schema.js': "export const LEVELS = ['info', 'debug']\n"
  })
  const other = readFileSync(join(dir, 'other.js'), 'utf8')
  const { stdout } = await run(process.execPath, [SCRIPT, dir])
  t.equal(stdout.trim(), 'froze 2 schema modules: config-schema.js, routes/schema.js')
  const frozen = readFileSync(join(dir, 'routes/schema.js'), 'utf8')
  t.notMatch(frozen, /import|sourceMappingURL/)
  t.strictSame({ ...await load(frozen) }, { Body: { type: 'object', properties: { name: { type: 'string', maxLength: 64 } } } })
  t.strictSame({ ...await load(readFileSync(join(dir, 'config-schema.js'), 'utf8')) }, { LEVELS: ['info', 'debug'] })
  t.notOk(existsSync(join(dir, 'routes/schema.js.map')), 'the stale source map is removed')
  t.equal(readFileSync(join(dir, 'routes/schema.d.ts'), 'utf8'), 'export declare const Body: unknown\n', 'types are left as tsc wrote them')
  t.equal(readFileSync(join(dir, 'other.js'), 'utf8'), other, 'other modules are left alone')
})

t.test('the script stops the build on a module it cannot freeze, and leaves that module as it was', async (t) => {
  const dir = t.testdir({
    'package.json': JSON.stringify({ type: 'module' }),
    'bad-schema.js': 'export const Check = (value) => typeof value === "string"\n'
  })
  const error = await run(process.execPath, [SCRIPT, dir])
    .then(() => undefined, (err: { code: number, stderr: string }) => err)
  t.equal(error?.code, 1)
  t.match(error?.stderr, /^bad-schema\.js: the export Check is not plain JSON data/)
  t.equal(readFileSync(join(dir, 'bad-schema.js'), 'utf8'), 'export const Check = (value) => typeof value === "string"\n')
})

t.test('the script without a directory prints its usage', async (t) => {
  const error = await run(process.execPath, [SCRIPT])
    .then(() => undefined, (err: { code: number, stderr: string }) => err)
  t.equal(error?.code, 2)
  t.match(error?.stderr, /^usage: node scripts\/freeze-schemas\.mjs <dir>/)
})

t.test('the build script freezes dist/', async (t) => {
  // What makes `npm run build` (and so `npm start` and the Dockerfile) freeze: tsc alone would leave TypeBox loaded.
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  t.match(pkg.scripts.build, /^tsc -p tsconfig\.build\.json && node scripts\/freeze-schemas\.mjs dist$/)
})
