/** Debian's Chromium driven by playwright-core (its own browser download cannot work here). */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.IMGEDGE_CHROMIUM ?? '/usr/bin/chromium';

/** A headless Chromium; undefined when it is not installed (the caller skips), except under CI. */
export async function launchChromium(): Promise<Browser | undefined> {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is not installed: apt-get install -y chromium`);
    return undefined;
  }
  // As root (CI containers), Chromium's sandbox cannot start.
  return chromium.launch({ executablePath: CHROMIUM, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
}
