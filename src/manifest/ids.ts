/**
 * Identifiers and paths that come from manifests.
 *
 * Manifest values become lake keys (`raw/patient_id=<P>/run_id=<R>/...`) and archive
 * member names become file names under them, so everything here is checked before any
 * stage sees it: nothing a lab or a scientist writes may escape the lake root, add a
 * partition level (`/`), fake a Hive partition (`=`) or hide a file (leading `.`).
 */
import { z } from 'zod';

/** Longest identifier; keeps lake keys well below S3's 1024-byte key limit. */
export const SAFE_ID_MAX = 128;

/** Source of the safe-id pattern (also published in the JSON Schemas). */
export const SAFE_ID_PATTERN = `^[A-Za-z0-9][A-Za-z0-9._-]{0,${SAFE_ID_MAX - 1}}$`;

/**
 * An identifier that is safe as one lake path segment: 1-128 letters, digits, `.`, `_`,
 * `-`, starting with a letter or digit. That excludes `.`/`..`, `/`, `\`, `=`, whitespace,
 * and names starting with `_` (reserved for `_runs/`, `_staging/`, `_catalog/`).
 */
export const SAFE_ID = new RegExp(SAFE_ID_PATTERN);

const SAFE_ID_RULE = `use 1-${SAFE_ID_MAX} letters, digits, '.', '_' or '-', starting with a letter or digit`;

/** Why `value` is not a safe id, in words a user can act on; undefined when it is safe. */
export function unsafeIdReason(value: string): string | undefined {
  if (SAFE_ID.test(value)) return undefined;
  if (value.length === 0) return 'must not be empty';
  if (value === '.' || value === '..') return `must not be '${value}'`;
  if (value.length > SAFE_ID_MAX) return `must be at most ${SAFE_ID_MAX} characters (got ${value.length})`;
  if (/[/\\]/.test(value)) return `must not contain '/' or '\\' (it becomes one folder name in the lake)`;
  if (value.includes('=')) return `must not contain '=' (the lake uses key=value folder names)`;
  if (/\s/.test(value)) return 'must not contain whitespace';
  if (!/^[A-Za-z0-9]/.test(value)) return 'must start with a letter or digit';
  const bad = [...value].find((c) => !/[A-Za-z0-9._-]/.test(c)) ?? '?';
  return `must not contain ${JSON.stringify(bad)}`;
}

export function isSafeId(value: unknown): value is string {
  return typeof value === 'string' && SAFE_ID.test(value);
}

/** Short form of a value for messages; long values are cut so a message stays one line. */
export function showValue(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * Zod schema for a safe id stored in `field`. One regex check (so the JSON Schema carries
 * the pattern) whose message says exactly which rule the value broke.
 */
export function safeId(field: string) {
  return z.string().regex(SAFE_ID, {
    error: (iss) => {
      const value = String(iss.input);
      return `invalid ${field} ${showValue(value)}: ${unsafeIdReason(value) ?? 'not a safe id'}; ${SAFE_ID_RULE}`;
    },
  });
}

/** Throws if `value` is not a safe id; for ids built in code (run ids) rather than read from a manifest. */
export function assertSafeId(value: string, field: string): string {
  const reason = unsafeIdReason(value);
  if (reason !== undefined) throw new TypeError(`invalid ${field} ${showValue(value)}: ${reason}; ${SAFE_ID_RULE}`);
  return value;
}

// ---------------------------------------------------------------------------------------
// File names inside a drop archive.

/** Longest archive member name we accept (tar's ustar limit is 255; pax allows more). */
export const ARCHIVE_PATH_MAX = 512;

const MEMBER_SEGMENT = '[A-Za-z0-9_][A-Za-z0-9._+-]*';

/**
 * A relative '/'-separated name of a file inside an archive. Each segment starts with a
 * letter, digit or `_` (so no `.`, `..` or hidden files) and holds only letters, digits,
 * `.`, `_`, `+`, `-`: no absolute paths, no backslashes, no drive letters, no `=`,
 * no whitespace, no empty segments.
 */
export const ARCHIVE_PATH_PATTERN = `^(?:${MEMBER_SEGMENT}/)*${MEMBER_SEGMENT}$`;
export const ARCHIVE_PATH = new RegExp(ARCHIVE_PATH_PATTERN);

/** Why `name` is not a safe archive member name; undefined when it is. */
export function unsafeArchivePathReason(name: string): string | undefined {
  if (name.length > ARCHIVE_PATH_MAX) return `must be at most ${ARCHIVE_PATH_MAX} characters (got ${name.length})`;
  return archivePatternReason(name);
}

/** The pattern part of the rules; the length is a separate zod check with its own message. */
function archivePatternReason(name: string): string | undefined {
  if (ARCHIVE_PATH.test(name)) return undefined;
  if (name.length === 0) return 'must not be empty';
  if (name.includes('\\')) return "must use '/' as separator, not '\\'";
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return 'must be a relative path inside the archive, not an absolute path';
  if (name.endsWith('/')) return 'must name a file, not a folder';
  const segments = name.split('/');
  if (segments.some((s) => s === '..')) return "must not contain '..' (it would point outside the archive)";
  if (segments.some((s) => s === '.')) return "must not contain '.' segments";
  if (segments.some((s) => s === '')) return "must not contain empty segments ('//')";
  if (/\s/.test(name)) return 'must not contain whitespace';
  if (name.includes('=')) return "must not contain '=' (the lake uses key=value folder names)";
  if (segments.some((s) => !/^[A-Za-z0-9_]/.test(s))) return "each part must start with a letter, digit or '_' (no hidden files)";
  const bad = [...name].find((c) => !/[A-Za-z0-9._+/-]/.test(c)) ?? '?';
  return `must not contain ${JSON.stringify(bad)}`;
}

/** Zod schema for the name of a file inside a drop archive, held in `field`. */
export function archivePath(field: string) {
  return z
    .string()
    .max(ARCHIVE_PATH_MAX)
    .regex(ARCHIVE_PATH, {
      error: (iss) => {
        const value = String(iss.input);
        return `invalid ${field} ${showValue(value)}: ${archivePatternReason(value) ?? 'not a safe file name'}`;
      },
    });
}

/** File name endings of FASTQ files (any letter case): .fastq, .fq, optionally + .gz. */
export const FASTQ_NAME_PATTERN = '\\.(?:[Ff][Aa][Ss][Tt][Qq]|[Ff][Qq])(?:\\.[Gg][Zz])?$';
export const FASTQ_NAME = new RegExp(FASTQ_NAME_PATTERN);

/** True when a file name ends like a FASTQ file (plain or gzip/BGZF). */
export function isFastqName(name: string): boolean {
  return FASTQ_NAME.test(name);
}

/** Zod schema for the name of a FASTQ file inside a drop archive: a safe member name ending in .fastq/.fq(.gz). */
export function fastqPath(field: string) {
  return archivePath(field).regex(FASTQ_NAME, {
    error: (iss) => `invalid ${field} ${showValue(iss.input)}: must end in .fastq, .fq, .fastq.gz or .fq.gz`,
  });
}
