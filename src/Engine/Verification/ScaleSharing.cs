namespace ModelOptPS.Engine.Verification;

/// <summary>
/// Checks the scales engines need equal across modules (consumers.md §6.3-§6.5): TensorRT-LLM asserts equality of
/// fused global scales; vLLM and SGLang take the max (dense) or the gate's value (MoE) and silently mis-scale the rest;
/// the fast MoE kernels use one activation scale per layer, so one stray expert input scale sets it for all.
/// </summary>
internal static class ScaleSharing
{
    /// <param name="quantized">Modules holding NVFP4 tensors, with the scales that could be read.</param>
    /// <param name="unquantizedLinears">Names of the Linears left in the source dtype.</param>
    public static void Check(IReadOnlyList<QuantizedModule> quantized, IReadOnlyCollection<string> unquantizedLinears,
        DeclaredQuantization declared, CheckList checks)
    {
        var naming = declared.Naming;
        var states = quantized.Select(q => (q.Name, Quantized: true))
            .Concat(unquantizedLinears.Select(n => (Name: n, Quantized: false))).ToList();

        foreach (var layer in states.GroupBy(s => FusedGroups.FusedLayer(s.Name)).Where(g => g.Key is not null))
            PartlyQuantized(layer.ToList(), checks, VerificationIds.PartiallyQuantizedGroup,
                others => $"It is fused with {others} in {layer.Key}, which are NVFP4; vLLM loads the fused layer as one and refuses one quantized only in part.");
        foreach (var set in states.GroupBy(s => FusedGroups.ExpertsContainer(s.Name)).Where(g => g.Key is not null))
            PartlyQuantized(set.ToList(), checks, VerificationIds.PartiallyQuantizedExperts,
                others => $"Other experts of {set.Key} ({others}) are NVFP4; engines quantize all experts of a layer or none, never single experts.");

        foreach (var layer in quantized.GroupBy(q => FusedGroups.FusedLayer(q.Name)).Where(g => g.Key is not null && g.Count() > 1))
        {
            string where = $"the fused {layer.Key}";
            Outliers(layer.Where(q => q.GlobalScale is not null).Select(q => (q.Name, q.GlobalScale!.Value)).ToList(), checks,
                VerificationIds.FusedScaleMismatch, naming.GlobalScale, where,
                "TensorRT-LLM refuses unequal fused scales; vLLM and SGLang take one and mis-scale the other shards.");
            Outliers(layer.Where(q => q.InputScale is not null).Select(q => (q.Name, q.InputScale!.Value)).ToList(), checks,
                VerificationIds.FusedScaleMismatch, naming.InputScale, where,
                "the shards share one input, and engines keep one activation scale for the fused layer.");
        }
        foreach (var set in quantized.GroupBy(q => FusedGroups.ExpertSet(q.Name)).Where(g => g.Key is not null && g.Count() > 1))
        {
            Outliers(set.Where(q => q.InputScale is not null).Select(q => (q.Name, q.InputScale!.Value)).ToList(), checks,
                VerificationIds.ExpertInputScaleMismatch, naming.InputScale, $"the experts of {set.Key}",
                "the fast MoE kernels use one activation scale per layer (the max over experts), so every expert must carry the shared value.");
        }
    }

    /// <summary>Flags the unquantized members of a group whose other members are quantized.</summary>
    private static void PartlyQuantized(List<(string Name, bool Quantized)> members, CheckList checks, string id, Func<string, string> message)
    {
        var quantized = members.Where(m => m.Quantized).Select(m => m.Name).ToList();
        if (quantized.Count == 0 || quantized.Count == members.Count) return;
        foreach (var member in members.Where(m => !m.Quantized))
            checks.Module(member.Name).Fail(id, message(Text.List(quantized)));
    }

    /// <summary>
    /// Flags the members whose value differs from the most common one (all of them when no value is shared), naming
    /// every distinct value so the reason shows what was written.
    /// </summary>
    private static void Outliers(List<(string Name, float Value)> members, CheckList checks, string id, string tensor, string where, string why)
    {
        var byValue = members.GroupBy(m => BitConverter.SingleToUInt32Bits(m.Value)).OrderByDescending(g => g.Count()).ToList();
        if (byValue.Count <= 1) return;
        var shared = byValue[0].Count() > 1 ? byValue[0].Key : (uint?)null;
        string values = string.Join("; ", byValue.Take(3).Select(g => $"{Text.Scale(g.First().Value)} in {Text.List(g.Select(m => m.Name).ToList())}"))
            + (byValue.Count > 3 ? $"; and {byValue.Count - 3} other values" : "");
        foreach (var member in members.Where(m => BitConverter.SingleToUInt32Bits(m.Value) != shared))
            checks.Module(member.Name).Fail(id, $"'{tensor}' differs across {where}: {values}. They must be bit-identical: {why}");
    }
}
