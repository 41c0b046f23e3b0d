// A thread in a side panel: its root, its replies oldest first, kept live, and a composer
// that replies.

import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { Socket } from 'socket.io-client';
import { api, type Message } from './api';
import { Composer, errorText, merge, MessageItem, useLive } from './messages';

interface Props {
  root: Message;
  myId: string;
  socket: Socket;
  online: Set<string>;
  epoch: number;
  onRootUpdated: (m: Message) => void;
  onClose: () => void;
}

export function ThreadPanel({ root, myId, socket, online, epoch, onRootUpdated, onClose }: Props) {
  const [replies, setReplies] = useState<Message[]>([]);
  const [error, setError] = useState<string | null>(null);
  const list = useRef<HTMLDivElement>(null);
  const belongs = useCallback((m: Message) => m.parentId === root.id, [root.id]);
  useLive(socket, myId, setReplies, belongs, root.id);

  // The whole thread (pages of 100), again after every reconnect.
  useEffect(() => {
    let stop = false;
    (async () => {
      try {
        let cursor: string | undefined;
        for (;;) {
          const page = await api.thread(root.id, cursor);
          if (stop) return;
          setReplies((l) => merge(l, page.messages));
          if (!page.pagination.hasMore || !page.pagination.nextCursor) break;
          cursor = page.pagination.nextCursor;
        }
        setError(null);
      } catch (e) {
        if (!stop) setError(errorText(e));
      }
    })();
    return () => {
      stop = true;
    };
  }, [root.id, epoch]);

  useLayoutEffect(() => {
    const el = list.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [replies.length]);

  const replace = (m: Message) => setReplies((l) => l.map((x) => (x.id === m.id ? m : x)));

  return (
    <aside
      class="thread"
      aria-label="Thread"
      onKeyDown={(e) => {
        if (e.key === 'Escape') onClose();
      }}
    >
      <header class="thread-header">
        <h2>Thread</h2>
        <button class="link" onClick={onClose} aria-label="Close thread">
          Close
        </button>
      </header>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      <div class="messages" ref={list} role="log" aria-label="Replies" tabIndex={0}>
        <ol>
          <MessageItem message={root} myId={myId} online={online.has(root.sender.id)} onUpdated={onRootUpdated} />
          {replies.map((m) => (
            <MessageItem key={m.id} message={m} myId={myId} online={online.has(m.sender.id)} onUpdated={replace} />
          ))}
        </ol>
      </div>
      {!root.deletedAt && (
        <Composer
          focus
          channelId={root.channelId}
          parentId={root.id}
          label="Reply in thread"
          socket={socket}
          onError={setError}
          onSent={(m) => setReplies((l) => merge(l, [m]))}
        />
      )}
    </aside>
  );
}
