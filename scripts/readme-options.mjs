#!/usr/bin/env node
/**
 * `npm run readme-options`: rewrites the README's options table, between `<!-- options:start -->` and
 * `<!-- options:end -->`, from the settings table (lib/config/settings.ts) as built in dist/.
 * test/ops/readme-options.test.ts fails when the README is stale, so a setting is never documented by hand.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const START = '<!-- options:start -->'
const END = '<!-- options:end -->'

/** `readme` with what lies between the markers replaced by `table`; throws when the markers are missing. */
export function withOptionsTable (readme, table) {
  const start = readme.indexOf(START)
  const end = readme.indexOf(END)
  if (start === -1 || end < start) throw new Error(`README.md: no ${START} … ${END} around the options table`)
  return `${readme.slice(0, start + START.length)}\n${table}\n${readme.slice(end)}`
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = fileURLToPath(new URL('../', import.meta.url))
  const { readmeOptionsTable } = await import(pathToFileURL(resolve(root, 'dist/lib/config/docs.js')).href)
  const path = resolve(root, 'README.md')
  const before = await readFile(path, 'utf8')
  const after = withOptionsTable(before, readmeOptionsTable())
  await writeFile(path, after)
  console.log(after === before ? 'README.md: the options table was up to date' : 'README.md: options table rewritten')
}
