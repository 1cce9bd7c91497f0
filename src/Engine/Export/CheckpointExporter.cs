using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Engine.Export;

/// <summary>
/// Writes a planned (and, where activation scales are needed, calibrated) model as an NVFP4, FP8 or MIXED_PRECISION
/// checkpoint, with an FP8 KV cache when planned (shared/spec/checkpoint-contract.md, as ModelOpt writes them).
/// Streams one tensor at a time into the shards of a hidden sibling staging folder, lists what it wrote in a manifest,
/// and renames the folder into place only when everything is written, so an interrupted export never leaves a folder
/// that looks complete; -Force replaces only a previous export (ExportTarget), and what a killed export left is cleaned
/// by the next one (ExportLeftovers). Never writes to the source. Same inputs give byte-identical output.
/// </summary>
public static class CheckpointExporter
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Files of the source folder that are weights, replaced by the export's own.</summary>
    private static readonly string[] WeightFilePatterns = ["*.safetensors", "*.bin", "*.pt", "*.pth", "*.ckpt", "*.gguf"];

    private static readonly string[] RewrittenFiles = [ModelConfig.FileName, CheckpointWriter.IndexFileName, "hf_quant_config.json"];

    public static ExportResult Export(HFModel model, string targetFolder, ExportOptions options,
        IProgress<ExportProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        string target = Path.GetFullPath(targetFolder);
        var plan = CheckReady(model, target, options.Format);
        var warnings = new List<string>();
        Writing(target, () =>
        {
            var recovered = ExportLeftovers.Recover(target);
            warnings.AddRange(recovered);
            try
            {
                ExportTarget.CheckReplaceable(target, options.Force);
            }
            catch (ModelOptException ex) when (recovered.Count > 0)
            {
                // The recovery's report would be lost with the result: it travels in the error instead.
                throw new ModelOptException(ex.ErrorId, ex.Kind, $"{ex.Message} Before that: {string.Join(" ", recovered)}", ex.Path, ex);
            }
        });

        progress?.Report(new ExportProgress("Measuring weight amax", "", 0, 0));
        var units = WeightUnits.From(model, plan);
        var scales = ScaleGroups.Compute(model, units, cancellationToken);
        warnings.AddRange(scales.Notes);
        var layout = OutputLayout.Build(model, plan, units, scales, options);
        var quantizedNames = units.Where(u => u.IsQuantized).Select(u => u.OutputPrefix).ToList();
        var exclude = ExclusionList(model, plan, units, options.Format);

        var step = options.StepReached ?? (_ => { });
        List<string> files = [];
        Writing(target, () =>
        {
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            using var staging = StagingFolder.Create(target);
            step(ExportStep.StagingCreated);
            files = WriteTensors(layout, staging.Path, options, step, progress, cancellationToken);
            step(ExportStep.ShardsComplete);
            warnings.AddRange(layout.Warnings);
            files.AddRange(WriteConfigs(model, plan, exclude, staging.Path, options, warnings));
            step(ExportStep.ConfigsWritten);
            files.AddRange(CopyOtherFiles(model.Path, staging.Path, step, cancellationToken));
            cancellationToken.ThrowIfCancellationRequested();
            ExportManifest.Write(staging.Path, files, plan.WeightAlgorithm?.ToString());
            staging.Seal();
            step(ExportStep.ManifestWritten);
            ExportTarget.MoveIntoPlace(staging.Path, target, options.Force, step);
        });
        return new ExportResult
        {
            Path = target,
            SourcePath = model.Path,
            Format = options.Format,
            QuantAlgo = plan.QuantAlgo!,
            KvCacheQuantAlgo = plan.KvCache.QuantAlgo,
            Files = files.Order(StringComparer.Ordinal).ToList(),
            SourceSize = model.SizeOnDisk,
            OutputSize = files.Where(f => f.EndsWith(".safetensors", StringComparison.Ordinal)).Sum(f => new FileInfo(Path.Combine(target, f)).Length),
            TensorCount = layout.Tensors.Count,
            QuantizedModules = quantizedNames.Count,
            ExcludedModules = exclude ?? [],
            Warnings = warnings,
            Duration = clock.Elapsed,
        };
    }

    /// <summary>Runs file-system work on the target's folder, reporting an I/O failure as an export write error.</summary>
    private static void Writing(string target, Action work)
    {
        try
        {
            work();
        }
        catch (Exception ex) when (WriteFailure.Is(ex))
        {
            throw WriteFailure.From(ex, target);
        }
    }

    private static QuantPlan CheckReady(HFModel model, string target, ExportFormat format)
    {
        var plan = model.RequirePlan();
        if (plan.QuantAlgo is null)
            throw new ModelOptException("PlanQuantizesNothing", ErrorKind.InvalidOperation,
                $"The plan for '{model.Name}' quantizes nothing; exporting it would write a copy labelled as quantized.", model.Path);
        if (format == ExportFormat.CompressedTensors && CompressedTensorsGap(plan) is { } gap)
            throw new ModelOptException(ExportErrorIds.CompressedTensorsFormatUnsupported, ErrorKind.NotImplemented,
                $"The plan for '{model.Name}' {gap}; ModelOptPS writes compressed-tensors for NVFP4 (W4A4 or weight-only) " +
                "checkpoints only. Export it with -Format ModelOpt, which vLLM, SGLang and TensorRT-LLM load.", model.Path);
        // GPTQ's solutions are calibration data too: a weight-only GPTQ plan needs no activation statistics beside them.
        bool calibrated = model.Statistics is not null || (plan.CalibratedQuantizers.Count == 0 && model.WeightSolutions is not null);
        if (plan.NeedsCalibration && !calibrated)
            throw new ModelOptException("CalibrationRequired", ErrorKind.InvalidOperation,
                $"Plan '{plan.RecipeName}' needs calibrated scales for {CalibrationNeeds.Describe(plan)}: pipe the model through " +
                "Invoke-Calibration before Export-Nvfp4, or choose formats that need none (weight-only NVFP4: Set-QuantConfig -Preset " +
                "W4A16_NVFP4; a KV cache in cast mode: -KvCache Fp8Cast; a data-free weight algorithm: -Algorithm Max, Mse or MseFp8Sweep).", model.Path);
        string source = Path.TrimEndingDirectorySeparator(model.Path) + Path.DirectorySeparatorChar;
        if ((target + Path.DirectorySeparatorChar).StartsWith(source, StringComparison.Ordinal) || source.StartsWith(target + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new ModelOptException("TargetOverlapsSource", ErrorKind.InvalidArgument,
                $"The export folder '{target}' overlaps the source checkpoint '{model.Path}'; the source is never written to.", target);
        return plan;
    }

    /// <summary>What compressed-tensors cannot say about this plan, or null.</summary>
    private static string? CompressedTensorsGap(QuantPlan plan)
    {
        var gaps = new List<string>();
        if (plan.Formats.Contains("FP8")) gaps.Add("quantizes modules to FP8");
        if (plan.QuantAlgo == QuantizationSummary.MixedPrecision) gaps.Add($"mixes formats ({string.Join(", ", plan.Formats)})");
        if (plan.KvCache.Mode != KvCacheMode.None) gaps.Add("quantizes the KV cache");
        return gaps.Count == 0 ? null : string.Join(" and ", gaps);
    }

    /// <summary>
    /// The exclusion list as written: for compressed-tensors every Linear-like module left unquantized; for ModelOpt's
    /// format with one quantization format, ModelOpt's summary of them, and with MIXED_PRECISION none (the per-layer
    /// list says what is quantized); then the MTP head the way ModelOpt adds it (<see cref="MtpExclusions"/>). Null where
    /// ModelOpt writes no list.
    /// </summary>
    private static IReadOnlyList<string>? ExclusionList(HFModel model, QuantPlan plan, IReadOnlyList<WeightUnit> units, ExportFormat format)
    {
        // Experts copied fused (MTP) are unquantized Linear-like modules too: a consumer must not expect NVFP4 there.
        var unquantized = units.Where(u => !u.IsQuantized).Select(u => u.OutputPrefix)
            .Concat(plan.Modules.Where(m => m.Kind == ModuleKind.FusedExperts && !WeightUnits.IsSplit(m.Module)).Select(m => m.Name))
            .ToList();
        if (format == ExportFormat.CompressedTensors)
            return unquantized.Order(StringComparer.Ordinal).ToList(); // vLLM matches ignore entries by exact name or re:
        var quantized = units.Where(u => u.IsQuantized).Select(u => u.OutputPrefix).ToList();
        // ModelOpt never quantizes the MTP head; a plan that does keeps it in the summary, where no wildcard can cover it.
        var mtp = quantized.Any(MtpExclusions.IsMtp) ? [] : MtpExclusions.Prefixes(model.Checkpoint.Tensors.Keys);
        IReadOnlyList<string>? summary = null;
        if (plan.QuantAlgo != QuantizationSummary.MixedPrecision)
        {
            // ModelOpt also lists convolutions, which carry quantizers left disabled.
            var convolutions = plan.Modules.Where(m => m.Kind == ModuleKind.Conv).Select(m => m.Name);
            summary = ExcludeModules.Summarize(unquantized.Concat(convolutions).Where(n => mtp.Count == 0 || !MtpExclusions.IsMtp(n)), quantized);
        }
        return mtp.Count == 0 ? summary : MtpExclusions.Append(summary ?? [], mtp);
    }

    private static List<string> WriteTensors(OutputLayout layout, string folder, ExportOptions options, Action<ExportStep> step,
        IProgress<ExportProgress>? progress, CancellationToken cancellationToken)
    {
        using var writer = new CheckpointWriter(folder, layout.Tensors.Select(t => t.Spec).ToList(), options.MaxShardBytes);
        long total = writer.Plan.TotalSize;
        foreach (var tensor in layout.Tensors)
        {
            cancellationToken.ThrowIfCancellationRequested();
            tensor.Write(writer);
            step(ExportStep.TensorWritten);
            progress?.Report(new ExportProgress("Writing tensors", tensor.Name, writer.BytesWritten, total));
        }
        return writer.Complete().ToList();
    }

    private static IEnumerable<string> WriteConfigs(HFModel model, QuantPlan plan, IReadOnlyList<string>? exclude, string folder,
        ExportOptions options, List<string> warnings)
    {
        var config = (JsonObject)model.Config.Root.DeepClone();
        if (model.Config.Architecture is null && model.Architecture is { } arch)
        {
            // Engines pick the model class from this field; a null one is the seed bug's first silent failure.
            config["architectures"] = new JsonArray(arch);
            warnings.Add($"config.json had no architectures; wrote [\"{arch}\"] ({model.ArchitectureSource})");
        }
        if (options.Format == ExportFormat.ModelOpt)
        {
            var summary = QuantizationSummary.Of(plan, exclude);
            config["quantization_config"] = QuantizationConfigs.ModelOpt(summary, options.ProducerVersion);
            File.WriteAllText(Path.Combine(folder, "hf_quant_config.json"),
                QuantizationConfigs.HfQuantConfig(summary, options.ProducerVersion).ToJsonString(Indented) + "\n");
            yield return "hf_quant_config.json";
        }
        else
        {
            config["quantization_config"] = QuantizationConfigs.CompressedTensors(plan.QuantAlgo == "NVFP4", exclude!);
        }
        File.WriteAllText(Path.Combine(folder, ModelConfig.FileName), config.ToJsonString(Indented) + "\n");
        yield return ModelConfig.FileName;
    }

    /// <summary>Tokenizer, generation config, templates, licence…: every non-weight file, unchanged.</summary>
    private static IEnumerable<string> CopyOtherFiles(string source, string folder, Action<ExportStep> step, CancellationToken cancellationToken)
    {
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            cancellationToken.ThrowIfCancellationRequested();
            string relative = Path.GetRelativePath(source, file);
            string name = Path.GetFileName(file);
            if (relative.Split(Path.DirectorySeparatorChar).Any(part => part.StartsWith('.'))) continue;
            if (RewrittenFiles.Contains(relative) || WeightFilePatterns.Any(p => FileSystemName(name, p))) continue;
            string destination = Path.Combine(folder, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            File.Copy(file, destination);
            step(ExportStep.FileCopied);
            yield return relative;
        }
    }

    private static bool FileSystemName(string name, string pattern) =>
        System.IO.Enumeration.FileSystemName.MatchesSimpleExpression(pattern, name, ignoreCase: true);
}
