using ModelOptPS.Engine.Checkpoint;
using ModelOptPS.Engine.Model;
using ModelOptPS.Engine.Quantization;

namespace ModelOptPS.Engine.Verification;

/// <summary>
/// Checks every module of a checkpoint that declares NVFP4: a module with NVFP4 tensors must have them as the contract
/// lists and must not be excluded; a Linear without them must be listed as excluded; then the scales shared across
/// modules, the exclusion entries themselves and, with a reference, every value against the source.
/// </summary>
internal sealed class ModuleChecks(CheckpointInventory inventory, DeclaredQuantization declared, ReferenceComparison? reference,
    CheckList checks, VerifyOptions options)
{
    private readonly List<QuantizedModule> _quantized = [];
    private readonly List<string> _unquantizedLinears = [];

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
            else if (Nvfp4Naming.LooksQuantized(module.Parameters))
                CheckQuantized(module, check);
            else
                CheckUnquantized(module, check);
            options.Progress?.Report(new VerificationProgress(module.Name, i + 1, modules.Count));
        }
        foreach (var (name, tensor) in unreadable) Unreadable(checks.Module(name), tensor);

        var layers = MergedLayerTable.For(inventory.Config);
        options.Log?.Invoke($"Checking the precision and scales merged layers ({layers.Family}) and expert sets share.");
        ScaleSharing.Check(_quantized, _unquantizedLinears, layers, declared, checks);
        reference?.CheckWeightScale2(_quantized, layers, declared.Naming, checks);
        CheckExclusionEntries(modules.Select(m => m.Name).Concat(inventory.Unreadable.Keys.Select(ModuleOf)).ToHashSet(StringComparer.Ordinal));
        if (_quantized.Count == 0 && inventory.Complete)
            checks.Get(CheckScope.Checkpoint, Path.GetFileName(inventory.Folder)).Fail(VerificationIds.NothingQuantized,
                $"The config declares {declared.Describe}, but no module holds NVFP4 tensors: every Linear is still in the source dtype.");
        if (reference is not null) CheckCoverage(reference.Map);
    }

    private static void Unreadable(CheckBuilder check, KeyValuePair<string, string> tensor)
    {
        check.Found = "unreadable";
        check.Fail(VerificationIds.TensorUnreadable, $"'{tensor.Key}' cannot be read: {tensor.Value}.");
    }

    private void CheckQuantized(ModelModule module, CheckBuilder check)
    {
        check.Expected = declared.ExpectedForQuantized;
        if (NeverQuantized(module) is { } what)
        {
            check.Expected = $"unquantized ({what} never are)";
            check.Fail(VerificationIds.MustNotBeQuantized,
                $"{what} are never quantized (checkpoint-contract.md), but this module holds NVFP4 tensors; engines build it unquantized and cannot load them.");
        }
        else if (declared.Exclusions.Excluding(module.Name) is { } entry)
        {
            check.Expected = $"unquantized ({ListName} '{entry}')";
            check.Fail(VerificationIds.ExcludedButQuantized,
                $"{ListName} entry {declared.Exclusions.Explain(entry, module.Name)}, so engines build this module unquantized, but it holds NVFP4 tensors: loading fails (vLLM PR #45132).");
        }
        var weight = QuantizedModule.Inspect(module, inventory.Tensors, declared, check);
        check.Found = weight?.Found ?? $"{Nvfp4Naming.FoundPrefix} tensors, incomplete";
        if (weight is null) return;
        _quantized.Add(weight);
        check.Note = "NVFP4 tensors as the contract lists them, scales valid";
        if (reference is null) return;
        reference.CompareQuantized(weight, check);
        foreach (var parameter in module.Parameters.Keys.Where(p => !declared.IsQuantizationTensor(p)))
            reference.CompareCopy(inventory.Tensors[module.Name + "." + parameter], check);
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
            _unquantizedLinears.Add(module.Name);
            CheckListed(module, check);
        }
        if (reference is null) return;
        foreach (var parameter in module.Parameters.Keys)
            reference.CompareCopy(inventory.Tensors[module.Name + "." + parameter], check);
        if (!check.Failed) check.Note += ", identical to the source";
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
        check.Expected = declared.ExpectedForQuantized;
        string found = $"{module.DType} {module.ShapeText}";
        if (exclusions.Excluding(module.Name) is { } partial)
            check.Fail(VerificationIds.UnlistedUnquantizedLinear,
                $"Only vLLM applies a {ListName} entry to this unquantized Linear ({exclusions.Explain(partial, module.Name)}); TensorRT-LLM and SGLang match exact names and wildcards, so they expect NVFP4 tensors. List it by name or with a prefix* wildcard.");
        else if (module.Kind == ModuleKind.Router || Presets.DefaultDisabledPatterns.Any(p => Fnmatch.IsMatch(module.Name + ".weight_quantizer", p)))
            check.Fail(VerificationIds.UnlistedUnquantizedLinear,
                $"Unquantized {found} Linear that no {ListName} entry names: engines expect NVFP4 tensors for every Linear not listed, and fail to load it. List it by name or with a prefix* wildcard.");
        else
            check.Fail(VerificationIds.NotQuantized,
                $"The config declares every Linear not in {ListName} NVFP4, but this module's weight is still {found}: engines look for NVFP4 tensors that are not there (the seed's silent failure). Quantize it, or list it in {ListName}.");
    }

    /// <summary>What the contract never quantizes (in words for a reason), or null.</summary>
    private static string? NeverQuantized(ModelModule module)
    {
        string last = ModuleClassifier.LastComponent(module.Name);
        if (ModuleClassifier.IsRouter(module.Name)) return "Routers and shared-expert gates";
        if (module.Section == ModelSection.Vision) return "Modules under model.visual.";
        if (module.Section == ModelSection.Mtp) return "Modules under mtp.";
        if (last == "lm_head") return "lm_head";
        if (last is "in_proj_a" or "in_proj_b" or "in_proj_ba") return "Linear-attention in_proj_a/in_proj_b";
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
