#!/usr/bin/env node
/**
 * `node scripts/freeze-schemas.mjs <dir>`, run by `npm run build` on dist/ after tsc.
 *
 * A module whose name ends in `schema.js` builds TypeBox schemas and exports plain data only; eslint keeps TypeBox
 * out of every other module but as types. This rewrites each such module as the JSON its exports evaluate to, so
 * the running gateway never loads TypeBox: its builders cost about 3 MB of heap and a third of a second of
 * start-up, to make objects that never change. The .d.ts files stay as tsc wrote them, so the types still come
 * from TypeBox. An export that JSON would not hold exactly (a function, a RegExp, undefined) stops the build.
 */
import { readdir, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { isDeepStrictEqual } from 'node:util'

/** The source of a module exporting `exports` as JSON literals; throws, naming the export, if JSON would change one. */
export function frozenSource (exports, file) {
  const lines = Object.entries(exports).map(([name, value]) => {
    const json = name === 'default' ? undefined : JSON.stringify(value)
    if (json === undefined || !isDeepStrictEqual(JSON.parse(json), value)) {
      throw new Error(`${file}: the export ${name} is not plain JSON data (or is a default export), so it cannot be frozen`)
    }
    return `export const ${name} = ${json};`
  })
  return `// Frozen by scripts/freeze-schemas.mjs: the JSON the TypeBox schemas of this module's source evaluate to.\n${lines.join('\n')}\n`
}

/** Freezes every `*schema.js` under `dir`; returns their paths, relative to `dir`. */
async function freezeSchemas (dir) {
  const files = (await readdir(dir, { recursive: true })).filter((file) => file.endsWith('schema.js')).sort()
  for (const file of files) {
    const path = join(dir, file)
    await writeFile(path, frozenSource(await import(pathToFileURL(path).href), file))
    // The source map describes the code tsc wrote, which is gone.
    await rm(`${path}.map`, { force: true })
  }
  return files
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === undefined) {
    console.error('usage: node scripts/freeze-schemas.mjs <dir>')
    process.exit(2)
  }
  try {
    const files = await freezeSchemas(resolve(process.argv[2]))
    console.log(`froze ${files.length} schema modules: ${files.join(', ')}`)
  } catch (err) {
    console.error(err.message)
    process.exit(1)
  }
}
