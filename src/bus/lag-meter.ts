/** Lag figures of the frames received over the bus, in ms (publish in one process → pushed into this one's hub). */
export class LagMeter {
  last = 0;
  max = 0;
  private samples: number[] = [];

  add(ms: number): void {
    this.last = ms;
    if (ms > this.max) this.max = ms;
    this.samples.push(ms);
    if (this.samples.length > 1024) this.samples.splice(0, 512);
  }

  /** The 99th percentile of the last (up to) 1024 frames. */
  get p99(): number {
    if (this.samples.length === 0) return 0;
    const sorted = [...this.samples].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
  }
}
