/** Types of scripts/readme-options.mjs, for the TypeScript test that imports it. */
export function withOptionsTable (readme: string, table: string): string
