import neostandard from 'neostandard'

const typeboxAtRunTime = 'TypeBox is for schemas: build them in a *schema.ts module, which the build freezes to JSON (scripts/freeze-schemas.mjs); elsewhere import its types only'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', '.tap/**', 'node_modules/**'] }),
  {
    // The running gateway never loads TypeBox (3 MB of heap): only *schema.ts modules, frozen at build, may build schemas.
    files: ['**/*.ts'],
    ignores: ['**/*schema.ts', 'test/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        paths: [{ name: 'typebox', message: typeboxAtRunTime, allowTypeImports: true }],
        patterns: [{ group: ['typebox/*'], message: typeboxAtRunTime, allowTypeImports: true }]
      }]
    }
  }
]
