// The page's service worker: it shows desktop notifications (browsers on phones show them
// only through a service worker) and, when one is clicked, brings a window of the app
// forward at the conversation it is about. It caches nothing: the app always comes from
// the server.

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const channelId = event.notification.data?.channelId;
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((windows) => {
      const open = windows[0];
      if (open) {
        if (channelId) open.postMessage({ type: 'open-channel', channelId });
        return open.focus();
      }
      return self.clients.openWindow(channelId ? `/c/${channelId}` : '/');
    }),
  );
});
