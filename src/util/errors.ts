/**
 * Errors a user can act on. `GenolakeError` carries a stable code and the place the
 * problem was found (file, record, field) so the CLI can print one precise line and
 * tests can assert on structure rather than wording.
 */
export interface ErrorPlace {
  file?: string;
  record?: number;
  field?: string;
  line?: number;
}

export class GenolakeError extends Error {
  readonly code: string;
  readonly place: ErrorPlace;

  constructor(code: string, message: string, place: ErrorPlace = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GenolakeError';
    this.code = code;
    this.place = place;
  }

  /** One line for a terminal: `file:record N: field: message`. */
  describe(): string {
    const where: string[] = [];
    if (this.place.file) where.push(this.place.file);
    if (this.place.line !== undefined) where.push(`line ${this.place.line}`);
    if (this.place.record !== undefined) where.push(`record ${this.place.record}`);
    if (this.place.field) where.push(`field ${this.place.field}`);
    return where.length ? `${where.join(': ')}: ${this.message}` : this.message;
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message, place: this.place };
  }
}

/** Input that is wrong: a malformed file, record or manifest. Never retried. */
export class InputError extends GenolakeError {
  constructor(code: string, message: string, place: ErrorPlace = {}, options?: { cause?: unknown }) {
    super(code, message, place, options);
    this.name = 'InputError';
  }
}

export function isGenolakeError(e: unknown): e is GenolakeError {
  return e instanceof GenolakeError || (typeof e === 'object' && e !== null && (e as { name?: string }).name === 'InputError');
}
