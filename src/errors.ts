// The one error type of brnet. Every failure that reaches the user is a BrnetError:
// the top-level handler prints `brnet: <message>` (plus an optional hint line) and
// exits with `exitCode`. Nothing below the CLI layer prints or calls process.exit.
// A layer that knows more about what was being done wraps the error (wrap()), which keeps
// the code, the hint and the original as `cause`: `--debug` prints the whole chain.

export const ExitCode = {
  ok: 0,
  failed: 1, // an external command failed while applying (after rollback), or check found drift
  usage: 2, // bad flag, name, CIDR, IP, port, MTU, option value
  notFound: 3, // network, endpoint, namespace, published port
  conflict: 4, // exists, overlaps, in use, has endpoints, port taken
  environment: 5, // not root, missing tool, kernel feature, bad state file, lock timeout
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

const codeToExit: Record<string, ExitCodeValue> = {
  USAGE: ExitCode.usage,
  NOT_FOUND: ExitCode.notFound,
  CONFLICT: ExitCode.conflict,
  ENVIRONMENT: ExitCode.environment,
  COMMAND_FAILED: ExitCode.failed,
  DRIFT: ExitCode.failed,
  INTERNAL: ExitCode.failed,
};

/**
 * USAGE: bad flag or value; INTERNAL: what should never happen (a bug: report it);
 * INTERRUPTED: a signal (exit 128 + its number, as a shell reports it).
 */
export type ErrorCode = 'USAGE' | 'NOT_FOUND' | 'CONFLICT' | 'ENVIRONMENT' | 'COMMAND_FAILED' | 'DRIFT' | 'INTERNAL' | 'INTERRUPTED';

export class BrnetError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: ExitCodeValue;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, opts: { hint?: string; cause?: unknown; exitCode?: number } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'BrnetError';
    this.code = code;
    this.exitCode = (opts.exitCode as ExitCodeValue | undefined) ?? codeToExit[code] ?? ExitCode.failed;
    this.hint = opts.hint;
  }
}

export const invalid = (message: string, hint?: string) => new BrnetError('USAGE', message, hint ? { hint } : {});
export const notFound = (message: string, hint?: string) => new BrnetError('NOT_FOUND', message, hint ? { hint } : {});
export const conflict = (message: string, hint?: string) => new BrnetError('CONFLICT', message, hint ? { hint } : {});
export const environment = (message: string, hint?: string) =>
  new BrnetError('ENVIRONMENT', message, hint ? { hint } : {});

/**
 * Another state dir's brnet objects are on this host (net/marks.ts): a mutating call changes
 * nothing rather than fight over them.
 */
export const anotherInstance = (instance: string, what: string[]) =>
  environment(
    `another brnet instance (${instance}) owns objects on this host: ${what.slice(0, 3).join(', ')}${what.length > 3 ? `, and ${what.length - 3} more` : ''}`,
    'one state dir per host: use that instance\'s --state-dir, or remove its networks with it first',
  );

/**
 * `context: <the cause's message>`, with the cause's code and hint; anything that is not a
 * BrnetError is a bug, and becomes INTERNAL.
 */
export function wrap(context: string, cause: unknown): BrnetError {
  if (cause instanceof BrnetError) {
    return new BrnetError(cause.code, `${context}: ${cause.message}`, { cause, exitCode: cause.exitCode, ...(cause.hint ? { hint: cause.hint } : {}) });
  }
  const message = cause instanceof Error ? cause.message : String(cause);
  return new BrnetError('INTERNAL', `${context}: internal error: ${message}`, { cause, hint: 'run with --debug for details' });
}

/** The messages of an error and its causes, outermost first, with the innermost stack (for --debug). */
export function errorChain(err: unknown): string {
  const lines: string[] = [];
  let e: unknown = err;
  let last: unknown = err;
  for (let depth = 0; e && depth < 10; depth++) {
    lines.push(`${depth ? 'caused by: ' : ''}${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    last = e;
    e = e instanceof Error ? e.cause : undefined;
  }
  if (last instanceof Error && last.stack) lines.push(last.stack);
  return lines.join('\n');
}
