/**
 * One webhook delivery attempt: the result POSTed as JSON to the caller's callback_url, signed
 * (`X-Imgedge-Signature: sha256=<hex HMAC-SHA256 of the body>`), through the public-address
 * guard, with a 10 s limit. A 2xx answer delivers it; anything else is a failed attempt.
 */
import { createHmac } from 'node:crypto';
import { Agent, request } from 'undici';
import type { PublicAddressGuard } from '../origin/public-fetch.js';

export interface Delivery {
  id: string;
  /** the API key whose job it is (it signs, and only it may read the log) */
  key: string;
  callbackUrl: string;
  body: Record<string, unknown>;
}

export interface DeliveryAttempt {
  /** ms since the epoch */
  at: number;
  status?: number;
  error?: string;
  ms: number;
}

export interface DeliveryLog {
  id: string;
  callback_url: string;
  state: 'pending' | 'delivered' | 'failed';
  attempts: DeliveryAttempt[];
}

/** 5 tries over about an hour: after 4, 8, 16 and 32 minutes (exponential, base 4 minutes). */
export const DELIVERY_POLICY = { attempts: 5, backoffMs: 240_000, timeoutMs: 10_000, keepMs: 7 * 24 * 3600 * 1000 };

export function signature(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export class WebhookSender {
  private readonly agent: Agent;

  constructor(
    private readonly guard: PublicAddressGuard,
    private readonly secretOf: (key: string) => string | undefined,
    /** for the whole attempt, connection to the answer's last byte (a receiver trickling its answer is cut off) */
    private readonly timeoutMs = DELIVERY_POLICY.timeoutMs,
  ) {
    this.agent = new Agent({ connect: { timeout: timeoutMs, lookup: guard.lookup() }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, keepAliveTimeout: 4_000 });
  }

  async attempt(d: Delivery): Promise<DeliveryAttempt> {
    const at = Date.now();
    const started = performance.now();
    const ms = () => Math.round(performance.now() - started);
    try {
      const url = new URL(d.callbackUrl);
      this.guard.checkUrl(url);
      const secret = this.secretOf(d.key);
      if (secret === undefined) return { at, error: 'the API key is no longer configured', ms: ms() };
      const text = JSON.stringify(d.body);
      const signal = AbortSignal.timeout(this.timeoutMs);
      const res = await request(url, {
        method: 'POST',
        dispatcher: this.agent,
        signal,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'imgedge-webhooks/0.1',
          'x-imgedge-signature': signature(text, secret),
          'x-imgedge-delivery': d.id,
        },
        body: text,
      });
      await res.body.dump();
      // dump() ends quietly when the signal cuts the body off: an answer not read whole is no delivery
      signal.throwIfAborted();
      return res.statusCode >= 200 && res.statusCode < 300 ? { at, status: res.statusCode, ms: ms() } : { at, status: res.statusCode, error: `answered ${res.statusCode}`, ms: ms() };
    } catch (err) {
      const e = err as Error & { code?: string };
      if (e.name === 'TimeoutError') return { at, error: `no answer within ${this.timeoutMs} ms`, ms: ms() };
      return { at, error: e.code ? `${e.code}: ${e.message}` : e.message, ms: ms() };
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
