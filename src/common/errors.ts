/**
 * An error caused by the user's input (a bad file, a wrong flag). The CLI prints its message as one
 * line and exits with code 2; anything else is a bug and keeps its stack trace.
 */
export class UserError extends Error {
  /** `usage`: help text printed after the one-line message (an unknown command, a missing argument) */
  constructor(message: string, readonly exitCode = 2, readonly usage?: string) {
    super(message);
    this.name = 'UserError';
  }
}

/**
 * A name (a path, a study id) as it may appear in a message: control characters JSON-escaped
 * (`\n`, `\u001b`, …), so a newline in a file name cannot split the one-line error and an ANSI
 * escape in one cannot reach the terminal. Printable text, non-ASCII letters included, stays as is.
 */
export function quoteName(name: string): string {
  // C0 controls, DEL, C1 controls, and the two Unicode line separators
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return String(name).replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    const j = JSON.stringify(c).slice(1, -1);
    return j.length > 1 ? j : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

/** Builds the one-line message convention: `<file>: <problem>`, the file's name escaped. */
export function fileError(file: string, problem: string): UserError {
  return new UserError(`${quoteName(file)}: ${problem}`);
}
