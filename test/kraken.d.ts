// Kraken.io's official Node client (`kraken` on npm) ships no types: what the tests use of it.
declare module 'kraken' {
  class KrakenApiList {
    constructor(url?: string);
  }
  interface KrakenResponse {
    success: boolean;
    message?: string;
    [field: string]: unknown;
  }
  class Kraken {
    constructor(auth: { api_key: string; api_secret: string });
    api: KrakenApiList;
    static KrakenApiList: typeof KrakenApiList;
    url(options: Record<string, unknown>): Promise<KrakenResponse>;
    upload(options: Record<string, unknown>): Promise<KrakenResponse>;
    userStatus(): Promise<KrakenResponse>;
  }
  export = Kraken;
}
