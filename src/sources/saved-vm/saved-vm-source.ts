/**
 * The saved-VM source: a QEMU 7.2 migration stream (`migrate "exec:cat > vm.state"`, or a
 * `virsh save` image with libvirt's header in front) becomes the guest model. A seekable file
 * is read twice: once to index pages and decode device state, then page by page as the dump
 * pulls. Memory holds the page index (runs), never the pages.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { addAbortSignal, type Readable } from 'node:stream';
import { VmdumpError, cancelled, errnoText, isVmdumpError } from '../../guest/errors.js';
import type { GuestModel, RamRange } from '../../guest/guest.js';
import { targetOfCpuSection } from '../../targets/index.js';
import { isSpecialBlock } from '../../formats/migration/block-names.js';
import { physAddr } from '../../guest/units.js';
import { readBlock } from '../../formats/migration/block-reader.js';
import { ByteReader } from '../../formats/migration/byte-reader.js';
import { capabilitiesInHead, parseMigrationStream, type RamBlock } from '../../formats/migration/migration-stream.js';
import { locateVmdesc } from '../../formats/migration/vmdesc.js';
import { readGuestNote, readPointedNote } from '../guest-note.js';
import { decompressedStream, isInPlace, libvirtImageOf, readLibvirtImage, type LibvirtImage } from './libvirt-image.js';

/** Where the QEMU stream starts: 0, or after a libvirt save header whose stream is in place (raw, sparse). */
function streamStart(fd: number, label: string): number {
  const image = readLibvirtImage(fd, label);
  if (!isInPlace(image))
    throw new VmdumpError(
      'bad-input',
      `this libvirt save image is ${image!.format}-compressed; vmdump decompresses it when given the file, not a pipe`,
      label,
    );
  return image?.streamAt ?? 0;
}

export interface SavedVmOptions {
  /** Folder for the spool of a non-seekable input (default: $TMPDIR). */
  readonly spoolDir?: string;
  /** The file calls the spool makes (default node:fs); tests put failing ones here. */
  readonly spoolFileSystem?: SpoolFileSystem;
  readonly signal?: AbortSignal;
}

export type SpoolFileSystem = Pick<typeof fs, 'openSync' | 'unlinkSync' | 'write' | 'closeSync'>;

/**
 * Opens a saved VM. `file` is a path, or `-` for standard input; a pipe is first copied to an
 * already-unlinked temporary file (nothing is left behind, whatever happens), because the CPU
 * state and vmdesc come after RAM while the vmcore needs them first.
 */
export async function openSavedVm(file: string, options: SavedVmOptions = {}): Promise<GuestModel> {
  const label = file === '-' ? 'standard input' : file;
  const stat = file === '-' ? undefined : fs.statSync(file, { throwIfNoEntry: false });
  if (stat?.isFile() !== true)
    return openSavedVmFd(await spoolToTemporaryFile(await pipeInput(file, stat), label, options, refuseMappedRam), label);
  const fd = await openForReading(file);
  let image: LibvirtImage | undefined;
  try {
    image = readLibvirtImage(fd, label);
  } catch (error) {
    fs.closeSync(fd);
    throw error;
  }
  if (isInPlace(image)) return openSavedVmFd(fd, label);
  // A compressed libvirt image: its stream, decompressed as it is read, is spooled like a pipe's.
  fs.closeSync(fd);
  return openSavedVmFd(await spoolToTemporaryFile(decompressedStream(file, image!, label), label, options), label);
}

/**
 * A non-seekable input as a stream. Pipes (standard input, a FIFO) are read through libuv's pipe
 * handle, not the thread pool: a read waiting on a silent writer must not keep vmdump alive
 * after it was cancelled (SIGINT with `slow-producer | vmdump saved -`).
 */
async function pipeInput(file: string, stat: fs.Stats | undefined): Promise<Readable> {
  if (file === '-') return process.stdin;
  // Opened blocking, so that a writer that has not opened its end yet is waited for, not read as EOF.
  if (stat?.isFIFO() === true) return new net.Socket({ fd: await openForReading(file), readable: true, writable: false });
  return fs.createReadStream('', { fd: await openForReading(file), highWaterMark: 1 << 20 });
}

/** A stream received some other way (a live migration), spooled first; see openSavedVm. */
export async function openSavedVmStream(input: Readable, label: string, options: SavedVmOptions = {}): Promise<GuestModel> {
  return openSavedVmFd(await spoolToTemporaryFile(input, label, options), label);
}

/** Takes ownership of `fd` (a seekable stream file): closed by the model's close(), or on failure. */
async function openSavedVmFd(fd: number, label: string): Promise<GuestModel> {
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) throw new VmdumpError('bad-input', 'the saved VM is empty', label);
    const start = streamStart(fd, label);
    const stream = await parseMigrationStream(new ByteReader(fd, size, label, start), () => locateVmdesc(fd, size, label));
    const streamFile = { fd, size, label };
    const cpus = stream.devices.filter((d) => d.name === 'cpu').sort((a, b) => a.instance - b.instance);
    // The `cpu` sections' fields say the architecture; its target decodes them and places the RAM blocks.
    const target = targetOfCpuSection(cpus[0]);
    const decoded = target.vcpusFromStream(cpus);
    const ram: RamRange[] = target.placeSavedRam(stream, label).map((m) => ({
      start: physAddr(m.start),
      size: m.end - m.start,
      label: `${m.block.id} at ${m.offset === 0n ? '0' : `0x${m.offset.toString(16)}`}`,
      systemRam: !isSpecialBlock(m.block.id),
      read: (offset, into) => readBlock(streamFile, m.block, m.offset + offset, into),
      ...(m.block.vmcoreinfoPages.complete ? { vmcoreinfoCandidates: () => candidatesIn(m) } : {}),
    }));
    const arch = decoded.architecture(ram);
    const pointer = target.vmcoreinfoPointer;
    const guestNote =
      pointer === undefined
        ? await readGuestNote(stream.devices, ram, arch.endian)
        : await readPointedNote(ram, pointer, arch.endian);
    const warnings = guestNote !== undefined && 'skipped' in guestNote ? [`VMCOREINFO left out: ${guestNote.skipped}`] : [];
    const romDevices = target.placeSavedRomDevices?.(stream) ?? [];
    return {
      arch,
      vcpus: decoded.vcpus,
      ram,
      ...(romDevices.length > 0 ? { romDevices } : {}),
      warnings,
      ...(guestNote !== undefined && 'note' in guestNote ? { vmcoreinfo: guestNote.note } : {}),
      close: closeOnce(fd),
    };
  } catch (error) {
    try {
      fs.closeSync(fd);
    } catch {
      /* the first error is the one reported */
    }
    throw error;
  }
}

/** The VMCOREINFO candidates pass 1 noted in the part of a block one range places, as offsets into the range. */
function candidatesIn(placed: { block: RamBlock; offset: bigint; start: bigint; end: bigint }): bigint[] {
  const pageSize = BigInt(placed.block.pageSize);
  const offsets = new Set<bigint>();
  for (const page of placed.block.vmcoreinfoPages.pages) {
    const offset = BigInt(page) * pageSize - placed.offset;
    if (offset >= 0n && offset < placed.end - placed.start) offsets.add(offset);
  }
  return [...offsets].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The model's close(): the descriptor is closed the first time, later calls do nothing. */
function closeOnce(fd: number): () => Promise<void> {
  let open = true;
  return async () => {
    if (open) {
      open = false;
      fs.closeSync(fd);
    }
  };
}

function openForReading(file: string): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.open(file, 'r', (error, fd) =>
      error
        ? reject(new VmdumpError('bad-input', `cannot open ${file}: ${errnoText(error)}`, undefined, { cause: error }))
        : resolve(fd),
    ),
  );
}

/**
 * Copies a pipe (or other non-seekable input) into a temporary file that no longer has a name.
 * The spool owns its descriptor and closes it exactly once, on failure; the first error is the
 * one reported: a write that fails (ENOSPC in $TMPDIR) is an output error that names the folder,
 * a read that fails is bad input, an abort is a cancellation.
 */
async function spoolToTemporaryFile(
  input: Readable,
  label: string,
  options: SavedVmOptions,
  inspectHead?: (head: Buffer, label: string) => void,
): Promise<number> {
  const dir = options.spoolDir ?? os.tmpdir();
  const files = options.spoolFileSystem ?? fs;
  const name = path.join(dir, `.vmdump-spool-${process.pid}-${randomBytes(4).toString('hex')}`);
  let fd: number;
  try {
    fd = files.openSync(name, 'wx+', 0o600);
  } catch (error) {
    input.destroy();
    throw spoolWriteError(error, label, dir);
  }
  files.unlinkSync(name);
  const { signal } = options;
  if (signal !== undefined) addAbortSignal(signal, input);
  try {
    let position = 0;
    let head: Buffer | undefined = inspectHead === undefined ? undefined : Buffer.alloc(0);
    for await (const chunk of input as AsyncIterable<Buffer>) {
      if (head !== undefined) {
        head = Buffer.concat([head, chunk]);
        if (head.length >= HEAD_BYTES) {
          inspectHead!(head, label);
          head = undefined;
        }
      }
      await writeAll(files, fd, chunk, position).catch((error: unknown) => {
        throw spoolWriteError(error, label, dir);
      });
      position += chunk.length;
    }
    if (head !== undefined) inspectHead!(head, label);
    return fd;
  } catch (error) {
    input.destroy();
    // Closed here and nowhere else; a failing close must not replace the error that brought us here.
    try {
      files.closeSync(fd);
    } catch {
      /* the first error is the one reported */
    }
    if (signal?.aborted) throw cancelled(signal);
    if (isVmdumpError(error)) throw error;
    throw new VmdumpError('bad-input', `cannot read the saved VM from ${label}: ${errnoText(error)}`, undefined, {
      cause: error,
    });
  }
}

/** Enough of a pipe's start to see a libvirt header or a QEMU stream's configuration. */
const HEAD_BYTES = 4096;

/**
 * A mapped-ram file is read in place, where its zero pages cost nothing; through a pipe every
 * one of them would be copied first. Refused as soon as its first bytes show it.
 */
function refuseMappedRam(head: Buffer, label: string): void {
  const sparse = libvirtImageOf(head, label)?.format === 'sparse';
  if (sparse || capabilitiesInHead(head).includes('mapped-ram'))
    throw new VmdumpError(
      'bad-input',
      `this is a mapped-ram file (${sparse ? "libvirt's sparse save format" : 'QEMU migrate file: with the mapped-ram capability'}): vmdump reads it in place, so give it the file, not a pipe (through a pipe every zero page would be copied first)`,
      label,
    );
}

function spoolWriteError(error: unknown, label: string, dir: string): VmdumpError {
  const full = (error as NodeJS.ErrnoException).code === 'ENOSPC' ? ', which is full' : '';
  return new VmdumpError(
    'output',
    `cannot spool the saved VM from ${label} into $TMPDIR (${dir})${full}: ${errnoText(error)}; ` +
      'set TMPDIR to a folder with room for the whole stream, or give vmdump the saved file itself',
    undefined,
    { cause: error },
  );
}

async function writeAll(files: SpoolFileSystem, fd: number, bytes: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    done += await new Promise<number>((resolve, reject) =>
      files.write(fd, bytes, done, bytes.length - done, position + done, (error, written) =>
        error ? reject(error) : resolve(written),
      ),
    );
  }
}
