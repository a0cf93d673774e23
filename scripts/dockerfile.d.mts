/** Types of scripts/dockerfile.mjs, for the TypeScript tests that import it. */
export type Step =
  | { instruction: 'WORKDIR', path: string }
  | { instruction: 'ENV', env: Record<string, string> }
  | { instruction: 'COPY', from?: string, sources: string[], dest: string }
  | { instruction: 'RUN', argv: string[], text: string }
  | { instruction: 'USER', user: string }
  | { instruction: 'EXPOSE', ports: number[] }
  | { instruction: 'HEALTHCHECK', options: Record<string, string>, argv: string[] }
  | { instruction: 'CMD', argv: string[], exec: boolean }

export interface Stage { image: string, name?: string, steps: Step[] }

export function parseInstructions (text: string): Array<{ instruction: string, args: string, line: number }>
export function words (text: string): string[]
export function command (args: string): { exec: boolean, argv: string[] }
export function parseDockerfile (text: string): Stage[]
