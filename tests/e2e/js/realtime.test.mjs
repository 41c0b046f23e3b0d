// The official JavaScript client against a running server (SERVER_URL): every transport,
// every way of carrying the token, and the whole event set of the contract (API.md §10).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';

const BASE = process.env.SERVER_URL;
assert.ok(BASE, 'SERVER_URL must name the server under test');
let counter = 0;

async function api(method, path, token, body) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${BASE}${path}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
  return { status: res.status, body: await res.json() };
}

async function signup(prefix) {
  const name = `${prefix}${process.pid}x${counter++}`;
  const { status, body } = await api('POST', '/api/auth/signup', null, {
    username: name, email: `${name}@example.com`, password: 'password-e2e',
  });
  assert.equal(status, 201, JSON.stringify(body));
  return { id: body.data.user.id, token: body.data.token, username: name };
}

// Every wait has a deadline: a test fails with what it waited for, never hangs.
const WAIT_MS = 5000;
const TEST = { timeout: 30000 };

function connect(options, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const socket = io(BASE, { forceNew: true, reconnection: false, timeout: ms, ...options });
    const timer = setTimeout(() => { socket.close(); reject(new Error(`not connected within ${ms} ms`)); }, ms);
    socket.once('connect', () => { clearTimeout(timer); resolve(socket); });
    socket.once('connect_error', (err) => { clearTimeout(timer); socket.close(); reject(err); });
  });
}

// The next `event` whose data `accept` takes, within `ms`.
function next(socket, event, ms = WAIT_MS, accept = () => true) {
  return new Promise((resolve, reject) => {
    const handler = (data) => {
      if (!accept(data)) return;
      clearTimeout(timer);
      socket.off(event, handler);
      resolve(data);
    };
    const timer = setTimeout(() => { socket.off(event, handler); reject(new Error(`no ${event} within ${ms} ms`)); }, ms);
    socket.on(event, handler);
  });
}

// Emits and waits for the ack, within `ms`.
function call(socket, event, data, ms = WAIT_MS) {
  return socket.timeout(ms).emitWithAck(event, data);
}

function tokenOptions(how, token) {
  if (how === 'auth') return { auth: { token } };
  if (how === 'header') return { extraHeaders: { Authorization: `Bearer ${token}` } };
  return { extraHeaders: { Cookie: `token=${token}` } };
}

for (const transports of [['websocket'], ['polling'], ['polling', 'websocket']]) {
  for (const how of ['auth', 'header', 'cookie']) {
    test(`${transports.join('→')}, token in the ${how}: join, send with ack, receive, type, edit, delete`, TEST, async () => {
      const a = await signup('jsa');
      const b = await signup('jsb');
      const created = await api('POST', '/api/channels', a.token, { name: `js-${a.username}`.toLowerCase() });
      const channelId = created.body.data.channel.id;
      assert.equal((await api('POST', `/api/channels/${channelId}/join`, b.token)).status, 200);

      const sa = await connect({ transports, ...tokenOptions(how, a.token) });
      const sb = await connect({ transports: ['websocket'], auth: { token: b.token } });
      try {
        if (transports.length === 2) {
          if (sa.io.engine.transport.name !== 'websocket') await next(sa.io.engine, 'upgrade');
          assert.equal(sa.io.engine.transport.name, 'websocket');
        }
        for (const s of [sa, sb]) {
          const joined = next(s, 'channel:joined');
          const ack = await call(s, 'join-channel', { channelId });
          assert.deepEqual(ack, { success: true, data: { channelId } });
          assert.deepEqual(await joined, { channelId });
        }
        const received = next(sb, 'new-message');
        const own = next(sa, 'new-message');
        const ack = await call(sa, 'send-message', { channelId, content: '  hello from js  ', nonce: 'n1' });
        assert.equal(ack.success, true, JSON.stringify(ack));
        assert.equal(ack.data.message.content, 'hello from js');
        assert.equal((await received).id, ack.data.message.id);
        assert.equal((await own).id, ack.data.message.id);

        const typing = next(sb, 'user-typing');
        assert.equal((await call(sa, 'typing-start', { channelId })).success, true);
        const t = await typing;
        assert.equal(t.channelId, channelId);
        assert.equal(t.user.id, a.id);
        const stopped = next(sb, 'user-stopped-typing');
        await call(sa, 'typing-stop', { channelId });
        assert.equal((await stopped).user.id, a.id);

        const edited = next(sb, 'message-edited');
        const e = await call(sa, 'edit-message', { messageId: ack.data.message.id, content: 'edited' });
        assert.equal(e.data.message.content, 'edited');
        assert.equal((await edited).content, 'edited');
        const deleted = next(sb, 'message-deleted');
        const d = await call(sa, 'delete-message', { messageId: ack.data.message.id });
        assert.deepEqual(d.data, { messageId: ack.data.message.id, channelId });
        assert.deepEqual(await deleted, { messageId: ack.data.message.id, channelId, tombstone: false });
      } finally {
        sa.close();
        sb.close();
      }
    });
  }
}

test('a bad or missing token fails the connection with the contract code', TEST, async () => {
  await assert.rejects(connect({ transports: ['websocket'] }), { message: 'AUTH_REQUIRED' });
  await assert.rejects(connect({ transports: ['polling'], auth: { token: 'nope' } }), { message: 'INVALID_TOKEN' });
});

test('presence: the first socket of a user says online, the last one gone says offline', TEST, async () => {
  const watcher = await signup('jsw');
  const user = await signup('jsu');
  const w = await connect({ transports: ['websocket'], auth: { token: watcher.token } });
  try {
    const online = next(w, 'user:online', WAIT_MS, (p) => p.userId === user.id);
    const s = await connect({ transports: ['polling'], auth: { token: user.token } });
    assert.deepEqual(await online, { userId: user.id });
    const offline = next(w, 'user:offline', WAIT_MS, (p) => p.userId === user.id);
    s.close();
    const gone = await offline;
    assert.ok(typeof gone.lastSeen === 'string' && gone.lastSeen.endsWith('Z'));
  } finally {
    w.close();
  }
});

test('without an ack, a refused event answers with an error event', TEST, async () => {
  const u = await signup('jse');
  const s = await connect({ transports: ['websocket'], auth: { token: u.token } });
  try {
    const err = next(s, 'error');
    s.emit('send-message', { content: 'no channel' });
    assert.equal((await err).code, 'VALIDATION_ERROR');
  } finally {
    s.close();
  }
});

test('a message with an attachment arrives in new-message with its file object, and the file downloads', TEST, async () => {
  const a = await signup('jsf');
  const b = await signup('jsg');
  const created = await api('POST', '/api/channels', a.token, { name: `jsfiles-${a.username}`.toLowerCase() });
  const channelId = created.body.data.channel.id;
  assert.equal((await api('POST', `/api/channels/${channelId}/join`, b.token)).status, 200);

  // The part claims an image; the bytes say text, and the server believes the bytes.
  const form = new FormData();
  form.append('file', new Blob(['notes from the js client\n'], { type: 'image/png' }), 'notes.txt');
  const res = await fetch(`${BASE}/api/upload`, { method: 'POST', headers: { authorization: `Bearer ${a.token}` }, body: form });
  const uploaded = await res.json();
  assert.equal(res.status, 201, JSON.stringify(uploaded));
  const file = uploaded.data.file;
  assert.equal(file.fileType, 'text/plain');
  assert.equal(file.fileName, 'notes.txt');

  const sa = await connect({ transports: ['websocket'], auth: { token: a.token } });
  const sb = await connect({ transports: ['polling'], auth: { token: b.token } });
  try {
    for (const s of [sa, sb]) assert.equal((await call(s, 'join-channel', { channelId })).success, true);
    const received = next(sb, 'new-message');
    const ack = await call(sa, 'send-message', { channelId, content: 'see attached', attachments: [file.key] });
    assert.equal(ack.success, true, JSON.stringify(ack));
    assert.deepEqual(ack.data.message.attachments, [file]);
    const message = await received;
    assert.deepEqual(message.attachments, [file]);
    const download = await fetch(`${BASE}${message.attachments[0].fileUrl}`, { headers: { authorization: `Bearer ${b.token}` } });
    assert.equal(download.status, 200);
    assert.equal(download.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(await download.text(), 'notes from the js client\n');
  } finally {
    sa.close();
    sb.close();
  }
});

test('a conversation: a DM opened live, a mention, a thread reply with its thread-updated, a reaction', TEST, async () => {
  const a = await signup('jsc');
  const b = await signup('jsd');
  const sa = await connect({ transports: ['websocket'], auth: { token: a.token } });
  const sb = await connect({ transports: ['polling', 'websocket'], auth: { token: b.token } });
  try {
    const openedA = next(sa, 'dm:opened');
    const openedB = next(sb, 'dm:opened');
    const dm = await api('POST', '/api/dms', a.token, { userIds: [b.id] });
    assert.equal(dm.status, 201, JSON.stringify(dm.body));
    const dmId = dm.body.data.dm.id;
    assert.equal((await openedA).dm.id, dmId);
    assert.equal((await openedB).dm.id, dmId);

    // No join-channel: both are in the conversation's room already.
    const mention = next(sb, 'mention');
    const rootSeen = next(sb, 'new-message');
    const sent = await call(sa, 'send-message', { channelId: dmId, content: `@${b.username} lunch?` });
    assert.equal(sent.success, true, JSON.stringify(sent));
    const root = sent.data.message;
    assert.deepEqual(root.mentions, [b.id]);
    assert.equal((await rootSeen).id, root.id);
    assert.equal((await mention).message.id, root.id);

    const replySeen = next(sa, 'new-message', WAIT_MS, (m) => m.parentId === root.id);
    const updated = next(sa, 'thread-updated');
    const replied = await call(sb, 'send-message', { channelId: dmId, content: 'yes', parentId: root.id });
    assert.equal(replied.success, true, JSON.stringify(replied));
    assert.equal((await replySeen).id, replied.data.message.id);
    assert.deepEqual(await updated, {
      messageId: root.id, channelId: dmId, replyCount: 1,
      lastReplyAt: replied.data.message.createdAt, participants: [b.id],
    });

    const reacted = next(sb, 'reaction-added');
    const put = await api('PUT', `/api/messages/${root.id}/reactions/${encodeURIComponent('👍')}`, a.token);
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual(put.body.data.message.reactions, [{ emoji: '👍', count: 1, userIds: [a.id], me: true }]);
    assert.deepEqual(await reacted, { messageId: root.id, channelId: dmId, emoji: '👍', userId: a.id });

    const thread = await api('GET', `/api/messages/${root.id}/thread`, b.token);
    assert.equal(thread.status, 200);
    assert.equal(thread.body.data.root.replyCount, 1);
    assert.deepEqual(thread.body.data.messages.map((m) => m.content), ['yes']);
  } finally {
    sa.close();
    sb.close();
  }
});

test('read markers: two devices of one user, marked read on one socket, channel:read on the other', TEST, async () => {
  const a = await signup('jse');
  const b = await signup('jsf');
  const created = await api('POST', '/api/channels', a.token, { name: `reads-${process.pid}x${counter++}` });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const channelId = created.body.data.channel.id;
  assert.equal((await api('POST', `/api/channels/${channelId}/join`, b.token)).status, 200);
  const first = await api('POST', `/api/channels/${channelId}/messages`, a.token, { content: 'first' });
  const second = await api('POST', `/api/channels/${channelId}/messages`, a.token, { content: `@${b.username} second` });
  assert.equal(second.status, 201, JSON.stringify(second.body));
  const phone = await connect({ transports: ['websocket'], auth: { token: b.token } });
  const laptop = await connect({ transports: ['polling', 'websocket'], auth: { token: b.token } });
  try {
    const joined = await api('GET', '/api/channels?joined=true', b.token);
    const entry = joined.body.data.channels.find((c) => c.id === channelId);
    assert.deepEqual([entry.unreadCount, entry.mentionCount], [2, 1]);

    const heard = next(laptop, 'channel:read');
    const marked = await call(phone, 'mark-read', { channelId, messageId: first.body.data.message.id });
    assert.equal(marked.success, true, JSON.stringify(marked));
    const expected = {
      channelId, isDm: false, lastReadId: first.body.data.message.id, unreadCount: 1, mentionCount: 1,
    };
    assert.deepEqual(marked.data, expected);
    assert.deepEqual(await heard, expected);

    const all = next(laptop, 'channel:read');
    const read = await call(phone, 'mark-read', { channelId });
    assert.equal(read.success, true, JSON.stringify(read));
    assert.deepEqual(await all, { ...expected, lastReadId: second.body.data.message.id, unreadCount: 0, mentionCount: 0 });
    const unreads = await api('GET', '/api/unreads', b.token);
    assert.deepEqual([unreads.body.data.unreadCount, unreads.body.data.channels], [0, []]);

    const bad = await call(phone, 'mark-read', { channelId, messageId: 'nope' });
    assert.equal(bad.success, false);
    assert.equal(bad.error.code, 'VALIDATION_ERROR');
  } finally {
    phone.close();
    laptop.close();
  }
});
