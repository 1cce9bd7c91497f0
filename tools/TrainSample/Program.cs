using System.Diagnostics;
using System.Text;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Torch;
using ModelOptPS.TrainSample;
using ModelOptPS.TrainSample.Model;
using TorchSharp;

// Trains sample/qwen3-moe-tiny from the built-in corpus. Usage:
//   dotnet run --project tools/TrainSample -c Release -- --out sample/qwen3-moe-tiny [--steps N]
var options = CommandLine.Parse(args);
var shape = new SampleShape();
var settings = options.Apply(new TrainingSettings());
var total = Stopwatch.StartNew();

TorchRuntime.EnsureLoaded();
torch.set_num_threads(settings.Threads);
torch.manual_seed(settings.Seed);
Directory.CreateDirectory(options.Output);

var train = CalibrationDocuments.BuiltIn(CorpusSplit.Train).ToList();
var heldOut = CalibrationDocuments.BuiltIn(CorpusSplit.HeldOut).ToList();
Console.WriteLine($"Training the tokenizer on {train.Count} train documents …");
var tokenizerClock = Stopwatch.StartNew();
var bpe = SampleTokenizer.Train(train.Select(d => d.Text), shape.VocabSize);
SampleTokenizer.Write(options.Output, bpe, settings.SequenceLength);
using var tokenizer = SampleTokenizer.LoadAndCheck(options.Output, train.Concat(heldOut).Select(d => d.Text));
tokenizerClock.Stop();
var trainStream = TokenStream.From(train, tokenizer);
var heldOutWindows = TokenStream.From(heldOut, tokenizer).Windows(settings.SequenceLength);
long trainBytes = train.Sum(d => (long)Encoding.UTF8.GetByteCount(d.Text));
Console.WriteLine($"  {bpe.Vocabulary.Count} BPE tokens + {SampleTokenizer.SpecialTokens.Length} special; train {trainStream.Tokens.Length} tokens " +
                  $"({(double)trainBytes / trainStream.Tokens.Length:F2} bytes/token), held-out {heldOutWindows.Count} windows; {tokenizerClock.Elapsed.TotalSeconds:F1}s");

var rope = new RotaryTable(settings.SequenceLength, shape.HeadDim, shape.RopeTheta);
using var model = new Qwen3MoeForCausalLM(shape);
model.InitializeWeights();
Console.WriteLine($"Training {model.parameters().Sum(p => p.numel()):N0} parameters for {settings.Steps} steps of {settings.BatchSize}×{settings.SequenceLength} tokens …");
var log = new Trainer(model, shape, settings, rope).Run(trainStream, heldOutWindows);

var master = HeldOutEvaluation.Run(model, heldOutWindows, shape, rope, settings.BatchSize);
SampleCheckpoint.RoundToBFloat16(model);
var shipped = HeldOutEvaluation.Run(model, heldOutWindows, shape, rope, settings.BatchSize);
SampleCheckpoint.Write(options.Output, model, shape);
JsonFiles.Write(Path.Combine(options.Output, "config.json"), shape.ConfigJson(tokenizer.EosId!.Value, settings.SequenceLength));
JsonFiles.Write(Path.Combine(options.Output, "generation_config.json"), SampleShape.GenerationConfigJson(tokenizer.EosId!.Value));
total.Stop();

var info = TorchRuntime.GetInfo();
JsonFiles.Write(Path.Combine(options.Output, "training.json"), TrainingRecord.Build(new TrainingRecord.Inputs(
    options.Command, shape, settings, bpe, trainStream.Tokens.Length, shipped.Tokens, trainBytes, log, master, shipped,
    tokenizerClock.Elapsed, total.Elapsed, info.LibTorchVersion ?? "unknown", info.TorchSharpVersion)));
Console.WriteLine($"Held-out loss {shipped.Loss:F4}, perplexity {shipped.Perplexity:F2} (bf16 weights; float32 master {master.Perplexity:F2}); " +
                  $"final train loss {log.FinalTrainLoss:F4}; {total.Elapsed.TotalMinutes:F1} min. Written to {options.Output}.");
