/** Reads a running milter's /metrics (Prometheus text format) the way a scraper would. */

export type Samples = ReadonlyMap<string, number>;

/** Every sample as `name{labels}` (labels as exposed) -> value; empty when the endpoint is down. */
export async function scrape(httpUrl: string): Promise<Samples> {
  const samples = new Map<string, number>();
  let text: string;
  try {
    const res = await fetch(`${httpUrl}/metrics`, { signal: AbortSignal.timeout(2000) });
    text = await res.text();
  } catch {
    return samples;
  }
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

/** The value of `name` whose labels include every one of `labels` (summed over the rest). */
export function sample(
  samples: Samples,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  let total: number | undefined;
  for (const [series, value] of samples) {
    const brace = series.indexOf('{');
    if ((brace < 0 ? series : series.slice(0, brace)) !== name) continue;
    const all = brace < 0 ? '' : series.slice(brace);
    if (Object.entries(labels).every(([k, v]) => all.includes(`${k}="${v}"`)))
      total = (total ?? 0) + value;
  }
  return total;
}
