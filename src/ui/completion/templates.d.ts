// The shell templates are imported `with { type: 'text' }`: esbuild and Bun embed the file's
// text as the default export, and vitest.config.ts does the same under test.
declare module '*.bash' {
  const text: string;
  export default text;
}
declare module '*.zsh' {
  const text: string;
  export default text;
}
