namespace ModelOptPS.Engine.Verification;

/// <summary>
/// Checks what engines need equal across modules (consumers.md §6.3-§6.5): the shards of each merged layer
/// (<see cref="MergedLayerTable"/>) agree in precision (unquantized, NVFP4, W4A16_NVFP4 or FP8) and, when NVFP4, carry
/// bit-identical global and input scales — vLLM refuses a
/// merged layer quantized in part, keeps one scale per merged layer without rescaling the block scales, and
/// TensorRT-LLM refuses unequal ones; and all experts of one MoE layer are quantized alike and share each projection's
/// input scale, because the fast MoE kernels use one activation scale per layer. A module gets one finding per problem:
/// an expert already reported for its own merged layer is not reported again against the other experts.
/// </summary>
internal static class ScaleSharing
{
    /// <param name="quantized">Modules holding NVFP4 tensors, with the scales that could be read.</param>
    /// <param name="precisions">Every Linear with the format its tensors are in (NVFP4, W4A16_NVFP4, FP8), null when unquantized.</param>
    public static void Check(IReadOnlyList<QuantizedModule> quantized, IReadOnlyList<(string Name, string? Precision)> precisions,
        MergedLayerTable layers, DeclaredQuantization declared, CheckList checks)
    {
        var naming = declared.Naming;
        foreach (var group in precisions.GroupBy(s => layers.Of(s.Name)).Where(g => g.Key is not null))
        {
            var layer = group.Key!;
            string refuses = layer.Kind.PerExpert
                ? "vLLM's fused MoE holds every expert's gate and up in one w13 tensor of one precision, so it cannot load it"
                : "vLLM loads it as one and refuses it (\"Detected some but not all shards … are quantized\", or shards of different quantization schemes)";
            Disagreeing(group.ToList(), checks, VerificationIds.MergedLayerMixedPrecision,
                (own, shared, others) => $"This shard is {own ?? "unquantized"}, but the merged layer {layer.Describe} has {shared} shards " +
                    $"({Text.List(others.Select(Shard).ToList(), quote: false)}): {refuses}. Give every shard of it one precision, or exclude every shard.");
        }
        foreach (var set in precisions.GroupBy(s => ExpertSets.ExpertsContainer(s.Name)).Where(g => g.Key is not null))
            Disagreeing(set.Where(s => !checks.Module(s.Name).Has(VerificationIds.MergedLayerMixedPrecision)).ToList(), checks,
                VerificationIds.PartiallyQuantizedExperts,
                (own, shared, others) => $"This expert is {own ?? "unquantized"}, but other experts of {set.Key} ({Text.List(others)}) are {shared}; " +
                    "engines quantize all experts of a layer alike or none, never single experts.");

        // FP8 shards are not compared: ModelOpt does not unify FP8 groups at export (_fuse_shared_input_modules skips
        // them) and vLLM requantizes a merged FP8 layer to the max of its shards' scales.
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

    /// <summary>
    /// Flags the members of a group whose precision (null: unquantized) is not the group's: the precision of most of
    /// its quantized members (the first one's on a tie). Nothing when all agree; an all-unquantized group agrees.
    /// </summary>
    /// <param name="message">(this member's precision, the group's, the members in the group's precision) → reason.</param>
    private static void Disagreeing(List<(string Name, string? Precision)> members, CheckList checks, string id,
        Func<string?, string, IReadOnlyList<string>, string> message)
    {
        if (members.Select(m => m.Precision).Distinct().Count() <= 1) return;
        string shared = members.Where(m => m.Precision is not null).GroupBy(m => m.Precision!)
            .OrderByDescending(g => g.Count()).First().Key;
        var others = members.Where(m => m.Precision == shared).Select(m => m.Name).ToList();
        foreach (var member in members.Where(m => m.Precision != shared))
            checks.Module(member.Name).Fail(id, message(member.Precision, shared, others));
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
