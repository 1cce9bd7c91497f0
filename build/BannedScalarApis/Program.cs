using ModelOptPS.BannedScalarApis;

// Writes the banned list for the TorchSharp.dll the projects compile against (or the one given) to
// build/BannedSymbols.txt (or the path given second).
const string TorchSharpVersion = "0.107.0";
var dll = args.Length > 0 ? args[0] : TorchSharpAssembly.InNuGetCache(TorchSharpVersion);
var output = args.Length > 1 ? args[1] : BannedSymbolsFile.InRepository();
var lines = ScalarCreatingApis.BannedSymbolLines(dll);
File.WriteAllLines(output, lines);
Console.WriteLine($"{lines.Count} banned members from {dll} written to {output}");
