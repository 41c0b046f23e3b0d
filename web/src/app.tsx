import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Socket } from 'socket.io-client';
import { api, ApiError, dmAsChannel, saveToken, savedToken, type Channel, type Dm, type Match, type Message, type ReadCounts, type SearchResult, type User } from './api';
import { call, connect } from './live';
import { Composer, errorText, merge, MessageItem, useLive } from './messages';
import { ThreadPanel } from './thread';

type Session = { user: User; token: string };

/** The channel a path names: `/c/<id>`. */
function channelInPath(): string | null {
  const match = /^\/c\/([0-9a-f-]{36})$/.exec(location.pathname);
  return match ? match[1] : null;
}

export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [checking, setChecking] = useState(() => savedToken() !== null);
  const [unreachable, setUnreachable] = useState(false);

  // A saved token is checked first; while the server cannot answer, the page keeps asking
  // (a person with a session is not shown the sign-up screen because of an outage).
  useEffect(() => {
    const token = savedToken();
    if (!token) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const check = () =>
      api
        .me()
        .then(({ user }) => {
          setSession({ user, token });
          setChecking(false);
        })
        .catch((e) => {
          if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
            saveToken(null);
            setChecking(false);
            return;
          }
          setUnreachable(true);
          timer = setTimeout(check, 2000);
        });
    void check();
    return () => clearTimeout(timer);
  }, []);

  const signedIn = useCallback((s: Session) => {
    saveToken(s.token);
    setSession(s);
  }, []);
  const signedOut = useCallback(() => {
    saveToken(null);
    setSession(null);
    history.replaceState(null, '', '/');
  }, []);

  if (checking) {
    return (
      <p class="splash" role="status">
        {unreachable ? 'The server cannot be reached; trying again…' : 'Loading…'}
      </p>
    );
  }
  if (!session) return <AuthScreen onSession={signedIn} />;
  return <ChatScreen session={session} onSignOut={signedOut} />;
}

function AuthScreen({ onSession }: { onSession: (s: Session) => void }) {
  const [mode, setMode] = useState<'login' | 'signup'>('signup');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    const field = (name: string) => String(form.get(name) ?? '');
    setBusy(true);
    setError(null);
    try {
      const s =
        mode === 'signup'
          ? await api.signup(field('username'), field('email'), field('password'))
          : await api.login(field('login'), field('password'));
      onSession({ user: s.user, token: s.token });
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="auth">
      <h1>Chai Tapri</h1>
      <div role="tablist" aria-label="Sign up or log in" class="tabs">
        <button role="tab" aria-selected={mode === 'signup'} onClick={() => setMode('signup')}>
          Sign up
        </button>
        <button role="tab" aria-selected={mode === 'login'} onClick={() => setMode('login')}>
          Log in
        </button>
      </div>
      <form onSubmit={submit} aria-label={mode === 'signup' ? 'Sign up' : 'Log in'}>
        {mode === 'signup' ? (
          <>
            <label>
              Username
              <input name="username" autocomplete="username" required minLength={3} maxLength={30} />
            </label>
            <label>
              Email
              <input name="email" type="email" autocomplete="email" required />
            </label>
          </>
        ) : (
          <label>
            Username or email
            <input name="login" autocomplete="username" required />
          </label>
        )}
        <label>
          Password
          <input
            name="password"
            type="password"
            autocomplete={mode === 'signup' ? 'new-password' : 'current-password'}
            required
            minLength={8}
          />
        </label>
        {error && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {mode === 'signup' ? 'Create account' : 'Log in'}
        </button>
      </form>
    </main>
  );
}

type Typist = { id: string; name: string };

/** Messages a channel's list holds at most, and the size of a page it loads. */
const WINDOW = 300;
const PAGE = 50;
/** For a list that no new message joins. */
const noneJoin = () => false;

/** `c` with the marker and counts the server answered. */
const withCounts = (c: Channel, counts: ReadCounts): Channel => ({
  ...c,
  lastReadId: counts.lastReadId,
  unreadCount: counts.unreadCount,
  mentionCount: counts.mentionCount,
});

function ChatScreen({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const me = session.user;
  const [channels, setChannels] = useState<Channel[]>([]);
  const channelsRef = useRef(channels);
  channelsRef.current = channels;
  const [current, setCurrent] = useState<string | null>(channelInPath);
  const [online, setOnline] = useState<Set<string>>(new Set());
  const [connected, setConnected] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const socketRef = useRef<Socket | null>(null);
  const [socket, setSocket] = useState<Socket | null>(null);
  const [epoch, setEpoch] = useState(0);

  // The caller's channels and direct conversations, with their unread counts. A socket is in
  // its DMs' rooms from the handshake; channels' rooms are joined here.
  // Answers the channels (not DMs), or null when the list could not be read.
  const refreshChannels = useCallback(
    async (joinRooms = true): Promise<Channel[] | null> => {
      try {
        const [{ channels }, { dms }] = await Promise.all([api.joined(), api.dms()]);
        const list = [...channels, ...dms.map((dm) => dmAsChannel(dm, me.id))];
        setChannels(list);
        if (joinRooms) for (const c of channels) socketRef.current?.emit('join-channel', { channelId: c.id });
        return channels;
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) onSignOut();
        else setNotice(errorText(e));
        return null;
      }
    },
    [onSignOut, me.id],
  );

  // A conversation's marker and counts, as a mark answered or `channel:read` told.
  const markedRead = useCallback((channelId: string, counts: ReadCounts) => {
    setChannels((list) => list.map((c) => (c.id === channelId ? withCounts(c, counts) : c)));
  }, []);

  // Who is online now; `user:online` / `user:offline` keep it current from there.
  const refreshOnline = useCallback(async () => {
    try {
      const { users } = await api.online();
      setOnline(new Set(users.map((u) => u.id)));
    } catch {
      // Presence is a nicety: the next connect asks again.
    }
  }, []);

  // One socket for the session; every (re)connect resubscribes and catches up.
  useEffect(() => {
    const s = connect(session.token);
    socketRef.current = s;
    setSocket(s);
    s.on('connect', async () => {
      setConnected(true);
      setNotice(null);
      // The list of channels (on the first connect it has not been read yet), then back in
      // their rooms, acknowledged, before catching up: a message committed after the
      // catch-up's read then arrives live.
      const known = (await refreshChannels(false)) ?? channelsRef.current.filter((c) => !c.isDm);
      await Promise.allSettled(known.map((c) => call(s, 'join-channel', { channelId: c.id })));
      setEpoch((n) => n + 1);
      void refreshOnline();
    });
    let retry: ReturnType<typeof setTimeout> | undefined;
    const later = () => {
      clearTimeout(retry);
      retry = setTimeout(() => s.connect(), 1000);
    };
    s.on('disconnect', (reason: string) => {
      setConnected(false);
      // The server closed the socket (its token was revoked, by a logout elsewhere): the
      // client does not reconnect by itself. Signed out if the token is refused, else again.
      if (reason === 'io server disconnect') {
        api.me().then(later, (e) => (e instanceof ApiError && e.status === 401 ? onSignOut() : later()));
      }
    });
    s.on('connect_error', (err: Error) => {
      setConnected(false);
      if (err.message === 'INVALID_TOKEN' || err.message === 'TOKEN_EXPIRED') {
        onSignOut();
        return;
      }
      // A refusal the client does not retry by itself (the server could not check the
      // token): try again shortly.
      if (!s.active) later();
    });
    s.on('user:online', ({ userId }: { userId: string }) =>
      setOnline((set) => new Set(set).add(userId)),
    );
    s.on('user:offline', ({ userId }: { userId: string }) =>
      setOnline((set) => {
        const next = new Set(set);
        next.delete(userId);
        return next;
      }),
    );
    s.on('channel:read', (read: ReadCounts & { channelId: string }) => markedRead(read.channelId, read));
    s.on('channel:left', ({ channelId }: { channelId: string }) => {
      setChannels((list) => list.filter((c) => c.id !== channelId));
    });
    s.on('channel:added', () => void refreshChannels());
    s.on('dm:opened', ({ dm }: { dm: Dm }) =>
      setChannels((list) => (list.some((c) => c.id === dm.id) ? list : [...list, dmAsChannel(dm, me.id)])),
    );
    s.on('mention', ({ message }: { message: Message }) => notify.current(message));
    return () => {
      clearTimeout(retry);
      s.removeAllListeners();
      s.disconnect();
      socketRef.current = null;
    };
  }, [session.token, refreshChannels, refreshOnline, markedRead, onSignOut, me.id]);

  // Unread badges of the channels not open.
  useEffect(() => {
    if (!socket) return;
    const onMessage = (m: Message) => {
      if (m.parentId || m.sender.id === me.id || m.channelId === current) return;
      const mentioned = m.mentionsChannel || (m.mentions ?? []).includes(me.id);
      setChannels((list) =>
        list.map((c) =>
          c.id === m.channelId
            ? {
                ...c,
                unreadCount: Math.min(1000, (c.unreadCount ?? 0) + 1),
                mentionCount: Math.min(1000, (c.mentionCount ?? 0) + (mentioned ? 1 : 0)),
              }
            : c,
        ),
      );
    };
    socket.on('new-message', onMessage);
    return () => void socket.off('new-message', onMessage);
  }, [socket, current, me.id]);

  useEffect(() => {
    if (!socket) return;
    // A message deleted after a conversation's marker may have been counted (the event does
    // not say whether it was a reply or one's own): the counts are read again, once for all
    // the deletions of half a second.
    let recount: ReturnType<typeof setTimeout> | null = null;
    const onDeleted = ({ channelId, messageId }: { channelId: string; messageId: string }) => {
      const c = channelsRef.current.find((x) => x.id === channelId);
      if (!c?.unreadCount || (c.lastReadId && messageId <= c.lastReadId)) return;
      recount ??= setTimeout(() => {
        recount = null;
        api.unreads().then(({ channels: unread }) => {
          const counts = new Map(unread.map((u) => [u.channelId, u]));
          setChannels((list) =>
            list.map((x) => {
              const u = counts.get(x.id);
              if (u) return withCounts(x, u);
              return x.unreadCount || x.mentionCount ? { ...x, unreadCount: 0, mentionCount: 0 } : x;
            }),
          );
        }, () => {});
      }, 500);
    };
    socket.on('message-deleted', onDeleted);
    return () => {
      if (recount) clearTimeout(recount);
      socket.off('message-deleted', onDeleted);
    };
  }, [socket]);

  useEffect(() => {
    const onPop = () => setCurrent(channelInPath());
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, []);

  // Alt+↑ and Alt+↓ move to the previous and next conversation of the sidebar.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!e.altKey || (e.key !== 'ArrowUp' && e.key !== 'ArrowDown')) return;
      const links = [...document.querySelectorAll<HTMLAnchorElement>('.sidebar .channels a')];
      const at = links.findIndex((a) => a.getAttribute('aria-current') === 'page');
      const next = links[e.key === 'ArrowUp' ? at - 1 : at + 1] ?? links[e.key === 'ArrowUp' ? links.length - 1 : 0];
      if (next) {
        e.preventDefault();
        next.click();
      }
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, []);

  const open = useCallback((id: string) => {
    history.pushState(null, '', `/c/${id}`);
    setCurrent(id);
  }, []);

  const joined = useCallback(
    (c: Channel) => {
      if (!c.isDm) socketRef.current?.emit('join-channel', { channelId: c.id });
      void refreshOnline();
      setChannels((list) => (list.some((x) => x.id === c.id) ? list : [...list, c].sort((a, b) => a.name.localeCompare(b.name))));
      open(c.id);
    },
    [open, refreshOnline],
  );

  // A desktop notification for a mention, once the person has allowed them, unless they
  // are looking at that conversation. It is shown through the page's service worker
  // (/sw.js): browsers on phones show notifications no other way, and a click on one brings
  // the app forward at the conversation.
  const worker = useRef<Promise<ServiceWorkerRegistration | null> | null>(null);
  const registration = useCallback(() => {
    if (!('serviceWorker' in navigator)) return Promise.resolve(null);
    worker.current ??= navigator.serviceWorker
      .register('/sw.js')
      .then(() => navigator.serviceWorker.ready)
      .catch(() => null);
    return worker.current;
  }, []);
  const notify = useRef((_: Message) => {});
  notify.current = (message: Message) => {
    if (!('Notification' in window) || Notification.permission !== 'granted') return;
    if (document.visibilityState === 'visible' && message.channelId === current) return;
    const title = `${message.sender.displayName} mentioned you`;
    const options = { body: message.content.slice(0, 200), tag: message.id, data: { channelId: message.channelId } };
    void registration()
      .then((sw) => {
        if (sw) return sw.showNotification(title, options);
        const shown = new Notification(title, options);
        shown.onclick = () => {
          window.focus();
          open(message.channelId);
        };
      })
      .catch(() => {
        // A notification the browser refuses is not worth an error on the page.
      });
  };
  const [permission, setPermission] = useState(() => ('Notification' in window ? Notification.permission : 'denied'));
  const askPermission = async () => setPermission(await Notification.requestPermission());
  useEffect(() => {
    if (permission === 'granted') void registration();
  }, [permission, registration]);
  // A click on a notification: the service worker names the conversation to open.
  useEffect(() => {
    if (!('serviceWorker' in navigator)) return;
    const onMessage = (e: MessageEvent) => {
      if (e.data?.type === 'open-channel' && typeof e.data.channelId === 'string') open(e.data.channelId);
    };
    navigator.serviceWorker.addEventListener('message', onMessage);
    navigator.serviceWorker.startMessages();
    return () => navigator.serviceWorker.removeEventListener('message', onMessage);
  }, [open]);

  const signOut = async () => {
    try {
      await api.logout();
    } catch {
      // Signed out here whatever the server said.
    }
    onSignOut();
  };

  const channel = channels.find((c) => c.id === current) ?? null;

  return (
    <div class="chat">
      <nav class="sidebar" aria-label="Channels">
        <header>
          <strong>Chai Tapri</strong>
          <span class={connected ? 'status on' : 'status'} role="status">
            {connected ? 'Connected' : 'Reconnecting…'}
          </span>
        </header>
        <p class="me">
          Signed in as <strong>{me.displayName}</strong>{' '}
          <button class="link" onClick={signOut}>
            Log out
          </button>
        </p>
        {permission === 'default' && (
          <button class="link" onClick={askPermission}>
            Notify me of mentions
          </button>
        )}
        <SearchBox onOpen={open} />
        <h2 id="joined-heading">Your channels</h2>
        <ConvoList
          list={channels.filter((c) => !c.isDm).sort((a, b) => Number(Boolean(b.isStarred)) - Number(Boolean(a.isStarred)))}
          current={current}
          open={open}
          labelledBy="joined-heading"
        />
        <NewChannel onCreated={joined} />
        <Browse onJoined={joined} onOpen={open} known={channels} />
        <h2 id="dms-heading">Direct messages</h2>
        <ConvoList list={channels.filter((c) => c.isDm)} current={current} open={open} labelledBy="dms-heading" />
        <NewDm myId={me.id} onOpened={joined} />
      </nav>
      <main class="room">
        {notice && (
          <p role="alert" class="error">
            {notice}
          </p>
        )}
        {current && socket ? (
          <Room
            key={current}
            id={current}
            channel={channel}
            me={me}
            socket={socket}
            online={online}
            epoch={epoch}
            onJoined={joined}
            onRead={markedRead}
            onChanged={(c) => setChannels((list) => list.map((x) => (x.id === c.id ? { ...x, ...c } : x)))}
            onLeft={(left) => {
              setChannels((list) => list.filter((x) => x.id !== left));
              history.pushState(null, '', '/');
              setCurrent(null);
            }}
          />
        ) : (
          <section class="empty">
            <h1>Welcome, {me.displayName}</h1>
            <p>Pick a channel, create one, or join one from the list.</p>
          </section>
        )}
      </main>
    </div>
  );
}

function ConvoList({
  list,
  current,
  open,
  labelledBy,
}: {
  list: Channel[];
  current: string | null;
  open: (id: string) => void;
  labelledBy: string;
}) {
  return (
    <ul aria-labelledby={labelledBy} class="channels">
      {list.map((c) => (
        <li key={c.id}>
          <a
            href={`/c/${c.id}`}
            aria-current={c.id === current ? 'page' : undefined}
            onClick={(e) => {
              e.preventDefault();
              open(c.id);
            }}
          >
            <span class="name">
              {c.isDm ? '@' : '#'} {c.name}
              {c.isStarred && <span role="img" aria-label="starred"> ★</span>}
            </span>
            {(c.unreadCount ?? 0) > 0 && c.id !== current && (
              <span class="badge" role="img" aria-label={c.unreadCount! >= 1000 ? '1000 or more unread' : `${c.unreadCount} unread`}>
                {c.unreadCount! >= 1000 ? '1000+' : c.unreadCount}
              </span>
            )}
            {(c.mentionCount ?? 0) > 0 && c.id !== current && (
              <span class="badge mention" role="img" aria-label={c.mentionCount === 1 ? '1 mention' : `${c.mentionCount} mentions`}>
                @{c.mentionCount}
              </span>
            )}
          </a>
        </li>
      ))}
    </ul>
  );
}

function NewDm({ myId, onOpened }: { myId: string; onOpened: (c: Channel) => void }) {
  const [found, setFound] = useState<User[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const search = async (e: Event) => {
    e.preventDefault();
    const q = String(new FormData(e.currentTarget as HTMLFormElement).get('who') ?? '').trim();
    setError(null);
    try {
      setFound((await api.users(q)).users.filter((u) => u.id !== myId));
    } catch (err) {
      setError(errorText(err));
    }
  };
  const openWith = async (user: User) => {
    try {
      const { dm } = await api.openDm([user.id]);
      setFound(null);
      onOpened(dmAsChannel(dm, myId));
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <section class="new-dm">
      <form onSubmit={search} aria-label="Find someone to message">
        <label>
          Message someone
          <input name="who" placeholder="username" maxLength={30} />
        </label>
        <button type="submit">Find</button>
      </form>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {found && found.length === 0 && <p>Nobody by that name.</p>}
      {found && found.length > 0 && (
        <ul>
          {found.map((u) => (
            <li key={u.id}>
              {u.displayName} <span class="muted">@{u.username}</span>{' '}
              <button onClick={() => openWith(u)} aria-label={`Message ${u.username}`}>
                Message
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/** `text` with the ranges of `matches` (UTF-16 offsets, as JavaScript strings count) marked. */
function highlighted(text: string, matches: Match[]) {
  const parts = [];
  let at = 0;
  for (const { start, end } of matches) {
    if (start > at) parts.push(text.slice(at, start));
    parts.push(<mark>{text.slice(start, end)}</mark>);
    at = end;
  }
  parts.push(text.slice(at));
  return parts;
}

function SearchBox({ onOpen }: { onOpen: (id: string) => void }) {
  const [results, setResults] = useState<SearchResult[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const search = async (e: Event) => {
    e.preventDefault();
    const q = String(new FormData(e.currentTarget as HTMLFormElement).get('q') ?? '').trim();
    if (!q) return;
    setError(null);
    try {
      setResults((await api.search(q)).results);
    } catch (err) {
      setResults(null);
      setError(errorText(err));
    }
  };
  return (
    <section class="search" aria-label="Message search">
      <form role="search" onSubmit={search}>
        <label>
          Search messages
          <input name="q" type="search" maxLength={500} placeholder='words, "a phrase", from:name' />
        </label>
      </form>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {results && (
        <div class="results">
          <p role="status">
            {results.length === 0 ? 'Nothing found.' : `${results.length} result${results.length === 1 ? '' : 's'}`}{' '}
            <button class="link" onClick={() => setResults(null)}>
              Clear
            </button>
          </p>
          <ul>
            {results.map((r) => (
              <li key={r.message.id}>
                <a
                  href={`/c/${r.channel.id}`}
                  onClick={(e) => {
                    e.preventDefault();
                    onOpen(r.channel.id);
                  }}
                >
                  <span class="muted">
                    {r.channel.isDm ? 'direct message' : `# ${r.channel.name}`} · {r.message.sender.displayName}
                  </span>
                  <span class="hit">{highlighted(r.message.content, r.matches)}</span>
                </a>
              </li>
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}

function NewChannel({ onCreated }: { onCreated: (c: Channel) => void }) {
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    setError(null);
    try {
      const { channel } = await api.createChannel(String(data.get('name') ?? ''), data.get('private') === 'on');
      form.reset();
      onCreated(channel);
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <form class="new-channel" onSubmit={submit} aria-label="Create a channel">
      <label>
        New channel
        <input name="name" required minLength={2} maxLength={50} placeholder="release-notes" />
      </label>
      <label class="inline">
        <input type="checkbox" name="private" /> Private
      </label>
      <button type="submit">Create</button>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
    </form>
  );
}

interface BrowseProps {
  onJoined: (c: Channel) => void;
  onOpen: (id: string) => void;
  known: Channel[];
}

function Browse({ onJoined, onOpen, known }: BrowseProps) {
  const [list, setList] = useState<Channel[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = async () => {
    try {
      setList((await api.browse()).channels);
    } catch (e) {
      setError(errorText(e));
    }
  };
  const join = async (id: string) => {
    try {
      const { channel } = await api.join(id);
      setList((l) => l?.filter((c) => c.id !== id) ?? null);
      onJoined(channel);
    } catch (e) {
      setError(errorText(e));
    }
  };
  const others = list?.filter((c) => !known.some((k) => k.id === c.id)) ?? null;
  return (
    <section class="browse" aria-labelledby="browse-heading">
      <h2 id="browse-heading">Other channels</h2>
      <button onClick={load}>{list ? 'Refresh' : 'Browse channels'}</button>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {others && others.length === 0 && <p>No other public channels.</p>}
      {others && others.length > 0 && (
        <ul>
          {others.map((c) => (
            <li key={c.id}>
              <a
                href={`/c/${c.id}`}
                onClick={(e) => {
                  e.preventDefault();
                  onOpen(c.id);
                }}
              >
                # {c.name}
              </a>{' '}
              <button onClick={() => join(c.id)} aria-label={`Join ${c.name}`}>
                Join
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

interface RoomProps {
  onLeft: (id: string) => void;
  onChanged: (c: Channel) => void;
  id: string;
  channel: Channel | null;
  me: User;
  socket: Socket;
  online: Set<string>;
  epoch: number;
  onJoined: (c: Channel) => void;
  onRead: (id: string, counts: ReadCounts) => void;
}

function Room({ id, channel, me, socket, online, epoch, onJoined, onRead, onLeft, onChanged }: RoomProps) {
  const [messages, setMessages] = useState<Message[]>([]);
  const [olderLeft, setOlderLeft] = useState(false);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [typists, setTypists] = useState<Typist[]>([]);
  const [info, setInfo] = useState<Channel | null>(channel);
  const [atBottom, setAtBottom] = useState(true);
  // The list holds a window of at most WINDOW messages: scrolling up loads older pages and
  // drops the newest beyond it (`newerLeft`), scrolling back down loads them again.
  const [newerLeft, setNewerLeft] = useState(false);
  const newerLeftRef = useRef(false);
  newerLeftRef.current = newerLeft;
  const list = useRef<HTMLDivElement>(null);
  const anchor = useRef<{ id: string; top: number } | null>(null);
  const shown = useRef<Message[]>([]);
  shown.current = messages;
  // When each live message arrived, and when the socket last dropped: on many nodes live
  // events may arrive out of id order, so a catch-up reads after the newest id that was
  // already held 10 s before the drop (docs/api.md, "Slow readers"), not the newest of all.
  const arrived = useRef(new Map<string, number>());
  const droppedAt = useRef<number | null>(null);
  useEffect(() => {
    const dropped = () => {
      droppedAt.current = Date.now();
    };
    socket.on('disconnect', dropped);
    return () => void socket.off('disconnect', dropped);
  }, [socket]);
  const safeAfter = () => {
    const cutoff = (droppedAt.current ?? Date.now()) - 10_000;
    for (let i = shown.current.length - 1; i >= 0; i--) {
      const at = arrived.current.get(shown.current[i].id);
      if (at === undefined || at <= cutoff) return shown.current[i].id;
    }
    // Every message held arrived in those 10 s: from the oldest held (none: nothing to
    // catch up from, the newest page is all).
    return shown.current[0]?.id ?? null;
  };

  // The channel itself (also when opened by a deep link before the list arrives).
  useEffect(() => {
    if (channel) {
      setInfo(channel);
      return;
    }
    // A deep link names a channel or a direct conversation: the channel routes answer 404
    // for a DM's id.
    api
      .channel(id)
      .then(({ channel }) => setInfo(channel))
      .catch(async (e) => {
        if (!(e instanceof ApiError && e.status === 404)) throw e;
        const { dm } = await api.dm(id);
        setInfo(dmAsChannel(dm, me.id));
      })
      .catch((e) => setError(errorText(e)));
  }, [id, channel, me.id]);

  /** Reads every message after `after`, a page at a time, handing each page to `take`. */
  const readAfter = useCallback(
    async (after: string, take: (more: Message[]) => void) => {
      for (;;) {
        const page = await api.messages(id, { after });
        take(page.messages);
        if (!page.pagination.hasMore || page.messages.length === 0) return;
        after = page.messages[page.messages.length - 1].id;
      }
    },
    [id],
  );

  // A public channel looked at without joining it: this socket follows its room while it is
  // open (again after a reconnect), and catches up on what came before the room was joined.
  const memberRef = useRef(false);
  memberRef.current = Boolean(info?.isMember);
  useEffect(() => {
    if (!info || info.isMember || info.isDm || !socket.connected) return;
    let stop = false;
    call(socket, 'join-channel', { channelId: id })
      .then(() => {
        const after = safeAfter();
        if (stop || after === null || newerLeftRef.current) return;
        return readAfter(after, (more) => {
          if (!stop) setMessages((list) => merge(list, more));
        });
      })
      .catch(() => {});
    return () => {
      stop = true;
      // Joined meanwhile: the room is the member's now.
      if (!memberRef.current) socket.emit('leave-channel', { channelId: id });
    };
  }, [socket, id, info?.isMember, info?.isDm, epoch, readAfter]);

  const pagedOnce = useRef(false);
  // The newest page, on opening and again after every reconnect (`epoch`), and, when it does
  // not reach back that far, everything after the newest held 10 s before the drop.
  useEffect(() => {
    let stop = false;
    const load = async () => {
      try {
        if (newerLeftRef.current) {
          // Looking at the past: the newer pages load when scrolled to.
        } else {
          // The newest page, over the copies held: after a reconnect, what changed meanwhile
          // in what is in view (edits, reactions, replies) shows, and a message held before
          // this read — so committed before it — that is missing from the range read was
          // deleted meanwhile. One deleted while the read is on its way is not brought back
          // by it; one sent or heard meanwhile stays, and so does one changed meanwhile.
          // When the page does not reach back to the newest held 10 s before a drop
          // (`safeAfter`), the range read is everything after that, with `after=`.
          const after = safeAfter();
          const held = new Set(shown.current.map((m) => m.id));
          const gone = new Set<string>();
          const touched = new Set<string>();
          const onGone = (d: { messageId: string; tombstone?: boolean }) =>
            void (d.tombstone ? touched : gone).add(d.messageId);
          const onTouched = (x: { id?: string; messageId?: string }) => void touched.add(x.messageId ?? x.id ?? '');
          const changes = ['message-edited', 'reaction-added', 'reaction-removed', 'thread-updated'];
          socket.on('message-deleted', onGone);
          for (const event of changes) socket.on(event, onTouched);
          let read: Message[];
          let inRange: (messageId: string) => boolean;
          let olderThanPage: boolean;
          try {
            const page = await api.messages(id);
            read = page.messages;
            olderThanPage = page.pagination.hasMore;
            const first = olderThanPage ? page.messages[0]?.id : undefined;
            inRange = (m) => first === undefined || m >= first;
            if (after !== null && first !== undefined && after < first && !stop) {
              const more: Message[] = [];
              await readAfter(after, (p) => more.push(...p));
              read = merge(more, read);
              inRange = (m) => m > after;
            }
          } finally {
            socket.off('message-deleted', onGone);
            for (const event of changes) socket.off(event, onTouched);
          }
          if (stop) return;
          const newest = read.filter((m) => !gone.has(m.id));
          const fresh = new Set(newest.map((m) => m.id));
          // (Scrolled into the past meanwhile: the window is not the newest page any more.)
          if (!newerLeftRef.current) {
            setMessages((list) => {
              // A copy a live change reached while the read was on its way is as new as
              // the read's, or newer: it stays.
              const live = new Set(list.filter((m) => touched.has(m.id)).map((m) => m.id));
              return merge(
                list.filter((m) => !inRange(m.id) || fresh.has(m.id) || !held.has(m.id)),
                newest.filter((m) => !live.has(m.id)),
              );
            });
            if (!pagedOnce.current) setOlderLeft(olderThanPage);
            pagedOnce.current = true;
          }
        }
        setLoaded(true);
        setError(null);
      } catch (e) {
        if (!stop) setError(errorText(e));
      }
    };
    void load();
    return () => {
      stop = true;
    };
  }, [id, epoch]);

  // A new message joins the list unless the list stops short of the newest.
  const belongs = useCallback(
    (m: Message) => {
      const taken = m.channelId === id && !m.parentId && !newerLeftRef.current;
      if (taken && !arrived.current.has(m.id)) {
        // The oldest arrival is forgotten first (a Map keeps insertion order).
        if (arrived.current.size >= 1000) arrived.current.delete(arrived.current.keys().next().value!);
        arrived.current.set(m.id, Date.now());
      }
      return taken;
    },
    [id],
  );
  useLive(socket, me.id, setMessages, belongs, id);
  // The open thread's root, kept live on its own: scrolling can take it out of the window
  // of messages, and the panel stays open (it closes when the root is deleted).
  const [thread, setThread] = useState<Message[]>([]);
  useLive(socket, me.id, setThread, noneJoin, `thread-root:${id}`);
  const threadRoot = thread[0] ?? null;
  useEffect(() => {
    // While the root is in the list, the panel shows the list's copy (a re-read refreshes it).
    const shown = threadRoot && messages.find((m) => m.id === threadRoot.id);
    if (shown && shown !== threadRoot) setThread([shown]);
  }, [messages, threadRoot]);
  const replace = useCallback((m: Message) => {
    const swap = (l: Message[]) => l.map((x) => (x.id === m.id ? m : x));
    setMessages(swap);
    setThread(swap);
  }, []);

  useEffect(() => {
    const mine = (m: { channelId: string }) => m.channelId === id;
    const typing = (t: { channelId: string; user: User }) => {
      if (!mine(t)) return;
      setTypists((list) =>
        list.some((x) => x.id === t.user.id) ? list : [...list, { id: t.user.id, name: t.user.displayName }],
      );
    };
    const stopped = (t: { channelId: string; user: User }) => {
      if (mine(t)) setTypists((list) => list.filter((x) => x.id !== t.user.id));
    };
    socket.on('user-typing', typing);
    socket.on('user-stopped-typing', stopped);
    return () => {
      socket.off('user-typing', typing);
      socket.off('user-stopped-typing', stopped);
    };
  }, [id, socket]);

  // Reading what is shown: the marker moves (over the socket, at most twice a second) when
  // the newest message is in view of a visible page.
  const lastMarked = useRef<string | null>(null);
  const toMark = useRef<string | null>(null);
  const flushMark = useRef(() => {});
  flushMark.current = () => {
    const messageId = toMark.current;
    if (!messageId) return;
    toMark.current = null;
    lastMarked.current = messageId;
    const marked: Promise<ReadCounts> = socket.connected
      ? call<ReadCounts>(socket, 'mark-read', { channelId: id, messageId })
      : api.markRead(id, messageId);
    marked.then(
      (counts) => onRead(id, counts),
      () => {
        lastMarked.current = null;
      },
    );
  };
  const [visible, setVisible] = useState(() => document.visibilityState === 'visible');
  useEffect(() => {
    const onChange = () => setVisible(document.visibilityState === 'visible');
    document.addEventListener('visibilitychange', onChange);
    return () => document.removeEventListener('visibilitychange', onChange);
  }, []);
  const markTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(() => {
    const last = messages[messages.length - 1];
    if (!info?.isMember || !last || !atBottom || newerLeft || !visible || lastMarked.current === last.id) return;
    toMark.current = last.id;
    // A throttle, not a debounce: in a busy channel the marker still moves twice a second.
    markTimer.current ??= setTimeout(() => {
      markTimer.current = null;
      flushMark.current();
    }, 500);
  }, [messages, atBottom, newerLeft, info, visible]);
  // Leaving the channel sends what was read and not yet marked.
  useEffect(
    () => () => {
      if (markTimer.current) clearTimeout(markTimer.current);
      flushMark.current();
    },
    [],
  );

  // Scrolling: stay at the bottom when there; otherwise keep the message at the top of the
  // view where it was when pages arrive or leave.
  const keepView = () => {
    const el = list.current;
    if (!el) return;
    for (const li of el.querySelectorAll<HTMLElement>('li.message')) {
      if (li.offsetTop + li.offsetHeight > el.scrollTop) {
        anchor.current = { id: li.dataset.id!, top: li.offsetTop - el.scrollTop };
        return;
      }
    }
  };
  useLayoutEffect(() => {
    const el = list.current;
    if (!el) return;
    const kept = anchor.current && el.querySelector<HTMLElement>(`li[data-id="${anchor.current.id}"]`);
    if (kept && anchor.current) {
      el.scrollTop = kept.offsetTop - anchor.current.top;
    } else if (atBottom && !newerLeft) {
      el.scrollTop = el.scrollHeight;
    }
    anchor.current = null;
  }, [messages]);

  // Live messages at the bottom: the oldest leave the window.
  useEffect(() => {
    if (!newerLeft && atBottom && messages.length > WINDOW + PAGE) {
      setMessages((l) => l.slice(l.length - WINDOW));
      setOlderLeft(true);
    }
  }, [messages, atBottom, newerLeft]);

  const loading = useRef(false);
  // Moves on each "Jump to newest": a page that was on its way for the window before it is
  // dropped, not merged into the new one.
  const generation = useRef(0);
  const loadOlder = useCallback(async () => {
    if (loading.current || !olderLeft || messages.length === 0) return;
    loading.current = true;
    const started = generation.current;
    try {
      const page = await api.messages(id, { before: messages[0].id });
      if (generation.current !== started) return;
      keepView();
      // Decided on the list as it is now (a live message may have joined it meanwhile):
      // whatever is cut from the newest end is loaded again by scrolling down.
      let cut = false;
      setMessages((l) => {
        const all = merge(page.messages, l);
        cut = all.length > WINDOW;
        if (cut) newerLeftRef.current = true;
        return cut ? all.slice(0, WINDOW) : all;
      });
      if (cut) setNewerLeft(true);
      setOlderLeft(page.pagination.hasMore);
    } catch (e) {
      setError(errorText(e));
    } finally {
      loading.current = false;
    }
  }, [id, messages, olderLeft]);

  const loadNewer = useCallback(async () => {
    if (loading.current || !newerLeft || messages.length === 0) return;
    loading.current = true;
    const started = generation.current;
    try {
      const page = await api.messages(id, { after: messages[messages.length - 1].id });
      if (generation.current !== started) return;
      keepView();
      let cut = false;
      setMessages((l) => {
        const all = merge(l, page.messages);
        cut = all.length > WINDOW;
        return cut ? all.slice(-WINDOW) : all;
      });
      if (cut) setOlderLeft(true);
      if (page.pagination.hasMore) return;
      // The newest is reached. Live messages join the list from now on (the flag flips
      // before the read below), and the read brings any committed after the page was read:
      // a message is in one or the other, never lost between them.
      const held = page.messages.at(-1)?.id ?? messages[messages.length - 1].id;
      newerLeftRef.current = false;
      setNewerLeft(false);
      try {
        await readAfter(held, (more) => {
          if (generation.current === started) setMessages((l) => merge(l, more));
        });
      } catch (e) {
        // Back to stopping at what was read; scrolling down tries again.
        newerLeftRef.current = true;
        setNewerLeft(true);
        setMessages((l) => l.filter((m) => m.id <= held));
        throw e;
      }
    } catch (e) {
      setError(errorText(e));
    } finally {
      loading.current = false;
    }
  }, [id, messages, newerLeft]);

  const onScroll = () => {
    const el = list.current;
    if (!el) return;
    const fromBottom = el.scrollHeight - el.scrollTop - el.clientHeight;
    setAtBottom(fromBottom < 40);
    if (el.scrollTop < 400) void loadOlder();
    else if (fromBottom < 400) void loadNewer();
  };

  const jumpToNewest = async () => {
    if (newerLeft) {
      generation.current += 1;
      const started = generation.current;
      // Live messages join the list from now on (the flag flips before the read), so one
      // committed after the read arrives live and is kept beside the newest page.
      const held = messages[messages.length - 1]?.id ?? '';
      newerLeftRef.current = false;
      setNewerLeft(false);
      try {
        const page = await api.messages(id);
        if (generation.current !== started) return;
        const first = page.messages[0]?.id;
        setOlderLeft(page.pagination.hasMore);
        setAtBottom(true);
        setMessages((l) => merge(page.messages, l.filter((m) => (first ? m.id > first : m.id > held))));
      } catch (e) {
        newerLeftRef.current = true;
        setNewerLeft(true);
        setMessages((l) => l.filter((m) => m.id <= held));
        setError(errorText(e));
      }
      return;
    }
    const el = list.current;
    if (el) el.scrollTop = el.scrollHeight;
    setAtBottom(true);
  };

  const star = async () => {
    if (!info) return;
    try {
      const { channel } = await api.star(id, !info.isStarred);
      const next = { ...info, isStarred: channel.isStarred };
      setInfo(next);
      onChanged(next);
    } catch (e) {
      setError(errorText(e));
    }
  };
  const leave = async () => {
    try {
      await api.leave(id);
      onLeft(id);
    } catch (e) {
      setError(errorText(e));
    }
  };

  const join = async () => {
    try {
      const { channel } = await api.join(id);
      setInfo(channel);
      onJoined(channel);
    } catch (e) {
      setError(errorText(e));
    }
  };

  const typingLine = useMemo(() => {
    if (typists.length === 0) return '';
    const names = typists.map((t) => t.name);
    return names.length === 1 ? `${names[0]} is typing…` : `${names.join(', ')} are typing…`;
  }, [typists]);

  return (
    <section class={threadRoot ? 'room-inner with-thread' : 'room-inner'} aria-labelledby="room-title">
      <header class="room-header">
        <h1 id="room-title">
          {info?.isDm ? '@' : '#'} {info?.name ?? '…'}
        </h1>
        {info?.description && <p class="description">{info.description}</p>}
        {info && !info.isDm && info.isMember && (
          <div class="room-actions">
            <button class="link" aria-pressed={Boolean(info.isStarred)} onClick={star}>
              {info.isStarred ? '★ Starred' : '☆ Star'}
            </button>
            <button class="link" onClick={leave}>
              Leave channel
            </button>
          </div>
        )}
      </header>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      <div class="messages" ref={list} onScroll={onScroll} role="log" aria-label="Messages" aria-live="polite" tabIndex={0}>
        <ol>
        {loaded && olderLeft && (
          <li class="older">
            <button onClick={loadOlder}>Load older messages</button>
          </li>
        )}
        {loaded && !olderLeft && (
          <li class="start">
            The start of {info?.isDm ? 'your conversation with' : '#'} {info?.name}
          </li>
        )}
        {messages.map((m) => (
          <MessageItem
            key={m.id}
            message={m}
            myId={me.id}
            online={online.has(m.sender.id)}
            onUpdated={replace}
            onOpenThread={(root) => setThread([root])}
          />
        ))}
        {newerLeft && (
          <li class="older">
            <button onClick={loadNewer}>Load newer messages</button>
          </li>
        )}
        </ol>
      </div>
      {(!atBottom || newerLeft) && (
        <button class="jump" onClick={jumpToNewest}>
          Jump to newest
        </button>
      )}
      <p class="typing" aria-live="polite">
        {typingLine}
      </p>
      {info && !info.isMember ? (
        <div class="composer">
          <button onClick={join}>Join # {info.name}</button>
        </div>
      ) : (
        <Composer
          focus
          channelId={id}
          label="Send a message"
          socket={socket}
          onError={setError}
          onSent={(m) =>
            // Sent while looking at the past: the newest page, which holds it, and no gap.
            newerLeftRef.current ? void jumpToNewest() : setMessages((l) => merge(l, [m]))
          }
        />
      )}
      {threadRoot && (
        <ThreadPanel
          key={threadRoot.id}
          root={threadRoot}
          myId={me.id}
          socket={socket}
          online={online}
          epoch={epoch}
          onRootUpdated={replace}
          onClose={() => setThread([])}
        />
      )}
    </section>
  );
}
