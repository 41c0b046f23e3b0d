// A list of messages kept live (a channel's roots, or a thread's replies), one message with
// its reactions and actions, and the composer.

import { useEffect, useRef, useState, type Dispatch, type StateUpdater } from 'preact/hooks';
import type { Socket } from 'socket.io-client';
import { api, ApiError, upload, type FileInfo, type Message, type Reaction } from './api';
import { call } from './live';

export const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉', '👀', '🙏'];

export function errorText(e: unknown): string {
  return e instanceof ApiError ? e.message : 'Something went wrong.';
}

/** Messages in id order (ids are time-ordered), each once. */
export function merge(list: Message[], more: Message[]): Message[] {
  const byId = new Map(list.map((m) => [m.id, m]));
  for (const m of more) byId.set(m.id, m);
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** `userId` reacted with `emoji` (a no-op when already shown). */
export function reactionAdded(list: Reaction[], emoji: string, userId: string, myId: string): Reaction[] {
  const found = list.find((r) => r.emoji === emoji);
  if (!found) return [...list, { emoji, count: 1, userIds: [userId], me: userId === myId }];
  if (found.userIds.includes(userId) || (userId === myId && found.me)) return list;
  return list.map((r) =>
    r === found
      ? {
          ...r,
          count: r.count + 1,
          userIds: r.userIds.length < 5 ? [...r.userIds, userId] : r.userIds,
          me: r.me || userId === myId,
        }
      : r,
  );
}

/** `userId` took their `emoji` back (a no-op when not shown). */
export function reactionRemoved(list: Reaction[], emoji: string, userId: string, myId: string): Reaction[] {
  const found = list.find((r) => r.emoji === emoji);
  if (!found) return list;
  // This reader's own reaction is known by `me` (the answer to their own toggle may have
  // taken it off already); another's, by the names shown, or past the 5 named, taken on trust.
  const shown = userId === myId ? found.me : found.userIds.includes(userId) || found.userIds.length >= 5;
  if (!shown) return list;
  if (found.count <= 1) return list.filter((r) => r !== found);
  return list.map((r) =>
    r === found
      ? { ...r, count: r.count - 1, userIds: r.userIds.filter((u) => u !== userId), me: r.me && userId !== myId }
      : r,
  );
}

type Setter = Dispatch<StateUpdater<Message[]>>;

/**
 * Keeps `set`'s messages current with the room's events: new ones that `belongs` (once
 * each), edits (keeping this reader's `me` on reactions), deletes and tombstones,
 * reactions, and thread counts.
 */
export function useLive(socket: Socket, myId: string, set: Setter, belongs: (m: Message) => boolean, key: string) {
  useEffect(() => {
    const update = (id: string, change: (m: Message) => Message) =>
      set((list) => (list.some((m) => m.id === id) ? list.map((m) => (m.id === id ? change(m) : m)) : list));
    const added = (m: Message) => {
      if (belongs(m)) set((list) => merge(list, [m]));
    };
    const edited = (m: Message) =>
      update(m.id, (old) => ({
        ...m,
        reactions: m.reactions.map((r) => ({ ...r, me: old.reactions.find((o) => o.emoji === r.emoji)?.me ?? false })),
      }));
    const deleted = (d: { messageId: string; tombstone?: boolean }) =>
      d.tombstone
        ? update(d.messageId, (m) => ({ ...m, content: '', reactions: [], deletedAt: new Date().toISOString() }))
        : set((list) => list.filter((m) => m.id !== d.messageId));
    const reacted = (r: { messageId: string; emoji: string; userId: string }) =>
      update(r.messageId, (m) => ({ ...m, reactions: reactionAdded(m.reactions, r.emoji, r.userId, myId) }));
    const unreacted = (r: { messageId: string; emoji: string; userId: string }) =>
      update(r.messageId, (m) => ({ ...m, reactions: reactionRemoved(m.reactions, r.emoji, r.userId, myId) }));
    const thread = (t: { messageId: string; replyCount: number; lastReplyAt: string | null; participants: string[] }) =>
      update(t.messageId, (m) => ({
        ...m,
        replyCount: t.replyCount,
        lastReplyAt: t.lastReplyAt,
        participants: t.participants,
      }));
    // Each handler takes its own event's payload.
    const events: [string, (...args: any[]) => void][] = [
      ['new-message', added],
      ['message-edited', edited],
      ['message-deleted', deleted],
      ['reaction-added', reacted],
      ['reaction-removed', unreacted],
      ['thread-updated', thread],
    ];
    for (const [event, handler] of events) socket.on(event, handler);
    return () => {
      for (const [event, handler] of events) socket.off(event, handler);
    };
    // `belongs` is fixed for a given `key`.
  }, [socket, myId, set, key]);
}

interface ItemProps {
  message: Message;
  myId: string;
  online: boolean;
  onUpdated: (m: Message) => void;
  onOpenThread?: (m: Message) => void;
}

export function MessageItem({ message, myId, online, onUpdated, onOpenThread }: ItemProps) {
  const [editing, setEditing] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [picking, setPicking] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const time = new Date(message.createdAt);
  const mine = message.sender.id === myId;
  const gone = Boolean(message.deletedAt);

  const save = async (e: Event) => {
    e.preventDefault();
    const content = String(new FormData(e.currentTarget as HTMLFormElement).get('content') ?? '');
    try {
      onUpdated((await api.edit(message.id, content)).message);
      setEditing(false);
    } catch (err) {
      setError(errorText(err));
    }
  };
  const remove = async () => {
    try {
      await api.remove(message.id);
    } catch (err) {
      setError(errorText(err));
    }
  };
  const react = async (emoji: string, on: boolean) => {
    setPicking(false);
    try {
      onUpdated((await api.react(message.id, emoji, on)).message);
    } catch (err) {
      setError(errorText(err));
    }
  };

  return (
    <li class="message" data-id={message.id}>
      <div class="meta">
        <span class={online ? 'dot on' : 'dot'} aria-label={online ? 'online' : 'offline'} role="img" />
        <strong class="sender">{message.sender.displayName}</strong>
        <time dateTime={message.createdAt} title={time.toLocaleString()}>
          {time.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}
        </time>
        {message.editedAt && !gone && <span class="edited">(edited)</span>}
        {!editing && !gone && (
          <span class="actions">
            <button class="link" onClick={() => setPicking((p) => !p)} aria-expanded={picking} aria-label="React to message">
              React
            </button>
            {onOpenThread && (
              <button class="link" onClick={() => onOpenThread(message)} aria-label="Reply in thread">
                Reply
              </button>
            )}
            {mine && (
              <button class="link" onClick={() => setEditing(true)} aria-label="Edit message">
                Edit
              </button>
            )}
            {mine &&
              (confirming ? (
                <button class="link danger" onClick={remove}>
                  Confirm delete
                </button>
              ) : (
                <button class="link" onClick={() => setConfirming(true)} aria-label="Delete message">
                  Delete
                </button>
              ))}
          </span>
        )}
      </div>
      {editing ? (
        <form onSubmit={save} class="edit" aria-label="Edit message">
          <label class="visually-hidden" for={`edit-${message.id}`}>
            New text
          </label>
          <textarea
            id={`edit-${message.id}`}
            name="content"
            defaultValue={message.content}
            required
            maxLength={4000}
            onKeyDown={(e) => {
              if (e.key === 'Escape') {
                // Ends the edit only, not the thread panel around it.
                e.stopPropagation();
                setEditing(false);
              }
              if (e.key === 'Enter' && !e.shiftKey) {
                e.preventDefault();
                (e.currentTarget.form as HTMLFormElement).requestSubmit();
              }
            }}
          />
          <button type="submit">Save</button>
          <button type="button" onClick={() => setEditing(false)}>
            Cancel
          </button>
        </form>
      ) : gone ? (
        <p class="content gone">This message was deleted.</p>
      ) : (
        <p class="content">{message.content}</p>
      )}
      {message.attachments.length > 0 && !gone && <Attachments files={message.attachments} />}
      {picking && (
        <div class="picker" role="group" aria-label="Pick a reaction">
          {QUICK_REACTIONS.map((emoji) => (
            <button key={emoji} class="emoji" onClick={() => react(emoji, true)} aria-label={`React with ${emoji}`}>
              {emoji}
            </button>
          ))}
        </div>
      )}
      {message.reactions.length > 0 && (
        <div class="reactions" role="group" aria-label="Reactions">
          {message.reactions.map((r) => (
            <button
              key={r.emoji}
              class={r.me ? 'reaction me' : 'reaction'}
              aria-pressed={r.me}
              aria-label={`${r.emoji} ${r.count}`}
              onClick={() => react(r.emoji, !r.me)}
            >
              {r.emoji} {r.count}
            </button>
          ))}
        </div>
      )}
      {onOpenThread && message.replyCount > 0 && (
        <button class="link replies" onClick={() => onOpenThread(message)}>
          {message.replyCount === 1 ? '1 reply' : `${message.replyCount} replies`}
        </button>
      )}
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
    </li>
  );
}

function sizeText(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function Attachments({ files }: { files: FileInfo[] }) {
  return (
    <ul class="attachments" aria-label="Attachments">
      {files.map((f) => (
        <li key={f.key}>
          <a href={f.fileUrl} target="_blank" rel="noopener">
            {f.thumbnailUrl ? (
              <img src={f.thumbnailUrl} alt={f.fileName} loading="lazy" />
            ) : (
              <span class="file">
                📎 {f.fileName} <span class="muted">{sizeText(f.fileSize)}</span>
              </span>
            )}
          </a>
        </li>
      ))}
    </ul>
  );
}

/** A file being uploaded for the next message. */
interface Pending {
  id: string;
  name: string;
  preview: string | null;
  progress: number;
  file?: FileInfo;
  error?: string;
}

interface ComposerProps {
  /** Take the keyboard's focus when shown (a conversation or thread just opened). */
  focus?: boolean;
  channelId: string;
  parentId?: string;
  label: string;
  socket: Socket;
  onError: (e: string | null) => void;
  onSent: (m: Message) => void;
}

export function Composer({ focus, channelId, parentId, label, socket, onError, onSent }: ComposerProps) {
  const [text, setText] = useState('');
  const [pending, setPending] = useState<Pending[]>([]);
  const typingSince = useRef(0);
  const unsent = useRef<{ key: string; nonce: string } | null>(null);
  const picker = useRef<HTMLInputElement>(null);
  const box = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    if (focus) box.current?.focus();
  }, [focus]);

  // Each file starts uploading as soon as it is picked, pasted or dropped.
  const add = (files: Iterable<File>) => {
    for (const file of files) {
      const id = crypto.randomUUID();
      const preview = file.type.startsWith('image/') ? URL.createObjectURL(file) : null;
      const change = (c: Partial<Pending>) => setPending((l) => l.map((p) => (p.id === id ? { ...p, ...c } : p)));
      setPending((l) => [...l, { id, name: file.name, preview, progress: 0 }]);
      upload(file, (progress) => change({ progress })).then(
        (uploaded) => change({ file: uploaded, progress: 1 }),
        (err) => change({ error: errorText(err) }),
      );
    }
  };
  const drop = (id: string) =>
    setPending((l) => {
      const gone = l.find((p) => p.id === id);
      if (gone?.preview) URL.revokeObjectURL(gone.preview);
      return l.filter((p) => p.id !== id);
    });
  const boxId = parentId ? `reply-${parentId}` : 'composer-text';

  const stopTyping = () => {
    if (typingSince.current) socket.emit('typing-stop', { channelId });
    typingSince.current = 0;
  };
  useEffect(() => stopTyping, [channelId]);

  const onInput = (value: string) => {
    setText(value);
    const now = Date.now();
    if (value && now - typingSince.current > 3000) {
      socket.emit('typing-start', { channelId });
      typingSince.current = now;
    } else if (!value) {
      stopTyping();
    }
  };

  const send = async (e?: Event) => {
    e?.preventDefault();
    const ready = pending.filter((p) => p.file);
    if (pending.some((p) => !p.file && !p.error)) {
      onError('Wait for the uploads to finish.');
      return;
    }
    const content = text.trim() || ready.map((p) => p.name).join(', ');
    if (!content) return;
    const attachments = ready.length ? ready.map((p) => p.file!.key) : undefined;
    // One nonce per message: a retry after a lost answer is the same message, and so is
    // sending the same text again after the page gave up (the server may have taken it).
    const key = JSON.stringify([channelId, parentId ?? null, content, attachments ?? []]);
    if (unsent.current?.key !== key) unsent.current = { key, nonce: crypto.randomUUID() };
    const { nonce } = unsent.current;
    stopTyping();
    for (let attempt = 0; ; attempt++) {
      try {
        // Over the socket when it is up (not charged to the API's request budget), else
        // REST; the nonce makes a retry by either door the same message.
        const { message } = socket.connected
          ? await call<{ message: Message }>(socket, 'send-message', { channelId, content, nonce, parentId, attachments })
          : await api.send(channelId, content, nonce, parentId, attachments);
        unsent.current = null;
        setText('');
        for (const p of pending) if (p.preview) URL.revokeObjectURL(p.preview);
        setPending([]);
        onError(null);
        onSent(message);
        return;
      } catch (err) {
        const lost = !(err instanceof ApiError) || err.status === 0;
        if (lost && attempt < 3) {
          await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
          continue;
        }
        onError(errorText(err));
        return;
      }
    }
  };

  return (
    <form
      class="composer"
      onSubmit={send}
      aria-label={label}
      onDragOver={(e) => e.preventDefault()}
      onDrop={(e) => {
        e.preventDefault();
        if (e.dataTransfer?.files.length) add(e.dataTransfer.files);
      }}
    >
      {pending.length > 0 && (
        <ul class="pending" aria-label="Files to send">
          {pending.map((p) => (
            <li key={p.id}>
              {p.preview && <img src={p.preview} alt="" />}
              <span>{p.name}</span>
              {p.error ? (
                <span class="error">{p.error}</span>
              ) : p.file ? (
                <span class="muted">ready</span>
              ) : (
                <progress max={1} value={p.progress} aria-label={`Uploading ${p.name}`} />
              )}
              <button type="button" class="link" onClick={() => drop(p.id)} aria-label={`Remove ${p.name}`}>
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}
      <input
        ref={picker}
        type="file"
        multiple
        class="visually-hidden"
        tabIndex={-1}
        aria-hidden="true"
        onChange={(e) => {
          const input = e.currentTarget;
          if (input.files) add(input.files);
          input.value = '';
        }}
      />
      <button type="button" class="attach" onClick={() => picker.current?.click()} aria-label="Attach files">
        📎
      </button>
      <label class="visually-hidden" for={boxId}>
        {parentId ? 'Reply' : 'Message'}
      </label>
      <textarea
        ref={box}
        id={boxId}
        value={text}
        placeholder={parentId ? 'Reply in thread' : 'Write a message'}
        maxLength={4000}
        rows={2}
        onInput={(e) => onInput(e.currentTarget.value)}
        onBlur={stopTyping}
        onPaste={(e) => {
          const files = e.clipboardData?.files;
          if (files?.length) {
            e.preventDefault();
            add(files);
          }
        }}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey) {
            e.preventDefault();
            void send();
          }
        }}
      />
      <button type="submit">Send</button>
    </form>
  );
}
