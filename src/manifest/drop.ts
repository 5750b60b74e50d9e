/**
 * The lab drop manifest: what a sequencing lab sends next to its FASTQ archive.
 * Field names are snake_case because labs write these files by hand or from LIMS exports.
 */
import { z } from 'zod';
import { fastqPath, safeId, showValue } from './ids.js';

export const DROP_SCHEMA_VERSION = 1;

/** Sequencing platforms, as the SAM specification spells them for `@RG PL`. */
export const PLATFORMS = [
  'ILLUMINA',
  'ONT',
  'PACBIO',
  'ELEMENT',
  'ULTIMA',
  'DNBSEQ',
  'IONTORRENT',
  'SOLID',
  'LS454',
  'HELICOS',
  'CAPILLARY',
  'SINGULAR',
] as const;
export type Platform = (typeof PLATFORMS)[number];

export const SAMPLE_ROLES = ['tumor', 'normal'] as const;

/**
 * A short free-text label that ends up in a SAM header or a table cell: no control
 * characters (a tab or newline would break the `@RG` line), not blank.
 */
export function label(field: string, max = 256) {
  return z
    .string()
    .max(max)
    .regex(/^[^\p{Cc}]*\S[^\p{Cc}]*$/u, {
      error: (iss) => `invalid ${field} ${showValue(iss.input)}: must not be blank or contain tabs, newlines or other control characters`,
    });
}

export const readGroupSchema = z
  .strictObject({
    id: safeId('read group id').meta({ description: 'Read group id (SAM @RG ID); unique within the drop.' }),
    lane: z.int().min(1).max(999).optional().meta({ description: 'Flow-cell lane number.' }),
    library: label('library').optional().meta({ description: 'Library name (SAM @RG LB); used to find PCR duplicates.' }),
    platform_unit: label('platform_unit')
      .optional()
      .meta({ description: 'Platform unit, e.g. flowcell.lane.barcode (SAM @RG PU).' }),
    r1: fastqPath('r1').meta({ description: 'FASTQ of read 1 (.fastq, .fq, .fastq.gz or .fq.gz): a path inside the archive, relative to the folder holding the manifest.' }),
    r2: fastqPath('r2')
      .optional()
      .meta({ description: 'FASTQ of read 2; required when paired is true, absent otherwise.' }),
  })
  .meta({ description: 'One read group: the reads of one library on one lane.' });

export type ReadGroup = z.output<typeof readGroupSchema>;

export const providerRefSchema = z
  .strictObject({
    provider_id: safeId('provider_id').meta({ description: 'Id of the provider in the provider registry.' }),
    patient_id: label('provider.patient_id').meta({
      description: "The provider's own identifier for the patient (used to fetch metadata).",
    }),
  })
  .meta({ description: 'Where the patient metadata lives.' });

const dropObject = z.strictObject({
  $schema: z.string().max(2048).optional().meta({ description: 'JSON Schema of this file, for editors; ignored.' }),
  schema_version: z.literal(DROP_SCHEMA_VERSION).meta({ description: 'Manifest format version; always 1.' }),
  kind: z.literal('drop').default('drop').meta({ description: "Manifest kind; 'drop' (default)." }),
  patient_id: safeId('patient_id').meta({ description: 'Patient id in the lake (becomes patient_id=<id>).' }),
  sample_id: safeId('sample_id').meta({ description: 'Sample id in the lake (becomes sample_id=<id>).' }),
  provider: providerRefSchema,
  reference: safeId('reference').meta({ description: 'Name of a registered reference genome, e.g. sim-demo.' }),
  platform: z.enum(PLATFORMS).meta({ description: 'Sequencing platform (SAM @RG PL).' }),
  read_length: z.int().min(30).max(1000).meta({ description: 'Nominal read length in bases.' }),
  paired: z.boolean().meta({ description: 'true when every read group has r1 and r2.' }),
  read_groups: z.array(readGroupSchema).min(1).max(10_000),
  role: z.enum(SAMPLE_ROLES).optional().meta({ description: 'tumor or normal, for paired tumor/normal analyses.' }),
  notes: z.string().max(10_000).optional().meta({ description: 'Free text for humans; not interpreted.' }),
});

/**
 * Cross-field rules. Registered with `when: () => true` so they run even when another
 * field is already wrong: a user sees every problem in one go, not one per attempt. The
 * value may therefore be partly invalid, hence the defensive type checks.
 */
function checkDrop(value: unknown, ctx: z.RefinementCtx): void {
  if (typeof value !== 'object' || value === null) return;
  const { paired, read_groups: groups } = value as { paired?: unknown; read_groups?: unknown };
  if (!Array.isArray(groups)) return;

  const ids = new Map<string, number>();
  const files = new Map<string, string>();
  groups.forEach((rg: unknown, i) => {
    if (typeof rg !== 'object' || rg === null) return;
    const { id, r1, r2 } = rg as { id?: unknown; r1?: unknown; r2?: unknown };
    if (paired === true && r2 === undefined) {
      ctx.addIssue({ code: 'custom', path: ['read_groups', i, 'r2'], message: 'required when paired is true', input: r2 });
    }
    if (paired === false && r2 !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['read_groups', i, 'r2'],
        message: 'must be absent when paired is false (set paired to true for paired-end reads)',
        input: r2,
      });
    }
    if (typeof id === 'string') {
      const first = ids.get(id);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['read_groups', i, 'id'],
          message: `duplicate read group id ${showValue(id)} (also read_groups[${first}].id)`,
          input: id,
        });
      } else ids.set(id, i);
    }
    for (const [key, file] of [['r1', r1], ['r2', r2]] as const) {
      if (typeof file !== 'string') continue;
      const first = files.get(file);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['read_groups', i, key],
          message: `file ${showValue(file)} is already used by ${first}; each FASTQ belongs to one read group and one mate`,
          input: file,
        });
      } else files.set(file, `read_groups[${i}].${key}`);
    }
  });
}

export const dropManifestSchema = dropObject.superRefine(checkDrop, { when: () => true }).meta({
  title: 'genolake drop manifest',
  description: 'Describes one sample sent by a lab: who it belongs to and which FASTQ files in the archive hold its reads.',
  // z.toJSONSchema cannot see the refinement above; state "r2 iff paired" for editors too.
  allOf: [
    {
      if: { properties: { paired: { const: true } }, required: ['paired'] },
      then: { properties: { read_groups: { items: { required: ['r2'] } } } },
      else: { properties: { read_groups: { items: { not: { required: ['r2'] } } } } },
    },
  ],
});

export type DropManifest = z.output<typeof dropManifestSchema>;
/** What a user may write (kind may be left out). */
export type DropManifestInput = z.input<typeof dropManifestSchema>;
