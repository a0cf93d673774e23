// Preloaded (`node --import`) into the MCP conformance suite's CLI on Node 20. Its bundle imports `globSync` from
// 'fs', which Node has only from 22 on, so on 20 it does not even load; the one use is the tier-check command's
// search for checks.json files, which we never run. On Node 20 this resolves the suite's own 'fs' imports to
// node:fs plus a globSync that says it is missing; on a Node that has globSync it does nothing.
import fs from 'node:fs'
import { register } from 'node:module'

if (typeof fs.globSync !== 'function') {
  const shim = 'data:text/javascript,' + encodeURIComponent(`
    import fs from 'node:fs'
    export * from 'node:fs'
    export default fs
    export function globSync () { throw new Error('fs.globSync needs Node 22 (conformance tier-check is not supported here)') }`)
  register('data:text/javascript,' + encodeURIComponent(`
    export async function resolve (specifier, context, next) {
      if ((specifier === 'fs' || specifier === 'node:fs') && context.parentURL?.includes('/@modelcontextprotocol/conformance/')) {
        return { url: ${JSON.stringify(shim)}, shortCircuit: true }
      }
      return next(specifier, context)
    }`))
}
