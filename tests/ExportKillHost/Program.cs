using System.Diagnostics;
using ModelOptPS.Engine.Export;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;

// Usage: ModelOptPS.ExportKillHost <source> <target> <step>:<occurrence> [--force]
// Exports <source> with the weight-only NVFP4 preset into <target> and kills this process with SIGKILL (no finally
// block, no finalizer, no flush runs) when the export reaches the <occurrence>-th <step>. The fault-injection tests
// then check what the kill left on disk. Exit code 2: the step was never reached.
if (args.Length is < 3 or > 4)
{
    Console.Error.WriteLine("usage: ModelOptPS.ExportKillHost <source> <target> <step>:<occurrence> [--force]");
    return 64;
}
var killAt = args[2].Split(':');
var step = Enum.Parse<ExportStep>(killAt[0]);
int occurrence = int.Parse(killAt[1], System.Globalization.CultureInfo.InvariantCulture);
bool force = args.Length == 4 && args[3] == "--force";

using var model = ModelImporter.Import(args[0]);
var recipe = Presets.Get("W4A16_NVFP4").WithModulePatterns([], [], QuantizerFormat.Nvfp4, weightOnly: true);
model.Plan = QuantPlanner.Plan(model, recipe);
int seen = 0;
var options = new ExportOptions
{
    Force = force,
    MaxShardBytes = 100_000,
    StepReached = reached =>
    {
        if (reached != step || ++seen != occurrence) return;
        Console.Out.WriteLine($"killed at {reached}:{seen}");
        Console.Out.Flush();
        Process.GetCurrentProcess().Kill(); // SIGKILL on Unix
    },
};
CheckpointExporter.Export(model, args[1], options);
Console.Out.WriteLine($"step {step}:{occurrence} was not reached");
return 2;
