// The cluster test: nginx in front of three nodes on one PostgreSQL and one Redis, 100 clients
// of the official JS client (WebSocket, polling, polling→WebSocket) chatting in 10 channels
// through nginx; one node is killed with SIGKILL mid-run and started again.
//
// Shown: every acknowledged message is in the history exactly once; every client that stayed
// connected received every message of its channel exactly once; the clients of the killed
// node reconnect through nginx and, after catching up with `after=`, hold every message; the
// users come back online; the message rate budget is shared by the surviving nodes; the
// restarted node takes traffic again and delivers across nodes, with no manual step.
//
// Run by scripts/cluster.sh, which installs and renders what this needs and passes:
//   CHAI_BIN, NODE_PORTS (3, comma-separated), NODE_ENV (JSON: the nodes' shared settings),
//   NGINX_DIR (a rendered nginx.conf in it), NGINX_URL, WORK (a scratch folder).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, createWriteStream } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { io } from 'socket.io-client';

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} must be set (scripts/cluster.sh sets it)`);
  return value;
};
const BIN = env('CHAI_BIN');
const PORTS = env('NODE_PORTS').split(',').map(Number);
const NODE_ENV = JSON.parse(env('NODE_ENV'));
const NGINX_DIR = env('NGINX_DIR');
const NGINX = env('NGINX_URL');
const WORK = env('WORK');
const REDIS_PORT = Number(env('REDIS_PORT'));
// A command that stops (`… stop -m fast`) and starts (`… start`) the PostgreSQL the nodes
// use (empty: that step is skipped, loudly).
const PG_CTL = process.env.PG_CTL || '';

const CLIENTS = 100;
const CHANNELS = 10;
const SEND_SECONDS = 20;
const KILL_AT_MS = 7000;
const VICTIM = 1; // index in PORTS
const BUDGET = 40; // RATE_LIMIT_MESSAGES=40/1m, set by scripts/cluster.sh
const NODE_TTL = 6000; // PRESENCE_NODE_TTL=6s, set by scripts/cluster.sh
// docs/api.md: a dead node's users are announced offline within PRESENCE_NODE_TTL and a
// third of it; the slack is for the script and the event's way to the socket.
const OFFLINE_BOUND = NODE_TTL + NODE_TTL / 3;
const OFFLINE_SLACK = 2000;
const AWAY = 5; // users connected to the victim only, who do not come back at once

const started = Date.now();
const log = (...args) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s]`, ...args);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Every wait has a deadline and says what it waited for.
async function until(what, ms, check, every = 50) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

// --- processes -------------------------------------------------------------------------
const children = new Set();
function run(cmd, args, options, logName) {
  const out = createWriteStream(join(WORK, logName), { flags: 'a' });
  const child = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}
// Nodes die at once; nginx gets SIGTERM so that its master takes its workers along.
function stopAll() {
  for (const child of children) child.kill(child === nginx ? 'SIGTERM' : 'SIGKILL');
}
process.on('exit', stopAll);

const nodes = [];
let nginx = null;
let redis = null;
// The cluster's own Redis, so that restarting it touches nothing else on the machine.
function startRedis() {
  redis = run('redis-server', ['--bind', '127.0.0.1', '--port', String(REDIS_PORT), '--save', '', '--appendonly', 'no'], {}, 'redis.log');
}
function startNode(i) {
  const dir = join(WORK, `node${i}`);
  mkdirSync(dir, { recursive: true });
  const child = run(BIN, [], {
    cwd: dir,
    env: { ...NODE_ENV, PORT: String(PORTS[i]), LOG_DIR: join(dir, 'logs') },
  }, `node${i}.log`);
  nodes[i] = child;
  return child;
}
const nodeUrl = (i) => `http://127.0.0.1:${PORTS[i]}`;

async function healthy(url) {
  try {
    const res = await fetch(`${url}/health`);
    return res.status === 200;
  } catch {
    return false;
  }
}

// --- REST ------------------------------------------------------------------------------
async function api(base, method, path, token, body) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${base}${path}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* a proxy page is not JSON */ }
  return { status: res.status, body: json, text };
}

async function inBatches(items, size, fn) {
  const out = [];
  for (let i = 0; i < items.length; i += size) {
    out.push(...await Promise.all(items.slice(i, i + size).map(fn)));
  }
  return out;
}

// Every message of a channel: the newest page, then older ones with `before=`.
async function history(channelId, token) {
  const all = [];
  let before = null;
  for (;;) {
    const q = before ? `?limit=100&before=${before}` : '?limit=100';
    const r = await api(NGINX, 'GET', `/api/channels/${channelId}/messages${q}`, token);
    assert.equal(r.status, 200, r.text);
    const page = r.body.data.messages;
    all.unshift(...page);
    if (!r.body.data.pagination.hasMore || page.length === 0) return all;
    before = page[0].id;
  }
}

// --- the run ---------------------------------------------------------------------------
async function main() {
  startRedis();
  await until('Redis up', 10000, () => new Promise((resolve) => {
    const s = net.connect(REDIS_PORT, '127.0.0.1', () => { s.end(); resolve(true); });
    s.on('error', () => resolve(false));
  }));
  for (let i = 0; i < PORTS.length; i++) startNode(i);
  for (let i = 0; i < PORTS.length; i++) await until(`node ${i} healthy`, 30000, () => healthy(nodeUrl(i)));
  nginx = run('nginx', ['-p', NGINX_DIR, '-c', join(NGINX_DIR, 'nginx.conf'), '-g', 'daemon off;'], {}, 'nginx.log');
  await until('nginx in front', 10000, () => healthy(NGINX));
  log('3 nodes and nginx up');

  // 100 users, 10 public channels; user j is in channel j mod 10.
  const tag = process.pid.toString(36);
  const users = await inBatches([...Array(CLIENTS).keys()], 10, async (j) => {
    const name = `c${tag}u${j}`;
    const r = await api(NGINX, 'POST', '/api/auth/signup', null, {
      username: name, email: `${name}@example.com`, password: 'password-cluster',
    });
    assert.equal(r.status, 201, r.text);
    return { id: r.body.data.user.id, token: r.body.data.token, name };
  });
  const channels = await inBatches([...Array(CHANNELS).keys()], 10, async (c) => {
    const r = await api(NGINX, 'POST', '/api/channels', users[c].token, { name: `c${tag}-room${c}` });
    assert.equal(r.status, 201, r.text);
    return r.body.data.channel.id;
  });
  await inBatches([...Array(CLIENTS).keys()].filter((j) => j >= CHANNELS), 10, async (j) => {
    const r = await api(NGINX, 'POST', `/api/channels/${channels[j % CHANNELS]}/join`, users[j].token);
    assert.equal(r.status, 200, r.text);
  });
  log('100 users in 10 channels');

  // One client per user through nginx, transports mixed.
  const transportsOf = (j) => [['websocket'], ['polling'], ['polling', 'websocket']][j % 3];
  const clients = users.map((user, j) => ({
    j, user, channelId: channels[j % CHANNELS], transports: transportsOf(j),
    live: new Map(), // message id → times received live
    caught: new Set(), // ids fetched with after= on reconnecting
    received: [], // [time, id] of what came live, for the catch-up anchor
    lostAt: 0, disconnects: 0, joined: false,
  }));
  // On many nodes, live events from different nodes may arrive out of id order by up to the
  // cross-node delivery delay, so a client catches up from the newest id it had received
  // CATCH_UP_MARGIN before it lost the connection, and drops what it already holds
  // (docs/api.md, "Slow readers" and "Many nodes").
  const CATCH_UP_MARGIN = 10000;
  const NIL = '00000000-0000-0000-0000-000000000000';
  async function catchUp(c) {
    let after = NIL;
    for (const [at, id] of c.received) if (at <= c.lostAt - CATCH_UP_MARGIN && id > after) after = id;
    for (;;) {
      const r = await api(NGINX, 'GET', `/api/channels/${c.channelId}/messages?limit=100&after=${after}`, c.user.token);
      if (r.status !== 200) { await sleep(200); continue; }
      const page = r.body.data.messages;
      for (const m of page) c.caught.add(m.id);
      if (!r.body.data.pagination.hasMore || page.length === 0) return;
      after = page[page.length - 1].id;
    }
  }

  await inBatches(clients, 20, (c) => new Promise((resolve, reject) => {
    const socket = io(NGINX, {
      forceNew: true, transports: c.transports, withCredentials: true, auth: { token: c.user.token },
      reconnectionDelay: 100, reconnectionDelayMax: 500, timeout: 5000,
    });
    c.socket = socket;
    socket.on('new-message', (m) => {
      if (m.channelId !== c.channelId) { c.foreign = (c.foreign || 0) + 1; return; }
      c.live.set(m.id, (c.live.get(m.id) || 0) + 1);
      c.received.push([Date.now(), m.id]);
    });
    socket.on('disconnect', (reason) => {
      c.disconnects += 1; c.joined = false; c.lostAt = Date.now();
      if (!c.closing) log(`client ${c.j} (${c.transports.join('→')}) disconnected: ${reason}`);
    });
    socket.on('connect', async () => {
      try {
        const ack = await socket.timeout(5000).emitWithAck('join-channel', { channelId: c.channelId });
        assert.equal(ack.success, true, JSON.stringify(ack));
        // Joined first, then the gap is fetched: nothing falls between the two.
        if (c.disconnects > 0) await catchUp(c);
        c.joined = true;
        resolve();
      } catch (e) {
        if (c.disconnects === 0) reject(e);
      }
    });
    socket.on('connect_error', (e) => {
      if (c.disconnects > 0) log(`client ${c.j} could not reconnect: ${e.message} (retrying: ${socket.active})`);
      if (!socket.active) reject(e);
    });
  }));
  await until('every client joined', 20000, () => clients.every((c) => c.joined));
  for (const c of clients.filter((c) => c.transports.length === 2)) {
    await until(`client ${c.j} upgraded to WebSocket`, 10000, () => c.socket.io.engine.transport.name === 'websocket');
  }
  log('100 clients connected through nginx and joined');

  // Presence: an observer on a surviving node, and AWAY users connected straight to the
  // victim with no reconnection, so that they go offline when it dies.
  const awayUsers = await inBatches([...Array(AWAY).keys()], AWAY, async (k) => {
    const name = `c${tag}away${k}`;
    const r = await api(NGINX, 'POST', '/api/auth/signup', null, {
      username: name, email: `${name}@example.com`, password: 'password-cluster',
    });
    assert.equal(r.status, 201, r.text);
    return { id: r.body.data.user.id, token: r.body.data.token };
  });
  const presenceHeard = []; // [time, 'online' | 'offline', userId]
  const observer = await new Promise((resolve, reject) => {
    const s = io(nodeUrl(0), { forceNew: true, transports: ['websocket'], auth: { token: users[0].token } });
    s.on('user:online', (e) => presenceHeard.push([Date.now(), 'online', e.userId]));
    s.on('user:offline', (e) => presenceHeard.push([Date.now(), 'offline', e.userId]));
    s.once('connect', () => resolve(s));
    s.once('connect_error', reject);
  });
  const heardFor = (kind, userId, since = 0) => presenceHeard.find(([at, k, u]) => at >= since && k === kind && u === userId);
  const awaySockets = await Promise.all(awayUsers.map((u) => new Promise((resolve, reject) => {
    const s = io(nodeUrl(VICTIM), { forceNew: true, transports: ['websocket'], reconnection: false, auth: { token: u.token } });
    s.once('connect', () => resolve(s));
    s.once('connect_error', reject);
  })));
  await until('the observer hearing the away users come online', 10000, () => awayUsers.every((u) => heardFor('online', u.id)));

  // Traffic: every client sends every ~4 s, by socket with an ack or (one in ten) by REST,
  // with a nonce; a send that is not acknowledged is sent again with the same nonce.
  const acked = new Map(); // message id → { channelId, nonce }
  const nonceIds = new Map(); // nonce → id
  let restRetries = 0; let socketRetries = 0;
  async function sendOnce(c, nonce, content, viaRest) {
    if (viaRest) {
      const r = await api(NGINX, 'POST', `/api/channels/${c.channelId}/messages`, c.user.token, { content, nonce }).catch(() => null);
      if (r && (r.status === 201 || r.status === 200)) return r.body.data.message;
      if (r && r.status === 429) throw new Error(`rate limited: ${r.text}`);
      restRetries += 1;
      return null;
    }
    if (!c.socket.connected || !c.joined) { socketRetries += 1; return null; }
    try {
      const ack = await c.socket.timeout(3000).emitWithAck('send-message', { channelId: c.channelId, content, nonce });
      if (ack.success) return ack.data.message;
      if (ack.error?.code === 'RATE_LIMITED') throw new Error(`rate limited: ${JSON.stringify(ack)}`);
    } catch (e) {
      if (String(e.message).startsWith('rate limited')) throw e;
    }
    socketRetries += 1;
    return null;
  }
  async function sendUntilAcked(c, seq) {
    const nonce = `${c.user.name}-${seq}`;
    const content = `m ${nonce}`;
    const viaRest = (c.j + seq) % 10 === 0;
    const deadline = Date.now() + 30000;
    for (;;) {
      const m = await sendOnce(c, nonce, content, viaRest);
      if (m) {
        assert.equal(m.content, content);
        if (nonceIds.has(nonce)) assert.equal(nonceIds.get(nonce), m.id, `nonce ${nonce} answered one message`);
        nonceIds.set(nonce, m.id);
        acked.set(m.id, { channelId: c.channelId, nonce });
        return;
      }
      if (Date.now() > deadline) throw new Error(`send ${nonce} not acknowledged within 30 s`);
      await sleep(200);
    }
  }
  const sendStart = Date.now();
  const senders = clients.map(async (c) => {
    await sleep((c.j * 20) % 2000);
    for (let seq = 0; Date.now() - sendStart < SEND_SECONDS * 1000; seq++) {
      await sendUntilAcked(c, seq);
      await sleep(1500 + ((c.j * 7 + seq * 13) % 1000));
    }
  });

  // The kill lands in the middle of a burst: every client sends three at once, so sends
  // are in flight on the node when it dies (acknowledged or not, they are sent again with
  // their nonce until acknowledged).
  await sleep(KILL_AT_MS);
  const burst = clients.flatMap((c) => [0, 1, 2].map((k) => sendUntilAcked(c, `burst${k}`)));
  await sleep(15);
  nodes[VICTIM].kill('SIGKILL');
  const killedAt = Date.now();
  log(`node ${VICTIM} killed with SIGKILL, mid-burst`);
  // The away users go offline within the bound, heard on a surviving node.
  const awayOffline = until('user:offline for the dead node\'s users', OFFLINE_BOUND + OFFLINE_SLACK + 5000,
    () => awayUsers.every((u) => heardFor('offline', u.id, killedAt)), 100).then(() => {
    const late = Math.max(...awayUsers.map((u) => heardFor('offline', u.id, killedAt)[0] - killedAt));
    log(`the dead node's ${AWAY} away users announced offline ${late} ms after the kill (bound ${OFFLINE_BOUND} ms)`);
    assert.ok(late <= OFFLINE_BOUND + OFFLINE_SLACK, `offline after ${late} ms, over the bound`);
  });
  await Promise.all([...senders, ...burst, awayOffline]);
  for (const s of awaySockets) s.close();
  log(`${acked.size} messages acknowledged (sent again after the kill: ${socketRetries} by socket, ${restRetries} by REST)`);
  assert.ok(socketRetries + restRetries > 0, 'the kill caught sends in flight');

  // Everyone holds everything of their channel.
  const expected = new Map(channels.map((id) => [id, new Set()]));
  for (const [id, { channelId }] of acked) expected.get(channelId).add(id);
  const holds = (c) => [...expected.get(c.channelId)].every((id) => c.live.has(id) || c.caught.has(id));
  try {
    await until('every client holding every message of its channel', 30000, () => clients.every((c) => c.joined && holds(c)), 100);
  } catch (e) {
    for (const c of clients.filter((c) => !c.joined || !holds(c))) {
      const missing = [...expected.get(c.channelId)].filter((id) => !c.live.has(id) && !c.caught.has(id));
      console.error(`client ${c.j} (${c.transports.join('→')}, joined ${c.joined}, disconnects ${c.disconnects}) misses ${missing.length}: ${missing.slice(0, 3).map((id) => acked.get(id).nonce).join(', ')}`);
    }
    throw e;
  }

  const moved = clients.filter((c) => c.disconnects > 0);
  const stayed = clients.filter((c) => c.disconnects === 0);
  log(`${moved.length} clients reconnected (${moved.map((c) => c.transports.join('→')).filter((v, i, a) => a.indexOf(v) === i).join(', ')}), ${stayed.length} stayed`);
  assert.ok(moved.length > 0, 'some clients were on the killed node');
  assert.ok(stayed.length > 0, 'some clients were on the surviving nodes');
  assert.ok(Date.now() - killedAt < 60000);

  // History: every acknowledged message exactly once, nothing else of ours.
  for (const channelId of channels) {
    const all = await history(channelId, users[0].token);
    const ids = all.map((m) => m.id);
    assert.equal(new Set(ids).size, ids.length, 'no message twice in history');
    const contents = all.map((m) => m.content);
    assert.equal(new Set(contents).size, contents.length, 'no nonce stored twice');
    assert.deepEqual(new Set(ids), expected.get(channelId), 'history is exactly the acknowledged messages');
  }
  // Live: those who stayed got each message of their channel exactly once.
  for (const c of stayed) {
    assert.equal(c.foreign || 0, 0, `client ${c.j}: nothing from other channels`);
    for (const id of expected.get(c.channelId)) {
      assert.equal(c.live.get(id), 1, `client ${c.j} (stayed) received ${id} once`);
    }
    assert.equal(c.live.size, expected.get(c.channelId).size);
  }
  for (const c of moved) {
    assert.equal(c.foreign || 0, 0);
    for (const [id, n] of c.live) assert.equal(n, 1, `client ${c.j} (reconnected) received ${id} live at most once`);
  }
  log('history exact; stayed clients got everything once; reconnected clients caught up');

  // Presence: every user online again, through any node.
  await until('all 100 users online again', 15000, async () => everyoneOnline(users), 250);
  log('every user online again');

  // The away users come back through nginx: announced online again, and listed.
  const backAt = Date.now();
  const awayBack = awayUsers.map((u) => io(NGINX, { forceNew: true, transports: ['websocket'], auth: { token: u.token } }));
  await until('user:online for the away users back through nginx', 10000, () => awayUsers.every((u) => heardFor('online', u.id, backAt)));
  assert.ok(await everyoneOnline(awayUsers), 'the away users are listed online again');
  for (const s of awayBack) s.close();
  observer.close();
  log('the dead node\'s users went offline within the bound and came back online');

  // The message budget is one for the cluster: half through each surviving node, then over.
  const survivors = [0, 1, 2].filter((i) => i !== VICTIM);
  const b = await api(NGINX, 'POST', '/api/auth/signup', null, {
    username: `c${tag}budget`, email: `c${tag}budget@example.com`, password: 'password-cluster',
  });
  assert.equal(b.status, 201, b.text);
  const budgetToken = b.body.data.token;
  assert.equal((await api(NGINX, 'POST', `/api/channels/${channels[0]}/join`, budgetToken)).status, 200);
  for (let k = 0; k < BUDGET; k++) {
    const node = survivors[k % 2];
    const r = await api(nodeUrl(node), 'POST', `/api/channels/${channels[0]}/messages`, budgetToken, { content: `budget ${k}` });
    assert.equal(r.status, 201, `send ${k} of ${BUDGET} through node ${node}: ${r.text}`);
  }
  for (const node of survivors) {
    const r = await api(nodeUrl(node), 'POST', `/api/channels/${channels[0]}/messages`, budgetToken, { content: 'over' });
    assert.equal(r.status, 429, `one over the shared budget through node ${node}: ${r.text}`);
    assert.equal(r.body.error.code, 'RATE_LIMITED');
  }
  log(`the ${BUDGET}-message budget spans both surviving nodes`);

  // The killed node starts again and takes its share with no manual step: nginx sends it
  // requests again, and it delivers across nodes through Redis.
  const restartedAt = Date.now();
  startNode(VICTIM);
  await until('the restarted node healthy', 30000, () => healthy(nodeUrl(VICTIM)));
  const victimAddr = `127.0.0.1:${PORTS[VICTIM]}`;
  await until('nginx sending requests to the restarted node', 30000, async () => {
    await fetch(`${NGINX}/health`).catch(() => null);
    const lines = readFileSync(join(NGINX_DIR, 'logs', 'upstream.log'), 'utf8').trim().split('\n');
    return lines.some((l) => {
      const [ms, upstream, status] = l.split(' ');
      return Number(ms) * 1000 >= restartedAt && upstream === victimAddr && status === '200';
    });
  }, 200);
  const listener = await new Promise((resolve, reject) => {
    const s = io(nodeUrl(VICTIM), { forceNew: true, transports: ['websocket'], auth: { token: users[0].token } });
    s.once('connect', () => resolve(s));
    s.once('connect_error', reject);
  });
  assert.equal((await listener.timeout(5000).emitWithAck('join-channel', { channelId: channels[0] })).success, true);
  const heard = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no new-message on the restarted node within 5 s')), 5000);
    listener.on('new-message', (m) => { if (m.content === 'across nodes') { clearTimeout(timer); resolve(m); } });
  });
  const sent = await api(nodeUrl(survivors[0]), 'POST', `/api/channels/${channels[0]}/messages`, users[0].token, { content: 'across nodes' });
  assert.equal(sent.status, 201, sent.text);
  await heard;
  listener.close();
  log('the restarted node serves through nginx and hears the other nodes');

  // --- Redis restarted under the running cluster (empty: no persistence) ---------------
  const everyNode = [0, 1, 2];
  const allHealthy = async () => (await Promise.all(everyNode.map((i) => healthy(nodeUrl(i))))).every(Boolean);
  // A token logged out before Redis goes: it must stay refused after Redis comes back empty.
  const gone = await api(NGINX, 'POST', '/api/auth/login', null, { email: `${users[3].name}@example.com`, password: 'password-cluster' });
  assert.equal(gone.status, 200, gone.text);
  assert.equal((await api(NGINX, 'POST', '/api/auth/logout', gone.body.data.token)).status, 200);
  const redisDown = Date.now();
  redis.kill('SIGKILL');
  await until('every node reporting Redis gone', 20000, async () => {
    const codes = await Promise.all(everyNode.map((i) => fetch(`${nodeUrl(i)}/health`).then((r) => r.status, () => 0)));
    return codes.every((s) => s === 503);
  }, 100);
  const duringRedis = await probeSends('redis down');
  startRedis();
  await until('every node healthy with Redis back', 30000, allHealthy, 200);
  log(`Redis killed and started again empty: nodes healthy ${Date.now() - redisDown} ms later; sends meanwhile: ${fmt(duringRedis)}`);
  assert.ok(!duringRedis[500], 'no 500 while Redis was gone');
  // Presence is rebuilt from the nodes' own sockets, and broadcasts cross nodes again.
  await until('all 100 users online again after the Redis restart', 15000, async () => everyoneOnline(users), 250);
  // Each node subscribes again by itself; until it has, a broadcast may miss its sockets
  // (the message is stored: docs/api.md, "Many nodes").
  const resumedAfter = await broadcastsResume('Redis restart', redisDown);
  await roundHeardByAll('after the Redis restart');
  for (const i of everyNode) {
    const me = await api(nodeUrl(i), 'GET', '/api/auth/me', gone.body.data.token);
    assert.equal(me.status, 401, `node ${i}: a token logged out before the Redis restart is still refused: ${me.text}`);
  }
  log(`after the Redis restart: presence rebuilt, broadcasts crossing again ${resumedAfter} ms after the kill, every client hears every channel message once`);

  // --- PostgreSQL restarted under the running cluster ---------------------------------
  if (PG_CTL) {
    const pgCtl = (action) => new Promise((resolve, reject) => {
      const child = spawn('sh', ['-c', `${PG_CTL} ${action}`], { stdio: 'inherit' });
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${PG_CTL} ${action}: exit ${code}`))));
    });
    const pgDown = Date.now();
    await pgCtl('stop -m fast');
    const duringPg = await probeSends('postgres down');
    await pgCtl('start');
    await until('every node healthy with PostgreSQL back', 30000, allHealthy, 200);
    log(`PostgreSQL stopped for ${Date.now() - pgDown} ms and started: nodes healthy again; sends meanwhile: ${fmt(duringPg)}`);
    assert.ok(duringPg[503] > 0, `sends while PostgreSQL was down answered 503: ${fmt(duringPg)}`);
    assert.ok(Object.keys(duringPg).every((s) => s === '503'), `only 503 while PostgreSQL was down: ${fmt(duringPg)}`);
    await roundHeardByAll('after the PostgreSQL restart');
    log('after the PostgreSQL restart: the nodes recovered by themselves; every client hears every message once');
  } else {
    console.log('!! SKIPPED the PostgreSQL restart: PG_CTL is not set (scripts/cluster.sh sets it where it can)');
  }

  // Nothing acknowledged at any point is missing or doubled.
  for (const channelId of channels) {
    const all = await history(channelId, users[0].token);
    const ids = all.map((m) => m.id);
    assert.equal(new Set(ids).size, ids.length, 'no message twice in history');
    const inHistory = new Set(ids);
    for (const [id, m] of acked) if (m.channelId === channelId) assert.ok(inHistory.has(id), `acknowledged ${m.nonce} is in history`);
  }
  log(`history holds all ${acked.size} acknowledged messages, each once`);

  for (const c of clients) { c.closing = true; c.socket.close(); }
  for (const child of nodes) child.kill('SIGTERM');
  log('cluster test passed');

  // Whether every one of `who` is listed by GET /api/users/online (through nginx).
  async function everyoneOnline(who) {
    const r = await api(NGINX, 'GET', '/api/users/online', users[0].token);
    if (r.status !== 200) return false;
    const online = new Set(r.body.data.users.map((u) => u.id));
    return who.every((u) => online.has(u.id));
  }

  // Sends through nginx from rotating users while `until` (a promise) runs, or for 3 s:
  // the statuses seen, by code. Acknowledged ones join `acked`.
  async function probeSends(label, window = sleep(3000)) {
    const statuses = {};
    let done = false;
    window.then(() => { done = true; }, () => { done = true; });
    const probes = [];
    for (let k = 0; !done || k < 5; k++) {
      const c = clients[(k * 7) % CLIENTS];
      const nonce = `${c.user.name}-probe-${label.replace(/ /g, '-')}-${k}`;
      probes.push(api(NGINX, 'POST', `/api/channels/${c.channelId}/messages`, c.user.token, { content: `m ${nonce}`, nonce })
        .catch(() => ({ status: 0 }))
        .then((r) => {
          statuses[r.status] = (statuses[r.status] || 0) + 1;
          if (r.status === 201 || r.status === 200) acked.set(r.body.data.message.id, { channelId: c.channelId, nonce });
        }));
      await sleep(200);
    }
    await Promise.all(probes);
    return statuses;
  }

  // Probe rounds (one message per channel) until every client hears its channel's probe:
  // how long after `since` broadcasts reached every node's sockets again.
  async function broadcastsResume(label, since) {
    for (let k = 0; ; k++) {
      const ids = await sendRound(`probe ${label} ${k}`);
      const heard = await until('a probe round', 2000, () => clients.every((c) => c.live.has(ids[channels.indexOf(c.channelId)])), 50)
        .then(() => true, () => false);
      if (heard) return Date.now() - since;
      if (Date.now() - since > 30000) throw new Error(`broadcasts did not reach every socket within 30 s of the ${label}`);
    }
  }

  // One message per channel through nginx, each sent until acknowledged; their ids.
  async function sendRound(label) {
    // Polling clients may have been dropped during an outage and be reconnecting (they
    // catch up with after=); a round is sent once every client is connected and joined.
    await until(`every client connected before the ${label} round`, 30000, () => clients.every((c) => c.joined), 100);
    return Promise.all(channels.map(async (channelId, c) => {
      const nonce = `${users[c].name}-round-${label.replace(/ /g, '-')}`;
      const m = await until(`the ${label} round message in channel ${c} acknowledged`, 30000, async () => {
        const r = await api(NGINX, 'POST', `/api/channels/${channelId}/messages`, users[c].token, { content: `m ${nonce}`, nonce });
        return (r.status === 201 || r.status === 200) ? r.body.data.message : null;
      }, 200);
      acked.set(m.id, { channelId, nonce });
      return m.id;
    }));
  }

  // One message per channel, sent through nginx until acknowledged; every client of the
  // channel hears it live exactly once.
  async function roundHeardByAll(label) {
    const ids = await sendRound(label);
    await until(`every client hearing the ${label} round`, 15000, () => clients.every((c) => c.live.has(ids[channels.indexOf(c.channelId)])), 100);
    for (const c of clients) {
      const id = ids[channels.indexOf(c.channelId)];
      assert.equal(c.live.get(id), 1, `client ${c.j} heard ${label} once`);
    }
  }
}

const fmt = (statuses) => Object.entries(statuses).map(([s, n]) => `${n}× ${s}`).join(', ') || 'none';

const overall = setTimeout(() => { console.error('cluster test: over 5 minutes, giving up'); stopAll(); process.exit(1); }, 300000);
main().then(() => { clearTimeout(overall); stopAll(); process.exit(0); }, (e) => {
  console.error('cluster test FAILED:', e);
  stopAll();
  process.exit(1);
});
