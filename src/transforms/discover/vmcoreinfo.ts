/**
 * Where the dump's VMCOREINFO comes from (docs/vmcoreinfo-discovery.md): the VM (the vmcoreinfo
 * device, s390x's lowcore pointer, a machine description), a copy the caller gives, or a search
 * of guest RAM. A copy found in RAM is taken only when the kernel it describes is really there:
 * its page tables map _stext where it says, and its init_uts_ns reads as Linux of the same
 * release. Copies of the same text are one; two different kernels that both check out are told
 * apart by the vCPUs (x86: which one CR3 runs), or the dump is refused rather than guessed.
 */
import { VmcoreinfoText } from '../../formats/vmcoreinfo.js';
import { VmdumpError, hex } from '../../guest/errors.js';
import type { ElfNote, GuestModel } from '../../guest/guest.js';
import { targetFor, type DumpLayout, type LinuxLayoutDecision } from '../../targets/index.js';
import { discoverUtsname } from './utsname.js';
import { scanForVmcoreinfo, type VmcoreinfoCopy } from './vmcoreinfo-scan.js';

/** `search` (default): the VM's own, else a search of RAM; `none`: the VM's own only; a note: this one. */
export type VmcoreinfoChoice = 'search' | 'none' | { readonly note: ElfNote; readonly label: string };

export type VmcoreinfoDiscovery =
  | { readonly origin: 'vm' }
  | { readonly origin: 'given'; readonly label: string }
  | {
      readonly origin: 'memory';
      readonly physical: bigint;
      readonly form: 'note' | 'text';
      /** Copies found, whether the search stopped at the running kernel's, and what it cost. */
      readonly copies: number;
      readonly stoppedEarly: boolean;
      readonly bytesScanned: number;
      readonly elapsedMs: number;
    }
  | { readonly origin: 'none'; readonly why: string };

export interface VmcoreinfoResult {
  /** The guest as later steps see it: with the chosen VMCOREINFO. */
  readonly guest: GuestModel;
  readonly discovery: VmcoreinfoDiscovery;
}

export async function discoverVmcoreinfo(
  guest: GuestModel,
  choice: VmcoreinfoChoice,
  layout: DumpLayout,
  signal?: AbortSignal,
): Promise<VmcoreinfoResult> {
  if (typeof choice === 'object') {
    if (layout === 'qemu')
      throw new VmdumpError('usage', '--vmcoreinfo FILE goes with the default layout; --layout qemu writes what QEMU would');
    return { guest: withVmcoreinfo(guest, choice.note), discovery: { origin: 'given', label: choice.label } };
  }
  if (guest.vmcoreinfo !== undefined) return { guest, discovery: { origin: 'vm' } };
  // QEMU writes no VMCOREINFO note when the VM gave it none (docs/elf-vmcore.md §7.6).
  if (layout === 'qemu') return { guest, discovery: { origin: 'none', why: "QEMU's layout" } };
  if (choice === 'none') return { guest, discovery: { origin: 'none', why: 'the search is off (--vmcoreinfo none)' } };
  return searchGuestRam(guest, signal);
}

async function searchGuestRam(guest: GuestModel, signal: AbortSignal | undefined): Promise<VmcoreinfoResult> {
  const started = performance.now();
  const target = targetFor(guest.arch);
  const verdicts = new Map<string, Promise<Verdict>>();
  // Where the vCPUs can say which kernel runs, the first copy of that kernel ends the search.
  const settle = async (found: readonly VmcoreinfoCopy[]): Promise<boolean> =>
    target.kernelOnVcpus !== undefined &&
    (await running(guest, kernelsOf(await checkTexts(guest, found, verdicts)))).some((k) => k.runs);
  const scan = await scanForVmcoreinfo(guest.ram, guest.arch.endian, settle, signal);
  const checked = await checkTexts(guest, scan.copies, verdicts);
  const ran = await running(guest, kernelsOf(checked));
  const kernels = ran.some((k) => k.runs) ? ran.filter((k) => k.runs) : ran;
  const cost = {
    copies: scan.copies.length + scan.dropped,
    stoppedEarly: scan.stoppedEarly,
    bytesScanned: scan.bytesRead,
    elapsedMs: performance.now() - started,
  };
  if (kernels.length === 1) {
    const copy = kernels[0]!.copy;
    return {
      guest: withVmcoreinfo(guest, copy.note),
      discovery: { origin: 'memory', physical: copy.physical, form: copy.form, ...cost },
    };
  }
  if (kernels.length > 1) {
    const list = kernels.map(({ copy }) => `${hex(copy.physical)} (${release(copy.note)})`).join(', ');
    throw new VmdumpError(
      'bad-input',
      `guest RAM holds VMCOREINFO of ${kernels.length} different kernels that all check out, at ${list}, and no vCPU says which one runs; ` +
        'give the right one with --vmcoreinfo FILE, or dump without it with --vmcoreinfo none',
    );
  }
  const why =
    scan.copies.length === 0
      ? 'none in guest RAM (a kernel without CONFIG_CRASH_CORE, or not Linux)'
      : `${cost.copies} cop${cost.copies === 1 ? 'y' : 'ies'} in guest RAM, none of a kernel that is there: ` +
        checked.map(({ copy, verdict }) => `${hex(copy.physical)}: ${verdict.ok ? 'ok' : verdict.why}`).join('; ');
  return { guest, discovery: { origin: 'none', why } };
}

interface CheckedCopy {
  readonly copy: VmcoreinfoCopy;
  readonly text: string;
  readonly verdict: Verdict;
}

/** Each distinct text is checked once per search. */
async function checkTexts(
  guest: GuestModel,
  copies: readonly VmcoreinfoCopy[],
  verdicts: Map<string, Promise<Verdict>>,
): Promise<CheckedCopy[]> {
  return Promise.all(
    copies.map(async (copy) => {
      const text = Buffer.from(copy.note.desc).toString('latin1');
      if (!verdicts.has(text)) verdicts.set(text, checkCopy(guest, copy.note));
      return { copy, text, verdict: await verdicts.get(text)! };
    }),
  );
}

/**
 * The valid copies, one per kernel (same release, same layout). A kernel's own pair is one text as
 * both note and page: that copy is preferred over others of the same kernel (a file in the page
 * cache, a superset written by makedumpfile -g), then a note, then the first found.
 */
function kernelsOf(checked: readonly CheckedCopy[]): CheckedCopy[] {
  const groups = new Map<string, CheckedCopy[]>();
  for (const entry of checked) {
    if (!entry.verdict.ok) continue;
    const key = `${release(entry.copy.note)} ${JSON.stringify(entry.verdict.layout, (_, v: unknown) => (typeof v === 'bigint' ? v.toString(16) : v))}`;
    groups.set(key, [...(groups.get(key) ?? []), entry]);
  }
  return [...groups.values()].map((group) => {
    const paired = (entry: CheckedCopy) =>
      group.some((other) => other.text === entry.text && other.copy.form !== entry.copy.form);
    const notes = group.filter((entry) => entry.copy.form === 'note');
    return notes.find(paired) ?? notes[0] ?? group[0]!;
  });
}

type Verdict = { readonly ok: true; readonly layout: LinuxLayoutDecision } | { readonly ok: false; readonly why: string };

/** Keys the kernel writes: SYMBOL(x), OFFSET(a.b), NUMBER(X), BUILD-ID, PAGESIZE … */
const KEY = /^[A-Za-z0-9_().-]+$/;

/** Whether `note` is well-formed VMCOREINFO whose kernel really is in this RAM. */
async function checkCopy(guest: GuestModel, note: ElfNote): Promise<Verdict> {
  const text = Buffer.from(note.desc).toString('latin1');
  const lines = text.split('\n').filter((line) => line !== '');
  const malformed = lines.find((line) => !KEY.test(line.slice(0, line.indexOf('='))) || !/^[\x20-\x7e]*$/.test(line));
  if (malformed !== undefined) return { ok: false, why: `not KEY=value text ("${malformed.slice(0, 40)}")` };
  const info = new VmcoreinfoText(text);
  const pageSize = info.decimal('PAGESIZE');
  if (info.string('OSRELEASE') === undefined || pageSize === undefined || pageSize < 4096n || (pageSize & (pageSize - 1n)) !== 0n)
    return { ok: false, why: 'no OSRELEASE or PAGESIZE' };
  const candidate = withVmcoreinfo(guest, note);
  const layout = await targetFor(guest.arch).linuxLayout(candidate);
  if (layout.kind === 'unavailable') return { ok: false, why: layout.reason };
  const utsname = await discoverUtsname(candidate, layout, '');
  if (utsname.source !== 'init_uts_ns') return { ok: false, why: utsname.why };
  return { ok: true, layout };
}

/** Each kernel, and whether a vCPU runs it (false where the architecture cannot tell). */
async function running(guest: GuestModel, kernels: readonly CheckedCopy[]): Promise<(CheckedCopy & { runs: boolean })[]> {
  const target = targetFor(guest.arch);
  return Promise.all(
    kernels.map(async (kernel) => ({
      ...kernel,
      runs:
        target.kernelOnVcpus !== undefined && kernel.verdict.ok && kernel.verdict.layout.kind === 'mapped'
          ? await target.kernelOnVcpus(guest, kernel.verdict.layout.facts)
          : false,
    })),
  );
}

function release(note: ElfNote): string {
  return VmcoreinfoText.of(note.desc).string('OSRELEASE') ?? '?';
}

/**
 * The same guest with another VMCOREINFO: every other field and close() fall through to the
 * source's model (a copy field by field had to be kept in step with GuestModel, and once was not).
 */
function withVmcoreinfo(guest: GuestModel, note: ElfNote): GuestModel {
  return Object.create(guest, { vmcoreinfo: { value: note, enumerable: true } }) as GuestModel;
}
