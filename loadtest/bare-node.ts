/**
 * The ceiling for any Node.js server on this machine: node:http answering one file's bytes from
 * memory with the headers the edge sends, and nothing else. `node bare-node.js <file> <type> <port>`.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';

const [file, type, port] = process.argv.slice(2);
if (!file || !type || !port) throw new Error('usage: bare-node.js <file> <content-type> <port>');
const body = readFileSync(file);
http
  .createServer((_req, res) => {
    res.writeHead(200, {
      'content-type': type,
      'content-length': body.length,
      etag: '"bare"',
      'cache-control': 'public, max-age=86400',
      vary: 'Accept',
      'x-content-type-options': 'nosniff',
    });
    res.end(body);
  })
  .listen(Number(port), '127.0.0.1');
