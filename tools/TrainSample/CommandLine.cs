namespace ModelOptPS.TrainSample;

/// <summary>
/// The program's arguments: <c>--out</c> (required) and optional overrides of the recorded defaults
/// (<c>--steps</c>, <c>--batch</c>, <c>--seq</c>) for shorter trial runs.
/// </summary>
internal sealed record CommandLine(string Output, int? Steps, int? Batch, int? SequenceLength, string Command)
{
    public static CommandLine Parse(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Length; i += 2)
        {
            if (i + 1 >= args.Length || args[i] is not ("--out" or "--steps" or "--batch" or "--seq"))
                throw new ArgumentException($"Unexpected argument '{args[i]}'. Usage: --out FOLDER [--steps N] [--batch N] [--seq N]");
            values[args[i]] = args[i + 1];
        }
        string output = values.GetValueOrDefault("--out") ?? throw new ArgumentException("--out FOLDER is required.");
        return new CommandLine(output, Int(values, "--steps"), Int(values, "--batch"), Int(values, "--seq"),
            "dotnet run --project tools/TrainSample -c Release -- " + string.Join(' ', args));
    }

    public TrainingSettings Apply(TrainingSettings defaults) => defaults with
    {
        Steps = Steps ?? defaults.Steps,
        BatchSize = Batch ?? defaults.BatchSize,
        SequenceLength = SequenceLength ?? defaults.SequenceLength,
    };

    private static int? Int(Dictionary<string, string> values, string key) =>
        values.TryGetValue(key, out string? text) ? int.Parse(text, System.Globalization.CultureInfo.InvariantCulture) : null;
}
