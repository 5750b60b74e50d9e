/**
 * `genolake demo`: the whole product on embedded defaults, offline. Simulates a small
 * cohort (reference, genes, per-patient drop archives), registers a provider serving the
 * patients' clinical data as a CSV export, drops every archive into the local lake as a
 * lab would, runs the pipeline on each, then queries the lake.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { CohortSummary } from '../../sim/cohort.js';
import { lakeOption, logOption, openLakeOption, out, positiveInt, stderrLogger, threadsOption } from './common.js';
import { runQuery } from './lake-tables.js';
import { printDropSummary } from './run.js';

export const DEMO_PROVIDER = 'demo-clinic';

/** Clinical records of the simulated patients, as the provider's export would hold them. */
function providerCsv(cohort: CohortSummary): string {
  const rows = ['provider_patient_id,sex,birth_date,diagnosis_date,race,ethnicity,primary_diagnosis_code,primary_diagnosis_system,vital_status,smoking_status'];
  cohort.patients.forEach((p, i) => {
    const sex = i % 2 === 0 ? 'female' : 'male';
    const birthYear = 1950 + ((i * 7) % 30);
    const dx = p.label === 1 ? 'C34.1' : 'D38.1';
    rows.push(
      [p.provider_patient_id, sex, `${birthYear}-0${1 + (i % 9)}-15`, `2025-0${1 + (i % 9)}-01`, 'White', 'Not Hispanic or Latino', dx, 'http://hl7.org/fhir/sid/icd-10-cm', 'alive', i % 3 === 0 ? 'former smoker' : 'never smoker'].join(','),
    );
  });
  return `${rows.join('\n')}\n`;
}

export function register(program: Command): void {
  threadsOption(lakeOption(logOption(program.command('demo'))))
    .description('simulate a small cohort, drop it into the lake, run the pipeline, and query the result (offline)')
    .option('--out <dir>', 'where the simulated drops, reference and provider files go', 'demo-out')
    .option('--patients <n>', 'patients to simulate', positiveInt, 3)
    .option('--seed <n>', 'simulation seed (same seed, same data)', positiveInt, 1)
    .option('--genome-length <bp>', 'simulated genome length', positiveInt, 200_000)
    .option('--coverage <x>', 'mean read depth', positiveInt, 10)
    .action(
      async (o: { lake: string; threads: number; logLevel: string; out: string; patients: number; seed: number; genomeLength: number; coverage: number }) => {
        const outDir = resolve(o.out);
        const [{ openRegistry }, { runDrop }, { refreshCatalog }, { buildFeatures }, { simulateCohort }] = await Promise.all([
          import('../../metadata/registry.js'),
          import('../../pipeline/drop.js'),
          import('../../query/tables.js'),
          import('../../stages/features.js'),
          import('../../sim/cohort.js'),
        ]);
        const lake = await openLakeOption(o.lake);
        const log = stderrLogger(o.logLevel);
        const cohortFile = join(outDir, 'cohort.json');
        let cohort: CohortSummary | undefined;
        if (existsSync(cohortFile)) {
          const prev = JSON.parse(await readFile(cohortFile, 'utf8')) as CohortSummary;
          const same = prev.seed === o.seed && prev.patients.length === o.patients && prev.reference.length === o.genomeLength;
          if (same && prev.patients.every((p) => p.archive && existsSync(resolve(outDir, p.archive)))) cohort = prev;
        }
        if (cohort) out(`using the cohort simulated before in ${outDir} (seed ${o.seed})`);
        else {
          out(`simulating ${o.patients} patient(s), ${o.genomeLength.toLocaleString('en-US')} bp genome, ${o.coverage}x → ${outDir}`);
          cohort = await simulateCohort({
            outDir,
            seed: o.seed,
            patients: o.patients,
            genomeLength: o.genomeLength,
            coverage: o.coverage,
            providerId: DEMO_PROVIDER,
            onProgress: process.stderr.isTTY
              ? (p) => {
                  if (p.step === 'patient' && p.phase === 'done') process.stderr.write(`  simulated ${p.patient} (${p.index + 1}/${p.of})\n`);
                }
              : undefined,
          });
        }

        // The provider: a CSV export, registered in a JSON-file registry next to the drops.
        const providerDir = join(outDir, 'provider');
        await mkdir(providerDir, { recursive: true });
        const csv = join(providerDir, 'patients.csv');
        await writeFile(csv, providerCsv(cohort));
        const registryFile = join(outDir, 'providers.json');
        const registry = await openRegistry(registryFile);
        try {
          await registry.put({
            id: DEMO_PROVIDER,
            kind: 'csv',
            url: csv,
            fields: ['sex', 'age_at_diagnosis', 'race', 'ethnicity', 'primary_diagnosis_code', 'primary_diagnosis_system', 'vital_status', 'smoking_status'],
          });
        } finally {
          await registry.close();
        }

        for (const p of cohort.patients) {
          const archive = resolve(outDir, p.archive!);
          const r = await runDrop(archive, { lake, threads: o.threads, registry: registryFile, reference: resolve(outDir, cohort.reference.fasta), genes: resolve(outDir, cohort.reference.gff3), log, command: process.argv.slice(1) });
          printDropSummary(lake, r.result, r.alreadyDone ? 'already done, nothing to do' : r.resumed ? 'resumed and done' : 'done');
        }
        // Features over the whole lake: the simulated protein-coding genes are the panel.
        const panel = cohort.reference.genes.filter((g) => g.biotype === 'protein_coding').map((g) => g.name);
        const features = await buildFeatures(lake, { panel, callableBases: cohort.reference.length });
        await refreshCatalog(lake);

        out('');
        out(`lake: ${lake.describe()}   (query it: genolake query "<sql>" --lake ${o.lake})`);
        out('patients (curated/patients, from the provider):');
        await runQuery(lake, 'SELECT patient_id, sex, age_at_diagnosis, primary_diagnosis_code, metadata_status FROM patients ORDER BY patient_id', 'table');
        out('');
        out('variants by impact (curated/variants):');
        await runQuery(
          lake,
          "SELECT patient_id, count(*) AS alleles, count(*) FILTER (WHERE impact = 'HIGH') AS high, count(*) FILTER (WHERE impact = 'MODERATE') AS moderate, count(DISTINCT gene) AS genes FROM variants WHERE alt_count > 0 GROUP BY patient_id ORDER BY patient_id",
          'table',
        );
        out('');
        out('HIGH-impact variants across all patients:');
        await runQuery(lake, "SELECT patient_id, chrom, pos, ref, alt, gene, consequence, hgvs_p FROM variants WHERE impact = 'HIGH' AND alt_count > 0 ORDER BY patient_id, chrom, pos LIMIT 10", 'table');
        out('');
        out(`feature table (${features.parquetKey}, ${features.columns.length} columns; CSV in ${features.csvKey}):`);
        await runQuery(lake, 'SELECT patient_id, n_variants, n_high, n_missense, round(tmb_per_mb, 1) AS tmb_per_mb, round(ti_tv, 2) AS ti_tv, sex, age_at_diagnosis FROM features ORDER BY patient_id', 'table');
      },
    );
}
