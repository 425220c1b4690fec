// The peer a team would write with Socket.IO: the default namespace, one event name
// ("frame") carrying the same JSON objects, WebSocket transport only.
// node socketio.js [port]
'use strict';

const http = require('http');
const { Server } = require('socket.io');
const { Chat, listen } = require('./chat');

const chat = new Chat();
const server = http.createServer((req, res) => {
  // Socket.IO answers its own path; everything else is the history API.
  if (!req.url.startsWith('/socket.io/')) chat.history(req, res);
});
const io = new Server(server, { transports: ['websocket'], serveClient: false });

io.on('connection', (socket) => {
  const conn = { subs: new Set(), send: (frame) => socket.emit('frame', frame) };
  socket.on('frame', (frame) => {
    if (frame && typeof frame === 'object') chat.handle(conn, frame);
    else chat.refuse(conn, {}, 'bad_frame');
  });
  socket.on('disconnect', () => chat.closed(conn));
});

listen(server, Number(process.argv[2]));
