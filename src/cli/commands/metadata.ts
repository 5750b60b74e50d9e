/**
 * `genolake metadata fetch|retry`: patient metadata from a provider into
 * `curated/patients/patient_id=<P>/`. A provider failure still writes the patient's row
 * (metadata_status='missing') and an error record, raises the alarm, and exits 1.
 */
import type { Command } from 'commander';
import type { AlarmWebhook } from '../../metadata/fetch.js';
import { GenolakeError, InputError } from '../../util/errors.js';
import { lakeOption, logOption, openLakeOption, out, stderrLogger } from './common.js';
import { registryOption, withRegistry } from './providers.js';

function webhookOption(cmd: Command): Command {
  return cmd.option('--webhook <url>', 'POST alarms (metadata missing) to this URL (env GENOLAKE_ALARM_WEBHOOK)');
}

// The fetch modules (Arrow, Parquet) load when a command runs, not with every `genolake` call.
const fetchModule = () => import('../../metadata/fetch.js');

async function webhookFrom(url: string | undefined): Promise<AlarmWebhook | undefined> {
  return url ? { url } : (await import('../../metadata/stage.js')).webhookFromEnv();
}

interface CommonOpts {
  registry: string;
  lake: string;
  logLevel: string;
  webhook?: string;
  runId?: string;
}

export function register(program: Command): void {
  const metadata = program.command('metadata').description('patient metadata from providers');

  const fetch = metadata
    .command('fetch')
    .description("fetch one patient's metadata into curated/patients/patient_id=<P>/")
    .requiredOption('--provider <id>', 'provider id in the registry')
    .requiredOption('--patient <P>', "the lake's patient id")
    .requiredOption('--provider-patient-id <X>', "the provider's id for the patient (never logged)")
    .option('--run-id <id>', 'run id for the error records (default: a new meta-… id)');
  for (const add of [registryOption, lakeOption, logOption, webhookOption]) add(fetch);
  fetch.action(async (o: CommonOpts & { provider: string; patient: string; providerPatientId: string }) => {
    const log = stderrLogger(o.logLevel);
    const lake = await openLakeOption(o.lake);
    const { fetchPatientMetadata } = await fetchModule();
    const webhook = await webhookFrom(o.webhook);
    const r = await withRegistry(o.registry, async (registry) => {
      if (!(await registry.get(o.provider))) {
        throw new InputError('PROVIDER_UNKNOWN', `provider ${o.provider} is not in the registry ${registry.describe()}`, { field: 'provider' });
      }
      return fetchPatientMetadata({
        registry,
        providerId: o.provider,
        patientId: o.patient,
        providerPatientId: o.providerPatientId,
        lake,
        runId: o.runId,
        log,
        webhook,
      });
    });
    if (r.status === 'ok') return out(`${r.patientId}  ok  → ${r.key}`);
    out(`${r.patientId}  missing (${r.errorCode})${r.keptPrevious ? ', earlier metadata kept' : ''}  → ${r.key}; error record ${r.errorKey}`);
    throw new GenolakeError('METADATA_MISSING', `metadata for patient ${r.patientId} could not be fetched (${r.errorCode}); see ${r.errorKey}`);
  });

  const retry = metadata
    .command('retry')
    .description('re-fetch every patient whose metadata is marked missing')
    .option('--patient <P...>', 'only these patients')
    .option('--run-id <id>', 'run id for the error records (default: a new meta-… id)');
  for (const add of [registryOption, lakeOption, logOption, webhookOption]) add(retry);
  retry.action(async (o: CommonOpts & { patient?: string[] }) => {
    const log = stderrLogger(o.logLevel);
    const lake = await openLakeOption(o.lake);
    const { retryMissingMetadata } = await fetchModule();
    const webhook = await webhookFrom(o.webhook);
    const r = await withRegistry(o.registry, (registry) =>
      retryMissingMetadata({ registry, lake, log, runId: o.runId, webhook, patientIds: o.patient }),
    );
    for (const x of r.retried) out(`${x.patientId}  ${x.status}${x.errorCode ? ` (${x.errorCode})` : ''}`);
    for (const p of r.noLink) out(`${p}  skipped (no provider link recorded)`);
    const still = r.retried.filter((x) => x.status !== 'ok').length + r.noLink.length;
    out(`retried ${r.retried.length}, recovered ${r.retried.length - r.retried.filter((x) => x.status !== 'ok').length}, still missing ${still} (run ${r.runId})`);
    if (still > 0) throw new GenolakeError('METADATA_MISSING', `${still} patient(s) still without metadata; see _runs/${r.runId}/errors/`);
  });
}
