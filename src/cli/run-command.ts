/**
 * `vmdump raw|saved|qmp`: arguments → a source and a request → the library's prepareDump and
 * startDump (exactly what a library caller would call) → rendering of progress and summary.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isatty } from 'node:tty';
import { machineNames } from '../formats/elf/elf-constants.js';
import { VmdumpError, errnoText, hex } from '../guest/errors.js';
import type { GuestModel } from '../guest/guest.js';
import { isSequentialPath, outputDestination, startDump, type OutputOptions } from '../pipeline/run-dump.js';
import type { DumpSummary } from '../pipeline/write-dump.js';
import type { KdumpSummary } from '../pipeline/write-kdump.js';
import type { QmpAddress } from '../sources/qmp/qmp-client.js';
import { prepareDump, type DumpRequest, type PreparedDump } from '../transforms/prepare-dump.js';
import type { VmcoreinfoChoice, VmcoreinfoDiscovery } from '../transforms/discover/vmcoreinfo.js';
import { levelClasses, type DumpLevelDiscovery } from '../transforms/discover/dump-level.js';
import { parseVmcoreinfo, readVmcoreinfoFile } from '../sources/vmcoreinfo-file.js';
import { sha256OfFile } from '../verify/verify-dump.js';
import { formatBytes, formatRate, formatSeconds } from './format.js';
import { showProgress, type ProgressMode } from './progress-view.js';

export type CliSource =
  | { readonly kind: 'raw'; readonly machine: string }
  | { readonly kind: 'saved'; readonly file: string }
  | { readonly kind: 'qmp'; readonly address: QmpAddress; readonly live: boolean };

export interface CliOptions {
  readonly source: CliSource;
  readonly request: DumpRequest;
  readonly output: string | undefined;
  readonly outputOptions: OutputOptions;
  readonly progress: ProgressMode;
  readonly threads?: number;
  /** `--vmcoreinfo`: a file, or `none` (no search of guest RAM). */
  readonly vmcoreinfo?: string;
}

type Write = (text: string) => void;

/** Only the chosen source's modules are loaded (the QMP client, the stream parser: issue 21). */
async function openGuest(source: CliSource, signal: AbortSignal, write: Write): Promise<GuestModel> {
  if (source.kind === 'raw') return (await import('../sources/raw/raw-image.js')).openRawImage(source.machine);
  if (source.kind === 'saved')
    return (await import('../sources/saved-vm/saved-vm-source.js')).openSavedVm(source.file, { signal });
  if (!source.live) return (await import('../sources/live/live-source.js')).openLiveVm(source.address);
  const { openLiveMigration } = await import('../sources/live/live-migration.js');
  const guest = await openLiveMigration(source.address, { signal });
  if (guest.pausedMs !== undefined)
    write(`vmdump: the VM was paused for ${guest.pausedMs.toFixed(0)} ms (live migration switchover) and is running again\n`);
  return guest;
}

export async function runDump(options: CliOptions, signal: AbortSignal, write: Write): Promise<DumpSummary | KdumpSummary> {
  const toStdout = options.output === undefined || options.output === '-';
  if (toStdout && isatty(1)) {
    throw new VmdumpError('usage', 'refusing to write a binary dump to a terminal; use -o FILE or redirect standard output');
  }
  // A missing file fails before a VM is touched; its byte order is known once the guest is open.
  const given = options.vmcoreinfo === undefined || options.vmcoreinfo === 'none' ? undefined : options.vmcoreinfo;
  const vmcoreinfoBytes = given === undefined ? undefined : await readVmcoreinfoFile(given, '--vmcoreinfo');
  const guest = await openGuest(options.source, signal, write);
  let failure: unknown;
  try {
    for (const warning of guest.warnings ?? []) write(`vmdump: warning: ${warning}\n`);
    const vmcoreinfo: VmcoreinfoChoice =
      given !== undefined && vmcoreinfoBytes !== undefined
        ? { note: parseVmcoreinfo(vmcoreinfoBytes, guest.arch.endian, given), label: given }
        : options.vmcoreinfo === 'none'
          ? 'none'
          : 'search';
    const prepared = await prepareDump(guest, { ...options.request, vmcoreinfo }, { signal });
    const { destination, digest } = outputDestination(options.output, prepared, options.outputOptions);
    const run = startDump(prepared, destination, {
      signal,
      ...(options.threads === undefined ? {} : { threads: options.threads }),
    });
    const shown = showProgress(run.progress$, options.progress, write);
    const summary: DumpSummary | KdumpSummary = await run.result.finally(() => shown);
    if (options.outputOptions.checksum === true)
      await writeDigest(options, digest?.digest() ?? (await sha256OfFile(options.output!)), write);
    render(summary, prepared, guest, options.progress, write);
    return summary;
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    // The VM is handed back whatever happened; a failure to do so is reported only if the dump itself succeeded.
    await guest.close().catch((error: unknown) => {
      if (failure === undefined) throw error;
    });
  }
}

/**
 * FILE.sha256 in sha256sum's format (`sha256sum -c` and `vmdump verify` check it), created like
 * the dump (0600, refused if it exists without --force); for standard output, a line on stderr.
 */
async function writeDigest(options: CliOptions, hex: string, write: Write): Promise<void> {
  const output = options.output;
  if (output === undefined || output === '-' || isSequentialPath(output) || !fs.statSync(output).isFile()) {
    write(`vmdump: sha256 ${hex}  ${output === undefined || output === '-' ? '-' : output}\n`);
    return;
  }
  const digestFile = `${output}.sha256`;
  await fs.promises
    .writeFile(digestFile, `${hex}  ${path.basename(output)}\n`, {
      mode: 0o600,
      flag: options.outputOptions.force === true ? 'w' : 'wx',
    })
    .catch((error: NodeJS.ErrnoException) => {
      throw new VmdumpError(
        'output',
        `the dump is complete, but its digest could not be written: ${errnoText(error)}`,
        digestFile,
        { cause: error },
      );
    });
}

function render(
  summary: DumpSummary | KdumpSummary,
  prepared: PreparedDump,
  guest: GuestModel,
  mode: ProgressMode,
  write: Write,
): void {
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  if (mode === 'json') {
    const format = prepared.format === 'kdump' ? { format: `kdump-${prepared.plan.codec}` } : {};
    write(
      `${JSON.stringify({ event: 'done', ...format, ...summary, elapsedMs: Math.round(summary.elapsedMs), peakRssBytes, vmcoreinfo: vmcoreinfoJson(prepared.vmcoreinfo) })}\n`,
    );
    return;
  }
  // Where VMCOREINFO came from decides what the readers can do: said with the summary, not before it (a failed run prints one line).
  if (prepared.plan.layout === 'portable') write(`vmdump: VMCOREINFO: ${vmcoreinfoSource(prepared.vmcoreinfo)}\n`);
  if (prepared.format === 'kdump') {
    renderKdump(summary as KdumpSummary, prepared, peakRssBytes, write);
    return;
  }
  const { plan } = prepared;
  const rate = summary.elapsedMs > 0 ? summary.bytesWritten / (summary.elapsedMs / 1000) : 0;
  const machine = machineNames[plan.target.machine] ?? `machine ${plan.target.machine}`;
  const notes = plan.records.find((r) => r.kind === 'notes');
  const hasVmcoreinfo = notes?.kind === 'notes' && notes.notes.at(-1)?.name === 'VMCOREINFO';
  const extras = [`${guest.vcpus.length} vCPU${guest.vcpus.length === 1 ? '' : 's'}`, ...(hasVmcoreinfo ? ['VMCOREINFO'] : [])];
  write(
    `vmdump: wrote ${summary.destination}: ${formatBytes(summary.bytesWritten)} ` +
      `(ELF${plan.target.elfClass} ${plan.target.endian}-endian ${machine}, ${plan.layout} layout, ` +
      `${plan.segmentCount - 1} PT_LOAD, ${extras.join(', ')}) in ${formatSeconds(summary.elapsedMs)}, ` +
      `${formatRate(rate)}, peak RSS ${formatBytes(peakRssBytes)}\n`,
  );
  if (prepared.dumpLevel !== undefined) write(`vmdump: ${dumpLevelText(prepared.dumpLevel, guest.arch.pageSize)}\n`);
  write(`vmdump: ${prepared.readers}\n`);
}

function renderKdump(
  summary: KdumpSummary,
  prepared: Extract<PreparedDump, { format: 'kdump' }>,
  peakRssBytes: number,
  write: Write,
): void {
  const rate = summary.elapsedMs > 0 ? summary.memoryBytes / (summary.elapsedMs / 1000) : 0;
  write(
    `vmdump: wrote ${summary.destination}: ${formatBytes(summary.bytesWritten)} (kdump-${prepared.plan.codec}, ` +
      `${summary.flattened ? 'flattened' : 'plain'}, ${summary.pages} pages: ${summary.zeroPages} zero, ${summary.compressedPages} compressed, ` +
      `${summary.rawPages} raw; ${summary.threads} thread${summary.threads === 1 ? '' : 's'}) in ${formatSeconds(summary.elapsedMs)}, ` +
      `${formatRate(rate)} of guest RAM, peak RSS ${formatBytes(peakRssBytes)}\n`,
  );
  write(`vmdump: header utsname: ${utsnameSource(prepared)}\n`);
  if (prepared.dumpLevel !== undefined) write(`vmdump: ${dumpLevelText(prepared.dumpLevel, prepared.plan.blockSize)}\n`);
  write(
    summary.flattened
      ? 'vmdump: crash opens it as it is; makedumpfile -R FILE < DUMP turns it into the plain file other readers need\n'
      : `vmdump: opens in ${prepared.readers}\n`,
  );
}

/** What a dump level left out, and what deciding it cost. */
function dumpLevelText(found: DumpLevelDiscovery, pageSize: number): string {
  const head = `dump level ${found.level} (${levelClasses(found.level)})`;
  const counts = { ...found.counts, ...(found.zeroPages === undefined ? {} : { zero: found.zeroPages }) };
  if (Object.keys(counts).length === 0) return `${head}: system RAM only; zero pages share one page`;
  const classes = Object.entries(counts)
    .filter(([, pages]) => pages > 0)
    .map(([kind, pages]) => `${kind} ${formatBytes(pages * pageSize)}`);
  return (
    `${head}: left out ${classes.length === 0 ? 'nothing' : classes.join(', ')}; ` +
    `${formatBytes(found.structPageBytes)} of struct page read in ${formatSeconds(found.elapsedMs)}`
  );
}

/** Where VMCOREINFO came from, and what the search cost, for the user. */
function vmcoreinfoSource(found: VmcoreinfoDiscovery): string {
  switch (found.origin) {
    case 'vm':
      return 'from the VM (vmcoreinfo device, s390x lowcore pointer or machine description)';
    case 'given':
      return `from ${found.label}`;
    case 'memory': {
      const form = found.form === 'note' ? "the kernel's note" : "the kernel's text";
      const copies = `${found.copies} cop${found.copies === 1 ? 'y' : 'ies'} seen`;
      const searched = `${formatBytes(found.bytesScanned)} searched in ${formatSeconds(found.elapsedMs)}`;
      const end = found.stoppedEarly ? ', where a vCPU runs that kernel' : '';
      return `found in guest RAM at ${hex(found.physical)} (${form}; ${copies}; ${searched}${end})`;
    }
    case 'none':
      return `none: ${found.why}`;
  }
}

function vmcoreinfoJson(found: VmcoreinfoDiscovery): Record<string, string | number> {
  if (found.origin !== 'memory') return { origin: found.origin, ...(found.origin === 'none' ? { why: found.why } : {}) };
  return { origin: found.origin, address: hex(found.physical), form: found.form, searchMs: Math.round(found.elapsedMs) };
}

/** Where the kdump header's utsname came from, for the summary. */
function utsnameSource(prepared: Extract<PreparedDump, { format: 'kdump' }>): string {
  const { utsname } = prepared;
  const { release, machine } = prepared.plan.header.utsname;
  if (utsname === undefined) return `machine "${machine}" only (QEMU's layout)`;
  if (utsname.source === 'init_uts_ns') return `the guest kernel's own init_uts_ns (${release}, ${machine})`;
  if (utsname.source === 'vmcoreinfo') return `release ${release} from VMCOREINFO and machine "${machine}" (${utsname.why})`;
  return `machine "${machine}" only (${utsname.why})`;
}
