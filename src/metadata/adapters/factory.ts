/**
 * Adapter factory: kind → adapter. Adapters register themselves by definition, so adding a
 * kind means a new module plus one `register` call (built-ins are listed in ./index.ts);
 * this file never changes.
 */
import { GenolakeError } from '../../util/errors.js';
import type { ProviderConfig } from '../provider.js';
import type { AdapterDefinition, AdapterDeps, MetadataAdapter } from './types.js';

export class AdapterFactory {
  private readonly byKind = new Map<string, AdapterDefinition>();

  register(def: AdapterDefinition): this {
    if (this.byKind.has(def.kind)) throw new GenolakeError('ADAPTER_DUPLICATE', `an adapter for kind ${def.kind} is already registered`);
    this.byKind.set(def.kind, def);
    return this;
  }

  kinds(): string[] {
    return [...this.byKind.keys()].sort();
  }

  has(kind: string): boolean {
    return this.byKind.has(kind);
  }

  create(provider: ProviderConfig, deps: AdapterDeps): MetadataAdapter {
    const def = this.byKind.get(provider.kind);
    if (!def) {
      throw new GenolakeError('ADAPTER_UNKNOWN_KIND', `provider ${provider.id}: no adapter for kind ${provider.kind} (known: ${this.kinds().join(', ')})`, {
        field: 'kind',
      });
    }
    return def.create(provider, deps);
  }
}
