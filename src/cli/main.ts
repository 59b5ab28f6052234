#!/usr/bin/env node
/**
 * The `vmdump` command: a thin layer over the library. It never touches process.stdout as a
 * Node stream (that would make fd 1 non-blocking); the dump goes through the fd sink.
 */
import { isatty } from 'node:tty';
import { parseArgs } from 'node:util';
import { VmdumpError, isVmdumpError } from '../guest/errors.js';
import { EXIT_INTERNAL, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM, exitCodeFor } from './exit-codes.js';
import type { QmpAddress } from '../sources/qmp/qmp-client.js';
import type { CliOptions } from './run-command.js';
import type { DumpFormat } from '../transforms/prepare-dump.js';
import { USAGE } from './usage.js';

const write = (text: string): void => {
  process.stderr.write(text);
};

type Command = CliOptions | 'help' | { readonly verify: string };

function parseCommandLine(argv: readonly string[]): Command {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      output: { type: 'string', short: 'o' },
      gzip: { type: 'boolean', default: false },
      begin: { type: 'string' },
      length: { type: 'string' },
      layout: { type: 'string', default: 'portable' },
      progress: { type: 'string' },
      fsync: { type: 'boolean', default: false },
      'no-sparse': { type: 'boolean', default: false },
      live: { type: 'boolean', default: false },
      paging: { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
      format: { type: 'string', default: 'elf' },
      threads: { type: 'string' },
      'dump-level': { type: 'string', short: 'd' },
      flattened: { type: 'boolean', default: false },
      checksum: { type: 'string' },
      vmcoreinfo: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  const [command, input, ...extra] = positionals;
  if (command === 'verify') {
    if (input === undefined || extra.length > 0) throw new VmdumpError('usage', 'vmdump verify needs exactly one dump file');
    return { verify: input };
  }
  if (values.checksum !== undefined && values.checksum !== 'sha256')
    throw new VmdumpError('usage', `--checksum supports sha256, not "${values.checksum}"`);
  if (command !== 'raw' && command !== 'saved' && command !== 'qmp')
    throw new VmdumpError('usage', command === undefined ? 'no command given' : `unknown command "${command}"`);
  if (input === undefined) {
    const needs = {
      raw: 'a machine description (MACHINE.json)',
      saved: 'a saved VM file (or - for standard input)',
      qmp: 'a QMP socket path or HOST:PORT',
    };
    throw new VmdumpError('usage', `vmdump ${command} needs ${needs[command]}`);
  }
  if (extra.length > 0) throw new VmdumpError('usage', `unexpected argument "${extra[0]}"`);
  if (values.live && command !== 'qmp') throw new VmdumpError('usage', '--live goes with vmdump qmp');
  if (values.layout !== 'qemu' && values.layout !== 'portable')
    throw new VmdumpError('usage', `--layout must be qemu or portable, not "${values.layout}"`);
  if (values.vmcoreinfo !== undefined && values.layout === 'qemu')
    throw new VmdumpError('usage', '--vmcoreinfo goes with the default layout; --layout qemu writes what QEMU would');
  if ((values.begin === undefined) !== (values.length === undefined))
    throw new VmdumpError('usage', '--begin and --length go together');
  const format = parseFormat(values.format);
  if (format !== 'elf' && (values.paging || values.begin !== undefined)) {
    throw new VmdumpError(
      'usage',
      `--format ${values.format} writes physical memory whole; --paging, --begin and --length go with --format elf`,
    );
  }
  if (format === 'elf' && (values.threads !== undefined || values.flattened))
    throw new VmdumpError('usage', '--threads and --flattened go with a kdump --format');
  const threads = values.threads === undefined ? undefined : Number(parseNumber(values.threads, '--threads'));
  if (threads !== undefined && (threads < 1 || threads > 256))
    throw new VmdumpError('usage', '--threads must be between 1 and 256');
  const dumpLevel = values['dump-level'] === undefined ? undefined : Number(parseNumber(values['dump-level'], '-d'));
  const progress = values.progress ?? (isatty(2) ? 'bar' : 'none');
  if (progress !== 'bar' && progress !== 'json' && progress !== 'none')
    throw new VmdumpError('usage', `--progress must be bar, json or none, not "${progress}"`);
  const filter =
    values.begin === undefined || values.length === undefined
      ? undefined
      : { begin: parseNumber(values.begin, '--begin'), length: parseNumber(values.length, '--length') };
  return {
    source:
      command === 'raw'
        ? { kind: 'raw', machine: input }
        : command === 'saved'
          ? { kind: 'saved', file: input }
          : { kind: 'qmp', address: qmpAddress(input), live: values.live },
    request: {
      format,
      layout: values.layout,
      paging: values.paging,
      ...(filter === undefined ? {} : { filter }),
      ...(dumpLevel === undefined ? {} : { dumpLevel }),
    },
    output: values.output,
    outputOptions: {
      gzip: values.gzip,
      flattened: values.flattened,
      fsync: values.fsync,
      sparse: !values['no-sparse'],
      force: values.force,
      checksum: values.checksum === 'sha256',
    },
    progress,
    ...(threads === undefined ? {} : { threads }),
    ...(values.vmcoreinfo === undefined ? {} : { vmcoreinfo: values.vmcoreinfo }),
  };
}

function parseFormat(text: string): DumpFormat {
  if (text === 'elf' || /^kdump-(zlib|lzo|snappy|zstd)$/.test(text)) return text as DumpFormat;
  throw new VmdumpError('usage', `--format must be elf, kdump-zlib, kdump-lzo, kdump-snappy or kdump-zstd, not "${text}"`);
}

/** A unix socket path, or HOST:PORT (tcp:HOST:PORT also accepted). */
function qmpAddress(text: string): QmpAddress {
  const tcp = /^(?:tcp:)?([^/:]+|\[[^\]]+\]):(\d+)$/.exec(text);
  return tcp === null ? { path: text.replace(/^unix:/, '') } : { host: tcp[1]!.replace(/^\[|\]$/g, ''), port: Number(tcp[2]) };
}

function parseNumber(text: string, option: string): bigint {
  if (!/^-?(0x[0-9a-f]+|[0-9]+)$/i.test(text.trim()))
    throw new VmdumpError('usage', `${option} needs a number (decimal or 0x-hex), not "${text}"`);
  const negative = text.trim().startsWith('-');
  const value = BigInt(text.trim().replace(/^-/, ''));
  return negative ? -value : value;
}

async function main(): Promise<number> {
  const controller = new AbortController();
  let signalExit = EXIT_SIGINT;
  const onSignal = (name: NodeJS.Signals, code: number) => () => {
    signalExit = code;
    controller.abort(new Error(`interrupted by ${name}`));
  };
  process.once('SIGINT', onSignal('SIGINT', EXIT_SIGINT));
  process.once('SIGTERM', onSignal('SIGTERM', EXIT_SIGTERM));
  try {
    const options = parseCommandLine(process.argv.slice(2));
    if (options === 'help') {
      write(USAGE);
      return EXIT_OK;
    }
    if ('verify' in options) {
      // Each path loads only its own modules: `--help` or a usage error costs no dump code (issue 21).
      const { verifyDumpFile } = await import('../verify/verify-dump.js');
      const report = await verifyDumpFile(options.verify);
      for (const warning of report.warnings) write(`vmdump: warning: ${report.file}: ${warning}\n`);
      process.stdout.write(
        `${report.file}: OK: ${report.summary}${report.flattened ? ' (flattened)' : ''}` +
          `${report.sha256 === undefined ? '' : '; SHA-256 matches the .sha256 file'}\n`,
      );
      return EXIT_OK;
    }
    const { runDump } = await import('./run-command.js');
    await runDump(options, controller.signal, write);
    return EXIT_OK;
  } catch (error) {
    const known = isVmdumpError(error) ? error : undefined;
    const message = known?.message ?? (error instanceof Error ? error.message : String(error));
    const code = known?.code ?? 'internal';
    if (error instanceof TypeError && (error as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS') === true) {
      write(`vmdump: ${message}\nTry 'vmdump --help'.\n`);
      return exitCodeFor.usage;
    }
    write(`vmdump: error: ${message}\n`);
    if (code === 'cancelled') return signalExit;
    return known === undefined ? EXIT_INTERNAL : exitCodeFor[code];
  }
}

process.exitCode = await main();
