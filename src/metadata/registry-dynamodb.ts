/**
 * The provider registry in a DynamoDB table (production backend). One item per provider:
 *   provider_id (S, partition key) · config (S, the validated ProviderConfig as JSON) ·
 *   kind (S) · updated_at (S, ISO time).
 * Only secret references are ever stored (ProviderSchema refuses anything else).
 */
import {
  CreateTableCommand,
  DeleteItemCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
  type AttributeValue,
  type DynamoDBClientConfig,
} from '@aws-sdk/client-dynamodb';
import { GenolakeError } from '../util/errors.js';
import type { ProviderConfig, ProviderInput } from './provider.js';
import { parseProvider, type ProviderRegistry } from './registry.js';

export interface DynamoRegistryOptions {
  endpoint?: string;
  region?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** How long `put` waits for a table it created to become ACTIVE. */
  createTimeoutMs?: number;
}

function isNamed(e: unknown, name: string): boolean {
  return (e as { name?: string } | undefined)?.name === name;
}

export class DynamoRegistry implements ProviderRegistry {
  private readonly client: DynamoDBClient;
  private readonly createTimeoutMs: number;

  constructor(
    readonly table: string,
    opts: DynamoRegistryOptions = {},
  ) {
    const cfg: DynamoDBClientConfig = {
      region: opts.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
      endpoint: opts.endpoint ?? process.env.AWS_ENDPOINT_URL_DYNAMODB ?? process.env.AWS_ENDPOINT_URL,
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      maxAttempts: 3,
    };
    this.client = new DynamoDBClient(cfg);
    this.createTimeoutMs = opts.createTimeoutMs ?? 120_000;
  }

  describe(): string {
    return `dynamodb://${this.table}`;
  }

  /** Wraps SDK errors: a missing table gets a clear message, others keep their AWS error name. */
  private fail(e: unknown, what: string): never {
    if (isNamed(e, 'ResourceNotFoundException')) {
      throw new GenolakeError(
        'REGISTRY_TABLE_MISSING',
        `DynamoDB table ${this.table} does not exist (\`genolake providers add --registry dynamodb://${this.table} …\` creates it)`,
      );
    }
    const name = (e as { name?: string }).name ?? 'Error';
    throw new GenolakeError('REGISTRY_DYNAMODB', `${what} on DynamoDB table ${this.table} failed: ${name}: ${(e as Error).message}`, {}, { cause: e });
  }

  private decode(item: Record<string, AttributeValue>): ProviderConfig {
    const id = item.provider_id?.S ?? '?';
    const text = item.config?.S;
    if (!text) throw new GenolakeError('REGISTRY_BAD_ITEM', `provider ${id} in table ${this.table} has no config attribute`);
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new GenolakeError('REGISTRY_BAD_ITEM', `provider ${id} in table ${this.table}: config is not JSON`);
    }
    return parseProvider(doc, { file: `dynamodb://${this.table}/${id}` });
  }

  async get(providerId: string): Promise<ProviderConfig | undefined> {
    let out;
    try {
      out = await this.client.send(new GetItemCommand({ TableName: this.table, Key: { provider_id: { S: providerId } }, ConsistentRead: true }));
    } catch (e) {
      this.fail(e, 'GetItem');
    }
    return out.Item ? this.decode(out.Item) : undefined;
  }

  async list(): Promise<ProviderConfig[]> {
    const all: ProviderConfig[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ScanCommand({ TableName: this.table, ConsistentRead: true, ExclusiveStartKey: start }));
      } catch (e) {
        this.fail(e, 'Scan');
      }
      for (const item of page.Items ?? []) all.push(this.decode(item));
      start = page.LastEvaluatedKey;
    } while (start);
    return all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async put(provider: ProviderInput): Promise<ProviderConfig> {
    const p = parseProvider(provider);
    const cmd = (): PutItemCommand =>
      new PutItemCommand({
        TableName: this.table,
        Item: {
          provider_id: { S: p.id },
          kind: { S: p.kind },
          config: { S: JSON.stringify(p) },
          updated_at: { S: new Date().toISOString() },
        },
      });
    try {
      await this.client.send(cmd());
    } catch (e) {
      if (!isNamed(e, 'ResourceNotFoundException')) this.fail(e, 'PutItem');
      await this.createTable();
      try {
        await this.client.send(cmd());
      } catch (e2) {
        this.fail(e2, 'PutItem');
      }
    }
    return p;
  }

  async remove(providerId: string): Promise<boolean> {
    try {
      const out = await this.client.send(
        new DeleteItemCommand({ TableName: this.table, Key: { provider_id: { S: providerId } }, ReturnValues: 'ALL_OLD' }),
      );
      return out.Attributes !== undefined;
    } catch (e) {
      this.fail(e, 'DeleteItem');
    }
  }

  /** Creates the table (on-demand billing) and waits until it is ACTIVE. */
  async createTable(): Promise<void> {
    try {
      await this.client.send(
        new CreateTableCommand({
          TableName: this.table,
          AttributeDefinitions: [{ AttributeName: 'provider_id', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'provider_id', KeyType: 'HASH' }],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
    } catch (e) {
      // Someone else created it meanwhile: wait for it like for ours.
      if (!isNamed(e, 'ResourceInUseException')) this.fail(e, 'CreateTable');
    }
    const deadline = Date.now() + this.createTimeoutMs;
    for (;;) {
      try {
        const d = await this.client.send(new DescribeTableCommand({ TableName: this.table }));
        if (d.Table?.TableStatus === 'ACTIVE') return;
      } catch (e) {
        if (!isNamed(e, 'ResourceNotFoundException')) this.fail(e, 'DescribeTable');
      }
      if (Date.now() > deadline) throw new GenolakeError('REGISTRY_DYNAMODB', `DynamoDB table ${this.table} did not become ACTIVE within ${this.createTimeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
