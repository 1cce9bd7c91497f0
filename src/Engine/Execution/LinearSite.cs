namespace ModelOptPS.Engine.Execution;

/// <summary>Where a Linear input is observed: the module (for error messages) and its input quantizer's ModelOpt name.</summary>
internal readonly record struct LinearSite(string Module, string InputQuantizer)
{
    public static LinearSite ForModule(string module) => new(module, module + ".input_quantizer");

    /// <summary>A projection of a fused experts container, whose input quantizer all experts share.</summary>
    public static LinearSite ForFusedExperts(string container, string projection) =>
        new($"{container}.{projection}", $"{container}.{projection}_input_quantizer");
}
