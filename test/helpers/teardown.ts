/**
 * What the helpers need of a tap test: somewhere to register cleanup. Narrower than tap's Test, so a
 * helper can be handed a test or a subtest alike.
 */
export interface Teardown { teardown (fn: () => unknown): void }
