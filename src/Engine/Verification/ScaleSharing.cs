namespace ModelOptPS.Engine.Verification;

/// <summary>
/// Checks what engines need equal across modules (consumers.md §6.3-§6.5): the shards of each merged layer
/// (<see cref="MergedLayerTable"/>) agree in precision and carry bit-identical global and input scales — vLLM refuses a
/// merged layer quantized in part, keeps one scale per merged layer without rescaling the block scales, and
/// TensorRT-LLM refuses unequal ones; and all experts of one MoE layer are quantized alike and share each projection's
/// input scale, because the fast MoE kernels use one activation scale per layer. A module gets one finding per problem:
/// an expert already reported for its own merged layer is not reported again against the other experts.
/// </summary>
internal static class ScaleSharing
{
    /// <param name="quantized">Modules holding NVFP4 tensors, with the scales that could be read.</param>
    /// <param name="unquantizedLinears">Names of the Linears left in the source dtype.</param>
    public static void Check(IReadOnlyList<QuantizedModule> quantized, IReadOnlyCollection<string> unquantizedLinears,
        MergedLayerTable layers, DeclaredQuantization declared, CheckList checks)
    {
        var naming = declared.Naming;
        var states = quantized.Select(q => (q.Name, Quantized: true))
            .Concat(unquantizedLinears.Select(n => (Name: n, Quantized: false))).ToList();

        foreach (var group in states.GroupBy(s => layers.Of(s.Name)).Where(g => g.Key is not null))
        {
            var layer = group.Key!;
            string refuses = layer.Kind.PerExpert
                ? "vLLM's fused MoE holds every expert's gate and up in one w13 tensor of one precision, so it cannot load it"
                : "vLLM loads it as one and refuses it (\"Detected some but not all shards … are quantized\")";
            PartlyQuantized(group.ToList(), checks, VerificationIds.MergedLayerMixedPrecision,
                nvfp4 => $"This shard is unquantized, but the merged layer {layer.Describe} has NVFP4 shards " +
                    $"({Text.List(nvfp4.Select(Shard).ToList(), quote: false)}): {refuses}. Quantize every shard of it, or exclude every shard.");
        }
        foreach (var set in states.GroupBy(s => ExpertSets.ExpertsContainer(s.Name)).Where(g => g.Key is not null))
            PartlyQuantized(set.Where(s => !checks.Module(s.Name).Has(VerificationIds.MergedLayerMixedPrecision)).ToList(), checks,
                VerificationIds.PartiallyQuantizedExperts,
                nvfp4 => $"Other experts of {set.Key} ({Text.List(nvfp4)}) are NVFP4; engines quantize all experts of a layer or none, never single experts.");

        foreach (var group in quantized.GroupBy(q => layers.Of(q.Name)).Where(g => g.Key is not null && g.Count() > 1))
        {
            var layer = group.Key!;
            string keeps = layer.Kind.PerExpert
                ? "vLLM's fused MoE uses the gate's (w1) value for both halves without rescaling the up half's block scales"
                : "vLLM keeps one value for the merged layer without rescaling the shards' block scales";
            Outliers(group.Where(q => q.GlobalScale is not null).Select(q => (q.Name, q.GlobalScale!.Value)).ToList(), checks,
                VerificationIds.MergedLayerScaleMismatch, Shard,
                values => $"'{naming.GlobalScale}' differs across the shards of the merged layer {layer.Describe}: {values}. They must be " +
                    $"bit-identical: {keeps}, so a shard with another value dequantizes wrong without an error; TensorRT-LLM refuses to load it.");
            Outliers(group.Where(q => q.InputScale is not null).Select(q => (q.Name, q.InputScale!.Value)).ToList(), checks,
                VerificationIds.MergedLayerInputScaleMismatch, Shard,
                values => $"'{naming.InputScale}' differs across the shards of the merged layer {layer.Describe}: {values}. They must be " +
                    "bit-identical: the shards read one input, which vLLM quantizes once for the merged layer, with one scale.");
        }
        foreach (var set in quantized.GroupBy(q => ExpertSets.ExpertSet(q.Name)).Where(g => g.Key is not null && g.Count() > 1))
        {
            var members = set.Where(q => q.InputScale is not null && !checks.Module(q.Name).Has(VerificationIds.MergedLayerInputScaleMismatch))
                .Select(q => (q.Name, q.InputScale!.Value)).ToList();
            Outliers(members, checks, VerificationIds.ExpertInputScaleMismatch, name => $"'{name}'",
                values => $"'{naming.InputScale}' differs across the experts of {set.Key}: {values}. They must be bit-identical: the fast MoE " +
                    "kernels use one activation scale per layer (the max over experts), so every expert must carry the shared value.");
        }
    }

    private static string Shard(string module) => module[(module.LastIndexOf('.') + 1)..];

    /// <summary>Flags the unquantized members of a group whose other members are quantized (named to <paramref name="message"/>).</summary>
    private static void PartlyQuantized(List<(string Name, bool Quantized)> members, CheckList checks, string id,
        Func<IReadOnlyList<string>, string> message)
    {
        var quantized = members.Where(m => m.Quantized).Select(m => m.Name).ToList();
        if (quantized.Count == 0 || quantized.Count == members.Count) return;
        foreach (var member in members.Where(m => !m.Quantized))
            checks.Module(member.Name).Fail(id, message(quantized));
    }

    /// <summary>
    /// Flags the members whose value differs from the most common one (all of them when no value is shared), naming
    /// every distinct value (members by <paramref name="label"/>) so the reason shows what was written.
    /// </summary>
    private static void Outliers(List<(string Name, float Value)> members, CheckList checks, string id, Func<string, string> label,
        Func<string, string> message)
    {
        var byValue = members.GroupBy(m => BitConverter.SingleToUInt32Bits(m.Value)).OrderByDescending(g => g.Count()).ToList();
        if (byValue.Count <= 1) return;
        var shared = byValue[0].Count() > 1 ? byValue[0].Key : (uint?)null;
        string values = string.Join("; ", byValue.Take(3).Select(g =>
                $"{Text.Scale(g.First().Value)} in {Text.List(g.Select(m => label(m.Name)).ToList(), quote: false)}"))
            + (byValue.Count > 3 ? $"; and {byValue.Count - 3} other values" : "");
        foreach (var member in members.Where(m => BitConverter.SingleToUInt32Bits(m.Value) != shared))
            checks.Module(member.Name).Fail(id, message(values));
    }
}
