/**
 * vmdump's public API. A typical use:
 *
 *   const guest = await openRawImage('machine.json');
 *   const run = dumpGuest(guest, fileSink('core.elf'), { layout: 'portable', signal });
 *   run.progress$.pipe(withRate()).subscribe(p => console.error(p.bytesWritten, p.bytesPerSecond));
 *   await run.result;
 *   await guest.close();
 *
 * A kdump-compressed dump (makedumpfile's format, what crash and makedumpfile read):
 *
 *   const run = writeKdump(planKdump(guest, { codec: 'zstd' }), { kind: 'plain', sink: placedFileSink('core.kdump') });
 *   // or, to any Writable or pipe, the flattened form: { kind: 'flattened', sink: writableSink(socket) }
 *
 * Planning is synchronous and happens before any sink is opened; page bytes flow through
 * Node streams with backpressure; progress and completion are RxJS Observables.
 */
import type { Writable } from 'node:stream';
import type { GuestModel } from './model/guest.js';
import { planDump, type DumpOptions } from './transforms/dump-plan.js';
import { writeDump, type DumpRun, type WriteDumpOptions } from './pipeline/write-dump.js';
import { writableSink, type Sink } from './sinks/sink.js';

export type {
  Architecture, CpuState, ElfClass, ElfNote, Endian, GuestModel, RamRange, Vcpu, X86CpuState, X86DescriptorTable, X86Segment,
} from './model/guest.js';
export { x86Architecture } from './model/guest.js';
export { VmdumpError, isVmdumpError, type VmdumpErrorCode } from './model/errors.js';
export { physAddr, type PhysAddr, type FileOffset, type VirtAddr } from './model/units.js';
export * as elf from './model/elf-constants.js';
export { openRawImage } from './sources/raw-image.js';
export { openSavedVm } from './sources/saved-vm/saved-vm-source.js';
export { openLiveVm, type LiveGuest, type LiveOptions } from './sources/live/live-source.js';
export { openLiveMigration, type LiveMigrationGuest } from './sources/live/live-migration.js';
export { openSavedVmStream } from './sources/saved-vm/saved-vm-source.js';
export { QmpClient, type QmpAddress, type QmpEvent } from './qmp/qmp-client.js';
export { readDumpRecords, type PageChunk, type SourceRecord } from './sources/record-source.js';
export { planDump, type DumpOptions, type DumpPlan, type DumpRecord, type LayoutKind } from './transforms/dump-plan.js';
export type { MemoryFilter, MemoryMapping } from './transforms/memory-mapping.js';
export { encodeDumpRecords } from './transforms/encode-records.js';
export { writeDump, type DumpRun, type DumpSummary, type WriteDumpOptions } from './pipeline/write-dump.js';
export { withRate, type DumpPhase, type DumpProgress, type RatedProgress } from './pipeline/progress.js';
export { discoverLinuxLayout, readersFor, type LinuxLayoutDecision } from './pipeline/linux-layout.js';
export type { LinuxMappingFacts } from './transforms/memory-mapping.js';
export { planPagingMappings, type PhysicalMemory, type WalkRules } from './transforms/x86-paging.js';
export { PhysicalReader } from './sources/physical-reader.js';
export { writableSink, type OpenSink, type Sink } from './sinks/sink.js';
export { fdSink, stdoutSink } from './sinks/fd-sink.js';
export { fileSink, type FileSinkOptions } from './sinks/file-sink.js';
export type { FileSystem } from './sinks/fs-api.js';
export { gzipSink, type GzipOptions } from './sinks/gzip-sink.js';
export { placedFileSink } from './sinks/file-sink.js';
export type { OpenPlacedSink, PlacedSink } from './sinks/sink.js';
export { planKdump, type KdumpOptions, type KdumpPlan, type PfnRun } from './transforms/kdump-plan.js';
export type { KdumpCodec } from './transforms/kdump-format.js';
export { writeKdump, type KdumpDestination, type KdumpRun, type KdumpSummary, type WriteKdumpOptions } from './pipeline/write-kdump.js';

/** Plans and writes a dump of `guest` to a sink or any Writable. Throws synchronously if the plan fails. */
export function dumpGuest(guest: GuestModel, destination: Sink | Writable, options: DumpOptions & WriteDumpOptions = {}): DumpRun {
  const sink = isWritable(destination) ? writableSink(destination) : destination;
  return writeDump(planDump(guest, options), sink, options);
}

function isWritable(destination: Sink | Writable): destination is Writable {
  return typeof (destination as Writable).write === 'function';
}
