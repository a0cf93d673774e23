import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Teardown } from './teardown.js'

/** A file holding `text` in a fresh temporary folder, removed with the test; its path. */
export function tempFile (t: Teardown, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'gw-test-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const path = join(dir, 'file')
  writeFileSync(path, text)
  return path
}
