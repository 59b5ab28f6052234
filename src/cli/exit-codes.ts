/** Exit statuses, documented in README "Exit codes". */
import type { VmdumpErrorCode } from '../guest/errors.js';

export const EXIT_OK = 0;
export const EXIT_INTERNAL = 1;
export const EXIT_USAGE = 2;
export const EXIT_BAD_INPUT = 3;
export const EXIT_OUTPUT = 4;
export const EXIT_UNREPRESENTABLE = 5;
export const EXIT_SIGINT = 130;
export const EXIT_SIGTERM = 143;

export const exitCodeFor: Readonly<Record<VmdumpErrorCode, number>> = {
  usage: EXIT_USAGE,
  'bad-input': EXIT_BAD_INPUT,
  'short-read': EXIT_BAD_INPUT,
  unrepresentable: EXIT_UNREPRESENTABLE,
  output: EXIT_OUTPUT,
  cancelled: EXIT_SIGINT,
  internal: EXIT_INTERNAL,
};
