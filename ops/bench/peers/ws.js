// The peer a team would write with `ws`: one WebSocket server, JSON text frames.
// node ws.js [port]
'use strict';

const http = require('http');
const { WebSocketServer } = require('ws');
const { Chat, listen } = require('./chat');

const chat = new Chat();
const server = http.createServer((req, res) => chat.history(req, res));
const wss = new WebSocketServer({ server, path: '/v1/ws' });

wss.on('connection', (ws) => {
  const conn = { subs: new Set(), send: (frame) => ws.send(JSON.stringify(frame)) };
  ws.on('message', (data, binary) => {
    let frame;
    try {
      frame = JSON.parse(data.toString());
    } catch {
      return chat.refuse(conn, {}, 'bad_frame');
    }
    if (!binary) chat.handle(conn, frame);
  });
  ws.on('close', () => chat.closed(conn));
});

listen(server, Number(process.argv[2]));
