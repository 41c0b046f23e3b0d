// The REST half of the public contract (docs/api.md): every call goes through `request`,
// which unwraps the envelope and turns an error envelope into an `ApiError`.

export interface User {
  id: string;
  username: string;
  displayName: string;
  avatarUrl: string | null;
  isOnline?: boolean;
}

export interface Channel {
  id: string;
  name: string;
  description: string | null;
  isPrivate: boolean;
  isMember: boolean;
  memberCount: number;
  role: string | null;
  isStarred?: boolean;
  lastReadId?: string | null;
  unreadCount?: number;
  mentionCount?: number;
  /** A direct conversation, shown as one in the client (see `dmAsChannel`). */
  isDm?: boolean;
}

export interface FileInfo {
  key: string;
  fileUrl: string;
  fileName: string;
  fileType: string;
  fileSize: number;
  thumbnailUrl: string | null;
}

/** Uploads `file` (`POST /api/upload`), telling `progress` the share sent (0–1). */
export function upload(file: File, progress: (share: number) => void): Promise<FileInfo> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/upload');
    const token = savedToken();
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) progress(e.loaded / e.total);
    };
    xhr.onload = () => {
      let body: { success?: boolean; data?: { file: FileInfo }; error?: { code?: string; message?: string } } | null = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // Not the envelope: said below.
      }
      if (xhr.status < 300 && body?.success && body.data) resolve(body.data.file);
      else
        reject(
          new ApiError(xhr.status, body?.error?.code ?? 'INTERNAL_ERROR', body?.error?.message ?? `The upload failed (${xhr.status}).`),
        );
    };
    xhr.onerror = () => reject(new ApiError(0, 'NETWORK', 'The server cannot be reached.'));
    const form = new FormData();
    form.append('file', file);
    xhr.send(form);
  });
}

export interface Reaction {
  emoji: string;
  count: number;
  userIds: string[];
  me: boolean;
}

export interface Message {
  id: string;
  channelId: string;
  sender: User;
  content: string;
  attachments: FileInfo[];
  parentId: string | null;
  nonce: string | null;
  editedAt: string | null;
  createdAt: string;
  deletedAt?: string | null;
  reactions: Reaction[];
  replyCount: number;
  lastReplyAt: string | null;
  participants: string[];
  mentions?: string[];
  mentionsChannel?: boolean;
}

export interface Dm {
  id: string;
  members: User[];
  isGroup: boolean;
  lastMessage: Message | null;
  createdAt: string;
  lastReadId?: string | null;
  unreadCount?: number;
  mentionCount?: number;
}

export interface Match {
  start: number;
  end: number;
}

export interface SearchResult {
  message: Message;
  channel: { id: string; name: string | null; isDm: boolean };
  matches: Match[];
}

export interface Page {
  hasMore: boolean;
  nextCursor: string | null;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const TOKEN_KEY = 'chai-tapri.token';

export function savedToken(): string | null {
  return localStorage.getItem(TOKEN_KEY);
}

export function saveToken(token: string | null): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  const token = savedToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'NETWORK', 'The server cannot be reached.');
  }
  const envelope = await response.json().catch(() => null);
  if (!response.ok || !envelope?.success) {
    const error = envelope?.error ?? {};
    throw new ApiError(
      response.status,
      error.code ?? 'INTERNAL_ERROR',
      error.details?.[0]
        ? `${error.details[0].field} ${error.details[0].message}`
        : (error.message ?? `The server answered ${response.status}.`),
    );
  }
  return envelope.data as T;
}

interface Session {
  user: User;
  token: string;
}

/** Where a conversation's read marker is, and what is unread after it (a mark's answer,
 * and `channel:read`). */
export type ReadCounts = { lastReadId: string | null; unreadCount: number; mentionCount: number };

export const api = {
  signup: (username: string, email: string, password: string) =>
    request<Session>('POST', '/api/auth/signup', { username, email, password }),
  login: (login: string, password: string) =>
    request<Session>(
      'POST',
      '/api/auth/login',
      login.includes('@') ? { email: login, password } : { username: login, password },
    ),
  me: () => request<{ user: User }>('GET', '/api/auth/me'),
  online: () => request<{ users: User[] }>('GET', '/api/users/online'),
  logout: () => request<unknown>('POST', '/api/auth/logout'),
  joined: () =>
    request<{ channels: Channel[]; pagination: Page }>('GET', '/api/channels?joined=true&limit=100'),
  browse: () =>
    request<{ channels: Channel[]; pagination: Page }>('GET', '/api/channels?joined=false&limit=100'),
  createChannel: (name: string, isPrivate: boolean) =>
    request<{ channel: Channel }>('POST', '/api/channels', { name, isPrivate }),
  join: (id: string) => request<{ channel: Channel }>('POST', `/api/channels/${id}/join`),
  leave: (id: string) => request<{ channel: Channel }>('POST', `/api/channels/${id}/leave`),
  star: (id: string, on: boolean) => request<{ channel: Channel }>(on ? 'PUT' : 'DELETE', `/api/channels/${id}/star`),
  channel: (id: string) => request<{ channel: Channel }>('GET', `/api/channels/${id}`),
  messages: (id: string, anchor: { before?: string; after?: string } = {}, limit = 50) => {
    // Replies live in their threads; the channel shows roots with their counts.
    const query = new URLSearchParams({ limit: String(limit), threads: 'collapsed' });
    if (anchor.before) query.set('before', anchor.before);
    if (anchor.after) query.set('after', anchor.after);
    return request<{ messages: Message[]; pagination: Page }>(
      'GET',
      `/api/channels/${id}/messages?${query}`,
    );
  },
  send: (id: string, content: string, nonce: string, parentId?: string, attachments?: string[]) =>
    request<{ message: Message }>('POST', `/api/channels/${id}/messages`, { content, nonce, parentId, attachments }),
  thread: (id: string, cursor?: string) =>
    request<{ root: Message; messages: Message[]; pagination: Page }>(
      'GET',
      `/api/messages/${id}/thread?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    ),
  react: (id: string, emoji: string, on: boolean) =>
    request<{ message: Message }>(on ? 'PUT' : 'DELETE', `/api/messages/${id}/reactions/${encodeURIComponent(emoji)}`),
  edit: (id: string, content: string) =>
    request<{ message: Message }>('PATCH', `/api/messages/${id}`, { content }),
  remove: (id: string) => request<unknown>('DELETE', `/api/messages/${id}`),
  dms: () => request<{ dms: Dm[]; pagination: Page }>('GET', '/api/dms?limit=100'),
  dm: (id: string) => request<{ dm: Dm }>('GET', `/api/dms/${id}`),
  openDm: (userIds: string[]) => request<{ dm: Dm }>('POST', '/api/dms', { userIds }),
  users: (search: string) =>
    request<{ users: User[]; pagination: Page }>('GET', `/api/users?limit=10&search=${encodeURIComponent(search)}`),
  search: (q: string) =>
    request<{ results: SearchResult[]; pagination: Page }>('GET', `/api/search?limit=20&q=${encodeURIComponent(q)}`),
  markRead: (id: string, messageId?: string) =>
    request<ReadCounts>(
      'POST',
      `/api/channels/${id}/read`,
      messageId ? { messageId } : {},
    ),
  /** The conversations with something unread, and their counts (the others have none). */
  unreads: () => request<{ channels: (ReadCounts & { channelId: string })[] }>('GET', '/api/unreads'),
};

/** A direct conversation as the client lists it beside channels: named by the others in it. */
export function dmAsChannel(dm: Dm, myId: string): Channel {
  const others = dm.members.filter((m) => m.id !== myId);
  return {
    id: dm.id,
    name: others.map((m) => m.displayName).join(', ') || 'you',
    description: null,
    isPrivate: true,
    isMember: true,
    memberCount: dm.members.length,
    role: null,
    lastReadId: dm.lastReadId,
    unreadCount: dm.unreadCount,
    mentionCount: dm.mentionCount,
    isDm: true,
  };
}
