/**
 * libvirt save images (`virsh save`; docs/qemu-migration-stream.md §12): a 92-byte header in the
 * saving host's byte order, the domain XML and cookie, then QEMU's stream. Raw and sparse
 * (mapped-ram, whose offsets are absolute in the file) images are read in place; the compressed
 * formats are decompressed while they are read, by zlib for gzip and, as libvirt itself does, by
 * the format's own program for the others (a missing program is named in the error).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { VmdumpError, errnoText } from '../../guest/errors.js';

const HEADER = 92;
const FORMATS = ['raw', 'gzip', 'bzip2', 'xz', 'lzop', 'zstd', 'sparse'] as const;
export type LibvirtFormat = (typeof FORMATS)[number];

export interface LibvirtImage {
  /** File offset of QEMU's stream (after the header and the data area). */
  readonly streamAt: number;
  readonly format: LibvirtFormat;
}

/** The decompressing programs and the Debian packages that have them. */
const PROGRAMS: Partial<Record<LibvirtFormat, readonly [program: string, debianPackage: string]>> = {
  bzip2: ['bzip2', 'bzip2'],
  xz: ['xz', 'xz-utils'],
  lzop: ['lzop', 'lzop'],
  zstd: ['zstd', 'zstd'],
};

/** The image's header, or undefined when the file is a bare QEMU stream. */
export function readLibvirtImage(fd: number, label: string): LibvirtImage | undefined {
  const head = Buffer.alloc(HEADER);
  const n = fs.readSync(fd, head, 0, head.length, 0);
  return libvirtImageOf(head.subarray(0, n), label);
}

/** The header in a file's (or a pipe's) first bytes, or undefined when they start a bare QEMU stream. */
export function libvirtImageOf(head: Buffer, label: string): LibvirtImage | undefined {
  const magic = head.toString('latin1', 0, 16);
  if (magic === 'LibvirtQemudPart')
    throw new VmdumpError(
      'bad-input',
      'this libvirt save image is incomplete (LibvirtQemudPart: the save did not finish)',
      label,
    );
  if (magic !== 'LibvirtQemudSave') return undefined;
  if (head.length < HEADER) throw new VmdumpError('bad-input', 'the libvirt save header is truncated', label);
  // libvirt swaps a header written on a host of the other byte order by its version field.
  const swapped = head.readUInt32LE(16) > 0xffff;
  const u32 = (at: number): number => (swapped ? head.readUInt32BE(at) : head.readUInt32LE(at));
  const format = FORMATS[u32(28)];
  if (format === undefined)
    throw new VmdumpError('bad-input', `this libvirt save image has format ${u32(28)}, which vmdump does not know`, label);
  return { streamAt: HEADER + u32(20), format };
}

/** Whether the stream sits in the file as QEMU wrote it (read in place) or must be decompressed. */
export function isInPlace(image: LibvirtImage | undefined): boolean {
  return image === undefined || image.format === 'raw' || image.format === 'sparse';
}

/** The decompressed QEMU stream of a compressed image, as it is read. */
export function decompressedStream(file: string, image: LibvirtImage, label: string): Readable {
  const compressed = fs.createReadStream(file, { start: image.streamAt, highWaterMark: 1 << 20 });
  const failed = (why: string, cause?: unknown): VmdumpError =>
    new VmdumpError('bad-input', `cannot decompress this ${image.format}-compressed libvirt save image: ${why}`, label, {
      cause,
    });
  if (image.format === 'gzip') {
    const gunzip = zlib.createGunzip();
    const out = new PassThrough();
    const fail = (error: Error): void => {
      out.destroy(failed(errnoText(error), error));
    };
    compressed.on('error', fail);
    gunzip.on('error', fail);
    out.on('close', () => {
      compressed.destroy();
      gunzip.destroy();
    });
    return compressed.pipe(gunzip).pipe(out);
  }
  const [program, debianPackage] = PROGRAMS[image.format]!;
  const child = spawn(program, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = new PassThrough();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  // The output ends only once the program has said it succeeded: a damaged image is an error, not a short stream.
  child.stdout.pipe(out, { end: false });
  child.on('error', (error: NodeJS.ErrnoException) =>
    out.destroy(
      error.code === 'ENOENT'
        ? failed(`the ${program} program is not installed (Debian: apt-get install ${debianPackage})`, error)
        : failed(errnoText(error), error),
    ),
  );
  child.on('close', (code) =>
    code === 0 ? out.end() : out.destroy(failed(`${program} -dc exited with ${code}: ${stderr.trim()}`)),
  );
  compressed.on('error', (error) => out.destroy(failed(errnoText(error), error)));
  child.stdin.on('error', () => undefined); // the program's own exit status says what went wrong
  compressed.pipe(child.stdin);
  out.on('close', () => {
    if (child.exitCode === null) child.kill();
    compressed.destroy();
  });
  return out;
}
