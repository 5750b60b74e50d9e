/**
 * The drop pipeline: what `genolake run <archive>` does, as a graph of stages on the
 * engine. The run id is a function of the archive's content, so a repeated drop lands on
 * the same run: a finished run is reported, an unfinished one resumed.
 *
 *     ingest ──▶ shard ──▶ (align, call, … as they land)
 *        └────▶ metadata            (concurrently: a failing provider never blocks reads)
 */
import { basename } from 'node:path';
import { defineStage, runPipeline, type AnyStage, type RunResult } from '../engine/graph.js';
import { RunStore } from '../engine/run.js';
import type { ProgressStream } from '../engine/progress.js';
import type { Lake } from '../lake/types.js';
import { ingestArchive, readRawRun, type IngestResult, type RawRun } from '../stages/ingest.js';
import { shardReads, type ShardIndex } from '../stages/shard.js';
import { alignSample, type AlignSampleResult } from '../stages/align.js';
import { annotateSample, type AnnotateSampleResult } from '../stages/annotate.js';
import type { KnownDbSpec } from '../annotate/known.js';
import { callSample, type CallSampleResult } from '../stages/call.js';
import { vcfToParquet, type ToParquetResult } from '../stages/to-parquet.js';
import { lakeFileCopy } from '../lake/local-file.js';
import { refreshCatalog } from '../query/tables.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildIndex, loadIndex } from '../align/index-file.js';
import { DEFAULT_INDEX_PARAMS, type AlignParams } from '../align/kernel.js';
import type { CallOptions } from '../call/region.js';
import { metadataForDrop, type DropMetadataResult } from '../metadata/stage.js';
import { GenolakeError } from '../util/errors.js';
import { runIdForDrop, sha256File } from '../util/hash.js';
import type { Logger } from '../util/log.js';
import { ReferenceRegistry } from './references.js';
import { DEFAULT_READS_PER_SHARD } from './defaults.js';
import { stagedPrefix } from '../lake/keys.js';

export { DEFAULT_READS_PER_SHARD, stagedPrefix };

/** Everything a drop run depends on; recorded in the run's state so `resume` rebuilds the same graph. */
export interface DropParams {
  /** Absolute path of the archive as first given (or `lakePath`). */
  archive?: string;
  /** Instead of an archive: a run already ingested, `raw/patient_id=<P>/run_id=<R>/` (experiments). */
  lakePath?: string;
  /**
   * Lake prefix every output goes under: '' for production, `experimental/<id>/` for an
   * experiment, whose outputs then never mix with production data.
   */
  outRoot?: string;
  /** Aligner scoring and search parameters over the defaults (experiments, `--param`). */
  align?: Partial<AlignParams>;
  /** Minimizer (seed) length of the aligner index when not the default; the index is cached per k. */
  seedLength?: number;
  /** Chimeric reads' shorter part as secondary, not supplementary (bwa -M). */
  splitAsSecondary?: boolean;
  /** Caller options over the defaults. */
  call?: CallOptions;
  /** Run the patient-metadata stage (default true; experiments leave patients to production). */
  metadata?: boolean;
  readsPerShard: number;
  /** Provider registry (`FILE` or `dynamodb://table`); none → patients row from the manifest. */
  registry?: string;
  /** Reference FASTA to align to; without it the run stops after sharding. */
  reference?: string;
  /** Gene models (GFF3/GTF) to annotate the calls with; without them calls go to the lake unannotated. */
  genes?: string;
  /**
   * Reference registry file: when `reference` is not given, the drop manifest's reference
   * name is looked up here (FASTA, and gene models unless `genes` is given).
   */
  references?: string;
  /** Known-variant databases for the annotate stage (paths absolute, or URLs). */
  known?: KnownDbSpec[];
  [k: string]: unknown;
}

/** The name a run's command line shows for its input. */
function inputName(params: DropParams): string {
  return params.archive ? basename(params.archive) : (params.lakePath ?? '?');
}

export function dropStages(params: DropParams) {
  const outRoot = params.outRoot ?? '';
  const commandLine = `genolake run ${inputName(params)}`;
  const ingest = defineStage({
    name: 'ingest',
    async run(ctx): Promise<IngestResult | RawRun> {
      if (params.lakePath !== undefined) return readRawRun(ctx.lake, params.lakePath);
      if (params.archive === undefined) throw new GenolakeError('RUN_NO_INPUT', 'the run has neither an archive nor a lake input');
      const r = await ingestArchive(ctx.lake, params.archive, { log: ctx.log });
      // Experiment runs have their own ids; a drop's id is its content's.
      if (!outRoot && r.runId !== ctx.runId) {
        // The archive at this path changed since the run started: resuming would mix drops.
        throw new GenolakeError(
          'DROP_CHANGED',
          `${params.archive} no longer has the content of run ${ctx.runId} (now ${r.runId}); run it as a new drop`,
          { file: params.archive },
        );
      }
      ctx.progress.addUnits('bytes', r.bytes);
      return r;
    },
  });

  const shard = defineStage({
    name: 'shard',
    deps: [ingest],
    async run(ctx, { ingest: ing }): Promise<ShardIndex> {
      // Shard tasks are keyed by their staging prefix, so a checkpointed task is reused only
      // while its staged files exist (see shardTaskKey).
      return shardReads(
        {
          readGroups: ing.readGroups.map((rg) => ({ id: rg.id, r1: rg.r1, ...(rg.r2 ? { r2: rg.r2 } : {}) })),
          readsPerShard: params.readsPerShard,
          outPrefix: `${stagedPrefix(ing, outRoot)}shards/`,
        },
        { lake: ctx.lake, log: ctx.log, runTasks: ctx.runTasks, progress: ctx.progress },
      );
    },
  });

  const metadata = defineStage({
    name: 'metadata',
    deps: [ingest],
    async run(ctx, { ingest: ing }): Promise<DropMetadataResult> {
      return metadataForDrop({
        registryUri: params.registry,
        lake: ctx.lake,
        runId: ctx.runId,
        manifest: ing.manifest,
        log: ctx.log,
        signal: ctx.signal,
      });
    },
  });

  const front = params.metadata === false ? ([ingest, shard] as const) : ([ingest, shard, metadata] as const);
  if (!params.reference && !params.references) return front satisfies readonly AnyStage[];
  const seedLength = params.seedLength;

  const index = defineStage({
    name: 'index',
    deps: [ingest],
    async run(ctx, { ingest: ing }): Promise<{ indexDir: string; fasta: string; genes?: string }> {
      const ref = await dropReference(params, ing.manifest.reference);
      return { indexDir: await ensureIndex(ref.fasta, ctx.log, seedLength), ...ref };
    },
  });

  const align = defineStage({
    name: 'align',
    deps: [ingest, shard, index],
    async run(ctx, { ingest: ing, shard: sh, index: idx }): Promise<AlignSampleResult> {
      const fields: Record<string, Record<string, string>> = {};
      for (const rg of ing.readGroups) {
        fields[rg.id] = {
          PL: ing.manifest.platform,
          ...(rg.library ? { LB: rg.library } : {}),
          ...(rg.platform_unit ? { PU: rg.platform_unit } : {}),
        };
      }
      return alignSample(
        {
          shards: sh,
          indexDir: idx.indexDir,
          outPrefix: `${stagedPrefix(ing, outRoot)}alignment/`,
          sampleId: ing.manifest.sample_id,
          readGroupFields: fields,
          ...(params.align ? { params: params.align } : {}),
          ...(params.splitAsSecondary ? { splitAsSecondary: true } : {}),
          commandLine,
        },
        { lake: ctx.lake, pool: ctx.pool, log: ctx.log, progress: ctx.progress },
      );
    },
  });

  const call = defineStage({
    name: 'call',
    deps: [ingest, align, index],
    async run(ctx, { ingest: ing, align: al, index: idx }): Promise<CallSampleResult> {
      return callSample(
        { bamKeys: [al.bam], reference: idx.fasta, outPrefix: `${stagedPrefix(ing, outRoot)}calls/`, ...(params.call ? { options: params.call } : {}), commandLine },
        { lake: ctx.lake, pool: ctx.pool, log: ctx.log },
      );
    },
  });

  const annotate = defineStage({
    name: 'annotate',
    deps: [ingest, call, index],
    async run(ctx, { ingest: ing, call: c, index: idx }): Promise<AnnotateSampleResult | null> {
      const genes = idx.genes;
      if (!genes) return null;
      const reference = idx.fasta;
      const known = params.known?.length ? { known: params.known } : {};
      return annotateSample({ vcfKey: c.vcf, reference, genes, ...known, outPrefix: `${stagedPrefix(ing, outRoot)}annotated/` }, { lake: ctx.lake, log: ctx.log, pool: ctx.pool });
    },
  });

  const parquet = defineStage({
    name: 'parquet',
    deps: [ingest, call, annotate],
    async run(ctx, { ingest: ing, call: c, annotate: an }): Promise<Omit<ToParquetResult, 'files' | 'removed'> & { files: number }> {
      const tmp = await mkdtemp(join(tmpdir(), 'genolake-parquet-'));
      try {
        const key = an?.vcf ?? c.vcf;
        const vcfPath = await lakeFileCopy(ctx.lake, key, tmp);
        const r = await vcfToParquet(
          {
            vcfPath,
            displayName: key,
            patientId: ing.manifest.patient_id,
            samples: [{ sampleId: ing.manifest.sample_id }],
            // The raw run's id: an experiment's parts replace the same experiment's earlier ones.
            runId: ing.runId,
            reference: ing.manifest.reference,
            tablePrefix: `${outRoot}curated/variants/`,
          },
          {
            lake: ctx.lake,
            log: ctx.log,
            // Slice keys name this attempt's staging prefix: reused only within the attempt.
            runTask: <P, R>(worker: string, k: string, payload: P) => ctx.runTask<P, R>(worker, k, payload),
          },
        );
        ctx.progress.addUnits('records', r.records);
        if (!outRoot) await refreshCatalog(ctx.lake);
        const { files, removed: _removed, ...rest } = r;
        return { ...rest, files: files.length };
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    },
  });

  return [...front, index, align, call, annotate, parquet] as const satisfies readonly AnyStage[];
}

/**
 * The reference a drop aligns to: `--reference` (with `--genes`) when given, else the
 * manifest's reference name looked up in the registry (`--references`), whose gene models
 * apply unless `--genes` names others.
 */
async function dropReference(params: DropParams, name: string): Promise<{ fasta: string; genes?: string }> {
  if (params.reference) return { fasta: params.reference, ...(params.genes ? { genes: params.genes } : {}) };
  const registry = await ReferenceRegistry.open(params.references!);
  const e = await registry.resolve(name, 'reference (drop manifest)');
  const genes = params.genes ?? e.genes;
  return { fasta: e.fasta, ...(genes ? { genes } : {}) };
}

/** A cached index in these states is rebuilt; any other error (e.g. a corrupt part) is reported. */
const REBUILD_CACHED_INDEX_ON = new Set(['INDEX_MISSING', 'INDEX_STALE', 'INDEX_VERSION', 'INDEX_FAI_MISSING', 'INDEX_PART_MISSING', 'INDEX_PART_FOREIGN']);

/**
 * The aligner index of a FASTA, cached beside it (`<fasta>.genolake/`, or
 * `<fasta>.genolake-k<k>/` for another seed length), rebuilt when missing or stale.
 */
export async function ensureIndex(fasta: string, log?: Logger, k: number = DEFAULT_INDEX_PARAMS.k): Promise<string> {
  const dir = k === DEFAULT_INDEX_PARAMS.k ? `${fasta}.genolake` : `${fasta}.genolake-k${k}`;
  const params = { ...DEFAULT_INDEX_PARAMS, k };
  try {
    // The header says whether it is current; the align stage reads (and checksums) the blob once.
    const loaded = await loadIndex(dir, { reference: fasta, headerOnly: true });
    if (loaded.header.params.k !== k) throw Object.assign(new Error('other k'), { code: 'INDEX_STALE' });
    return dir;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (!REBUILD_CACHED_INDEX_ON.has(code ?? '')) throw e;
    log?.info({ fasta, dir, why: code }, 'building the aligner index');
    await buildIndex(fasta, dir, params);
    return dir;
  }
}

export type DropOutputs = RunResult<{
  ingest: IngestResult;
  shard: ShardIndex;
  metadata: DropMetadataResult;
  /** Present when the run aligns (a reference was given). */
  align?: AlignSampleResult;
  call?: CallSampleResult;
  annotate?: AnnotateSampleResult | null;
  parquet?: Omit<ToParquetResult, 'files' | 'removed'> & { files: number };
}>;

export interface RunDropOptions {
  lake: Lake;
  threads?: number;
  readsPerShard?: number;
  registry?: string;
  reference?: string;
  genes?: string;
  /** Reference registry (see DropParams.references). */
  references?: string;
  /** Known-variant databases for the annotate stage. */
  known?: KnownDbSpec[];
  log?: Logger;
  progress?: boolean | ProgressStream;
  signal?: AbortSignal;
  command?: string[];
}

export interface RunDropResult {
  runId: string;
  /** The run was already finished: nothing was done. */
  alreadyDone: boolean;
  /** An unfinished run of the same drop was continued. */
  resumed: boolean;
  /**
   * Parameters given now that differ from those the run was started with (which are the
   * ones that apply: a drop is one run). Empty when they agree.
   */
  ignoredParams: string[];
  result: DropOutputs;
}

/**
 * Runs a dropped archive end to end. Idempotent: the same archive content maps onto one
 * run id; a finished run is returned as it is, an unfinished one is resumed.
 */
export async function runDrop(archivePath: string, opts: RunDropOptions): Promise<RunDropResult> {
  const sha = await sha256File(archivePath);
  const runId = runIdForDrop(sha);
  const params: DropParams = {
    archive: archivePath,
    readsPerShard: opts.readsPerShard ?? DEFAULT_READS_PER_SHARD,
    ...(opts.registry ? { registry: opts.registry } : {}),
    ...(opts.reference ? { reference: opts.reference } : {}),
    ...(opts.genes ? { genes: opts.genes } : {}),
    ...(opts.references && !opts.reference ? { references: opts.references } : {}),
    ...(opts.known?.length ? { known: opts.known } : {}),
  };
  // A re-drop of the same content under another path or name is the same run: read it from here.
  return runOrResume(runId, params, { archive: archivePath }, { ...opts, inputChecksums: { [basename(archivePath)]: `sha256:${sha}` } });
}

/**
 * Runs the stages of `params` as run `runId`, or continues it: a finished run is answered
 * from its record without touching it, an unfinished one is resumed with the parameters it
 * was started with (`override` replaces fields that may differ between attempts, such as
 * where the archive now is).
 */
export async function runOrResume(
  runId: string,
  params: DropParams,
  override: Partial<DropParams>,
  opts: RunDropOptions & { inputChecksums?: Record<string, string> },
): Promise<RunDropResult> {
  const store = new RunStore(opts.lake, runId);
  const existing = await store.readState();
  const first = existing ? (existing.params as DropParams) : params;
  const effective: DropParams = { ...first, ...override };
  const ignoredParams = existing
    ? [...new Set([...Object.keys(params), ...Object.keys(first)])]
        .filter((k) => !(k in override) && JSON.stringify(params[k]) !== JSON.stringify(first[k]))
        .sort()
    : [];
  if (ignoredParams.length) {
    opts.log?.warn({ runId, ignoredParams }, `run ${runId} keeps the parameters it was started with (${ignoredParams.join(', ')} differ); rerun with other parameters as an experiment`);
  }
  if (existing?.status === 'done') {
    const outputs: Record<string, unknown> = {};
    for (const s of dropStages(effective)) outputs[s.name] = (await store.readStage(s.name))?.output;
    const provenance = await store.readProvenance();
    const result = { runId, outputs, state: existing, provenance } as unknown as DropOutputs;
    return { runId, alreadyDone: true, resumed: false, ignoredParams, result };
  }
  const result = await runPipeline(dropStages(effective), {
    lake: opts.lake,
    runId,
    threads: opts.threads,
    log: opts.log,
    progress: opts.progress,
    signal: opts.signal,
    command: opts.command,
    ...(opts.inputChecksums ? { inputChecksums: opts.inputChecksums } : {}),
    resume: !!existing,
    params: first,
  });
  return { runId, alreadyDone: false, resumed: !!existing, ignoredParams, result: result as unknown as DropOutputs };
}
