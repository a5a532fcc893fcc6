/** Fields of the one log line written per request; stages fill in what they learn. */
export interface RequestLog {
  site?: string;
  method: string;
  path: string;
  status?: number;
  cache?: string;
  formatIn?: string;
  formatOut?: string;
  /** auto=format's encodes on a miss, first choice first: "avif,jpeg" */
  formatsTried?: string;
  bytesIn?: number;
  bytesOut?: number;
  dimsIn?: string;
  dimsOut?: string;
  quality?: number;
  fetchMs?: number;
  transformMs?: number;
  totalMs?: number;
  error?: string;
}
