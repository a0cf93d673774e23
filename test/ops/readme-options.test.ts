import { readFileSync } from 'node:fs'
import t from 'tap'
import { readmeOptionsTable } from '../../lib/config/docs.js'
import { withOptionsTable } from '../../scripts/readme-options.mjs'

/*
 * The README's options table is generated from the settings table (scripts/readme-options.mjs): this fails when
 * a setting was added or changed without `npm run readme-options`, so the README never drifts from the code.
 */

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')

t.test('the README options table is the one the settings table gives', async (t) => {
  t.equal(withOptionsTable(README, readmeOptionsTable()), README, 'stale: run `npm run readme-options`')
})

t.test('every setting has one row, flags before environment-only settings', async (t) => {
  const rows = readmeOptionsTable().split('\n').slice(2)
  t.equal(rows.length, 66)
  t.match(rows[0], /^\| `--port` \| `MCP_GATEWAY_PORT` \| `8002` \|/)
  t.match(rows.at(-1), /^\| \| `MCP_GATEWAY_MCP_SCOPE` \| `mcp` \|/)
})

t.test('withOptionsTable replaces only what lies between the markers, and needs them', async (t) => {
  const text = 'a\n<!-- options:start -->\nold\n<!-- options:end -->\nb\n'
  t.equal(withOptionsTable(text, 'new'), 'a\n<!-- options:start -->\nnew\n<!-- options:end -->\nb\n')
  t.throws(() => withOptionsTable('no markers', 'new'), { message: /no <!-- options:start -->/ })
})
