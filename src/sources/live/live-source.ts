/**
 * The live source: a running QEMU over QMP (docs/qemu-live-source.md §8; x86, aarch64, s390x). It
 * remembers the run state, stops the VM, takes the exact notes from a 4 KiB dump-guest-memory, the
 * ranges from `info mtree -f`, and reads RAM from share=on backend files or through pmemsave.
 * `close()` hands the VM back in the state it found it: it must be called on every path.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { VmdumpError } from '../../guest/errors.js';
import type { ElfNote, GuestModel, RamRange } from '../../guest/guest.js';
import { decodeQemuNotes, vcpuArchitectureNames, type QemuNotes } from '../../targets/index.js';
import { readPointedNote } from '../guest-note.js';
import { physAddr } from '../../guest/units.js';
import { QmpClient, type QmpAddress } from '../qmp/qmp-client.js';
import { parseFlatView, parseRomDevices, type FlatRange } from './flat-view.js';
import { PassHandOver, PmemsaveTransfer, fifoPath } from './pmemsave-range.js';
import { isSpecialBlock } from '../../formats/migration/block-names.js';
import { readExactly } from '../../guest/read-exactly.js';

export interface LiveOptions {
  /** Where QEMU writes the small notes dump and the pmemsave FIFOs; QEMU must be able to write there (default $TMPDIR). */
  readonly workDir?: string;
  readonly timeoutMs?: number;
}

export interface LiveGuest extends GuestModel {
  /** Whether the VM was running when vmdump found it (and so is resumed by close()). */
  readonly wasRunning: boolean;
}

interface Memdev {
  readonly id: string;
  readonly share: boolean;
}

/** Backend ids whose file can be read directly: share=on and a mem-path that is a file. */
async function readableBackends(qmp: QmpClient): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const memdev of await qmp.execute<Memdev[]>('query-memdev')) {
    if (!memdev.share) continue;
    const memPath = await qmp
      .execute<string>('qom-get', { path: `/objects/${memdev.id}`, property: 'mem-path' })
      .catch(() => undefined);
    if (memPath !== undefined && fs.statSync(memPath, { throwIfNoEntry: false })?.isFile() === true)
      files.set(memdev.id, memPath);
  }
  return files;
}

function fileRange(range: FlatRange, file: string, fds: number[]): RamRange {
  const fd = fs.openSync(file, 'r');
  fds.push(fd);
  return {
    start: physAddr(range.start),
    size: range.end - range.start,
    label: `${range.region} (${file})`,
    systemRam: true,
    read: (offset, into) => readExactly(fd, range.offset + offset, into, file),
  };
}

/**
 * `cont`, over a new connection if the first one was lost mid-dump (a monitor that went away
 * does not stop QEMU): the VM must not stay paused because a socket broke.
 */
async function resume(qmp: QmpClient, address: QmpAddress, options: LiveOptions): Promise<void> {
  try {
    await qmp.execute('cont');
  } catch (first) {
    const again = await QmpClient.connect(address, options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }).catch(
      () => undefined,
    );
    if (again === undefined)
      throw new VmdumpError('bad-input', `the VM was left paused: could not resume it (${(first as Error).message})`);
    try {
      await again.execute('cont');
    } finally {
      again.close();
    }
  }
}

/**
 * Small reads of guest memory through `pmemsave` into a regular file (the lowcore pointer and
 * the note it points to): the FIFO transfers read strictly in order and are for the dump itself.
 */
function peekableRam(qmp: QmpClient, flat: readonly FlatRange[], workDir: string): RamRange[] {
  return flat.map((range) => ({
    start: physAddr(range.start),
    size: range.end - range.start,
    label: `${range.region} via pmemsave`,
    async read(offset, into) {
      const file = path.join(workDir, 'peek.bin');
      await qmp.execute('pmemsave', { val: Number(range.start + offset), size: into.length, filename: file });
      const fd = fs.openSync(file, 'r');
      try {
        await readExactly(fd, 0n, into, file);
      } finally {
        // A read-only file's close cannot lose data; it must not hide a failed read either.
        try {
          fs.closeSync(fd);
        } catch {
          /* the read's outcome is what counts */
        }
        fs.rmSync(file, { force: true });
      }
    },
  }));
}

/** The guest's VMCOREINFO: QEMU's own note, or (where no device reports it, s390x) the one the kernel points at. */
async function liveVmcoreinfo(
  notes: QemuNotes,
  peek: () => RamRange[],
): Promise<{ vmcoreinfo: ElfNote | undefined; warnings?: string[] }> {
  const pointer = notes.target.vmcoreinfoPointer;
  if (pointer === undefined) return { vmcoreinfo: notes.vmcoreinfo };
  const found = await readPointedNote(peek(), pointer, notes.architecture([]).endian);
  if (found !== undefined && 'skipped' in found)
    return { vmcoreinfo: undefined, warnings: [`VMCOREINFO left out: ${found.skipped}`] };
  return { vmcoreinfo: found?.note };
}

export async function openLiveVm(address: QmpAddress, options: LiveOptions = {}): Promise<LiveGuest> {
  const qmp = await QmpClient.connect(address, options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs });
  const target = await qmp.execute<{ arch: string }>('query-target').catch((error: unknown) => {
    qmp.close();
    throw error;
  });
  if (!vcpuArchitectureNames.includes(target.arch)) {
    qmp.close();
    throw new VmdumpError(
      'bad-input',
      `QEMU at ${qmp.where} emulates ${target.arch}; the live source reads ${vcpuArchitectureNames.join(', ')} guests`,
    );
  }
  const wasRunning = (await qmp.execute<{ running: boolean }>('query-status')).running;
  const workDir = fs.mkdtempSync(path.join(options.workDir ?? os.tmpdir(), 'vmdump-live-'));
  const transfers: PmemsaveTransfer[] = [];
  const passes = new PassHandOver();
  const fds: number[] = [];
  let closed = false;
  // Resuming is not conditional on the rest of the clean-up going well: errors are collected, cont runs.
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    const problems: unknown[] = [];
    for (const transfer of transfers) await transfer.abandon().catch((error: unknown) => problems.push(error));
    for (const fd of fds) {
      try {
        fs.closeSync(fd);
      } catch (error) {
        problems.push(error);
      }
    }
    try {
      if (wasRunning) await resume(qmp, address, options);
    } finally {
      qmp.close();
      fs.rmSync(workDir, { recursive: true, force: true });
    }
    if (problems.length > 0) throw new VmdumpError('internal', `clean-up after the dump: ${(problems[0] as Error).message}`);
  };
  try {
    if (wasRunning) await qmp.execute('stop');
    const mtree = await qmp.hmp('info mtree -f');
    const flat = parseFlatView(mtree);
    const romDevices = parseRomDevices(mtree).map((r) => ({ start: physAddr(r.start), size: r.end - r.start, label: r.region }));
    const first = flat[0];
    if (first === undefined) throw new VmdumpError('bad-input', 'the guest has no RAM in its memory map');
    const notesFile = path.join(workDir, 'notes.core');
    // A 4 KiB dump gives QEMU's notes byte for byte (docs/qemu-live-source.md §2, §3.4).
    await qmp.execute('dump-guest-memory', {
      paging: false,
      protocol: `file:${notesFile}`,
      begin: Number(first.start),
      length: 4096,
    });
    const notes = decodeQemuNotes(fs.readFileSync(notesFile));
    fs.rmSync(notesFile);
    const backends = await readableBackends(qmp);
    const ram = flat.map((range, index): RamRange => {
      const file = backends.get(range.region);
      if (file !== undefined) return fileRange(range, file, fds);
      const transfer = new PmemsaveTransfer(
        qmp,
        range.start,
        range.end - range.start,
        fifoPath(workDir, index),
        `${range.region} via pmemsave`,
        passes,
      );
      transfers.push(transfer);
      return {
        start: physAddr(range.start),
        size: range.end - range.start,
        label: transfer.label,
        systemRam: !isSpecialBlock(range.region),
        read: (offset, into) => transfer.read(offset, into),
        readSpan: (offset, into) => transfer.readSpan(offset, into),
      };
    });
    const { vmcoreinfo, warnings } = await liveVmcoreinfo(notes, () => peekableRam(qmp, flat, workDir));
    return {
      arch: notes.architecture(ram),
      vcpus: notes.vcpus,
      ram,
      ...(romDevices.length > 0 ? { romDevices } : {}),
      wasRunning,
      close,
      ...(vmcoreinfo === undefined ? {} : { vmcoreinfo }),
      ...(warnings ? { warnings } : {}),
    };
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
}
