using System.Diagnostics;
using System.Globalization;
using ModelOptPS.Engine.Torch;
using ModelOptPS.Fixtures;
using ModelOptPS.GcStress;

// Usage: ModelOptPS.GcStress real|canary|control [seconds]
//   real    - the forward, calibration and quality paths of every family, round after round until the time is up
//             (at least one full round), under GC pressure. Exit 0: every run succeeded with the first run's results.
//   canary  - a call that creates a hidden Scalar, under the same pressure. Exit 0: the race went unseen.
//   control - the canary's call without the pressure thread: exit 0 shows the call itself is right.
// Exit 1: a failure was seen (printed); 2: bad arguments. A native crash ends the process with its own signal code.
// The tests set DOTNET_GCgen0size (a small gen0 budget) for this process; tiered compilation is off in its runtimeconfig.
if (args.Length is < 1 or > 2 || args[0] is not ("real" or "canary" or "control")
    || (args.Length == 2 && !(double.TryParse(args[1], CultureInfo.InvariantCulture, out double parsed) && parsed > 0)))
{
    Console.Error.WriteLine("usage: ModelOptPS.GcStress real|canary|control [seconds]");
    return 2;
}
double seconds = args.Length == 2 ? double.Parse(args[1], CultureInfo.InvariantCulture) : 20;
var clock = Stopwatch.StartNew();
TorchRuntime.EnsureLoaded();
using var canary = args[0] == "real" ? null : new HiddenScalarCanary();
using var pressure = args[0] == "control" ? null : new GcPressure();
var deadline = DateTime.UtcNow.AddSeconds(seconds);

string? failure = args[0] == "real" ? RealPaths() : Canary();
Console.WriteLine($"{args[0]}: {failure ?? "no failure"}; {clock.Elapsed.TotalSeconds:F1} s, {pressure?.Rounds ?? 0} forced collections");
return failure is null ? 0 : 1;

string? Canary()
{
    int iterations = 0;
    string? seen = canary!.Run(deadline, i =>
    {
        if (i == 0) Console.WriteLine($"{args[0]}: calling");
        iterations = i + 1;
    });
    Console.WriteLine($"{args[0]}: {iterations} calls");
    return seen;
}

string? RealPaths()
{
    string root = Path.Combine(Path.GetTempPath(), "modeloptps-gcstress-" + Guid.NewGuid().ToString("N")[..12]);
    var families = new List<FamilyPaths>();
    try
    {
        var expected = new Dictionary<string, IReadOnlyList<(string Path, string Result)>>();
        int runs = 0;
        for (int round = 0; round == 0 || DateTime.UtcNow < deadline; round++)
        {
            foreach (string family in ForwardFamilies.Names)
            {
                if (round > 0 && DateTime.UtcNow >= deadline) break;
                string where = $"{family}, round {round}";
                try
                {
                    if (round == 0) families.Add(FamilyPaths.Prepare(family, root));
                    var results = families.First(f => f.Family == family).Run();
                    runs++;
                    if (!expected.TryAdd(family, results)
                        && results.Zip(expected[family]).FirstOrDefault(p => p.First != p.Second) is { First.Path: not null } changed)
                        return $"{where}: {changed.First.Path} computed {changed.First.Result}, not {changed.Second.Result} as before";
                }
                catch (Exception e) // Whatever a freed Scalar makes libtorch throw is the failure to report.
                {
                    return $"{where}: {e.GetType().Name}: {HiddenScalarCanary.FirstLine(e.Message)}";
                }
            }
        }
        Console.WriteLine($"real: {runs} runs of forward, calibration, planned (NVFP4; FP8 mix with KV cache) and exported quality over {ForwardFamilies.Names.Count} families ({string.Join(", ", ForwardFamilies.Names)})");
        return null;
    }
    finally
    {
        foreach (var f in families) f.Dispose();
        try { Directory.Delete(root, recursive: true); }
        catch (IOException) { }
    }
}
