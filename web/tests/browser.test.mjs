// The web client in a real Chromium (Debian's /usr/bin/chromium driven by playwright-core):
// two people in two browser contexts against a server this test starts and restarts.
// CHAI_TAPRI_BIN names the server binary (scripts/web.sh builds it).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectTcp, createServer } from 'node:net';
import { crc32, deflateSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';

const BIN = process.env.CHAI_TAPRI_BIN;
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = process.env.SCREENSHOTS_DIR;
const DEADLINE = 10_000;

let dir;
let port;
let server;
let browser;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts the server on `port` with the database in `dir`; resolves once it listens. */
function startServer() {
  const child = spawn(BIN, [], {
    cwd: dir,
    env: {
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: `sqlite://${dir}/chat.db`,
      LOG_DIR: join(dir, 'logs'),
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
      JWT_SECRET: 'browser-test-secret-browser-test-secret',
      BCRYPT_COST: '4',
      RATE_LIMIT_ENABLED: 'false',
      SHUTDOWN_TIMEOUT: '2s',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not listen within 30 s')), 30_000);
    let buffered = '';
    child.stdout.on('data', (chunk) => {
      buffered += chunk;
      if (buffered.includes('chai-tapri listening')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once('exit', (code) => reject(new Error(`the server exited with ${code}`)));
  });
}

function stopServer(child) {
  return new Promise((resolve) => {
    child.once('exit', resolve);
    child.kill('SIGTERM');
  });
}

before(async () => {
  assert.ok(BIN, 'CHAI_TAPRI_BIN names the server binary');
  dir = mkdtempSync(join(tmpdir(), 'chai-web-'));
  port = await freePort();
  server = await startServer();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  if (server) await stopServer(server);
  rmSync(dir, { recursive: true, force: true });
});

/** A `width`×`height` PNG of one colour, made here (no image library needed). */
function png(width, height, [r, g, b]) {
  const chunk = (type, data) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8 bits, RGB
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(width * 3).fill(Buffer.from([r, g, b]))]);
  const pixels = deflateSync(Buffer.concat(Array(height).fill(row)));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', pixels),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Whether the image `alt` in `page`'s messages has loaded. */
const imageLoaded = (page, alt) =>
  page.waitForFunction(
    (name) => [...document.querySelectorAll('.messages img')].some((i) => i.alt === name && i.complete && i.naturalWidth > 0),
    alt,
    { timeout: DEADLINE },
  );

const url = (path = '/') => `http://127.0.0.1:${port}${path}`;

/** A person in a browser context of their own, signed up as `name` on the page at `origin`. */
async function person(name, { colorScheme = 'light', origin = url('') } = {}) {
  const context = await browser.newContext({ colorScheme, viewport: { width: 1100, height: 720 } });
  context.setDefaultTimeout(DEADLINE);
  const page = await context.newPage();
  page.on('pageerror', (e) => assert.fail(`${name}'s page threw: ${e.message}`));
  await page.goto(`${origin}/`);
  await page.getByLabel('Username', { exact: true }).fill(name);
  await page.getByLabel('Email').fill(`${name}@example.com`);
  await page.getByLabel('Password').fill('correct-horse-battery');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByText(`Signed in as ${name}`).waitFor();
  await connected(page);
  return page;
}

/** The session token `page` keeps (for calling the API as that person). */
const tokenOf = (page) => page.evaluate(() => localStorage.getItem('chai-tapri.token'));

const connected = (page) => page.getByRole('status').filter({ hasText: 'Connected' }).waitFor();
const messages = (page) => page.getByRole('log', { name: 'Messages' });
const messageWith = (page, text) => messages(page).locator('li.message').filter({ hasText: text });

async function send(page, text) {
  const box = page.getByLabel('Message', { exact: true });
  await box.fill(text);
  await box.press('Enter');
  await messageWith(page, text).waitFor();
}

async function noSeriousViolations(page, screen) {
  const { violations } = await new AxeBuilder({ page }).analyze();
  const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    serious.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target).join(', ')})`),
    [],
    `accessibility of ${screen}`,
  );
}

async function shot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

test('the app is served at / and at a deep link, and the API is not shadowed', async () => {
  for (const path of ['/', '/c/0192f0b4-3c2e-7a1b-9c3d-4e5f60718293', '/anything/else']) {
    const response = await fetch(url(path));
    assert.equal(response.status, 200, path);
    assert.match(response.headers.get('content-type'), /text\/html/);
    assert.match(await response.text(), /<div id="app">/);
  }
  const api = await fetch(url('/api/nope'));
  assert.equal(api.status, 404);
  assert.equal((await api.json()).error.code, 'NOT_FOUND');
});

test('two people chat live: join, typing, presence, send, edit, delete, react, reply in a thread, upload an image, search, a direct message, unread and mentions across a reload, and a server restart', async () => {
  const asha = await person('asha');
  await noSeriousViolations(asha, 'the chat screen with no channel');
  const ravi = await person('ravi', { colorScheme: 'dark' });

  // Asha creates a channel; Ravi finds it and joins.
  await createChannel(asha, 'tea-stall');
  assert.match(asha.url(), /\/c\/[0-9a-f-]{36}$/);
  const channelPath = new URL(asha.url()).pathname;
  await ravi.getByRole('button', { name: 'Browse channels' }).click();
  await ravi.getByRole('button', { name: 'Join tea-stall' }).click();
  await ravi.getByRole('heading', { name: '# tea-stall' }).waitFor();
  assert.equal(new URL(ravi.url()).pathname, channelPath);

  // Typing shows on the other side, and stops.
  await asha.getByLabel('Message', { exact: true }).fill('hel');
  await ravi.getByText('asha is typing…').waitFor();

  // A message appears on the other side within a second (after a first one warms up).
  await send(asha, 'hello from asha');
  await messageWith(ravi, 'hello from asha').waitFor();
  await ravi.getByText('asha is typing…').waitFor({ state: 'detached' });
  await send(asha, 'chai at four?');
  await messageWith(ravi, 'chai at four?').waitFor({ timeout: 1000 });
  await send(ravi, 'yes please');
  await messageWith(asha, 'yes please').waitFor();

  // Presence: each sees the other online beside their messages.
  await messageWith(ravi, 'hello from asha').getByRole('img', { name: 'online' }).waitFor();
  await messageWith(asha, 'yes please').getByRole('img', { name: 'online' }).waitFor();

  // Edit and delete appear live on the other side.
  const mine = messageWith(asha, 'chai at four?');
  await mine.getByRole('button', { name: 'Edit message' }).click();
  const editBox = asha.getByLabel('New text');
  await editBox.fill('chai at five?');
  await editBox.press('Enter');
  await messageWith(ravi, 'chai at five?').getByText('(edited)').waitFor();
  await messageWith(asha, 'hello from asha').getByRole('button', { name: 'Delete message' }).click();
  await messageWith(asha, 'hello from asha').getByRole('button', { name: 'Confirm delete' }).click();
  await messageWith(ravi, 'hello from asha').waitFor({ state: 'detached' });
  // A reaction and a thread reply appear live on the other side.
  const yes = messageWith(asha, 'yes please');
  await yes.getByRole('button', { name: 'React to message' }).click();
  await yes.getByRole('button', { name: 'React with 🎉' }).click();
  await yes.getByRole('button', { name: '🎉 1', pressed: true }).waitFor();
  const yesForRavi = messageWith(ravi, 'yes please');
  await yesForRavi.getByRole('button', { name: '🎉 1', pressed: false }).click();
  await yesForRavi.getByRole('button', { name: '🎉 2', pressed: true }).waitFor();
  await yes.getByRole('button', { name: '🎉 2', pressed: true }).waitFor();
  await messageWith(ravi, 'chai at five?').getByRole('button', { name: 'Reply in thread' }).click();
  const ravisThread = ravi.getByRole('complementary', { name: 'Thread' });
  const reply = ravisThread.getByLabel('Reply', { exact: true });
  await reply.fill('five works');
  await reply.press('Enter');
  await ravisThread.locator('li.message').filter({ hasText: 'five works' }).waitFor();
  await messageWith(asha, 'chai at five?').getByRole('button', { name: '1 reply' }).click();
  const ashasThread = asha.getByRole('complementary', { name: 'Thread' });
  await ashasThread.locator('li.message').filter({ hasText: 'five works' }).waitFor();
  assert.equal(await messageWith(asha, 'five works').count(), 0, 'a reply stays in its thread');
  await noSeriousViolations(ravi, 'a channel with a thread open (dark theme)');
  // The keyboard: Escape closes the thread; Alt+↓ and Alt+↑ walk the conversations.
  await reply.press('Escape');
  await ravisThread.waitFor({ state: 'detached' });

  // An image upload shows its thumbnail on both sides.
  await asha.locator('form[aria-label="Send a message"] input[type=file]').setInputFiles({
    name: 'masala-chai.png',
    mimeType: 'image/png',
    buffer: png(640, 480, [181, 101, 29]),
  });
  await asha.getByText('ready').waitFor();
  await send(asha, 'the good stuff');
  await imageLoaded(asha, 'masala-chai.png');
  await imageLoaded(ravi, 'masala-chai.png');
  const thumb = await messageWith(ravi, 'the good stuff').getByRole('img', { name: 'masala-chai.png' });
  assert.match(await thumb.getAttribute('src'), /\/api\/files\/.+\.thumb\./);

  // Dropped on the composer and pasted into the box: both go with the next message.
  const files = await asha.evaluateHandle((pngs) => {
    const made = pngs.map(({ name, bytes }) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([new Uint8Array(bytes)], name, { type: 'image/png' }));
      return transfer;
    });
    return made;
  }, [
    { name: 'dropped.png', bytes: [...png(300, 200, [40, 120, 60])] },
    { name: 'pasted.png', bytes: [...png(200, 300, [60, 40, 160])] },
  ]);
  await asha.evaluate(([transfers]) => {
    const form = document.querySelector('form[aria-label="Send a message"]');
    form.dispatchEvent(new DragEvent('drop', { dataTransfer: transfers[0], bubbles: true, cancelable: true }));
    const box = form.querySelector('textarea');
    box.dispatchEvent(new ClipboardEvent('paste', { clipboardData: transfers[1], bubbles: true, cancelable: true }));
  }, [files]);
  await asha.getByRole('list', { name: 'Files to send' }).getByText('ready').nth(1).waitFor();
  await send(asha, 'dropped and pasted');
  await imageLoaded(ravi, 'dropped.png');
  await imageLoaded(ravi, 'pasted.png');

  // Search finds both, with the words marked.
  await asha.getByLabel('Search messages').fill('five');
  await asha.getByLabel('Search messages').press('Enter');
  await asha.getByText('2 results').waitFor();
  assert.deepEqual(await asha.locator('.results mark').allTextContents(), ['five', 'five']);
  await asha.getByRole('button', { name: 'Clear' }).click();

  // A direct message: Ravi finds Asha and writes; Asha sees it by her DMs' badge.
  await ravi.getByLabel('Message someone').fill('ash');
  await ravi.getByRole('button', { name: 'Find' }).click();
  await ravi.getByRole('button', { name: 'Message asha' }).click();
  await ravi.getByRole('heading', { name: '@ asha' }).waitFor();
  await send(ravi, 'psst, a secret');
  const dmLink = asha.getByRole('navigation', { name: 'Channels' }).getByRole('link', { name: /@ ravi/ });
  await dmLink.getByLabel('1 unread').waitFor();
  await dmLink.click();
  await messageWith(asha, 'psst, a secret').waitFor();
  await asha.getByRole('link', { name: /# tea-stall/ }).click();
  await asha.getByRole('heading', { name: '# tea-stall' }).waitFor();
  await shot(asha, 'chat-light');
  await shot(ravi, 'chat-dark');

  // Unread: Ravi is elsewhere when Asha writes; the badge survives a reload.
  await createChannel(ravi, 'elsewhere');
  await send(asha, '@ravi are you there?');
  const teaStall = ravi.getByRole('navigation', { name: 'Channels' }).getByRole('link', { name: /tea-stall/ });
  await teaStall.getByLabel('1 unread').waitFor();
  await teaStall.getByLabel('1 mention').waitFor();
  await ravi.reload();
  await connected(ravi);
  await teaStall.getByLabel('1 unread').waitFor();
  await teaStall.getByLabel('1 mention').waitFor();
  await teaStall.click();
  await messageWith(ravi, 'are you there?').waitFor();
  await messageWith(ravi, 'yes please').waitFor();
  await teaStall.getByLabel('1 unread').waitFor({ state: 'detached' });

  // The server restarts mid-session: both pages reconnect by themselves, and what was
  // sent meanwhile arrives once.
  await stopServer(server);
  await asha.getByRole('status').filter({ hasText: 'Reconnecting…' }).waitFor();
  server = await startServer();
  await connected(asha);
  const token = await tokenOf(asha);
  const channelId = channelPath.split('/').pop();
  const posted = await fetch(url(`/api/channels/${channelId}/messages`), {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ content: 'sent while you were away', nonce: 'restart-1' }),
  });
  assert.equal(posted.status, 201);
  await connected(ravi);
  await messageWith(ravi, 'sent while you were away').waitFor();
  await send(ravi, 'back again');
  await messageWith(asha, 'back again').waitFor();
  assert.equal(await messageWith(ravi, 'sent while you were away').count(), 1);
  assert.equal(await messageWith(asha, 'sent while you were away').count(), 1);
  assert.equal(await messageWith(ravi, 'yes please').count(), 1);

  // Starring puts a channel first and marks it; leaving takes it off the list.
  await asha.getByRole('button', { name: '☆ Star' }).click();
  await asha.getByRole('button', { name: '★ Starred', pressed: true }).waitFor();
  await asha.getByRole('link', { name: /# tea-stall/ }).getByRole('img', { name: 'starred' }).waitFor();
  const elsewhere = ravi.getByRole('link', { name: /# elsewhere/ });
  await elsewhere.click();
  await ravi.getByRole('button', { name: 'Leave channel' }).click();
  await elsewhere.waitFor({ state: 'detached' });
  await ravi.getByRole('heading', { name: 'Welcome, ravi' }).waitFor();

  await asha.keyboard.press('Alt+ArrowDown');
  await asha.getByRole('heading', { name: '@ ravi' }).waitFor();
  await asha.keyboard.press('Alt+ArrowUp');
  await asha.getByRole('heading', { name: '# tea-stall' }).waitFor();

  // Logging out returns to the sign-in screen, and the token no longer works.
  await asha.getByRole('button', { name: 'Log out' }).click();
  await asha.getByRole('button', { name: 'Create account' }).waitFor();
  await noSeriousViolations(asha, 'the sign-up screen');
  await shot(asha, 'signup');
  const me = await fetch(url('/api/auth/me'), { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(me.status, 401);
});

/** Calls `f(i)` for i in 0..n, `width` at a time. */
async function inParallel(n, width, f) {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) await f(next++);
    }),
  );
}

async function apiCall(method, path, token, body) {
  const response = await fetch(url(path), {
    method,
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json();
  assert.ok(answer.success, `${method} ${path}: ${JSON.stringify(answer)}`);
  return answer.data;
}

test('a channel of 10,000 messages scrolls back to its first and forward to its newest, holding a bounded list', async (t) => {
  const COUNT = 10_000;
  const { token } = await apiCall('POST', '/api/auth/signup', undefined, {
    username: 'meera',
    email: 'meera@example.com',
    password: 'correct-horse-battery',
  });
  const { channel } = await apiCall('POST', '/api/channels', token, { name: 'archive' });
  const seeded = Date.now();
  await inParallel(COUNT, 16, (n) =>
    apiCall('POST', `/api/channels/${channel.id}/messages`, token, { content: `archived note ${n}`, nonce: `seed-${n}` }),
  );
  t.diagnostic(`seeded ${COUNT} messages in ${Date.now() - seeded} ms`);

  const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  context.setDefaultTimeout(DEADLINE);
  await context.addInitScript((saved) => localStorage.setItem('chai-tapri.token', saved), token);
  // Frame gaps while scrolling, recorded by the test in the page.
  await context.addInitScript(() => {
    window.frameGaps = [];
    let last = performance.now();
    const tick = (now) => {
      window.frameGaps.push(now - last);
      last = now;
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  const page = await context.newPage();
  await page.goto(url(`/c/${channel.id}`));
  await messageWith(page, `archived note ${COUNT - 1}`).waitFor();
  const list = messages(page);
  const firstShown = () => list.locator('li.message').first().getAttribute('data-id');
  const shownCount = () => list.locator('li.message').count();
  // A thread opened on the newest message stays open while its root leaves the window.
  await messageWith(page, `archived note ${COUNT - 1}`).getByRole('button', { name: 'Reply in thread' }).click();
  const panel = page.getByRole('complementary', { name: 'Thread' });
  await panel.locator('li.message').filter({ hasText: `archived note ${COUNT - 1}` }).waitFor();

  // Up to the first message, a page at a time.
  await page.evaluate(() => (window.frameGaps = []));
  const started = Date.now();
  let pages = 0;
  let most = 0;
  while (!(await page.getByText('The start of # archive').isVisible())) {
    const before = await firstShown();
    await list.evaluate((el) => {
      el.scrollTop = 0;
    });
    // A scroll is an event of the next frame: a render landing before it (the catch-up read
    // of the first connect, say) may still keep a view that was at the bottom there, as it
    // would for a person, who then scrolls up again. So does the test, until the page moves.
    await page.waitForFunction(
      ([id]) => {
        const el = document.querySelector('[aria-label="Messages"]');
        const first = el?.querySelector('li.message');
        if (first?.dataset.id !== id || document.querySelector('li.start') !== null) return true;
        if (el && el.scrollTop > 0) el.scrollTop = 0;
        return false;
      },
      [before],
      { timeout: DEADLINE },
    );
    pages += 1;
    most = Math.max(most, await shownCount());
    assert.ok(pages <= COUNT / 50 + 5, 'every page is new');
  }
  const upMs = Date.now() - started;
  await messageWith(page, 'archived note 0').waitFor();
  assert.ok(most <= 350, `the list holds at most 350 messages (held ${most})`);
  const gaps = await page.evaluate(() => window.frameGaps.slice().sort((a, b) => a - b));
  const p95 = gaps[Math.floor(gaps.length * 0.95)] ?? 0;
  const long = gaps.filter((g) => g > 50).length;
  t.diagnostic(
    `scrolled to the first of ${COUNT} in ${upMs} ms: ${pages} pages, at most ${most} messages in the list; ` +
      `${gaps.length} frames, p95 gap ${p95.toFixed(1)} ms, ${long} over 50 ms`,
  );

  // The thread is still open, its root far outside the window, and takes a reply.
  assert.equal(await messageWith(page, `archived note ${COUNT - 1}`).count(), 0, 'the root left the window');
  await panel.locator('li.message').filter({ hasText: `archived note ${COUNT - 1}` }).waitFor();
  const reply = panel.getByLabel('Reply', { exact: true });
  await reply.fill('a reply from the distant past');
  await reply.press('Enter');
  await panel.locator('li.message').filter({ hasText: 'a reply from the distant past' }).waitFor();

  // Back to the newest in one jump, and the list is the newest page again, with what was
  // said while the reader was in the past, and what is said next arriving live.
  await apiCall('POST', `/api/channels/${channel.id}/messages`, token, { content: 'said while you were away', nonce: 'away-1' });
  await page.getByRole('button', { name: 'Jump to newest' }).click();
  await messageWith(page, 'said while you were away').waitFor();
  await messageWith(page, `archived note ${COUNT - 1}`).waitFor();
  await apiCall('POST', `/api/channels/${channel.id}/messages`, token, { content: 'said just now', nonce: 'now-1' });
  await messageWith(page, 'said just now').waitFor();
  assert.equal(await messageWith(page, 'said while you were away').count(), 1);
  await messageWith(page, `archived note ${COUNT - 1}`).getByRole('button', { name: '1 reply' }).waitFor();
  assert.ok((await shownCount()) <= 350);
  await context.close();
});

/** `page` makes channel `name` and ends up looking at it. */
async function createChannel(page, name) {
  await page.getByLabel('New channel').fill(name);
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('heading', { name: `# ${name}` }).waitFor();
}

/** `creator` makes channel `name`; `joiner` finds it and joins; both end up looking at it. */
async function meetIn(creator, joiner, name) {
  await createChannel(creator, name);
  await joiner.getByRole('button', { name: 'Browse channels' }).click();
  await joiner.getByRole('button', { name: `Join ${name}` }).click();
  await joiner.getByRole('heading', { name: `# ${name}` }).waitFor();
}

/** The notifications `page`'s service worker is showing now (the browser's own list). */
const notificationsShown = (page) =>
  page.evaluate(async () => {
    const worker = await navigator.serviceWorker.getRegistration();
    const shown = worker ? await worker.getNotifications() : [];
    return shown.map((n) => ({ title: n.title, body: n.body, tag: n.tag, channelId: n.data?.channelId }));
  });

test('a mention heard while looking elsewhere is a desktop notification, once the person has allowed them', async () => {
  const kiran = await person('kiran');
  const neha = await person('neha');
  await meetIn(kiran, neha, 'notices');
  const channelId = new URL(kiran.url()).pathname.split('/').pop();

  // Kiran allows notifications: the browser grants what the page asks for.
  await kiran.context().grantPermissions(['notifications'], { origin: url('') });
  const ask = kiran.getByRole('button', { name: 'Notify me of mentions' });
  await ask.click();
  await ask.waitFor({ state: 'detached' });
  await kiran.waitForFunction(async () => (await navigator.serviceWorker.getRegistration())?.active != null);

  // Looking at the conversation, a mention is not a notification.
  await send(neha, '@kiran are you looking?');
  await messageWith(kiran, 'are you looking?').waitFor();

  // Looking at another, it is: the browser shows one, for the message, pointing at its channel.
  await createChannel(kiran, 'quiet-corner');
  await send(neha, '@kiran the tea is ready');
  await kiran.waitForFunction(async () => {
    const worker = await navigator.serviceWorker.getRegistration();
    return ((await worker?.getNotifications()) ?? []).length > 0;
  });
  const shown = await notificationsShown(kiran);
  const sent = await neha.evaluate(() =>
    [...document.querySelectorAll('[aria-label="Messages"] li.message')].at(-1)?.dataset.id,
  );
  assert.deepEqual(shown, [{ title: 'neha mentioned you', body: '@kiran the tea is ready', tag: sent, channelId }]);
  // Neha, who allowed nothing, has no service worker and no notification.
  assert.equal(await neha.evaluate(async () => (await navigator.serviceWorker.getRegistration()) ?? null), null);
});

/** A TCP relay to the server that a test can cut like a dropped network: `cut()` resets every
 * connection through it and refuses new ones until `mend()`. */
async function relay() {
  const open = new Set();
  let cut = false;
  const listener = createServer((client) => {
    if (cut) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connectTcp(port, '127.0.0.1');
    const pair = { client, upstream };
    open.add(pair);
    const end = () => {
      open.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const line = {
    origin: `http://127.0.0.1:${listener.address().port}`,
    cut() {
      cut = true;
      for (const { client, upstream } of open) {
        client.resetAndDestroy();
        upstream.destroy();
      }
      open.clear();
    },
    mend() {
      cut = false;
    },
    close() {
      line.cut();
      return new Promise((resolve) => listener.close(resolve));
    },
  };
  return line;
}

test('a public channel looked at before joining is live, and an unread message deleted leaves the badge', async () => {
  const omar = await person('omar');
  const zoya = await person('zoya');
  await createChannel(omar, 'open-house');
  await send(omar, 'the doors are open');

  // Zoya finds it in the directory and looks in without joining: what is said shows live.
  await zoya.getByRole('button', { name: 'Browse channels' }).click();
  await zoya.getByRole('link', { name: '# open-house' }).click();
  await zoya.getByRole('heading', { name: '# open-house' }).waitFor();
  await messageWith(zoya, 'the doors are open').waitFor();
  await send(omar, 'tea is on the table');
  await messageWith(zoya, 'tea is on the table').waitFor();
  // Joining keeps it live.
  await zoya.getByRole('button', { name: 'Join # open-house' }).click();
  await zoya.getByLabel('Message', { exact: true }).waitFor();
  await send(omar, 'welcome in');
  await messageWith(zoya, 'welcome in').waitFor();

  // Elsewhere, two unread messages; one is deleted before Zoya reads it, and the badge
  // counts the one left.
  await createChannel(zoya, 'back-room');
  await send(omar, 'a hasty word');
  await send(omar, 'a considered word');
  const openHouse = zoya.getByRole('navigation', { name: 'Channels' }).getByRole('link', { name: /open-house/ });
  await openHouse.getByLabel('2 unread').waitFor();
  const omarToken = await tokenOf(omar);
  const hasty = await messageWith(omar, 'a hasty word').getAttribute('data-id');
  await apiCall('DELETE', `/api/messages/${hasty}`, omarToken);
  await openHouse.getByLabel('1 unread').waitFor();
  await openHouse.click();
  await messageWith(zoya, 'a considered word').waitFor();
  assert.equal(await messageWith(zoya, 'a hasty word').count(), 0);
});

test('a dropped network: the page says so, keeps what could not be sent, reconnects by itself and catches up', async () => {
  const line = await relay();
  try {
    const dev = await person('dev', { origin: line.origin });
    const tara = await person('tara');
    await meetIn(tara, dev, 'monsoon');
    await send(tara, 'before the storm');
    await send(tara, 'a first draft');
    await send(tara, 'a slip of the tongue');
    await messageWith(dev, 'a slip of the tongue').waitFor();
    const taraToken = await tokenOf(tara);
    const channelId = new URL(tara.url()).pathname.split('/').pop();
    const idOf = (text) => messageWith(tara, text).getAttribute('data-id');

    line.cut();
    await dev.getByRole('status').filter({ hasText: 'Reconnecting…' }).waitFor();
    await send(tara, 'while the line was down');
    // Changes to messages Dev already shows, made while Dev cannot hear them.
    await apiCall('PATCH', `/api/messages/${await idOf('a first draft')}`, taraToken, { content: 'a final draft' });
    await apiCall('DELETE', `/api/messages/${await idOf('a slip of the tongue')}`, taraToken);
    // More than a page of them: the newest page does not reach back to what Dev held.
    for (let n = 0; n < 60; n++) {
      await apiCall('POST', `/api/channels/${channelId}/messages`, taraToken, { content: `missed note ${n}`, nonce: `missed-${n}` });
    }
    // What Dev writes meanwhile cannot go: the page tries, says so, and keeps the text.
    const box = dev.getByLabel('Message', { exact: true });
    await box.fill('typed in the rain');
    await box.press('Enter');
    await dev.getByText('The server cannot be reached.').waitFor();
    assert.equal(await box.inputValue(), 'typed in the rain');

    line.mend();
    await connected(dev);
    await messageWith(dev, 'while the line was down').waitFor();
    await messageWith(dev, 'a final draft').waitFor();
    await messageWith(dev, 'a slip of the tongue').waitFor({ state: 'detached' });
    assert.equal(await messageWith(dev, 'a first draft').count(), 0);
    await messageWith(dev, 'missed note 59').waitFor();
    await messageWith(dev, 'missed note 0').waitFor();
    assert.equal(await messageWith(dev, 'missed note ').count(), 60, 'every message of the outage is shown, once');
    await box.press('Enter');
    await messageWith(tara, 'typed in the rain').waitFor();
    await messageWith(dev, 'typed in the rain').waitFor();
    assert.equal(await box.inputValue(), '');
    await send(tara, 'after the storm');
    await messageWith(dev, 'after the storm').waitFor();
    for (const [page, text] of [
      [dev, 'before the storm'],
      [dev, 'while the line was down'],
      [dev, 'typed in the rain'],
      [tara, 'typed in the rain'],
    ]) {
      assert.equal(await messageWith(page, text).count(), 1, `"${text}" is shown once`);
    }
  } finally {
    await line.close();
  }
});

test('logging out in one tab signs out the other tabs of the same browser', async () => {
  const first = await person('lena');
  const second = await first.context().newPage();
  second.on('pageerror', (e) => assert.fail(`lena's second tab threw: ${e.message}`));
  await second.goto(url('/'));
  await second.getByText('Signed in as lena').waitFor();
  await connected(second);
  await first.getByRole('button', { name: 'Log out' }).click();
  await first.getByRole('button', { name: 'Create account' }).waitFor();
  // The server closes the other tab's socket when the token is revoked; the tab asks
  // whether its token still holds, and it does not.
  await second.getByRole('button', { name: 'Create account' }).waitFor();
});
