// The one error type of brnet. Every failure that reaches the user is a BrnetError:
// the top-level handler prints `brnet: <message>` (plus an optional hint line) and
// exits with `exitCode`. Nothing below the CLI layer prints or calls process.exit.

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
  INVALID: ExitCode.usage,
  NOT_FOUND: ExitCode.notFound,
  CONFLICT: ExitCode.conflict,
  ENVIRONMENT: ExitCode.environment,
  COMMAND_FAILED: ExitCode.failed,
  DRIFT: ExitCode.failed,
};

export type ErrorCode = 'USAGE' | 'INVALID' | 'NOT_FOUND' | 'CONFLICT' | 'ENVIRONMENT' | 'COMMAND_FAILED' | 'DRIFT';

export class BrnetError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: ExitCodeValue;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'BrnetError';
    this.code = code;
    this.exitCode = codeToExit[code] ?? ExitCode.failed;
    this.hint = opts.hint;
  }
}

export const invalid = (message: string, hint?: string) => new BrnetError('INVALID', message, hint ? { hint } : {});
export const notFound = (message: string, hint?: string) => new BrnetError('NOT_FOUND', message, hint ? { hint } : {});
export const conflict = (message: string, hint?: string) => new BrnetError('CONFLICT', message, hint ? { hint } : {});
export const environment = (message: string, hint?: string) =>
  new BrnetError('ENVIRONMENT', message, hint ? { hint } : {});
