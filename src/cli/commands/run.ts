/**
 * `genolake run <archive>`, `genolake resume <run_id>`, `genolake runs`, `genolake watch <dir>`:
 * the drop pipeline from the command line.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { stagedPrefix } from '../../lake/keys.js';
import type { Lake } from '../../lake/types.js';
import { DEFAULT_READS_PER_SHARD } from '../../pipeline/defaults.js';
import type { DropOutputs, DropParams } from '../../pipeline/drop.js';
import { defaultReferenceRegistry } from '../../pipeline/references.js';
import { InputError } from '../../util/errors.js';
import { parseKnownSpec, resolveKnownSpec, type KnownDbSpec } from '../../annotate/known-spec.js';
import { GenolakeError } from '../../util/errors.js';
import { describeError } from '../report.js';
import {
  fmtBytes,
  fmtInt,
  interruptSignal,
  lakeOption,
  logOption,
  openLakeOption,
  out,
  positiveInt,
  stderrLogger,
  threadsOption,
} from './common.js';

interface RunOpts {
  lake: string;
  threads: number;
  logLevel: string;
  readsPerShard: number;
  registry?: string;
  reference?: string;
  genes?: string;
  known: KnownDbSpec[];
  references?: string;
  json?: boolean;
}

export function printDropSummary(lake: Lake, r: DropOutputs, how: string, outRoot = ''): void {
  const { ingest, shard, metadata, align, call, annotate, parquet } = r.outputs;
  out(`run ${r.runId}: ${how} (lake ${lake.describe()})`);
  if (ingest) {
    const m = ingest.manifest;
    const size = ingest.bytes !== undefined ? `, ${fmtBytes(ingest.bytes)}${ingest.duplicate ? ' (archive seen before)' : ''}` : '';
    out(`  ingest    patient ${m.patient_id}, sample ${m.sample_id}: ${ingest.readGroups.length} read group(s)${size}`);
    out(`            reads in ${ingest.fastqPrefix}`);
  }
  if (shard && ingest) {
    out(`  shard     ${fmtInt(shard.totalReads)} ${shard.readGroups.some((g) => g.paired) ? 'pairs' : 'reads'}, ${fmtInt(shard.totalBases)} bases, ${shard.shards.length} shard(s) in ${stagedPrefix(ingest, outRoot)}shards/`);
  }
  if (align) {
    const pct = align.reads ? ((100 * align.mapped) / align.reads).toFixed(2) : '0';
    out(`  align     ${fmtInt(align.reads)} reads, ${pct}% mapped, ${fmtInt(align.duplicates)} duplicates → ${align.bam} (+ .bai, qc.json)`);
  }
  if (call) out(`  call      ${fmtInt(call.records)} variants (${fmtInt(call.snvs)} SNVs, ${fmtInt(call.indels)} indels) → ${call.vcf} (+ .tbi)`);
  if (annotate) out(`  annotate  ${fmtInt(annotate.annotated)} of ${fmtInt(annotate.records)} records with consequences → ${annotate.vcf} (+ .tbi)`);
  for (const k of annotate?.known ?? []) out(`            ${k.name}: ${fmtInt(k.matchedRecords)} records matched${k.missingChroms.length ? ` (no records for ${k.missingChroms.join(', ')})` : ''}`);
  if (parquet) out(`  parquet   ${fmtInt(parquet.rows)} rows in ${parquet.files} file(s) → ${outRoot}curated/variants/patient_id=${parquet.patientId}/`);
  if (metadata) out(`  metadata  ${metadata.status}${metadata.status === 'ok' ? '' : ` (${metadata.reason})`} → ${metadata.key}`);
  const prov = r.provenance;
  if (prov) out(`  provenance _runs/${r.runId}/provenance.json`);
}

function runOptions(cmd: Command): Command {
  threadsOption(lakeOption(logOption(cmd)));
  return cmd
    .option('--reads-per-shard <n>', 'reads (pairs) per shard', positiveInt, DEFAULT_READS_PER_SHARD)
    .option('--reference <fasta>', "reference FASTA to align to (its index is built beside it once); without it (and without --references) the run stops after sharding", process.env.GENOLAKE_REFERENCE)
    .option('--genes <gff3|gtf>', 'gene models to annotate the calls with (env GENOLAKE_GENES)', process.env.GENOLAKE_GENES)
    .option(
      '--known <NAME=db.vcf.gz[:FIELD,…]>',
      'known-variant database for the annotate stage (tabix-indexed VCF): IDs and INFO/NAME_FIELD copied on allele match; repeatable',
      (v: string, acc: KnownDbSpec[]) => [...acc, resolveKnownSpec(parseKnownSpec(v), process.cwd())],
      [] as KnownDbSpec[],
    )
    .option('--registry <file|dynamodb://table>', 'provider registry for patient metadata (env GENOLAKE_REGISTRY)', process.env.GENOLAKE_REGISTRY)
    .option('--references <file>', "reference registry: reference names (as manifests give them) → FASTA and gene models; a drop aligns to its manifest's reference when --reference is not given (env GENOLAKE_REFERENCES)", defaultReferenceRegistry())
    .option('--json', 'print the run outputs as JSON');
}

/** An experiment manifest given to `genolake run`: every input through the chain, outputs under experimental/<id>/. */
async function runExperimentFile(file: string, o: RunOpts, lake: Lake, signal?: AbortSignal): Promise<void> {
  const [{ loadManifestFile }, { manifestDirOf, runExperiment }] = await Promise.all([import('../../manifest/load.js'), import('../../pipeline/experiment.js')]);
  const manifest = await loadManifestFile(resolve(file));
  if (manifest.kind !== 'experiment') {
    throw new InputError('RUN_DROP_MANIFEST', 'a drop manifest travels inside its archive with the FASTQs: run the archive', { file });
  }
  if (o.reference) process.stderr.write('genolake: --reference is for drops; an experiment takes its reference from the manifest (or each input\'s, through --references)\n');
  if (o.known.length) process.stderr.write('genolake: --known is for drops; an experiment names its databases in stages.annotate.params.known\n');
  const log = stderrLogger(o.logLevel);
  const r = await runExperiment(manifest, {
    lake,
    threads: o.threads,
    manifestDir: manifestDirOf(file),
    ...(o.references ? { references: resolve(o.references) } : {}),
    ...(o.genes ? { genes: resolve(o.genes) } : {}),
    log,
    signal,
    command: process.argv.slice(1),
  });
  if (o.json) {
    out(JSON.stringify({ experimentId: r.experimentId, prefix: r.prefix, runs: r.inputs.map((i) => ({ runId: i.runId, lakePath: i.lakePath, alreadyDone: i.alreadyDone, outputs: i.result.outputs })) }, null, 2));
    return;
  }
  out(`experiment ${r.experimentId}: ${r.inputs.length} input(s) → ${lake.describe()}/${r.prefix}`);
  for (const i of r.inputs) printDropSummary(lake, i.result, i.alreadyDone ? 'already done, nothing to do' : i.resumed ? 'resumed and done' : 'done', r.prefix);
  out(`  record    ${r.recordKey}`);
}

const MANIFEST_FILE = /\.(json|ya?ml)$/i;

async function runOne(archive: string, o: RunOpts, lake: Lake, signal?: AbortSignal): Promise<DropOutputs> {
  // a bad database fails now, not after alignment and calling
  if (o.known.length) await (await import('../../annotate/known.js')).checkKnownDatabases(o.known);
  const { runDrop } = await import('../../pipeline/drop.js');
  const log = stderrLogger(o.logLevel);
  const r = await runDrop(resolve(archive), {
    lake,
    threads: o.threads,
    readsPerShard: o.readsPerShard,
    registry: o.registry,
    reference: o.reference ? resolve(o.reference) : undefined,
    genes: o.genes ? resolve(o.genes) : undefined,
    references: o.references ? resolve(o.references) : undefined,
    known: o.known,
    log,
    signal,
    command: process.argv.slice(1),
  });
  if (o.json) out(JSON.stringify({ runId: r.runId, alreadyDone: r.alreadyDone, resumed: r.resumed, outputs: r.result.outputs }, null, 2));
  else printDropSummary(lake, r.result, r.alreadyDone ? 'already done, nothing to do' : r.resumed ? 'resumed and done' : 'done');
  if (r.ignoredParams.length) {
    process.stderr.write(
      `genolake: run ${r.runId} keeps the parameters it was started with; ${r.ignoredParams.join(', ')} given now differ and were not used ` +
        '(a drop is one run: rerun its reads with other parameters through an experiment manifest)\n',
    );
  }
  return r.result;
}

export function register(program: Command): void {
  runOptions(
    program
      .command('run')
      .description(
        'ingest a dropped archive (.tar, .tar.gz/.tgz, .zip with FASTQs + manifest) and run the pipeline on it; ' +
          'or run an experiment manifest (.json/.yaml, kind "experiment"): outputs under experimental/<experiment_id>/',
      )
      .argument('<archive|experiment>', 'the drop archive, or an experiment manifest'),
  ).action(async (input: string, o: RunOpts) => {
    const lake = await openLakeOption(o.lake);
    const stop = interruptSignal();
    try {
      if (MANIFEST_FILE.test(input)) await runExperimentFile(input, o, lake, stop.signal);
      else await runOne(input, o, lake, stop.signal);
    } finally {
      stop.dispose();
    }
  });

  threadsOption(lakeOption(logOption(program.command('resume'))))
    .description('continue a run that stopped (crash, kill, Ctrl-C): finished tasks are kept')
    .argument('<run_id>', 'the run id (see `genolake runs`)')
    .option('--json', 'print the run outputs as JSON')
    .action(async (runId: string, o: { lake: string; threads: number; logLevel: string; json?: boolean }) => {
      const lake = await openLakeOption(o.lake);
      const [{ RunStore }, { resumeRun }, { dropStages }] = await Promise.all([import('../../engine/run.js'), import('../../engine/graph.js'), import('../../pipeline/drop.js')]);
      const state = await new RunStore(lake, runId).readState();
      if (!state) throw new GenolakeError('RUN_NOT_FOUND', `no run ${runId} in ${lake.describe()} (see \`genolake runs\`)`);
      const stop = interruptSignal();
      try {
        const r = await resumeRun(dropStages(state.params as DropParams), {
          lake,
          runId,
          threads: o.threads,
          log: stderrLogger(o.logLevel),
          signal: stop.signal,
          command: process.argv.slice(1),
        });
        if (o.json) out(JSON.stringify({ runId, outputs: r.outputs }, null, 2));
        else printDropSummary(lake, r as unknown as DropOutputs, state.status === 'done' ? 'was already done' : 'resumed and done', (state.params as DropParams).outRoot ?? '');
      } finally {
        stop.dispose();
      }
    });

  lakeOption(program.command('runs'))
    .description('list the runs recorded in the lake')
    .option('--json', 'print as JSON')
    .action(async (o: { lake: string; json?: boolean }) => {
      const lake = await openLakeOption(o.lake);
      const runs = await (await import('../../engine/run.js')).listRuns(lake);
      if (o.json) return out(JSON.stringify(runs, null, 2));
      if (runs.length === 0) return out(`no runs in ${lake.describe()}`);
      for (const r of runs) {
        const rec = r as unknown as Record<string, unknown>;
        out([rec.runId, rec.status, rec.createdAt, rec.updatedAt].filter((v) => v !== undefined).join('\t'));
      }
    });

  runOptions(
    program
      .command('watch')
      .description('watch a directory and run every archive dropped into it, once it is completely written')
      .argument('<dir>', 'the drop directory')
      .option('--stable-ms <ms>', 'an archive is complete when its size and mtime are unchanged this long', positiveInt, 2000)
      .option('--poll-ms <ms>', 'how often to look', positiveInt, 1000),
  ).action(async (dir: string, o: RunOpts & { stableMs: number; pollMs: number }) => {
    const lake = await openLakeOption(o.lake);
    const stop = interruptSignal();
    const { watchDrops } = await import('../../stages/watch.js');
    process.stderr.write(`genolake: watching ${resolve(dir)} for drops (Ctrl-C to stop)\n`);
    try {
      await watchDrops(resolve(dir), {
        signal: stop.signal,
        stableMs: o.stableMs,
        pollMs: o.pollMs,
        onArchive: async (path: string) => {
          try {
            await runOne(path, o, lake, stop.signal);
          } catch (e) {
            // One bad drop must not stop the watcher; it is reported and recorded in its run.
            process.stderr.write(`genolake: ${path}: ${describeError(e)}\n`);
          }
        },
      });
    } finally {
      stop.dispose();
    }
  });
}
