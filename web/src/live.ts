// The real-time half of the contract: one Socket.IO connection with the session's token.
// It reconnects by itself (the official client's backoff); after every (re)connect the app
// catches up each open channel with `after=` so nothing is missed and nothing doubled.

import { io, type Socket } from 'socket.io-client';
import { ApiError } from './api';

export function connect(token: string): Socket {
  return io({
    path: '/socket.io',
    auth: { token },
    transports: ['websocket', 'polling'],
    reconnectionDelay: 500,
    reconnectionDelayMax: 5000,
  });
}

/** Emits `event` and waits for its ack (the REST envelope), at most `ms`. */
export async function call<T>(socket: Socket, event: string, payload: unknown, ms = 5000): Promise<T> {
  const answer = await socket.timeout(ms).emitWithAck(event, payload);
  if (!answer?.success) {
    const error = answer?.error ?? {};
    throw new ApiError(400, error.code ?? 'INTERNAL_ERROR', error.message ?? 'The server refused.');
  }
  return answer.data as T;
}
