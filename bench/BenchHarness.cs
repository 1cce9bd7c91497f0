using System.Diagnostics;
using System.Reflection;
using System.Text.Json;

namespace ModelOptPS.Bench;

/// <summary>One benchmark: a name for <c>--only</c> and the JSON file, and a run that measures and reports.</summary>
internal interface IBenchmark
{
    /// <summary>Short lower-case name, e.g. <c>nvfp4</c>; the results go to <c>&lt;out&gt;/&lt;name&gt;.json</c>.</summary>
    string Name { get; }

    string Description { get; }

    void Run(BenchContext context);
}

/// <summary>What a benchmark gets: where to write, how thorough to be, and helpers for timing and reporting.</summary>
internal sealed class BenchContext(string outputDirectory, bool quick, IReadOnlyDictionary<string, string> options)
{
    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    public string OutputDirectory { get; } = outputDirectory;

    /// <summary>Smaller data and fewer repetitions (a smoke test of the harness, not numbers to quote).</summary>
    public bool Quick { get; } = quick;

    /// <summary>The other <c>--name value</c> arguments, for the benchmarks that take options (e.g. <c>scale</c>'s <c>--layers</c>).</summary>
    public IReadOnlyDictionary<string, string> Options { get; } = options;

    /// <summary>Option <c>--<paramref name="name"/></c> as a whole number in [<paramref name="min"/>, <paramref name="max"/>], or <paramref name="fallback"/>.</summary>
    public int Option(string name, int fallback, int min, int max)
    {
        if (!Options.TryGetValue(name, out string? text)) return fallback;
        return int.TryParse(text, out int value) && value >= min && value <= max ? value
            : throw new ArgumentException($"--{name} must be a whole number from {min} to {max}, not '{text}'.");
    }

    /// <summary>Writes <paramref name="result"/> as indented JSON to <c>&lt;out&gt;/&lt;name&gt;.json</c> and returns the path.</summary>
    public string WriteJson(string name, object result)
    {
        Directory.CreateDirectory(OutputDirectory);
        string path = Path.Combine(OutputDirectory, name + ".json");
        File.WriteAllText(path, JsonSerializer.Serialize(result, result.GetType(), JsonOptions));
        return path;
    }

    /// <summary>
    /// Runs <paramref name="action"/> <paramref name="warmup"/> times untimed, then at least <paramref name="minRuns"/>
    /// times and until <paramref name="minSeconds"/> have passed (at most <paramref name="maxRuns"/>).
    /// </summary>
    public static Timing Measure(Action action, int warmup, int minRuns, double minSeconds, int maxRuns = 1000)
    {
        for (int i = 0; i < warmup; i++)
        {
            action();
        }

        var seconds = new List<double>();
        var total = Stopwatch.StartNew();
        while (seconds.Count < maxRuns && (seconds.Count < minRuns || total.Elapsed.TotalSeconds < minSeconds))
        {
            long start = Stopwatch.GetTimestamp();
            action();
            seconds.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }

        return Timing.From(seconds);
    }

    /// <summary>
    /// Times several actions interleaved, one run of each per round, so that load from other processes and drift in
    /// clock or memory speed fall on all of them alike: <paramref name="warmup"/> untimed rounds, then rounds until at
    /// least <paramref name="minRounds"/> and <paramref name="minSeconds"/> have passed.
    /// </summary>
    public static Timing[] MeasureInterleaved(IReadOnlyList<Action> actions, int warmup, int minRounds, double minSeconds, int maxRounds = 1000)
    {
        for (int i = 0; i < warmup; i++)
        {
            foreach (Action action in actions)
            {
                action();
            }
        }

        var seconds = actions.Select(_ => new List<double>()).ToArray();
        var total = Stopwatch.StartNew();
        for (int round = 0; round < maxRounds && (round < minRounds || total.Elapsed.TotalSeconds < minSeconds); round++)
        {
            for (int a = 0; a < actions.Count; a++)
            {
                long start = Stopwatch.GetTimestamp();
                actions[a]();
                seconds[a].Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
            }
        }

        return seconds.Select(Timing.From).ToArray();
    }

    /// <summary>Prints a left-aligned first column and right-aligned others.</summary>
    public static void PrintTable(string[] header, IEnumerable<string[]> rows)
    {
        var all = new List<string[]> { header };
        all.AddRange(rows);
        int[] widths = Enumerable.Range(0, header.Length).Select(c => all.Max(r => r[c].Length)).ToArray();
        foreach (string[] row in all)
        {
            Console.WriteLine(string.Join("  ", row.Select((cell, c) => c == 0 ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c]))));
            if (ReferenceEquals(row, header))
            {
                Console.WriteLine(string.Join("  ", widths.Select(w => new string('-', w))));
            }
        }
    }
}

/// <summary>Seconds per run: median (the figure quoted), best, and how many runs.</summary>
internal sealed record Timing(double MedianSeconds, double BestSeconds, int Runs)
{
    public static Timing From(List<double> seconds)
    {
        double[] sorted = seconds.Order().ToArray();
        double median = sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        return new Timing(median, sorted[0], sorted.Length);
    }
}

internal static class BenchHarness
{
    public static int Run(string[] args)
    {
        string output = Path.Combine("out", "bench");
        string? only = null;
        bool quick = false, list = false;
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--out" when i + 1 < args.Length:
                    output = args[++i];
                    break;
                case "--only" when i + 1 < args.Length:
                    only = args[++i];
                    break;
                case "--quick":
                    quick = true;
                    break;
                case "--list":
                    list = true;
                    break;
                case ['-', '-', _, ..] when i + 1 < args.Length:
                    options[args[i][2..]] = args[++i];
                    break;
                default:
                    Console.Error.WriteLine($"Unknown argument '{args[i]}'. Usage: [--out DIR] [--only NAME] [--quick] [--list] [--OPTION VALUE]...");
                    return 2;
            }
        }

        IBenchmark[] benchmarks = Assembly.GetExecutingAssembly().GetTypes()
            .Where(t => typeof(IBenchmark).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
            .Select(t => (IBenchmark)Activator.CreateInstance(t)!)
            .OrderBy(b => b.Name, StringComparer.Ordinal)
            .ToArray();
        if (list)
        {
            foreach (IBenchmark b in benchmarks)
            {
                Console.WriteLine($"{b.Name,-16} {b.Description}");
            }

            return 0;
        }

        IBenchmark[] selected = only is null ? benchmarks : benchmarks.Where(b => b.Name.Equals(only, StringComparison.OrdinalIgnoreCase)).ToArray();
        if (selected.Length == 0)
        {
            Console.Error.WriteLine($"No benchmark named '{only}'. Known: {string.Join(", ", benchmarks.Select(b => b.Name))}.");
            return 2;
        }

        var context = new BenchContext(Path.GetFullPath(output), quick, options);
        int failures = 0;
        foreach (IBenchmark benchmark in selected)
        {
            Console.WriteLine($"== {benchmark.Name}: {benchmark.Description}{(quick ? " (quick)" : "")}");
            try
            {
                benchmark.Run(context);
            }
            catch (Exception e)
            {
                failures++;
                Console.Error.WriteLine($"{benchmark.Name} failed: {e}");
            }

            Console.WriteLine();
        }

        return failures == 0 ? 0 : 1;
    }
}
