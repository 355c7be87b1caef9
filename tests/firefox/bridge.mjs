/**
 * Drives Debian's Firefox ESR for the Python browser tests (tests/firefox_support.py), over WebDriver BiDi.
 *
 * Playwright's patched Firefox cannot be downloaded here, and Selenium's BiDi needs geckodriver, which Debian
 * does not package; puppeteer-core speaks BiDi to the stock browser. The Python side sends one JSON command
 * per line on stdin ({id, cmd, args}) and reads one answer per line on stdout ({id, ok, value} or
 * {id, ok: false, error}), so its tests read like the Chromium ones. The first line out is {ready: true}.
 */
import { createInterface } from "node:readline";

import puppeteer from "puppeteer-core";

const [executablePath, baseUrl] = process.argv.slice(2);

const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath,
  headless: true,
  extraPrefsFirefox: {
    "media.navigator.permission.disabled": true, // the microphone without a prompt (PulseAudio's virtual one)
    // Firefox's own autoplay rules stay as users have them: the page must start its audio from the Start click.
  },
});
const page = await browser.newPage();
const errors = [];
page.on("pageerror", (error) => errors.push(String(error)));
page.on("console", (message) => { if (message.type() === "error") errors.push(message.text()); });

// Waits poll on an interval: the default (animation frames) stalls the talk page in headless Firefox.
const POLLING = 100;

const commands = {
  goto: async (path) => { await page.goto(new URL(path, baseUrl).href, { waitUntil: "load" }); },
  url: async () => page.url(),
  fill: async (selector, text) => {
    await page.$eval(selector, (el) => { el.value = ""; });
    await page.type(selector, text);
  },
  click: async (selector) => { await page.click(selector); },
  selectOption: async (selector, value) => { await page.select(selector, value); },
  press: async (selector, key) => { await page.focus(selector); await page.keyboard.press(key); },
  hold: async (selector) => {
    const box = await (await page.$(selector)).boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
  },
  release: async () => { await page.mouse.up(); },
  evaluate: async (expression) => page.evaluate(expression),
  waitForFunction: async (expression, timeout) => {
    await page.waitForFunction(expression, { polling: POLLING, timeout });
  },
  waitForSelector: async (selector, timeout) => { await page.waitForSelector(selector, { timeout }); },
  isHidden: async (selector) => page.$eval(selector, (el) => el.hidden || getComputedStyle(el).display === "none"),
  isVisible: async (selector) => {
    const element = await page.$(selector);
    return element !== null && (await element.isVisible());
  },
  textContent: async (selector) => page.$eval(selector, (el) => el.textContent),
  innerText: async (selector) => page.$eval(selector, (el) => el.innerText),
  inputValue: async (selector) => page.$eval(selector, (el) => el.value),
  getAttribute: async (selector, name) => page.$eval(selector, (el, attribute) => el.getAttribute(attribute), name),
  screenshot: async (path) => { await page.screenshot({ path }); },
  errors: async () => errors,
  close: async () => { await browser.close(); process.exit(0); },
};

const reply = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
// The browser's process id lets the Python side kill a browser that no longer answers (tests/firefox_support.py).
reply({ ready: true, version: await browser.version(), pid: browser.process()?.pid ?? null });

for await (const line of createInterface({ input: process.stdin })) {
  const { id, cmd, args = [] } = JSON.parse(line);
  try {
    const value = await commands[cmd](...args);
    reply({ id, ok: true, value: value === undefined ? null : value });
  } catch (error) {
    reply({ id, ok: false, error: String(error?.message ?? error) });
  }
}
await browser.close();
