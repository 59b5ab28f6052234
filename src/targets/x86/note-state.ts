/**
 * QEMU's x86 notes → vCPU state, from the QEMU CPU-state notes (docs/elf-vmcore.md §7.5), which
 * carry every field the notes need. EFER is not in them; only its LMA bit matters to vmdump, and
 * the ELF machine says it.
 */
import { EM_X86_64 } from '../../formats/elf/elf-constants.js';
import { EndianReader, type CoreNotes } from '../../formats/elf/elf-decode.js';
import { VmdumpError } from '../../guest/errors.js';
import type { Vcpu, X86Segment } from '../../guest/guest.js';
import { EFER_LMA, EFER_LME } from './architecture.js';
import { QEMU_CPU_STATE_SIZE } from './notes.js';

function segment(d: EndianReader, at: number): X86Segment {
  return { selector: d.u32(at), limit: d.u32(at + 4), flags: d.u32(at + 8), base: d.u64(at + 16) };
}

export function x86VcpusFromNotes(core: CoreNotes): Vcpu[] {
  const longMode = core.machine === EM_X86_64;
  return core.notes
    .filter((n) => n.name === 'QEMU')
    .map((note, index): Vcpu => {
      if (note.desc.length < QEMU_CPU_STATE_SIZE) {
        throw new VmdumpError(
          'bad-input',
          `QEMU CPU-state note of ${note.desc.length} bytes; vmdump reads version 1 with ${QEMU_CPU_STATE_SIZE}`,
        );
      }
      const d = new EndianReader(note.desc, 'little');
      const u64 = (at: number): bigint => d.u64(at);
      const [cs, ds, es, fs, gs, ss, ldt, tr, gdt, idt] = Array.from<unknown, X86Segment>({ length: 10 }, (_, k) =>
        segment(d, 152 + 24 * k),
      );
      return {
        index,
        state: {
          kind: 'x86',
          rax: u64(8),
          rbx: u64(16),
          rcx: u64(24),
          rdx: u64(32),
          rsi: u64(40),
          rdi: u64(48),
          rsp: u64(56),
          rbp: u64(64),
          r8: u64(72),
          r9: u64(80),
          r10: u64(88),
          r11: u64(96),
          r12: u64(104),
          r13: u64(112),
          r14: u64(120),
          r15: u64(128),
          rip: u64(136),
          rflags: u64(144),
          cs: cs!,
          ds: ds!,
          es: es!,
          fs: fs!,
          gs: gs!,
          ss: ss!,
          ldt: ldt!,
          tr: tr!,
          gdt: { limit: gdt!.limit, base: gdt!.base },
          idt: { limit: idt!.limit, base: idt!.base },
          cr0: u64(392),
          cr1: u64(400),
          cr2: u64(408),
          cr3: u64(416),
          cr4: u64(424),
          efer: longMode ? EFER_LME | EFER_LMA : 0n,
          kernelGsBase: u64(432),
        },
      };
    });
}
