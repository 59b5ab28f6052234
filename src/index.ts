/**
 * vmdump's public API. A typical use, the same two calls the CLI makes:
 *
 *   const guest = await openSavedVm('vm.state');
 *   const prepared = await prepareDump(guest, { format: 'elf', layout: 'portable' });  // discovery, then the plan
 *   const { destination } = outputDestination('core.elf', prepared);                   // as the CLI picks it
 *   const run = startDump(prepared, destination, { signal });
 *   run.progress$.subscribe(p => console.error(p.bytesWritten, p.bytesPerSecond));
 *   await run.result;
 *   await guest.close();
 *
 * A kdump-compressed dump is `format: 'kdump-zstd'` (or zlib, lzo, snappy): into a file it is
 * written plain at its offsets; into a pipe, gzip or any Writable, in the flattened form.
 *
 * Planning happens before any sink is opened; page bytes flow through Node streams with
 * backpressure; progress and completion are RxJS Observables; cancellation is an AbortSignal.
 */
import type { Writable } from 'node:stream';
import type { GuestModel } from './guest/guest.js';
import { planDump, type DumpOptions } from './transforms/plan/dump-plan.js';
import { writeDump, type DumpRun, type WriteDumpOptions } from './pipeline/write-dump.js';
import { writableSink, type Sink } from './sinks/sink.js';

export type {
  Aarch64CpuState,
  Architecture,
  CpuState,
  ElfClass,
  ElfNote,
  Endian,
  GuestModel,
  MemoryMapping,
  RamRange,
  S390CpuState,
  Vcpu,
  X86CpuState,
  X86DescriptorTable,
  X86Segment,
} from './guest/guest.js';
export { VmdumpError, isVmdumpError, type ErrorPlace, type VmdumpErrorCode } from './guest/errors.js';
export { physAddr, type PhysAddr, type FileOffset, type VirtAddr } from './guest/units.js';
export { GuestMemory, type HolePolicy, type PhysicalMemory } from './guest/guest-memory.js';
export * as elf from './formats/elf/elf-constants.js';
export { x86Architecture } from './targets/x86/architecture.js';
export { planPagingMappings } from './targets/x86/paging.js';
export {
  architectureNamed,
  targetFor,
  type DumpLayout,
  type LinuxLayoutDecision,
  type LinuxMappingFacts,
  type TargetDescription,
  type WalkRules,
} from './targets/index.js';
export { openRawImage } from './sources/raw/raw-image.js';
export { openSavedVm, openSavedVmStream } from './sources/saved-vm/saved-vm-source.js';
export { openLiveVm, type LiveGuest, type LiveOptions } from './sources/live/live-source.js';
export { openLiveMigration, type LiveMigrationGuest } from './sources/live/live-migration.js';
export { QmpClient, type QmpAddress, type QmpEvent } from './sources/qmp/qmp-client.js';
export {
  prepareDump,
  type DumpFormat,
  type DumpRequest,
  type PrepareOptions,
  type PreparedDump,
} from './transforms/prepare-dump.js';
export {
  discoverVmcoreinfo,
  type VmcoreinfoChoice,
  type VmcoreinfoDiscovery,
  type VmcoreinfoResult,
} from './transforms/discover/vmcoreinfo.js';
export { discoverLayout, readersFor, type LayoutDiscovery } from './transforms/discover/discover.js';
export { discoverDumpLevel, type DumpLevelDiscovery, type DumpLevelOptions } from './transforms/discover/dump-level.js';
export type { ExcludedClass, ExcludedCounts } from './transforms/discover/page-classes.js';
export { DumpLevelBit, MAX_DUMP_LEVEL } from './formats/linux-mm.js';
export { planDump, type DumpOptions, type DumpPlan, type DumpRecord } from './transforms/plan/dump-plan.js';
export type { MemoryFilter } from './transforms/plan/memory-mapping.js';
export { planKdump, type KdumpOptions, type KdumpPlan, type PfnRun } from './transforms/plan/kdump-plan.js';
export type { KdumpCodec } from './formats/kdump/kdump-format.js';
export { readDumpRecords, type PageChunk, type SourceRecord } from './transforms/encode/record-stream.js';
export {
  startDump,
  outputDestination,
  type AnyDumpRun,
  type OutputDestination,
  type OutputOptions,
} from './pipeline/run-dump.js';
export type { Destination } from './pipeline/write-records.js';
export { writeDump, type DumpRun, type DumpSummary, type WriteDumpOptions } from './pipeline/write-dump.js';
export {
  writeKdump,
  type KdumpDestination,
  type KdumpRun,
  type KdumpSummary,
  type WriteKdumpOptions,
} from './pipeline/write-kdump.js';
export { withRate, type DumpPhase, type DumpProgress, type RatedProgress } from './pipeline/progress.js';
export { writableSink, type OpenPlacedSink, type OpenSink, type PlacedSink, type Sink } from './sinks/sink.js';
export { fdSink, stdoutSink } from './sinks/fd-sink.js';
export { fileSink, placedFileSink, type FileSinkOptions } from './sinks/file-sink.js';
export type { FileSystem } from './sinks/fs-api.js';
export { gzipSink, type GzipOptions } from './sinks/gzip-sink.js';
export { verifyDumpFile, type VerifyReport } from './verify/verify-dump.js';

/** Plans (physical or given mappings, no discovery) and writes an ELF dump of `guest` to a sink or any Writable. */
export function dumpGuest(
  guest: GuestModel,
  destination: Sink | Writable,
  options: DumpOptions & WriteDumpOptions = {},
): DumpRun {
  const sink = isWritable(destination) ? writableSink(destination) : destination;
  return writeDump(planDump(guest, options), sink, options);
}

function isWritable(destination: Sink | Writable): destination is Writable {
  return typeof (destination as Writable).write === 'function';
}
