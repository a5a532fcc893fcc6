/**
 * `s3_store`: the optimized file written to the caller's own bucket (AWS S3, or an S3-compatible
 * store at the operator's `api.s3.endpoint`: MinIO, Ceph, R2), with the caller's credentials;
 * `kraked_url` then names the object.
 */
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { EdgeError } from '../errors.js';

export const s3Schema = z
  .object({
    key: z.string().min(1),
    secret: z.string().min(1),
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name'),
    region: z.string().regex(/^[a-z0-9-]{2,32}$/).default('us-east-1'),
    /** the object key; a resize set's storage_path takes its place */
    path: z.string().min(1).max(1024).optional(),
    acl: z.enum(['public_read', 'private']).default('public_read'),
    /** headers stored with the object (Cache-Control, Expires, …) */
    headers: z.record(z.string(), z.string()).default({}),
  })
  .passthrough();

export type S3Options = z.output<typeof s3Schema>;

/** The object headers S3 takes as fields of their own; others go as x-amz-meta-*. */
const FIELD: Record<string, 'CacheControl' | 'ContentDisposition' | 'ContentEncoding' | 'ContentLanguage' | 'Expires'> = {
  'cache-control': 'CacheControl',
  'content-disposition': 'ContentDisposition',
  'content-encoding': 'ContentEncoding',
  'content-language': 'ContentLanguage',
  expires: 'Expires',
};

export interface S3Put {
  options: S3Options;
  objectKey: string;
  body: Buffer;
  contentType: string;
}

export class S3Writer {
  constructor(private readonly endpoint: string | undefined) {}

  /** Writes the object and answers its URL. */
  async put({ options: o, objectKey, body, contentType }: S3Put): Promise<string> {
    const key = objectKey.replace(/^\/+/, '');
    const client = new S3Client({
      region: o.region,
      credentials: { accessKeyId: o.key, secretAccessKey: o.secret },
      ...(this.endpoint ? { endpoint: this.endpoint, forcePathStyle: true } : {}),
      maxAttempts: 3,
    });
    const fields: Record<string, unknown> = {};
    const metadata: Record<string, string> = {};
    for (const [name, value] of Object.entries(o.headers)) {
      const field = FIELD[name.toLowerCase()];
      if (field === 'Expires') fields.Expires = new Date(value);
      else if (field) fields[field] = value;
      else metadata[name.toLowerCase().replace(/^x-amz-meta-/, '')] = value;
    }
    try {
      await client.send(new PutObjectCommand({
        Bucket: o.bucket,
        Key: key,
        Body: body,
        ContentType: contentType,
        ContentLength: body.length,
        ACL: o.acl === 'public_read' ? 'public-read' : 'private',
        ...fields,
        ...(Object.keys(metadata).length > 0 ? { Metadata: metadata } : {}),
      }));
    } catch (err) {
      const e = err as Error & { $metadata?: { httpStatusCode?: number } };
      throw new EdgeError('EDGE_BAD_PARAM', `s3_store: the bucket refused the object (${e.name}${e.$metadata?.httpStatusCode ? ` ${e.$metadata.httpStatusCode}` : ''}: ${e.message})`, { param: 's3_store' });
    } finally {
      client.destroy();
    }
    const encoded = key.split('/').map(encodeURIComponent).join('/');
    return this.endpoint ? `${this.endpoint.replace(/\/+$/, '')}/${o.bucket}/${encoded}` : `https://${o.bucket}.s3.${o.region}.amazonaws.com/${encoded}`;
  }
}
