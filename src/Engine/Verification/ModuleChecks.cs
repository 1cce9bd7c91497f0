using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// Checks every module of a checkpoint that declares NVFP4, FP8 or MIXED_PRECISION: a module with NVFP4 or FP8 tensors
/// must have them as the contract lists, in the format the config declares for it, and must not be excluded; a Linear
/// without them must be listed as excluded (single format) or named by no quantized_layers entry (MIXED_PRECISION);
/// then the KV scales, the precision and scales shared across modules, the exclusion and quantized_layers entries
/// themselves and, with a reference, every value against the source.
/// </summary>
internal sealed class ModuleChecks(CheckpointInventory inventory, DeclaredQuantization declared, ReferenceComparison? reference,
    CheckList checks, VerifyOptions options)
{
    private readonly List<QuantizedModule> _quantized = [];
    private readonly List<(string Name, string? Precision)> _precisions = [];

    private string ListName => declared.Naming.ExclusionListName;

    public void Run()
    {
        var modules = InventoryBuilder.Build(inventory.Tensors.Values.Select(t => t.Info), ArchitectureSpec.Unknown);
        var unreadable = inventory.Unreadable.GroupBy(kv => ModuleOf(kv.Key))
            .ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        options.Log?.Invoke($"Checking {Text.Count(modules.Count, "module")} against the contract for {declared.Describe}" +
            (reference is null ? "." : $", and against the source '{reference.Map.Folder}'."));
        for (int i = 0; i < modules.Count; i++)
        {
            options.CancellationToken.ThrowIfCancellationRequested();
            var module = modules[i];
            var check = checks.Module(module.Name);
            if (unreadable.Remove(module.Name, out var tensor))
                Unreadable(check, tensor);
            else if (Nvfp4Naming.LooksQuantized(module.Parameters) || Fp8Module.Holds(module.Parameters))
                CheckQuantized(module, check);
            else
                CheckUnquantized(module, check);
            options.Progress?.Report(new VerificationProgress(module.Name, i + 1, modules.Count));
        }
        foreach (var (name, tensor) in unreadable) Unreadable(checks.Module(name), tensor);

        KvCacheScales.Check(modules, inventory.Tensors, declared, checks);
        var layers = MergedLayerTable.For(inventory.Config);
        options.Log?.Invoke($"Checking the precision and scales merged layers ({layers.Family}) and expert sets share.");
        ScaleSharing.Check(_quantized, _precisions, layers, declared, checks);
        reference?.CheckWeightScale2(_quantized, layers, declared.Naming, checks);
        var names = modules.Select(m => m.Name).Concat(inventory.Unreadable.Keys.Select(ModuleOf)).ToHashSet(StringComparer.Ordinal);
        CheckExclusionEntries(names);
        if (declared.Layers is { } quantizedLayers) CheckQuantizedLayerEntries(quantizedLayers, names);
        if (_precisions.All(p => p.Precision is null) && inventory.Complete)
            checks.Get(CheckScope.Checkpoint, Path.GetFileName(inventory.Folder)).Fail(VerificationIds.NothingQuantized,
                $"The config declares {declared.Describe}, but no module holds NVFP4 or FP8 tensors: every Linear is still in the source dtype.");
        if (reference is not null) CheckCoverage(reference.Map);
    }

    private static void Unreadable(CheckBuilder check, KeyValuePair<string, string> tensor)
    {
        check.Found = "unreadable";
        check.Fail(VerificationIds.TensorUnreadable, $"'{tensor.Key}' cannot be read: {tensor.Value}.");
    }

    private void CheckQuantized(ModelModule module, CheckBuilder check)
    {
        var p = module.Parameters;
        bool fp8 = Fp8Module.Holds(p);
        string found = fp8 ? DeclaredQuantization.Fp8 : p.ContainsKey(declared.Naming.InputScale) ? DeclaredQuantization.Nvfp4 : DeclaredQuantization.W4A16;
        string? algo = declared.Exclusions.Excluding(module.Name) is null ? declared.AlgoFor(module.Name) : null;
        check.Expected = DeclaredQuantization.Expected(algo);
        if (NeverQuantized(module) is { } what)
        {
            check.Expected = $"unquantized ({what} never are)";
            check.Fail(VerificationIds.MustNotBeQuantized,
                $"{what} are never quantized (checkpoint-contract.md), but this module holds {found} tensors; engines build it unquantized and cannot load them.");
        }
        else if (declared.Exclusions.Excluding(module.Name) is { } entry)
        {
            check.Expected = $"unquantized ({ListName} '{entry}')";
            check.Fail(VerificationIds.ExcludedButQuantized,
                $"{ListName} entry {declared.Exclusions.Explain(entry, module.Name)}, so engines build this module unquantized, but it holds {found} tensors: loading fails (vLLM PR #45132).");
        }
        else if (algo is null)
        {
            check.Fail(VerificationIds.QuantizedButNotListed,
                $"Holds {found} tensors, but no quantized_layers entry names it (nor its experts container): in a MIXED_PRECISION checkpoint engines build every " +
                "unlisted Linear unquantized and cannot load them. List it in quantized_layers (both config files), or write it unquantized.");
        }
        else if (fp8 != (algo == DeclaredQuantization.Fp8))
        {
            check.Fail(VerificationIds.WrongQuantFormat,
                $"Holds {(fp8 ? "FP8" : "NVFP4")} tensors, but the config declares {algo} for it: engines build a {algo} layer and mis-read or refuse them.");
        }
        // The declared NVFP4 form wins over the input_scale's presence, which the module's own check reports.
        _precisions.Add((module.Name, !fp8 && algo is DeclaredQuantization.Nvfp4 or DeclaredQuantization.W4A16 ? algo : found));
        if (fp8)
            CheckFp8(module, check);
        else
            CheckNvfp4(module, algo switch { DeclaredQuantization.W4A16 => true, DeclaredQuantization.Nvfp4 => false, _ => found == DeclaredQuantization.W4A16 }, check);
        if (reference is null) return;
        foreach (var parameter in p.Keys.Where(k => !declared.IsQuantizationTensor(k)))
            reference.CompareCopy(inventory.Tensors[module.Name + "." + parameter], check);
    }

    private void CheckNvfp4(ModelModule module, bool weightOnly, CheckBuilder check)
    {
        var weight = QuantizedModule.Inspect(module, inventory.Tensors, declared, weightOnly, check);
        check.Found = weight?.Found ?? $"{Nvfp4Naming.FoundPrefix} tensors, incomplete";
        if (weight is null) return;
        _quantized.Add(weight);
        check.Note = "NVFP4 tensors as the contract lists them, scales valid";
        reference?.CompareQuantized(weight, check);
    }

    private void CheckFp8(ModelModule module, CheckBuilder check)
    {
        var weight = Fp8Module.Inspect(module, inventory.Tensors, check);
        check.Found = weight?.Found ?? $"{Fp8Module.FoundPrefix} tensors, incomplete";
        if (weight is null) return;
        check.Note = "FP8 per-tensor tensors as ModelOpt writes them, scales valid";
        reference?.CompareFp8(weight, check);
    }

    private void CheckUnquantized(ModelModule module, CheckBuilder check)
    {
        check.Found = $"{module.DType} {module.ShapeText}";
        check.Expected = $"unquantized {module.Kind}";
        check.Note = $"unquantized {module.Kind}";
        if (module.Kind == ModuleKind.FusedExperts && module.Section == ModelSection.Text)
            check.Fail(VerificationIds.FusedExpertsNotSplit,
                "3-D fused experts must be written per expert (<experts>.<e>.gate_proj / up_proj / down_proj) outside mtp. and model.visual.; engines load those names.");
        if (module.Kind is ModuleKind.Linear or ModuleKind.Router or ModuleKind.FusedExperts)
        {
            _precisions.Add((module.Name, null));
            if (declared.Layers is { } layers) CheckNotDeclared(module, layers, check);
            else CheckListed(module, check);
        }
        if (reference is null) return;
        foreach (var parameter in module.Parameters.Keys.Where(k => !KvCacheScales.IsScale(k)))
            reference.CompareCopy(inventory.Tensors[module.Name + "." + parameter], check);
        if (!check.Failed) check.Note += ", identical to the source";
    }

    /// <summary>In a MIXED_PRECISION checkpoint a Linear is unquantized exactly when no quantized_layers entry names it.</summary>
    private void CheckNotDeclared(ModelModule module, QuantizedLayers layers, CheckBuilder check)
    {
        if (layers.EntryFor(module.Name) is not { } entry || declared.Exclusions.Excluding(module.Name) is not null)
        {
            check.Expected = "unquantized (no quantized_layers entry)";
            check.Note = $"unquantized {module.Kind}, named by no quantized_layers entry";
            return;
        }
        string algo = layers.Algos[entry];
        check.Expected = DeclaredQuantization.Expected(algo);
        check.Fail(VerificationIds.NotQuantized,
            $"quantized_layers entry '{entry}' declares it {algo}, but its weight is still {module.DType} {module.ShapeText}: engines look for {algo} tensors " +
            "that are not there. Quantize it, or drop the entry.");
    }

    /// <summary>An unquantized Linear must be named by an entry every engine honours, or engines expect NVFP4 tensors.</summary>
    private void CheckListed(ModelModule module, CheckBuilder check)
    {
        var exclusions = declared.Exclusions;
        if (exclusions.Listing(module.Name) is { } entry)
        {
            check.Expected = $"unquantized ({ListName} '{entry}')";
            check.Note = $"unquantized and listed in {ListName}";
            return;
        }
        check.Expected = DeclaredQuantization.Expected(declared.QuantAlgo);
        string found = $"{module.DType} {module.ShapeText}";
        if (exclusions.Excluding(module.Name) is { } partial)
            check.Fail(VerificationIds.UnlistedUnquantizedLinear,
                $"Only vLLM applies a {ListName} entry to this unquantized Linear ({exclusions.Explain(partial, module.Name)}); TensorRT-LLM and SGLang match exact names and wildcards, so they expect {declared.QuantAlgo} tensors. List it by name or with a prefix* wildcard.");
        else if (module.Kind == ModuleKind.Router || Presets.DefaultDisabledPatterns.Any(p => Fnmatch.IsMatch(module.Name + ".weight_quantizer", p)))
            check.Fail(VerificationIds.UnlistedUnquantizedLinear,
                $"Unquantized {found} Linear that no {ListName} entry names: engines expect {declared.QuantAlgo} tensors for every Linear not listed, and fail to load it. List it by name or with a prefix* wildcard.");
        else
            check.Fail(VerificationIds.NotQuantized,
                $"The config declares every Linear not in {ListName} {declared.QuantAlgo}, but this module's weight is still {found}: engines look for {declared.QuantAlgo} tensors that are not there (the seed's silent failure). Quantize it, or list it in {ListName}.");
    }

    /// <summary>
    /// What the contract never quantizes (in words for a reason), or null. lm_head and the linear-attention
    /// in_proj_a/in_proj_b (Qwen3-Next in_proj_ba) are not here although the contract lists them: upstream wins over the
    /// stricter contract, since NVIDIA ships lm_head W4A16_NVFP4 (nvidia/Qwen3.6-35B-A3B-NVFP4), ModelOpt recipes may
    /// quantize in_proj_a/b, and vLLM loads them as one merged in_proj_ba; they are then checked like any other Linear
    /// against what the config declares (and in_proj_b/a must agree in precision as one merged layer).
    /// </summary>
    private static string? NeverQuantized(ModelModule module)
    {
        string last = ModuleClassifier.LastComponent(module.Name);
        if (ModuleClassifier.IsRouter(module.Name)) return "Routers and shared-expert gates";
        if (module.Section == ModelSection.Vision) return "Modules under model.visual.";
        if (module.Section == ModelSection.Mtp) return "Modules under mtp.";
        if (module.Kind is ModuleKind.Embedding or ModuleKind.Norm or ModuleKind.Conv || last == "embed_tokens")
            return "Embeddings, norms and convolutions";
        return null;
    }

    /// <summary>Every entry must match some module; a tied lm_head counts although it has no tensor of its own.</summary>
    private void CheckExclusionEntries(HashSet<string> moduleNames)
    {
        if (inventory.Config?.TieWordEmbeddings == true) moduleNames.Add("lm_head");
        foreach (var entry in declared.Exclusions.Entries.Distinct())
        {
            var check = checks.Get(CheckScope.Exclusion, entry);
            check.Expected = "matches at least one module";
            var matched = moduleNames.Where(m => declared.Exclusions.Matches(entry, m)).Order(StringComparer.Ordinal).ToList();
            check.Found = Text.Count(matched.Count, "module");
            if (matched.Count > 0)
                check.Note = $"matches {Text.List(matched)}";
            else
                check.Fail(VerificationIds.ExcludeMatchesNothing,
                    $"{ListName} entry '{entry}' matches no module of this checkpoint (by exact name, substring or wildcard): a typo, or a module it does not have. Engines ignore it, and the module it was meant for is not excluded.");
        }
    }

    /// <summary>Every quantized_layers entry must name a module on disk (its own, or the experts its container was split into).</summary>
    private void CheckQuantizedLayerEntries(QuantizedLayers layers, HashSet<string> moduleNames)
    {
        foreach (var (entry, algo) in layers.Algos)
        {
            var check = checks.Get(CheckScope.QuantizedLayer, entry);
            check.Expected = $"{algo}: names at least one module";
            var matched = moduleNames.Where(m => layers.EntryFor(m) == entry).Order(StringComparer.Ordinal).ToList();
            check.Found = Text.Count(matched.Count, "module");
            if (matched.Count > 0)
                check.Note = $"names {Text.List(matched)}";
            else
                check.Fail(VerificationIds.QuantizedLayerMatchesNothing,
                    $"quantized_layers entry '{entry}' ({algo}) names no module of this checkpoint (nor, for an experts container, any <container>.<e>.gate_proj/up_proj/down_proj): " +
                    "a typo or a module the model does not have; engines that build layers from the list fail on it.");
        }
    }

    /// <summary>Every source tensor (each expert's part of a fused one) must be in the export, quantized or copied.</summary>
    private void CheckCoverage(ReferenceMap map)
    {
        bool Present(string name) =>
            inventory.Tensors.ContainsKey(name) || inventory.Unreadable.ContainsKey(name)
            || (name.EndsWith(".weight", StringComparison.Ordinal) && inventory.Tensors.ContainsKey(name[..^".weight".Length] + "." + declared.Naming.Packed));
        foreach (var slice in map.Missing(Present))
        {
            string module = ModuleOf(slice.Name);
            bool known = checks.Contains(CheckScope.Module, module);
            var check = checks.Module(module);
            if (!known)
            {
                check.Expected = "present (from the source)";
                check.Found = "absent";
            }
            check.Fail(VerificationIds.TensorMissing, $"{slice.Origin} has no counterpart '{slice.Name}' in the export.");
        }
    }

    private static string ModuleOf(string tensor) => tensor[..Math.Max(0, tensor.LastIndexOf('.'))];
}
