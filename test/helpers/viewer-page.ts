import type { Frame, Page } from 'playwright-core';

/** What the test page records of each `serverpush:show` event of the viewer. */
export interface Shown {
  seq: number;
  kind: 'image' | 'html' | 'text' | 'other';
  contentType: string;
  size: number;
  timestamp: number | undefined;
  receivedAt: number;
  shownAt: number;
  /** For an image, `WIDTHxHEIGHT` of the `<img>` on show; for text, the first line of the `<pre>`. */
  seen: string;
}

/**
 * Runs before the page's own scripts (a string: tsx would wrap a named inner function in a
 * helper the page lacks): records each part the viewer shows, and each state it goes through.
 */
export const RECORD_SHOWS = `
  window.shows = [];
  window.states = [];
  document.addEventListener('serverpush:show', (event) => {
    const detail = event.detail;
    let seen = '';
    if (detail.kind === 'image') {
      const img = event.target.querySelector('[data-role=image] img');
      seen = img ? img.naturalWidth + 'x' + img.naturalHeight : '';
    } else if (detail.kind === 'text') {
      seen = (event.target.querySelector('[data-role=text]').textContent || '').split('\\n')[0];
    }
    window.shows.push(Object.assign({ seen }, detail));
  });
  document.addEventListener('serverpush:state', (event) => window.states.push(event.detail.state));
`;

type Recorded = { shows: Shown[]; states: string[] };

/** Waits (polling: headless Chromium runs no requestAnimationFrame while a page loads) until `n` parts were shown. */
export async function waitForShows(page: Page | Frame, n: number, timeout = 15_000): Promise<Shown[]> {
  await page.waitForFunction((count) => (window as unknown as Recorded).shows.length >= count, n, { timeout, polling: 50 });
  return shows(page);
}

export function shows(page: Page | Frame): Promise<Shown[]> {
  return page.evaluate(() => (window as unknown as Recorded).shows);
}

export function states(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as Recorded).states);
}

/** The viewer's connection state (`data-state` of its element). */
export function viewerState(page: Page, selector = '#viewer'): Promise<string | undefined> {
  return page.evaluate((s) => document.querySelector<HTMLElement>(s)?.dataset['state'], selector);
}

export async function waitForState(page: Page, state: string, timeout = 15_000, selector = '#viewer'): Promise<void> {
  await page.waitForFunction(([s, wanted]) => document.querySelector<HTMLElement>(s!)?.dataset['state'] === wanted, [selector, state], { timeout, polling: 50 });
}
