/**
 * The raw-image source: guest RAM in plain files (a QEMU memory-backend-file, a pmemsave
 * output, a Firecracker or Cloud Hypervisor memory file) described by a small JSON file
 * (schema in README "Machine description"). Files are opened and sized up front, so a range
 * past a file's end is reported before any output exists; bytes are read only when pulled.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { architectureNamed, architectureNames } from '../../targets/index.js';
import { VmdumpError, errnoText, hex } from '../../guest/errors.js';
import { checkRamRanges, type Architecture, type ElfNote, type GuestModel, type RamRange, type Vcpu } from '../../guest/guest.js';
import { physAddr, type PhysAddr } from '../../guest/units.js';
import { FieldReader, type Json, type JsonObject } from './description-fields.js';
import { parseVmcoreinfo, readVmcoreinfoFile } from '../vmcoreinfo-file.js';
import { parseX86Registers } from './x86-registers.js';
import { readExactly } from '../../guest/read-exactly.js';

interface RangeSpec {
  start: PhysAddr;
  size: bigint;
  file: string;
  fileOffset: bigint;
  field: string;
}

export async function openRawImage(descriptionPath: string): Promise<GuestModel> {
  const fields = new FieldReader(descriptionPath);
  const root = fields.object(await readJson(descriptionPath), '(top level)');
  fields.onlyKeys(root, ['arch', 'ram', 'vcpus', 'vmcoreinfo'], '');
  const baseDir = path.dirname(descriptionPath);
  const archName = fields.string(root.arch, 'arch');
  if (architectureNamed(archName) === undefined)
    fields.fail('arch', `unknown architecture "${archName}" (known: ${architectureNames.join(', ')})`);
  const specs = fields.array(root.ram, 'ram').map((entry, i) => rangeSpec(fields, entry, `ram[${i}]`, baseDir));
  if (specs.length === 0) fields.fail('ram', 'at least one range is needed');
  specs.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const files = new OpenFiles();
  try {
    const ram = await Promise.all(specs.map((spec) => openRange(spec, files)));
    checkRamRanges(ram);
    const vcpus = parseVcpus(fields, root.vcpus, archName);
    const arch: Architecture = architectureNamed(archName, ram)!;
    const vmcoreinfo =
      root.vmcoreinfo === undefined
        ? undefined
        : await readVmcoreinfo(path.resolve(baseDir, fields.string(root.vmcoreinfo, 'vmcoreinfo')), arch);
    return { arch, vcpus, ram, ...(vmcoreinfo === undefined ? {} : { vmcoreinfo }), close: () => files.closeAll() };
  } catch (error) {
    await files.closeAll();
    throw error;
  }
}

async function readJson(file: string): Promise<Json> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (error) {
    throw new VmdumpError('bad-input', `cannot read the machine description ${file}: ${errnoText(error)}`, undefined, {
      cause: error,
    });
  }
  try {
    return JSON.parse(text) as Json;
  } catch (error) {
    throw new VmdumpError('bad-input', `the machine description is not valid JSON: ${(error as Error).message}`, file, {
      cause: error,
    });
  }
}

function rangeSpec(fields: FieldReader, entry: Json, field: string, baseDir: string): RangeSpec {
  const object: JsonObject = fields.object(entry, field);
  fields.onlyKeys(object, ['address', 'size', 'file', 'fileOffset'], field);
  const start = fields.integer(object.address, `${field}.address`);
  const size = fields.integer(object.size, `${field}.size`);
  if (size === 0n) fields.fail(`${field}.size`, 'must be greater than 0');
  if (start + size - 1n > 0xffff_ffff_ffff_ffffn)
    fields.fail(`${field}.size`, `${hex(start)} + ${hex(size)} passes the end of the 64-bit address space`);
  return {
    start: physAddr(start),
    size,
    field,
    file: path.resolve(baseDir, fields.string(object.file, `${field}.file`)),
    fileOffset: object.fileOffset === undefined ? 0n : fields.integer(object.fileOffset, `${field}.fileOffset`),
  };
}

function parseVcpus(fields: FieldReader, value: Json | undefined, archName: string): Vcpu[] {
  if (value === undefined) return [];
  const entries = fields.array(value, 'vcpus');
  // A description holds x86 registers only (README "Machine description").
  if (entries.length > 0 && archName !== 'x86_64' && archName !== 'i386') {
    fields.fail('vcpus', `register notes for ${archName} are not supported yet; leave "vcpus" out`);
  }
  return entries.map((entry, index) => ({
    index,
    state: parseX86Registers(fields, entry, `vcpus[${index}]`, archName === 'x86_64'),
  }));
}

/** One descriptor per distinct file, shared by the ranges that read it. */
class OpenFiles {
  private readonly handles = new Map<string, Promise<{ fd: number; stat: fs.Stats }>>();

  open(file: string): Promise<{ fd: number; stat: fs.Stats }> {
    let handle = this.handles.get(file);
    if (handle === undefined) {
      // A plain descriptor, not a FileHandle: the GC closes a FileHandle nobody references.
      handle = new Promise((resolve, reject) =>
        fs.open(file, 'r', (error, fd) => (error ? reject(error) : resolve({ fd, stat: fs.fstatSync(fd) }))),
      );
      this.handles.set(file, handle);
    }
    return handle;
  }

  async closeAll(): Promise<void> {
    const all = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(
      all.map((h) =>
        h.then(
          ({ fd }) => fs.closeSync(fd),
          () => undefined,
        ),
      ),
    );
  }
}

async function openRange(spec: RangeSpec, files: OpenFiles): Promise<RamRange> {
  const label = `${spec.field} (${path.basename(spec.file)} at ${hex(spec.fileOffset)})`;
  const { fd, stat } = await files.open(spec.file).catch((error: Error) => {
    throw new VmdumpError('bad-input', `cannot open ${spec.file}: ${errnoText(error)}`, spec.field, { cause: error });
  });
  // Block and character devices report size 0; their short reads surface while streaming.
  if (stat.isFile() && BigInt(stat.size) < spec.fileOffset + spec.size) {
    throw new VmdumpError(
      'bad-input',
      `range ends at file offset ${hex(spec.fileOffset + spec.size)} but ${spec.file} has only ${hex(stat.size)} bytes`,
      spec.field,
    );
  }
  return {
    start: spec.start,
    size: spec.size,
    label,
    read: (offset, into) => readExactly(fd, spec.fileOffset + offset, into, label),
  };
}

async function readVmcoreinfo(file: string, arch: Architecture): Promise<ElfNote> {
  return parseVmcoreinfo(await readVmcoreinfoFile(file, 'vmcoreinfo'), arch.endian, file);
}
