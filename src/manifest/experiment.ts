/**
 * The experiment manifest: a scientist's run over data already in the lake (or fresh
 * drops) with other engines or parameters. Outputs never mix with production data: they
 * go under `experimental/<experiment_id>/`.
 */
import { z } from 'zod';
import { assertSafeId, safeId, showValue, SAFE_ID_MAX } from './ids.js';

export const EXPERIMENT_SCHEMA_VERSION = 1;

/** Lake zones an experiment may read from. `_runs/`, `_staging/` etc. are internal. */
export const INPUT_ZONES = ['raw', 'staged', 'curated', 'experimental'] as const;

const LAKE_SEGMENT = `[A-Za-z0-9][A-Za-z0-9._-]{0,${SAFE_ID_MAX - 1}}`;
const LAKE_PARTITION = `[a-z][a-z0-9_]*=${LAKE_SEGMENT}`;
/**
 * A relative lake prefix such as `raw/patient_id=P1/run_id=R1/`: every segment is a safe
 * id or a `key=safe-id` partition, so no `..`, no absolute path, no backslash, no `_`-
 * prefixed internal area. The trailing '/' is optional.
 */
export const LAKE_PATH_PATTERN = `^(?:${INPUT_ZONES.join('|')})(?:/(?:${LAKE_SEGMENT}|${LAKE_PARTITION}))*/?$`;
const LAKE_PATH = new RegExp(LAKE_PATH_PATTERN);

function lakePathReason(value: string): string {
  if (value === '') return 'must not be empty';
  if (value.includes('\\')) return "must use '/' as separator, not '\\'";
  if (value.startsWith('/') || /^[A-Za-z]:/.test(value) || /^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    return 'must be a key relative to the lake root, like raw/patient_id=P1/run_id=R1/';
  }
  const segments = value.replace(/\/$/, '').split('/');
  if (segments.some((s) => s === '..' || s === '.')) return "must not contain '.' or '..' segments";
  if (!(INPUT_ZONES as readonly string[]).includes(segments[0] ?? '')) {
    return `must start with one of ${INPUT_ZONES.map((z) => `${z}/`).join(', ')}`;
  }
  const bad = segments.find((s) => !new RegExp(`^(?:${LAKE_SEGMENT}|${LAKE_PARTITION})$`).test(s));
  return `segment ${showValue(bad ?? '')} is not a safe folder name or key=value partition`;
}

const lakePath = z.string().regex(LAKE_PATH, {
  error: (iss) => `invalid lake_path ${showValue(iss.input)}: ${lakePathReason(String(iss.input))}`,
});

/** A path on the machine that runs the experiment; relative paths are relative to the manifest's folder. */
function localPath(field: string) {
  return z
    .string()
    .max(4096)
    .regex(/^[^\p{Cc}]+$/u, {
      error: (iss) => `invalid ${field} ${showValue(iss.input)}: must not be empty or contain control characters`,
    });
}

export const ARCHIVE_EXTENSIONS = ['.tar', '.tar.gz', '.tgz', '.zip'] as const;

const archiveFile = localPath('archive').refine((p) => ARCHIVE_EXTENSIONS.some((ext) => p.toLowerCase().endsWith(ext)), {
  error: (iss) => `invalid archive ${showValue(iss.input)}: must end in ${ARCHIVE_EXTENSIONS.join(', ')}`,
});

export const experimentInputSchema = z.union(
  [
    z
      .strictObject({ lake_path: lakePath.meta({ description: 'Lake prefix of a raw run, e.g. raw/patient_id=P1/run_id=R1/.' }) })
      .meta({ title: 'lake input' }),
    z
      .strictObject({ archive: archiveFile.meta({ description: 'A drop archive (with its manifest) on this machine.' }) })
      .meta({ title: 'archive input' }),
  ],
  { error: 'must be either { lake_path: "raw/..." } or { archive: "path/to/drop.tar.gz" }' },
);
export type ExperimentInput = z.output<typeof experimentInputSchema>;

export const referenceOverrideSchema = z.union(
  [
    safeId('reference').meta({ description: 'Name of a registered reference.' }),
    z.strictObject({ fasta: localPath('fasta').meta({ description: 'A FASTA file on this machine.' }) }),
  ],
  { error: 'must be a reference name or { fasta: "path/to/ref.fa" }' },
);
export type ReferenceOverride = z.output<typeof referenceOverrideSchema>;

/** Aligner parameters; every one optional, the engine's defaults apply to what is left out. */
export const alignParamsSchema = z
  .strictObject({
    seed_length: z.int().min(8).max(256).optional().meta({ description: 'Minimum seed (exact match) length.' }),
    band_width: z.int().min(1).max(10_000).optional().meta({ description: 'Band width for banded extension.' }),
    match: z.int().min(1).max(100).optional().meta({ description: 'Score of a matching base.' }),
    mismatch: z.int().min(1).max(100).optional().meta({ description: 'Penalty of a mismatching base.' }),
    gap_open: z.int().min(1).max(100).optional().meta({ description: 'Penalty to open a gap.' }),
    gap_extend: z.int().min(1).max(100).optional().meta({ description: 'Penalty per base of gap extension.' }),
    clip_penalty: z.int().min(1).max(1000).optional().meta({ description: 'Penalty for clipping a read end.' }),
    min_score: z.int().min(1).max(100_000).optional().meta({ description: 'Alignments scoring below this are unmapped.' }),
    insert_size_mean: z.number().gt(0).max(100_000).optional().meta({ description: 'Expected fragment length (paired reads).' }),
    insert_size_sd: z.number().gt(0).max(100_000).optional().meta({ description: 'Standard deviation of the fragment length.' }),
    split_as_secondary: z
      .boolean()
      .optional()
      .meta({ description: 'Mark the shorter part of a chimeric read secondary instead of supplementary (as bwa mem -M).' }),
    all_hits: z
      .boolean()
      .optional()
      .meta({ description: 'Also write the other alignments of a read over the same part of it as secondary records (MAPQ 0, as bwa mem -a).' }),
  })
  .meta({ description: 'Aligner parameters.' });
export type AlignParams = z.output<typeof alignParamsSchema>;

const paramScalar = z.union([z.string(), z.number(), z.boolean()]);
const paramValue = z.union([paramScalar, z.array(paramScalar).max(1000)], {
  error: 'must be a string, number, boolean or a list of them',
});
/** Engine-specific parameters of a stage, passed through to the engine untouched. */
export const stageParamsSchema = z.record(z.string(), paramValue);
export type StageParams = z.output<typeof stageParamsSchema>;

/**
 * Annotator parameters. `known`: known-variant databases as on the command line
 * (`NAME=db.vcf.gz[:FIELD,…]`, see src/annotate/known.ts); relative paths are relative to
 * the manifest's folder.
 */
export const annotateParamsSchema = z
  .strictObject({
    known: z
      .array(
        z
          .string()
          .max(4096)
          .regex(/^[A-Za-z][A-Za-z0-9_]{0,63}=[^\p{Cc}]+$/u, {
            error: (iss) => `invalid known-variant database ${showValue(iss.input)}: expected NAME=db.vcf.gz[:FIELD,…], NAME a letter then letters, digits or '_'`,
          }),
      )
      .min(1)
      .max(64)
      .optional()
      .meta({
        description:
          "Known-variant databases (tabix-indexed VCFs): 'NAME=db.vcf.gz[:FIELD,…]'. IDs and INFO/NAME_FIELD are copied when an allele matches after normalisation.",
      }),
  })
  .meta({ description: 'Annotator parameters.' });
export type AnnotateParams = z.output<typeof annotateParamsSchema>;

function stage<P extends z.ZodType>(params: P, description: string) {
  return z
    .strictObject({
      engine: safeId('engine').optional().meta({ description: 'Engine to run this stage with; the default engine when absent.' }),
      params: params.optional(),
    })
    .meta({ description });
}

export const stagesSchema = z
  .strictObject({
    shard: z
      .strictObject({
        reads_per_shard: z.int().min(1).max(100_000_000).optional().meta({ description: 'Reads (pairs) per FASTQ shard.' }),
      })
      .optional()
      .meta({ description: 'How the input reads are split for the worker pool.' }),
    align: stage(alignParamsSchema, 'Read alignment.').optional(),
    call: stage(stageParamsSchema, 'Variant calling.').optional(),
    annotate: stage(annotateParamsSchema, 'Variant annotation.').optional(),
  })
  .meta({ description: 'Per-stage engines and parameters; stages left out run with defaults.' });
export type StagesConfig = z.output<typeof stagesSchema>;

function checkExperiment(value: unknown, ctx: z.RefinementCtx): void {
  if (typeof value !== 'object' || value === null) return;
  const { inputs } = value as { inputs?: unknown };
  if (!Array.isArray(inputs)) return;
  const seen = new Map<string, number>();
  inputs.forEach((input: unknown, i) => {
    if (typeof input !== 'object' || input === null) return;
    const { lake_path: lake, archive } = input as { lake_path?: unknown; archive?: unknown };
    const key = typeof lake === 'string' ? `lake:${lake.replace(/\/?$/, '/')}` : typeof archive === 'string' ? `archive:${archive}` : undefined;
    if (key === undefined) return;
    const first = seen.get(key);
    if (first !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['inputs', i], message: `same input as inputs[${first}]`, input });
    } else seen.set(key, i);
  });
}

export const experimentManifestSchema = z
  .strictObject({
    $schema: z.string().max(2048).optional().meta({ description: 'JSON Schema of this file, for editors; ignored.' }),
    schema_version: z.literal(EXPERIMENT_SCHEMA_VERSION).meta({ description: 'Manifest format version; always 1.' }),
    kind: z.literal('experiment').meta({ description: "Manifest kind; must be 'experiment'." }),
    experiment_id: safeId('experiment_id').meta({ description: 'Outputs go to experimental/<experiment_id>/ in the lake.' }),
    inputs: z.array(experimentInputSchema).min(1).max(10_000),
    reference: referenceOverrideSchema.optional().meta({ description: "Overrides each input's reference." }),
    stages: stagesSchema.default({}),
    notes: z.string().max(10_000).optional().meta({ description: 'Free text for humans; not interpreted.' }),
  })
  .superRefine(checkExperiment, { when: () => true })
  .meta({
    title: 'genolake experiment manifest',
    description: 'A scientist-defined run over lake data or drop archives, with its own engines and parameters.',
  });

export type ExperimentManifest = z.output<typeof experimentManifestSchema>;
export type ExperimentManifestInput = z.input<typeof experimentManifestSchema>;

/** Lake prefix that holds every output of the experiment. */
export function experimentPrefix(m: Pick<ExperimentManifest, 'experiment_id'>): string {
  // Checked again: callers may build the object by hand rather than parse it.
  return `experimental/${assertSafeId(m.experiment_id, 'experiment_id')}/`;
}
