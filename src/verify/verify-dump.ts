/**
 * `vmdump verify FILE`: re-reads an ELF core or a kdump file (plain or flattened), checks its
 * structure, and checks FILE.sha256 when one lies beside it (as `--checksum sha256` writes it).
 * A failed check is a `bad-input` VmdumpError whose message names what is wrong and where.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { ELF_MAGIC } from '../formats/elf/elf-constants.js';
import { KDUMP_SIGNATURE } from '../formats/kdump/kdump-format.js';
import { VmdumpError } from '../guest/errors.js';
import { openDumpBytes } from './dump-bytes.js';
import { verifyElf } from './verify-elf.js';
import { verifyKdump } from './verify-kdump.js';

export interface VerifyReport {
  readonly file: string;
  readonly format: 'elf' | 'kdump';
  readonly flattened: boolean;
  readonly summary: string;
  /** The file is sound, but some reader will refuse it: each names the reader and why. */
  readonly warnings: readonly string[];
  /** 'ok' when FILE.sha256 matched; undefined when there is none. */
  readonly sha256?: 'ok';
}

export async function verifyDumpFile(file: string): Promise<VerifyReport> {
  const sha256 = await checkDigest(file);
  const { bytes, flattened } = await openDumpBytes(file);
  try {
    const magic = await bytes.read(0, 8);
    if (magic.length === 0)
      throw new VmdumpError('bad-input', flattened ? 'the flattened stream holds no records' : 'the file is empty', file);
    const report = ELF_MAGIC.every((b, i) => magic[i] === b)
      ? await verifyElf(bytes, file)
      : magic.toString('latin1') === KDUMP_SIGNATURE
        ? await verifyKdump(bytes, file)
        : undefined;
    if (report === undefined)
      throw new VmdumpError('bad-input', "neither an ELF core nor a kdump file (nor makedumpfile's flattened form of one)", file);
    return {
      file,
      format: report.format,
      flattened,
      summary: report.summary,
      warnings: report.warnings,
      ...(sha256 === undefined ? {} : { sha256 }),
    };
  } finally {
    await bytes.close();
  }
}

/** The digest file holds `<hex>  <name>` (sha256sum's format). */
async function checkDigest(file: string): Promise<'ok' | undefined> {
  const digestFile = `${file}.sha256`;
  const text = await fs.promises.readFile(digestFile, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const expected = /^([0-9a-f]{64})\s/.exec(text)?.[1];
  if (expected === undefined) throw new VmdumpError('bad-input', `${digestFile} does not hold a SHA-256 digest`, file);
  const actual = await sha256OfFile(file);
  if (actual !== expected)
    throw new VmdumpError(
      'bad-input',
      `SHA-256 ${actual} differs from ${expected} in ${digestFile}: the file changed after it was written`,
      file,
    );
  return 'ok';
}

/** The hex SHA-256 of a file's bytes, streamed. */
export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(fs.createReadStream(file), hash);
  return hash.digest('hex');
}
