/**
 * The migration stream's record types and RAM record flags (docs/qemu-migration-stream.md §3,
 * §5): the one place they are named, for the first pass (migration-stream.ts) and for the
 * re-reads of RAM (block-reader.ts).
 */

/** The byte that opens each top-level record. */
export const enum Rec {
  Eof = 0x00,
  SectionStart = 0x01,
  SectionPart = 0x02,
  SectionEnd = 0x03,
  SectionFull = 0x04,
  Subsection = 0x05,
  Configuration = 0x07,
  Command = 0x08,
  Footer = 0x7e,
}

/** Sub-commands of a Command record (QEMU's enum MigrationCommand). */
export const enum MigCommand {
  PostcopyAdvise = 3,
  PostcopyRamDiscard = 6,
  /** Empty; sent before the switchover by QEMU 10.0 machine types (docs/qemu-migration-stream.md §3). */
  SwitchoverStart = 11,
}

/** The low bits of a RAM record's be64. */
export const enum RamFlag {
  Full = 0x01,
  Zero = 0x02,
  MemSize = 0x04,
  Page = 0x08,
  Eos = 0x10,
  Continue = 0x20,
  Xbzrle = 0x40,
  Hook = 0x80,
  CompressPage = 0x100,
  MultifdFlush = 0x200,
}
