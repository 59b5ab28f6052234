/**
 * Writes the bundled example machine into a folder: 640 KiB of low RAM and 7 MiB above
 * 1 MiB (a q35-like hole at 0xA0000), every 4 KiB page stamped with its guest-physical
 * address so a reader can check what it sees; two x86_64 vCPUs; a VMCOREINFO text.
 *
 *   node dist/scripts/make-tiny-machine.js DIR
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const TINY_LOW_RAM = 0xa0000;
export const TINY_HIGH_START = 0x100000;
export const TINY_HIGH_RAM = 7 << 20;

/** The page at guest-physical `address` starts with this text, then repeats its address as u64 LE. */
export function stampPage(page: Buffer, address: number): void {
  page.fill(0);
  page.write(`vmdump example page at guest-physical 0x${address.toString(16).padStart(8, '0')}\n`, 0, 'latin1');
  for (let at = 64; at + 8 <= page.length; at += 8) page.writeBigUInt64LE(BigInt(address + at), at);
}

function writeRam(file: string, start: number, size: number): void {
  const page = Buffer.alloc(4096);
  const fd = fs.openSync(file, 'w');
  try {
    for (let at = 0; at < size; at += page.length) {
      stampPage(page, start + at);
      fs.writeSync(fd, page);
    }
  } finally {
    fs.closeSync(fd);
  }
}

export function makeTinyMachine(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  writeRam(path.join(dir, 'low.ram'), 0, TINY_LOW_RAM);
  writeRam(path.join(dir, 'high.ram'), TINY_HIGH_START, TINY_HIGH_RAM);
  fs.writeFileSync(path.join(dir, 'vmcoreinfo.txt'), 'OSRELEASE=6.1.0-vmdump-example\nPAGESIZE=4096\nNUMBER(phys_base)=0\n');
  const machine = {
    arch: 'x86_64',
    ram: [
      { address: '0x0', size: `0x${TINY_LOW_RAM.toString(16)}`, file: 'low.ram' },
      { address: `0x${TINY_HIGH_START.toString(16)}`, size: `0x${TINY_HIGH_RAM.toString(16)}`, file: 'high.ram' },
    ],
    vcpus: [0, 1].map((i) => ({
      rip: `0xffffffff8100${i}000`,
      rsp: `0xffffc90000${i}0ff0`,
      rax: `0x${(0x1111 * (i + 1)).toString(16)}`,
      rflags: '0x246',
      cr0: '0x80050033',
      cr3: '0x1000',
      cr4: '0x3506f0',
      cs: { selector: 16, limit: '0xffffffff', flags: '0xa09b00' },
      ss: { selector: 24, limit: '0xffffffff', flags: '0xc09300' },
      gs: { base: `0xffff88800${i}a00000` },
    })),
    vmcoreinfo: 'vmcoreinfo.txt',
  };
  const file = path.join(dir, 'machine.json');
  fs.writeFileSync(file, `${JSON.stringify(machine, null, 2)}\n`);
  return file;
}

const target = process.argv[2];
if (target !== undefined && import.meta.url === `file://${process.argv[1]}`) {
  process.stderr.write(`wrote ${makeTinyMachine(target)}\n`);
}
