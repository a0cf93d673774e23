/** Types of scripts/freeze-schemas.mjs, for the TypeScript tests that import it. */
export function frozenSource (exports: Record<string, unknown>, file: string): string
