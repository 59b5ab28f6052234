/**
 * libvirt's save-image header (libvirt src/qemu/qemu_saveimage.h, docs/qemu-migration-stream.md
 * §12), built by the tests around real QEMU streams: 92 bytes little-endian, then the data area
 * (domain XML, NUL, zero padding) of `dataLength` bytes.
 */
export function libvirtHeader(
  magic: 'LibvirtQemudSave' | 'LibvirtQemudPart',
  format: number,
  xml: string,
  dataLength = xml.length + 1 + 64 * 1024,
): Buffer {
  const data = Buffer.alloc(dataLength);
  data.write(`${xml}\0`, 0, 'latin1');
  const head = Buffer.alloc(92);
  head.write(magic, 0, 'latin1');
  head.writeUInt32LE(2, 16);
  head.writeUInt32LE(data.length, 20);
  head.writeUInt32LE(0, 24);
  head.writeUInt32LE(format, 28);
  return Buffer.concat([head, data]);
}
