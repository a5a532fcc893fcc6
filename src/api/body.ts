/** Request bodies of the API: JSON, or multipart with a `data` JSON field and one file part (busboy). */
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import { EdgeError } from '../errors.js';
import { ApiError } from './errors.js';

const JSON_LIMIT = 1024 * 1024;

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new EdgeError('EDGE_BAD_PARAM', `${what} is not valid JSON`, { param: what });
  }
}

export async function readJson(req: IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  if (declared > JSON_LIMIT) throw new ApiError('EDGE_BAD_PARAM', 413, `the JSON body is larger than ${JSON_LIMIT} bytes`);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > JSON_LIMIT) throw new ApiError('EDGE_BAD_PARAM', 413, `the JSON body is larger than ${JSON_LIMIT} bytes`);
    chunks.push(chunk);
  }
  return parseJson(Buffer.concat(chunks).toString('utf8'), 'body');
}

export interface Upload {
  data: unknown;
  file: Buffer;
  fileName: string | undefined;
}

/** The multipart body: the file is held in memory up to `maxBytes` (413 past it, read no further). */
export function readUpload(req: IncomingMessage, maxBytes: number): Promise<Upload> {
  return readForm(req, maxBytes, true) as Promise<Upload>;
}

/** readUpload, where the file part may be absent (the web optimizer's URL form). */
export function readForm(req: IncomingMessage, maxBytes: number, fileRequired: boolean): Promise<Omit<Upload, 'file'> & { file?: Buffer }> {
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, limits: { files: 1, fields: 8, fieldSize: JSON_LIMIT, fileSize: maxBytes } });
    } catch {
      reject(new EdgeError('EDGE_BAD_PARAM', 'send multipart/form-data with a "data" field and a "file" part', { param: 'file' }));
      return;
    }
    let data: unknown;
    let file: Buffer | undefined;
    let fileName: string | undefined;
    let failed: Error | undefined;
    const fail = (err: Error) => {
      if (failed) return;
      failed = err;
      req.unpipe(bb);
      req.resume(); // drain what is left so the answer can be read
      reject(err);
    };
    // `data` (Kraken's Node, PHP and Python clients), `body` (its Ruby client).
    bb.on('field', (name, value) => {
      if (name !== 'data' && name !== 'body') return;
      try {
        data = parseJson(value, 'data');
      } catch (err) {
        fail(err as Error);
      }
    });
    // The one file part, whatever its field is called (`file` in Kraken's clients, `upload` in some others).
    bb.on('file', (_name, stream, info) => {
      fileName = info.filename;
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('limit', () => fail(new ApiError('EDGE_ORIGIN_TOO_LARGE', 413, `the upload is larger than ${maxBytes} bytes`)));
      stream.on('end', () => {
        if (!failed) file = Buffer.concat(chunks);
      });
    });
    bb.on('error', (err) => fail(new EdgeError('EDGE_BAD_PARAM', `the multipart body cannot be read: ${(err as Error).message}`, { param: 'file' })));
    bb.on('close', () => {
      if (failed) return;
      if (data === undefined) return reject(new EdgeError('EDGE_BAD_PARAM', 'the "data" field with the JSON options is missing', { param: 'data' }));
      if (fileRequired && (!file || file.length === 0)) return reject(new EdgeError('EDGE_BAD_PARAM', 'the "file" part is missing or empty', { param: 'file' }));
      resolve({ data, ...(file ? { file } : {}), fileName });
    });
    req.pipe(bb);
  });
}
