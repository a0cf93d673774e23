import neostandard from 'neostandard'

const maxLen = { code: 120, ignoreUrls: true, ignoreRegExpLiterals: true }
// A line that is one string literal (a message, a help text) may run past the limit: cut, it would no longer be
// found by searching for what was printed.
const loneString = String.raw`^\s*(?:[\w$]+: |\+ |return )?(?:'[^']*'|"[^"]*"|\x60[^\x60]*\x60)(?: \+)?,?\)?$`

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', '.tap/**', 'node_modules/**'] }),
  { rules: { '@stylistic/max-len': ['error', { ...maxLen, ignorePattern: loneString }] } },
  {
    // Test titles and expected messages read best whole.
    files: ['test/**', 'bench/**', 'interop/**'],
    rules: { '@stylistic/max-len': ['error', { ...maxLen, ignoreStrings: true, ignoreTemplateLiterals: true }] }
  },
  {
    // A table, one setting a line: each row is read across, like the README table it generates.
    files: ['lib/config/settings.ts'],
    rules: { '@stylistic/max-len': 'off' }
  }
]
