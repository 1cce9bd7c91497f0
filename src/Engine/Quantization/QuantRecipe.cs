namespace ModelOptPS.Engine.Quantization;

/// <summary>An ordered list of recipe entries (ModelOpt's <c>quant_cfg</c>) with a name for reports.</summary>
public sealed class QuantRecipe
{
    public QuantRecipe(string name, IReadOnlyList<RecipeEntry> entries, QuantAlgorithm? algorithm = null)
    {
        Name = name;
        Entries = entries;
        Algorithm = algorithm ?? QuantAlgorithm.Max;
    }

    public string Name { get; }

    public IReadOnlyList<RecipeEntry> Entries { get; }

    /// <summary>The recipe's algorithm (ModelOpt's <c>algorithm</c>), which chooses the NVFP4 weights' block scales.</summary>
    public QuantAlgorithm Algorithm { get; }

    /// <summary>
    /// Whether the recipe quantizes activations to NVFP4 anywhere (an enabling NVFP4 entry aimed at input quantizers, or at
    /// all quantizers): -Include then adds W4A4 modules; otherwise it adds weight-only ones, so the NVFP4 modules keep one scheme.
    /// </summary>
    public bool EnablesInputs => Entries.Any(e => e.Enables && e.Role != QuantizerRole.Weight && (e.Format?.IsNvfp4 ?? true)
        && (e.Pattern == "*" || e.Pattern.Contains("input", StringComparison.Ordinal) || e.Target == PatternTarget.Module));

    /// <summary>Builds a recipe from entry drafts, numbering positions from 1 in order.</summary>
    public static QuantRecipe Build(string name, IEnumerable<RecipeEntry> drafts, QuantAlgorithm? algorithm = null) =>
        new(name, drafts.Select((e, i) => e with { Position = i + 1 }).ToList(), algorithm);

    /// <summary>
    /// This recipe followed by module-pattern entries: <paramref name="include"/> enables every quantizer of matching
    /// modules with <paramref name="format"/> (weights only when <paramref name="weightOnly"/>), then
    /// <paramref name="exclude"/> disables them. Command-line patterns come last, so they win.
    /// </summary>
    public QuantRecipe WithModulePatterns(IEnumerable<string> include, IEnumerable<string> exclude, QuantizerFormat format, bool weightOnly)
    {
        var extra = new List<RecipeEntry>();
        foreach (var pattern in include)
        {
            extra.Add(new RecipeEntry
            {
                Position = 0, Pattern = pattern, Target = PatternTarget.Module, Format = format, Enable = true, Source = "-Include",
                Role = weightOnly ? QuantizerRole.Weight : null,
            });
        }
        foreach (var pattern in exclude)
            extra.Add(new RecipeEntry { Position = 0, Pattern = pattern, Target = PatternTarget.Module, Enable = false, Source = "-Exclude" });
        return extra.Count == 0 ? this : Build(Name, Entries.Concat(extra), Algorithm);
    }

    /// <summary>This recipe followed by one KV-cache entry (<c>*[kv]_bmm_quantizer</c>) that sets the KV cache to <paramref name="mode"/>.</summary>
    public QuantRecipe WithKvCache(KvCacheMode mode)
    {
        var format = mode switch
        {
            KvCacheMode.None => null,
            KvCacheMode.Fp8Cast => QuantizerFormat.Fp8Cast,
            _ => QuantizerFormat.Fp8,
        };
        return Build(Name, Entries.Append(Presets.KvCache(format, "-KvCache")), Algorithm);
    }

    /// <summary>This recipe with another algorithm (Set-QuantConfig -Algorithm, which wins over the file's).</summary>
    public QuantRecipe WithAlgorithm(QuantAlgorithm algorithm) => new(Name, Entries, algorithm);
}
