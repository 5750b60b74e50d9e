/**
 * Experiments: a scientist's run of the read → variant chain over data the lake already
 * holds (or fresh drops), with other aligner and caller parameters or another reference.
 * Every output goes under `experimental/<experiment_id>/` in the same layout as
 * production (staged/…, curated/variants/…), so nothing an experiment does can change
 * a production table, and the two can be queried side by side.
 *
 * Each input is its own engine run, `x` + 16 hex digits of a digest of what decides its
 * outputs (experiment id, stage parameters, reference files, input): the same manifest
 * submitted again answers from the finished runs or resumes unfinished ones; a changed
 * parameter makes new runs whose outputs replace the experiment's earlier ones.
 */
import { createHash } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { DEFAULT_INDEX_PARAMS, type AlignParams } from '../align/kernel.js';
import type { CallOptions } from '../call/region.js';
import { experimentPrefix, type AlignParams as ManifestAlignParams, type ExperimentManifest, type StageParams } from '../manifest/experiment.js';
import { ingestArchive, readRawRun, runPrefixFor } from '../stages/ingest.js';
import { checkKnownDatabases, knownFromParam, type KnownDbSpec } from '../annotate/known.js';
import { GenolakeError, InputError } from '../util/errors.js';
import { DEFAULT_READS_PER_SHARD, runOrResume, type DropParams, type RunDropOptions, type RunDropResult } from './drop.js';
import { ReferenceRegistry, type ReferenceEntry } from './references.js';

/** Engines this genolake has per stage; a manifest naming another is refused, not ignored. */
const ENGINES = ['default'] as const;

export interface RunExperimentOptions extends Omit<RunDropOptions, 'reference' | 'genes' | 'readsPerShard' | 'registry'> {
  /** Folder that relative paths of the manifest (archives, FASTA) are relative to. */
  manifestDir: string;
  /** Reference registry file (for reference names). */
  references?: string;
  /** Gene models to annotate with when the reference has none registered (or is given as a FASTA). */
  genes?: string;
}

export interface ExperimentInputResult extends RunDropResult {
  /** The raw run the input reads from. */
  lakePath: string;
  patientId: string;
  sampleId: string;
  reference: ReferenceEntry;
}

export interface ExperimentResult {
  experimentId: string;
  /** experimental/<experiment_id>/ */
  prefix: string;
  inputs: ExperimentInputResult[];
  /** Lake key of the experiment's record (manifest, runs, status). */
  recordKey: string;
}

/** The manifest's aligner parameters as the kernel's; `seed_length` is the index's k. */
export function alignParamsFromManifest(p: ManifestAlignParams | undefined): { align?: Partial<AlignParams>; seedLength?: number; splitAsSecondary?: boolean } {
  if (!p) return {};
  const field = 'stages.align.params';
  const align: Partial<AlignParams> = {};
  if (p.band_width !== undefined) align.band = p.band_width;
  if (p.match !== undefined) align.match = p.match;
  if (p.mismatch !== undefined) align.mismatch = p.mismatch;
  if (p.gap_open !== undefined) align.gapOpen = p.gap_open;
  if (p.gap_extend !== undefined) align.gapExtend = p.gap_extend;
  if (p.clip_penalty !== undefined) align.clip5 = align.clip3 = p.clip_penalty;
  if (p.min_score !== undefined) align.minScore = p.min_score;
  if (p.insert_size_mean !== undefined) align.isizeMean = p.insert_size_mean;
  if (p.insert_size_sd !== undefined) align.isizeSd = p.insert_size_sd;
  if (p.all_hits) align.allHits = 1;
  let seedLength: number | undefined;
  if (p.seed_length !== undefined && p.seed_length !== DEFAULT_INDEX_PARAMS.k) {
    // Seeds are minimizers of length k; the index stores k-mers of up to 31 bases, and odd k
    // keeps a k-mer and its reverse complement apart.
    if (p.seed_length % 2 === 0 || p.seed_length < 11 || p.seed_length > 31) {
      throw new InputError('EXPERIMENT_BAD_PARAM', `${field}.seed_length: the default aligner seeds with odd lengths 11..31, not ${p.seed_length}`, { field: `${field}.seed_length` });
    }
    seedLength = p.seed_length;
  }
  return { ...(Object.keys(align).length ? { align } : {}), ...(seedLength ? { seedLength } : {}), ...(p.split_as_secondary ? { splitAsSecondary: true } : {}) };
}

/** Caller parameters a manifest may set (snake_case, as in the manifest) → CallOptions. */
const CALL_PARAMS: Record<string, { key: keyof CallOptions; min: number; max: number; int?: boolean }> = {
  min_mapping_quality: { key: 'minMapQ', min: 0, max: 255, int: true },
  min_base_quality: { key: 'minBaseQ', min: 0, max: 93, int: true },
  min_qual: { key: 'minQual', min: 0, max: 1e6 },
  low_qual: { key: 'lowQual', min: 0, max: 1e6 },
  min_depth: { key: 'minDepth', min: 0, max: 1e9, int: true },
  max_strand_bias: { key: 'maxStrandBias', min: 0, max: 1e6 },
  theta: { key: 'theta', min: 1e-9, max: 0.5 },
  indel_theta: { key: 'indelTheta', min: 1e-9, max: 0.5 },
  min_alt_reads: { key: 'minAltReads', min: 1, max: 1e6, int: true },
  min_indel_fraction: { key: 'minIndelFraction', min: 0, max: 1 },
};

export function callParamsFromManifest(p: StageParams | undefined): CallOptions | undefined {
  if (!p) return undefined;
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(p)) {
    const field = `stages.call.params.${name}`;
    if (name === 'ploidy') {
      if (value !== 2) throw new InputError('EXPERIMENT_BAD_PARAM', `${field}: the default caller is diploid (ploidy 2), not ${JSON.stringify(value)}`, { field });
      continue;
    }
    const spec = CALL_PARAMS[name];
    if (!spec) {
      throw new InputError('EXPERIMENT_BAD_PARAM', `${field}: the default caller has no parameter ${JSON.stringify(name)} (it has: ploidy, ${Object.keys(CALL_PARAMS).join(', ')})`, { field });
    }
    if (typeof value !== 'number' || !Number.isFinite(value) || value < spec.min || value > spec.max || (spec.int && !Number.isInteger(value))) {
      throw new InputError('EXPERIMENT_BAD_PARAM', `${field}: must be ${spec.int ? 'an integer' : 'a number'} in ${spec.min}..${spec.max}, not ${JSON.stringify(value)}`, { field });
    }
    out[spec.key] = value;
  }
  return Object.keys(out).length ? (out as CallOptions) : undefined;
}

function checkEngines(m: ExperimentManifest): void {
  for (const stage of ['align', 'call', 'annotate'] as const) {
    const engine = m.stages[stage]?.engine;
    if (engine !== undefined && !(ENGINES as readonly string[]).includes(engine)) {
      throw new InputError('EXPERIMENT_UNKNOWN_ENGINE', `stages.${stage}.engine: no engine ${JSON.stringify(engine)} (this genolake has: ${ENGINES.join(', ')})`, {
        field: `stages.${stage}.engine`,
      });
    }
  }
}

/** `stages.annotate.params.known` → databases (paths against the manifest's folder), opened once to check them. */
async function knownParamsFromManifest(m: ExperimentManifest, manifestDir: string): Promise<KnownDbSpec[] | undefined> {
  const field = 'stages.annotate.params.known';
  const value = m.stages.annotate?.params?.known;
  if (value === undefined) return undefined;
  const known = knownFromParam(value, field, manifestDir);
  try {
    await checkKnownDatabases(known);
  } catch (e) {
    if (e instanceof InputError) throw new InputError(e.code, `${field}: ${e.message}`, { ...e.place, field: e.place.field ? `${field}: ${e.place.field}` : field }, { cause: e });
    throw e;
  }
  return known;
}

/** Digest of what decides a run's outputs: same digest, same outputs. */
function experimentRunId(parts: unknown): string {
  return `x${createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16)}`;
}

/**
 * Runs every input of the experiment (one after another, each on the whole pool) and
 * records the experiment in `experimental/<id>/experiment.json`. Inputs given as archives
 * are ingested as drops first (raw data is shared; the content hash keeps it once).
 */
export async function runExperiment(manifest: ExperimentManifest, opts: RunExperimentOptions): Promise<ExperimentResult> {
  checkEngines(manifest);
  const prefix = experimentPrefix(manifest);
  const { align, seedLength, splitAsSecondary } = alignParamsFromManifest(manifest.stages.align?.params);
  const call = callParamsFromManifest(manifest.stages.call?.params);
  const known = await knownParamsFromManifest(manifest, opts.manifestDir);
  const readsPerShard = manifest.stages.shard?.reads_per_shard ?? DEFAULT_READS_PER_SHARD;
  const registry = opts.references ? await ReferenceRegistry.open(opts.references) : undefined;

  async function referenceFor(inputName: string, inputReference: string): Promise<ReferenceEntry> {
    const override = manifest.reference;
    if (override !== undefined && typeof override === 'object') {
      return { fasta: resolve(opts.manifestDir, override.fasta), ...(opts.genes ? { genes: resolve(opts.genes) } : {}) };
    }
    const name = override ?? inputReference;
    const field = override !== undefined ? 'reference' : `${inputName} (its drop manifest's reference)`;
    if (!registry) {
      throw new InputError(
        'REFERENCE_NO_REGISTRY',
        `${field}: reference ${JSON.stringify(name)} is a name, and no reference registry was given (--references FILE or GENOLAKE_REFERENCES); or give { "fasta": "path" } in the manifest`,
        { field: override !== undefined ? 'reference' : 'inputs' },
      );
    }
    const e = await registry.resolve(name, field);
    return opts.genes ? { ...e, genes: resolve(opts.genes) } : e;
  }

  // Resolve everything first: a bad input fails the experiment before any run starts.
  const planned: Array<{ lakePath: string; patientId: string; sampleId: string; reference: ReferenceEntry; label: string }> = [];
  for (const [i, input] of manifest.inputs.entries()) {
    let raw;
    try {
      let lakePath: string;
      if ('archive' in input) {
        const ing = await ingestArchive(opts.lake, resolve(opts.manifestDir, input.archive), { log: opts.log });
        lakePath = runPrefixFor(ing.manifest.patient_id, ing.runId);
      } else lakePath = input.lake_path;
      raw = await readRawRun(opts.lake, lakePath);
    } catch (e) {
      if (e instanceof InputError) throw new InputError(e.code, `inputs[${i}]: ${e.message}`, { ...e.place, field: `inputs[${i}]` }, { cause: e });
      throw e;
    }
    const reference = await referenceFor(`inputs[${i}]`, raw.manifest.reference);
    planned.push({ lakePath: `raw/patient_id=${raw.manifest.patient_id}/run_id=${raw.runId}/`, patientId: raw.manifest.patient_id, sampleId: raw.manifest.sample_id, reference, label: `inputs[${i}]` });
  }

  const results: ExperimentInputResult[] = [];
  for (const p of planned) {
    const params: DropParams = {
      lakePath: p.lakePath,
      outRoot: prefix,
      readsPerShard,
      reference: p.reference.fasta,
      ...(p.reference.genes ? { genes: p.reference.genes } : {}),
      ...(align ? { align } : {}),
      ...(seedLength ? { seedLength } : {}),
      ...(splitAsSecondary ? { splitAsSecondary } : {}),
      ...(call ? { call } : {}),
      ...(known ? { known } : {}),
      metadata: false,
    };
    const runId = experimentRunId({ experiment: manifest.experiment_id, params });
    opts.log?.info({ experiment: manifest.experiment_id, input: p.label, lakePath: p.lakePath, runId }, 'experiment: running input');
    const r = await runOrResume(runId, params, {}, opts);
    if (r.result.state.status !== 'done') {
      throw new GenolakeError('EXPERIMENT_RUN_FAILED', `${p.label}: run ${runId} ended ${r.result.state.status}`);
    }
    results.push({ ...r, lakePath: p.lakePath, patientId: p.patientId, sampleId: p.sampleId, reference: p.reference });
  }

  const recordKey = `${prefix}experiment.json`;
  const record = {
    experiment_id: manifest.experiment_id,
    manifest,
    finished_at: new Date().toISOString(),
    runs: results.map((r) => ({ run_id: r.runId, lake_path: r.lakePath, patient_id: r.patientId, sample_id: r.sampleId, reference: r.reference.fasta })),
  };
  await opts.lake.put(recordKey, `${JSON.stringify(record, null, 2)}\n`);
  return { experimentId: manifest.experiment_id, prefix, inputs: results, recordKey };
}

/** The folder relative manifest paths are relative to. */
export function manifestDirOf(manifestPath: string): string {
  return dirname(resolve(manifestPath));
}
