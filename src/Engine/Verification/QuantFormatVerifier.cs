using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// Verifies that a folder is an NVFP4 checkpoint as shared/spec/checkpoint-contract.md defines it, in the ModelOpt or
/// the compressed-tensors layout, or a ModelOpt FP8 or MIXED_PRECISION checkpoint (with its FP8 KV cache) as ModelOpt writes it, and optionally that it encodes a given source checkpoint. Written from the contract
/// and the consumers' rules alone, independently of the exporter, so that it catches the exporter's mistakes.
/// A broken checkpoint is a report with failed checks, never an exception; only a folder that does not exist, or an
/// unreadable reference, throws.
/// </summary>
public static class QuantFormatVerifier
{
    /// <param name="folder">The checkpoint to verify.</param>
    /// <param name="referenceFolder">The source it was exported from: enables the byte-for-byte and error-bound checks.</param>
    /// <exception cref="ModelOptException"><see cref="ErrorIds.CheckpointFolderNotFound"/>, or any error of opening the reference.</exception>
    public static VerificationReport Verify(string folder, string? referenceFolder = null, VerifyOptions? options = null)
    {
        options ??= VerifyOptions.Default;
        folder = CheckpointReader.RequireFolder(folder);
        using var source = referenceFolder is null ? null : CheckpointReader.Open(referenceFolder);
        // Codes that are not the rounding of the source are GPTQ's only where the export says so, or says nothing (another producer).
        bool reroundedCodesAllowed = ModelOptPS.Engine.Export.ExportManifest.TryRead(folder)?.WeightAlgorithm is null or nameof(WeightAlgorithm.Gptq);
        var reference = source is null ? null : new ReferenceComparison(new ReferenceMap(source), reroundedCodesAllowed, options.CancellationToken);

        var checks = new CheckList();
        options.Log?.Invoke($"Reading '{folder}': config.json, the shard index and every safetensors header.");
        using var inventory = CheckpointInventory.Open(folder, checks);
        options.Log?.Invoke($"{Text.Count(inventory.ShardCount, "readable shard")}, {Text.Count(inventory.Tensors.Count, "tensor")}.");
        var declared = QuantConfigCheck.Read(folder, inventory.Config, checks);
        options.Log?.Invoke($"Declared: {declared.Describe}" +
            (declared.Format == QuantFormat.None ? "." : $", {Text.Count(declared.Exclusions.Entries.Count, declared.Naming.ExclusionListName + " entry", declared.Naming.ExclusionListName + " entries")}."));

        if (declared.Verifiable) new ModuleChecks(inventory, declared, reference, checks, options).Run();
        if (reference is not null)
        {
            options.Log?.Invoke($"Comparing config.json and the other files with the source '{source!.Folder}'.");
            SourceFiles.Compare(reference.Map, inventory, checks);
        }
        return new VerificationReport(folder, source?.Folder, declared.Format, declared.QuantAlgo, declared.KvCacheQuantAlgo, checks.Build(),
            inventory.ShardCount, inventory.Tensors.Count);
    }
}
