/**
 * Reading values out of parsed JSON with errors that name the field ("ram[1].size: ...").
 * Numbers may be JSON integers (up to 2^53) or strings in decimal or 0x-hex, because
 * kernel addresses do not fit a JSON number.
 */
import { VmdumpError } from '../../guest/errors.js';
import { U64_MAX } from '../../guest/units.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export class FieldReader {
  constructor(readonly file: string) {}

  fail(field: string, message: string): never {
    throw new VmdumpError('bad-input', `${field}: ${message}`, this.file);
  }

  object(value: Json | undefined, field: string): JsonObject {
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      this.fail(field, `expected an object, got ${describe(value)}`);
    return value;
  }

  array(value: Json | undefined, field: string): Json[] {
    if (!Array.isArray(value)) this.fail(field, `expected an array, got ${describe(value)}`);
    return value;
  }

  string(value: Json | undefined, field: string): string {
    if (typeof value !== 'string' || value === '') this.fail(field, `expected a non-empty string, got ${describe(value)}`);
    return value;
  }

  /** An unsigned integer up to `max` (default 2^64 - 1). */
  integer(value: Json | undefined, field: string, max = U64_MAX): bigint {
    const parsed = parseInteger(value);
    if (parsed === undefined)
      this.fail(field, `expected an integer (a JSON number, or a string like "0x1000"), got ${describe(value)}`);
    if (parsed < 0n || parsed > max) this.fail(field, `${value} is out of range (0 to 0x${max.toString(16)})`);
    return parsed;
  }

  /** Rejects keys outside `allowed`, so a typo is an error instead of a silently missing value. */
  onlyKeys(object: JsonObject, allowed: readonly string[], field: string): void {
    for (const key of Object.keys(object)) {
      if (!allowed.includes(key))
        this.fail(field === '' ? key : `${field}.${key}`, `unknown field (expected one of: ${allowed.join(', ')})`);
    }
  }
}

function parseInteger(value: Json | undefined): bigint | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? BigInt(value) : undefined;
  if (typeof value !== 'string') return undefined;
  const text = value.trim().replaceAll('_', '');
  if (/^0x[0-9a-f]+$/i.test(text) || /^[0-9]+$/.test(text)) return BigInt(text);
  return undefined;
}

function describe(value: Json | undefined): string {
  if (value === undefined) return 'nothing';
  return JSON.stringify(value).slice(0, 60);
}
