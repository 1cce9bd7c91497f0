namespace ModelOptPS.Engine.Execution;

/// <summary>
/// Where a Linear input is observed: the module (for error messages), its input quantizer's ModelOpt name, the weight
/// unit the input multiplies (the Linear's module name, or <c>&lt;experts&gt;.&lt;e&gt;.gate_up_proj</c> for one expert of
/// fused experts) and, for routed experts, the expert index the rows were routed to.
/// </summary>
public readonly record struct LinearSite(string Module, string InputQuantizer, string WeightUnit, int? Expert = null)
{
    public static LinearSite ForModule(string module, int? expert = null) => new(module, module + ".input_quantizer", module, expert);

    /// <summary>A projection of a fused experts container, whose input quantizer all experts share.</summary>
    public static LinearSite ForFusedExperts(string container, string projection, int expert) =>
        new($"{container}.{projection}", $"{container}.{projection}_input_quantizer", $"{container}.{expert}.{projection}", expert);
}
