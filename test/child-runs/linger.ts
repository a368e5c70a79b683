// Global setup of the report fixtures when metrics are served: the run stays up
// 2.5 s after its last test, so Prometheus (1 s interval) scrapes the final values.
export default function setup(): () => Promise<void> {
  return () => new Promise((r) => setTimeout(r, 2500));
}
