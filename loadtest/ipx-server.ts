/** unjs/ipx as its README serves a folder: `node ipx-server.js <dir> <port>`. */
import http from 'node:http';
import { createIPX, createIPXNodeServer, ipxFSStorage } from 'ipx';

const [dir, port] = process.argv.slice(2);
if (!dir || !port) throw new Error('usage: ipx-server.js <dir> <port>');
const ipx = createIPX({ storage: ipxFSStorage({ dir }) });
http.createServer(createIPXNodeServer(ipx)).listen(Number(port), '127.0.0.1');
