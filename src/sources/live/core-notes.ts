/**
 * The notes of a small ELF core QEMU wrote (the 4 KiB `dump-guest-memory` of qemu-live-source.md
 * §2): vCPU state recovered from the QEMU CPU-state notes (elf-vmcore.md §7.5), which carry every
 * field the notes need, and the guest's VMCOREINFO note. EFER is not in the notes; only its LMA
 * bit matters to vmdump, and the ELF machine says it.
 */
import { EM_X86_64 } from '../../model/elf-constants.js';
import { VmdumpError } from '../../model/errors.js';
import { EFER_LMA, EFER_LME, type ElfNote, type Vcpu, type X86Segment } from '../../model/guest.js';

export interface CoreNotes {
  readonly longMode: boolean;
  readonly vcpus: readonly Vcpu[];
  readonly vmcoreinfo: ElfNote | undefined;
}


function notesOf(core: Buffer): { name: string; type: number; desc: Buffer }[] {
  if (core.length < 64 || core.readUInt32BE(0) !== 0x7f454c46 || core[5] !== 1) throw new VmdumpError('bad-input', 'QEMU wrote no little-endian ELF core for the notes');
  const malformed = (what: string): never => { throw new VmdumpError('bad-input', `QEMU's notes dump is malformed: ${what}`); };
  const is64 = core[4] === 2;
  const entry = is64 ? 56 : 32;
  const phoff = Number(is64 ? core.readBigUInt64LE(32) : BigInt(core.readUInt32LE(28)));
  const phnum = core.readUInt16LE(is64 ? 56 : 44);
  if (phoff + phnum * entry > core.length) malformed(`${phnum} program headers at ${phoff} run past its ${core.length} bytes`);
  const notes: { name: string; type: number; desc: Buffer }[] = [];
  for (let i = 0; i < phnum; i += 1) {
    const at = phoff + i * entry;
    if (core.readUInt32LE(at) !== 4) continue;
    const offset = Number(is64 ? core.readBigUInt64LE(at + 8) : BigInt(core.readUInt32LE(at + 4)));
    const size = Number(is64 ? core.readBigUInt64LE(at + 32) : BigInt(core.readUInt32LE(at + 16)));
    if (offset + size > core.length) malformed(`PT_NOTE [${offset}, +${size}) runs past its ${core.length} bytes`);
    for (let p = offset; p < offset + size;) {
      if (p + 12 > offset + size) malformed(`a note header at ${p} runs past PT_NOTE`);
      const namesz = core.readUInt32LE(p);
      const descsz = core.readUInt32LE(p + 4);
      const descAt = p + 12 + Math.ceil(namesz / 4) * 4;
      const next = descAt + Math.ceil(descsz / 4) * 4;
      if (next > offset + size) malformed(`the note at ${p} (n_namesz ${namesz}, n_descsz ${descsz}) runs past PT_NOTE`);
      const name = core.toString('latin1', p + 12, p + 12 + Math.max(0, namesz - 1));
      notes.push({ name, type: core.readUInt32LE(p + 8), desc: core.subarray(descAt, descAt + descsz) });
      p = next;
    }
  }
  return notes;
}

function segment(desc: Buffer, at: number): X86Segment {
  return { selector: desc.readUInt32LE(at), limit: desc.readUInt32LE(at + 4), flags: desc.readUInt32LE(at + 8), base: desc.readBigUInt64LE(at + 16) };
}

export function parseCoreNotes(core: Buffer): CoreNotes {
  const notes = notesOf(core);
  const longMode = core.readUInt16LE(18) === EM_X86_64;
  const vcpus = notes.filter((n) => n.name === 'QEMU').map((note, index): Vcpu => {
    const d = note.desc;
    if (d.length < 440) throw new VmdumpError('bad-input', `QEMU CPU-state note of ${d.length} bytes; vmdump reads version 1 with 440`);
    const u64 = (at: number): bigint => d.readBigUInt64LE(at);
    const [cs, ds, es, fs, gs, ss, ldt, tr, gdt, idt] = Array.from({ length: 10 }, (_, k) => segment(d, 152 + 24 * k)) as X86Segment[];
    return {
      index,
      state: {
        kind: 'x86',
        rax: u64(8), rbx: u64(16), rcx: u64(24), rdx: u64(32), rsi: u64(40), rdi: u64(48), rsp: u64(56), rbp: u64(64),
        r8: u64(72), r9: u64(80), r10: u64(88), r11: u64(96), r12: u64(104), r13: u64(112), r14: u64(120), r15: u64(128),
        rip: u64(136), rflags: u64(144),
        cs: cs!, ds: ds!, es: es!, fs: fs!, gs: gs!, ss: ss!, ldt: ldt!, tr: tr!,
        gdt: { limit: gdt!.limit, base: gdt!.base }, idt: { limit: idt!.limit, base: idt!.base },
        cr0: u64(392), cr1: u64(400), cr2: u64(408), cr3: u64(416), cr4: u64(424),
        efer: longMode ? EFER_LME | EFER_LMA : 0n, kernelGsBase: u64(432),
      },
    };
  });
  const info = notes.find((n) => n.name === 'VMCOREINFO');
  return { longMode, vcpus, vmcoreinfo: info === undefined ? undefined : { name: info.name, type: info.type, desc: Buffer.from(info.desc) } };
}
