/**
 * vCPU register state from a machine description (README "Machine description"). Every
 * register is optional and defaults to 0, except rflags (0x2: bit 1 always reads 1) and, on
 * x86_64, EFER (LME|LMA: the machine is x86_64 because the vCPU is in long mode).
 */
import type { X86CpuState, X86DescriptorTable, X86Segment } from '../../guest/guest.js';
import { EFER_LMA, EFER_LME } from '../../targets/x86/architecture.js';
import { U32_MAX } from '../../guest/units.js';
import type { FieldReader, Json, JsonObject } from './description-fields.js';

const gprs = [
  'rax',
  'rbx',
  'rcx',
  'rdx',
  'rsi',
  'rdi',
  'rsp',
  'rbp',
  'r8',
  'r9',
  'r10',
  'r11',
  'r12',
  'r13',
  'r14',
  'r15',
  'rip',
  'rflags',
  'cr0',
  'cr1',
  'cr2',
  'cr3',
  'cr4',
  'efer',
  'kernelGsBase',
] as const;
const segments = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'ldt', 'tr'] as const;
const tables = ['gdt', 'idt'] as const;
/** 32-bit names are accepted for i386 guests and mean the same slots. */
const aliases: Readonly<Record<string, (typeof gprs)[number]>> = {
  eax: 'rax',
  ebx: 'rbx',
  ecx: 'rcx',
  edx: 'rdx',
  esi: 'rsi',
  edi: 'rdi',
  esp: 'rsp',
  ebp: 'rbp',
  eip: 'rip',
  eflags: 'rflags',
};
export const x86RegisterNames: readonly string[] = [...gprs, ...Object.keys(aliases), ...segments, ...tables];

function segment(fields: FieldReader, value: Json | undefined, field: string): X86Segment {
  if (value === undefined) return { selector: 0, limit: 0, flags: 0, base: 0n };
  const object = fields.object(value, field);
  fields.onlyKeys(object, ['selector', 'limit', 'flags', 'base'], field);
  const u32 = (key: string): number =>
    Number(object[key] === undefined ? 0n : fields.integer(object[key], `${field}.${key}`, U32_MAX));
  return {
    selector: Number(object.selector === undefined ? 0n : fields.integer(object.selector, `${field}.selector`, 0xffffn)),
    limit: u32('limit'),
    flags: u32('flags'),
    base: object.base === undefined ? 0n : fields.integer(object.base, `${field}.base`),
  };
}

function table(fields: FieldReader, value: Json | undefined, field: string): X86DescriptorTable {
  if (value === undefined) return { limit: 0, base: 0n };
  const object = fields.object(value, field);
  fields.onlyKeys(object, ['limit', 'base'], field);
  return {
    limit: Number(object.limit === undefined ? 0n : fields.integer(object.limit, `${field}.limit`, U32_MAX)),
    base: object.base === undefined ? 0n : fields.integer(object.base, `${field}.base`),
  };
}

export function parseX86Registers(fields: FieldReader, value: Json | undefined, field: string, longMode: boolean): X86CpuState {
  const object: JsonObject = fields.object(value, field);
  fields.onlyKeys(object, x86RegisterNames, field);
  const width = longMode ? undefined : U32_MAX;
  const register = (name: (typeof gprs)[number]): bigint | undefined => {
    const alias = Object.keys(aliases).find((a) => aliases[a] === name && object[a] !== undefined);
    const key = object[name] !== undefined ? name : alias;
    if (key === undefined) return undefined;
    return fields.integer(object[key], `${field}.${key}`, name === 'efer' || name.startsWith('cr') ? undefined : width);
  };
  const efer = register('efer') ?? (longMode ? EFER_LME | EFER_LMA : 0n);
  if (((efer & EFER_LMA) !== 0n) !== longMode) {
    fields.fail(
      `${field}.efer`,
      longMode
        ? 'arch is x86_64 but EFER.LMA (bit 10) is clear: a vCPU not in long mode is an i386 guest'
        : 'arch is i386 but EFER.LMA (bit 10) is set: a vCPU in long mode is an x86_64 guest',
    );
  }
  const gpr = Object.fromEntries(gprs.map((name) => [name, register(name) ?? 0n])) as Record<(typeof gprs)[number], bigint>;
  return {
    kind: 'x86',
    ...gpr,
    efer,
    rflags: register('rflags') ?? 0x2n,
    cs: segment(fields, object.cs, `${field}.cs`),
    ds: segment(fields, object.ds, `${field}.ds`),
    es: segment(fields, object.es, `${field}.es`),
    fs: segment(fields, object.fs, `${field}.fs`),
    gs: segment(fields, object.gs, `${field}.gs`),
    ss: segment(fields, object.ss, `${field}.ss`),
    ldt: segment(fields, object.ldt, `${field}.ldt`),
    tr: segment(fields, object.tr, `${field}.tr`),
    gdt: table(fields, object.gdt, `${field}.gdt`),
    idt: table(fields, object.idt, `${field}.idt`),
  };
}
