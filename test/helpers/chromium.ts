// Debian's Chromium driven by playwright-core, headless and cut off from every
// network: a page may load file:// and inline content only. Every request that
// tries to leave is aborted and recorded, every console error kept.
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = () => existsSync(CHROMIUM);

export interface OfflinePage {
  page: Page;
  consoleErrors: string[];
  blockedRequests: string[];
  close(): Promise<void>;
}

let browser: Browser | undefined;

export async function openOffline(fileUrl: string, viewport = { width: 1280, height: 900 }): Promise<OfflinePage> {
  browser ??= await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  const context = await browser.newContext({ offline: true, viewport });
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  const blockedRequests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('file://') || url.startsWith('data:')) return route.continue();
    blockedRequests.push(url);
    return route.abort();
  });
  await page.goto(fileUrl, { waitUntil: 'load' });
  return { page, consoleErrors, blockedRequests, close: () => context.close() };
}

export async function closeChromium(): Promise<void> {
  await browser?.close();
  browser = undefined;
}
