using ModelOptPS.Bench;

// The benchmark harness: `--out DIR` (where each benchmark writes NAME.json), `--only NAME` (run one),
// `--quick` (smaller data, fewer repetitions: a smoke run), `--list`. Benchmarks are the IBenchmark classes of this
// assembly, found by reflection: adding one is adding a file (see BenchHarness.cs).
return BenchHarness.Run(args);
