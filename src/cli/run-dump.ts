/** `vmdump raw`: open the guest, plan, pick the sink, write, report. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isatty } from 'node:tty';
import { machineNames } from '../model/elf-constants.js';
import { VmdumpError, errnoText } from '../model/errors.js';
import { pagingEnabled, type GuestModel } from '../model/guest.js';
import { writeDump, type DumpSummary } from '../pipeline/write-dump.js';
import { writeKdump, type KdumpDestination, type KdumpSummary } from '../pipeline/write-kdump.js';
import type { KdumpCodec } from '../transforms/kdump-format.js';
import { planKdump } from '../transforms/kdump-plan.js';
import { sha256OfFile } from '../verify/verify-dump.js';
import { fdSink } from '../sinks/fd-sink.js';
import { fileSink, placedFileSink } from '../sinks/file-sink.js';
import { gzipSink } from '../sinks/gzip-sink.js';
import { digestSink, type DigestSink } from '../sinks/digest-sink.js';
import type { Sink } from '../sinks/sink.js';
import { openRawImage } from '../sources/raw-image.js';
import { openSavedVm } from '../sources/saved-vm/saved-vm-source.js';
import { openLiveVm } from '../sources/live/live-source.js';
import { openLiveMigration } from '../sources/live/live-migration.js';
import type { QmpAddress } from '../qmp/qmp-client.js';
import { planDump, type DumpPlan, type LayoutKind } from '../transforms/dump-plan.js';
import type { MemoryFilter, MemoryMapping } from '../transforms/memory-mapping.js';
import { planPagingMappings } from '../transforms/x86-paging.js';
import { PhysicalReader } from '../sources/physical-reader.js';
import { formatBytes, formatRate, formatSeconds } from './format.js';
import { discoverLinuxLayout, readersFor } from '../pipeline/linux-layout.js';
import { showProgress, type ProgressMode } from './progress-view.js';

export type CliSource =
  | { readonly kind: 'raw'; readonly machine: string }
  | { readonly kind: 'saved'; readonly file: string }
  | { readonly kind: 'qmp'; readonly address: QmpAddress; readonly live: boolean };

export interface CliOptions {
  readonly source: CliSource;
  readonly output: string | undefined;
  readonly gzip: boolean;
  readonly layout: LayoutKind;
  readonly progress: ProgressMode;
  readonly fsync: boolean;
  readonly filter: MemoryFilter | undefined;
  /** Virtual addresses from the guest's page tables (QEMU's paging=true). */
  readonly paging: boolean;
  /** Replace an existing output file. */
  readonly force: boolean;
  readonly format: OutputFormat;
  /** kdump: the flattened form even into a file. */
  readonly flattened: boolean;
  readonly threads?: number;
  /** Write a SHA-256 of the output beside it (FILE.sha256), or on stderr for standard output. */
  readonly checksum: boolean;
}

export type OutputFormat = 'elf' | { readonly codec: KdumpCodec };

function chooseSink(options: CliOptions, digests: DigestSink[]): Sink {
  const toStdout = options.output === undefined || options.output === '-';
  if (toStdout && isatty(1)) {
    throw new VmdumpError('usage', 'refusing to write a binary dump to a terminal; use -o FILE or redirect standard output');
  }
  let base: Sink = toStdout ? fdSink(1) : fileSink(options.output!, { fsync: options.fsync, overwrite: options.force });
  if (options.checksum) {
    const digesting = digestSink(base);
    digests.push(digesting);
    base = digesting;
  }
  return options.gzip ? gzipSink(base) : base;
}

/**
 * FILE.sha256 in sha256sum's format (`sha256sum -c` and `vmdump verify` check it), created like
 * the dump (0600, refused if it exists without --force); for standard output, a line on stderr.
 */
async function writeDigest(options: CliOptions, digests: readonly DigestSink[], write: (text: string) => void): Promise<void> {
  if (!options.checksum) return;
  const output = options.output;
  const toStdout = output === undefined || output === '-';
  // The plain kdump file is written out of order: its digest is taken by reading it back.
  const hex = digests[0]?.digest() ?? await sha256OfFile(output!);
  if (toStdout || isSequentialDevice(output!) || !fs.statSync(output!).isFile()) {
    write(`vmdump: sha256 ${hex}  ${toStdout ? '-' : output}\n`);
    return;
  }
  const digestFile = `${output}.sha256`;
  await fs.promises.writeFile(digestFile, `${hex}  ${path.basename(output!)}\n`, { mode: 0o600, flag: options.force ? 'w' : 'wx' })
    .catch((error: NodeJS.ErrnoException) => {
      throw new VmdumpError('output', `the dump is complete, but its digest could not be written: ${errnoText(error)}`, digestFile, { cause: error });
    });
}

async function openGuest(source: CliSource, signal: AbortSignal, write: (text: string) => void): Promise<GuestModel> {
  if (source.kind === 'raw') return openRawImage(source.machine);
  if (source.kind === 'saved') return openSavedVm(source.file, { signal });
  if (!source.live) return openLiveVm(source.address);
  const guest = await openLiveMigration(source.address, { signal });
  if (guest.pausedMs !== undefined) write(`vmdump: the VM was paused for ${guest.pausedMs.toFixed(0)} ms (live migration switchover) and is running again\n`);
  return guest;
}

export async function runDump(options: CliOptions, signal: AbortSignal, write: (text: string) => void): Promise<DumpSummary | KdumpSummary> {
  const guest = await openGuest(options.source, signal, write);
  for (const warning of guest.warnings ?? []) write(`vmdump: warning: ${warning}\n`);
  try {
    if (options.format !== 'elf') return await runKdump(guest, options, options.format.codec, signal, write);
    const mappings = options.paging ? await pagingMappings(guest, options.layout) : undefined;
    const linux = options.layout === 'portable' && mappings === undefined ? await discoverLinuxLayout(guest) : undefined;
    const facts = linux !== undefined && 'facts' in linux ? linux.facts : undefined;
    const plan = planDump(guest, {
      layout: options.layout, ...(options.filter === undefined ? {} : { filter: options.filter }), ...(facts === undefined ? {} : { linux: facts }),
      ...(mappings === undefined ? {} : { mappings }),
    });
    const digests: DigestSink[] = [];
    const run = writeDump(plan, chooseSink(options, digests), { signal });
    const shown = showProgress(run.progress$, options.progress, write);
    const summary = await run.result.finally(() => shown);
    await writeDigest(options, digests, write);
    report(summary, plan, guest, options.progress, write);
    if (options.progress !== 'json') {
      const why = linux !== undefined && 'reason' in linux ? ` (not the Linux /proc/vmcore layout: ${linux.reason})` : '';
      write(`vmdump: ${readersFor(plan.layout, linux !== undefined && 'identity' in linux ? 'identity' : facts !== undefined)}${why}\n`);
    }
    return summary;
  } finally {
    await guest.close();
  }
}

async function runKdump(guest: GuestModel, options: CliOptions, codec: KdumpCodec, signal: AbortSignal,
  write: (text: string) => void): Promise<KdumpSummary> {
  const plan = planKdump(guest, { codec, layout: options.layout });
  const digests: DigestSink[] = [];
  const destination = chooseKdumpDestination(options, digests);
  const run = writeKdump(plan, destination, { signal, ...(options.threads === undefined ? {} : { threads: options.threads }) });
  const shown = showProgress(run.progress$, options.progress, write);
  const summary = await run.result.finally(() => shown);
  await writeDigest(options, digests, write);
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  if (options.progress === 'json') {
    write(`${JSON.stringify({ event: 'done', format: `kdump-${codec}`, ...summary, elapsedMs: Math.round(summary.elapsedMs), peakRssBytes })}\n`);
    return summary;
  }
  const rate = summary.elapsedMs > 0 ? summary.memoryBytes / (summary.elapsedMs / 1000) : 0;
  write(`vmdump: wrote ${summary.destination}: ${formatBytes(summary.bytesWritten)} (kdump-${codec}, `
    + `${summary.flattened ? 'flattened' : 'plain'}, ${summary.pages} pages: ${summary.zeroPages} zero, ${summary.compressedPages} compressed, `
    + `${summary.rawPages} raw; ${summary.threads} thread${summary.threads === 1 ? '' : 's'}) in ${formatSeconds(summary.elapsedMs)}, `
    + `${formatRate(rate)} of guest RAM, peak RSS ${formatBytes(peakRssBytes)}\n`);
  write(summary.flattened
    ? 'vmdump: crash opens it as it is; makedumpfile -R FILE < DUMP turns it into the plain file other readers need\n'
    : 'vmdump: opens in crash and makedumpfile\n');
  return summary;
}

/** Plain into a file; flattened wherever the bytes must go in order (stdout, a pipe, gzip) or when asked. */
function chooseKdumpDestination(options: CliOptions, digests: DigestSink[]): KdumpDestination {
  const output = options.output;
  const sequential = output === undefined || output === '-' || options.gzip || options.flattened || isSequentialDevice(output);
  if (sequential) return { kind: 'flattened', sink: chooseSink(options, digests) };
  return { kind: 'plain', sink: placedFileSink(output, { fsync: options.fsync, overwrite: options.force }) };
}

/** A FIFO or socket cannot take out-of-order writes; /dev/null and block devices can. */
function isSequentialDevice(output: string): boolean {
  try {
    const stat = fs.statSync(output);
    return stat.isFIFO() || stat.isSocket();
  } catch {
    return false;
  }
}

async function pagingMappings(guest: GuestModel, layout: LayoutKind): Promise<MemoryMapping[] | undefined> {
  const nonX86 = guest.vcpus.find((v) => v.state.kind !== 'x86');
  if (nonX86 !== undefined) {
    // QEMU 7.2 has no walker for these either: its paging=true file equals paging=false (other-arches.md §4.1).
    if (layout === 'qemu') return undefined;
    throw new VmdumpError('usage', `--paging walks x86 page tables only; for ${guest.arch.name} the default layout already maps the kernel's virtual addresses (and --layout qemu --paging writes QEMU's paging=true file, which equals paging=false)`);
  }
  if (!guest.vcpus.some((v) => pagingEnabled(v.state))) {
    throw new VmdumpError('usage', '--paging needs a vCPU with paging on (CR0.PG); every vCPU here runs without paging');
  }
  // QEMU's quirks only where its bytes are the point.
  return planPagingMappings(guest.ram, guest.vcpus, new PhysicalReader(guest.ram), { qemuQuirks: layout === 'qemu' });
}

function report(summary: DumpSummary, plan: DumpPlan, guest: GuestModel, mode: ProgressMode, write: (text: string) => void): void {
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  const rate = summary.elapsedMs > 0 ? summary.bytesWritten / (summary.elapsedMs / 1000) : 0;
  if (mode === 'json') {
    write(`${JSON.stringify({ event: 'done', ...summary, elapsedMs: Math.round(summary.elapsedMs), peakRssBytes })}\n`);
    return;
  }
  const machine = machineNames[plan.target.machine] ?? `machine ${plan.target.machine}`;
  const notes = plan.records.find((r) => r.kind === 'notes');
  const hasVmcoreinfo = notes?.kind === 'notes' && notes.notes.at(-1)?.name === 'VMCOREINFO';
  const extras = [`${guest.vcpus.length} vCPU${guest.vcpus.length === 1 ? '' : 's'}`, ...(hasVmcoreinfo ? ['VMCOREINFO'] : [])];
  write(`vmdump: wrote ${summary.destination}: ${formatBytes(summary.bytesWritten)} `
    + `(ELF${plan.target.elfClass} ${plan.target.endian}-endian ${machine}, ${plan.layout} layout, `
    + `${plan.segmentCount - 1} PT_LOAD, ${extras.join(', ')}) in ${formatSeconds(summary.elapsedMs)}, `
    + `${formatRate(rate)}, peak RSS ${formatBytes(peakRssBytes)}\n`);
}
