/** Command line of `imgedge-optimize`: flags → options, or a UsageError (exit 2). */
import { parseArgs } from 'node:util';
import type { QualityTarget } from '../transform/types.js';

export type FormatOption = 'keep' | 'webp' | 'avif';

export interface CliOptions {
  paths: string[];
  /** output folder; undefined with --in-place */
  out?: string;
  inPlace: boolean;
  quality: QualityTarget;
  format: FormatOption;
  json: boolean;
}

export const USAGE = `Usage: imgedge-optimize <files or folders…> [options]

Optimizes images the way the edge does with auto=compress (never larger than the original).
Folders are searched recursively; files that are not images are skipped.

Options:
  --out DIR          write results here, mirroring the folders given (default ./optimized/)
  --in-place         replace each original, only when the result is smaller (atomic rename)
  --quality LEVEL    high | medium | low: how hard to compress (default high)
  --format FORMAT    keep | webp | avif (default keep; with --out only)
  --json             print a JSON array of Kraken.io-style results instead of text lines
  -h, --help         show this help

Exit status: 0 all done, 1 some file failed, 2 bad usage.
`;

export class UsageError extends Error {}

const QUALITIES: readonly QualityTarget[] = ['high', 'medium', 'low'];
const FORMATS: readonly FormatOption[] = ['keep', 'webp', 'avif'];

function oneOf<T extends string>(flag: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}, got "${value}"`);
  return value as T;
}

/** Parsed options, or 'help' for -h/--help. */
export function parseCliArgs(argv: string[]): CliOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        out: { type: 'string' },
        'in-place': { type: 'boolean', default: false },
        quality: { type: 'string' },
        format: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (positionals.length === 0) throw new UsageError('no files or folders given');
  const inPlace = values['in-place'];
  const format = oneOf('format', values.format, FORMATS, 'keep');
  if (inPlace && values.out !== undefined) throw new UsageError('--out and --in-place exclude each other');
  // A new format means a new file name: replacing the original would leave the old name behind.
  if (inPlace && format !== 'keep') throw new UsageError('--in-place keeps each file\'s format; use --out with --format');
  return {
    paths: positionals,
    ...(inPlace ? {} : { out: values.out ?? 'optimized' }),
    inPlace,
    quality: oneOf('quality', values.quality, QUALITIES, 'high'),
    format,
    json: values.json,
  };
}
